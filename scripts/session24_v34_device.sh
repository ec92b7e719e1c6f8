#!/bin/bash
# Session 24 device call 2 (results/NOTES.md "Session 24"): fuse v34 (the tiled expansion's units in boustrophedon
# order) on the GPU: its tests (every tiled mode on the network and odd blocks against float64 and bitwise against
# v28's tiles of the same KS; e2e at batch 1 / 2 against ORT), then an interleaved A/B against v30 at batch 1 / 2
# (8 instances), then in the time left the order's variant stamps (scripts/ex_variant_stamps.py --set snake).
# Usage: scripts/session24_v34_device.sh OUT   env: TEST_T / AB_T (timeouts, s); END (s after start, default 480)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${TEST_T:-230} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v34 and not -3-" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|expansion modes" "$OUT/tests.log" | cut -c1-260 | tail -14
timeout ${AB_T:-130} python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v30;fuse=v34;fuse=v34;fuse=v30;fuse=v30;fuse=v34;fuse=v34;fuse=v30" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
left=$(( ${END:-480} - ($(date +%s) - t0) ))
timeout $left python3 scripts/ex_variant_stamps.py --set snake --batch 1 --fuse v30 --rounds 3 \
  --json "$OUT/snake_bs1.json" > "$OUT/snake_bs1.log" 2>&1
echo "[variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/snake_bs1.log" | tail -300 | cut -c1-100
