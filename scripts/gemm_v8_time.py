"""gemm v8 - v11 on the H100: per distinct pointwise layer, the autotuned versions (--versions) and every v11
tile pinned (v8's + session 8's + the k-sliced ones), at the given batches (CUDA-event medians, inputs rotated
as in custom_time.py), then end to end (CUDA graph, device time) with the --e2e-specs. Prints tables; --json
writes everything.

    python3 scripts/gemm_v8_time.py --json $OUT/gemm_v8_times.json [--batches 64,256] [--e2e-batches 1,64,256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cupy  # noqa: E402
import custom_time as ct  # noqa: E402

from impls import _custom_kernels as K  # noqa: E402
from mbv2.model import default_network  # noqa: E402


def tile_id(t: tuple[int, ...]) -> str:
    return K.gemm_tile_kernel("v8", t, False).removeprefix("gemm_v8_")


def per_layer(net, batches, rng, results, tiles: bool, max_hw: int, versions: list[str]) -> None:
    rows = []
    for entry in net.distinct_ops():
        op = entry["op"]
        if ct.family_of(op) != "gemm" or op.layer.in_shape[1] > max_hw:
            continue
        for batch in batches:
            xs, rs, out = ct.op_inputs(ct.backend(""), op, batch, rng)
            flop, _ = ct.op_cost(op, batch)
            row = {"op": op.index, "count": len(entry["ops"]), "batch": batch, "layer": op.describe(net.layers)}
            for ver in versions:
                be = ct.backend(f"gemm={ver}")
                lists = [be._conv_launches(x, op.layer, op.act, r, out) for x, r in zip(xs, rs)]
                ms = ct.time_launches(be, lists, batch)["median_ms"]
                row[ver] = {"us": ms * 1e3, "tflops": flop / ms / 1e9, "kernels": [la.name for la in lists[0]]}
            if tiles:
                be = ct.backend("gemm=v11")
                row["tiles"] = {}
                for t in K.GEMM_TILES_V11:
                    be.force_tile = t
                    try:
                        lists = [be._conv_launches(x, op.layer, op.act, r, out) for x, r in zip(xs, rs)]
                    finally:
                        be.force_tile = None
                    ms = ct.time_launches(be, lists, batch)["median_ms"]
                    row["tiles"][tile_id(t)] = {"us": ms * 1e3, "splits": lists[0][0].grid[2:] or (1,)}
            rows.append(row)
            best = min(row.get("tiles", {}).items(), key=lambda kv: kv[1]["us"], default=("-", {"us": 0}))
            cells = "  ".join(
                f"{v} {row[v]['us']:7.1f} us {row[v]['tflops']:5.1f} TF {row[v]['kernels'][0]:22s}" for v in versions
            )
            print(
                f"bs{batch:<3} op{op.index:<3} x{row['count']} {row['layer'][:44]:44s} {cells} "
                f"best pinned {best[0]} {best[1]['us']:.1f}",
                flush=True,
            )
            del xs, rs, out
            cupy.get_default_memory_pool().free_all_blocks()
    results["per_layer"] = rows
    for batch in batches:
        tot = {v: sum(r[v]["us"] * r["count"] for r in rows if r["batch"] == batch) / 1e3 for v in versions}
        results.setdefault("totals_ms", {})[f"bs{batch}"] = tot
        print(f"all pointwise convs bs{batch}: " + ", ".join(f"{v} {t:.3f} ms" for v, t in tot.items()), flush=True)
    if tiles:
        print("\nper-tile us (pinned v11 = v8 + session 8 tiles + k-sliced):")
        print("bs  op  " + " ".join(f"{tile_id(t):>14s}" for t in K.GEMM_TILES_V11))
        for r in rows:
            cells = " ".join(f"{r['tiles'][tile_id(t)]['us']:14.1f}" for t in K.GEMM_TILES_V11)
            print(f"{r['batch']:<3} {r['op']:<3} {cells}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--e2e-batches", default="1,64,256")
    ap.add_argument("--no-tiles", action="store_true", help="skip the pinned-tile sweep")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--versions", default="v10,v11", help="autotuned gemm versions timed per layer")
    ap.add_argument("--e2e-specs", default="gemm=v10;gemm=v11", help="';'-separated, timed in this order per batch")
    ap.add_argument("--max-hw", type=int, default=14, help="only pointwise layers on maps up to this size")
    args = ap.parse_args()
    props = cupy.cuda.runtime.getDeviceProperties(0)
    results = {
        "gpu": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(results), flush=True)
    net = default_network()
    rng = np.random.default_rng(0)
    t0 = time.time()
    try:
        batches = [int(b) for b in args.batches.split(",")]
        per_layer(net, batches, rng, results, not args.no_tiles, args.max_hw, args.versions.split(","))
        print(f"[per-layer done {time.time() - t0:.0f}s]", flush=True)
        if not args.skip_e2e:
            specs = [s for s in args.e2e_specs.split(";") if s]
            rows = []
            for b in args.e2e_batches.split(","):  # per batch, the specs back to back (same GPU state)
                ct.e2e(net, [int(b)], results, specs)
                rows += results["e2e"]
            results["e2e"] = rows
            print(f"[e2e done {time.time() - t0:.0f}s]", flush=True)
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
