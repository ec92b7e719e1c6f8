#!/bin/bash
# fuse v27 / v28 on the GPU (session 21; results/NOTES.md "Session 21"): an interleaved A/B at batch 1 / 2 / 3 of v26
# (plain launches but the GEMV), v27 (the exdwpw6 blocks by programmatic dependent launch) and v28 (the exdwpw5 blocks
# too), the logits of each checked against ONNX Runtime first; their GPU tests (against ORT, bitwise against the same
# plan launched plainly) and v26's; each launch's marginal graph time with v28 at batch 1.
# Usage: scripts/pdl_v27_v28_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 240 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v26;fuse=v27;fuse=v28;fuse=v28;fuse=v26" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_exdw.py tests/test_custom_e2e.py \
  -k "v27_v28 or split26 or fuse_v26 or pdl_launches or linear_v5_pdl" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 60 python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=v28" --json "$OUT/prefix_bs1_v28.json" \
  > "$OUT/prefix_bs1_v28.log" 2>&1
echo "[prefix rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-100 "$OUT/prefix_bs1_v28.log" | tail -21
