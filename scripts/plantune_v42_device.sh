#!/bin/bash
# Prepared in session 27 (results/NOTES.md "Session 27", next leads; NOT run yet): whole-plan timing at batch 1 on the
# default (fuse v42). An interleaved A/B of v42 replaying the committed run's batch-1 picks (the reference), v42
# tuned, and v42 with plan_tune (each tuned launch's near alternatives timed inside the whole plan's graph, one launch
# at a time); then the v42 GPU tests session 27 did not finish (batch 3 end to end) and the v37 / v42 bulk-reduce
# block tests. KCACHE: a build cache tarball (scripts/cache_prefill.py) unpacked into $MBV2_CACHE first. (Session 28's
# hand-off probe and flag A/B are scripts/flags_device.sh.)
# Usage: scripts/plantune_v42_device.sh OUT   env: KCACHE, AB_T / TEST_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
P="$OUT/picks_v42_bs1.json"
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" || exit 1
S="fuse=v42,picks=$P;fuse=v42,plantune=1;fuse=v42;fuse=v42,plantune=1;fuse=v42,picks=$P;fuse=v42"
S="$S;fuse=v42,plantune=1;fuse=v42,picks=$P;fuse=v42;fuse=v42,plantune=1"
ab_step "$S" 240 22
timeout $(left ${TEST_T:-300}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  tests/test_custom_cblock.py -k "(test_e2e_fuse_v30_matches_onnxruntime and v42) or v37_bulk_reduce" \
  > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | cut -c1-300 | tail -10
