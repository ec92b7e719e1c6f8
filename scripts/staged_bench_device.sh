#!/bin/bash
# Session 37: scripts/staged_device.sh's A/B and decision, then the committed bench with what won, in ONE device call
# (for sessions where machines are scarce: a second call may find the machine given back and cost a refused start):
#   1. A/B at batch 1 on the committed picks, 3 processes, each timing v46, v47 (the default) and v48 in 2 interleaved
#      instances (ab.log, ab.json); scripts/decide_bs1.py with base v47 (decide.txt); (session 37 ran this at 0ac4ab8
#      with v46, v47 and v47 stage=1+2+3, base v46);
#   2. scripts/bench_device.sh (run.json, bench.log) with decide.txt's environment ("none": the code's default, v47),
#      in the time left before END.
#   3. where 40 s or more are left, v47 / v48's GPU tests (tests.log; else they wait for scripts/staged_device.sh).
#      The bench checks every backend's logits against ONNX Runtime at every batch before timing.
# Usage: scripts/staged_bench_device.sh OUT   env: KCACHE, END (default 590)
OUT=${1:?usage: $0 OUT}
export END=${END:-590}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
staged_ab
E=$(tail -1 "$OUT/decide.txt")
case "$E" in none) E= ;; MBV2_KERNELS=fuse=v*) ;; *) echo "[decide: unexpected '$E': the default]"; E= ;; esac
echo "[bench with '${E:-the default}', $(left 590) s left]"
cp "$OUT/smi.txt" "$OUT/smi_ab.txt"
END=$(left 590) env $E "$(dirname "$0")/bench_device.sh" "$OUT"
rc=$?
if [ "$(left 60)" -ge 40 ]; then  # (the H100's bench took 389 s in session 35: time for v47's tests may be left)
  MBV2_TUNE_PICKS="$P" timeout "$(left 120)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
    tests/test_custom_e2e.py -k "fuse_v47" > "$OUT/tests.log" 2>&1
  echo "[tests rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
fi
exit $rc
