#!/bin/bash
# Session 24 device call 3 (results/NOTES.md "Session 24"): fuse v35 (v34's boustrophedon order + the EC modes
# unrolled) on the GPU: its tests (block modes against float64 and bitwise against v28; e2e at batch 1 / 2 against
# ORT), then an interleaved A/B of v30 / v34 / v35 at batch 1 / 2 (9 instances), then in the time left v31's GPU tests
# (the review commit 3c94d17's pwpool_fc_c8 hand-off).
# Usage: scripts/session24_v35_device.sh OUT   env: TEST_T / AB_T (timeouts, s); END (s after start, default 470)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${TEST_T:-200} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v35 and not -3-" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|expansion modes" "$OUT/tests.log" | cut -c1-260 | tail -14
timeout ${AB_T:-170} python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v34;fuse=v35;fuse=v30;fuse=v35;fuse=v34;fuse=v30;fuse=v35;fuse=v34;fuse=v30" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -18
left=$(( ${END:-470} - ($(date +%s) - t0) ))
timeout $left python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py -k "fuse_v31" \
  > "$OUT/tests_v31.log" 2>&1
echo "[v31 tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_v31.log" | tail -8
