#!/bin/bash
# Session 37 (results/NOTES.md "Session 37"): the batch-1 staging versions against the default, in one device call,
# before the bench (session 37 timed v46, v47 and v47 stage=1+2+3 with base v46 at 0ac4ab8; since then):
#   1. A/B at batch 1 on the committed picks (bs1_start: the H100's own on an H100), 3 processes, each timing v46, v47
#      (the default) and v48 (v47 + the third exdwpw5 launch's patch twin) in 2 interleaved instances: 6 instances a
#      spec (ab.log, ab.json); scripts/decide_bs1.py with base v47 prints what the rules choose (decide.txt: its last
#      line, "MBV2_KERNELS=fuse=v48" or "none", is the bench's environment);
#   2. GPU tests: fuse v47 / v48 (both stage arms) and v46 end to end against ONNX Runtime and bit-identical to v42's
#      plan over poisoned replays, and the default's e2e test at batch 1 (tests.log);
#   3. the prefix times of v46, v47 and v48 (prefix.tgz), as long as time is left.
# Usage: scripts/staged_device.sh OUT   env: KCACHE, END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
staged_ab
MBV2_TUNE_PICKS="$P" timeout "$(left 150)" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs \
  tests/test_custom_e2e.py -k "fuse_v47 or fuse_v46 or test_e2e_matches_onnxruntime[1-" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | cut -c1-300 | head -10
prefix_times v46 v47 v48
