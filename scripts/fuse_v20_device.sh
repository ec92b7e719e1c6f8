#!/bin/bash
# Session 17, last call: fuse v20 (exdwpw6's depthwise by output-row segments) and the session's review commit on the
# GPU: the tests of v17 - v20 and the default plan, an interleaved A/B v19 / v20 at batch 1, 2 and 3, the stamps.
# Usage: scripts/fuse_v20_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v20 or v19 or v18 or v17 or odd_block_matches or test_e2e_matches_onnxruntime or pdl_launches" \
  > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 120 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v19;fuse=v20;fuse=v20;fuse=v19" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | tail -14
timeout 40 python3 scripts/cblock_sweep.py --batches 1 --fuse v20 --stamps --plan > "$OUT/stamps_plan.log" 2>&1
echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^bs|stage" "$OUT/stamps_plan.log" | sed -E 's/ hand-off.*//' | head -30
