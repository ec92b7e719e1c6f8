#!/bin/bash
# Session 13 device call: linear v4 (linear_c8, the classifier as one cluster kernel above batch 8). The classifier
# alone per batch (scripts/linear_time.py: v3's path against linear_c8, each checked against float64), the GPU tests
# (linear, and the session-12 edits not yet run on a GPU: the big-chunk test at batch 1, the cooperative launches of
# net v2 / exdwpw10), each launch of the plans timed alone, and the interleaved e2e A/B (linear v3 / v4 / v3 again as
# the instance-spread control). Usage: scripts/linear_v4_device.sh $OUT   env: LT_S (linear_time seconds; 0 skips)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
if [ "${LT_S:-60}" != 0 ]; then
  timeout "${LT_S:-60}" python3 scripts/linear_time.py --json "$OUT/linear_time.json" > "$OUT/linear_time.log" 2>&1
  echo "[linear_time rc=$? $(( $(date +%s) - t0 ))s]"; cat "$OUT/linear_time.log"
fi
TEST_S=${TEST_S:-220} \
TEST_FILES="tests/test_custom_kernels.py tests/test_custom_exdw.py tests/test_custom_e2e.py tests/test_custom_persistent.py tests/test_custom_cblock.py" \
TEST_K="linear or big_chunk or test_e2e_matches or persistent or exdwpw10 or two_phase" \
PLT_S=${PLT_S:-100} PLT_BATCHES=${PLT_BATCHES:-16,64,256} PLT_SPECS="linear=v3;linear=v4" \
AB_S=${AB_S:-140} AB_BATCHES=${AB_BATCHES:-16,64,256} AB_SPECS="linear=v3;linear=v4;linear=v3" bash scripts/head_device.sh "$OUT"
