#!/bin/bash
# Session 24 device call 3 (results/NOTES.md "Session 24"): fuse v35 (v34's boustrophedon order + the EC modes
# unrolled) on the GPU: its tests (block modes against float64 and bitwise against v28; e2e at batch 1 / 2 against
# ORT), then an interleaved A/B of v30 / v34 / v35 at batch 1 / 2 (9 instances), then in the time left one at batch
# 64 (3 instances: the 40k img/s target is met narrowly, and v34's order was slower on some blocks in the stamps).
# Usage: scripts/session24_v35_device.sh OUT   env: TEST_T / AB_T (timeouts, s); END (s after start, default 440)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${TEST_T:-180} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v35 and not -3-" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|expansion modes" "$OUT/tests.log" | cut -c1-260 | tail -14
timeout ${AB_T:-150} python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v34;fuse=v35;fuse=v30;fuse=v35;fuse=v34;fuse=v30;fuse=v35;fuse=v34;fuse=v30" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -18
left=$(( ${END:-440} - ($(date +%s) - t0) ))
timeout $left python3 scripts/e2e_ab.py --dtype fp32 --batches 64 --rounds 5 --json "$OUT/ab64.json" \
  --specs "fuse=v30;fuse=v34;fuse=v35" > "$OUT/ab64.log" 2>&1
echo "[ab64 rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab64.log" | sed -E 's/ new kernels.*//' | tail -4
