#!/bin/bash
# Session 41 (results/NOTES.md "Session 41"): scripts/dmma_probe.py (DMMA rates; the 14x14 c24x16 expansion phase on
# the FP64 tensor cores) beside scripts/ex_phase_probe.py (the same phase as planned, FFMA), on one machine.
# Usage: scripts/dmma_probe_device.sh OUT
OUT=${1:?usage: $0 OUT}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/smi.txt"
F='warning|Remark|^\s*$|\^|detected during|const int E4|int ex_ks'
timeout 120 python3 scripts/dmma_probe.py --json "$OUT/dmma_probe.json" 2>&1 | grep -Ev "$F" | tee "$OUT/dmma_probe.log"
echo "[dmma_probe rc=${PIPESTATUS[0]}]"
timeout 120 python3 scripts/ex_phase_probe.py --json "$OUT/ex_phase_probe.json" 2>&1 | grep -Ev "$F" |
  tee "$OUT/ex_phase_probe.log" | grep -v ptxas | head -4
