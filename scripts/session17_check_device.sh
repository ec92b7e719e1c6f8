#!/bin/bash
# Session 17, first call: the GPU tests session 16's review commit (c965b2c) did not get, and an interleaved A/B of the
# exdwpw6 plan at batch 4 under v16 (EXDWPW6_V13_MAX_BATCH is 3: under v13 batch 4 lost by 23 us).
# Usage: scripts/session17_check_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v16 or v15 or odd_block_matches or test_e2e_matches_onnxruntime" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -5
timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 4,5 \
  --specs "fuse=v16;fuse=v16,block6max=5;fuse=v16,block6max=5;fuse=v16" --rounds 5 --json "$OUT/ab_bs4.json" \
  > "$OUT/ab_bs4.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab " "$OUT/ab_bs4.log"
