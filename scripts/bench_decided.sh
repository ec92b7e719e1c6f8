#!/bin/bash
# Session 34: the full bench (scripts/bench_device.sh) with what scripts/decide_bs1.py chooses from the A/B that
# scripts/combo_device.sh kept on this machine ($MBV2_CACHE/combo_ab.json): MBV2_STAGE=async and / or
# MBV2_KERNELS=fuse=vNN in the bench's environment, so that the call can follow the A/B's on the same warm machine
# (machines are scarce; the choice is made by the rules written before the measurement, not by hand). The run records
# both (info(): "stage", the kernel versions). Writes decide.txt, and where something won run.json and bench.log,
# under OUT; where nothing won it runs no bench and exits 0.
# Usage: scripts/bench_decided.sh OUT   env: MBV2_CACHE (required), KCACHE, BENCH_T, END
OUT=${1:?usage: $0 OUT}
D="${MBV2_CACHE:?set MBV2_CACHE}/combo_ab.json"
[ -f "$D" ] || { echo "bench_decided: no $D (run scripts/combo_device.sh on this machine first)"; exit 1; }
set -o pipefail
python3 scripts/decide_bs1.py "$D" | tee "$OUT/decide.txt" || exit 1
set +o pipefail
E=$(tail -1 "$OUT/decide.txt")
[ "$E" = none ] && { echo "[bench_decided: v42 with sync staging stays; no bench]"; exit 0; }
echo "[bench_decided: $E]"
env $E "$(dirname "$0")/bench_device.sh" "$OUT"
