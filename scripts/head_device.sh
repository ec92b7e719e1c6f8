#!/bin/bash
# Session 11 device call: fuse v9 (pwpool: the head conv + ReLU6 + global average pool as one kernel) and linear v3
# (GEMV with the W row in flight) at small batch. Build + spill check, their GPU tests, each launch of the plans timed
# alone, the interleaved e2e A/B, and the exdwpw8 builds at batch 1. Usage: scripts/head_device.sh $OUT
# env: TEST_S / TEST_FILES / TEST_K (GPU tests), PLT_S / PLT_BATCHES / PLT_SPECS (plan_launch_times), AB_S / AB_BATCHES / AB_SPECS (e2e_ab),
# X8_S (exdwpw8_time.py at batch 1), SWEEP_S (cblock_sweep.py at batch 1: every exdwpw6 configuration, then the
# stamped phase breakdown), TILES_S (exdwpw5_tiles_time.py: every exdwpw5 tile of the small-CIN blocks at batch 1 / 2 / 4);
# unset: skipped
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
OLD="fuse=v8,linear=v2"
NEW="fuse=v9,linear=v3"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
t0=$(date +%s)
python3 -m pytest tests/test_kernels_compile.py -q -p no:cacheprovider > $OUT/compile.log 2>&1
echo "[compile rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 $OUT/compile.log)"
timeout ${TEST_S:-240} python3 -m pytest -q -m gpu -p no:cacheprovider --maxfail=20 -rfE \
  ${TEST_FILES:-tests/test_custom_kernels.py tests/test_custom_e2e.py tests/test_custom_exdw.py} \
  -k "${TEST_K:-pointwise_pool or linear or head_pool or test_e2e_matches or odd_fused_block}" \
  > $OUT/head_tests.log 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" $OUT/head_tests.log | tail -12
if [ -n "$PLT_S" ]; then  # each launch timed alone, old and new head, per batch
  timeout $PLT_S python3 scripts/plan_launch_times.py --batches "${PLT_BATCHES:-1,2,4,8}" \
    --specs "${PLT_SPECS:-$OLD;$NEW}" > $OUT/plt.log 2>&1
  echo "[plt rc=$? $(( $(date +%s) - t0 ))s]"
  grep -E "^==|sum of| 9[5-8]:" $OUT/plt.log
fi
if [ -n "$AB_S" ]; then  # interleaved end-to-end A/B (CUDA graph)
  timeout $AB_S python3 scripts/e2e_ab.py --batches "${AB_BATCHES:-1,2,4,8}" --specs "${AB_SPECS:-$OLD;$NEW}" \
    --rounds 5 --json $OUT/ab.json > $OUT/ab.log 2>&1
  echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep "^ab " $OUT/ab.log
fi
if [ -n "$X8_S" ]; then  # the small-CIN blocks' exdwpw8 builds against exdwpw5 at batch 1
  timeout $X8_S python3 scripts/exdwpw8_time.py --batches 1 --json $OUT/x8_bs1.json > $OUT/x8_bs1.log 2>&1
  echo "[x8 rc=$? $(( $(date +%s) - t0 ))s]"; tail -25 $OUT/x8_bs1.log
fi
if [ -n "$TILES_S" ]; then  # fuse v11: each exdwpw5 tile of the small-CIN blocks alone, and the tile v9 / v11 pick
  timeout $TILES_S python3 scripts/exdwpw5_tiles_time.py --batches 1,2,4 --json $OUT/tiles.json > $OUT/tiles.log 2>&1
  echo "[tiles rc=$? $(( $(date +%s) - t0 ))s]"; cat $OUT/tiles.log | tail -40
fi
if [ -n "$SWEEP_S" ]; then  # fuse v6: every (CH, TR) of each block at batch 1 against the cost model's pick; phases
  timeout $SWEEP_S python3 scripts/cblock_sweep.py --batches 1 > $OUT/sweep.log 2>&1
  echo "[sweep rc=$? $(( $(date +%s) - t0 ))s]"; grep -iE "pick|best|sum" $OUT/sweep.log | tail -20
  timeout $SWEEP_S python3 scripts/cblock_sweep.py --batches 1 --stamps > $OUT/stamps.log 2>&1
  echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; tail -30 $OUT/stamps.log
fi
