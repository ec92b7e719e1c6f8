"""fuse v5 (exdwpw5) experiments: time the compiled variants of a block kernel against its default instance
on the same inputs (and check they give the same output). results/NOTES.md "fuse v5" (H100) and "Session 12" (H200,
``--fuse v9``: the base is the tile fuse v9 picks at that batch). Variants no longer in kernels/conv.cu are skipped.

    python3 scripts/exdwpw5_variants.py --batches 64,256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cupy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402
from impls.custom import CustomBackend, Launch  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import cuda_event_timing  # noqa: E402

VARIANTS = {  # default instance -> experimental builds of it (kernels/conv.cu, "experiments")
    # session 12: v9's batch-1 tiles with fewer, larger chunks of expanded channels (--fuse v9 --batches 1,2)
    "exdwpw5_s1_c24_o24_t4x8": ("_cc72", "_cc144"),
    "exdwpw5_s2_c24_o32_t4x4": ("_cc72", "_cc144"),
    "exdwpw5_s1_c24_o24_t8x8": ("_r1", "_w0", "_d1", "_p2"),
    "exdwpw5_s1_c32_o32_t7x7": ("_r1", "_w0", "_d1", "_x0", "_p2"),
    "exdwpw5_s1_c32_o32_t8x8": ("_x0",),
    "exdwpw5_s2_c16_o24_t4x8": ("_r1", "_w0", "_xp", "_p4", "_cc48", "_cc96"),
    "exdwpw5_s2_c24_o32_t4x8": ("_r1", "_w0", "_c48", "_p4"),
    "exdwpw5_s2_c32_o64_t4x8": ("_r1", "_w0", "_b3w", "_x0", "_p2"),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--json", default="")
    ap.add_argument("--fuse", default="v5", help="the fuse version whose tile choice is the base (v9: small tiles)")
    ap.add_argument("--only", default="", help="time only these variants (suffixes, comma-separated) and the default")
    args = ap.parse_args()
    be = CustomBackend(kernels=f"fuse={args.fuse}")
    be._ensure_device()
    mod = cupy.RawModule(path=str(K.build_all(be.arch)["conv"].path))
    net = default_network()
    rng = np.random.default_rng(0)
    rows = []
    done = set()
    for op, dw, pw in CustomBackend.small_cin_blocks(net):
        c, h, w = op.layer.in_shape
        co, ho, wo = pw.layer.out_shape
        for batch in [int(b) for b in args.batches.split(",")]:
            with be.stream:
                x = cupy.asarray(rng.standard_normal((batch, h, w, c), dtype=np.float32))
                r = cupy.asarray(rng.standard_normal((batch, ho, wo, co), dtype=np.float32))
                out = cupy.full((batch, ho, wo, co), np.nan, cupy.float32)
            res = r if pw.residual is not None else None
            min_blocks = be.sms if K.fuse_level(args.fuse) >= 9 else 0
            lay = (x, op.layer, op.act, dw.layer, dw.act, pw.layer, pw.act, res, out)
            base = be._exdwpw_launch(*lay, min_blocks)
            if base is None or base.name not in VARIANTS or (base.name, batch) in done:
                continue
            done.add((base.name, batch))
            be.launch_all([base])
            ref = out.copy()
            only = args.only.split(",") if args.only else None
            built = K.exdwpw5_configs()
            variants = [v for v in VARIANTS[base.name] if (only is None or v in only) and base.name + v in built]
            for suffix in ("", *variants):
                name = base.name + suffix
                smem = K.exdwpw5_smem(name)
                fn = be._dyn_smem(mod.get_function(name), smem)
                launch = Launch(name, fn, base.grid, base.block, base.args, smem=smem)
                out.fill(np.nan)
                be.launch_all([launch])
                diff = float(cupy.max(cupy.abs(out - ref)))
                t = cuda_event_timing(
                    lambda i, launch=launch: be.launch_all([launch]), warmup=5, repeats=25, stream=be.stream, inner=3
                )
                row = {"kernel": name, "batch": batch, "median_us": t.median_ms * 1e3, "max_abs_diff_vs_default": diff}
                rows.append(row)
                print(f"bs{batch:<4} {name:34s} {t.median_ms * 1e3:9.2f} us  max|diff| {diff:.3g}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
