#!/bin/bash
# Session 26, call 3 (results/NOTES.md "Session 26"): an interleaved A/B of fuse v36 against v38 (v36 + v31's fused
# head) at batch 1 / 2 (8 instances; also fills the build cache), then the GPU tests of v38 (e2e against ORT, its head
# on other heads) and the v37 block tests fixed after call 2 (the configurations red_pf 2 does not fit refused with a
# clear error). Steps stop at END seconds after the start.
# Usage: scripts/session26_v38_device.sh OUT   env: AB_T / TEST_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
left() { local l=$(( ${END:-560} - ($(date +%s) - t0) )); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout $(left ${AB_T:-330}) python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v36;fuse=v38;fuse=v38;fuse=v36;fuse=v36;fuse=v38;fuse=v38;fuse=v36" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
timeout $(left ${TEST_T:-300}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  tests/test_custom_cblock.py -k "(v31 and v38) or (v37_bulk_reduce_matches and (ops3 or ops12))" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | cut -c1-200 | tail -14
