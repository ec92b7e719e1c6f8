#!/bin/bash
# Session 17: fuse v17 (exdwpw6's expansion and projection in lane tiles) on the GPU: its tests, an interleaved A/B
# v16 / v17 at batch 1, 2 and 3, and the per-phase stamps of v17's batch-1 plan.
# Usage: scripts/fuse_v17_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v17" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 180 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v16;fuse=v17;fuse=v17;fuse=v16" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | tail -14
timeout 90 python3 scripts/cblock_sweep.py --batches 1 --fuse v17 --stamps --plan > "$OUT/stamps_plan.log" 2>&1
echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^bs|stage" "$OUT/stamps_plan.log" | sed -E 's/ hand-off.*//' | head -30
