#!/bin/bash
# Session 16: fuse v14 (exdwpw6 builds with clusters of 4 / 6 / 12; the 56x56 blocks timed as exdwpw6 against v5's
# path) on the GPU: the per-block sweep of the 56x56 blocks against v13's launches, an interleaved A/B v13 / v14 at
# batch 1, the block kernels' tests (every configuration v14 adds; v13's wider builds again: the review commit of
# session 15 was not GPU-run), the e2e tests, and the stamps of v14's plan.
# Usage: scripts/fuse_v14_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 150 python3 scripts/cblock_sweep.py --batches 1 --fuse v14 --base v13 --maps 112x112,56x56 \
  --json "$OUT/sweep_v14_56.json" > "$OUT/sweep_v14_56.log" 2>&1
echo "[sweep rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^bs" "$OUT/sweep_v14_56.log"
for f in "$OUT/sweep_v14_56.log"; do
  python3 - "$f" <<'PY'
import re, sys
best = {}
blk = None
for line in open(sys.argv[1]):
    if line.startswith("bs"):
        blk = line.split(":")[0]
    m = re.search(r"(CH .*?) grid .*: ([\d.]+) us", line)
    if m and blk and (blk not in best or float(m.group(2)) < best[blk][1]):
        best[blk] = (m.group(1), float(m.group(2)))
for b, (c, t) in best.items():
    print(f"  best {b}: {c} {t:.2f} us")
PY
done
timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 \
  --specs "fuse=v13;fuse=v14;fuse=v14;fuse=v13" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab |^  |planned" "$OUT/ab.log" | head -30
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py \
  -k "v14 or wide or compiled_builds" > "$OUT/tests_cblock.log" 2>&1
echo "[cblock tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_cblock.log" | tail -8
