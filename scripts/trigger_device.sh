#!/bin/bash
# Prepared in session 31, made a plan in session 32 (results/NOTES.md "Session 31" / "Session 32", NOT run yet): the PDL
# trigger after the input staging instead of after the last stores (kernels/block0.cu, conv.cu, cblock.cu
# PDL_TRIGGER_EARLY; fuse v45 runs batch 1's block0 v4, exdwpw5 and exdwpw6 launches on their early-trigger twins), so
# that each launch of the batch-1 plan is scheduled while the one before computes.
#   1. the hand-off probe: wait_end against wait_early (and plain) at the plan's shapes, no work and some work;
#   2. the A/B at batch 1 in one process: v42 / v45 interleaved, 4 instances each, both replaying the committed
#      batch-1 picks (the same launches but for the twins), logits checked against ONNX Runtime first;
#   3. the prefix times of both (which hand-offs gain);
#   4. GPU tests: v45 at batch 1 and 2 (eager and graph) against ONNX Runtime and bit-identical to v42 over poisoned
#      replays;
#   5. (session 33) the twins whose hand-off gained by the prefix times (scripts/trigger_mask.py), kept alone: an A/B
#      of v42 / v45 / v45 with only those (trig=), 3 instances each, appended to ab.log and merged into ab.json (arms
#      "all" for step 2's rows, "mask" for these); skipped if every twin or none gained.
# KCACHE: a build cache tarball (scripts/cache_prefill.py --run results/h200/run.json --trigger: the twins of the plan).
# Writes smi.txt probe.log ab.log ab.json prefix_v42.json prefix_v45.json tests.log under OUT.
# Usage: scripts/trigger_device.sh OUT   env: KCACHE, END (MBV2_PDL_TRIGGER=early in the environment: every build of
# both plans early; leave it unset)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
timeout "$(left 90)" python3 scripts/handoff_probe.py --chain 32 --shapes 7x16,3x40,14x8 --iters 0,400 \
  --variants plain,wait_end,wait_early --json /tmp/probe.json >> "$OUT/probe.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"; grep -E " (plain|wait_end|wait_early) " "$OUT/probe.log" | tail -18
P=/tmp/picks_v42_bs1.json
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" > /tmp/picks.log 2>&1 ||
  { cat /tmp/picks.log; exit 1; }
A="fuse=v42,picks=$P;fuse=v45,picks=$P"
ab_step "$A;$A;$A;$A" 150 14
for v in v42 v45; do
  timeout "$(left 90)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=$v --picks "$P" --rounds 3 \
    --json "$OUT/prefix_$v.json" > "/tmp/prefix_$v.log" 2>&1
  echo "[prefix $v rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix_$v.log")"
done
MBV2_TUNE_PICKS="$P" timeout "$(left 150)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_e2e.py -k "test_e2e_fuse_v45_trigger_twins_match_onnxruntime" > "$OUT/tests.log" 2>&1
echo "[tests v45 rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-300 | head -10
python3 scripts/trigger_mask.py "$OUT/prefix_v42.json" "$OUT/prefix_v45.json" --proper > /tmp/mask.log 2>&1
rc=$?; echo "[mask rc=$rc]"; cat /tmp/mask.log
M=$(tail -1 /tmp/mask.log)
if [ "$rc" -eq 0 ] && [ -n "$M" ] && [ -f "$OUT/ab.json" ]; then
  cp "$OUT/ab.json" /tmp/ab_all.json
  B="fuse=v42,picks=$P;fuse=v45,picks=$P;fuse=v45,picks=$P,trig=$M"
  timeout "$(left 100)" python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --rounds 5 --json /tmp/ab_mask.json \
    --specs "$B;$B;$B" > /tmp/ab_mask.log 2>&1
  echo "[ab mask rc=$? $(( $(date +%s) - t0 ))s]"
  { echo "== step 5: trig=$M"; cat /tmp/ab_mask.log; } >> "$OUT/ab.log"
  python3 scripts/ab_merge.py "$OUT/ab.json" all=/tmp/ab_all.json mask=/tmp/ab_mask.json
else
  echo "[ab mask skipped: no proper subset of the twins gained, or no step-2 A/B]"
fi
