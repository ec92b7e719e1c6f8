#!/bin/bash
# Session 34 (results/NOTES.md "Session 34"): session 33's two batch-1 leads in ONE device call, for sessions where
# machines are scarce (each refused start costs ~90 s of the budget): MBV2_STAGE=async (it replaces session 33's
# stage_device.sh, whose A/B, tests and prefix times it holds) and the PDL hand-offs of fuse v45 / v46
# (scripts/trigger_device.sh), as a 2 x 4 design:
#   1. A/B at batch 1 on the committed picks, 6 processes alternating MBV2_STAGE unset / async, each timing v42, v45,
#      v46 and v46 trig= (v42 + the head's hand-off alone), 2 interleaved instances each (ab.log, ab.json: per arm and
#      spec, scripts/ab_merge.py), kept as $MBV2_CACHE/combo_ab.json for scripts/bench_decided.sh (the next call, on
#      the same warm machine); scripts/decide_bs1.py prints what the rules choose;
#   2. GPU tests under MBV2_STAGE=async: the exdwpw5 blocks and block0 against float64, end to end against ONNX
#      Runtime (tests.log);
#   3. GPU tests of v45 and v46 (unset), appended to tests.log;
#   4. the prefix times of v42 unset / async and of v45 / v46 unset (prefix.tgz), as long as time is left.
# The two scripts' remaining steps (the twin mask A/B, the probe) wait for a later call.
# KCACHE: the build cache tarball (the session-34 tarball: the async twins too).
# Writes smi.txt ab.log ab.json tests.log prefix.tgz under OUT.
# Usage: scripts/combo_device.sh OUT   env: KCACHE, END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
ab_arms MBV2_STAGE "- async - async - async" "$SPECS4;$SPECS4"
cp "$OUT/ab.json" "$MBV2_CACHE/combo_ab.json" && python3 scripts/decide_bs1.py "$OUT/ab.json"  # for bench_decided.sh
MBV2_STAGE=async MBV2_TUNE_PICKS="$P" timeout "$(left 200)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_exdw.py tests/test_custom_block0.py tests/test_custom_e2e.py \
  -k "fused_block or big_chunk or split or stem_block or test_e2e_matches_onnxruntime or fuse_v26" \
  > "$OUT/tests.log" 2>&1
echo "[tests async rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
MBV2_TUNE_PICKS="$P" timeout "$(left 120)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_e2e.py -k "fuse_v45_trigger_twins or fuse_v46_pwpool_exit" > /tmp/tests_trig.log 2>&1
echo "[tests v45 v46 rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 /tmp/tests_trig.log)"
{ echo "== v45 / v46 tests (MBV2_STAGE unset)"; cat /tmp/tests_trig.log; } >> "$OUT/tests.log"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-300 | head -10
mkdir -p /tmp/prefix
for arm in sync:v42 async:v42 sync:v45 sync:v46; do
  s=${arm%%:*} v=${arm##*:}
  [ "$(left 60)" -lt 30 ] && { echo "[prefix $s $v skipped: no time left]"; continue; }
  MBV2_STAGE=$s timeout "$(left 60)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=$v --picks "$P" \
    --rounds 3 --json "/tmp/prefix/prefix_${s}_$v.json" > "/tmp/prefix/prefix_${s}_$v.log" 2>&1
  echo "[prefix $s $v rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix/prefix_${s}_$v.log")"
  tar -czf "$OUT/prefix.tgz" -C /tmp prefix
done
