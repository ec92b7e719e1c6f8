#!/bin/bash
# Session 40 (results/NOTES.md "Session 40"), call 3: where a warm batch-1 replay reads its bytes from. Nsight Compute
# with --cache-control none (session 39's ncu flushed the caches before every kernel, so its DRAM bytes were the
# compulsory ones) on one replay of the default plan's CUDA graph after 5 warm replays (scripts/ncu_kernels.py
# --graph), on the committed picks:
#   1. the whole graph as one result (--graph-profiling graph): DRAM bytes read / written, L2 hit rate (graph.csv);
#   2. each kernel node (--graph-profiling node): the same per kernel (node.csv), each node printed.
# Usage: scripts/ncu_l2_device.sh OUT   env: KCACHE, END (default 240)
OUT=${1:?usage: $0 OUT}
export END=${END:-240}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
find_ncu || exit 1
ncu_l2
python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
for mode in ("graph", "node"):
    rows = [r for r in csv.reader(open(f"{out}/{mode}.csv")) if r]
    i = next(k for k, r in enumerate(rows) if "ID" in r[:1])
    head, units, data = rows[i], rows[i + 1], rows[i + 2:]
    cols = [c for c in head if c.startswith(("gpu__", "dram__", "lts__"))]
    name = "Kernel Name" if "Kernel Name" in head else head[4]
    for r in data:
        vals = {c: r[head.index(c)] + " " + units[head.index(c)] for c in cols}
        print(mode, r[head.index(name)][:50], " ".join(f"{c.split('.')[0]}={v}" for c, v in vals.items()))
PY
