"""What each launch adds to the CUDA-graph time of the custom backend's plan (session 18). Any CUDA GPU;
results/NOTES.md cites its output.

    python3 scripts/plan_prefix_times.py --batch 1 --kernels "" --rounds 5 --json out.json

The plan (default kernels, or --kernels; tuned as usual, or with --picks an earlier run's picks replayed) is built once
and run on a random input; then the first k launches for k = 1 .. all are each captured as a CUDA graph and timed (CUDA-
event median of `repeats` replays after warm-up, mbv2.timing; `rounds` interleaved rounds, the median of the round
medians). A launch's marginal time is t(k) - t(k-1): what it adds to the graph as it runs, after programmatic dependent
launch overlaps it with the kernel before (plan_launch_times.py times each launch alone instead).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import cupy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import CudaGraph, cuda_event_timing  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--kernels", default="", help="a kernel spec ('' = the defaults)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default="")
    ap.add_argument("--picks", default=None, help="tune_picks: an earlier run's autotuner picks to replay (a file)")
    ap.add_argument("--trig", default=None, help="fuse v45's trigger_launches, e.g. 1+4-9 (default: every twin)")
    ap.add_argument("--stage", default=None, help="fuse v47's stage_launches, e.g. 1+2 (default: the version's)")
    args = ap.parse_args()
    net = default_network()
    be = CustomBackend(graph=True, kernels=args.kernels, tune_picks=args.picks)
    if args.trig is not None:
        be.trigger_launches = K.trigger_set_parse(args.trig)
    if args.stage is not None:
        be.stage_launches = K.trigger_set_parse(args.stage)
    be.prepare(net)
    plan = be.plan(args.batch)
    be.run(random_input(net, args.batch, seed=args.batch))
    launches = plan.launches
    op_of = {}
    for label, lo, hi in plan.op_ranges:
        for i in range(lo, hi):
            op_of[i] = label
    graphs = [CudaGraph(lambda k=k: be._enqueue_launches(launches[:k]), be.stream) for k in range(1, len(launches) + 1)]
    graphs.append(plan.graph)  # the plan's own graph: the same launches as the last prefix
    times: list[list[float]] = [[] for _ in graphs]
    for _ in range(args.rounds):
        for k, g in enumerate(graphs):
            t = cuda_event_timing(lambda i, g=g: g.replay(), warmup=3, repeats=args.repeats, stream=be.stream)
            times[k].append(t.median_ms * 1e3)
    med = [statistics.median(t) for t in times]
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    rows = []
    prev = 0.0
    picks = f" picks {args.picks}" if args.picks else ""
    opts = {"carveout": be.carveout, "pdl_trigger": be.pdl_trigger, "stage": be.stage}  # the process-wide options
    if args.trig is not None:
        opts["trig"] = args.trig
    if args.stage is not None:
        opts["stage_launches"] = args.stage
    shown = "".join(f" {k} {v}" for k, v in opts.items() if v not in (None, "end", "sync"))
    kern = args.kernels or "default"
    print(f"prefix {gpu} batch {args.batch} kernels {kern}{picks}{shown}: {len(launches)} launches")
    for k, la in enumerate(launches):
        row = {"gpu": gpu, "batch": args.batch, "kernels": args.kernels or "default", "launch": k, "name": la.name,
               "op": op_of.get(k, ""), "grid": list(la.grid), "block": list(la.block), "prefix_us": med[k],
               "marginal_us": med[k] - prev, "rounds_us": times[k], "smem": la.smem, **opts}  # fmt: skip
        rows.append(row)
        print(f"prefix {k:3d} {la.name:34s} grid {str(tuple(la.grid)):14s} +{med[k] - prev:6.2f} us  "
              f"(through it {med[k]:7.2f})  {op_of.get(k, '')[:48]}")  # fmt: skip
        prev = med[k]
    print(f"prefix plan graph {med[-1]:.2f} us (the last prefix {med[-2]:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "plan_graph_us": med[-1]}, indent=1))


if __name__ == "__main__":
    main()
