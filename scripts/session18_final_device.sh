#!/bin/bash
# Session 18's last device call (results/NOTES.md "Session 18"): hstem v5's GPU tests (the stem op on a half NHWC
# input), the stem op's per-layer timings (custom / torch, fp32 / fp16, the bench's batches), and ncu's per-kernel
# counters and warp stall reasons of the default fp32 plan at batch 1 (what stands in the way of 0.10 ms).
# Usage: scripts/session18_final_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_fp16.py -k "hstem" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -6
timeout 150 python3 -m pytest bench/test_ops.py -q -p no:cacheprovider --backends custom,torch --dtypes fp32,fp16 \
  -k op00 --benchmark-json="$OUT/stem_ops.json" --benchmark-columns=median,rounds > "$OUT/stem_ops.log" 2>&1
echo "[stem ops rc=$? $(( $(date +%s) - t0 ))s]"
python3 - "$OUT/stem_ops.json" <<'PY'
import json, sys
for b in sorted(json.load(open(sys.argv[1]))["benchmarks"], key=lambda b: b["name"]):
    print(f"stem op {b['name'][8:-1]:60s} median {b['stats']['median'] * 1e3:8.4f} ms")
PY
M="gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed"
M="$M,sm__warps_active.avg.pct_of_peak_sustained_active,dram__bytes.sum,lts__t_bytes.sum"
M="$M,sm__sass_thread_inst_executed_op_ffma_pred_on.sum,sm__sass_thread_inst_executed_op_fadd_pred_on.sum"
M="$M,sm__sass_thread_inst_executed_op_fmul_pred_on.sum,smsp__issue_active.avg.pct_of_peak_sustained_active"
M="$M,$(python3 scripts/ncu_kernels.py --stall-metrics)"
timeout 180 ncu --clock-control none --profile-from-start off --csv --page raw --metrics "$M" \
  python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 > /tmp/ncu_bs1.csv 2> "$OUT/ncu_bs1.err"
echo "[ncu rc=$? $(( $(date +%s) - t0 ))s]"
python3 scripts/ncu_kernels.py --summarize /tmp/ncu_bs1.csv > "$OUT/ncu_bs1.md" 2>&1 || tail -5 "$OUT/ncu_bs1.err"
gzip -c /tmp/ncu_bs1.csv > "$OUT/ncu_bs1.csv.gz"
cat "$OUT/ncu_bs1.md"
