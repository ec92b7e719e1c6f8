#!/bin/bash
# session 22's closing GPU call (results/NOTES.md "Session 22"): an interleaved A/B at batch 1 of v28, v30 (the
# default now) and v30 with plan_tune, the logits checked against ONNX Runtime first; then the full benchmark run
# (custom, cudnn, torch eager and compiled; fp32 and fp16) into OUT/run.json (the report is regenerated from it off the
# GPU machine: `python -m mbv2 report run.json --out results/<gpu>/report`).
# Usage: scripts/session22_final_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
nvidia-smi > "$OUT/smi.txt" 2>&1
timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --rounds 5 --json "$OUT/ab.json" \
  --specs "fuse=v28;fuse=v30;fuse=v30,plantune=1;fuse=v28;fuse=v30;fuse=v30,plantune=1" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |Error|error" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -10
timeout 450 make bench NOVENV=1 RUN_JSON="$OUT/run.json" \
  BENCH_ARGS="--backends custom,cudnn,torch --compile --dtypes fp32,fp16" > "$OUT/bench.log" 2>&1
echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "passed|failed|^FAILED|^ERROR" "$OUT/bench.log" | tail -6
rm -rf results/report
