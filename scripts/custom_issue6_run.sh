#!/usr/bin/env bash
# Issue 6 device session (one call, < 300 s): compile check, GPU tests (all kernel versions, fuse v2,
# autotune, e2e), then fuse-pair and end-to-end timings at batch 1 / 64 / 256 (eager and graph).
# Usage (GPU machine, repo root): scripts/custom_issue6_run.sh OUTDIR
set -u -o pipefail
OUT="${1:?outdir}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
timeout "${COMPILE_TIMEOUT:-45}" "$PY" -m pytest tests/test_kernels_compile.py -q -p no:cacheprovider 2>&1 | tail -2
timeout "${TEST_TIMEOUT:-110}" "$PY" -m pytest tests/test_custom_kernels.py tests/test_custom_e2e.py -m gpu -q \
    --maxfail=30 -p no:cacheprovider -rf > "$OUT/test.log" 2>&1
echo "tests exit $?"; grep -E "^(FAILED|ERROR)" "$OUT/test.log" | head -30; tail -2 "$OUT/test.log"
# run 1 (19:39 UTC): TIME_ARGS default below; run 2: --skip layers,add,tiles,layout,sweep,fuse --e2e-specs +notune
timeout "${TIME_TIMEOUT:-125}" "$PY" scripts/custom_time.py --json "$OUT/times.json" --e2e-batches 1,64,256 \
    ${TIME_ARGS:---skip layers,add,tiles,layout,sweep --fuse-batches 1,64,256 --e2e-specs fuse=v2;+tune;fuse=v2+tune} \
    > "$OUT/time.log" 2>&1
echo "time exit $?"; grep -E "^(fuse|e2e|\[)" "$OUT/time.log" | tail -70
