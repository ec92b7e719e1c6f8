#!/usr/bin/env bash
# One device session for the custom backend: compile check, GPU tests, timings, (optionally) sanitizers.
# Usage (on the GPU machine, repo root): scripts/custom_device_run.sh OUTDIR [tests|time|sanitize ...]
set -u -o pipefail
OUT="${1:?outdir}"; shift
STEPS="${*:-tests time}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
for step in $STEPS; do
  case "$step" in
    tests)
      timeout 60 "$PY" -m pytest tests/test_kernels_compile.py -q -p no:cacheprovider 2>&1 | tail -2
      timeout "${TEST_TIMEOUT:-200}" "$PY" -m pytest tests/test_custom_kernels.py tests/test_custom_e2e.py -m gpu -q \
          --maxfail=40 -p no:cacheprovider -rf > "$OUT/test.log" 2>&1
      echo "tests exit $?"; grep -E "^(FAILED|ERROR)" "$OUT/test.log" | head -40; tail -2 "$OUT/test.log" ;;
    time)
      timeout "${TIME_TIMEOUT:-220}" "$PY" scripts/custom_time.py --json "$OUT/times.json" ${TIME_ARGS:-} > "$OUT/time.log" 2>&1
      echo "time exit $?"; grep -vE "^(bs|tiles|layout bs)" "$OUT/time.log" | tail -70 ;;
    sanitize)
      timeout "${SAN_TIMEOUT:-200}" scripts/custom_sanitize.sh "$OUT"; echo "sanitize exit $?" ;;
  esac
done
