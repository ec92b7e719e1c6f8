"""Time net v2 (the whole network as one persistent kernel) against net v1 (one kernel per layer):
end-to-end device time (CUDA-event medians, mbv2.timing, like scripts/custom_time.py: launch latency
hidden by a spin kernel) and host time at batch 1 and 8, eager and CUDA graph; option variants of v2;
the grid barrier alone (launches of N empty stages); the per-stage breakdown of one stamped run.

    python3 scripts/custom_persistent_time.py --json $OUT/persistent_times.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls._custom_persistent import barrier_launch, stage_breakdown  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import cuda_event_timing, host_timing  # noqa: E402

VARIANTS = {  # net v2 option sets (impls/_custom_persistent.py)
    "v2": {},
    "v2 nofuse": {"fuse": False},
    "v2 1blk/SM": {"blocks_per_sm": 1},
}


def make(spec: str, graph: bool, options: dict | None = None) -> CustomBackend:
    be = CustomBackend(kernels=spec, graph=graph)
    if options is not None:
        be.persistent_options = options
    return be


def e2e(net, batches, variants, results):
    rows = []
    for name, (spec, opts) in variants.items():
        for batch in batches:
            x = random_input(net, batch, seed=batch)
            for graph in (False, True):
                try:
                    be = make(spec, graph, opts)
                    t0 = time.perf_counter()
                    be.prepare(net)
                    be.plan(batch)
                    t_plan = time.perf_counter() - t0
                    be.run(x)
                    dev = cuda_event_timing(
                        lambda i, be=be, batch=batch: be.enqueue(batch), warmup=10, repeats=50, stream=be.stream
                    )
                    host = host_timing(lambda i, be=be, x=x: be.run(x), warmup=3, repeats=20)
                except Exception as exc:  # report and go on: one failing variant must not hide the others
                    print(f"e2e {name} bs{batch} graph={graph}: FAILED {type(exc).__name__}: {exc}", flush=True)
                    rows.append(
                        {"variant": name, "batch": batch, "graph": graph, "error": f"{type(exc).__name__}: {exc}"}
                    )
                    continue
                row = {
                    "variant": name,
                    "spec": spec,
                    "options": opts,
                    "batch": batch,
                    "graph": graph,
                    "device_ms": dev.median_ms,
                    "device_p10_ms": dev.p10_ms,
                    "device_p90_ms": dev.p90_ms,
                    "host_ms": host.median_ms,
                    "plan_s": t_plan,
                }
                rows.append(row)
                print(
                    f"e2e {name:12s} bs{batch:<2} graph={graph!s:5s} device {dev.median_ms:8.4f} ms "
                    f"(p10 {dev.p10_ms:.4f} p90 {dev.p90_ms:.4f})  host {host.median_ms:8.4f} ms",
                    flush=True,
                )
    results["e2e"] = rows


def barrier(results, stage_counts=(0, 1, 101, 401)):
    be = CustomBackend(kernels="net=v2")
    be._ensure_device()
    rows = []
    for bps in (1, 2):
        times = {}
        for n in stage_counts:
            launch = barrier_launch(be, n, bps)

            def fn(i, launch=launch):
                with be.stream:
                    be._launch(launch)

            t = cuda_event_timing(fn, warmup=10, repeats=50, stream=be.stream)
            times[n] = t.median_ms * 1e3
            print(f"barrier {bps} blk/SM grid {launch.grid[0]}: {n:4d} empty stages {times[n]:8.2f} us", flush=True)
        lo, hi = stage_counts[1], stage_counts[-1]
        per = (times[hi] - times[lo]) / (hi - lo)
        rows.append({"blocks_per_sm": bps, "grid": launch.grid[0], "us_by_stages": times, "barrier_us": per})
        print(f"barrier {bps} blk/SM: {per:.3f} us per grid barrier; empty launch {times[0]:.2f} us", flush=True)
    results["barrier"] = rows


def breakdown(net, results, variants):
    out = {}
    for name, (spec, opts) in variants.items():
        be = make(spec, False, opts)
        be.prepare(net)
        plan = be.plan(1)
        be.run(random_input(net, 1, seed=1))
        runs = [stage_breakdown(be, plan) for _ in range(5)]
        best = min(runs, key=lambda r: r["total_us"])
        out[name] = {**best, "choices": plan.persistent.choices, "grid": plan.persistent.grid}
        print(
            f"\nbreakdown {name} (batch 1, stamped run, grid {plan.persistent.grid}): total {best['total_us']:.1f} us, "
            f"clock {best['ghz']:.2f} GHz",
            flush=True,
        )
        print(f"{'stage':58s} {'items':>6s} {'work max':>9s} {'work med':>9s} {'stage':>8s}  (us)")
        for r in best["stages"]:
            print(
                f"{r['stage'][:58]:58s} {r['items']:6d} {r['work_max_us']:9.2f} {r['work_median_us']:9.2f} "
                f"{r['stage_us']:8.2f}"
            )
        work = sum(r["work_max_us"] for r in best["stages"])
        tot = sum(r["stage_us"] for r in best["stages"])
        print(
            f"sum: slowest-block work {work:.1f} us, stages incl. barrier {tot:.1f} us, "
            f"barrier + imbalance {tot - work:.1f} us"
        )
        for c in plan.persistent.choices:
            print("  ", c)
    results["breakdown"] = out


def variants(net, results):
    tmp: dict = {}
    e2e(net, [1], {k: ("net=v2", v) for k, v in VARIANTS.items() if v}, tmp)
    results["variants"] = tmp["e2e"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: e2e,variants,barrier,breakdown")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    net = default_network()
    results: dict = {}
    batches = [int(b) for b in args.batches.split(",")]
    sections = [
        ("barrier", lambda: barrier(results)),
        ("e2e", lambda: e2e(net, batches, {"v1": ("net=v1", None), "v2": ("net=v2", {})}, results)),
        (
            "breakdown",
            lambda: breakdown(net, results, {k: ("net=v2", v) for k, v in VARIANTS.items()}),
        ),
        ("variants", lambda: variants(net, results)),
    ]
    for name, fn in sections:
        if name in skip:
            continue
        t0 = time.time()
        try:
            fn()
        except Exception:
            traceback.print_exc()
            results.setdefault("errors", {})[name] = traceback.format_exc()
        print(f"[{name} done {time.time() - t0:.0f}s]", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
