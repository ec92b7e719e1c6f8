#!/bin/bash
# Session 42 (results/NOTES.md "Session 42"): fuse v50 (the first two batch-1 exdwpw5 launches on 7x7 tiles, one block
# per SM; K.EXDWPW5_RETILE) tested, A/B'd and, where it wins, benched, in ONE device call (machines were scarce).
# Session 43: with v51 / v52 (one of those launches retiled alone) in the tests and the A/B:
#   1. the GPU tests: the retiled builds against float64 (tests/test_custom_exdw.py -k retile50) and v50 - v52 end to
#      end against ONNX Runtime at batch 1 / 2, eager and graph (tests/test_custom_e2e.py -k fuse_v50), on the
#      committed picks (tests.log);
#   2. the A/B at batch 1 on the committed picks: AB_VERSIONS (default v47 (the default) / v48 / v51 / v52), 3
#      processes x 2 interleaved instances each (ab.log, ab.json), and scripts/decide_bs1.py against the default
#      (device_lib.sh staged_ab; v47 when session 43 ran this, v51 since) (decide.txt);
#   3. scripts/bench_device.sh (run.json, bench.log) with decide.txt's environment ("none", or failed tests in step 1:
#      the code's default), in the time left before END. Session 43: where decide.txt says "none" (and
#      BENCH_DEFAULT is unset) or NO_BENCH is set, no bench (the default's run is committed): each A/B version's
#      prefix times instead (prefix.tgz).
# Session 44: TEST_FILES / TEST_K pick step 1's tests (default the retiling's above), e.g. fuse v53's head:
#   TEST_FILES=tests/test_custom_e2e.py TEST_K="head_fc and v53" AB_VERSIONS="v51 v53" NO_BENCH=1
# Usage: scripts/retile_bench_device.sh OUT   env: KCACHE, END (default 590), AB_VERSIONS, BENCH_DEFAULT, NO_BENCH,
#   TEST_FILES, TEST_K
OUT=${1:?usage: $0 OUT}
export END=${END:-590}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
gpu_tests "${TEST_FILES:-tests/test_custom_exdw.py tests/test_custom_e2e.py}" "${TEST_K:-retile50 or fuse_v50}" 120
trc=$?
AB_VERSIONS=${AB_VERSIONS:-v47 v48 v51 v52} staged_ab
E=$(tail -1 "$OUT/decide.txt")
case "$E" in none) E= ;; MBV2_KERNELS=fuse=v*) ;; *) echo "[decide: unexpected '$E': the default]"; E= ;; esac
[ "$trc" -ne 0 ] && [ -n "$E" ] && { echo "[tests failed: the bench runs the default, not '$E']"; E=; }
if [ -n "$NO_BENCH" ] || { [ -z "$E" ] && [ -z "$BENCH_DEFAULT" ]; }; then  # session 43: no winner (the default's run
  # is committed) or NO_BENCH (e.g. on a GPU whose run is not the one to replace): prefix times instead of the bench
  echo "[no bench (NO_BENCH='$NO_BENCH', decide '${E:-none}'); prefix times instead]"
  prefix_times ${AB_VERSIONS:-v47 v48 v51 v52}
  exit 0
fi
echo "[bench with '${E:-the default}', $(left 590) s left]"
cp "$OUT/smi.txt" "$OUT/smi_ab.txt"
END=$(left 590) env $E "$(dirname "$0")/bench_device.sh" "$OUT"
