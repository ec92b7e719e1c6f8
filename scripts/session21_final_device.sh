#!/bin/bash
# session 21's closing GPU call (results/NOTES.md "Session 21"): the GPU tests of the exdwpw5 builds (their X / R loads
# and PDL wait changed in fuse v28), of the default plan end to end against ONNX Runtime and of v25 - v28; then the
# full benchmark run (custom, cudnn, torch eager and compiled; fp32 and fp16) into OUT/run.json (the report is
# regenerated from it off the GPU machine: `python -m mbv2 report run.json --out results/<gpu>/report`).
# Usage: scripts/session21_final_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi > "$OUT/smi.txt" 2>&1
timeout 110 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_exdw.py tests/test_custom_e2e.py \
  -k "odd_fused_block or big_chunk or split or test_e2e_matches_onnxruntime or v27_v28" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 450 make bench NOVENV=1 RUN_JSON="$OUT/run.json" \
  BENCH_ARGS="--backends custom,cudnn,torch --compile --dtypes fp32,fp16" > "$OUT/bench.log" 2>&1
echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "passed|failed|^FAILED|^ERROR" "$OUT/bench.log" | tail -6
rm -rf results/report
