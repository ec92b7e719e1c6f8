"""fuse v7 (kernels/gemm.cu exgdw) per (expansion, depthwise) pair of the network's 14x14 / 7x7 blocks: the exgdw
kernel with BN = 64 and 32 against the two layers' own kernels (the expansion GEMM, autotuned, + the depthwise conv),
at several batches. H100 (any CUDA GPU); results/NOTES.md cites its output.

    python3 scripts/exgdw_time.py --batches 8,64,256 --json out.json

Device us per pair: CUDA-event median of `repeats` samples of `inner` back-to-back runs of the pair's launches
(mbv2.timing), random inputs, the backend's own buffers; the autotuner's pick (what a fuse v7 plan runs) is marked.
Useful TFLOP/s counts the expansion and the depthwise conv.
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


def pairs(net) -> list:
    seen, out = set(), []
    for op, nxt in zip(net.fused, net.fused[1:]):
        if not (op.kind == "conv" and nxt.kind == "conv" and nxt.input == op.index and nxt.residual is None):
            continue
        if CustomBackend._exgdw_fusable(op.layer, nxt.layer, *op.layer.out_shape[1:]):
            key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride)
            if key not in seen:
                seen.add(key)
                out.append((op, nxt))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="8,64,256")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--inner", type=int, default=5)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    net = default_network()
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    rng = np.random.default_rng(0)
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for op, nxt in pairs(net):
            ex, dw = op.layer, nxt.layer
            cin, h, w = ex.in_shape
            ce = ex.out_channels
            ho, wo = dw.out_hw(h, w)
            be = CustomBackend(kernels="fuse=v7")
            be._ensure_device()
            with be.stream:
                x = cupy.asarray(rng.standard_normal((batch, h, w, cin), dtype=np.float32))
                mid = cupy.empty((batch, h, w, ce), cupy.float32)
                out = cupy.empty((batch, ho, wo, ce), cupy.float32)
            pick = be._exgdw_launches(x, ex, op.act, dw, nxt.act, out, mid)  # the autotuner's (or the model's) choice
            flop = 2.0 * batch * (h * w * cin * ce + ho * wo * ce * 9)
            res = {}
            for force in (*K.EXGDW_VARIANTS, "pair"):
                be.force_exgdw = force
                launches = be._exgdw_launches(x, ex, op.act, dw, nxt.act, out, mid)
                t = cuda_event_timing(
                    lambda _, la=launches, be=be: be.launch_all(la),
                    warmup=4,
                    repeats=args.repeats,
                    stream=be.stream,
                    inner=args.inner,
                )
                us = t.median_ms * 1e3
                chosen = [la.name for la in launches] == [la.name for la in pick]
                res[str(force)] = us
                rows.append({"gpu": gpu, "batch": batch, "pair": f"{cin}->{ce} s{dw.stride} @{h}x{w}",
                             "path": str(force), "kernels": [la.name for la in launches], "us": us,
                             "tflops": flop / us / 1e6, "chosen": chosen})  # fmt: skip
            be.force_exgdw = None
            best = min(res, key=res.get)  # type: ignore[arg-type]
            pick_names = [la.name for la in pick]
            print(f"bs{batch:<4} {cin:4d}->{ce:<4d} s{dw.stride} @{h}x{w}: "
                  + "  ".join(f"{k} {v:8.1f} us ({flop / v / 1e6:5.1f} TF/s)" for k, v in res.items())
                  + f"  fastest {best}; plan runs {pick_names}", flush=True)  # fmt: skip
            be.close()
            cupy.get_default_memory_pool().free_all_blocks()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
