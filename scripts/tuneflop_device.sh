#!/bin/bash
# Prepared in session 13 for the next device call: should the autotuner time every problem (TUNE_MIN_FLOP = 0)?
# Session 13 measured it faster at fp16 batch 1 / 2 / 4 and fp32 batch 2 / 4 (results/NOTES.md "Below
# TUNE_MIN_FLOP"), but not fp32 batch 1 (where it would tune fuse v11's small-CIN block choices), and never checked
# the tuned small-batch plans' outputs. This call: (1) the interleaved A/B at fp32 batch 1 (and 2 as a control),
# (2) with MBV2_TUNE_MIN_FLOP=0 the GPU e2e tests (fp32 against ONNX Runtime, fp16 against float64), (3) with
# MBV2_TUNE_MIN_FLOP=0 a custom-only `make bench` (logits checked against ONNX Runtime before timing; the report
# under $OUT/bench_tuneflop0.tgz). Usage: scripts/tuneflop_device.sh $OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 90 python3 scripts/e2e_ab.py --dtype fp32 --batches 1,2 --specs "tuneflop=1e8;tuneflop=0;tuneflop=1e8" \
  --rounds 3 --json "$OUT/ab_fp32_bs1.json" > "$OUT/ab_fp32_bs1.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep "^ab " "$OUT/ab_fp32_bs1.log"
MBV2_TUNE_MIN_FLOP=0 timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  tests/test_custom_fp16.py -k "e2e" > "$OUT/e2e_tests.log" 2>&1
echo "[e2e tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/e2e_tests.log" | tail -5
mkdir -p /tmp/bench
MBV2_TUNE_MIN_FLOP=0 timeout 120 make bench NOVENV=1 RUN_JSON=/tmp/bench/run.json \
  BENCH_ARGS="--backends custom --dtypes fp32,fp16 -k test_e2e" > /tmp/bench/bench.log 2>&1
echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "passed|failed" /tmp/bench/bench.log | tail -2
cp -r results/report /tmp/bench/report 2>/dev/null
grep -A7 "Device ms by batch" /tmp/bench/report/report.md | tail -5
tar -czf "$OUT/bench_tuneflop0.tgz" -C /tmp bench
