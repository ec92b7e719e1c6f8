#!/bin/bash
# Prepared in session 31, made a plan in session 32, extended in session 33 (results/NOTES.md "Session 31" - "Session
# 33", NOT run yet): the PDL trigger placed elsewhere at batch 1. fuse v45 runs block0 v4, exdwpw5 and exdwpw6
# launches on early-trigger twins (griddepcontrol.launch_dependents right after the input staging, kernels/block0.cu,
# conv.cu, cblock.cu PDL_TRIGGER_EARLY), so that each launch is scheduled while the one before computes; fuse v46 adds
# pwpool_c8 by PDL after the last exdwpw6 on its exit twin (no explicit trigger: PDL_TRIGGER_AT_EXIT).
#   1. the A/B at batch 1 in one process, 4 interleaved instances each, all replaying the committed batch-1 picks (the
#      same launches but for the twins), logits checked against ONNX Runtime first: v42 / v45 / v46 / v46 without
#      v45's twins (trig=: v42 + the head's hand-off alone);
#   2. GPU tests: v45 and v46 at batch 1 and 2 (eager and graph) against ONNX Runtime, bit-identical to v42 over
#      poisoned replays;
#   3. the prefix times of v42, v45 and v46 (which hand-offs gain), into prefix.tgz;
#   4. the twins whose hand-off gained by the prefix times (scripts/trigger_mask.py), kept alone: an A/B of v42 / v45 /
#      v45 with only those (trig=), 3 instances each, appended to ab.log and merged into ab.json (arms "all" for step
#      1's rows, "mask" for these); skipped if every twin or none gained;
#   5. the hand-off probe: wait_end against wait_early (and plain) at the plan's shapes, no work and some work.
# KCACHE: a build cache tarball (scripts/cache_prefill.py --run results/h200/run.json --trigger: the plan's twins).
# Writes smi.txt ab.log ab.json tests.log prefix.tgz probe.log under OUT (6 files).
# Usage: scripts/trigger_device.sh OUT   env: KCACHE, END (default 560; MBV2_PDL_TRIGGER=early in the environment: every
# build of the plans early; leave it unset)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
ab_step "$SPECS4;$SPECS4;$SPECS4;$SPECS4" 170 18
MBV2_TUNE_PICKS="$P" timeout "$(left 150)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_e2e.py -k "fuse_v45_trigger_twins or fuse_v46_pwpool_exit" > "$OUT/tests.log" 2>&1
echo "[tests v45 v46 rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-300 | head -10
mkdir -p /tmp/prefix
for v in v42 v45 v46; do
  timeout "$(left 70)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=$v --picks "$P" --rounds 3 \
    --json "/tmp/prefix/prefix_$v.json" > "/tmp/prefix/prefix_$v.log" 2>&1
  echo "[prefix $v rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix/prefix_$v.log")"
  tar -czf "$OUT/prefix.tgz" -C /tmp prefix
done
python3 scripts/trigger_mask.py /tmp/prefix/prefix_v42.json /tmp/prefix/prefix_v45.json --proper > /tmp/mask.log 2>&1
rc=$?; echo "[mask rc=$rc]"; cat /tmp/mask.log
M=$(tail -1 /tmp/mask.log)
if [ "$rc" -eq 0 ] && [ -n "$M" ] && [ -f "$OUT/ab.json" ]; then
  cp "$OUT/ab.json" /tmp/ab_all.json
  B="fuse=v42,picks=$P;fuse=v45,picks=$P;fuse=v45,picks=$P,trig=$M"
  timeout "$(left 90)" python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --rounds 5 --json /tmp/ab_mask.json \
    --specs "$B;$B;$B" > /tmp/ab_mask.log 2>&1
  echo "[ab mask rc=$? $(( $(date +%s) - t0 ))s]"
  { echo "== step 4: trig=$M"; cat /tmp/ab_mask.log; } >> "$OUT/ab.log"
  python3 scripts/ab_merge.py "$OUT/ab.json" all=/tmp/ab_all.json mask=/tmp/ab_mask.json
else
  echo "[ab mask skipped: no proper subset of the twins gained, or no step-1 A/B]"
fi
timeout "$(left 60)" python3 scripts/handoff_probe.py --chain 32 --shapes 7x16,3x40,14x8 --iters 0,400 \
  --variants plain,wait_end,wait_early --json /tmp/probe.json >> "$OUT/probe.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"; grep -E " (plain|wait_end|wait_early) " "$OUT/probe.log" | tail -18
