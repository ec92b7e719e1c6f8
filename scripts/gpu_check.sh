#!/usr/bin/env bash
# One device call that checks this tree on a GPU it has not run on before (or after a change that touches
# every path): the GPU's state, the kernels' compile + spill check, every `gpu`-marked test except the slow
# soak, and each launch of the fp32 batch-64 plan timed alone. Logs go to OUTDIR (and OUTDIR/gpu_check.tgz).
# Usage (GPU machine, repo root): scripts/gpu_check.sh OUTDIR     (TEST_TIMEOUT=seconds for the test step)
set -u -o pipefail
OUT="${1:?outdir}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
LOGS="$OUT/gpu_check"; mkdir -p "$LOGS"
t0=$(date +%s)
stamp() { echo "[gpu_check $1: $(( $(date +%s) - t0 )) s]"; }
nvidia-smi --query-gpu=name,driver_version,pstate,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu \
    --format=csv | tee "$LOGS/nvidia_smi.csv"
"$PY" -m pytest tests/test_kernels_compile.py -q -p no:cacheprovider > "$LOGS/compile.log" 2>&1
echo "compile exit $?: $(tail -1 "$LOGS/compile.log")"; stamp compile
timeout "${TEST_TIMEOUT:-420}" "$PY" -m pytest tests -m "gpu and not slow" -q -p no:cacheprovider --maxfail=30 -rfE \
    --durations=20 > "$LOGS/gpu_tests.log" 2>&1
echo "gpu tests exit $?"; grep -E "^(FAILED|ERROR)" "$LOGS/gpu_tests.log" | head -30; tail -1 "$LOGS/gpu_tests.log"
stamp tests
timeout "${PLT_TIMEOUT:-60}" "$PY" scripts/plan_launch_times.py --batches 64 > "$LOGS/plt_bs64.log" 2>&1
echo "plan_launch_times exit $?"; tail -4 "$LOGS/plt_bs64.log"; stamp plt
tar -czf "$OUT/gpu_check.tgz" -C "$OUT" gpu_check
