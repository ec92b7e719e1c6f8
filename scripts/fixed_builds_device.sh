#!/bin/bash
# fuse v24 on the GPU (session 19; results/NOTES.md "fuse v24"): its GPU tests (ONNX Runtime, and bitwise against v23
# planned with the same tuner picks) with v23's, an interleaved A/B of v23 / v24 at batch 1, 2, 3 (two instances
# each) and at batch 8, 64, and each launch's marginal graph time with v24 at batch 1.
# Usage: scripts/fixed_builds_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "v24 or v23 or test_e2e_matches_onnxruntime or pdl_launches" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v23;fuse=v24;fuse=v24;fuse=v23" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -14
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 8,64 \
  --specs "fuse=v23;fuse=v24;fuse=v24;fuse=v23" --rounds 3 --json "$OUT/ab_big.json" > "$OUT/ab_big.log" 2>&1
echo "[ab_big rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab_big.log" | sed -E 's/ new kernels.*//' | tail -10
timeout 90 python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=v24" --json "$OUT/prefix_bs1_v24.json" \
  > "$OUT/prefix_bs1_v24.log" 2>&1
echo "[prefix v24 rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-100 "$OUT/prefix_bs1_v24.log" | tail -21
