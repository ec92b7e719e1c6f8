#!/bin/bash
# Session 15: fuse v13 (the wider exdwpw6 builds: 24 / 36 / 40 channels per block, clusters of 16; the configuration
# autotuned per block) on the GPU: the block kernels' tests (every configuration v13 adds, the cost model's picks at
# batch 1 / 3), the e2e tests, the per-block sweep of every configuration at batch 1, and an interleaved A/B v11 / v13
# over three instances each. STAMPS=1 adds the stamps of v11's and v13's cost-model picks.
# Usage: scripts/fuse_v13_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py \
  -k "wide or compiled_builds or every_configuration_matches and not exdwpw10" > "$OUT/tests_cblock.log" 2>&1
echo "[cblock tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_cblock.log" | tail -8
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "v13 or linear_v5 or fuse_v12" > "$OUT/tests_e2e.log" 2>&1
echo "[e2e tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_e2e.log" | tail -8
timeout 120 python3 scripts/cblock_sweep.py --batches 1 --fuse v13 --json "$OUT/sweep_v13.json" > "$OUT/sweep_v13.log" 2>&1
echo "[sweep rc=$? $(( $(date +%s) - t0 ))s]"
if [ "${STAMPS:-0}" = 1 ]; then
  for v in v11 v13; do
    timeout 60 python3 scripts/cblock_sweep.py --batches 1 --fuse $v --stamps > "$OUT/stamps_$v.log" 2>&1
    echo "[stamps $v rc=$? $(( $(date +%s) - t0 ))s]"
  done
fi
timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 \
  --specs "fuse=v11;fuse=v13;fuse=v13;fuse=v11;fuse=v11;fuse=v13" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |planned" "$OUT/ab.log" | head -20
