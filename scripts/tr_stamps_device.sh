#!/bin/bash
# Session 40 (results/NOTES.md "Session 40"), call 2: the size of a cluster-local fused pair of exdwpw6 blocks, in ONE
# device call:
#   1. scripts/tr_stamps.py on the committed batch-1 picks (fuse v42's plan: the same builds as v47's without the
#      trigger twins): each distinct one-cluster-per-tile exdwpw6 launch stamped at its TR and at TR + 2 / + 4
#      (tr_stamps.log, tr_stamps.json);
#   2. the hand-off probe (scripts/handoff_probe.py: plain / wait_end / wait_early chains at the 14x14 and 7x7 launch
#      shapes, no work and 400 FMA steps) on this GPU: what one launch boundary costs (probe.log, probe.json).
# Usage: scripts/tr_stamps_device.sh OUT   env: KCACHE, END (default 300)
OUT=${1:?usage: $0 OUT}
export END=${END:-300}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
timeout "$(left 200)" python3 scripts/tr_stamps.py --picks "$P" --json "$OUT/tr_stamps.json" > "$OUT/tr_stamps.log" 2>&1
echo "[tr_stamps rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^bs1|span|Error|error|skipped" "$OUT/tr_stamps.log" | cut -c1-400 | tail -60
timeout "$(left 90)" python3 scripts/handoff_probe.py --variants plain,wait_end,wait_early --shapes 7x16,3x40 \
  --iters 0,400 --json "$OUT/probe.json" > "$OUT/probe.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"
tail -20 "$OUT/probe.log"
