"""Results JSON (pytest-benchmark, with mbv2's extra_info and machine_info) -> tables and plots; compare runs.

    python -m mbv2 report results/run.json [--baseline cudnn] [--out DIR]
    python -m mbv2 compare OLD.json NEW.json [--threshold 5%]
    python -m mbv2 profile --out DIR

Figures are each result's ``device_ms`` (CUDA-event median; the host median for CPU backends, marked
timer="host"). Ratios to the ceiling use the ceilings measured on the same machine during the run
(machine_info.mbv2.measured: copy bandwidth, SGEMM rate), never a datasheet.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from .errors import InputError, MbvError

GPU_CEILING_KEYS = {"fp32": "sgemm_gflops", "tf32": "sgemm_gflops", "fp16": "hgemm_gflops"}
CPU_BACKENDS = ("numpy", "ort")
BASELINE_FALLBACKS = ("cudnn", "torch", "ort", "numpy")


# -- loading -------------------------------------------------------------------------------------
def load_run(path: str) -> dict[str, Any]:
    """A pytest-benchmark JSON written by this suite; MbvError with the reason otherwise."""
    if not os.path.exists(path):
        raise InputError(f"results file not found: {path}")
    try:
        with open(path) as f:
            run = json.load(f)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list) or "machine_info" not in run:
        raise InputError(
            f"{path} is not a pytest-benchmark JSON (no 'benchmarks' list / 'machine_info'); "
            "write one with: pytest bench/ --benchmark-json=PATH"
        )
    rows = [b for b in run["benchmarks"] if isinstance(b, dict) and (b.get("extra_info") or {}).get("kind")]
    if run["benchmarks"] and not rows:
        raise InputError(
            f"{path} holds benchmarks without mbv2's extra_info (kind/backend/batch/...): "
            "not written by this project's bench/ suite"
        )
    return run


def frames(run: dict[str, Any]):
    """(ops, e2e) pandas DataFrames, one row per result, extra_info columns plus name/host stats."""
    import pandas as pd

    rows = []
    for b in run["benchmarks"]:
        e = dict(b.get("extra_info") or {})
        if not e.get("kind"):
            continue
        e["name"] = b.get("name")
        e["fullname"] = b.get("fullname")
        st = b.get("stats") or {}
        e["host_median_ms"] = st.get("median", float("nan")) * 1e3 if st.get("median") is not None else None
        if e.get("kernel_version") is not None and not isinstance(e["kernel_version"], str):
            e["kernel_version"] = json.dumps(e["kernel_version"], sort_keys=True)
        rows.append(e)
    df = pd.DataFrame(rows)
    if df.empty:
        return df, df
    for col in ("scenario", "mode", "kernel_version", "op", "describe", "timer", "algorithm"):
        if col not in df:
            df[col] = None
    df["dtype"] = df["dtype"].fillna("fp32")
    ops = df[df["kind"] == "op"].copy()
    e2e = df[df["kind"] == "e2e"].copy()
    if not e2e.empty:
        e2e["mode"] = e2e["mode"].fillna(e2e["graph"].map({True: "graph", False: "eager"}))
    return ops, e2e


def machine(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("machine_info") or {}).get("mbv2") or {}


def ceilings(run: dict[str, Any], backend: str, dtype: str) -> tuple[float | None, float | None, str]:
    """(GFLOP/s, GB/s, source) measured on this run's machine for this backend's device."""
    m = machine(run)
    if backend in CPU_BACKENDS:
        meas = m.get("measured_cpu") or {}
        return meas.get("sgemm_gflops"), meas.get("copy_gbps"), "cpu"
    meas = m.get("measured") or {}
    return meas.get(GPU_CEILING_KEYS.get(dtype, "sgemm_gflops")), meas.get("copy_gbps"), "gpu"


def ceiling_fraction(run: dict[str, Any], row: dict[str, Any]) -> tuple[float | None, str]:
    """(fraction of the binding ceiling achieved, 'mem'|'compute'), or (None, '') when unknown."""
    gf, gb, _ = ceilings(run, row["backend"], row.get("dtype", "fp32"))
    ms = row.get("device_ms")
    if not ms or not gf or not gb or not row.get("flops") or not row.get("bytes"):
        return None, ""
    t_compute = row["flops"] / (gf * 1e6)
    t_mem = row["bytes"] / (gb * 1e6)
    return max(t_compute, t_mem) / ms, ("mem" if t_mem >= t_compute else "compute")


# -- markdown ------------------------------------------------------------------------------------
def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return str(v).replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def fmt_ms(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return f"{v:.4f}" if v < 1 else f"{v:.3f}" if v < 100 else f"{v:.1f}"


def fmt_x(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
        return None
    return f"{v:.2f}x"


def pick_baseline(available: list[str], wanted: str) -> tuple[str | None, str]:
    if wanted in available:
        return wanted, ""
    for b in BASELINE_FALLBACKS:
        if b in available:
            return b, f"baseline {wanted!r} is not in this run; speedups are over {b!r} instead"
    return None, f"baseline {wanted!r} is not in this run and no fallback is; no speedups"


def _dedupe(df):
    """One row per figure: the fastest kernel version where --all-versions timed several."""
    if df.empty:
        return df
    keys = [k for k in ("backend", "batch", "dtype", "mode", "scenario", "fused_op_first", "graph") if k in df]
    return df.sort_values("device_ms").drop_duplicates(keys, keep="first")


def e2e_section(run, e2e, baseline: str | None) -> str:
    parts = ["## End to end", ""]
    if e2e.empty:
        return "\n".join(parts + ["No end-to-end results in this run.", ""])
    main = _dedupe(e2e[e2e["scenario"].isna()])
    base = {}
    if baseline:
        for _, r in main[main["backend"] == baseline].iterrows():
            base[(r["batch"], r["dtype"], r["mode"])] = r["device_ms"]
    rows = []
    for _, r in main.sort_values(["backend", "dtype", "mode", "batch"]).iterrows():
        b = base.get((r["batch"], r["dtype"], r["mode"])) or base.get((r["batch"], r["dtype"], "eager"))
        rows.append(
            [
                r["backend"],
                r["dtype"],
                r["mode"],
                int(r["batch"]),
                fmt_ms(r["device_ms"]),
                fmt_ms(r.get("host_ms")),
                _num(r.get("images_per_s")),
                _num(r.get("images_per_s_host")),
                fmt_x(b / r["device_ms"]) if b and r["device_ms"] else None,
                r.get("timer"),
            ]
        )
    parts.append(
        md_table(
            [
                "backend",
                "dtype",
                "mode",
                "batch",
                "device ms",
                "host ms",
                "img/s (device)",
                "img/s (host)",
                f"speedup vs {baseline or '-'}",
                "timer",
            ],
            rows,
        )
    )
    parts.append("")
    # compact: ms by batch
    batches = sorted(main["batch"].unique())
    piv = []
    for (be, dt, mode), g in main.groupby(["backend", "dtype", "mode"]):
        by = {int(r["batch"]): r["device_ms"] for _, r in g.iterrows()}
        piv.append([be, dt, mode, *[fmt_ms(by.get(int(b))) for b in batches]])
    parts += [
        "Device ms by batch:",
        "",
        md_table(["backend", "dtype", "mode", *[f"bs{int(b)}" for b in batches]], piv),
        "",
    ]
    ss = e2e[e2e["scenario"] == "single-stream"]
    if not ss.empty:
        rows = [
            [
                r["backend"],
                r["dtype"],
                r["mode"],
                fmt_ms(r.get("latency_p50_ms")),
                fmt_ms(r.get("latency_p90_ms")),
                fmt_ms(r.get("latency_p99_ms")),
                fmt_ms(r["device_ms"]),
                _int(r.get("host_rounds")),
            ]
            for _, r in ss.sort_values(["latency_p50_ms"]).iterrows()
        ]
        parts += [
            "### Single-stream (MLPerf): batch 1, latency per query (host, incl. transfers)",
            "",
            md_table(["backend", "dtype", "mode", "p50 ms", "p90 ms", "p99 ms", "device ms", "queries"], rows),
            "",
        ]
    off = e2e[e2e["scenario"] == "offline"]
    if not off.empty:
        rows = [
            [
                r["backend"],
                r["dtype"],
                r["mode"],
                int(r["batch"]),
                _num(r.get("images_per_s")),
                _num(r.get("images_per_s_host")),
            ]
            for _, r in off.sort_values(["images_per_s"], ascending=False).iterrows()
        ]
        parts += [
            "### Offline (MLPerf): largest batch, throughput",
            "",
            md_table(["backend", "dtype", "mode", "batch", "img/s (device)", "img/s (host)"], rows),
            "",
        ]
    return "\n".join(parts)


def _num(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def ops_section(run, ops, baseline: str | None) -> str:
    parts = ["## Per layer (distinct operator configurations)", ""]
    if ops.empty:
        return "\n".join(parts + ["No per-operator results in this run.", ""])
    ops = ops.copy()
    ops["fused_op_first"] = ops["fused_ops"].map(lambda v: v[0] if isinstance(v, list) and v else -1)
    versions = ops[
        ops["kernel_version"].notna() & ops.duplicated(["backend", "batch", "dtype", "fused_op_first"], keep=False)
    ]
    best = _dedupe(ops)
    parts.append(
        "Each cell: device ms (speedup over the baseline, % of the binding ceiling: mem = copy "
        "bandwidth, compute = GEMM rate, both measured on this machine; above 100% means the data "
        "was served from cache, typical at batch 1)."
    )
    parts.append("")
    backends = sorted(best["backend"].unique(), key=lambda b: (b in CPU_BACKENDS, b))
    for (dtype, batch), g in best.groupby(["dtype", "batch"]):
        base = {r["fused_op_first"]: r["device_ms"] for _, r in g[g["backend"] == baseline].iterrows()}
        rows = []
        for op_first, og in sorted(g.groupby("fused_op_first"), key=lambda t: t[0]):
            first = og.iloc[0]
            cells = []
            for be in backends:
                r = og[og["backend"] == be]
                if r.empty:
                    cells.append(None)
                    continue
                r = r.iloc[0].to_dict()
                frac, binds = ceiling_fraction(run, r)
                b = base.get(op_first)
                sp = f"{b / r['device_ms']:.2f}x" if b and r["device_ms"] and be != baseline else ""
                pct = f"{frac * 100:.0f}% {binds}" if frac is not None else ""
                extra = ", ".join(s for s in (sp, pct) if s)
                cells.append(f"{fmt_ms(r['device_ms'])}" + (f" ({extra})" if extra else ""))
            layers = first.get("layers")
            rows.append(
                [
                    int(op_first),
                    first.get("describe") or first.get("op"),
                    _int(first.get("count_in_network")),
                    ",".join(map(str, layers)) if isinstance(layers, list) else None,
                    *cells,
                ]
            )
        parts += [
            f"### batch {int(batch)}, {dtype}",
            "",
            md_table(["op", "configuration", "count", "layers", *backends], rows),
            "",
        ]
    parts.append(wins_section(best, baseline))
    if not versions.empty:
        parts += ["### Kernel versions (--all-versions)", ""]
        rows = [
            [
                r["backend"],
                int(r["batch"]),
                r["dtype"],
                int(r["fused_op_first"]),
                r.get("op"),
                r["kernel_version"],
                fmt_ms(r["device_ms"]),
            ]
            for _, r in versions.sort_values(["batch", "fused_op_first", "kernel_version"]).iterrows()
        ]
        parts += [md_table(["backend", "batch", "dtype", "op", "kind", "version", "device ms"], rows), ""]
    return "\n".join(parts)


def wins_section(best, baseline: str | None, contender: str = "custom") -> str:
    parts = [f"### Where the {contender} kernels win", ""]
    if contender not in set(best["backend"]):
        return "\n".join(parts + [f"The {contender} backend is not in this run.", ""])
    rows = []
    gpu = best[~best["backend"].isin(CPU_BACKENDS)]
    for (dtype, batch), g in gpu.groupby(["dtype", "batch"]):
        mine = g[g["backend"] == contender].set_index("fused_op_first")
        others = g[g["backend"] != contender]
        n = len(mine)
        vs_base = vs_all = layers_base = layers_all = layers_total = 0
        for op_first, r in mine.iterrows():
            cnt = _int(r.get("count_in_network")) or 1
            layers_total += cnt
            b = others[(others["backend"] == baseline) & (others["fused_op_first"] == op_first)]
            if not b.empty and r["device_ms"] < b["device_ms"].min():
                vs_base += 1
                layers_base += cnt
            o = others[others["fused_op_first"] == op_first]
            if not o.empty and r["device_ms"] < o["device_ms"].min():
                vs_all += 1
                layers_all += cnt
        has_base = bool((others["backend"] == baseline).any())
        has_other = not others.empty
        rows.append(
            [
                int(batch),
                dtype,
                n,
                f"{vs_base} ({layers_base}/{layers_total} network ops)" if has_base else f"- (no {baseline} {dtype})",
                f"{vs_all} ({layers_all}/{layers_total} network ops)" if has_other else "- (no other backend)",
            ]
        )
    parts.append(
        md_table(
            ["batch", "dtype", "distinct ops", f"faster than {baseline}", "faster than every other GPU backend"], rows
        )
    )
    parts.append("")
    return "\n".join(parts)


def machine_section(run) -> str:
    m = machine(run)
    gpu = m.get("gpu") or {}
    lib = m.get("libraries") or {}
    meas = m.get("measured") or {}
    cpu = m.get("measured_cpu") or {}
    git = m.get("git") or {}
    smi = m.get("nvidia_smi_at_start") or {}
    rows = [
        ["GPU", gpu.get("name") or f"none ({gpu.get('reason', '')})"],
        ["SMs / memory", f"{gpu.get('sm_count', '-')} / {gpu.get('memory_gb', '-')} GB" if gpu.get("name") else None],
        [
            "driver / CUDA runtime",
            f"{smi.get('driver_version', '-')} / {gpu.get('cuda_runtime', '-')}" if gpu.get("name") else None,
        ],
        [
            "clocks at start (SM / mem MHz)",
            f"{smi.get('clocks_sm', '-')} / {smi.get('clocks_mem', '-')}" if gpu.get("name") else None,
        ],
        ["cuDNN / cuBLAS", f"{lib.get('cudnn')} / {lib.get('cublas')}"],
        ["CuPy / ONNX Runtime / torch", f"{lib.get('cupy')} / {lib.get('onnxruntime')} / {lib.get('torch')}"],
        ["measured copy bandwidth (GPU)", f"{meas['copy_gbps']:.0f} GB/s" if meas.get("copy_gbps") else None],
        [
            "measured SGEMM fp32 (GPU)",
            f"{meas['sgemm_gflops'] / 1e3:.1f} TFLOP/s" if meas.get("sgemm_gflops") else None,
        ],
        [
            "measured HGEMM fp16 (GPU)",
            f"{meas['hgemm_gflops'] / 1e3:.1f} TFLOP/s" if meas.get("hgemm_gflops") else None,
        ],
        [
            "measured copy / SGEMM (CPU)",
            f"{cpu['copy_gbps']:.0f} GB/s / {cpu['sgemm_gflops']:.0f} GFLOP/s" if cpu.get("copy_gbps") else None,
        ],
        ["commit", f"{(git.get('commit') or '-')[:12]}{' (dirty)' if git.get('dirty') else ''}"],
        ["NVTX", m.get("nvtx")],
        ["run at", run.get("datetime")],
    ]
    skipped = [(k, v.get("reason")) for k, v in (m.get("backends") or {}).items() if not v.get("available")]
    out = ["## Machine", "", md_table(["", ""], rows), ""]
    if skipped:
        out += ["Backends not run here:", ""] + [f"- {k}: {r}" for k, r in skipped] + [""]
    failed = (run.get("mbv2") or {}).get("failed") or []
    if failed:
        out += ["Failed (not timed):", ""] + [f"- {f['test']}: {f['error']}" for f in failed] + [""]
    return "\n".join(out)


def build_report(run: dict[str, Any], baseline: str = "cudnn") -> tuple[str, dict[str, Any]]:
    ops, e2e = frames(run)
    present = sorted(
        (set(ops["backend"]) if not ops.empty else set()) | (set(e2e["backend"]) if not e2e.empty else set())
    )
    base, note = pick_baseline(present, baseline)
    parts = ["# mbv2 benchmark report", ""]
    if note:
        parts += [f"Note: {note}.", ""]
    parts += [machine_section(run), e2e_section(run, e2e, base), ops_section(run, ops, base)]
    return "\n".join(parts), {"ops": ops, "e2e": e2e, "baseline": base}


# -- plots ---------------------------------------------------------------------------------------
def plots(run: dict[str, Any], data: dict[str, Any], out_dir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ops, e2e = data["ops"], data["e2e"]
    if not ops.empty:
        ops = ops.copy()
        ops["fused_op_first"] = ops["fused_ops"].map(lambda v: v[0] if isinstance(v, list) and v else -1)
        best = _dedupe(ops)
        backends = sorted(best["backend"].unique())
        for (dtype, batch), g in best.groupby(["dtype", "batch"]):
            firsts = sorted(g["fused_op_first"].unique())
            fig, ax = plt.subplots(figsize=(max(8, len(firsts) * 0.45), 4.5))
            width = 0.8 / max(1, len(backends))
            for k, be in enumerate(backends):
                sub = g[g["backend"] == be].set_index("fused_op_first")
                xs = [i + k * width for i, f in enumerate(firsts) if f in sub.index]
                ys = [sub.loc[f, "device_ms"] for f in firsts if f in sub.index]
                ax.bar(xs, ys, width=width, label=be)
            ax.set_yscale("log")
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(firsts))])
            ax.set_xticklabels([str(f) for f in firsts], fontsize=7)
            ax.set_xlabel("fused op (first of its configuration)")
            ax.set_ylabel("device ms (log)")
            ax.set_title(f"per layer, batch {int(batch)}, {dtype}")
            ax.legend(fontsize=8)
            fig.tight_layout()
            p = os.path.join(out_dir, f"layers_bs{int(batch)}_{dtype}.png")
            fig.savefig(p, dpi=110)
            plt.close(fig)
            written.append(p)
        # roofline: GPU backends against GPU ceilings (CPU backends against the CPU's, in a second panel)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, cpu in zip(axes, (False, True)):
            sub = best[best["backend"].isin(CPU_BACKENDS) == cpu]
            gf, gb, src = ceilings(run, "numpy" if cpu else "custom", "fp32")
            if gf and gb:
                xs = [10 ** (i / 10) for i in range(-20, 31)]
                ax.plot(xs, [min(gf, gb * x) for x in xs], "k-", lw=1, label=f"{src} ceiling (measured)")
            for be, g in sub.groupby("backend"):
                g = g[g["gflops"].notna() & g["intensity"].notna()]
                ax.scatter(g["intensity"], g["gflops"], s=12, label=be)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("arithmetic intensity (FLOP / minimum byte)")
            ax.set_ylabel("achieved GFLOP/s")
            ax.set_title("roofline, " + ("CPU backends" if cpu else "GPU backends"))
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        p = os.path.join(out_dir, "roofline.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    if not e2e.empty:
        main = _dedupe(e2e[e2e["scenario"].isna()])
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (be, dt, mode), g in main.groupby(["backend", "dtype", "mode"]):
            g = g.sort_values("batch")
            ax.plot(g["batch"], g["device_ms"], marker="o", label=f"{be} {dt} {mode}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("device ms (host ms for CPU backends)")
        ax.set_title("end-to-end latency vs batch")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = os.path.join(out_dir, "e2e_latency.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def write_report(run_path: str, out_dir: str | None = None, baseline: str = "cudnn") -> str:
    run = load_run(run_path)
    text, data = build_report(run, baseline)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        pngs = plots(run, data, out_dir)
        if pngs:
            text += (
                "\n## Plots\n\n" + "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in pngs) + "\n"
            )
        with open(os.path.join(out_dir, "report.md"), "w") as f:
            f.write(text)
    return text


# -- compare -------------------------------------------------------------------------------------
def parse_threshold(text: str) -> float:
    t = str(text).strip()
    try:
        if t.endswith("%"):
            v = float(t[:-1]) / 100
        else:
            v = float(t)
            v = v / 100 if v >= 1 else v
    except ValueError:
        raise InputError(f"threshold must look like 5% or 0.05, got {text!r}") from None
    if not 0 < v < 10:
        raise InputError(f"threshold must be > 0, got {text!r}")
    return v


def _figures(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for b in run["benchmarks"]:
        e = b.get("extra_info") or {}
        ms = e.get("device_ms")
        if ms is None and (b.get("stats") or {}).get("median") is not None:
            ms = b["stats"]["median"] * 1e3
        if ms is None:
            continue
        out[b.get("fullname") or b.get("name")] = {"ms": float(ms), "timer": e.get("timer"), "kind": e.get("kind")}
    return out


def _machine_id(run: dict[str, Any]) -> str:
    m = machine(run)
    gpu = (m.get("gpu") or {}).get("name")
    if gpu:
        return f"GPU {gpu}"
    cpu = (run.get("machine_info") or {}).get("cpu") or {}
    return f"CPU {cpu.get('brand_raw') or cpu.get('arch') or (run.get('machine_info') or {}).get('processor') or '?'}"


def compare_runs(
    old: dict[str, Any], new: dict[str, Any], threshold: float = 0.05, allow_different_machine: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """Markdown of per-figure ratios (new/old) and the list of regressions beyond ``threshold``."""
    mo, mn = _machine_id(old), _machine_id(new)
    if mo != mn and not allow_different_machine:
        raise InputError(
            f"the runs are from different machines ({mo} vs {mn}); their figures are not comparable "
            "(pass --allow-different-machine to compare anyway)"
        )
    fo, fn = _figures(old), _figures(new)
    common = sorted(set(fo) & set(fn))
    rows, regressions, improvements = [], [], []
    for k in common:
        ratio = fn[k]["ms"] / fo[k]["ms"] if fo[k]["ms"] > 0 else float("inf")
        rec = {"name": k, "old_ms": fo[k]["ms"], "new_ms": fn[k]["ms"], "ratio": ratio}
        if ratio > 1 + threshold:
            regressions.append(rec)
        elif ratio < 1 - threshold:
            improvements.append(rec)
        rows.append(rec)
    lines = [f"# compare: {len(common)} figures in both runs ({mo}), threshold {threshold * 100:.1f}%", ""]
    if mo != mn:
        lines += [f"Warning: different machines ({mo} vs {mn}).", ""]
    only_old, only_new = sorted(set(fo) - set(fn)), sorted(set(fn) - set(fo))
    table = [
        [
            r["name"].split("::")[-1],
            fmt_ms(r["old_ms"]),
            fmt_ms(r["new_ms"]),
            f"{r['ratio']:.3f}",
            "REGRESSION" if r in regressions else ("faster" if r in improvements else ""),
        ]
        for r in sorted(rows, key=lambda r: -r["ratio"])
    ]
    lines += [md_table(["figure", "old ms", "new ms", "new/old", ""], table), ""]
    lines.append(
        f"{len(regressions)} regression(s), {len(improvements)} improvement(s) beyond "
        f"{threshold * 100:.1f}%; {len(only_old)} figure(s) only in OLD, {len(only_new)} only in NEW."
    )
    if regressions:
        lines += ["", "Regressions:"] + [
            f"- {r['name'].split('::')[-1]}: {fmt_ms(r['old_ms'])} -> "
            f"{fmt_ms(r['new_ms'])} ms ({(r['ratio'] - 1) * 100:+.1f}%)"
            for r in sorted(regressions, key=lambda r: -r["ratio"])
        ]
    if not common:
        lines += ["", "No figure is in both runs."]
    return "\n".join(lines), regressions


# -- CLI -----------------------------------------------------------------------------------------
def cmd_report(args) -> int:
    text = write_report(args.run_json, args.out, args.baseline)
    if args.out:
        print(f"wrote {os.path.join(args.out, 'report.md')} and plots")
    if not args.out or args.print:
        print(text)
    else:  # the headline: the end-to-end section
        print("## End to end" + text.split("## End to end", 1)[-1].split("## Per layer", 1)[0])
    return 0


def cmd_compare(args) -> int:
    old, new = load_run(args.old), load_run(args.new)
    text, regressions = compare_runs(old, new, parse_threshold(args.threshold), args.allow_different_machine)
    print(text)
    return 1 if regressions else 0


def cmd_profile(args) -> int:
    from .profile import profile

    return profile(out_dir=args.out, backends=args.backends, batch=args.batch, layer=args.layer, tool=args.tool)


def register_cli(subparsers) -> None:
    """Add the report, compare and profile subcommands to mbv2's argparse subparsers."""
    r = subparsers.add_parser("report", help="tables and plots from a benchmark JSON")
    r.add_argument("run_json", help="pytest-benchmark JSON written by `pytest bench/ --benchmark-json=...`")
    r.add_argument("--baseline", default="cudnn", help="backend the speedups are over (default cudnn)")
    r.add_argument("--out", help="directory for report.md and the PNG plots")
    r.add_argument("--print", action="store_true", help="print the whole report even with --out")
    r.set_defaults(func=cmd_report)

    c = subparsers.add_parser("compare", help="per-figure ratios of two runs; exit 1 on any regression")
    c.add_argument("old")
    c.add_argument("new")
    c.add_argument("--threshold", default="5%", help="regression threshold, e.g. 5%% (default) or 0.05")
    c.add_argument(
        "--allow-different-machine",
        action="store_true",
        help="compare runs from different GPUs/CPUs (the figures are then not comparable)",
    )
    c.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("profile", help="Nsight Systems trace per backend (or Nsight Compute of one layer)")
    p.add_argument("--out", default="results/profile", help="output directory")
    p.add_argument("--backends", default="", help="comma-separated (default: every available GPU backend)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument(
        "--layer",
        type=int,
        default=None,
        help="Nsight Compute: fused op index whose NVTX range is profiled (default: the largest conv)",
    )
    p.add_argument("--tool", choices=["auto", "nsys", "ncu"], default="auto")
    p.set_defaults(func=cmd_profile)


__all__ = ["MbvError", "build_report", "compare_runs", "load_run", "register_cli", "write_report"]
