#!/bin/bash
# fuse v26 on the GPU (session 21; results/NOTES.md "Session 21"): an interleaved A/B at batch 1 of v25 / v26 and of
# v25 with the exdwpw6 blocks launched by PDL (pdl=1; the logits of each checked against ONNX Runtime first), the GPU
# tests of v26's builds and plan and of the default plan, each launch's marginal graph time with v26 at batch 1, and
# the per-phase clock stamps of the batch-1 plan's exdwpw6 launches (their fixed builds' stamped twins).
# Usage: scripts/exdwpw5_split26_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 \
  --specs "fuse=v25;fuse=v26;fuse=v25,pdl=1;fuse=v26;fuse=v25" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -6
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_exdw.py tests/test_custom_e2e.py \
  -k "split26 or split_block or fuse_v26 or fuse_v25 or test_e2e_matches_onnxruntime" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 90 python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=v26" --json "$OUT/prefix_bs1_v26.json" \
  > "$OUT/prefix_bs1_v26.log" 2>&1
echo "[prefix rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-100 "$OUT/prefix_bs1_v26.log" | head -5
timeout 120 python3 scripts/cblock_sweep.py --stamps --plan --batches 1 --fuse v25 --json "$OUT/stamps_bs1.json" \
  > "$OUT/stamps_bs1.log" 2>&1
echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/stamps_bs1.log" | cut -c1-190 | tail -28
