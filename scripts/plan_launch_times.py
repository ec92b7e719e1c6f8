"""Device time of every launch of the custom backend's plan, each launch timed on its own, labelled with its op.
H100 (any CUDA GPU); results/NOTES.md cites its output.

    python3 scripts/plan_launch_times.py --batches 64,256 --specs ";fuse=v7" --json out.json

Per spec (a kernel spec, '' = the defaults) and batch: the backend plans the batch (the autotuner runs then), the
whole plan runs once eagerly on a random input (every buffer then holds real data), and every launch is timed alone
on the plan's own buffers: CUDA-event median of `repeats` samples of `inner` back-to-back launches (mbv2.timing).
Printed: one row per launch (op label, kernel, grid, us), the sum, and the CUDA-graph time of the whole plan
(median of `repeats` replays) for comparison: the graph adds launch gaps and, at large batch, runs each kernel with
a colder L2 than a launch repeated alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cupy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls._custom_flags import lone  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import cuda_event_timing  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "fp16"))
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--specs", default="", help="';'-separated kernel specs ('' = the defaults)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    net = default_network()
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        x = random_input(net, batch, seed=batch)
        for spec in args.specs.split(";"):
            be = CustomBackend(dtype=args.dtype, graph=True, kernels=spec)
            be.prepare(net)
            plan = be.plan(batch)
            be.run(x)
            label = ["?"] * len(plan.launches)
            for name, first, end in plan.op_ranges:
                for i in range(first, end):
                    label[i] = name.split("/", 1)[-1]
            graph = cuda_event_timing(
                lambda i, be=be, batch=batch: be.enqueue(batch), warmup=3, repeats=args.repeats, stream=be.stream
            )
            print(f"== {gpu} {args.dtype} bs{batch} spec {spec or 'default'!r}: {len(plan.launches)} launches, "
                  f"graph {graph.median_ms:.4f} ms", flush=True)  # fmt: skip
            total = 0.0
            for i, la in enumerate(plan.launches):
                alone = lone(la)  # (fuse v43's flag twins: no producer flags)
                t = cuda_event_timing(
                    lambda _, la=alone, be=be: be.launch_all([la]),
                    warmup=4,
                    repeats=args.repeats,
                    stream=be.stream,
                    inner=args.inner,
                )
                us = t.median_ms * 1e3
                total += us
                rows.append({"gpu": gpu, "dtype": args.dtype, "batch": batch, "kernels": spec or "default", "index": i,
                             "op": label[i], "kernel": la.name, "grid": list(la.grid), "block": list(la.block),
                             "us": us, "graph_ms": graph.median_ms})  # fmt: skip
                print(f"  {i:3d} {label[i][:44]:44s} {la.name:34s} {str(tuple(la.grid)):18s} {us:9.1f} us", flush=True)
            print(f"  sum of launches alone {total / 1e3:.4f} ms; graph {graph.median_ms:.4f} ms; "
                  f"tuned {len(be.tuned)}", flush=True)  # fmt: skip
            be.close()
            cupy.get_default_memory_pool().free_all_blocks()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
