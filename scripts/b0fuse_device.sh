#!/bin/bash
# Session 38 (results/NOTES.md "Session 38"): fuse v49 (block0 inside the first exdwpw5 launch at batch 1) in ONE
# device call:
#   1. its GPU tests first (tests_split0.log, tests_split1.log): v49 end to end at batch 1 / 2, eager and graph,
#      against ONNX Runtime and bit-identical to v42's plan over 20 poisoned replays; with MBV2_B0SPLIT=1 at batch 1
#      (at batch 2 v49 is v48's plan);
#   2. the A/B at batch 1 on the committed picks: v47 (the default), v48, v49, 3 processes x 2 interleaved instances
#      (main_ab.log, main_ab.json) and scripts/decide_bs1.py with base v47 (decide.txt); then v48 / v49 in 4
#      processes, MBV2_B0SPLIT unset / 1 / unset / 1, 2 instances each (split_ab.log, split_ab.json);
#   3. where a version won by decide_bs1's rules and 430 s are left: the bench with it (run.json, bench.log); else
#      the prefix times of v48 and v49 (prefix.tgz), as long as time is left.
# Usage: scripts/b0fuse_device.sh OUT   env: KCACHE, END (default 560)
OUT=${1:?usage: $0 OUT}
export END=${END:-560}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
T49=tests/test_custom_e2e.py::test_e2e_fuse_v49_block0_fused_matches_onnxruntime
for split in 0 1; do  # (MBV2_B0SPLIT: v49's patch computed by both blocks of a cluster, or split between them)
  if [ $split = 0 ]; then set -- "$T49"; else set -- "$T49[1-eager]" "$T49[1-graph]"; fi
  MBV2_B0SPLIT=$split MBV2_TUNE_PICKS="$P" timeout "$(left 120)" python3 -m pytest -q -m gpu -p no:cacheprovider \
    -rfEs "$@" > "$OUT/tests_split$split.log" 2>&1
  echo "[tests split=$split rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests_split$split.log")"
  grep -E "^(FAILED|ERROR)|Error" "$OUT/tests_split$split.log" | cut -c1-300 | head -10
done
AB_VERSIONS="v47 v48 v49" staged_ab
for f in ab.json ab.log; do mv "$OUT/$f" "$OUT/main_$f"; done
ab_arms MBV2_B0SPLIT "- 1 - 1" "fuse=v48,picks=$P;fuse=v49,picks=$P;fuse=v48,picks=$P;fuse=v49,picks=$P"
for f in ab.json ab.log; do mv "$OUT/$f" "$OUT/split_$f"; done
E=$(tail -1 "$OUT/decide.txt")
[ "$(left 590)" -lt 430 ] && [ "${E#MBV2_KERNELS=}" != "$E" ] && { echo "[no time for the bench with '$E']"; E=none; }
case "$E" in
  MBV2_KERNELS=fuse=v*)
    echo "[bench with '$E', $(left 590) s left]"
    cp "$OUT/smi.txt" "$OUT/smi_ab.txt"
    END=$(left 590) env $E "$(dirname "$0")/bench_device.sh" "$OUT"
    ;;
  *) prefix_times v48 v49 ;;
esac
