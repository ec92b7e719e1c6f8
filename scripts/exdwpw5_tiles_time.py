"""Every compiled exdwpw5 tile of each small-CIN block of the network, each launch timed alone at small batches
(CUDA-event medians), outputs compared with the first tile's (max |diff|: the same sums in the same order, so 0 is
expected), and the tile K.exdwpw5_tile picks for fuse v9 marked. Session 12 ran it with four smaller tiles still
(fuse v11 at commit 60ee190, all slower but one; results/NOTES.md "Session 12").

    python3 scripts/exdwpw5_tiles_time.py --batches 1,2,4 --json out.json
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="1,2,4")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    be = CustomBackend(kernels="fuse=v9")
    be._ensure_device()
    net = default_network()
    rng = np.random.default_rng(0)
    rows, done = [], set()
    for op, dw, pw in CustomBackend.small_cin_blocks(net):
        c, h, w = op.layer.in_shape
        co, ho, wo = pw.layer.out_shape
        s = dw.layer.stride
        tiles = [(th, tw) for si, ci, coi, th, tw in K.EXDWPW5_COMPILED if (si, ci, coi) == (s, c, co)]
        for batch in [int(b) for b in args.batches.split(",")]:
            key = (c, h, w, s, co, pw.residual is not None, batch)
            if not tiles or key in done:
                continue
            done.add(key)
            picks = {"v9": K.exdwpw5_tile(s, c, co, ho, wo, batch, be.sms, K.exdwpw5_small_tiles("v9"))}
            with be.stream:
                x = cupy.asarray(rng.standard_normal((batch, h, w, c), dtype=np.float32))
                r = cupy.asarray(rng.standard_normal((batch, ho, wo, co), dtype=np.float32))
                out = cupy.full((batch, ho, wo, co), np.nan, cupy.float32)
            res = r if pw.residual is not None else None
            ref = None
            for tile in tiles:
                be.force_tile5 = tile
                launch = be._exdwpw_launch(x, op.layer, op.act, dw.layer, dw.act, pw.layer, pw.act, res, out)
                out.fill(np.nan)
                be.launch_all([launch])
                ref = out.copy() if ref is None else ref
                diff = float(cupy.max(cupy.abs(out - ref)))  # NaN (unwritten) propagates
                t = cuda_event_timing(
                    lambda i, launch=launch: be.launch_all([launch]), warmup=10, repeats=41, stream=be.stream, inner=3
                )
                row = {
                    "block": f"{c}->{op.layer.out_channels}->{co} s{s} @{h}x{w}",
                    "kernel": launch.name,
                    "batch": batch,
                    "blocks": int(np.prod(launch.grid)),
                    "median_us": t.median_ms * 1e3,
                    "max_abs_diff": diff,
                    "picked_by": [v for v, p in picks.items() if p == tile],
                }
                rows.append(row)
                print(
                    f"bs{batch:<3} {row['block']:24s} {launch.name:26s} {row['blocks']:5d} blocks "
                    f"{row['median_us']:8.2f} us  max|diff| {diff:.3g}  {' '.join(row['picked_by'])}",
                    flush=True,
                )
            be.force_tile5 = None
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
