#!/bin/bash
# Session 27, call 4 (results/NOTES.md "Session 27"): fuse v42 (v36 + one cluster per row tile first at batch 1 +
# v37's bulk-copy reduce stage; the new default) and v41 (without the reduce stage) against v36 replaying the
# committed picks, an interleaved A/B at batch 1; then the full bench with the default (run.json, bench.log); then
# v41 / v42's tuned plans end to end against ONNX Runtime. KCACHE: a build cache tarball (scripts/cache_prefill.py)
# unpacked into $MBV2_CACHE first. Steps stop at END seconds after the start.
# (The committed picks: session 26's run.json at 4cb8eb0, fuse v36, as extracted in call 1.)
# Usage: scripts/v42_device.sh OUT   env: KCACHE, AB_T / BENCH_T / TEST_T (timeouts, s), END (default 585)
OUT=${1:?usage: $0 OUT}
END=${END:-585}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
P0=results/h200/session27/call1_picks/picks_bs1.json
S="fuse=v36,picks=$P0;fuse=v42;fuse=v41;fuse=v42;fuse=v36,picks=$P0;fuse=v41;fuse=v42;fuse=v36,picks=$P0"
ab_step "$S" 100 10 "^ab |Error|error"
set -o pipefail
timeout $(left ${BENCH_T:-470}) make bench NOVENV=1 RUN_JSON=$OUT/run.json \
  BENCH_ARGS="--backends custom,cudnn,torch --compile --dtypes fp32,fp16" 2>&1 | tee "$OUT/bench.log" | grep -E \
  "passed|failed|error" | tail -4
echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"
timeout $(left ${TEST_T:-120}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_e2e.py \
  -k "test_e2e_fuse_v30_matches_onnxruntime and graph and (v41 or v42)" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|builds \(CH" "$OUT/tests.log" | cut -c1-300 | tail -10
