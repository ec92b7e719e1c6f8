#!/bin/bash
# Session 12 device call: fuse v11 (larger-chunk exdwpw5 builds at batch 1 - 2) tested, A/B against v9, a
# custom-only fp32 e2e bench of the tree (the report under $OUT/bench_report.tgz), racecheck on the pwpool kernels,
# and the GPU test files the session-11 gpu_check cut off (persistent, model variants, nvtx, torch peer).
# Usage: scripts/v11_device.sh $OUT   env: BENCH_S, RACE_S, TAIL_S (seconds; 0 skips the step)
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
TEST_S=150 TEST_FILES="tests/test_custom_exdw.py tests/test_custom_e2e.py" TEST_K="big_chunk or test_e2e_matches" \
  AB_S=120 AB_BATCHES=1,2,4 AB_SPECS="fuse=v9;fuse=v11" bash scripts/head_device.sh "$OUT"
if [ "${BENCH_S:-200}" != 0 ]; then
  mkdir -p /tmp/bench
  timeout "${BENCH_S:-200}" make bench NOVENV=1 RUN_JSON=/tmp/bench/run.json \
    BENCH_ARGS="--backends custom --dtypes fp32 -k test_e2e" > /tmp/bench/bench.log 2>&1
  echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "passed|failed" /tmp/bench/bench.log | tail -2
  cp -r results/report /tmp/bench/report 2>/dev/null
  tar -czf "$OUT/bench_custom_fp32.tgz" -C /tmp bench
fi
if [ "${RACE_S:-100}" != 0 ]; then
  MBV2_NO_POOL=1 timeout "${RACE_S:-100}" compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 99 \
    python3 -m pytest tests/test_custom_kernels.py -m gpu -q -x -p no:cacheprovider -k "pointwise_pool and v9" \
    > "$OUT/racecheck_pwpool.log" 2>&1
  echo "[racecheck rc=$? $(( $(date +%s) - t0 ))s] $(grep -E 'RACECHECK SUMMARY' "$OUT/racecheck_pwpool.log" | sort | uniq -c | tr '\n' ' ')"
  grep -E "passed|failed" "$OUT/racecheck_pwpool.log" | tail -1
fi
if [ "${TAIL_S:-100}" != 0 ]; then
  timeout "${TAIL_S:-100}" python3 -m pytest -m "gpu and not slow" -q -p no:cacheprovider -rfE tests/test_custom_persistent.py \
    tests/test_gpu_model_variants.py tests/test_nvtx_gpu.py tests/test_torch_peer.py > "$OUT/tail_tests.log" 2>&1
  echo "[tail tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tail_tests.log" | tail -5
fi
