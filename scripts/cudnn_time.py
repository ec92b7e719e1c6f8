"""Time the cudnn backend on this GPU: every wrapper per distinct layer (NCHW vs NHWC, batch 1 and 64),
the classifier through cuBLAS GemmEx / Sgemm vs cuDNN 1x1 conv, and the whole network eager vs CUDA graph
at batch 1/8/64/256. Prints Markdown tables; ``--json PATH`` also writes every figure.

Per-op device time: the op's pre-bound library calls (CudnnBackend.bind: planned, no checks, no allocation)
are captured ``--inner`` times into one CUDA graph and the graph replay is timed with CUDA events
(mbv2.timing.cuda_event_timing), divided by ``--inner``. This measures what the GPU spends on the op, without
the Python launch gaps that would dominate an eager loop at batch 1. End to end is reported both ways:
eager (Python walks the launch list, host-bound at small batches) and CUDA-graph replay, both as CUDA-event
medians on the backend's stream, plus host wall time of run(x) (upload + launches + download).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import impls  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import CudaGraph, cuda_event_timing, host_timing  # noqa: E402


def event_timing(fn, stream, repeats: int, hide_launch: bool = True, warmup: int = 5):
    """cuda_event_timing; hide_launch (a spin kernel ahead of each sample) when this mbv2 has it."""
    kw = {"hide_launch": hide_launch} if "hide_launch" in inspect.signature(cuda_event_timing).parameters else {}
    return cuda_event_timing(fn, warmup=warmup, repeats=repeats, stream=stream, **kw)


def graph_time_ms(fn, stream, inner: int, repeats: int) -> float:
    """Median device ms of one fn() call: fn captured ``inner`` times into a graph, replay timed."""
    fn()
    stream.synchronize()
    stream.begin_capture()
    try:
        for _ in range(inner):
            fn()
    finally:
        graph = stream.end_capture()
    t = event_timing(lambda i: graph.launch(stream), stream, repeats)
    return t.median_ms / inner


def dev_array(backend, rng, n: int, shape: tuple[int, ...], scale: float = 1.0):
    x = (scale * rng.standard_normal((n, *shape))).astype(np.float32)
    return backend.to_device(x)


def time_ops(net, layouts, batches, inner: int, repeats: int, rng) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    entries = [e for e in net.distinct_ops() if e["key"][0] in ("conv", "pool")]
    for layout in layouts:
        with impls.create("cudnn", layout=layout) as b:
            b.prepare(net)
            for n in batches:
                for e in entries:
                    op = e["op"]
                    x = dev_array(b, rng, n, op.in_shape, 3.0)
                    if op.kind == "pool":
                        import cupy

                        with b.stream:
                            y = cupy.empty((n, op.in_shape[0]), dtype=cupy.float32)
                        res = None
                    else:
                        y = b._empty(n, op.out_shape)
                        res = dev_array(b, rng, n, op.out_shape) if op.residual is not None else None
                    fn = b.bind(op, x, y, res)
                    ms = graph_time_ms(fn, b.stream, inner, repeats)
                    algo = ""
                    if op.kind == "conv":
                        algo = b._plans[("conv", id(op.layer), n, bool(op.act), res is not None)].info["algo"]
                    flops = op.layer.flops() * n if op.kind == "conv" else 0
                    nbytes = 4 * n * (int(np.prod(op.in_shape)) + int(np.prod(op.out_shape)))
                    rows.append(
                        {
                            "layout": layout,
                            "batch": n,
                            "key": str(e["key"]),
                            "describe": op.describe(net.layers),
                            "ops": e["ops"],
                            "kind": op.kind,
                            "us": ms * 1e3,
                            "algo": algo,
                            "gflops": flops / (ms * 1e-3) / 1e9 if flops else 0.0,
                            "gbs": nbytes / (ms * 1e-3) / 1e9,
                        }
                    )
                    del fn, x, y, res
    return rows


def time_linear(net, batches, inner: int, repeats: int, rng) -> list[dict[str, Any]]:
    rows = []
    op = next(o for o in net.fused if o.kind == "linear")
    for impl in ("cublas", "cublas_sgemm", "cudnn"):
        with impls.create("cudnn", linear=impl) as b:
            b.prepare(net)
            for n in batches:
                x = dev_array(b, rng, n, op.in_shape)
                y = b._empty(n, op.out_shape)
                ms = graph_time_ms(b.bind(op, x, y), b.stream, inner, repeats)
                algo = b._plans[("linear", id(op.layer), n)].info["algo"] if impl == "cudnn" else ""
                rows.append(
                    {
                        "impl": impl,
                        "batch": n,
                        "us": ms * 1e3,
                        "algo": algo,
                        "gflops": op.layer.flops() * n / (ms * 1e-3) / 1e9,
                    }
                )
    return rows


def time_e2e(net, layouts, batches, repeats: int, rng) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = []
    algos: dict[str, Any] = {}
    for layout in layouts:
        with impls.create("cudnn", layout=layout) as b:
            b.prepare(net)
            for n in batches:
                x = rng.standard_normal((n, *net.input_shape)).astype(np.float32)
                t0 = time.perf_counter()
                plan = b.plan_network(n)
                plan_s = time.perf_counter() - t0
                reps = repeats if n < 256 else max(10, repeats // 3)
                eager = event_timing(lambda i, n=n: b.launch_network(n), b.stream, reps, hide_launch=False)
                eager_dev = event_timing(lambda i, n=n: b.launch_network(n), b.stream, reps, hide_launch=True)
                eager_wall = host_timing(lambda i, x=x: b.run(x), warmup=2, repeats=max(5, reps // 2))
                ref = b.run(x)
                g = CudaGraph(lambda plan=plan: b._launch(plan.calls), b.stream)
                graph = event_timing(lambda i, g=g: g.replay(), b.stream, reps, hide_launch=False)
                plan.graph = g  # run() now replays the graph
                graph_wall = host_timing(lambda i, x=x: b.run(x), warmup=2, repeats=max(5, reps // 2))
                same = bool(np.array_equal(b.run(x), ref))
                plan.graph = None
                rows.append(
                    {
                        "layout": layout,
                        "batch": n,
                        "eager_ms": eager.median_ms,
                        "eager_device_ms": eager_dev.median_ms,
                        "graph_ms": graph.median_ms,
                        "eager_wall_ms": eager_wall.median_ms,
                        "graph_wall_ms": graph_wall.median_ms,
                        "img_s_graph": n / (graph.median_ms * 1e-3),
                        "plan_s": plan_s,
                        "graph_equals_eager": same,
                        "workspace_MiB": plan.workspace.nbytes / 2**20,
                        "activations_MiB": (sum(s.nbytes for s in plan.slabs) + plan.input.nbytes) / 2**20,
                    }
                )
                print(
                    f"  e2e {layout} bs{n}: eager {eager.median_ms:.3f} ms, graph {graph.median_ms:.3f} ms", flush=True
                )
                del g
            algos[layout] = b.info()["algorithms"]
    return rows, algos


def leak_check(net, cycles: int, rng) -> dict[str, Any]:
    import cupy

    x = rng.standard_normal((4, *net.input_shape)).astype(np.float32)

    def cycle(layout: str) -> None:
        with impls.create("cudnn", layout=layout, graph=True) as b:
            b.prepare(net)
            b.run(x)

    def measure():
        cupy.cuda.Device().synchronize()
        pool = cupy.get_default_memory_pool()
        used = pool.used_bytes()
        pool.free_all_blocks()
        return used, cupy.cuda.runtime.memGetInfo()[0]

    for layout in ("nchw", "nhwc"):
        cycle(layout)
    used0, free0 = measure()
    for i in range(cycles):
        cycle(("nchw", "nhwc")[i % 2])
    used1, free1 = measure()
    return {
        "cycles": cycles,
        "pool_used_before": used0,
        "pool_used_after": used1,
        "free_before": free0,
        "free_after": free1,
        "free_delta_MiB": (free0 - free1) / 2**20,
    }


def _algo_cell(a: dict[str, Any]) -> str:
    cell = a["algo"] + ("*" if a.get("fastest_conv_only", a["algo"]) != a["algo"] else "")
    act = a.get("activation", "")
    return cell + (" +clip" if act == "clip6" else " +relu" if act.startswith("relu") else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="write all figures here")
    ap.add_argument("--inner", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--op-batches", default="1,64")
    ap.add_argument("--e2e-batches", default="1,8,64,256")
    ap.add_argument("--leak-cycles", type=int, default=6)
    args = ap.parse_args()
    ok, reason = impls.available("cudnn")
    if not ok:
        print(f"cudnn backend not available: {reason}")
        return 2
    rng = np.random.default_rng(0)
    net = default_network()
    op_batches = [int(b) for b in args.op_batches.split(",")]
    e2e_batches = [int(b) for b in args.e2e_batches.split(",")]
    layouts = ("nchw", "nhwc")
    with impls.create("cudnn") as b:
        b.prepare(net)
        info = b.info()
    print(
        f"cuDNN {info['cudnn_version']} ({info['cudnn_library']}), cuBLAS {info['cublas_version']} "
        f"({info['cublas_library']}), conv math {info['conv_math']}"
    )
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"GPU {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}")

    t0 = time.perf_counter()
    ops = time_ops(net, layouts, op_batches, args.inner, args.repeats, rng)
    print(f"per-op timing done in {time.perf_counter() - t0:.1f} s", flush=True)
    lin = time_linear(net, sorted(set(op_batches + [256])), args.inner, args.repeats, rng)
    e2e, algos = time_e2e(net, layouts, e2e_batches, args.repeats, rng)
    leak = leak_check(net, args.leak_cycles, rng)

    # -- tables ----------------------------------------------------------------------------------
    print("\n### Per distinct op: device time (us), CUDA-graph of pre-bound calls, median")
    print("| op (fused indices) | batch | NCHW us | NHWC us | faster | NCHW algo | NHWC algo | GFLOP/s (best) |")
    print("|---|---|---|---|---|---|---|---|")
    idx = {(r["layout"], r["batch"], r["key"]): r for r in ops}
    faster_count = {"nchw": 0, "nhwc": 0}
    for n in op_batches:
        for r in [r for r in ops if r["layout"] == "nchw" and r["batch"] == n]:
            a, c = r, idx[("nhwc", n, r["key"])]
            fast = "NCHW" if a["us"] <= c["us"] else "NHWC"
            faster_count[fast.lower()] += 1
            best = a if fast == "NCHW" else c
            print(
                f"| {r['describe']} ({','.join(map(str, r['ops']))}) | {n} | {a['us']:.2f} | {c['us']:.2f} | "
                f"{fast} | {a['algo']} | {c['algo']} | {best['gflops']:.0f} |"
            )
    print(f"\nfaster layout per op (count over ops x batches): {faster_count}")
    print("\n### Classifier Linear(1280, 1000): device time (us)")
    print("| batch | cublasGemmEx | cublasSgemm | cuDNN 1x1 conv (algo) |")
    print("|---|---|---|---|")
    for n in sorted({r["batch"] for r in lin}):
        rr = {r["impl"]: r for r in lin if r["batch"] == n}
        print(
            f"| {n} | {rr['cublas']['us']:.2f} | {rr['cublas_sgemm']['us']:.2f} | "
            f"{rr['cudnn']['us']:.2f} ({rr['cudnn']['algo']}) |"
        )
    print("\n### Whole network (CUDA-event median ms on the stream; wall = run(x) incl. H2D/D2H)")
    print(
        "| layout | batch | eager ms | eager device ms | graph ms | eager wall ms | graph wall ms | img/s (graph) "
        "| graph==eager | workspace MiB | activations MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in e2e:
        print(
            f"| {r['layout']} | {r['batch']} | {r['eager_ms']:.3f} | {r['eager_device_ms']:.3f} | {r['graph_ms']:.3f} "
            f"| {r['eager_wall_ms']:.3f} | {r['graph_wall_ms']:.3f} | {r['img_s_graph']:.0f} "
            f"| {r['graph_equals_eager']} | {r['workspace_MiB']:.1f} | {r['activations_MiB']:.0f} |"
        )
    print(
        "(eager ms: events around the Python launch loop; eager device ms: the same with a spin kernel queued "
        "first so that the loop is hidden, i.e. GPU time; graph ms: one graph replay; wall: run(x) on the host)"
    )
    print("\n### Chosen algorithms (batch 1 / 64)")
    print("| op | layer | NCHW bs1 | NHWC bs1 | NCHW bs64 | NHWC bs64 |")
    print("|---|---|---|---|---|---|")
    for i, a in enumerate(algos["nchw"].get("1", [])):
        cells = []
        for lay, bs in (("nchw", "1"), ("nhwc", "1"), ("nchw", "64"), ("nhwc", "64")):
            lst = algos[lay].get(bs, [])
            cells.append(_algo_cell(lst[i]) if i < len(lst) else "-")
        print(f"| {a['op']} | {a['describe']} | " + " | ".join(cells) + " |")
    print(
        "(* = not the fastest conv-only algorithm of the search: the fused call refused that one; "
        "+clip = ReLU6 inside the fused call as CLIPPED_RELU, +relu = ReLU there and a separate clip pass)"
    )
    for lay, by_batch in algos.items():
        for bs, lst in by_batch.items():
            acts = [a.get("activation", "") for a in lst]
            print(
                f"{lay} bs{bs}: activation in the fused call: "
                + ", ".join(f"{k} x{acts.count(k)}" for k in sorted(set(acts)))
            )
    print(f"\n### Leak check: {leak}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"info": info, "ops": ops, "linear": lin, "e2e": e2e, "algorithms": algos, "leak": leak},
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
