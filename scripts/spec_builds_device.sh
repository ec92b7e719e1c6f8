#!/bin/bash
# fuse v22 / v23 on the GPU (prepared in session 18, not yet run; results/NOTES.md "fuse v22", "fuse v23"): their GPU
# tests (ONNX Runtime, and bitwise against v21 planned with the same tuner picks), an interleaved A/B of v21 / v22 /
# v23 at batch 1, 2, 3 (two instances each), and each launch's marginal graph time with v22 and v23 at batch 1.
# Usage: scripts/spec_builds_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "v22 or v21 or test_e2e_matches_onnxruntime or pdl_launches" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v21;fuse=v22;fuse=v23;fuse=v23;fuse=v22;fuse=v21" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |planned|Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -30
for v in v22 v23; do
  timeout 90 python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=$v" --json "$OUT/prefix_bs1_$v.json" \
    > "$OUT/prefix_bs1_$v.log" 2>&1
  echo "[prefix $v rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-100 "$OUT/prefix_bs1_$v.log" | tail -21
done
