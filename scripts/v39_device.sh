#!/bin/bash
# Session 27, call 2 (results/NOTES.md "Session 27"): fuse v39 (CE 960's c60x16 build: one cluster per row tile on the
# 7x7 blocks, a tuner candidate) and v40 (+ at batch 1 one cluster per row tile on every block) against v36. First an
# interleaved A/B at batch 1: v36 replaying the committed run's picks (the reference without the tuner's spread), v36
# tuned, v39 and v40 tuned (each instance checked against ONNX Runtime first); then the GPU tests of the c60x16 build
# (every configuration and fixed mode on the two 7x7 blocks and two made-up CE 960 blocks, against float64) and v39 /
# v40's tuned plans end to end against ONNX Runtime (graph, batch 1 - 3). KCACHE: a tarball of a build cache filled
# here (scripts/cache_prefill.py), unpacked into $MBV2_CACHE first. Steps stop at END seconds after the start.
# (The committed picks: session 26's run.json at 4cb8eb0, fuse v36, as extracted in call 1.)
# Usage: scripts/v39_device.sh OUT   env: KCACHE, AB_T / TEST_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
END=${END:-560}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
P=results/h200/session27/call1_picks/picks_bs1.json
S="fuse=v36,picks=$P;fuse=v40;fuse=v39;fuse=v36;fuse=v40;fuse=v36,picks=$P;fuse=v39;fuse=v40;fuse=v36,picks=$P"
S="$S;fuse=v39;fuse=v36"
ab_step "$S" 280 26
timeout $(left ${TEST_T:-300}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE -s tests/test_custom_cblock.py \
  tests/test_custom_e2e.py -k "v39 or (test_e2e_fuse_v30_matches_onnxruntime and graph and (v39 or v40))" \
  > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed|builds \(CH" "$OUT/tests.log" | cut -c1-400 | tail -14
