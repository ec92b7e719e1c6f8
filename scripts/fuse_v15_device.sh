#!/bin/bash
# Session 16: fuse v15 (v13's exdwpw6 builds at 512 threads per block, tuner candidates beside the 256-thread ones) on
# the GPU. PART=1: the per-block sweep (every configuration at 256 and 512 threads, batch 1), an interleaved A/B
# v13 / v15 at batch 1, the block kernels' tests. PART=2: the e2e tests, the A/B at batch 2 and 3, the stamps of
# v15's plan.
# Usage: PART=1|2 scripts/fuse_v15_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
if [ "${PART:-1}" = 1 ]; then
  timeout 200 python3 scripts/cblock_sweep.py --batches 1 --fuse v15 --base v13 \
    --json "$OUT/sweep_v15.json" > "$OUT/sweep_v15.log" 2>&1
  echo "[sweep rc=$? $(( $(date +%s) - t0 ))s]"
  python3 - "$OUT/sweep_v15.json" <<'PY'
import json, sys
from collections import defaultdict
rows = json.load(open(sys.argv[1]))
d = defaultdict(list)
for r in rows:
    d[r["block"]].append(r)
tot = {256: 0.0, 512: 0.0}
for b, rs in d.items():
    best = {nt: min((r for r in rs if r["nt"] == nt), key=lambda r: r["us"]) for nt in (256, 512)}
    for nt in tot:
        tot[nt] += best[nt]["us"]
    print(f"  {b}: base {rs[0]['v5_us']:.2f}  " + "  ".join(
        f"{nt}: c{r['ch']}x{r['cl']} TR {r['tr']} {r['us']:.2f}" for nt, r in best.items()))
print(f"  sum of the best per block: 256 threads {tot[256]:.1f} us, 512 threads {tot[512]:.1f} us")
PY
  timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 1 \
    --specs "fuse=v13;fuse=v15;fuse=v15;fuse=v13" --rounds 5 --json "$OUT/ab.json" > "$OUT/ab.log" 2>&1
  echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab " "$OUT/ab.log"
  timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_cblock.py \
    -k "t512 or compiled_builds" > "$OUT/tests_cblock.log" 2>&1
  echo "[cblock tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_cblock.log" | tail -8
else
  timeout 240 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
    -k "v15 or v14 or v13" > "$OUT/tests_e2e.log" 2>&1
  echo "[e2e tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests_e2e.log" | tail -8
  timeout 200 python3 scripts/e2e_ab.py --dtype fp32 --batches 2,3 \
    --specs "fuse=v13;fuse=v15;fuse=v15;fuse=v13" --rounds 3 --json "$OUT/ab23.json" > "$OUT/ab23.log" 2>&1
  echo "[ab 2,3 rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^ab " "$OUT/ab23.log"
  timeout 60 python3 scripts/cblock_sweep.py --batches 1 --fuse v15 --stamps --plan > "$OUT/stamps_plan.log" 2>&1
  echo "[stamps rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "span" "$OUT/stamps_plan.log"
fi
