"""Each launch of a plan against the GPU's measured ceilings (host only; session 28). Reads plan_prefix_times.py's
JSON (each launch's marginal time in the CUDA graph) and a benchmark run's measured ceilings (SGEMM GFLOP/s, device
copy GB/s), and prints per launch: the network ops it runs, its useful FLOPs and the least bytes it must move (its
weights, its input and output activations, a residual), the rates these give at the measured time, and the time the
same work would take at the ceilings. results/NOTES.md cites its output.

    python3 scripts/launch_budget.py results/h200/session27/call3_inst3/prefix_P3.json \
        --run results/h200/session27/run.json

The bytes are a floor (every tensor moved once); in a CUDA-graph replay the weights come from L2, so the copy
bandwidth (DRAM) is the conservative ceiling. --json writes the rows.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mbv2.model import default_network  # noqa: E402
from mbv2.network import Network  # noqa: E402
from mbv2.report import machine  # noqa: E402

LABEL = re.compile(r"/(\d+):")
BYTES = 4  # fp32


def _nbytes(shape: tuple[int, ...], batch: int) -> int:
    return math.prod(shape) * batch * BYTES


def launch_ops(net: Network, rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The fused ops each launch runs: a launch labelled with layer L covers the fused ops whose first layer lies
    after the previous label's and up to L (plan_prefix_times.py labels a launch with the last op it ends)."""
    out: list[list[Any]] = []
    prev = -1
    for row in rows:
        m = LABEL.search(row.get("op", ""))
        if not m:
            raise ValueError(f"launch {row.get('launch')} ({row.get('name')}): no op label in {row.get('op')!r}")
        last = int(m.group(1))
        if last <= prev:
            raise ValueError(f"launch {row.get('launch')}: op labels out of order ({last} after {prev})")
        out.append([op for op in net.fused if prev < op.covers[0] <= last])
        prev = last
    return out


def budget(net: Network, rows: list[dict[str, Any]], gflops: float, gbps: float) -> list[dict[str, Any]]:
    """One dict per launch: flops, least bytes, measured us, rates, and the time at the ceilings."""
    batch = int(rows[0]["batch"])
    result = []
    for row, ops in zip(rows, launch_ops(net, rows), strict=True):
        if not ops:
            raise ValueError(f"launch {row['launch']} ({row['name']}) covers no op")
        inside = {op.index for op in ops}
        flops = sum(op.layer.flops() for op in ops) * batch
        weights = sum(op.layer.param_count() for op in ops) * BYTES
        acts = _nbytes(ops[0].in_shape, batch) + _nbytes(ops[-1].out_shape, batch)
        acts += sum(_nbytes(net.fused[op.residual].out_shape, batch) for op in ops
                    if op.residual is not None and op.residual not in inside)  # fmt: skip
        us = float(row["marginal_us"])
        t_ceil = max(flops / (gflops * 1e3), (weights + acts) / (gbps * 1e3))  # us
        result.append({
            "launch": row["launch"], "name": row["name"], "ops": [op.covers[0] for op in ops],
            "shape": f"{'x'.join(map(str, ops[0].in_shape))} -> {'x'.join(map(str, ops[-1].out_shape))}",
            "mflop": flops / 1e6, "kbytes": (weights + acts) / 1e3, "weight_kbytes": weights / 1e3, "us": us,
            "gflops": flops / (us * 1e3), "gbps": (weights + acts) / (us * 1e3), "ceiling_us": t_ceil,
        })  # fmt: skip
    return result


def table(rows: list[dict[str, Any]], gflops: float, gbps: float) -> str:
    lines = [
        "| # | kernel | shape | MFLOP | KB moved | us in graph | GFLOP/s | % SGEMM | GB/s | % copy | us at ceilings |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['launch']} | {r['name'].split('_f')[0].split('_m')[0][:28]} | {r['shape']} | {r['mflop']:.1f} | "
            f"{r['kbytes']:.0f} | {r['us']:.2f} | {r['gflops']:.0f} | {100 * r['gflops'] / gflops:.1f} | "
            f"{r['gbps']:.0f} | {100 * r['gbps'] / gbps:.1f} | {r['ceiling_us']:.2f} |"
        )
    us = sum(r["us"] for r in rows)
    fl = sum(r["mflop"] for r in rows)
    kb = sum(r["kbytes"] for r in rows)
    ce = sum(r["ceiling_us"] for r in rows)
    lines.append(
        f"| all | {len(rows)} launches | | {fl:.1f} | {kb:.0f} | {us:.2f} | {fl * 1e3 / us:.0f} | "
        f"{100 * fl * 1e3 / us / gflops:.1f} | {kb / us:.0f} | {100 * kb / us / gbps:.1f} | {ce:.2f} |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", help="plan_prefix_times.py --json output")
    ap.add_argument("--run", required=True, help="a benchmark run (run.json) of the same GPU: its measured ceilings")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    pre = json.loads(Path(args.prefix).read_text())
    run = json.loads(Path(args.run).read_text())
    meas = machine(run).get("measured") or {}
    gflops, gbps = meas.get("sgemm_gflops"), meas.get("copy_gbps")
    if not gflops or not gbps:
        raise SystemExit(f"{args.run}: no measured GPU ceilings (machine_info.mbv2.measured): {meas}")
    gpu, gpu_run = pre["rows"][0]["gpu"], (machine(run).get("gpu") or {}).get("name")
    if gpu_run and gpu_run != gpu:
        raise SystemExit(f"the prefix times are from {gpu}, the run's ceilings from {gpu_run}")
    rows = budget(default_network(), pre["rows"], gflops, gbps)
    b = pre["rows"][0]
    print(f"{gpu}, batch {b['batch']}, fp32, kernels {b['kernels']}: {len(rows)} launches, plan graph "
          f"{pre['plan_graph_us']:.2f} us; ceilings from {args.run}: SGEMM {gflops / 1e3:.1f} TFLOP/s, copy "
          f"{gbps:.0f} GB/s\n")  # fmt: skip
    print(table(rows, gflops, gbps))
    if args.json:
        Path(args.json).write_text(json.dumps({"gflops": gflops, "gbps": gbps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
