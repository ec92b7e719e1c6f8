"""Where the batch-1 spread between fresh custom backends comes from (session 18; results/NOTES.md "Plan-time tuning
inside the plan"). Any CUDA GPU.

    python3 scripts/instance_spread.py --batch 1 --copies 3 --fresh 2 --rounds 7 --json out.json

Instances, all CUDA-graph plans of the default kernels: A (tuned), `copies` backends planned with A's tuner cache
(the same picks, their own buffers), A's plan captured again into a new graph (the same launches and buffers), and
`fresh` backends that tune themselves. Interleaved rounds (CUDA-event median of `repeats` replays, mbv2.timing) time
each. If the copies spread as far as the fresh backends, the spread is not the tuner's picks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import cupy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import CudaGraph, cuda_event_timing  # noqa: E402


def picks(be: CustomBackend, batch: int) -> list[tuple]:
    """Each launch's kernel, grid, block and integer arguments (no pointers): equal lists = the same plan."""
    out = []
    for la in be.plan(batch).launches:
        ints = tuple(int(a) for a in la.args if not hasattr(a, "data"))
        out.append((la.name, tuple(la.grid), tuple(la.block), ints))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--fresh", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    net = default_network()
    x = random_input(net, args.batch, seed=args.batch)
    insts: list[tuple[str, CustomBackend, object]] = []

    def make(cache: dict | None) -> CustomBackend:
        be = CustomBackend(graph=True, plan_tune=False)
        be.prepare(net)
        if cache is not None:
            be._tune_cache = dict(cache)
        be.plan(args.batch)
        be.run(x)
        return be

    a = make(None)
    insts.append(("A (tuned)", a, None))
    for i in range(args.copies):
        insts.append((f"copy {i} (A's picks)", make(a._tune_cache), None))
    plan = a.plan(args.batch)
    regraph = CudaGraph(lambda: a._enqueue_eager(plan), a.stream)
    insts.append(("A re-captured", a, regraph))
    for i in range(args.fresh):
        insts.append((f"fresh {i}", make(None), None))
    ref = picks(a, args.batch)
    times: list[list[float]] = [[] for _ in insts]
    for _ in range(args.rounds):
        for j, (_, be, g) in enumerate(insts):
            fn = (lambda i, g=g: g.replay()) if g is not None else (lambda i, be=be: be.enqueue(args.batch))
            times[j].append(cuda_event_timing(fn, warmup=3, repeats=args.repeats, stream=be.stream).median_ms)
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    rows = []
    for (label, be, _g), t in zip(insts, times):
        same = picks(be, args.batch) == ref
        ptrs = [hex(int(b.data.ptr)) for b in be.plan(args.batch).buffers[:3]]
        med = statistics.median(t)
        rows.append({"gpu": gpu, "batch": args.batch, "instance": label, "same_plan_as_A": same, "device_ms": med,
                     "round_medians_ms": t, "buffers": ptrs})  # fmt: skip
        print(f"spread {gpu} bs{args.batch} {label:22s} {med * 1e3:8.2f} us (rounds {min(t) * 1e3:.2f}-"
              f"{max(t) * 1e3:.2f})  same plan as A: {same}  buffers {' '.join(ptrs)}", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
