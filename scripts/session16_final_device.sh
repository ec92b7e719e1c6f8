#!/bin/bash
# Session 16's last device call: the GPU tests of the review commit (the block kernels' and e2e tests of fuse v13 -
# v15, the default e2e), then ncu's warp stall reasons for every kernel of the default fp32 plan at batch 1
# (scripts/ncu_kernels.py --stall-metrics / --summarize).
# Usage: scripts/session16_final_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py \
  -k "odd or v14 or t512 or wide or compiled" > "$OUT/tests_cblock.log" 2>&1
echo "[cblock tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_cblock.log" | tail -5
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "v15 or v14 or v13 or test_e2e_matches_onnxruntime or pdl_launches" > "$OUT/tests_e2e.log" 2>&1
echo "[e2e tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_e2e.log" | tail -5
M="gpu__time_duration.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,$(python3 scripts/ncu_kernels.py --stall-metrics)"
timeout 180 ncu --clock-control none --profile-from-start off --csv --page raw --metrics "$M" \
  python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 > /tmp/ncu_stall_bs1.csv 2> "$OUT/ncu_stall_bs1.err"
echo "[ncu rc=$? $(( $(date +%s) - t0 ))s]"
python3 scripts/ncu_kernels.py --summarize /tmp/ncu_stall_bs1.csv > "$OUT/ncu_stall_bs1.md" 2>&1 || tail -5 "$OUT/ncu_stall_bs1.err"
gzip -c /tmp/ncu_stall_bs1.csv > "$OUT/ncu_stall_bs1.csv.gz"
cat "$OUT/ncu_stall_bs1.md"
