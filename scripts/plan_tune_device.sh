#!/bin/bash
# plan_tune on the GPU (session 18; results/NOTES.md "Plan-time tuning inside the plan"): the e2e GPU tests with it
# (plan_tune=True, at batch <= PLAN_TUNE_MAX_BATCH), then interleaved A/B of plantune=0 / 1 over three instance pairs at
# batch 1, 2, 3 and two at batch 8: the instance spread with and without it, its plan time and what it changed
# (ab_*.json rows: plan_tuned). Session 18's call 3 ran it at 6369efe, when plan_tune was the default ("" = on).
# Usage: scripts/plan_tune_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "plan_tune or test_e2e_matches_onnxruntime or pdl_launches" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "plantune=0;plantune=1;plantune=0;plantune=1;plantune=0;plantune=1" --rounds 5 --json "$OUT/ab_bs123.json" > "$OUT/ab_bs123.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |planned|Error|error" "$OUT/ab_bs123.log" | sed -E 's/ launches 19.*//' | tail -40
timeout 120 python3 scripts/e2e_ab.py --dtype fp32 --batches 8 \
  --specs "plantune=0;plantune=1;plantune=1;plantune=0" --rounds 5 --json "$OUT/ab_bs8.json" > "$OUT/ab_bs8.log" 2>&1
echo "[ab8 rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |planned|Error|error" "$OUT/ab_bs8.log" | tail -10
