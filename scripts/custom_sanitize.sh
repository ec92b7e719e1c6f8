#!/usr/bin/env bash
# compute-sanitizer memcheck + racecheck over the custom backend's kernels (every version).
#
# Runs test subsets that touch every kernel and every code path (odd shapes: partial tiles, C % 4 != 0, 1x1 spatial;
# distinct layers at batch 1 and 3) with MBV2_NO_POOL=1 so each CuPy array is its own cudaMalloc and memcheck sees
# exact bounds.
# Usage: scripts/custom_sanitize.sh [outdir]   (logs: outdir/memcheck_<part>.log, outdir/racecheck_<part>.log)
#   default: the per-layer kernels, then the fused / fp16 / persistent ones (session 2)
#   ONLY_NEW=1: only the second part; ONLY_S3=1: only session 3's whole-block kernels (exdwpw5, block0, hblock0, hexdw);
#   ONLY_S5=1: only sessions 4-5's kernels (exdwpw6 cluster blocks, hexdw3 / hexdwpw4, hblock0 v3 / v4, gemm v8);
#   ONLY_S6=1: only session 6's fuse v7 kernels (exgdw, every build), below batch 64
#   ONLY_S7=1: only session 7's fuse v8 kernels (exdwpw8, every build), below batch 64
#   ONLY_S11=1: only sessions 11-12's kernels (pwpool / pwpool_c8, exdwpw5's small tiles, linear v3, exdwpw10)
set -u -o pipefail
OUT="${1:-.}"
PY="${PYTHON:-python3}"
CS="${COMPUTE_SANITIZER:-compute-sanitizer}"
export MBV2_NO_POOL=1 PYTHONUNBUFFERED=1
status=0

# check PART "TEST FILES" "MEMCHECK -k" "RACECHECK -k": both tools over one test subset, a summary line each
check() {
    local part=$1 files=$2 mem_k=$3 race_k=$4 rc
    rc=0
    # shellcheck disable=SC2086
    timeout "${MEM_TIMEOUT:-200}" "$CS" --tool memcheck --leak-check no --error-exitcode 99 --target-processes all \
        "$PY" -m pytest $files -m gpu -q -x -p no:cacheprovider -k "$mem_k" > "$OUT/memcheck_$part.log" 2>&1 || rc=$?
    echo "memcheck ($part) exit $rc: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck_$part.log" | sort | uniq -c | tr '\n' ' ')"
    grep -E "passed|failed" "$OUT/memcheck_$part.log" | tail -1
    status=$(( status || rc ))
    rc=0
    # shellcheck disable=SC2086
    timeout "${RACE_TIMEOUT:-200}" "$CS" --tool racecheck --racecheck-report all --error-exitcode 99 \
        --target-processes all "$PY" -m pytest $files -m gpu -q -x -p no:cacheprovider -k "$race_k" \
        > "$OUT/racecheck_$part.log" 2>&1 || rc=$?
    echo "racecheck ($part) exit $rc: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/racecheck_$part.log" | sort | uniq -c | tr '\n' ' ')"
    grep -E "passed|failed" "$OUT/racecheck_$part.log" | tail -1
    status=$(( status || rc ))
}

if [ "${ONLY_S3:-0}" = 1 ]; then
    check s3 "tests/test_custom_exdw.py tests/test_custom_block0.py tests/test_custom_hblock0.py tests/test_custom_hexdw.py" \
        "odd" "odd"
    exit $status
fi
if [ "${ONLY_S5:-0}" = 1 ]; then
    check s5 "tests/test_custom_cblock.py tests/test_custom_hexdw.py tests/test_custom_hblock0.py" \
        "odd or (block_matches and 1-)" "odd"
    check s5_gemm_v8 "tests/test_custom_kernels.py" "v8 and odd" "v8 and odd"
    exit $status
fi
if [ "${ONLY_S6:-0}" = 1 ]; then
    check s6 "tests/test_custom_exdw.py" "exgdw and not -64-" "odd_exgdw or (exgdw and -1-)"
    exit $status
fi
if [ "${ONLY_S7:-0}" = 1 ]; then
    check s7 "tests/test_custom_exdw.py" "exdwpw8 and not bs64" "odd_exdwpw8"
    exit $status
fi
if [ "${ONLY_S11:-0}" = 1 ]; then
    check s11_head "tests/test_custom_kernels.py" "pointwise_pool or linear" "pointwise_pool or (linear and 2052)"
    check s11_tiles "tests/test_custom_exdw.py" "odd_fused_block" "odd_fused_block"
    check s11_v10 "tests/test_custom_cblock.py" "exdwpw10 and not every" "exdwpw10 and odd"
    exit $status
fi
if [ "${ONLY_NEW:-0}" != 1 ]; then
    # memcheck: odd shapes + add + distinct layers at batch 1 (every kernel version); racecheck (slow): odd shapes
    # below batch 64 + the 7x7 layers at batch 1
    check layers "tests/test_custom_kernels.py" "odd or test_add or (distinct and bs1-)" \
        "(odd and not bs64) or (distinct and bs1- and 7x7)"
fi
# the fused / fp16 / persistent kernels (fuse v3-v4 exdw, half.cu, persistent.cu): odd shapes and batch-1 cases
check new "tests/test_custom_exdw.py tests/test_custom_fp16.py tests/test_custom_persistent.py" \
    "odd or bs1 or (net_v2 and 1-eager)" "odd"
exit $status
