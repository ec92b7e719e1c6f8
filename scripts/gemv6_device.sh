#!/bin/bash
# Session 40 (results/NOTES.md "Session 40"): linear v6 (the classifier GEMV with x staged once per block in shared
# memory after its PDL wait) in ONE device call:
#   1. its GPU tests (tests.log): every linear case of tests/test_custom_kernels.py with v6 (float64, NaN-poisoned
#      outputs; the odd shapes, a multi-pass IN, batch 1 by PDL), and v6 end to end at batch 1 / 2, eager and graph,
#      against ONNX Runtime, bit-identical to linear v5's plan (tests/test_custom_e2e.py), on the committed picks;
#   2. the A/B at batch 1 on the committed picks: the default (fuse v47, linear v5) against linear v6, 3 processes x 2
#      interleaved instances each (ab.log, ab.json; scripts/e2e_ab.py, 5 rounds);
#   3. the prefix times of both (prefix.tgz), while time is left.
# Usage: scripts/gemv6_device.sh OUT   env: KCACHE, END (default 400)
OUT=${1:?usage: $0 OUT}
export END=${END:-400}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
MBV2_TUNE_PICKS="$P" timeout "$(left 150)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_kernels.py -k "linear and v6" tests/test_custom_e2e.py::test_e2e_linear_v6_staged_gemv_matches_onnxruntime \
  > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.log" | cut -c1-300 | head -10
s="fuse=v47,picks=$P;fuse=v47,linear=v6,picks=$P"
ab_arms MBV2_STAGE "- - -" "$s;$s"
mkdir -p /tmp/prefix
for v in v5 v6; do
  [ "$(left 60)" -lt 30 ] && { echo "[prefix linear=$v skipped: no time left]"; continue; }
  timeout "$(left 60)" python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=v47,linear=$v" --picks "$P" \
    --rounds 3 --json "/tmp/prefix/prefix_linear_$v.json" > "/tmp/prefix/prefix_linear_$v.log" 2>&1
  echo "[prefix linear=$v rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix/prefix_linear_$v.log")"
  tar -czf "$OUT/prefix.tgz" -C /tmp prefix
done
