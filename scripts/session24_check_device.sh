#!/bin/bash
# Session 24 device call 1 (results/NOTES.md "Session 24"): the GPU tests that cover the review commit 3c94d17
# (v31's fused head, the default e2e) and fuse v33 (padded + unrolled expansion tiles); the interleaved A/B at
# batch 1 / 2 of v30 (the default) against v33, each instance's logits checked against ONNX Runtime first; then, in
# the time left, v33's batch-1 prefix times (scripts/plan_prefix_times.py).
# Usage: scripts/session24_check_device.sh OUT   env: TEST_T / AB_T / PRE_T (timeouts, s)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${TEST_T:-220} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "fuse_v31 or test_e2e_matches_onnxruntime or v33" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|expansion modes" "$OUT/tests.log" | cut -c1-200 | tail -14
timeout ${AB_T:-200} python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v30;fuse=v33;fuse=v33;fuse=v30;fuse=v30;fuse=v33" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
timeout ${PRE_T:-120} python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=v33 --rounds 3 \
  --json "$OUT/prefix_v33_bs1.json" > "$OUT/prefix_v33_bs1.log" 2>&1
echo "[prefix rc=$? $(( $(date +%s) - t0 ))s]"; tail -45 "$OUT/prefix_v33_bs1.log"
