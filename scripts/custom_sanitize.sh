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
rc2=0
if [ "${ONLY_NEW:-0}" != 1 ]; then  # ONLY_NEW=1: only the second part (the kernels added in session 2)
timeout "${MEM_TIMEOUT:-170}" "$CS" --tool memcheck --leak-check no --error-exitcode 99 --target-processes all \
    "$PY" -m pytest tests/test_custom_kernels.py -m gpu -q -x -p no:cacheprovider -k "$MEM_K" \
    > "$OUT/memcheck.log" 2>&1 || rc=$?
echo "memcheck exit $rc: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "passed|failed" "$OUT/memcheck.log" | tail -1
timeout "${RACE_TIMEOUT:-170}" "$CS" --tool racecheck --racecheck-report all --error-exitcode 99 --target-processes all \
    "$PY" -m pytest tests/test_custom_kernels.py -m gpu -q -x -p no:cacheprovider -k "$RACE_K" \
    > "$OUT/racecheck.log" 2>&1 || rc2=$?
echo "racecheck exit $rc2: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/racecheck.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "passed|failed" "$OUT/racecheck.log" | tail -1
fi
if [ "${ONLY_S3:-0}" = 1 ]; then  # only the kernels added in session 3: exdwpw5, block0, hblock0, hexdw (odd shapes)
    S3_FILES="tests/test_custom_exdw.py tests/test_custom_block0.py tests/test_custom_hblock0.py tests/test_custom_hexdw.py"
    rc5=0
    timeout "${MEM_TIMEOUT:-200}" "$CS" --tool memcheck --leak-check no --error-exitcode 99 --target-processes all \
        "$PY" -m pytest $S3_FILES -m gpu -q -x -p no:cacheprovider -k "odd" > "$OUT/memcheck_s3.log" 2>&1 || rc5=$?
    echo "memcheck (session 3 kernels) exit $rc5: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck_s3.log" | sort | uniq -c | tr '\n' ' ')"
    grep -E "passed|failed" "$OUT/memcheck_s3.log" | tail -1
    rc6=0
    timeout "${RACE_TIMEOUT:-200}" "$CS" --tool racecheck --racecheck-report all --error-exitcode 99 --target-processes all \
        "$PY" -m pytest $S3_FILES -m gpu -q -x -p no:cacheprovider -k "odd" > "$OUT/racecheck_s3.log" 2>&1 || rc6=$?
    echo "racecheck (session 3 kernels) exit $rc6: $(grep -E 'RACECHECK SUMMARY' "$OUT/racecheck_s3.log" | sort | uniq -c | tr '\n' ' ')"
    grep -E "passed|failed" "$OUT/racecheck_s3.log" | tail -1
    exit $(( rc5 || rc6 ))
fi
# the fused / fp16 / persistent kernels (fuse v3-v4 exdw, half.cu, persistent.cu): memcheck and racecheck on
# their odd shapes and batch-1 cases
NEW_FILES="tests/test_custom_exdw.py tests/test_custom_fp16.py tests/test_custom_persistent.py"
NEW_K='odd or bs1 or (net_v2 and 1-eager)'
rc3=0
timeout "${MEM_TIMEOUT:-170}" "$CS" --tool memcheck --leak-check no --error-exitcode 99 --target-processes all \
    "$PY" -m pytest $NEW_FILES -m gpu -q -x -p no:cacheprovider -k "$NEW_K" > "$OUT/memcheck_new.log" 2>&1 || rc3=$?
echo "memcheck (exdw, fp16, persistent) exit $rc3: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck_new.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "passed|failed" "$OUT/memcheck_new.log" | tail -1
rc4=0
timeout "${RACE_TIMEOUT:-170}" "$CS" --tool racecheck --racecheck-report all --error-exitcode 99 --target-processes all \
    "$PY" -m pytest $NEW_FILES -m gpu -q -x -p no:cacheprovider -k "odd" > "$OUT/racecheck_new.log" 2>&1 || rc4=$?
echo "racecheck (exdw, fp16) exit $rc4: $(grep -E 'RACECHECK SUMMARY' "$OUT/racecheck_new.log" | sort | uniq -c | tr '\n' ' ')"
grep -E "passed|failed" "$OUT/racecheck_new.log" | tail -1
exit $(( rc || rc2 || rc3 || rc4 ))
