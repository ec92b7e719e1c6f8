#!/bin/bash
# Session 23 device call 2: exdwpw6's expansion phase under code-generation variants (scripts/ex_variant_stamps.py:
# full unroll, 2 / 8 pixels per lane tile, other k splits; each checked bitwise against the plan's launch) on every
# exdwpw6 launch of the batch-1 fp32 plan, then ncu's per-instruction samples of two of them with PDL off (call 1's
# ncu run crashed with PDL on: segfault before the first profiled kernel).
# Usage: scripts/ex_variants_device.sh OUT   env: NCU=0 skips the ncu run
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
timeout 300 python3 scripts/ex_variant_stamps.py --batch 1 --fuse v30 --rounds 3 --json "$OUT/ex_variants_bs1.json" \
  > "$OUT/ex_variants_bs1.log" 2>&1
echo "[variants rc=$? $(( $(date +%s) - t0 ))s]"; grep -v "stamped build" "$OUT/ex_variants_bs1.log" | tail -150
[ "${NCU:-1}" = 0 ] && exit 0
mkdir -p /tmp/ncuout; MBV2_PDL=0 NCU_T=170 KREGEX="exdwpw6_c36" NK=2 timeout 200 bash scripts/ncu_source_device.sh /tmp/ncuout
echo "[ncu script rc=$? $(( $(date +%s) - t0 ))s]"
cp /tmp/ncuout/* "$OUT/" 2>/dev/null
