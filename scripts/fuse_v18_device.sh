#!/bin/bash
# Session 17: fuse v18 (exdwpw6's reduce with its loads requested early) on the GPU: its tests, an interleaved A/B
# v17 / v18 at batch 1, 2 and 3, the per-phase stamps of v18's batch-1 plan, and ncu's warp stall reasons of it.
# Usage: scripts/fuse_v18_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py tests/test_custom_e2e.py \
  -k "v18 or odd_block_matches or test_e2e_matches_onnxruntime" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 150 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2,3 \
  --specs "fuse=v17;fuse=v18;fuse=v18;fuse=v17" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | tail -14
timeout 60 python3 scripts/cblock_sweep.py --batches 1 --fuse v18 --stamps --plan > "$OUT/stamps_plan.log" 2>&1
echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^bs|stage" "$OUT/stamps_plan.log" | sed -E 's/ hand-off.*//' | head -30
M="gpu__time_duration.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,$(python3 scripts/ncu_kernels.py --stall-metrics)"
MBV2_KERNELS=fuse=v18 timeout 120 ncu --clock-control none --profile-from-start off --csv --page raw --metrics "$M" \
  python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 > /tmp/ncu_stall_bs1.csv 2> "$OUT/ncu_stall_bs1.err"
echo "[ncu rc=$? $(( $(date +%s) - t0 ))s]"
python3 scripts/ncu_kernels.py --summarize /tmp/ncu_stall_bs1.csv > "$OUT/ncu_stall_bs1.md" 2>&1 || tail -5 "$OUT/ncu_stall_bs1.err"
gzip -c /tmp/ncu_stall_bs1.csv > "$OUT/ncu_stall_bs1.csv.gz"
