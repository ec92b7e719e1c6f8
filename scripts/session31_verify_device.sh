#!/bin/bash
# Session 31, after calls 1 - 6 (results/NOTES.md "Session 31"): (1) the shard script's exclusive phase on a GPU:
# tests/test_cudnn.py in 2 parts side by side (--exclusive defer), then the part holding the leak test runs it alone;
# (2) the CUDA graph's own start: the hand-off probe's chains of 1, 2, 4 and 8 launches (3 x 40 blocks, no work), so
# that launch 0's marginal time (block0, ~8 us) can be split into the graph's start and the kernel.
# Usage: scripts/session31_verify_device.sh OUT   env: KCACHE, END
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
END=$(left 400) TESTS=tests/test_cudnn.py SHARDS=2 MARK=gpu scripts/test_gpu_shards.sh "$OUT"
echo "[shards rc=$? $(( $(date +%s) - t0 ))s]"
rm -rf "$OUT/shards"
for L in 1 2 4 8 32; do
  timeout "$(left 60)" python3 scripts/handoff_probe.py --chain "$L" --shapes 3x40 --iters 0 --repeats 200 \
    >> "$OUT/probe.log" 2>&1
  echo "[probe chain $L rc=$? $(( $(date +%s) - t0 ))s]"
done
grep -E "probe on| plain | wait_end " "$OUT/probe.log"
