#!/bin/bash
# Session 14: linear v5 (the classifier GEMV by programmatic dependent launch) on the GPU: its e2e tests (against
# ONNX Runtime, bit-identical to v3), the default e2e tests with MBV2_KERNELS=linear=v5, then interleaved A/Bs
# v3 / v5 at fp32 batch 1 / 2 / 8, autotuned (default) and with MBV2_AUTOTUNE=0 (identical plans but for the GEMV).
# Usage: scripts/linear_v5_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "linear_v5 or head_pool" > "$OUT/tests_v5.log" 2>&1
echo "[v5 tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_v5.log" | tail -5
MBV2_KERNELS=linear=v5 timeout 120 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "test_e2e_matches_onnxruntime" > "$OUT/tests_default_v5.log" 2>&1
echo "[default-as-v5 tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_default_v5.log" | tail -3
MBV2_AUTOTUNE=0 timeout 90 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,8 \
  --specs "linear=v3;linear=v5;linear=v3;linear=v5" --rounds 3 --json "$OUT/ab_notune.json" > "$OUT/ab_notune.log" 2>&1
echo "[ab no-tune rc=$? $(( $(date +%s) - t0 ))s]"; grep "^ab " "$OUT/ab_notune.log"
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,8 \
  --specs "linear=v3;linear=v5;linear=v3;linear=v5" --rounds 3 --json "$OUT/ab_tuned.json" > "$OUT/ab_tuned.log" 2>&1
echo "[ab tuned rc=$? $(( $(date +%s) - t0 ))s]"; grep "^ab " "$OUT/ab_tuned.log"
