#!/usr/bin/env bash
# hblock0 v3 / v4 device session (one call, < 300 s): GPU tests (tests/test_custom_hblock0.py: every hblock0 version
# on the real first blocks and odd maps, e2e v2 / v3 / v4), the first three ops v1 / v2 / v3 / v4, end to end (fp16
# graph) per hblock0 version (batch 1 in A/B/A order; batch 64 / 256), and ncu: the batch-1 plan's kernel durations
# with v2 and v3, and the hblock0 kernel alone at batch 256 (v3, v4).
# Usage (GPU machine, repo root): scripts/hblock0_v3_device_run.sh OUTDIR   (at most 8 files come back: logs merged)
set -u -o pipefail
OUT="${1:?outdir}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
export MBV2_FP16_ERRLOG="$OUT/fp16_errors.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
timeout "${TEST_TIMEOUT:-130}" "$PY" -m pytest tests/test_custom_hblock0.py -m gpu -q -k "${TEST_K:-hblock0 or hstem}" \
    --maxfail=30 -p no:cacheprovider -rf > "$OUT/test.log" 2>&1
echo "tests exit $?"; grep -E "^(FAILED|ERROR)" "$OUT/test.log" | head -30; tail -2 "$OUT/test.log"
grep -E "hblock0" "$OUT/fp16_errors.txt" | grep -E " v[34] |e2e" | head -60
timeout "${OPS_TIMEOUT:-60}" "$PY" scripts/hblock0_time.py --versions v2,v3,v4 --json "$OUT/hblock0_times.json" 2>&1 \
    | tail -8
echo "ops exit $?"
timeout "${E2E1_TIMEOUT:-40}" "$PY" scripts/custom_fp16_time.py --json "$OUT/e2e1_times.json" --skip layers,hexdw,dw \
    --e2e-batches 1 --e2e-specs "hblock0=v1;hblock0=v2;hblock0=v3;hblock0=v4;hblock0=v2;hblock0=v3" 2>&1 | grep -E "^e2e|Error"
timeout "${E2E_TIMEOUT:-100}" "$PY" scripts/custom_fp16_time.py --json "$OUT/e2e_times.json" --skip layers,hexdw,dw \
    --e2e-batches 64,256 --e2e-specs "hblock0=v2;hblock0=v3;hblock0=v4" 2>&1 | grep -E "^e2e|Error"
echo "e2e exit $?"
NCU="ncu --clock-control none --profile-from-start off --csv --page raw"
M5="gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active,dram__bytes.sum"
for v in v2 v3; do
    echo "== ncu fp16 bs1 plan, hblock0=$v (--cache-control none)"
    timeout 40 $NCU --cache-control none --metrics "$M5" "$PY" scripts/ncu_kernels.py --backend custom --dtype fp16 \
        --batch 1 --kernels "hblock0=$v" > /tmp/ncu_bs1_$v.csv 2>&1 && "$PY" scripts/ncu_kernels.py --summarize /tmp/ncu_bs1_$v.csv
done > "$OUT/ncu.txt" 2>&1
for v in v3 v4; do
    echo "== ncu fp16 bs256 hblock0 kernel alone, hblock0=$v"
    timeout 40 $NCU -k regex:hblock0 --metrics "$M5" "$PY" scripts/ncu_kernels.py --backend custom --dtype fp16 \
        --batch 256 --kernels "hblock0=$v" > /tmp/ncu_256_$v.csv 2>&1 && "$PY" scripts/ncu_kernels.py --summarize /tmp/ncu_256_$v.csv
done >> "$OUT/ncu.txt" 2>&1
echo "ncu exit $?"; grep -A3 "bs256" "$OUT/ncu.txt" | head -20
