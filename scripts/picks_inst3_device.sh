#!/bin/bash
# Session 27, call 3 (results/NOTES.md "Session 27"): is call 1's fastest tuned v36 instance (0.1081 ms; its picks in
# results/h200/session27/picks_bs1_inst3.json) a plan that replays as fast, and is its 14 -> 7 block (c36x16, one
# cluster per tile) the reason? An interleaved A/B at batch 1 of v36 replaying the committed picks (P0), the instance's
# picks (P3), P3 with the committed 14 -> 7 picks (P3b), v37 on P3 (only its reduce stage timed) and v36 with
# plan_tune (the near alternatives timed inside the plan); then prefix times of P0 and P3 (what each launch adds);
# then the default's e2e GPU tests. KCACHE: a build cache tarball (scripts/cache_prefill.py) unpacked into
# $MBV2_CACHE first. Steps stop at END seconds after the start.
# (The committed picks: session 26's run.json at 4cb8eb0, fuse v36, as extracted in call 1.)
# Usage: scripts/picks_inst3_device.sh OUT   env: KCACHE, AB_T / PF_T / TEST_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
END=${END:-560}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
D=results/h200/session27
P0=results/h200/session27/call1_picks/picks_bs1.json P3=$D/picks_bs1_inst3.json P3b=$D/picks_bs1_inst3_b13committed.json
S="fuse=v36,picks=$P0;fuse=v36,picks=$P3;fuse=v36,picks=$P3b;fuse=v37,picks=$P3;fuse=v36,plantune=1"
S="$S;fuse=v36,picks=$P3;fuse=v36,picks=$P0;fuse=v36,plantune=1;fuse=v37,picks=$P3;fuse=v36,picks=$P3b"
S="$S;fuse=v36,picks=$P0;fuse=v36,picks=$P3"
ab_step "$S" 200 14 "^ab |Error|error"
for p in P0 P3; do
  timeout $(left ${PF_T:-60}) python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=v36 --rounds 3 \
    --picks "${!p}" --json "$OUT/prefix_$p.json" > "$OUT/prefix_$p.log" 2>&1
  echo "[prefix $p rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "plan graph" "$OUT/prefix_$p.log"
done
timeout $(left ${TEST_T:-300}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "test_e2e_matches_onnxruntime or pdl_launches or tune_picks" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | cut -c1-300 | tail -10
