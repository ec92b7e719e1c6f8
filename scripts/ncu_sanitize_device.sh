#!/bin/bash
# Session 12 device call: ncu per kernel of the fp32 plans (batch 1 with fuse v9 = the default and fuse v10; batch 64,
# the default) with achieved L2 GB/s, GFLOP/s and issue-slot use (scripts/ncu_kernels.py --summarize), then
# compute-sanitizer memcheck + racecheck over sessions 11-12's kernels (scripts/custom_sanitize.sh ONLY_S11=1).
# Usage: scripts/ncu_sanitize_device.sh $OUT   env: NCU_S (seconds per ncu run, 0: skip), SAN (0: skip the sanitizer)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
t0=$(date +%s)
M="gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed"
M="$M,sm__warps_active.avg.pct_of_peak_sustained_active,dram__bytes.sum,lts__t_bytes.sum"
M="$M,sm__sass_thread_inst_executed_op_ffma_pred_on.sum,sm__sass_thread_inst_executed_op_fadd_pred_on.sum"
M="$M,sm__sass_thread_inst_executed_op_fmul_pred_on.sum,smsp__issue_active.avg.pct_of_peak_sustained_active"
NCU="ncu --clock-control none --profile-from-start off --csv --page raw --metrics $M"
if [ "${NCU_S:-90}" != 0 ]; then  # raw CSVs / stderr to /tmp/ncu (tarred: $OUT brings back at most 8 files)
  mkdir -p /tmp/ncu
  for run in "1 fuse=v9" "1 fuse=v10" "64 "; do
    set -- $run; b=$1; k=${2:-}; tag="bs${b}${k:+_${k//=/}}"
    timeout ${NCU_S:-90} $NCU python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch $b ${k:+--kernels $k} \
      > /tmp/ncu/ncu_$tag.csv 2> /tmp/ncu/ncu_$tag.err
    echo "[ncu $tag rc=$? $(( $(date +%s) - t0 ))s]"
    python3 scripts/ncu_kernels.py --summarize /tmp/ncu/ncu_$tag.csv > $OUT/ncu_$tag.md 2>&1 || tail -5 /tmp/ncu/ncu_$tag.err
    cat $OUT/ncu_$tag.md
  done
  tar -czf $OUT/ncu_raw.tgz -C /tmp ncu
fi
if [ "${SAN:-1}" != 0 ]; then
  mkdir -p /tmp/san
  ONLY_S11=1 MEM_TIMEOUT=${MEM_TIMEOUT:-75} RACE_TIMEOUT=${RACE_TIMEOUT:-75} bash scripts/custom_sanitize.sh /tmp/san
  echo "[sanitizer rc=$? $(( $(date +%s) - t0 ))s]"
  tar -czf $OUT/sanitizer_logs.tgz -C /tmp san
fi
