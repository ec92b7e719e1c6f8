#!/bin/bash
# Session 25 device call 4 (results/NOTES.md "Session 25"): fuse v36 (the projection's lane tiles in the lane-pair
# order, proj_cols 4 / 5, timed per block in a last tuner stage) on the GPU: its tests (proj_cols 4 / 5 on the network
# and odd blocks against float64 and bitwise against v35's 2 / 3; e2e at batch 1 / 2 against ORT), then an interleaved
# A/B against v35 at batch 1 / 2 (8 instances).
# Usage: scripts/session25_v36_device.sh OUT   env: TEST_T / AB_T (timeouts, s)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${TEST_T:-240} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v36 and not -3-" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|projection modes" "$OUT/tests.log" | cut -c1-260 | tail -14
timeout ${AB_T:-200} python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v35;fuse=v36;fuse=v36;fuse=v35;fuse=v35;fuse=v36;fuse=v36;fuse=v35" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
