"""hgemm v3 vs v4 (fp16 mode): every pointwise layer at the given batches, and e2e (CUDA graph) per spec.
Helpers from scripts/custom_fp16_time.py (same timing: CUDA-event medians, rotated inputs).

    python3 scripts/hgemm_v4_time.py --json $OUT/hgemm_v4_times.json [--batches 1,64,256] [--e2e-batches 1,64,256]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cupy  # noqa: E402
from custom_fp16_time import e2e, family_of, op_cost, op_launch_sets, time_sets  # noqa: E402

from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402

SPECS = ("hgemm=v3", "hgemm=v4")


def layers(net, batches, rng, results) -> None:
    rows = []
    bes = {s: CustomBackend(dtype="fp16", kernels=s) for s in SPECS}
    for be in bes.values():
        be._ensure_device()
    for batch in batches:
        tot = dict.fromkeys(bes, 0.0)
        for entry in net.distinct_ops():
            op = entry["op"]
            if family_of(op) != "hgemm":
                continue
            mult = len(entry["ops"])
            flop, by = op_cost(op, batch)
            for spec, be in bes.items():
                sets = op_launch_sets(be, op, batch, rng)
                ms = time_sets(be, sets, batch)
                tot[spec] += ms * mult
                row = {"op": op.index, "x": mult, "layer": op.describe(net.layers), "spec": spec, "batch": batch,
                       "median_ms": ms, "tflops": flop / ms / 1e9, "gbps": by / ms / 1e6,
                       "kernels": [f"{la.name}{list(la.grid)}" for la in sets[0]]}  # fmt: skip
                rows.append(row)
                print(f"layer bs{batch:<3} op{op.index:<3} x{mult} {spec:8s} {ms * 1e3:8.1f} us {row['tflops']:6.1f} "
                      f"TFLOP/s {row['gbps']:6.0f} GB/s {' '.join(row['kernels'])}", flush=True)  # fmt: skip
                del sets
        for spec, v in tot.items():
            print(f"pointwise sum bs{batch} {spec}: {v * 1e3:.1f} us", flush=True)
        results.setdefault("pointwise_sums_ms", {})[str(batch)] = tot
        results["layers"] = rows
        cupy.get_default_memory_pool().free_all_blocks()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--e2e-batches", default="1,64,256")
    args = ap.parse_args()
    net = default_network()
    results: dict = {"gpu": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "dtype": "fp16"}

    def dump() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))

    e2e(net, [int(b) for b in args.e2e_batches.split(",")], results, SPECS)
    dump()
    layers(net, [int(b) for b in args.batches.split(",")], np.random.default_rng(0), results)
    dump()


if __name__ == "__main__":
    main()
