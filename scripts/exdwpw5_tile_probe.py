"""Session 42: the batch-1 plan's three exdwpw5 launches (the 112 -> 56 and 56 -> 56 / 28 bottleneck blocks) in other
tilings: tile shape, channels per block (CC) and blocks per cluster (KS), so that the grid fills the 132 SMs more
evenly than today's. Any sm_90 GPU with nvcc; results/NOTES.md "Session 42" cites its output.

    python3 scripts/exdwpw5_tile_probe.py [--json out.json] [--rounds 3]
    python3 scripts/exdwpw5_tile_probe.py --ptxas        # host: registers and spills of every variant, no GPU

Why: the first two exdwpw5 launches run 196 blocks of 256 threads on 132 SMs (two per SM on 64 of them, one on the
other 68), so the SMs holding two blocks set the launch's time with ~336k FMA each, where an even spread would give
each SM ~250k (t7x7 tiles, 4 blocks per cluster: 256 blocks, two per SM on 128 SMs). The third runs 98 blocks of 256
threads, one per SM: 8 warps on 98 SMs.

Each variant is a fixed-shape build of kernels/conv.cu's exdwpw5 body (the plan's own fixed build for "plan"; the
others with their configuration given here, not compiled into the generic file), as the twin the plan launches (the
staged twin `_ta` for the first two, the early-trigger twin `_te` for the third, at fuse v47). Per variant:
- its output against NumPy float64 (rel L2; the fp32 layer tolerance, 1e-5) on fresh random inputs, the output
  NaN-poisoned before the launch, and its largest difference from the plan's output;
- device us per launch in two CUDA-graph chains of REPEAT launches of it: plain launches, and launches by
  programmatic dependent launch (as the plan launches it: the next launch's blocks start after this one's staging and
  wait in griddepcontrol.wait); medians over --rounds rounds, the variants interleaved in each round.
A different KS adds the projection's partial sums in another order, so those outputs are not bitwise the plan's.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402

REPEAT = 20
FUSE = "v47"  # the default plan's twins: staged for the first two launches, early-trigger for the third
# configuration: (S, CIN, COUT, TH, TW, CC, DP, PT, WS, MINB, KS), as kernels/conv.cu's EXDWPW5_KERNEL_CL lines
PLAN_BUILDS = {
    (2, 16, 24): "exdwpw5_s2_c16_o24_t4x8_cc48_k2",
    (1, 24, 24): "exdwpw5_s1_c24_o24_t4x8_cc72_k2",
    (2, 24, 32): "exdwpw5_s2_c24_o32_t4x4_cc72_k2",
}
# the variants per block: (TH, TW, CC, KS, MINB); DP, PT and WS as the plan's build
VARIANTS: dict[tuple[int, int, int], list[tuple[int, int, int, int, int]]] = {
    (2, 16, 24): [(7, 7, 24, 4, 2), (7, 7, 48, 2, 1), (7, 7, 32, 3, 2), (4, 8, 24, 4, 3), (4, 8, 32, 3, 3),
                  (4, 7, 48, 2, 2), (8, 8, 24, 4, 2),
                  # (call 2: one block per SM, larger tiles)
                  (7, 7, 96, 1, 1), (8, 8, 48, 2, 1), (7, 8, 48, 2, 1), (4, 14, 48, 2, 1)],
    (1, 24, 24): [(7, 7, 36, 4, 2), (7, 7, 72, 2, 1), (7, 7, 48, 3, 2), (4, 8, 36, 4, 3), (4, 8, 48, 3, 3),
                  (8, 8, 36, 4, 2),
                  (7, 7, 144, 1, 1), (8, 8, 72, 2, 1), (7, 8, 72, 2, 1), (4, 14, 72, 2, 1)],
    (2, 24, 32): [(4, 4, 36, 4, 2), (4, 4, 48, 3, 2), (4, 4, 24, 6, 3), (2, 4, 72, 2, 2), (4, 7, 36, 4, 1),
                  (2, 7, 72, 2, 1), (4, 7, 72, 2, 1)],
}  # fmt: skip


def variant_name(cfg: tuple[int, ...]) -> str:
    s, cin, cout, th, tw, cc, dp, pt, ws, minb, ks = cfg
    return f"exdwpw5_s{s}_c{cin}_o{cout}_t{th}x{tw}_cc{cc}_k{ks}_q{dp}{pt}{ws}{minb}"


def variant_configs() -> dict[str, tuple[int, ...]]:
    """Every probe variant's name -> configuration (the plan's builds from kernels/conv.cu, the others derived)."""
    gen = K.exdwpw5_configs()
    out = {}
    for key, plan in PLAN_BUILDS.items():
        base = gen[plan]
        out[plan] = base
        for th, tw, cc, ks, minb in VARIANTS[key]:
            cfg = (*base[:3], th, tw, cc, base[6], base[7], base[8], minb, ks)
            out[variant_name(cfg)] = cfg
    return out


def register() -> None:
    """Make K's fixed-build machinery (fixed_config, exdwpw5_smem, build_fixed) know the probe's configurations."""
    extra = variant_configs()
    orig = K.exdwpw5_configs
    if getattr(orig, "_probe", False):
        return

    def configs() -> dict[str, tuple[int, ...]]:
        return {**orig(), **extra}

    configs._probe = True  # type: ignore[attr-defined]
    K.exdwpw5_configs = configs  # type: ignore[assignment]


def twin_kind(key: tuple[int, int, int]) -> str | None:
    return K.stage_twin_kind(FUSE, PLAN_BUILDS[key])


def build(name: str, shape: tuple[int, ...], kind: str | None, arch: str, nvcc: str | None) -> K.Built:
    """The variant's fixed build as the twin the plan launches for its block."""
    return K.build_fixed(name, shape, arch, nvcc, early=kind is None, staged=kind == "staged", patch=kind == "patch")


