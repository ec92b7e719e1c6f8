#!/bin/bash
# Session 42 (results/NOTES.md "Session 42"): scripts/exdwpw5_tile_probe.py in one device call: the batch-1 plan's
# three exdwpw5 launches in other tilings, each checked against float64 and timed in plain and PDL chains
# ($OUT/probe.log, probe.json).
# Usage: scripts/exdwpw5_tile_device.sh OUT   env: KCACHE, END (default 300), ROUNDS (default 3)
OUT=${1:?usage: $0 OUT}
export END=${END:-300}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
timeout "$(left 280)" python3 scripts/exdwpw5_tile_probe.py --json "$OUT/probe.json" --rounds "${ROUNDS:-3}" \
  > "$OUT/probe.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"
grep -vE "^  exdwpw5.*ok$" "$OUT/probe.log" | tail -40
