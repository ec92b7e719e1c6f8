#!/bin/bash
# Session 24 device call 2 (results/NOTES.md "Session 24"): the expansion tiles' units in boustrophedon order
# (kernels/cblock.cu EXDWPW6_EX_SNAKE; scripts/ex_variant_stamps.py --set snake, every variant checked against the
# plan's launch) on the batch-1 plan's exdwpw6 launches; then the GPU tests call 1 did not reach (v31's fused head,
# v33 at batch 2 / 3).
# Usage: scripts/session24_snake_device.sh OUT   env: VAR_T / TEST_T (timeouts, s)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${VAR_T:-240} python3 scripts/ex_variant_stamps.py --set snake --batch 1 --fuse v30 --rounds 3 \
  --json "$OUT/snake_bs1.json" > "$OUT/snake_bs1.log" 2>&1
echo "[variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/snake_bs1.log" | tail -250 | cut -c1-110
timeout ${TEST_T:-250} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "fuse_v31 or (v33 and not -1-)" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | cut -c1-200 | tail -14
