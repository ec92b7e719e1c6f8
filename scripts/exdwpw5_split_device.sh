#!/bin/bash
# fuse v25 on the GPU (session 20; results/NOTES.md "fuse v25"): an interleaved A/B of v24 / v25 at batch 1 (the
# logits checked against ONNX Runtime first), then its GPU tests (the split build on odd maps and Ce that leave a block
# without a chunk; v25 end to end at batch 1 / 3), then each launch's marginal graph time with v25 at batch 1.
# Usage: scripts/exdwpw5_split_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 100 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --specs "fuse=v24;fuse=v25;fuse=v25;fuse=v24" \
  --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -6
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_exdw.py tests/test_custom_e2e.py \
  -k "split_block or fuse_v25" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 90 python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=v25" --json "$OUT/prefix_bs1_v25.json" \
  > "$OUT/prefix_bs1_v25.log" 2>&1
echo "[prefix rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-100 "$OUT/prefix_bs1_v25.log" | tail -21
