#!/bin/bash
# Prepared in session 31 (results/NOTES.md "Session 31", NOT run yet): the PDL trigger after the input staging instead
# of after the last stores (MBV2_PDL_TRIGGER=early: kernels/block0.cu, conv.cu, cblock.cu PDL_TRIGGER_EARLY), so that
# each launch of the batch-1 plan is scheduled while the one before computes.
#   1. the hand-off probe: wait_end against wait_early (and plain) at the plan's shapes, no work and some work;
#   2. the A/B at batch 1: one process per arm (the option changes how the kernel files are compiled: one value per
#      process), arms end / early interleaved, 3 instances each of fuse v42 replaying the committed batch-1 picks,
#      logits checked against ONNX Runtime first;
#   3. the prefix times of both arms (which hand-offs gain);
#   4. GPU tests with the early trigger: v42 end to end at batch 1 (eager and graph, bs1 picks replayed) against ONNX
#      Runtime and bit-identical over repeated poisoned runs.
# KCACHE: a build cache tarball (scripts/cache_prefill.py; .kcache/cache.tar.xz holds the early builds of the plan,
# results/h200/session31/trigger_cache_list.txt). Writes smi.txt probe.log ab.log ab.json prefix_end.json
# prefix_early.json tests.log under OUT.
# Usage: scripts/trigger_device.sh OUT   env: KCACHE, ARMS (default "end early end early end early end early"), END
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
timeout "$(left 90)" python3 scripts/handoff_probe.py --chain 32 --shapes 7x16,3x40,14x8 --iters 0,400 \
  --variants plain,wait_end,wait_early --json /tmp/probe.json >> "$OUT/probe.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"; grep -E " (plain|wait_end|wait_early) " "$OUT/probe.log" | tail -18
P=/tmp/picks_v42_bs1.json
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" > /tmp/picks.log 2>&1 ||
  { cat /tmp/picks.log; exit 1; }
S="fuse=v42,picks=$P;fuse=v42,picks=$P;fuse=v42,picks=$P"
ab_arms MBV2_PDL_TRIGGER "${ARMS:-end early end early end early end early}" "$S"
for arm in end early; do
  MBV2_PDL_TRIGGER=$arm timeout "$(left 90)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=v42 \
    --picks "$P" --rounds 3 --json "$OUT/prefix_$arm.json" > "/tmp/prefix_$arm.log" 2>&1
  echo "[prefix $arm rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix_$arm.log")"
done
MBV2_PDL_TRIGGER=early MBV2_TUNE_PICKS="$P" timeout "$(left 150)" python3 -m pytest -q -m gpu -p no:cacheprovider \
  -rfE tests/test_custom_e2e.py -k "test_e2e_fuse_v30_matches_onnxruntime and v42-1-" > "$OUT/tests.log" 2>&1
echo "[tests early rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-300 | head -10
