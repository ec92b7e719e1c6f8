#!/bin/bash
# Session 42 (results/NOTES.md "Session 42"): fuse v50 (the batch-1 exdwpw5 launches retiled, K.EXDWPW5_RETILE) in ONE
# device call:
#   1. the GPU tests: the retiled builds against float64 (tests/test_custom_exdw.py -k retile50) and v50 end to end
#      against ONNX Runtime at batch 1 / 2, eager and graph (tests/test_custom_e2e.py -k fuse_v50), on the committed
#      picks (tests.log);
#   2. the A/B at batch 1 on the committed picks: v47 (the default) / v48 / v50, 3 processes x 2 interleaved instances
#      each (ab.log, ab.json; scripts/e2e_ab.py, 5 rounds), and scripts/decide_bs1.py with base v47 (decide.txt);
#   3. where 60 s or more are left, scripts/exdwpw5_tile_probe.py: the three exdwpw5 launches in their tilings (v50's
#      among them), each against float64, then timed in plain and PDL chains (probe.log, probe.json);
#   4. the prefix times of v48 and v50 (prefix.tgz), while time is left.
# (Call 1 of session 42 ran the probe first; the order changed when the device budget ran short.)
# Usage: scripts/retile_device.sh OUT   env: KCACHE, END (default 560)
OUT=${1:?usage: $0 OUT}
export END=${END:-560}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
gpu_tests "tests/test_custom_exdw.py tests/test_custom_e2e.py" "retile50 or fuse_v50" 170
AB_VERSIONS="v47 v48 v50" staged_ab
if [ "$(left 150)" -ge 60 ]; then
  timeout "$(left 150)" python3 scripts/exdwpw5_tile_probe.py --json "$OUT/probe.json" --rounds 3 > "$OUT/probe.log" 2>&1
  echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"
  grep -E "^block|grid .* / |FAILED|Error" "$OUT/probe.log" | grep -vE "rel L2 .* ok$" | tail -30
fi
prefix_times v48 v50
