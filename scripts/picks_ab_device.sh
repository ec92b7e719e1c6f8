#!/bin/bash
# Prepared in session 26 (results/NOTES.md "tune picks replay"; NOT run yet): the first GPU use of tune_picks. Its GPU
# tests (a backend replaying another's picks plans the same launches untimed, bit-identical logits), then the
# committed run's batch-1 picks (results/h200/run.json, fuse v36) replayed in an interleaved A/B of v36 / v37 / v38:
# each instance plans without the tuner's spread (v37 times only its reduce stage), so the spread left is the
# measurement's and the differences are the versions'. Steps stop at END seconds after the start.
# Usage: scripts/picks_ab_device.sh OUT   env: TEST_T / AB_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
left() { local l=$(( ${END:-560} - ($(date +%s) - t0) )); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$OUT/smi.txt"
# (results/h200/run.json is session 27's v42 run since 9e585bc: session 26's picks, as this script extracted them in
# session 27's call 1, are committed)
P=results/h200/session27/call1_picks/picks_bs1.json
timeout $(left ${TEST_T:-240}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "tune_picks" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -6
S="fuse=v36,picks=$P;fuse=v37,picks=$P;fuse=v38,picks=$P;fuse=v36;fuse=v38,picks=$P;fuse=v37,picks=$P"
S="$S;fuse=v36,picks=$P;fuse=v36,picks=$P;fuse=v37,picks=$P;fuse=v38,picks=$P;fuse=v36"
ab_step "$S" 300 26