def grid_blocks(cfg: tuple[int, ...], ho: int, wo: int) -> int:
    th, tw, ks = cfg[3], cfg[4], cfg[10]
    return ks * math.ceil(ho / th) * math.ceil(wo / tw)


# the batch-1 shapes (H, W, CE, HO, WO, PAD, ACTE, ACTD, ACTP, RES) of the three blocks, for the host's ptxas pass
HOST_SHAPES = {
    (2, 16, 24): (112, 112, 96, 56, 56, 1, 1, 1, 0, 0),
    (1, 24, 24): (56, 56, 144, 56, 56, 1, 1, 1, 0, 1),
    (2, 24, 32): (56, 56, 144, 28, 28, 1, 1, 1, 0, 0),
}


def ptxas(nvcc: str) -> list[dict]:
    """Registers and spills of every variant (nvcc -Xptxas -v on the fixed build's source), compiled here."""
    register()
    cfgs = variant_configs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, shape in HOST_SHAPES.items():
            names = [PLAN_BUILDS[key]] + [n for n, c in cfgs.items() if c[:3] == key and n != PLAN_BUILDS[key]]
            for name in names:
                b = build(name, shape, twin_kind(key), "90", None)
                src = Path(tmp) / "conv.cu"  # (the stem picks the -arch target, as for the real file)
                src.write_text(b.source)
                cmd = K.nvcc_command(nvcc, src, Path(tmp) / "x.cubin", "90", verbose=True)
                cmd[1:1] = [f"-I{K.KERNEL_DIR}"]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(f"nvcc failed on {b.name}:\n{proc.stderr}")
                info = K.parse_ptxas(proc.stderr).get(b.name, {})
                row = {"block": list(key), "name": b.name, "config": list(cfgs[name]), **info,
                       "blocks": grid_blocks(cfgs[name], shape[3], shape[4])}  # fmt: skip
                rows.append(row)
                print(f"{b.name:70s} blocks {row['blocks']:4d} regs {info.get('registers')} spills "
                      f"{info.get('spill_stores')}/{info.get('spill_loads')}", flush=True)  # fmt: skip
    return rows


