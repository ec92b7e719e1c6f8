#!/bin/bash
# Session 23 device call 3 (results/NOTES.md "Session 23"): the interleaved A/B at batch 1 / 2 of fuse v30 (the
# default), v31 (the head's pwpool_c8 + classifier as one kernel) and v32 (the padded expansion tiles), each
# instance's logits checked against ONNX Runtime first; the GPU tests of v31 and v32; then, in the time left, the
# expansion variants' stamps (scripts/ex_variant_stamps.py) on the batch-1 plan.
# Usage: scripts/session23_check_device.sh OUT   env: AB_T / TEST_T / VAR_T (timeouts, s)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
timeout ${AB_T:-230} python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v30;fuse=v31;fuse=v32;fuse=v32;fuse=v31;fuse=v30" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
timeout ${TEST_T:-200} python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v32 or v31" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|expansion modes" "$OUT/tests.log" | cut -c1-200 | tail -14
timeout ${VAR_T:-120} python3 scripts/ex_variant_stamps.py --batch 1 --fuse v30 --rounds 3 \
  --json "$OUT/ex_variants_bs1.json" > "$OUT/ex_variants_bs1.log" 2>&1
echo "[variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/ex_variants_bs1.log" | tail -60
