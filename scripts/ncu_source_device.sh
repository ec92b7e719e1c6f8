#!/bin/bash
# Session 23 device call: where the exdwpw6 block kernels of the batch-1 fp32 plan spend their issue slots, per SASS
# instruction (ncu SourceCounters: warp-state samples and shared-memory wavefronts per instruction), to find what
# bounds their expansion phase (results/NOTES.md "Session 23"). One eager run of the default plan is profiled
# (scripts/ncu_kernels.py: tuning and a warm-up run happen before cudaProfilerStart); ncu leaves the clocks alone.
# Output: $OUT/ncu_src.tgz (the report, the source page of every profiled kernel as CSV, the details page),
# $OUT/ncu_details.txt. Usage: scripts/ncu_source_device.sh OUT   env: KREGEX (default exdwpw6), NK (default 13)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
ncu --version | tail -1
mkdir -p /tmp/ncs
timeout ${NCU_T:-300} ncu --clock-control none --profile-from-start off -k "regex:${KREGEX:-exdwpw6}" -c "${NK:-13}" \
  --section SourceCounters --section WarpStateStats --section SchedulerStats --section LaunchStats \
  --section Occupancy --section SpeedOfLight --section MemoryWorkloadAnalysis_Tables --warp-sampling-interval 0 \
  --import-source no -f -o /tmp/ncs/rep python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 \
  > /tmp/ncs/profile.log 2>&1
echo "[ncu rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "==PROF==|==ERROR==|==WARNING==" /tmp/ncs/profile.log | tail -5
ncu -i /tmp/ncs/rep.ncu-rep --page details > "$OUT/ncu_details.txt" 2>&1
echo "[details rc=$?]"
ncu -i /tmp/ncs/rep.ncu-rep --page details --csv > /tmp/ncs/details.csv 2>&1
ncu -i /tmp/ncs/rep.ncu-rep --page source --csv --print-source sass > /tmp/ncs/source_sass.csv 2> /tmp/ncs/source.err
echo "[source rc=$? $(wc -c < /tmp/ncs/source_sass.csv) bytes]"; head -c 600 /tmp/ncs/source_sass.csv; tail -3 /tmp/ncs/source.err
ncu -i /tmp/ncs/rep.ncu-rep --page raw --csv > /tmp/ncs/raw.csv 2>&1
tar -czf "$OUT/ncu_src.tgz" -C /tmp ncs
echo "[done $(( $(date +%s) - t0 ))s]"
