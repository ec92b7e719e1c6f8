#!/bin/bash
# Prepared in session 24 for the next device call (results/NOTES.md "proj_tiles in lane-pair order"): the projection
# phase's units in the lane-pair order (kernels/cblock.cu EXDWPW6_PJ_SNAKE; scripts/ex_variant_stamps.py --set proj,
# every variant checked bitwise against the plan's launch) on the batch-1 plan of the default (fuse v35); then the
# GPU tests session 24 did not reach (v35 e2e at batch 3, v31 on the other heads).
# Usage: scripts/proj_order_device.sh OUT   env: VAR_T / TEST_T (timeouts, s)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${VAR_T:-200} python3 scripts/ex_variant_stamps.py --set proj --batch 1 --fuse v35 --rounds 3 \
  --json "$OUT/proj_bs1.json" > "$OUT/proj_bs1.log" 2>&1
echo "[variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/proj_bs1.log" | tail -90 | cut -c1-110
timeout ${TEST_T:-200} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "v35-3- or fuse_v31_other" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
