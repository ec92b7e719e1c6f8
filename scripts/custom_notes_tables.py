"""Markdown tables for results/NOTES.md from a scripts/custom_time.py JSON.

python3 scripts/custom_notes_tables.py times.json > tables.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

DEFAULTS: dict = {}


def main(path: str) -> None:
    global DEFAULTS
    d = json.load(open(path))
    DEFAULTS = d["defaults"]
    try:  # the defaults of the code as it is now (they may have been chosen from this very run)
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from impls._custom_kernels import DEFAULT_VERSIONS

        DEFAULTS = DEFAULT_VERSIONS
    except Exception:
        pass
    print(f"GPU: {d['gpu']} ({d['sms']} SMs, L2 {d['l2_bytes'] >> 20} MiB), CuPy {d['cupy']}, run {d['time']}\n")
    rows = d.get("per_layer", [])
    fams = defaultdict(set)
    for r in rows:
        fams[r["family"]].add(r["version"])
    for batch in sorted({r["batch"] for r in rows}):
        print(f"\n#### Batch {batch}: median device time per call, us (CUDA events; x = ops sharing the shape)\n")
        table = defaultdict(dict)
        meta = {}
        for r in rows:
            if r["batch"] != batch:
                continue
            key = (r["op"], r["family"])
            table[key][r["version"]] = r
            meta[key] = r
        allv = sorted({v for vs in fams.values() for v in vs})
        print("| op | x | layer | in (C,H,W) | family | " + " | ".join(allv) + " | default kernel(s) |")
        print("|---|---|---|---|---|" + "---|" * len(allv) + "---|")
        for key in sorted(table):
            m = meta[key]
            vs = table[key]
            best = min(vs, key=lambda v: vs[v]["median_ms"])
            cells = []
            for v in allv:
                if v in vs:
                    t = f"{vs[v]['median_ms'] * 1e3:.1f}"
                    cells.append(f"**{t}**" if v == best else t)
                else:
                    cells.append("")
            dv = DEFAULTS.get(m["family"])
            dk = ", ".join(vs[dv]["kernels"]) if dv in vs else ""
            shape = "x".join(map(str, m["in_shape"]))
            print(
                f"| {m['op']} | {m['count']} | {m['layer']} | {shape} | {m['family']} | "
                + " | ".join(cells)
                + f" | {dk} |"
            )
    tot = d.get("family_totals_ms", {})
    if tot:
        print("\n#### Network totals per family and version (sum over ops of per-layer median), ms\n")
        print("| family/version | batch 1 | batch 64 |")
        print("|---|---|---|")
        keys = sorted({k.rsplit("/", 1)[0] for k in tot})
        for k in keys:
            print(f"| {k} | {tot.get(k + '/bs1', float('nan')):.4f} | {tot.get(k + '/bs64', float('nan')):.4f} |")
    if "e2e" in d:
        print("\n#### End to end, default versions\n")
        print(
            "| batch | mode | device ms (CUDA events) | host ms (H2D + run + D2H + sync, incl. input check) | img/s |"
        )
        print("|---|---|---|---|---|")
        for r in d["e2e"]:
            mode = "CUDA graph" if r["graph"] else "eager"
            print(f"| {r['batch']} | {mode} | {r['device_ms']:.4f} | {r['host_ms']:.3f} | {r['img_per_s']:.0f} |")
    if "sweep" in d:
        print("\n#### End to end, one family pinned to an earlier version (CUDA graph, device ms)\n")
        print("| pinned | batch 1 | batch 64 |")
        print("|---|---|---|")
        by = defaultdict(dict)
        for r in d["sweep"]["e2e"]:
            by[r["spec"]][r["batch"]] = r["device_ms"]
        for spec, b in by.items():
            print(f"| {spec} | {b.get(1, float('nan')):.4f} | {b.get(64, float('nan')):.4f} |")
    if "layout" in d:
        print("\n#### Layout: pointwise convs as one NHWC GEMM vs per-image NCHW GEMM (gemm v4 kernels), us\n")
        print("| op | x | batch | NHWC | NCHW | NHWC kernel | NCHW kernel |")
        print("|---|---|---|---|---|---|---|")
        for r in d["layout"]:
            print(
                f"| {r['op']} | {r['count']} | {r['batch']} | {r['nhwc_ms'] * 1e3:.1f} | {r['nchw_ms'] * 1e3:.1f} | "
                f"{r['nhwc_kernel']} | {r['nchw_kernel']} |"
            )
        for b in sorted({r["batch"] for r in d["layout"]}):
            a = sum(r["nhwc_ms"] * r["count"] for r in d["layout"] if r["batch"] == b)
            c = sum(r["nchw_ms"] * r["count"] for r in d["layout"] if r["batch"] == b)
            print(f"\nAll pointwise convs, batch {b}: NHWC {a:.3f} ms, NCHW {c:.3f} ms")
    if "gemm_tiles" in d:
        print("\n#### gemm v4 tile shapes (BMxBN_TMxTN): the cost model's choice vs the fastest, us\n")
        print("| op | batch | chosen | chosen us | fastest | fastest us |")
        print("|---|---|---|---|---|---|")
        for r in d["gemm_tiles"]:
            ck = r["chosen"].split("_", 2)[2].replace("_vec", "").replace("_", "x")
            chosen = ck
            ct = r["times_ms"].get(ck)
            bt = r["times_ms"][r["best"]]
            print(
                f"| {r['op']} | {r['batch']} | {chosen} | {ct * 1e3 if ct else float('nan'):.1f} | {r['best']} | "
                f"{bt * 1e3:.1f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1])
