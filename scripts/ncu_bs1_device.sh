#!/bin/bash
# Session 39 (results/NOTES.md "Session 39"): Nsight Compute at batch 1 fp32 (one eager run of the planned network,
# scripts/ncu_kernels.py; clocks left alone) on the committed picks, per kernel: time, DRAM / SM throughput,
# occupancy, L2 GB/s, GFLOP/s, issue-slot use and the warp stall reasons. One pass per case in $NCU_CASES (default
# "v47 v48 v49 v49s": the default, v48, v49 and v49 with MBV2_B0SPLIT=1) as ncu_<case>.md (+ .csv.gz, .err), all in
# $OUT/ncu.tgz (the device tool returns at most 8 files a call).
# Session 49: where TEST_K is set, device_lib.sh gpu_tests over TEST_FILES (default tests/test_custom_e2e.py) with -k
# TEST_K runs first, on the same picks (tests.log), capped at 150 s.
# Usage: scripts/ncu_bs1_device.sh OUT   env: KCACHE, END (default 560), NCU_CASES, TEST_K, TEST_FILES
OUT=${1:?usage: $0 OUT}
export END=${END:-560}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
find_ncu || exit 1
[ -n "$TEST_K" ] && gpu_tests "${TEST_FILES:-tests/test_custom_e2e.py}" "$TEST_K" 150
D=/tmp/ncu_out; mkdir -p "$D"
M="gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed"
M="$M,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active"
M="$M,dram__bytes.sum,lts__t_bytes.sum"
M="$M,sm__sass_thread_inst_executed_op_ffma_pred_on.sum,sm__sass_thread_inst_executed_op_fadd_pred_on.sum"
M="$M,sm__sass_thread_inst_executed_op_fmul_pred_on.sum,smsp__issue_active.avg.pct_of_peak_sustained_active"
M="$M,$(python3 scripts/ncu_kernels.py --stall-metrics)"
for c in ${NCU_CASES:-v47 v48 v49 v49s}; do
  [ "$(left 120)" -lt 60 ] && { echo "[ncu $c skipped: no time left]"; continue; }
  v=${c%s}; split=$([ "$v" != "$c" ] && echo 1 || echo 0)
  MBV2_B0SPLIT=$split MBV2_TUNE_PICKS="$P" timeout "$(left 120)" "$NCU" --clock-control none --profile-from-start off \
    --csv --page raw --metrics "$M" python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 \
    --kernels "fuse=$v" > "/tmp/ncu_$c.csv" 2> "$D/ncu_$c.err"
  echo "[ncu $c rc=$? $(( $(date +%s) - t0 ))s]"
  python3 scripts/ncu_kernels.py --summarize "/tmp/ncu_$c.csv" > "$D/ncu_$c.md" 2>&1 || tail -5 "$D/ncu_$c.err"
  gzip -c "/tmp/ncu_$c.csv" > "$D/ncu_$c.csv.gz"
  head -6 "$D/ncu_$c.md" | cut -c1-200
done
tar -czf "$OUT/ncu.tgz" -C /tmp ncu_out
