#!/bin/bash
# block0 v4 on the GPU (session 20; results/NOTES.md "block0 v4"): the block0 GPU tests (v4's cluster kernel at every
# batch, forced, on clusters of 2 and 4; v3 / v4 end to end), an interleaved A/B of block0 v3 / v4 / v4 on clusters of
# 4 at batch 1, 2 (two instances each), the split forced at batch 3 / 8, and each launch's marginal graph time with v4
# at batch 1.
# Usage: scripts/block0_v4_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_block0.py \
  -k "not (e2e and (v1 or v2))" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 \
  --specs "block0=v3;block0=v4;block0=v4,b0k4=1;block0=v4,b0k4=1;block0=v4;block0=v3" --rounds 5 \
  --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -14
timeout 120 python3 scripts/e2e_ab.py --dtype fp32 --batches 3,8 \
  --specs "block0=v3;block0=v4,b0split=1;block0=v4,b0split=1;block0=v3" --rounds 3 \
  --json "$OUT/ab_split.json" > "$OUT/ab_split.log" 2>&1
echo "[ab_split rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab_split.log" | sed -E 's/ new kernels.*//' | tail -10
timeout 90 python3 scripts/plan_prefix_times.py --batch 1 --kernels "block0=v4" --json "$OUT/prefix_bs1_b0v4.json" \
  > "$OUT/prefix_bs1_b0v4.log" 2>&1
echo "[prefix rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-100 "$OUT/prefix_bs1_b0v4.log" | tail -21
