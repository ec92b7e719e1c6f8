#!/bin/bash
# Session 40 (results/NOTES.md "Session 40"), call 9: scripts/ex_phase_probe.py (the expansion phase alone, as planned
# and with its loads / FFMAs / butterfly taken out) and the same under Nsight Compute: per probe kernel the FMA pipes'
# instructions and active cycles, issue use and the stall reasons (the kernel holds the staging too, twice the phase).
# Usage: scripts/ex_phase_probe_device.sh OUT
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
F='warning|Remark|^\s*$|\^|detected during|const int E4|int ex_ks'
timeout 120 python3 scripts/ex_phase_probe.py --json "$OUT/ex_phase_probe.json" 2>&1 | grep -Ev "$F" |
  tee "$OUT/ex_phase_probe.log" | grep -v ptxas
find_ncu || exit 1
W="smsp__inst_executed_pipe_fmaheavy.sum smsp__inst_executed_pipe_fmalite.sum smsp__inst_executed_pipe_fma.sum"
W="$W sm__pipe_fmaheavy_cycles_active.avg.pct_of_peak_sustained_active sm__pipe_fma_cycles_active.avg.pct_of_peak_sustained_active"
W="$W smsp__inst_executed.sum smsp__issue_active.avg.pct_of_peak_sustained_active gpu__time_duration.sum"
M="$(ncu_metrics $W),$(python3 scripts/ncu_kernels.py --stall-metrics)"
timeout 200 "$NCU" --clock-control none --csv --page raw --metrics "$M" python3 scripts/ex_phase_probe.py \
  > "$OUT/ncu_probe.csv" 2> /tmp/ncu_probe.err
echo "[ncu rc=$?]"; grep -v "^==PROF==" /tmp/ncu_probe.err | grep -Ev "$F" | tail -3
python3 scripts/ncu_kernels.py --summarize "$OUT/ncu_probe.csv" > "$OUT/ncu_probe.md" 2>&1; tail -25 "$OUT/ncu_probe.md"
