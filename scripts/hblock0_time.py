"""Time fp16 hblock0: v1 (hstem + hdepthwise + hgemm, the fp16 plan's unfused kernels) vs the one-kernel versions
(v2, v3: kernels/block0.cu) on MobileNetV2-1.0's first three ops, fp32 NCHW input buffer -> the projection's half
NHWC output. CUDA-event medians (mbv2.timing, inputs rotated when the working set fits in L2). Also checks each
fused version against v1 on the timed inputs (max abs difference, printed).

    python3 scripts/hblock0_time.py --json OUT.json [--batches 1,64,256] [--versions v2,v3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cupy  # noqa: E402

from impls._custom_hblock0 import hblock0_launch  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import cuda_event_timing, rotation_count  # noqa: E402


def time_sets(be, sets, batch: int) -> float:
    inner = 10 if batch == 1 else 3
    t = cuda_event_timing(
        lambda i: be.launch_all(sets[i % len(sets)]), warmup=6, repeats=25, stream=be.stream, inner=inner
    )
    return t.median_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--versions", default="v2", help="fused hblock0 versions to time against v1 (v2,v3)")
    args = ap.parse_args()
    fused_versions = [v for v in args.versions.split(",") if v]
    net = default_network()
    st, dw, pw = net.fused[:3]
    c, h, w = net.input_shape
    ho, wo = st.layer.out_hw(h, w)
    c1, c3 = st.layer.out_channels, pw.layer.out_channels
    rng = np.random.default_rng(0)
    be1 = CustomBackend(dtype="fp16")  # default fp16 versions (hblock0 v1), autotuned hgemm v4 as in the plan
    bes = {v: CustomBackend(dtype="fp16", kernels=f"hblock0={v}") for v in fused_versions}
    be1._ensure_device()
    for be in bes.values():
        be._ensure_device()
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        in_b, out_b = 4 * batch * c * h * w, 2 * batch * ho * wo * c3
        copies = rotation_count(in_b + out_b)
        with be1.stream:
            xs = [cupy.asarray(rng.standard_normal((batch, c, h, w), dtype=np.float32)) for _ in range(copies)]
            s = cupy.empty((batch, ho, wo, c1), cupy.float16)
            d = cupy.empty((batch, ho, wo, c1), cupy.float16)
            o1 = cupy.empty((batch, ho, wo, c3), cupy.float16)
            os_ = {v: cupy.full((batch, ho, wo, c3), np.nan, cupy.float16) for v in fused_versions}
        l1 = [
            be1._h_conv_launches(x, st.layer, st.act, None, s, nchw32=True)
            + be1._h_conv_launches(s, dw.layer, dw.act, None, d)
            + be1._h_conv_launches(d, pw.layer, pw.act, None, o1)
            for x in xs
        ]
        lv = {
            v: [[hblock0_launch(bes[v], x, st.layer, st.act, dw.layer, dw.act, pw.layer, pw.act, os_[v])] for x in xs]
            for v in fused_versions
        }
        for v, sets in lv.items():
            assert all(lst[0] is not None for lst in sets), bes[v]._fallbacks
        be1.launch_all(l1[0])
        be1.synchronize()
        a1 = o1.get().astype(np.float32)
        row = {"batch": batch, "layer": f"stem 3->{c1} s2 + dw {c1} s1 + pw {c1}->{c3} @{ho}x{wo} (fp16 mode)"}
        row["max_abs_v1"] = float(np.abs(a1).max())
        row["v1_kernels"] = [la.name for la in l1[0]]
        row["v1_ms"] = time_sets(be1, l1, batch)
        row["v1_parts_ms"] = {la.name: time_sets(be1, [[lst[i]] for lst in l1], batch) for i, la in enumerate(l1[0])}
        parts = "  ".join(f"{k} {v * 1e3:.1f}" for k, v in row["v1_parts_ms"].items())
        line = f"hblock0 bs{batch:<3} v1 {row['v1_ms'] * 1e3:9.2f} us ({parts}; max|v1| {row['max_abs_v1']:.3g})"
        flop = 2.0 * batch * ho * wo * (27 * c1 + 9 * c1 + c1 * c3)
        for v, sets in lv.items():
            bes[v].launch_all(sets[0])
            bes[v].synchronize()
            av = os_[v].get().astype(np.float32)  # NaN where the kernel left an output unwritten
            row[f"max_abs_v1_{v}"] = float(np.abs(a1 - av).max())
            row[f"{v}_ms"] = time_sets(bes[v], sets, batch)
            row[f"{v}_kernel"] = sets[0][0].name
            row[f"{v}_tflops"] = flop / row[f"{v}_ms"] / 1e9
            row[f"{v}_gbs"] = (in_b + out_b) / row[f"{v}_ms"] / 1e6
            line += (
                f"  {v} {row[f'{v}_ms'] * 1e3:9.2f} us ({row[f'{v}_tflops']:.1f} TFLOP/s useful, "
                f"{row[f'{v}_gbs']:.0f} GB/s, max|v1-{v}| {row[f'max_abs_v1_{v}']:.3g})"
            )
        rows.append(row)
        print(line, flush=True)
        del xs, s, d, o1, os_, l1, lv
        cupy.get_default_memory_pool().free_all_blocks()
    if args.json:
        Path(args.json).write_text(
            json.dumps({"gpu": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "hblock0": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