def reference(r64, op, dw, pw, x: np.ndarray, res: np.ndarray | None) -> np.ndarray:
    """The block in float64 (NCHW in, NHWC out)."""
    h = r64.conv2d(x.transpose(0, 3, 1, 2).astype(np.float64), op.layer, act=op.act)
    h = r64.conv2d(h, dw.layer, act=dw.act)
    rr = None if res is None else res.transpose(0, 3, 1, 2).astype(np.float64)
    return r64.conv2d(h, pw.layer, act=pw.act, residual=rr).transpose(0, 2, 3, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default="")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ptxas", action="store_true", help="host only: registers and spills of every variant")
    args = ap.parse_args()
    nvcc = K.find_nvcc()
    if args.ptxas:
        if nvcc is None:
            raise SystemExit("--ptxas needs nvcc")
        rows = ptxas(nvcc)
        if args.json:
            Path(args.json).write_text(json.dumps({"ptxas": rows}, indent=1))
        return

    import cupy

    from impls.custom import CustomBackend, Launch, _load_module
    from impls.numpy_ref import NumpyBackend
    from mbv2.machine import gpu_info
    from mbv2.model import default_network
    from mbv2.timing import CudaGraph, cuda_event_timing
    from mbv2.tolerances import rel_l2, tolerance

    register()
    cfgs = variant_configs()
    be = CustomBackend()
    be._ensure_device()
    net = default_network()
    r64 = NumpyBackend(dtype="fp64")
    rng = np.random.default_rng(42)
    tol = tolerance("fp32", "layer")
    out_rows: list[dict] = []
    cases = []
    for op, dw, pw in CustomBackend.small_cin_blocks(net):
        key = (dw.layer.stride, op.layer.in_channels, pw.layer.out_channels)
        if key not in PLAN_BUILDS or any(c[0] == key for c in cases):
            continue
        c, h, w = op.layer.in_shape
        co, ho, wo = pw.layer.out_shape
        x = rng.standard_normal((1, h, w, c), dtype=np.float32)
        res = rng.standard_normal((1, ho, wo, co), dtype=np.float32) if pw.residual is not None else None
        with be.stream:
            xd = cupy.asarray(x)
            rd = None if res is None else cupy.asarray(res)
            od = cupy.full((1, ho, wo, co), np.nan, cupy.float32)
        kargs = be._exdwpw_args(xd, op.layer, op.act, dw.layer, dw.act, pw.layer, pw.act, rd, od)
        assert kargs is not None
        shape = tuple(int(a) for a in kargs[9:19])
        ref = reference(r64, op, dw, pw, x, res)
        names = [PLAN_BUILDS[key]] + [n for n, cf in cfgs.items() if cf[:3] == key and n != PLAN_BUILDS[key]]
        kind = twin_kind(key)
        built = [build(n, shape, kind, be.arch, nvcc) for n in names]
        launches = []
        for n, b in zip(names, built):
            fn = _load_module(cupy, b).get_function(b.name)
            smem = K.exdwpw5_smem(n, staged=kind == "staged")
            grid = (grid_blocks(cfgs[n], ho, wo), 1)
            launches.append(Launch(b.name, be._dyn_smem(fn, smem), grid, (256,), kargs, smem=smem))
        cases.append((key, names, launches, od, ref))
        print(f"block {key}: {h}x{w}x{c} -> {ho}x{wo}x{co}, twin {kind or 'early'}, {len(names)} variants", flush=True)

    timings: dict[tuple, dict[str, list[float]]] = {}
    for key, names, launches, od, ref in cases:
        plan_out = None
        for n, la in zip(names, launches):
            with be.stream:
                od.fill(np.nan)
            be.launch_all([la])
            be.stream.synchronize()
            y = od.get()
            if plan_out is None:
                plan_out = y
            err = rel_l2(y, ref)
            row = {"block": list(key), "name": la.name, "config": list(cfgs[n]), "grid": la.grid[0],
                   "smem": la.smem, "registers": int(la.kernel.attributes["num_regs"]),
                   "local_bytes": int(la.kernel.attributes["local_size_bytes"]), "rel_l2": err,
                   "max_diff_vs_plan": float(np.max(np.abs(y.astype(np.float64) - plan_out))),
                   "ok": bool(err < tol)}  # fmt: skip
            out_rows.append(row)
            print(f"  {la.name:72s} grid {la.grid[0]:4d} regs {row['registers']:3d} rel L2 {err:.2e} "
                  f"{'ok' if row['ok'] else 'FAILED'}", flush=True)  # fmt: skip
        graphs = {}
        for n, la in zip(names, launches):
            for mode in ("plain", "pdl"):
                one = replace(la, pdl=mode == "pdl")
                graphs[(n, mode)] = CudaGraph(lambda one=one: be._enqueue_launches([one] * REPEAT), be.stream)
        for _ in range(args.rounds):
            for (n, mode), g in graphs.items():
                t = cuda_event_timing(lambda i, g=g: g.replay(), warmup=10, repeats=60, stream=be.stream)
                timings.setdefault((key, n), {}).setdefault(mode, []).append(t.median_ms * 1e3 / REPEAT)
        for n in names:
            row = next(r for r in out_rows if r["name"].startswith(n + "_f") and r["block"] == list(key))
            for mode in ("plain", "pdl"):
                v = timings[(key, n)][mode]
                row[f"us_{mode}"] = float(np.median(v))
                row[f"us_{mode}_rounds"] = v
        plan_row = next(r for r in out_rows if r["name"].startswith(names[0] + "_f"))
        print(f"block {key}: us per launch, chain of {REPEAT} (plain / pdl), medians of {args.rounds} rounds")
        for n in names:
            r = next(r for r in out_rows if r["name"].startswith(n + "_f") and r["block"] == list(key))
            print(f"  {n:48s} grid {r['grid']:4d} {r['us_plain']:6.2f} / {r['us_pdl']:6.2f}  "
                  f"(pdl {r['us_pdl'] - plan_row['us_pdl']:+.2f} vs plan) {'ok' if r['ok'] else 'FAILED'}",
                  flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu_info(), "repeat": REPEAT, "fuse": FUSE,
                                               "rows": out_rows}, indent=1, default=str))  # fmt: skip
    if not all(r["ok"] for r in out_rows):
        raise SystemExit("some variants failed the float64 check")


if __name__ == "__main__":
    main()
