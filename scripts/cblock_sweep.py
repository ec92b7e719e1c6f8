"""fuse v6 (kernels/cblock.cu exdwpw6) per bottleneck block: every (CH, TR, CL) configuration against the launches
the plan of fuse --base (default v5) runs for the same block, at small batches. Any CUDA GPU; results/NOTES.md cites
its output.

    python3 scripts/cblock_sweep.py --batches 1,2,4,8 --json out.json [--fuse v11]

--fuse (default v13) picks the configurations and the cost model's pick: v13 includes the wider builds (24 channels
per block, clusters of 16), v14 clusters of 4 / 6 / 12 too, v9 - v12 the clusters of 8 with up to 2 blocks per SM.
v15 each configuration at 512 threads per block too (NT 512); v16 (and later) launch with the projection mapping of
the untimed rule (by output columns on COUT >= K.PROJ_COLS_MIN_COUT).
--maps 112x112,56x56 limits the sweep to the blocks on those input maps.

Per block and batch: the --base plan's launches of the block's three ops (expansion, depthwise, projection: from the
plan's op ranges, on the plan's own buffers), and one exdwpw6 launch per configuration on fresh buffers, each
captured REPEAT times back to back in a CUDA graph (dependent launches, as in the network's graph) and timed with
CUDA events (median of the replays / REPEAT): device us per block. The cost model's pick (choose_exdwpw6) is marked.

--stamps: instead, one launch of the stamped build (exdwpw6_c<CH>_stamp: thread 0 of every block writes clock64 at
the phase boundaries, %globaltimer at entry / exit) per block at the cost model's configuration, after warm-up; printed:
the median and the maximum over the grid's blocks of each phase (us at the clock rate measured from the two timers)
and the spread of the blocks' start times. --stamps --plan: the same for the exdwpw6 launches of the --fuse plan
itself (the autotuner's picks under v13).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import cupy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402
from impls.custom import CustomBackend, choose_exdwpw6, exdwpw6_configs, exdwpw6_cost  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import CudaGraph, cuda_event_timing  # noqa: E402

REPEAT = 20
PHASES = ("stage", "expand", "depthwise", "project", "cluster barrier", "cluster reduce", "hand-off", "last sum",
          "exit barrier")  # fmt: skip


def stamp_run(be: CustomBackend, la, built: K.Built | None = None) -> dict:
    """One launch of the stamped build of ``la``'s kernel; per-phase median / max over blocks in us. fuse v22 / v23's
    fixed builds: their stamped twin (kernels/cblock.cu EXDWPW6_STAMP_NAME, the same modes and shape fixed) where
    nvcc is found, else the generic build's (the same modes and shape as arguments). ``built``: a stamped twin of
    ``la.name`` compiled by the caller (scripts/ex_variant_stamps.py: with measuring defines). Session 39: a launch
    of an early-trigger or exit twin (fuse v45 / v46: the same arguments, only the PDL trigger's place differs) is
    stamped on the build it is a twin of; one launch alone has no dependents to trigger."""
    base = K.trigger_base(la.name)
    name, modes, shape = K.exdwpw6_spec_parse(base)
    nvcc = K.find_nvcc()
    if built is not None:
        fname = la.name + "_stamp"
    elif modes is not None and nvcc is not None:
        built = K.build_exdwpw6_spec(name, modes, be.arch, nvcc, shape, stamp=True)
        fname = base + "_stamp"
    else:
        built = K.build_all(be.arch)["cblock"]
        fname = name + "_stamp"
    mod = cupy.RawModule(path=str(built.path)) if built.path else cupy.RawModule(code=built.source)
    print(f"  stamped build: {fname}", flush=True)
    fn = be._dyn_smem(mod.get_function(fname), la.smem)
    m = re.search(r"_c\d+x(\d+)", name)
    if m and int(m[1]) > 8:  # clusters of 12 / 16 (fuse v13, v14): the non-portable opt-in
        be._allow_nonportable_cluster(f"{fname}@{fn.kernel.ptr}", fn)  # per loaded function (a module per call)
    nblk = int(np.prod(la.grid))
    st = cupy.zeros((nblk, 12), cupy.uint64)
    with be.stream:
        for _ in range(3):
            fn(la.grid, la.block, (*la.args, st), shared_mem=la.smem)
    be.stream.synchronize()
    a = st.get().astype(np.int64)
    if not a[:, 7].any():  # one cluster per tile (NG 1): no hand-off, stamp 7 unwritten; hand-off 0, not garbage
        a[:, 7] = a[:, 6]
    cyc = a[:, 9] - a[:, 0]
    ns = a[:, 11] - a[:, 10]
    ghz = float(np.median(cyc[ns > 0] / ns[ns > 0])) if (ns > 0).any() else 1.755
    d = np.diff(a[:, :10], axis=1) / ghz / 1000.0  # us
    out = {"ghz": ghz, "span_us": (a[:, 11].max() - a[:, 10].min()) / 1000.0}
    out["start_spread_us"] = (a[:, 10].max() - a[:, 10].min()) / 1000.0
    for k, name in enumerate(PHASES):
        out[name] = (float(np.median(d[:, k])), float(d[:, k].max()))  # "last sum": the last-arriving blocks only
    return out


def stamp_row(be: CustomBackend, la, gpu: str, batch: int, label: str) -> dict:
    """stamp_run of ``la``, printed (span, start spread, per-phase median / max) and returned as a JSON row."""
    r = stamp_run(be, la)
    print(f"bs{batch} {label} {la.name} grid {la.grid}: span {r['span_us']:.2f} us, "
          f"start spread {r['start_spread_us']:.2f} us, {r['ghz']:.2f} GHz")  # fmt: skip
    print("    " + "  ".join(f"{k} {r[k][0]:.2f}/{r[k][1]:.2f}" for k in PHASES), flush=True)
    return {"gpu": gpu, "batch": batch, "block": label, "grid": list(la.grid), "stamps": r}


def time_launches(be: CustomBackend, launches: list) -> float:
    """Device us of one pass over ``launches`` (REPEAT passes in one CUDA graph, median over replays)."""

    def enqueue() -> None:
        for _ in range(REPEAT):
            for la in launches:
                be._launch(la)

    g = CudaGraph(enqueue, be.stream)
    t = cuda_event_timing(lambda i: g.replay(), warmup=3, repeats=15, stream=be.stream)
    return 1000.0 * t.median_ms / REPEAT


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--json", default="")
    ap.add_argument("--stamps", action="store_true")
    ap.add_argument("--fuse", default="v13", help="fuse version of the exdwpw6 backend (v13: the wider builds too)")
    ap.add_argument("--plan", action="store_true", help="with --stamps: the plan's own exdwpw6 launches (the tuner's)")
    ap.add_argument("--base", default="v5", help="fuse version whose plan's launches for each block are the baseline")
    ap.add_argument("--maps", default="", help="only blocks on these input maps, e.g. 112x112,56x56 (default: all)")
    args = ap.parse_args()
    net = default_network()
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    rows = []
    batches = [int(b) for b in args.batches.split(",")]
    if args.stamps and args.plan and K.flag_handoff(args.fuse):  # fuse v43: the plan's exdwpw6 launches are flag twins
        raise SystemExit(f"fuse {args.fuse}: stamp the plan of v42 (the same builds, without the flag hand-off)")
    if args.stamps and args.plan:  # the plan's own exdwpw6 launches (the tuner's picks)
        for batch in batches:
            be = CustomBackend(kernels=f"fuse={args.fuse}")
            be.prepare(net)
            plan = be.plan(batch)
            labels = {lo: label for label, lo, _ in plan.op_ranges}
            for i, la in enumerate(plan.launches):
                if la.name.startswith("exdwpw6"):
                    rows.append(stamp_row(be, la, gpu, batch, labels.get(i, "?")))
        batches = []
    for batch in batches:
        be5 = CustomBackend(kernels=f"fuse={args.base}")
        be5.prepare(net)
        plan5 = be5.plan(batch)
        be6 = CustomBackend(kernels=f"fuse={args.fuse}")
        be6.prepare(net)
        by_label = {label: (lo, hi) for label, lo, hi in plan5.op_ranges}
        for ex, dw, pw in net.bottleneck_blocks():
            lx, ld, lp = ex.layer, dw.layer, pw.layer
            h, w = lx.in_shape[1:]
            if args.maps and f"{h}x{w}" not in args.maps.split(","):
                continue
            ho, wo = ld.out_hw(h, w)
            shape = (h, w, lx.in_channels, lx.out_channels, lp.out_channels, ho, wo, ld.stride)
            wide = K.wide_clusters(args.fuse)
            cfgs = exdwpw6_configs(*shape, wide=wide, v14=K.v14_clusters(args.fuse))
            cfgs += [(*c, 512) for c in cfgs] if K.t512_builds(args.fuse) else []  # v15: 512 threads per block
            if not cfgs:
                continue
            if args.stamps:
                rng = np.random.default_rng(ex.index)
                x = be6.to_device(rng.standard_normal((batch, *lx.in_shape), dtype=np.float32))
                with be6.stream:
                    out = cupy.empty((batch, ho, wo, lp.out_channels), cupy.float32)
                res = out if pw.residual is not None else None
                la = be6._exdwpw6_launch(x, lx, ex.act, ld, dw.act, lp, pw.act, res, out)
                label = f"ops{ex.index}+{dw.index}+{pw.index} {lx.in_channels}->{lx.out_channels}->{lp.out_channels}"
                rows.append(stamp_row(be6, la, gpu, batch, f"{label} @{h}x{w} s{ld.stride}"))
                continue
            v5_launches = []
            for op in (ex, dw, pw):
                lo, hi = by_label[f"{be5.name}/{op.covers[0]}:{op.label}"]
                v5_launches += plan5.launches[lo:hi]
            names5 = [la.name for la in v5_launches]
            t5 = time_launches(be5, v5_launches) if v5_launches else float("nan")
            rng = np.random.default_rng(ex.index)
            x = be6.to_device(rng.standard_normal((batch, *lx.in_shape), dtype=np.float32))
            with be6.stream:
                out = cupy.empty((batch, ho, wo, lp.out_channels), cupy.float32)
            res = out if pw.residual is not None else None
            pick = choose_exdwpw6(batch, *shape, be6.sms, K.exdwpw6_per_sm(args.fuse), wide)
            label = f"ops{ex.index}+{dw.index}+{pw.index} {lx.in_channels}->{lx.out_channels}->{lp.out_channels}"
            label += f" @{h}x{w} s{ld.stride}"
            print(f"bs{batch} {label}: {args.base} {t5:.2f} us ({' '.join(names5)})", flush=True)
            for cfg in cfgs:
                be6.force_block6 = cfg
                la = be6._exdwpw6_launch(x, lx, ex.act, ld, dw.act, lp, pw.act, res, out)
                be6.force_block6 = None
                t6 = time_launches(be6, [la])
                cost = exdwpw6_cost(batch, *shape, be6.sms, cfg[:3])
                mark = " <- model" if cfg == pick else ""
                cf = f"CH {cfg[0]:2d} TR {cfg[1]:3d} CL {cfg[2]:2d} NT {cfg[3] if len(cfg) > 3 else 256}"
                print(f"    {cf} grid {la.grid}: {t6:.2f} us (model {cost:.0f} cyc){mark}")
                rows.append(
                    {
                        "gpu": gpu,
                        "batch": batch,
                        "block": label,
                        "base": args.base,
                        "v5_us": t5,
                        "v5_launches": names5,
                        "ch": cfg[0],
                        "tr": cfg[1],
                        "cl": cfg[2],
                        "nt": cfg[3] if len(cfg) > 3 else 256,
                        "grid": list(la.grid),
                        "us": t6,
                        "model_cycles": cost,
                        "model_pick": cfg == pick,
                    }
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
