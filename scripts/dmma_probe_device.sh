#!/bin/bash
# Session 41 (results/NOTES.md "Session 41"): scripts/dmma_probe.py (DMMA rates; the 14x14 c24x16 expansion phase on
# the FP64 tensor cores) beside scripts/ex_phase_probe.py (the same phase as planned, FFMA), on one machine; then
# (NCU=1) a few phase kernels under Nsight Compute with 16 timed passes each (so that the phase, not the staging,
# fills the kernel): issue use, the pipes' activity, the stall reasons.
# Usage: [NCU=1] [NCU_KERNELS=a,b] scripts/dmma_probe_device.sh OUT
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
F='warning|Remark|^\s*$|\^|detected during|const int E4|int ex_ks'
timeout 120 python3 scripts/dmma_probe.py --json "$OUT/dmma_probe.json" 2>&1 | grep -Ev "$F" | grep -v ptxas |
  tee "$OUT/dmma_probe.log"
echo "[dmma_probe rc=${PIPESTATUS[0]}]"
timeout 120 python3 scripts/ex_phase_probe.py --json "$OUT/ex_phase_probe.json" 2>&1 | grep -Ev "$F" |
  tee "$OUT/ex_phase_probe.log" | grep -v ptxas | head -2
[ "${NCU:-0}" = 1 ] || exit 0
find_ncu || exit 1
KS=${NCU_KERNELS:-d16_w12,d4_w12,d16_w12_f32a,g111_d16,g111_d16_nold,g131_d16_f32a,g234_d16_f32a}
W="smsp__issue_active.avg.pct_of_peak_sustained_active smsp__inst_executed.sum gpu__time_duration.sum"
W="$W sm__pipe_tensor_op_dmma_cycles_active.avg.pct_of_peak_sustained_active sm__inst_executed_pipe_tensor_op_dmma.sum"
W="$W sm__pipe_fp64_cycles_active.avg.pct_of_peak_sustained_active smsp__inst_executed_pipe_lsu.sum"
W="$W l1tex__data_pipe_lsu_wavefronts_mem_shared.sum l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum"
W="$W sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active smsp__inst_executed_pipe_xu.sum"
M="$(ncu_metrics $W),$(python3 scripts/ncu_kernels.py --stall-metrics)"
timeout 200 "$NCU" --clock-control none --csv --page raw --metrics "$M" -k "regex:^($(echo "$KS" | tr , '|'))$" \
  python3 scripts/dmma_probe.py --passes 16 --only "$KS" > "$OUT/ncu_dmma.csv" 2> /tmp/ncu_dmma.err
echo "[ncu rc=$?]"; grep -v "^==PROF==" /tmp/ncu_dmma.err | grep -Ev "$F" | tail -3
python3 scripts/ncu_kernels.py --summarize "$OUT/ncu_dmma.csv" > "$OUT/ncu_dmma.md" 2>&1; tail -30 "$OUT/ncu_dmma.md"
python3 scripts/ncu_kernels.py --columns "$OUT/ncu_dmma.csv" "$(echo $W | tr ' ' ,)" | tee "$OUT/ncu_dmma_pipes.md"
