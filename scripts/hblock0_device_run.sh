#!/usr/bin/env bash
# hblock0 device session (one call, < 300 s): GPU tests (tests/test_custom_hblock0.py + the fp16 e2e tests),
# then hblock0 v1 vs v2 on the first three ops and end to end (graph) at batch 1 / 64 / 256.
# Usage (GPU machine, repo root): scripts/hblock0_device_run.sh OUTDIR
set -u -o pipefail
OUT="${1:?outdir}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
export MBV2_FP16_ERRLOG="$OUT/fp16_errors.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
timeout "${TEST_TIMEOUT:-110}" "$PY" -m pytest tests/test_custom_hblock0.py tests/test_custom_fp16.py -m gpu -q \
    -k "hstem_block or hblock0 or e2e" --maxfail=30 -p no:cacheprovider -rf > "$OUT/test.log" 2>&1
echo "tests exit $?"; grep -E "^(FAILED|ERROR)" "$OUT/test.log" | head -30; tail -2 "$OUT/test.log"
grep -E "hblock0|^e2e" "$OUT/fp16_errors.txt" | head -40
timeout "${OPS_TIMEOUT:-50}" "$PY" scripts/hblock0_time.py --json "$OUT/hblock0_times.json" > "$OUT/ops.log" 2>&1
echo "ops exit $?"; tail -5 "$OUT/ops.log"
timeout "${E2E_TIMEOUT:-110}" "$PY" scripts/custom_fp16_time.py --json "$OUT/e2e_times.json" --skip layers,hexdw,dw \
    --e2e-batches 1,64,256 --e2e-specs ";hblock0=v2" > "$OUT/e2e.log" 2>&1
echo "e2e exit $?"; grep -E "^e2e" "$OUT/e2e.log"; tail -3 "$OUT/e2e.log" | grep -v "^e2e"
