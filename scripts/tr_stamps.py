"""Session 40: what a taller row tile costs inside one exdwpw6 block, the size of a cluster-local fused pair. Any
CUDA GPU with nvcc; results/NOTES.md "Session 40" cites its output.

    python3 scripts/tr_stamps.py --picks PICKS.json [--fuse v42] [--extra 2,4] [--json out.json]

A fused pair (blocks k and k + 1 in one launch, each cluster keeping its row tile: block k computed on TR + 2 output
rows, the halo rows of block k + 1's input recomputed instead of read from the neighbouring tiles) would trade one
launch hand-off and block k + 1's global staging for block k's larger tile. This stamps that larger tile: for each
distinct exdwpw6 launch of the batch-1 plan with one cluster per tile (NG 1), its stamped fixed build at the planned
TR and at TR + each of --extra (the same CH, cluster, threads and modes; the shape's TR changed, so a fixed build of
its own, compiled here), one launch each after warm-up (scripts/cblock_sweep.py stamp_run: per-phase median / max
over blocks, us). The planned TR's row is the control against the plan's own stamps (session 39).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from impls import _custom_kernels as K  # noqa: E402
from mbv2.model import default_network  # noqa: E402


def configs_of(names: list[str]) -> list[tuple[str, tuple, tuple]]:
    """(build name, cfg, shape) of each distinct exdwpw6 fixed build with one cluster per tile (NG 1) among a plan's
    launch names, in plan order (an early-trigger or exit twin counts as its base build): cfg = (CH, TR, CL, NT,
    proj_cols, ex_ks, dw_segs, red_pf) as CustomBackend._exdwpw6_build takes it, shape the build's fixed shape."""
    out, seen = [], set()
    for n in names:
        base = K.trigger_base(n)
        if not base.startswith("exdwpw6"):
            continue
        name, modes, shape = K.exdwpw6_spec_parse(base)
        if modes is None or shape is None:
            raise SystemExit(f"{n}: not a fixed exdwpw6 build (fuse v23 or later)")
        ch, cl, nt = K.exdwpw6_build_of(name)
        pc, ks, rpf, ds = modes
        if shape[3] != ch * cl or base in seen:  # NG > 1 (the 7x7 launches), or listed already
            continue
        seen.add(base)
        out.append((base, (ch, shape[8], cl, nt, pc, ks, ds, rpf), shape))
    return out


def block_layers(net, shape: tuple) -> tuple:
    """The first (expansion, depthwise, projection) fused-op triple of ``net`` with ``shape`` (H, W, CIN, CE, COUT, HO,
    WO, S, ...)."""
    for ex, dw, pw in net.bottleneck_blocks():
        lx, ld, lp = ex.layer, dw.layer, pw.layer
        h, w = lx.in_shape[1:]
        ho, wo = ld.out_hw(h, w)
        if (h, w, lx.in_channels, lx.out_channels, lp.out_channels, ho, wo, ld.stride) == tuple(shape[:8]):
            return ex, dw, pw
    raise SystemExit(f"no block of the network has shape {shape}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--picks", required=True, help="the batch-1 autotuner picks to replay (`python -m mbv2 picks`)")
    ap.add_argument("--fuse", default="v42", help="a fuse version whose plan's exdwpw6 launches are plain fixed builds")
    ap.add_argument("--extra", default="2,4", help="rows added to each launch's TR")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    import cupy
    from cblock_sweep import stamp_row

    from impls.custom import CustomBackend

    net = default_network()
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    be = CustomBackend(kernels=f"fuse={args.fuse}", tune_picks=args.picks)
    be.prepare(net)
    rows = []
    for name, cfg, shape in configs_of([la.name for la in be.plan(1).launches]):
        ex, dw, pw = block_layers(net, shape)
        lx, ld, lp = ex.layer, dw.layer, pw.layer
        h, w = lx.in_shape[1:]
        ho, wo = ld.out_hw(h, w)
        rng = np.random.default_rng(ex.index)
        x = be.to_device(rng.standard_normal((1, *lx.in_shape), dtype=np.float32))  # (NCHW in, NHWC on the device)
        for extra in [0] + [int(e) for e in args.extra.split(",") if e]:
            tr = cfg[1] + extra
            if tr > ho:
                continue
            c = (cfg[0], tr, *cfg[2:])
            with be.stream:
                out = cupy.empty((1, ho, wo, lp.out_channels), cupy.float32)
            res = out if pw.residual is not None else None
            try:
                la = be._exdwpw6_build(x, lx, ex.act, ld, dw.act, lp, pw.act, res, out, c)
                la = be._specialise_exdwpw6([la])[0]  # (a generic launch where the modes would allow one)
            except ValueError as e:  # shared memory past the limit at this TR
                print(f"{name} TR {tr}: skipped ({e})", flush=True)
                continue
            label = f"{lx.in_channels}->{lx.out_channels}->{lp.out_channels} @{h}x{w} s{ld.stride} TR {tr} (+{extra})"
            row = stamp_row(be, la, gpu, 1, label)
            rows.append({**row, "planned": name, "cfg": list(c), "extra_rows": extra})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
