#!/bin/bash
# Prepared in session 25 for the next device call (results/NOTES.md "Bulk-copy reduce"; NOT run yet): fuse v37 (the
# cluster reduce by bulk copies on mbarriers, red_pf 2, timed per block in a last tuner stage) on the GPU: its tests
# (red_pf 2 on the network and odd blocks against float64 and bitwise against v36's red_pf 1; e2e at batch 1 / 2
# against ORT; these also warm the build cache), then the plan / push / bulk stamps on v36's batch-1 plan
# (scripts/ex_variant_stamps.py --set push, bitwise checked), then an interleaved A/B of v36 against v37 at batch 1 / 2
# (8 instances). Steps stop at END seconds after the start.
# Usage: scripts/bulk_v37_device.sh OUT   env: TEST_T / VAR_T / AB_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
left() { local l=$(( ${END:-560} - ($(date +%s) - t0) )); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout $(left ${TEST_T:-240}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v37 and not -3-" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|reduce modes" "$OUT/tests.log" | cut -c1-200 | tail -14
timeout $(left ${VAR_T:-120}) python3 scripts/ex_variant_stamps.py --set push --batch 1 --fuse v36 --rounds 2 \
  --json "$OUT/push_bs1.json" > "$OUT/push_bs1.log" 2>&1
echo "[variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/push_bs1.log" | tail -60 | cut -c1-120
timeout $(left ${AB_T:-200}) python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v36;fuse=v37;fuse=v37;fuse=v36;fuse=v36;fuse=v37;fuse=v37;fuse=v36" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
