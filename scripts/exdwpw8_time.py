"""fuse v8 (exdwpw8): time every exdwpw8 build of each small-CIN block of the network against its exdwpw5
default instance on the same inputs, and compare their outputs (max |diff|, relative L2). H100 only;
results/NOTES.md "fuse v8".

    python3 scripts/exdwpw8_time.py --batches 64,256 --json out.json
    ncu --clock-control none -k regex:exdwpw8 --metrics ... python3 scripts/exdwpw8_time.py --batches 256 --once
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
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import cuda_event_timing  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--json", default="")
    ap.add_argument("--only", default="", help="time only these builds (names, comma-separated) and exdwpw5")
    ap.add_argument("--once", action="store_true", help="one launch per kernel, no timing (under ncu)")
    args = ap.parse_args()
    be = CustomBackend(kernels="fuse=v8")
    be._ensure_device()
    net = default_network()
    rng = np.random.default_rng(0)
    rows = []
    done = set()
    only = set(args.only.split(",")) if args.only else None
    for op, dw, pw in CustomBackend.small_cin_blocks(net):
        c, h, w = op.layer.in_shape
        co, ho, wo = pw.layer.out_shape
        for batch in [int(b) for b in args.batches.split(",")]:
            key = (c, h, w, op.layer.out_channels, dw.layer.stride, co, pw.residual is not None, batch)
            if key in done:
                continue
            done.add(key)
            with be.stream:
                x = cupy.asarray(rng.standard_normal((batch, h, w, c), dtype=np.float32))
                r = cupy.asarray(rng.standard_normal((batch, ho, wo, co), dtype=np.float32))
                out = cupy.full((batch, ho, wo, co), np.nan, cupy.float32)
            res = r if pw.residual is not None else None
            lay = (x, op.layer, op.act, dw.layer, dw.act, pw.layer, pw.act, res, out)
            base = be._exdwpw_launch(*lay)
            be.launch_all([base])
            ref = out.copy()
            launches = [base]
            for name in K.exdwpw8_builds(dw.layer.stride, c, co):
                if only is None or name in only:
                    launches.append(be._exdwpw8_launch(*lay, name))
            t0 = None
            for launch in launches:
                out.fill(np.nan)
                be.launch_all([launch])
                diff = float(cupy.max(cupy.abs(out - ref)))  # NaN (unwritten) propagates
                rel = float(cupy.linalg.norm(out - ref) / cupy.linalg.norm(ref))
                if args.once:
                    print(f"bs{batch:<4} {launch.name:26s} max|diff| {diff:.3g}  relL2 {rel:.2g}", flush=True)
                    continue
                t = cuda_event_timing(
                    lambda i, launch=launch: be.launch_all([launch]), warmup=5, repeats=25, stream=be.stream, inner=3
                )
                us = t.median_ms * 1e3
                t0 = us if t0 is None else t0
                row = {
                    "block": f"{c}->{op.layer.out_channels}->{co} s{dw.layer.stride} @{h}x{w}",
                    "kernel": launch.name,
                    "batch": batch,
                    "grid": list(launch.grid),
                    "median_us": us,
                    "vs_exdwpw5": us / t0,
                    "max_abs_diff_vs_exdwpw5": diff,
                    "rel_l2_vs_exdwpw5": rel,
                }
                rows.append(row)
                print(
                    f"bs{batch:<4} {row['block']:26s} {launch.name:26s} {us:9.2f} us  x{us / t0:5.3f}  "
                    f"max|diff| {diff:.3g}  relL2 {rel:.2g}",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
