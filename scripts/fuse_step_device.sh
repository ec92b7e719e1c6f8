#!/bin/bash
# One step of the fuse versions on the GPU (session 17's calls 2, 4, 5 ran it as fuse_v17 / v18 / v19_device.sh; see
# results/NOTES.md "Session 17"): the GPU tests selected by K_EXPR, an interleaved A/B of fuse BASE / NEW at batch 1,
# 2 and 3 (two instance pairs), the per-phase stamps of NEW's batch-1 plan, and with NCU=1 ncu's warp stall reasons
# of that plan.
# Usage: [NCU=1] scripts/fuse_step_device.sh OUT BASE NEW K_EXPR
#   e.g. scripts/fuse_step_device.sh $OUT v19 v20 \
#          "v20 or v19 or v18 or v17 or odd_block_matches or test_e2e_matches_onnxruntime or pdl_launches"
OUT=${1:?usage: $0 OUT BASE NEW K_EXPR}
BASE=${2:?base fuse version}
NEW=${3:?new fuse version}
K_EXPR=${4:?pytest -k expression}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "$K_EXPR" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=$BASE;fuse=$NEW;fuse=$NEW;fuse=$BASE" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | tail -14
timeout 60 python3 scripts/cblock_sweep.py --batches 1 --fuse "$NEW" --stamps --plan > "$OUT/stamps_plan.log" 2>&1
echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^bs|stage" "$OUT/stamps_plan.log" | sed -E 's/ hand-off.*//' | head -30
if [ "${NCU:-0}" = 1 ]; then
  M="gpu__time_duration.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,$(python3 scripts/ncu_kernels.py --stall-metrics)"
  MBV2_KERNELS=fuse=$NEW timeout 120 ncu --clock-control none --profile-from-start off --csv --page raw --metrics "$M" \
    python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 > /tmp/ncu_stall_bs1.csv 2> "$OUT/ncu_stall_bs1.err"
  echo "[ncu rc=$? $(( $(date +%s) - t0 ))s]"
  python3 scripts/ncu_kernels.py --summarize /tmp/ncu_stall_bs1.csv > "$OUT/ncu_stall_bs1.md" 2>&1 || tail -5 "$OUT/ncu_stall_bs1.err"
  gzip -c /tmp/ncu_stall_bs1.csv > "$OUT/ncu_stall_bs1.csv.gz"
fi
