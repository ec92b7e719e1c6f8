#!/bin/bash
# Session 28 (results/NOTES.md "Session 28"; NOT run yet): the hand-off between launches at batch 1. First the probe
# (scripts/handoff_probe.py: chains of launches shaped like batch 1's, griddepcontrol.wait against per-tile flags and
# a persistent kernel), then the real thing (scripts/flag_handoff_ab.py: the batch-1 plan of the default kernels,
# replaying the committed run's picks, with its 13 exdwpw6 launches handing off through per-tile flags, checked
# bit-identical and timed against the plan). KCACHE: a build cache tarball (scripts/cache_prefill.py) unpacked into
# $MBV2_CACHE first. Usage: scripts/flags_device.sh OUT   env: KCACHE, PROBE_T / AB_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
timeout $(left ${PROBE_T:-120}) python3 scripts/handoff_probe.py --json "$OUT/handoff.json" > "$OUT/handoff.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "per (launch|step)|skipped|Error|error" "$OUT/handoff.log" | tail -50
P="$OUT/picks_bs1.json"
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" || exit 1
timeout $(left ${AB_T:-360}) python3 scripts/flag_handoff_ab.py --picks "$P" --rounds 9 --json "$OUT/flags.json" \
  > "$OUT/flags.log" 2>&1
echo "[flags rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(round|flag hand-off|bit-identical)|Error|error" "$OUT/flags.log" \
  | cut -c1-300 | tail -16
