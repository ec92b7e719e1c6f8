#!/bin/bash
# Session 25 (results/NOTES.md "Push reduce"): the cluster reduce with the projection's tile results pushed into the
# summing block's shared memory (kernels/cblock.cu EXDWPW6_PUSH, measured in call 9: no net gain), and the bulk-copy
# form prepared after it (fuse v37's red_pf 2: one bulk copy per pair of blocks on the receiver's mbarrier, NOT run on
# a GPU yet); scripts/ex_variant_stamps.py --set push, every variant checked bitwise against the plan's launch, on the
# batch-1 and batch-2 plans of fuse v36. On a cold machine the batch-1 planning alone took > 135 s (call 8).
# Usage: scripts/push_reduce_device.sh OUT   env: VAR_T (timeout per batch, s)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
for bs in 1 2; do
  timeout ${VAR_T:-220} python3 scripts/ex_variant_stamps.py --set push --batch $bs --fuse v36 --rounds 3 \
    --json "$OUT/push_bs$bs.json" > "$OUT/push_bs$bs.log" 2>&1
  echo "[bs$bs variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/push_bs$bs.log" | tail -45 | cut -c1-120
done
