#!/bin/bash
# fuse v30's GPU tests and a second A/B at batch 1 (session 22, call 2; results/NOTES.md "Session 22"): v28, v30 and
# v30 with plan_tune (near alternatives timed inside the whole plan), three instances of each interleaved.
# Usage: scripts/v30_check_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v30" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed|v30 expansion" "$OUT/tests.log" | cut -c1-160 | tail -12
timeout 260 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v28;fuse=v30;fuse=v30,plantune=1;fuse=v28;fuse=v30;fuse=v30,plantune=1;fuse=v28;fuse=v30" \
  > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
