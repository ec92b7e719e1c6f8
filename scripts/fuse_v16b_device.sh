#!/bin/bash
# Session 16: fuse v16's second form (the projection mapping timed per block) on the GPU: its tests, an interleaved
# A/B v15 / v16 at batch 1, 2 and 3, and a custom-only bench with fuse=v16.
# Usage: scripts/fuse_v16b_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 100 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v16 or odd_block_matches or test_e2e_matches_onnxruntime" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -5
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v15;fuse=v16;fuse=v16;fuse=v15" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab " "$OUT/ab.log"
timeout 100 env MBV2_KERNELS=fuse=v16 make bench NOVENV=1 RUN_JSON="$OUT/run_custom_v16.json" \
  BENCH_ARGS="--backends custom --dtypes fp32,fp16 -k test_e2e" > "$OUT/bench_custom_v16.log" 2>&1
echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "passed|failed" "$OUT/bench_custom_v16.log" | tail -2
grep -E "^\| custom \| fp(32|16) \| graph \| [0-9]" "$OUT/bench_custom_v16.log"
