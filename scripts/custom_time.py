"""Time the custom backend: every kernel version on every distinct layer, GEMM tiles, NHWC vs NCHW
pointwise GEMM, and end to end (eager / CUDA graph). Device figures are CUDA-event medians
(mbv2.timing.cuda_event_timing, launch latency hidden by a spin kernel, inputs rotated when the
working set fits in L2). Prints tables; --json writes everything.

    python3 scripts/custom_time.py --json results/custom_times.json [--batches 1,64] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cupy  # noqa: E402

from impls import _custom_kernels as K  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import cuda_event_timing, host_timing, rotation_count  # noqa: E402

_BE: dict[str, CustomBackend] = {}


def backend(spec: str) -> CustomBackend:
    if spec not in _BE:
        be = CustomBackend(kernels=spec)
        be._ensure_device()
        _BE[spec] = be
    return _BE[spec]


_BT: dict[str, CustomBackend] = {}


def backend_tuned(spec: str) -> CustomBackend:
    if spec not in _BT:
        be = CustomBackend(kernels=spec, autotune=True)
        be._ensure_device()
        _BT[spec] = be
    return _BT[spec]


def family_of(op) -> str:
    if op.kind == "conv":
        return "gemm" if op.layer.is_pointwise else ("depthwise" if op.layer.is_depthwise else "stem")
    return op.kind


def op_cost(op, batch: int) -> tuple[float, float]:
    """(flop, bytes moved at minimum) for one op at a batch."""
    lay = op.layer
    if op.kind == "conv":
        c, h, w = lay.in_shape
        co, ho, wo = lay.out_shape
        by = 4 * batch * (c * h * w + co * ho * wo * (2 if op.residual is not None else 1)) + 4 * lay.weight.size
        return float(lay.flops() * batch), float(by)
    if op.kind == "pool":
        c, h, w = lay.in_shape
        return float(batch * c * h * w), float(4 * batch * c * (h * w + 1))
    return float(lay.flops() * batch), float(4 * (lay.weight.size + batch * (lay.in_features + lay.out_features)))


def dev_rand(shape, rng) -> cupy.ndarray:
    return cupy.asarray(rng.standard_normal(shape, dtype=np.float32))


def time_launches(be: CustomBackend, lists: list, batch: int) -> dict:
    inner = 10 if batch == 1 else 3
    t = cuda_event_timing(
        lambda i: be.launch_all(lists[i % len(lists)]), warmup=6, repeats=25, stream=be.stream, inner=inner
    )
    return {"median_ms": t.median_ms, "p10_ms": t.p10_ms, "p90_ms": t.p90_ms}


def op_inputs(be: CustomBackend, op, batch: int, rng):
    """Rotated NHWC inputs (and residuals) for one op, and one output buffer."""
    lay = op.layer
    in_bytes = 4 * batch * int(np.prod(lay.in_shape))
    out_bytes = 4 * batch * int(np.prod(lay.out_shape))
    copies = rotation_count(in_bytes + out_bytes * (2 if op.residual is not None else 1))
    with be.stream:
        if len(lay.in_shape) == 3:
            c, h, w = lay.in_shape
            xs = [dev_rand((batch, h, w, c), rng) for _ in range(copies)]
        else:
            xs = [dev_rand((batch, *lay.in_shape), rng) for _ in range(copies)]
        if len(lay.out_shape) == 3:
            co, ho, wo = lay.out_shape
            oshape = (batch, ho, wo, co)
        else:
            oshape = (batch, *lay.out_shape)
        rs = [dev_rand(oshape, rng) for _ in range(copies)] if op.residual is not None else [None] * copies
        out = cupy.empty(oshape, cupy.float32)
    return xs, rs, out


def launches_for(be: CustomBackend, op, x, r, out, scratch):
    if op.kind == "conv":
        return be._conv_launches(x, op.layer, op.act, r, out, scratch)
    if op.kind == "pool":
        return [be._pool_launch(x, out)]
    return be._linear_launches(x, op.layer, out)


def per_layer(net, batches, rng, results, only: dict[str, list[str]] | None = None):
    """Every version of every family on every distinct op; ``only`` = {family: [versions]} restricts it."""
    rows = []
    for entry in net.distinct_ops():
        op = entry["op"]
        fam = family_of(op)
        if only is not None and fam not in only:
            continue
        for batch in batches:
            xs, rs, out = op_inputs(backend(""), op, batch, rng)
            flop, nbytes = op_cost(op, batch)
            for ver in K.KERNEL_VERSIONS[fam]:
                if only is not None and ver not in only[fam]:
                    continue
                be = backend(f"{fam}={ver}")
                scratch = None
                if op.kind == "conv":
                    need = be._needs_scratch(op.layer, xs[0].shape)
                    if need:
                        with be.stream:
                            scratch = cupy.empty((need,), cupy.float32)
                lists = [launches_for(be, op, x, r, out, scratch) for x, r in zip(xs, rs)]
                t = time_launches(be, lists, batch)
                ms = t["median_ms"]
                row = {
                    "op": op.index,
                    "ops": entry["ops"],
                    "count": len(entry["ops"]),
                    "family": fam,
                    "version": ver,
                    "batch": batch,
                    "layer": op.describe(net.layers),
                    "in_shape": list(op.layer.in_shape),
                    "kernels": [launch.name for launch in lists[0]],
                    **t,
                    "gflops": flop / ms / 1e6,
                    "gbs": nbytes / ms / 1e6,
                    "rotation": len(xs),
                }
                rows.append(row)
                print(
                    f"bs{batch:<3} op{op.index:<3} x{len(entry['ops'])} {fam:9s} {ver} {ms * 1e3:9.2f} us "
                    f"{row['gflops']:8.0f} GFLOP/s {row['gbs']:7.0f} GB/s  {row['kernels']}  {row['layer']}",
                    flush=True,
                )
                del scratch
            del xs, rs, out
            cupy.get_default_memory_pool().free_all_blocks()
    results["per_layer"] = rows
    # network total per family and version: sum over distinct ops of time x how many ops share it
    totals = {}
    for r in rows:
        key = f"{r['family']}/{r['version']}/bs{r['batch']}"
        totals[key] = totals.get(key, 0.0) + r["median_ms"] * r["count"]
    results["family_totals_ms"] = totals
    print("\nnetwork total per family/version (ms, sum of per-layer medians x occurrences):")
    for k in sorted(totals):
        print(f"  {k:22s} {totals[k]:.4f}")


def add_times(net, batches, rng, results):
    """add v1 / v2 on the shapes of MobileNetV2's residual adds (all fused into convs in the network;
    add() serves the Op interface)."""
    rows = []
    shapes = sorted(
        {
            tuple(e["op"].layer.out_shape)
            for e in net.distinct_ops()
            if e["op"].kind == "conv" and e["op"].residual is not None
        }
    )
    for batch in batches:
        for c, h, w in shapes:
            n = batch * c * h * w
            copies = rotation_count(12 * n)
            with backend("").stream:
                abs_ = [(dev_rand((n,), rng), dev_rand((n,), rng)) for _ in range(copies)]
                out = cupy.empty((n,), cupy.float32)
            for ver in K.KERNEL_VERSIONS["add"]:
                be = backend(f"add={ver}")
                lists = [[be._add_launch(a, b, out)] for a, b in abs_]
                ms = time_launches(be, lists, batch)["median_ms"]
                rows.append(
                    {"batch": batch, "shape": [c, h, w], "version": ver, "median_ms": ms, "gbs": 12 * n / ms / 1e6}
                )
                print(
                    f"add bs{batch:<3} {c}x{h}x{w} {ver} {ms * 1e3:8.2f} us {12 * n / ms / 1e6:7.0f} GB/s", flush=True
                )
    results["add"] = rows


def gemm_tiles(net, batches, rng, results):
    rows = []
    for entry in net.distinct_ops():
        op = entry["op"]
        if family_of(op) != "gemm":
            continue
        for batch in batches:
            xs, rs, out = op_inputs(backend(""), op, batch, rng)
            for ver in ("v4",):
                be = backend(f"gemm={ver}")
                chosen = None
                times = {}
                for tile in K.GEMM_TILES_VEC:
                    be.force_tile = tile
                    lists = [launches_for(be, op, x, r, out, None) for x, r in zip(xs, rs)]
                    times["x".join(map(str, tile))] = time_launches(be, lists, batch)["median_ms"]
                be.force_tile = None
                chosen = launches_for(be, op, xs[0], rs[0], out, None)[0].name
                best = min(times, key=times.get)
                rows.append(
                    {
                        "op": op.index,
                        "batch": batch,
                        "version": ver,
                        "times_ms": times,
                        "chosen": chosen,
                        "best": best,
                        "count": len(entry["ops"]),
                    }
                )
                print(
                    f"tiles bs{batch:<3} op{op.index:<3} {ver} chosen {chosen:28s} best {best:12s} "
                    + " ".join(f"{k}:{v * 1e3:.1f}" for k, v in times.items()),
                    flush=True,
                )
            del xs, rs, out
            cupy.get_default_memory_pool().free_all_blocks()
    results["gemm_tiles"] = rows


def layout_compare(net, batches, rng, results):
    """The pointwise convs as NHWC (one GEMM over N*H*W rows) vs NCHW (per image W @ x_n)."""
    rows = []
    be = backend("")
    for entry in net.distinct_ops():
        op = entry["op"]
        if family_of(op) != "gemm":
            continue
        lay = op.layer
        c, h, w = lay.in_shape
        co = lay.out_channels
        p = be._layer_params(lay)
        for batch in batches:
            hw = h * w
            copies = rotation_count(4 * batch * hw * (c + co))
            with be.stream:
                xs_nhwc = [dev_rand((batch * hw, c), rng) for _ in range(copies)]
                xs_nchw = [dev_rand((batch, c, hw), rng) for _ in range(copies)]
                out = cupy.empty((batch * hw * co,), cupy.float32)
            nhwc = [
                be._gemm(x, p["wt"], out, p["bias"], None, batch * hw, co, c, act=op.act, version="v4") for x in xs_nhwc
            ]
            nchw = [
                be._gemm(
                    p["w"],
                    x,
                    out,
                    p["bias"],
                    None,
                    co,
                    hw,
                    c,
                    batch=batch,
                    sa=0,
                    sb=c * hw,
                    sc=co * hw,
                    bias_mode=2,
                    act=op.act,
                    version="v4",
                )
                for x in xs_nchw
            ]
            t1 = time_launches(be, nhwc, batch)["median_ms"]
            t2 = time_launches(be, nchw, batch)["median_ms"]
            rows.append(
                {
                    "op": op.index,
                    "count": len(entry["ops"]),
                    "batch": batch,
                    "nhwc_ms": t1,
                    "nchw_ms": t2,
                    "nhwc_kernel": nhwc[0][0].name,
                    "nchw_kernel": nchw[0][0].name,
                }
            )
            print(
                f"layout bs{batch:<3} op{op.index:<3} NHWC {t1 * 1e3:8.2f} us ({nhwc[0][0].name})  "
                f"NCHW {t2 * 1e3:8.2f} us ({nchw[0][0].name})",
                flush=True,
            )
            del xs_nhwc, xs_nchw, out
    results["layout"] = rows
    for batch in batches:
        a = sum(r["nhwc_ms"] * r["count"] for r in rows if r["batch"] == batch)
        b = sum(r["nchw_ms"] * r["count"] for r in rows if r["batch"] == batch)
        print(f"layout total bs{batch}: all pointwise convs NHWC {a:.4f} ms, NCHW {b:.4f} ms")


def fuse_pairs(net, batches, rng, results):
    """fuse v1 (depthwise kernel -> HBM -> pointwise GEMM) vs v2 (one dwpw kernel) on every distinct
    depthwise + pointwise pair of the network; x = how many pairs share the shapes."""
    rows = []
    groups: dict = {}
    for op, nxt in zip(net.fused, net.fused[1:]):
        if op.kind == "conv" and nxt.kind == "conv" and op.layer.is_depthwise and nxt.layer.is_pointwise:
            if nxt.input != op.index or op.residual is not None:
                continue
            key = (op.layer.in_shape, op.layer.stride, nxt.layer.out_channels, nxt.residual is not None)
            groups.setdefault(key, []).append((op, nxt))
    for pairs in groups.values():
        dw, pw = pairs[0]
        c, h, w = dw.layer.in_shape
        cm, ho, wo = dw.layer.out_shape
        co = pw.layer.out_channels
        for batch in batches:
            ws = 4 * batch * (c * h * w + co * ho * wo * (2 if pw.residual is not None else 1))
            copies = rotation_count(ws)
            be1, be2 = backend("fuse=v1"), backend("fuse=v2")
            with be1.stream:
                xs = [dev_rand((batch, h, w, c), rng) for _ in range(copies)]
                rs = [dev_rand((batch, ho, wo, co), rng) if pw.residual is not None else None for _ in range(copies)]
                mid = cupy.empty((batch, ho, wo, cm), cupy.float32)
                out = cupy.empty((batch, ho, wo, co), cupy.float32)
            row = {
                "ops": [(a.index, b.index) for a, b in pairs],
                "count": len(pairs),
                "batch": batch,
                "layer": f"dw{c}s{dw.layer.stride}@{h}x{w} -> {co}{' +res' if pw.residual is not None else ''}",
            }
            l1 = [
                be1._conv_launches(x, dw.layer, dw.act, None, mid) + be1._conv_launches(mid, pw.layer, pw.act, r, out)
                for x, r in zip(xs, rs)
            ]
            l2 = [be2._dwpw_launches(x, dw.layer, dw.act, pw.layer, pw.act, r, out) for x, r in zip(xs, rs)]
            row["v1_ms"] = time_launches(be1, l1, batch)["median_ms"]
            row["v1_kernels"] = [la.name for la in l1[0]]
            row["v2_ms"] = time_launches(be2, l2, batch)["median_ms"]
            row["v2_kernels"] = [la.name for la in l2[0]]
            be3 = backend_tuned("fuse=v2")
            l3 = [be3._dwpw_launches(x, dw.layer, dw.act, pw.layer, pw.act, r, out) for x, r in zip(xs, rs)]
            row["v2tune_ms"] = time_launches(be3, l3, batch)["median_ms"]
            row["v2tune_kernels"] = [la.name for la in l3[0]]
            rows.append(row)
            print(
                f"fuse bs{batch:<3} x{row['count']} {row['layer']:28s} v1 {row['v1_ms'] * 1e3:8.2f} us  "
                f"v2 {row['v2_ms'] * 1e3:8.2f} us  {row['v1_kernels']} {row['v2_kernels']}",
                flush=True,
            )
            del xs, rs, mid, out, l1, l2, l3
            cupy.get_default_memory_pool().free_all_blocks()
    results["fuse"] = rows
    for batch in batches:
        a = sum(r["v1_ms"] * r["count"] for r in rows if r["batch"] == batch)
        b = sum(r["v2_ms"] * r["count"] for r in rows if r["batch"] == batch)
        t = sum(r["v2tune_ms"] * r["count"] for r in rows if r["batch"] == batch)
        print(f"fuse total bs{batch}: all dw+pw pairs v1 {a:.4f} ms, v2 {b:.4f} ms, v2+tune {t:.4f} ms")


def exdw_pairs(net, batches, rng, results):
    """fuse v1 (expansion GEMM -> HBM -> depthwise kernel, autotuned as by default) vs v3 / v4 (one exdw
    kernel) on every distinct fusable expansion + depthwise pair; x = how many pairs share the shapes."""
    rows = []
    groups: dict = {}
    for op, nxt in zip(net.fused, net.fused[1:]):
        if op.kind == "conv" and nxt.kind == "conv" and nxt.input == op.index and op.residual is None:
            if CustomBackend._exdw_fusable(op.layer, nxt.layer) and nxt.residual is None:
                key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride)
                groups.setdefault(key, []).append((op, nxt))
    for pairs in groups.values():
        ex, dw = pairs[0]
        c, h, w = ex.layer.in_shape
        ce, ho, wo = dw.layer.out_shape
        for batch in batches:
            copies = rotation_count(4 * batch * (c * h * w + ce * ho * wo))
            be1 = backend_tuned("fuse=v1")
            with be1.stream:
                xs = [dev_rand((batch, h, w, c), rng) for _ in range(copies)]
                mid = cupy.empty((batch, h, w, ce), cupy.float32)
                out = cupy.empty((batch, ho, wo, ce), cupy.float32)
            row = {
                "ops": [(a.index, b.index) for a, b in pairs],
                "count": len(pairs),
                "batch": batch,
                "layer": f"ex{c}->{ce}@{h}x{w} dw s{dw.layer.stride}",
                "bytes_fused": 4 * batch * (c * h * w + ce * ho * wo),
                "bytes_separate": 4 * batch * (c * h * w + 2 * ce * h * w + ce * ho * wo),
            }
            l1 = [
                be1._conv_launches(x, ex.layer, ex.act, None, mid)
                + be1._conv_launches(mid, dw.layer, dw.act, None, out)
                for x in xs
            ]
            row["v1_ms"] = time_launches(be1, l1, batch)["median_ms"]
            row["v1_kernels"] = [la.name for la in l1[0]]
            for ver in ("v3", "v4"):
                be = backend(f"fuse={ver}")
                lv = [[be._exdw_launch(x, ex.layer, ex.act, dw.layer, dw.act, out)] for x in xs]
                row[f"{ver}_ms"] = time_launches(be, lv, batch)["median_ms"]
                row[f"{ver}_gbs"] = row["bytes_fused"] / row[f"{ver}_ms"] / 1e6
            rows.append(row)
            print(
                f"exdw bs{batch:<3} x{row['count']} {row['layer']:24s} v1 {row['v1_ms'] * 1e3:8.2f} us  "
                f"v3 {row['v3_ms'] * 1e3:8.2f} us  v4 {row['v4_ms'] * 1e3:8.2f} us ({row['v4_gbs']:.0f} GB/s fused "
                f"bytes)  {row['v1_kernels']}",
                flush=True,
            )
            del xs, mid, out, l1
            cupy.get_default_memory_pool().free_all_blocks()
    results["exdw"] = rows
    for batch in batches:
        tot = {v: sum(r[f"{v}_ms"] * r["count"] for r in rows if r["batch"] == batch) for v in ("v1", "v3", "v4")}
        print(f"exdw total bs{batch}: v1 {tot['v1']:.4f} ms, v3 {tot['v3']:.4f} ms, v4 {tot['v4']:.4f} ms")


def block_times(net, batches, rng, results):
    """fuse v5 (exdwpw5: expansion + depthwise + projection (+ residual) in one kernel) vs v4 (the exdw4 pair
    + the autotuned projection GEMM through HBM) on every distinct small-CIN block; x = how many blocks share
    the shapes."""
    rows = []
    groups: dict = {}
    for op, nxt in zip(net.fused, net.fused[1:]):
        if op.kind == "conv" and nxt.kind == "conv" and nxt.input == op.index and op.residual is None:
            if CustomBackend._exdw_fusable(op.layer, nxt.layer) and nxt.residual is None:
                pw = net.fused[nxt.index + 1]
                if pw.kind == "conv" and pw.input == nxt.index and pw.layer.is_pointwise:
                    key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride, pw.layer.out_channels)
                    groups.setdefault(key + (pw.residual is None,), []).append((op, nxt, pw))
    for blocks in groups.values():
        ex, dw, pw = blocks[0]
        c, h, w = ex.layer.in_shape
        ce, ho, wo = dw.layer.out_shape
        co = pw.layer.out_channels
        has_res = pw.residual is not None
        for batch in batches:
            copies = rotation_count(4 * batch * (c * h * w + co * ho * wo * (2 if has_res else 1)))
            be4, be5 = backend_tuned("fuse=v4"), backend("fuse=v5")
            with be4.stream:
                xs = [dev_rand((batch, h, w, c), rng) for _ in range(copies)]
                rs = [dev_rand((batch, ho, wo, co), rng) if has_res else None for _ in range(copies)]
                mid = cupy.empty((batch, ho, wo, ce), cupy.float32)
                out = cupy.empty((batch, ho, wo, co), cupy.float32)
            row = {
                "ops": [(a.index, b.index, d.index) for a, b, d in blocks],
                "count": len(blocks),
                "batch": batch,
                "layer": f"{c}->{ce}->{co}@{h}x{w} s{dw.layer.stride}{' +res' if has_res else ''}",
                "bytes_fused": 4 * batch * (c * h * w + co * ho * wo * (2 if has_res else 1)),
            }
            l4 = [
                [be4._exdw_launch(x, ex.layer, ex.act, dw.layer, dw.act, mid)]
                + be4._conv_launches(mid, pw.layer, pw.act, r, out)
                for x, r in zip(xs, rs)
            ]
            row["v4_ms"] = time_launches(be4, l4, batch)["median_ms"]
            row["v4_kernels"] = [la.name for la in l4[0]]
            l5 = [
                [be5._exdwpw_launch(x, ex.layer, ex.act, dw.layer, dw.act, pw.layer, pw.act, r, out)]
                for x, r in zip(xs, rs)
            ]
            row["v5_ms"] = time_launches(be5, l5, batch)["median_ms"]
            row["v5_kernel"] = l5[0][0].name
            row["v5_gbs"] = row["bytes_fused"] / row["v5_ms"] / 1e6
            mac = batch * (
                ce * c * (ho * dw.layer.stride) * (wo * dw.layer.stride) + ce * 9 * ho * wo + ce * co * ho * wo
            )
            row["v5_tflops"] = 2.0 * mac / row["v5_ms"] / 1e9
            rows.append(row)
            print(
                f"block bs{batch:<3} x{row['count']} {row['layer']:28s} v4 {row['v4_ms'] * 1e3:8.2f} us  "
                f"v5 {row['v5_ms'] * 1e3:8.2f} us ({row['v5_gbs']:.0f} GB/s, {row['v5_tflops']:.1f} TFLOP/s "
                f"without halo)  {row['v4_kernels']} / {row['v5_kernel']}",
                flush=True,
            )
            del xs, rs, mid, out, l4, l5
            cupy.get_default_memory_pool().free_all_blocks()
    results["blocks"] = rows
    for batch in batches:
        tot = {v: sum(r[f"{v}_ms"] * r["count"] for r in rows if r["batch"] == batch) for v in ("v4", "v5")}
        print(f"block total bs{batch}: v4 {tot['v4']:.4f} ms, v5 {tot['v5']:.4f} ms")


def block0_times(net, batches, rng, results):
    """block0 v1 (input transpose + stem v3 + depthwise v3 + the autotuned projection GEMM) vs v2 / v3 (one kernel,
    kernels/block0.cu; v3 also at 2 blocks per SM, "v3occ2") on the network's first three ops, NCHW input buffer
    -> the projection's NHWC output."""
    st, dw, pw = net.fused[:3]
    c, h, w = net.input_shape
    ho, wo = st.layer.out_hw(h, w)
    c1, c3 = st.layer.out_channels, pw.layer.out_channels
    rows = []
    for batch in batches:
        in_b, out_b = 4 * batch * c * h * w, 4 * batch * ho * wo * c3
        copies = rotation_count(in_b + out_b)
        be1 = backend_tuned("block0=v1")
        with be1.stream:
            xs = [dev_rand((batch, c, h, w), rng) for _ in range(copies)]
            x0 = cupy.empty((batch, h, w, c), cupy.float32)
            s = cupy.empty((batch, ho, wo, c1), cupy.float32)
            d = cupy.empty((batch, ho, wo, c1), cupy.float32)
            out = cupy.empty((batch, ho, wo, c3), cupy.float32)
        l1 = [
            [be1._transpose_launch(x, x0, batch, c, h * w)]
            + be1._conv_launches(x0, st.layer, st.act, None, s)
            + be1._conv_launches(s, dw.layer, dw.act, None, d)
            + be1._conv_launches(d, pw.layer, pw.act, None, out)
            for x in xs
        ]
        flop = 2.0 * batch * ho * wo * (27 * c1 + 9 * c1 + c1 * c3)
        row = {"batch": batch, "layer": f"stem 3->{c1} s2 + dw {c1} s1 + pw {c1}->{c3} @{ho}x{wo}", "flop": flop}
        row["bytes_v2"] = in_b + out_b
        row["bytes_v1"] = 2 * in_b + 4 * batch * ho * wo * (4 * c1 + c3) + in_b  # transpose r+w, stem in, s/d w+r
        row["v1_ms"] = time_launches(be1, l1, batch)["median_ms"]
        row["v1_parts_ms"] = {
            la.name: time_launches(be1, [[lst[i]] for lst in l1], batch)["median_ms"] for i, la in enumerate(l1[0])
        }
        for ver, occ2 in (("v2", False), ("v3", False), ("v3occ2", True)):
            be = backend(f"block0={ver[:2]}")
            be.block0_occ2 = occ2
            lv = [[be._block0_launch(x, st.layer, st.act, dw.layer, dw.act, pw.layer, pw.act, out)] for x in xs]
            be.block0_occ2 = False
            assert all(lst[0] is not None for lst in lv), be._fallbacks
            row[f"{ver}_ms"] = time_launches(be, lv, batch)["median_ms"]
            row[f"{ver}_kernel"] = lv[0][0].name
            row[f"{ver}_gbs"] = row["bytes_v2"] / row[f"{ver}_ms"] / 1e6
            row[f"{ver}_tflops"] = flop / row[f"{ver}_ms"] / 1e9
        rows.append(row)
        parts = "  ".join(f"{k} {v * 1e3:.1f}" for k, v in row["v1_parts_ms"].items())
        vers = "  ".join(
            f"{v} {row[f'{v}_ms'] * 1e3:8.2f} us ({row[f'{v}_gbs']:.0f} GB/s, {row[f'{v}_tflops']:.1f} TFLOP/s useful)"
            for v in ("v2", "v3", "v3occ2")
        )
        print(f"block0 bs{batch:<3} v1 {row['v1_ms'] * 1e3:9.2f} us ({parts})  {vers}", flush=True)
        del xs, x0, s, d, out, l1, lv
        cupy.get_default_memory_pool().free_all_blocks()
    results["block0"] = rows


