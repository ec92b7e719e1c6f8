#!/usr/bin/env bash
# compute-sanitizer memcheck + racecheck over the custom backend's kernels (every version).
#
# Runs a subset of tests/test_custom_kernels.py that touches every kernel and every code path
# (odd shapes: partial tiles, C % 4 != 0, 1x1 spatial; distinct layers at batch 1 and 3) with
# MBV2_NO_POOL=1 so each CuPy array is its own cudaMalloc and memcheck sees exact bounds.
# Usage: scripts/custom_sanitize.sh [outdir]   (logs: outdir/memcheck.log, outdir/racecheck.log)
set -u -o pipefail
OUT="${1:-.}"
PY="${PYTHON:-python3}"
CS="${COMPUTE_SANITIZER:-compute-sanitizer}"
export MBV2_NO_POOL=1 PYTHONUNBUFFERED=1
# memcheck: odd shapes + add + distinct layers at batch 1 (every kernel version)
MEM_K='odd or test_add or (distinct and bs1-)'
# racecheck (shared-memory hazards; slow): odd shapes below batch 64 (every kernel, every version) + the 7x7 layers at batch 1
RACE_K='(odd and not bs64) or (distinct and bs1- and 7x7)'
rc=0
timeout "${MEM_TIMEOUT:-170}" "$CS" --tool memcheck --leak-check no --error-exitcode 99 --target-processes all \
    "$PY" -m pytest tests/test_custom_kernels.py -m gpu -q -x -p no:cacheprovider -k "$MEM_K" \
    > "$OUT/memcheck.log" 2>&1 || rc=$?
echo "memcheck exit $rc: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "passed|failed" "$OUT/memcheck.log" | tail -1
rc2=0
timeout "${RACE_TIMEOUT:-170}" "$CS" --tool racecheck --racecheck-report all --error-exitcode 99 --target-processes all \
    "$PY" -m pytest tests/test_custom_kernels.py -m gpu -q -x -p no:cacheprovider -k "$RACE_K" \
    > "$OUT/racecheck.log" 2>&1 || rc2=$?
echo "racecheck exit $rc2: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/racecheck.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "passed|failed" "$OUT/racecheck.log" | tail -1
exit $(( rc || rc2 ))
