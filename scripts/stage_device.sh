#!/bin/bash
# Session 33 (results/NOTES.md "Session 33", NOT run yet): MBV2_STAGE=async, the staging loops of exdwpw5 (its input
# patch) and block0 v3 / v4 (their weights) by cp.async, all requested at once, instead of loops whose loads wait for
# each other (2 - 4 L2 round trips in a row per thread at batch 1). A process-wide option (it changes how conv.cu and
# block0.cu are compiled), so the A/B runs one process per arm:
#   1. A/B at batch 1, v42 on the committed picks, 6 processes alternating unset / async, 2 instances each (ab_arms):
#      ab.log, ab.json;
#   2. GPU tests with MBV2_STAGE=async: the exdwpw5 blocks and block0 against float64, end to end against ONNX Runtime
#      (tests.log);
#   3. the prefix times of v42 in each mode (prefix.tgz: which launches gain).
# KCACHE: a build cache tarball holding the async builds too (MBV2_STAGE=async scripts/cache_prefill.py
# results/h200/session33/stage_cache_list.txt). Writes smi.txt ab.log ab.json tests.log prefix.tgz under OUT.
# Usage: scripts/stage_device.sh OUT   env: KCACHE, END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
P=/tmp/picks_v42_bs1.json
bs1_picks "$P" || exit 1
ab_arms MBV2_STAGE "- async - async - async" "fuse=v42,picks=$P;fuse=v42,picks=$P"
MBV2_STAGE=async MBV2_TUNE_PICKS="$P" timeout "$(left 220)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_exdw.py tests/test_custom_block0.py tests/test_custom_e2e.py \
  -k "fused_block or big_chunk or split or stem_block or test_e2e_matches_onnxruntime or fuse_v26" \
  > "$OUT/tests.log" 2>&1
echo "[tests async rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-300 | head -10
mkdir -p /tmp/prefix
for arm in sync async; do
  MBV2_STAGE=$arm timeout "$(left 70)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=v42 --picks "$P" \
    --rounds 3 --json "/tmp/prefix/prefix_$arm.json" > "/tmp/prefix/prefix_$arm.log" 2>&1
  echo "[prefix $arm rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix/prefix_$arm.log")"
  tar -czf "$OUT/prefix.tgz" -C /tmp prefix
done