def e2e(net, batches, results, configs, both_modes=False):
    rows = []
    for spec in configs:
        for batch in batches:
            x = random_input(net, batch, seed=batch)
            for graph in (False, True):
                if spec and not graph and not both_modes:
                    continue  # version sweeps: graph replay only (device time of the kernels)
                tune, kspec = None, spec  # suffix +tune / +notune: autotune on / off (else the default)
                for suffix, flag in (("+notune", False), ("+tune", True)):
                    if spec.endswith(suffix):
                        tune, kspec = flag, spec[: -len(suffix)]
                be = CustomBackend(kernels=kspec, graph=graph, autotune=tune)
                t_prep = time.perf_counter()
                be.prepare(net)
                be.plan(batch)
                t_prep = time.perf_counter() - t_prep
                be.plan(batch)
                be.run(x)
                dev = cuda_event_timing(
                    lambda i, be=be, batch=batch: be.enqueue(batch), warmup=5, repeats=30, stream=be.stream
                )
                host = host_timing(lambda i, be=be, x=x: be.run(x), warmup=3, repeats=20)
                row = {
                    "spec": spec or "default",
                    "versions": be.versions,
                    "batch": batch,
                    "graph": graph,
                    "device_ms": dev.median_ms,
                    "host_ms": host.median_ms,
                    "host_p90_ms": host.p90_ms,
                    "img_per_s": batch / (dev.median_ms / 1e3),
                    "prepare_plan_s": t_prep,
                    "tuned": dict(be.tuned),
                }
                rows.append(row)
                print(
                    f"e2e {row['spec']:14s} bs{batch:<3} graph={graph!s:5s} device {dev.median_ms:8.4f} ms  "
                    f"host (H2D+run+D2H+sync) {host.median_ms:8.4f} ms  {row['img_per_s']:9.0f} img/s",
                    flush=True,
                )
                be.close()
                cupy.get_default_memory_pool().free_all_blocks()
    results["e2e"] = rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--e2e-batches", default="1,8,64")
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of sections to skip: layers,add,tiles,layout,fuse,exdw,blocks,block0,e2e,sweep",
    )
    ap.add_argument("--fuse-batches", default="1,64,256")
    ap.add_argument("--only", default="", help="per-layer section restricted to these, e.g. 'gemm=v5+v7;pool=v2'")
    ap.add_argument(
        "--e2e-specs", default="", help="extra kernel specs timed end to end, eager and graph (';'-separated)"
    )
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    skip = set(args.skip.split(","))
    props = cupy.cuda.runtime.getDeviceProperties(0)
    results = {
        "gpu": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
        "sms": props["multiProcessorCount"],
        "l2_bytes": props["l2CacheSize"],
        "cupy": cupy.__version__,
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "defaults": K.DEFAULT_VERSIONS,
    }
    print(json.dumps({k: v for k, v in results.items()}, default=str))
    net = default_network()
    rng = np.random.default_rng(0)
    t0 = time.time()
    try:
        if "layers" not in skip:
            only = None
            if args.only:
                only = {f: v.split("+") for f, v in (part.split("=") for part in args.only.split(";"))}
            per_layer(net, batches, rng, results, only)
            print(f"[per-layer done {time.time() - t0:.0f}s]", flush=True)
        if "add" not in skip:
            add_times(net, batches, rng, results)
        if "tiles" not in skip:
            gemm_tiles(net, batches, rng, results)
            print(f"[tiles done {time.time() - t0:.0f}s]", flush=True)
        if "layout" not in skip:
            layout_compare(net, batches, rng, results)
            print(f"[layout done {time.time() - t0:.0f}s]", flush=True)
        if "fuse" not in skip:
            fuse_pairs(net, [int(b) for b in args.fuse_batches.split(",")], rng, results)
            print(f"[fuse done {time.time() - t0:.0f}s]", flush=True)
        if "exdw" not in skip:
            exdw_pairs(net, [int(b) for b in args.fuse_batches.split(",")], rng, results)
            print(f"[exdw done {time.time() - t0:.0f}s]", flush=True)
        if "blocks" not in skip:
            block_times(net, [int(b) for b in args.fuse_batches.split(",")], rng, results)
            print(f"[blocks done {time.time() - t0:.0f}s]", flush=True)
        if "block0" not in skip:
            block0_times(net, [int(b) for b in args.fuse_batches.split(",")], rng, results)
            print(f"[block0 done {time.time() - t0:.0f}s]", flush=True)
        if "e2e" not in skip:
            e2e_b = [int(b) for b in args.e2e_batches.split(",")]
            extra = [s for s in args.e2e_specs.split(";") if s]
            e2e(net, e2e_b, results, ["", *extra], both_modes=True)
            sweeps = [
                "gemm=v1",
                "gemm=v2",
                "gemm=v3",
                "gemm=v4",
                "gemm=v5",
                "depthwise=v1",
                "depthwise=v2",
                "stem=v1,block0=v1",  # block0 v2 / v3 (default) run the stem inside their own kernel
                "stem=v2,block0=v1",
                "pool=v1",
                "pool=v3",
                "linear=v1",
            ]
            if "sweep" not in skip:
                e2e(net, [1, 64], results.setdefault("sweep", {}), sweeps)
            print(f"[e2e done {time.time() - t0:.0f}s]", flush=True)
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
