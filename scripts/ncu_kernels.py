"""One inference of a backend under Nsight Compute: every kernel's DRAM / SM throughput and occupancy.

    ncu --clock-control none --profile-from-start off --csv --page raw --metrics gpu__time_duration.sum,\
dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,\
sm__warps_active.avg.pct_of_peak_sustained_active,dram__bytes.sum \
        python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 64 > ncu.csv
    python3 scripts/ncu_kernels.py --summarize ncu.csv        # markdown table, one row per kernel launch

`--graph` (session 40): the profiled run is one replay of the plan's CUDA graph after 5 warm ones (with
`--graph-profiling graph` the graph is one result; with `--cache-control none` the L2 is as the timed replays find it).

`--clock-control none`: the GPU's clocks are left alone (ncu's default locks them to base clock while
profiling; durations then read longer than CUDA-event figures). The profiled region is one eager run
of the planned network (plan, autotuning and a warm-up run happen before cudaProfilerStart), so every
launch of the real plan shows, in order.

Optional metrics, summarised when the CSV has them (`--metrics` list in `EXTRA` below): L2 bytes
(lts__t_bytes.sum -> achieved L2 GB/s), fp32 FMA / add / mul instructions (-> achieved GFLOP/s, an FMA counted as
2 FLOP), issue-slot use (smsp__issue_active: the share of scheduler cycles that issued an instruction).

Warp stall reasons: with the WarpStateStats metrics (`STALL_METRICS`: smsp__average_warps_issue_stalled_<reason>_
per_issue_active.ratio, and smsp__average_warps_active_per_issue_active.ratio = the cycles between two issues of a
warp) the summary adds a second table: per kernel the cycles per issued instruction and the four largest stall
reasons in cycles per issue (ncu's own breakdown of those cycles).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METRICS = {
    "gpu__time_duration.sum": "us",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": "DRAM %",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": "SM %",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "occupancy %",
    "dram__bytes.sum": "DRAM MB",
}
# optional: derived columns (GFLOP/s, L2 GB/s) and issue-slot use; printed only when the CSV has the metric
EXTRA = {
    "lts__t_bytes.sum": "L2 GB/s",
    "sm__sass_thread_inst_executed_op_ffma_pred_on.sum": "GFLOP/s",
    "smsp__issue_active.avg.pct_of_peak_sustained_active": "issue %",
}
FLOP_PARTS = (
    "sm__sass_thread_inst_executed_op_ffma_pred_on.sum",
    "sm__sass_thread_inst_executed_op_fadd_pred_on.sum",
    "sm__sass_thread_inst_executed_op_fmul_pred_on.sum",
)
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
STALL_PREFIX, STALL_SUFFIX = "smsp__average_warps_issue_stalled_", "_per_issue_active.ratio"
STALL_REASONS = ("barrier", "long_scoreboard", "short_scoreboard", "wait", "membar", "no_instruction", "mio_throttle",
                 "math_pipe_throttle", "not_selected", "selected", "lg_throttle", "dispatch_stall", "branch_resolving",
                 "sleeping", "drain", "misc", "imc_miss", "tex_throttle")  # fmt: skip
CYCLES_PER_ISSUE = "smsp__average_warps_active_per_issue_active.ratio"
STALL_METRICS = (CYCLES_PER_ISSUE, *(STALL_PREFIX + r + STALL_SUFFIX for r in STALL_REASONS))


def _plain(value: str, unit: str) -> float:
    """A raw-page CSV cell as a plain number: bytes (byte / Kbyte / Mbyte / Gbyte) and counts; NaN when empty."""
    if not value:
        return float("nan")
    v = float(value.replace(",", ""))
    for base in ("byte", "inst"):
        if unit.endswith(base):
            return v * _SCALE.get(unit[: -len(base)], 1.0)
    return v


def profile_once(backend: str, dtype: str, batch: int, kernels: str, graph: bool = False) -> None:
    import cupy

    import impls
    from mbv2.model import default_network
    from mbv2.network import random_input

    net = default_network()
    opts = {"kernels": kernels} if kernels else {}
    if graph:  # session 40: the profiled run is one replay of the plan's CUDA graph (ncu --graph-profiling)
        opts["graph"] = True
    be = impls.create(backend, dtype=dtype, **opts)
    be.prepare(net)
    x = random_input(net, batch)
    be.run(x)  # plan, tune, warm up
    if graph:  # the L2 as the timed replays find it: the weights and buffers of earlier replays
        for _ in range(5):
            be.enqueue(batch)
        be.synchronize()
    cupy.cuda.runtime.profilerStart()
    be.enqueue(batch)
    be.synchronize()
    cupy.cuda.runtime.profilerStop()


def _raw(path: str) -> tuple[list[str], list[str], list[list[str]]]:
    """An ncu --csv --page raw file's header, units row and data rows (past ncu's own lines before the header)."""
    rows = list(csv.reader(open(path)))
    start = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
    return rows[start], rows[start + 1], rows[start + 2 :]


def columns(path: str, metrics: list[str]) -> str:
    """A markdown table of the named raw metrics per kernel launch, as ncu printed them (session 41: the pipe and
    shared-memory counters of scripts/dmma_probe_device.sh); metrics the file lacks are left out."""
    head, _, data = _raw(path)
    cols = [m for m in metrics if m in head]
    out = ["| kernel | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in data:
        out.append(f"| {r[head.index('Kernel Name')]} | " + " | ".join(r[head.index(m)] for m in cols) + " |")
    return "\n".join(out)


def summarize(path: str) -> str:
    head, units, data = _raw(path)
    col = {name: head.index(name) for name in ["Kernel Name", *METRICS, *EXTRA, *FLOP_PARTS] if name in head}
    extra = [m for m in EXTRA if m in col]
    out = ["| # | kernel | " + " | ".join([*METRICS.values(), *(EXTRA[m] for m in extra)]) + " |"]
    out.append("|---" * (len(METRICS) + len(extra) + 2) + "|")
    for i, r in enumerate(data):
        vals = []
        t_ns = float("nan")
        for m in METRICS:
            v = float(r[col[m]].replace(",", "")) if m in col and r[col[m]] else float("nan")
            unit = units[col[m]] if m in col else ""
            if m == "gpu__time_duration.sum":  # -> us
                v *= {"ns": 1e-3, "nsecond": 1e-3, "ms": 1e3, "msecond": 1e3}.get(unit, 1.0)
                t_ns = v * 1e3
            if m == "dram__bytes.sum":  # -> MB
                v *= {"byte": 1e-6, "Kbyte": 1e-3, "Gbyte": 1e3}.get(unit, 1.0)
            vals.append(f"{v:.1f}")
        for m in extra:
            if m == "lts__t_bytes.sum":  # bytes / ns = GB/s
                v = _plain(r[col[m]], units[col[m]]) / t_ns
            elif m == FLOP_PARTS[0]:  # FMA = 2 FLOP, add / mul = 1
                ffma, fadd, fmul = (_plain(r[col[p]], units[col[p]]) if p in col else 0.0 for p in FLOP_PARTS)
                v = (2 * ffma + fadd + fmul) / t_ns
            else:
                v = _plain(r[col[m]], units[col[m]])
            vals.append(f"{v:.1f}")
        out.append(f"| {i} | {r[col['Kernel Name']][:40]} | " + " | ".join(vals) + " |")
    stalls = [m for m in head if m.startswith(STALL_PREFIX) and m.endswith(STALL_SUFFIX)]
    if stalls and CYCLES_PER_ISSUE in head:
        out += ["", "| # | kernel | cycles per issue | largest stall reasons (cycles per issue) |", "|---|---|---|---|"]
        for i, r in enumerate(data):
            cpi = _plain(r[head.index(CYCLES_PER_ISSUE)], "")
            by = sorted(((_plain(r[head.index(m)], ""), m[len(STALL_PREFIX) : -len(STALL_SUFFIX)]) for m in stalls),
                        reverse=True)  # fmt: skip
            top = ", ".join(f"{name} {v:.1f}" for v, name in by[:4])
            out.append(f"| {i} | {r[head.index('Kernel Name')][:40]} | {cpi:.1f} | {top} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="custom")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--kernels", default="")
    ap.add_argument("--graph", action="store_true", help="profile one replay of the plan's CUDA graph (a warm one)")
    ap.add_argument("--summarize", help="an ncu --csv --page raw file: print a markdown table")
    ap.add_argument("--stall-metrics", action="store_true", help="print the WarpStateStats metric list for --metrics")
    ap.add_argument(
        "--columns", nargs=2, metavar=("CSV", "METRICS"), help="an ncu raw-page CSV, metrics: their values per kernel"
    )
    args = ap.parse_args()
    if args.stall_metrics:
        print(",".join(STALL_METRICS))
    elif args.columns:
        print(columns(args.columns[0], [m for m in args.columns[1].split(",") if m]))
    elif args.summarize:
        print(summarize(args.summarize))
    else:
        profile_once(args.backend, args.dtype, args.batch, args.kernels, args.graph)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
