#!/bin/bash
# fuse v30 on the GPU (session 22; results/NOTES.md "Session 22"): its GPU tests (every expansion mode against float64
# and bitwise against v28's tiles of the same KS; the e2e plan against ONNX Runtime), an interleaved A/B at batch 1 / 2
# / 3 of v28 and v30 (the logits checked against ONNX Runtime first), each launch's marginal graph time with v30 at
# batch 1, and the per-phase clock stamps of v28's and v30's batch-1 exdwpw6 launches.
# Usage: scripts/ex_tiles_v30_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v30" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed|v30 expansion" "$OUT/tests.log" | tail -12
timeout 240 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v28;fuse=v30;fuse=v30;fuse=v28" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -16
timeout 60 python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=v30" --json "$OUT/prefix_bs1_v30.json" \
  > "$OUT/prefix_bs1_v30.log" 2>&1
echo "[prefix rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-110 "$OUT/prefix_bs1_v30.log" | tail -21
for f in v28 v30; do
  timeout 120 python3 scripts/cblock_sweep.py --stamps --plan --batches 1 --fuse $f --json "$OUT/stamps_bs1_$f.json" \
    > "$OUT/stamps_bs1_$f.log" 2>&1
  echo "[stamps $f rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/stamps_bs1_$f.log" | cut -c1-190 | tail -28
done
