"""Time the custom backend's fp16 tensor-core mode: every distinct layer (default fp16 kernels, and
hgemm v2 / v1 for the pointwise convs) at batch 1 / 64 / 256, and end to end (CUDA graph; eager too at
batch 256) at batch 1 / 8 / 64 / 256. Device figures are CUDA-event medians (mbv2.timing, launch
latency hidden by a spin kernel, inputs rotated when the working set fits in L2), with achieved
TFLOP/s and GB/s (minimum bytes: half activations in/out, weights once).

    python3 scripts/custom_fp16_time.py --json results/custom_fp16_times.json [--batches 1,64,256]
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

from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import cuda_event_timing, host_timing, rotation_count  # noqa: E402


def family_of(op) -> str:
    if op.kind == "conv":
        return "hgemm" if op.layer.is_pointwise else ("hdepthwise" if op.layer.is_depthwise else "hstem")
    return {"pool": "hpool", "linear": "hlinear"}[op.kind]


def op_cost(op, batch: int) -> tuple[float, float]:
    """(flop, minimum bytes) of one op in fp16 mode: half activations, half weights (stem fp32
    input), fp32 logits."""
    lay = op.layer
    if op.kind == "conv":
        c, h, w = lay.in_shape
        co, ho, wo = lay.out_shape
        in_b = (4 if family_of(op) == "hstem" else 2) * batch * c * h * w
        out_b = 2 * batch * co * ho * wo * (2 if op.residual is not None else 1)
        return float(lay.flops() * batch), float(in_b + out_b + 2 * lay.weight.size)
    if op.kind == "pool":
        c, h, w = lay.in_shape
        return float(batch * c * h * w), float(2 * batch * c * (h * w + 1))
    return float(lay.flops() * batch), float(2 * lay.weight.size + batch * (2 * lay.in_features + 4 * lay.out_features))


def op_launch_sets(be: CustomBackend, op, batch: int, rng) -> list[list]:
    """Launch lists over rotated inputs (all built, tuned and allocated before any timing)."""
    lay = op.layer
    stem = family_of(op) == "hstem"
    in_bytes = (4 if stem else 2) * batch * int(np.prod(lay.in_shape))
    out_bytes = 2 * batch * int(np.prod(lay.out_shape))
    copies = rotation_count(in_bytes + out_bytes * (2 if op.residual is not None else 1))
    sets = []
    with be.stream:
        if len(lay.out_shape) == 3:
            co, ho, wo = lay.out_shape
            oshape = (batch, ho, wo, co)
        else:
            oshape = (batch, *lay.out_shape)
        out = cupy.empty(oshape, cupy.float32 if op.kind == "linear" else cupy.float16)
        for _ in range(copies):
            if stem:
                x = cupy.asarray(rng.standard_normal((batch, *lay.in_shape), dtype=np.float32))
            elif len(lay.in_shape) == 3:
                c, h, w = lay.in_shape
                x = cupy.asarray(rng.standard_normal((batch, h, w, c), dtype=np.float32)).astype(cupy.float16)
            else:
                x = cupy.asarray(np.abs(rng.standard_normal((batch, *lay.in_shape), dtype=np.float32)))
                x = x.astype(cupy.float16)
            r = None
            if op.residual is not None:
                r = cupy.asarray(rng.standard_normal(oshape, dtype=np.float32)).astype(cupy.float16)
            if op.kind == "conv":
                sets.append(be._h_conv_launches(x, lay, op.act, r, out, nchw32=stem))
            elif op.kind == "pool":
                sets.append([be._h_pool_launch(x, out)])
            else:
                sets.append(be._h_linear_launches(x, lay, out))
    be.synchronize()
    return sets


def time_sets(be: CustomBackend, sets: list, batch: int) -> float:
    inner = 10 if batch == 1 else 3
    t = cuda_event_timing(
        lambda i: be.launch_all(sets[i % len(sets)]), warmup=6, repeats=25, stream=be.stream, inner=inner
    )
    return t.median_ms


def per_layer(net, batches, rng, results) -> None:
    rows = []
    bes = {
        "default": CustomBackend(dtype="fp16"),
        "hgemm=v2": CustomBackend(dtype="fp16", kernels="hgemm=v2"),
        "hgemm=v1": CustomBackend(dtype="fp16", kernels="hgemm=v1"),
    }
    for be in bes.values():
        be._ensure_device()
    for batch in batches:
        tot = {k: 0.0 for k in bes}
        for entry in net.distinct_ops():
            op = entry["op"]
            fam = family_of(op)
            mult = len(entry["ops"])
            flop, by = op_cost(op, batch)
            for spec, be in bes.items():
                if spec != "default" and fam != "hgemm":
                    continue
                if spec == "hgemm=v1" and batch > 64:
                    continue  # the SIMT fallback at 256 only costs device time
                sets = op_launch_sets(be, op, batch, rng)
                ms = time_sets(be, sets, batch)
                tot[spec] += ms * mult
                row = {
                    "op": op.index,
                    "x": mult,
                    "layer": op.describe(net.layers),
                    "family": fam,
                    "spec": spec,
                    "batch": batch,
                    "median_ms": ms,
                    "tflops": flop / ms / 1e9,
                    "gbps": by / ms / 1e6,
                    "kernels": [launch.name for launch in sets[0]],
                }
                rows.append(row)
                print(
                    f"layer bs{batch:<3} op{op.index:<3} x{mult} {fam:10s} {spec:8s} {ms * 1e3:9.1f} us  "
                    f"{row['tflops']:7.1f} TFLOP/s {row['gbps']:7.0f} GB/s  {','.join(row['kernels'])}  "
                    f"{row['layer']}",
                    flush=True,
                )
                del sets
        for spec, v in tot.items():
            if v:
                print(f"layers bs{batch} {spec}: sum over all fused ops {v:.4f} ms", flush=True)
        results.setdefault("layer_sums", {})[str(batch)] = tot
        cupy.get_default_memory_pool().free_all_blocks()
    results["layers"] = rows


def dw_sweep(net, batches, results) -> None:
    """Depthwise and stem layers: every version, and every hdepthwise v3 tile forced (hdw3_v3_force),
    on the same GPU-generated inputs (rotated as in op_launch_sets)."""
    from impls import _custom_kernels as K

    rows = []
    be_of: dict[str, CustomBackend] = {}
    for batch in batches:
        for entry in net.distinct_ops():
            op = entry["op"]
            fam = family_of(op)
            if fam not in ("hdepthwise", "hstem"):
                continue
            lay = op.layer
            stem = fam == "hstem"
            variants: list[tuple[str, tuple | None]] = [(f"{fam}={v}", None) for v in K.KERNEL_VERSIONS[fam]]
            variants = [v for v in variants if v[0] not in ("hdepthwise=v1", "hstem=v1", "hstem=v2") or batch < 256]
            if not stem:
                variants += [(f"hdepthwise={v}", t) for v in ("v3", "v4") for t in K.HDW3_V3_TILES[lay.stride]]
            c, h, w = lay.in_shape
            co, ho, wo = lay.out_shape
            in_b = (4 if stem else 2) * batch * c * h * w
            out_b = 2 * batch * co * ho * wo
            copies = rotation_count(in_b + out_b * (2 if op.residual is not None else 1))
            with cupy.cuda.Device():
                xs, rs = [], []
                for _ in range(copies):
                    if stem:
                        xs.append(cupy.random.standard_normal((batch, c, h, w), dtype=cupy.float32))
                    else:
                        xs.append(
                            cupy.random.standard_normal((batch, h, w, c), dtype=cupy.float32).astype(cupy.float16)
                        )
                    rs.append(
                        cupy.random.standard_normal((batch, ho, wo, co), dtype=cupy.float32).astype(cupy.float16)
                        if op.residual is not None
                        else None
                    )
                out = cupy.empty((batch, ho, wo, co), cupy.float16)
            cupy.cuda.Device().synchronize()
            for spec, tile in variants:
                be = be_of.get(spec)
                if be is None:
                    be = be_of[spec] = CustomBackend(dtype="fp16", kernels=spec)
                    be._ensure_device()
                be.hdw3_v3_force = tile
                sets = [be._h_conv_launches(x, lay, op.act, r, out, nchw32=stem) for x, r in zip(xs, rs)]
                be.hdw3_v3_force = None
                ms = time_sets(be, sets, batch)
                _, by = op_cost(op, batch)
                label = spec + ("" if tile is None else f":w{tile[0]}h{tile[1]}")
                row = {
                    "op": op.index,
                    "x": len(entry["ops"]),
                    "layer": op.describe(net.layers),
                    "family": fam,
                    "spec": label,
                    "batch": batch,
                    "median_ms": ms,
                    "gbps": by / ms / 1e6,
                    "kernels": [launch.name for launch in sets[0]],
                }
                rows.append(row)
                print(
                    f"dw bs{batch:<3} op{op.index:<3} x{row['x']} {label:22s} {ms * 1e3:8.1f} us "
                    f"{row['gbps']:6.0f} GB/s {','.join(row['kernels'])}  {row['layer']}",
                    flush=True,
                )
            del xs, rs, out
            cupy.get_default_memory_pool().free_all_blocks()
    results["dw_sweep"] = rows


def hexdw_pairs(net, batches, results) -> None:
    """hfuse v2: every distinct fused (expansion, depthwise) pair, the two unfused kernels (default
    versions, each also alone) vs the hexdw kernel (the backend's choice, and each tile / chunk grouping
    forced), on the same GPU-generated inputs (rotated as in op_launch_sets). GB/s = the fused pair's
    compulsory bytes (input + output + weights once) / time."""
    from impls import _custom_kernels as K

    rows = []
    v1 = CustomBackend(dtype="fp16", kernels="hfuse=v1")
    v2 = CustomBackend(dtype="fp16", kernels="hfuse=v2")
    v3 = CustomBackend(dtype="fp16", kernels="hfuse=v3")
    v1._ensure_device()
    v2._ensure_device()
    v3._ensure_device()
    pairs: dict = {}  # distinct shape -> [expansion op, depthwise op, how many in the network]
    for op, nxt in zip(net.fused, net.fused[1:]):
        if not (op.kind == "conv" and nxt.kind == "conv" and nxt.input == op.index and op.residual is None):
            continue
        if nxt.residual is None and CustomBackend._exdw_fusable(op.layer, nxt.layer):
            key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride)
            pairs.setdefault(key, [op, nxt, 0])[2] += 1
    for batch in batches:
        for ex, dw, count in pairs.values():
            c, h, w = ex.layer.in_shape
            ce = ex.layer.out_channels
            ho, wo = dw.layer.out_hw(h, w)
            in_b, mid_b, out_b = 2 * batch * c * h * w, 2 * batch * ce * h * w, 2 * batch * ce * ho * wo
            fused_b = in_b + out_b + 2 * (ex.layer.weight.size + dw.layer.weight.size)
            copies = rotation_count(in_b + mid_b + out_b)
            with cupy.cuda.Device():
                xs = [cupy.random.standard_normal((batch, h, w, c), dtype=cupy.float32).astype(cupy.float16)
                      for _ in range(copies)]  # fmt: skip
                mid = cupy.empty((batch, h, w, ce), cupy.float16)
                out = cupy.empty((batch, ho, wo, ce), cupy.float16)
            cupy.cuda.Device().synchronize()
            exl, dwl = ex.layer, dw.layer
            variants = {
                "expansion alone": (v1, [v1._h_conv_launches(x, exl, ex.act, None, mid) for x in xs]),
                "depthwise alone": (v1, [v1._h_conv_launches(mid, dwl, dw.act, None, out) for _ in xs]),
                "unfused (v1)": (
                    v1,
                    [
                        v1._h_conv_launches(x, exl, ex.act, None, mid)
                        + v1._h_conv_launches(mid, dwl, dw.act, None, out)
                        for x in xs
                    ],  # fmt: skip
                ),
                "hexdw (v2)": (v2, [[v2._h_exdw_launch(x, exl, ex.act, dwl, dw.act, out)] for x in xs]),
            }
            chunks = -(-ce // 32)
            for t in K.HEXDW_TILES[dwl.stride]:
                for cpb in sorted({1, 2, chunks}):
                    v2.hexdw_force = (t, cpb)
                    variants[f"hexdw t{t} cpb{cpb}"] = (v2, [[v2._h_exdw_launch(x, exl, ex.act, dwl, dw.act, out)]
                                                            for x in xs])  # fmt: skip
            v2.hexdw_force = None
            # hfuse v3 (hexdw3): the backend's shape, then every tile / chunk grouping / build forced
            variants["hexdw3 (v3)"] = (v3, [[v3._h_exdw_launch(x, exl, ex.act, dwl, dw.act, out)] for x in xs])
            for t in K.HEXDW_TILES[dwl.stride]:
                for cpb in sorted({1, 2, chunks}):
                    for occ in K.HEXDW3_OCC:
                        v3.hexdw_force = (t, cpb, occ)
                        variants[f"hexdw3 t{t} cpb{cpb} b{occ}"] = (
                            v3,
                            [[v3._h_exdw_launch(x, exl, ex.act, dwl, dw.act, out)] for x in xs],
                        )
            v3.hexdw_force = None
            label = f"{ex.index}+{dw.index} ex{c}->{ce} @{h}x{w} dw s{dwl.stride}"
            for name, (be, sets) in variants.items():
                ms = time_sets(be, sets, batch)
                row = {
                    "pair": label,
                    "x": count,
                    "batch": batch,
                    "variant": name,
                    "median_ms": ms,
                    "fused_gbps": fused_b / ms / 1e6,
                    "kernels": [f"{launch.name}{list(launch.grid)}" for launch in sets[0]],
                }
                rows.append(row)
                print(
                    f"hexdw bs{batch:<3} {label:34s} x{count} {name:18s} {ms * 1e3:8.1f} us "
                    f"{row['fused_gbps']:6.0f} GB/s {' '.join(row['kernels'])}",
                    flush=True,
                )
            del xs, mid, out, variants
            cupy.get_default_memory_pool().free_all_blocks()
    results["hexdw"] = rows


def hexdwpw4_blocks(net, batches, results) -> None:
    """hfuse v4: every distinct fused bottleneck block (expansion, depthwise, projection [+ residual]), v3's path (the
    hexdw3 pair with the backend's model shape + the projection hgemm) and the three unfused kernels vs the hexdwpw4
    block kernel with each compiled tile, on the same GPU-generated inputs (rotated). GB/s = the block's compulsory
    bytes (input + output + residual + weights once) / time."""
    rows = []
    v1 = CustomBackend(dtype="fp16", kernels="hfuse=v1")
    v3 = CustomBackend(dtype="fp16", kernels="hfuse=v3")
    v4 = CustomBackend(dtype="fp16", kernels="hfuse=v4")
    for be in (v1, v3, v4):
        be._ensure_device()
    blocks: dict = {}
    for op, nxt, pw in zip(net.fused, net.fused[1:], net.fused[2:]):
        if not (op.kind == nxt.kind == pw.kind == "conv" and nxt.input == op.index and pw.input == nxt.index):
            continue
        if op.residual is None and nxt.residual is None and CustomBackend._exdw_fusable(op.layer, nxt.layer):
            if pw.layer.is_pointwise and pw.residual in (None, op.input):
                key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride, pw.layer.out_channels, pw.residual)
                blocks.setdefault(key[:4] + (pw.residual is not None,), [op, nxt, pw, 0])[3] += 1
    for batch in batches:
        for ex, dw, pw, count in blocks.values():
            c, h, w = ex.layer.in_shape
            ce, co = ex.layer.out_channels, pw.layer.out_channels
            ho, wo = dw.layer.out_hw(h, w)
            has_res = pw.residual is not None
            in_b, out_b = 2 * batch * c * h * w, 2 * batch * co * ho * wo
            mid_b = 2 * batch * ce * (h * w + ho * wo)
            weights = ex.layer.weight.size + dw.layer.weight.size + pw.layer.weight.size
            block_b = in_b + out_b * (2 if has_res else 1) + 2 * weights
            copies = rotation_count(in_b + mid_b + out_b)
            with cupy.cuda.Device():
                xs = [cupy.random.standard_normal((batch, h, w, c), dtype=cupy.float32).astype(cupy.float16)
                      for _ in range(copies)]  # fmt: skip
                mid = cupy.empty((batch, h, w, ce), cupy.float16)
                mid2 = cupy.empty((batch, ho, wo, ce), cupy.float16)
                out = cupy.empty((batch, ho, wo, co), cupy.float16)
            cupy.cuda.Device().synchronize()
            exl, dwl, pwl = ex.layer, dw.layer, pw.layer

            def res(x, has_res=has_res):
                return x if has_res else None

            variants = {
                "unfused (3 kernels)": (
                    v1,
                    [
                        v1._h_conv_launches(x, exl, ex.act, None, mid)
                        + v1._h_conv_launches(mid, dwl, dw.act, None, mid2)
                        + v1._h_conv_launches(mid2, pwl, pw.act, res(x), out)
                        for x in xs
                    ],
                ),
                "v3 pair + gemm": (
                    v3,
                    [
                        [v3._h_exdw_launch(x, exl, ex.act, dwl, dw.act, mid2)]
                        + v3._h_conv_launches(mid2, pwl, pw.act, res(x), out)
                        for x in xs
                    ],
                ),
            }
            for t in v4._h_block_tiles(xs[0], exl, dwl, pwl, res(xs[0]), out):
                variants[f"hexdwpw4 t{t}"] = (
                    v4,
                    [[v4._h_block_launch(x, exl, ex.act, dwl, dw.act, pwl, pw.act, res(x), out, t)] for x in xs],
                )
            label = f"{ex.index}+{dw.index}+{pw.index} {c}->{ce}->{co} @{h}x{w} s{dwl.stride}"
            label += " +res" if has_res else ""
            for name, (be, sets) in variants.items():
                ms = time_sets(be, sets, batch)
                row = {
                    "block": label,
                    "x": count,
                    "batch": batch,
                    "variant": name,
                    "median_ms": ms,
                    "block_gbps": block_b / ms / 1e6,
                    "kernels": [f"{launch.name}{list(launch.grid)}" for launch in sets[0]],
                }
                rows.append(row)
                print(
                    f"block bs{batch:<3} {label:36s} x{count} {name:20s} {ms * 1e3:8.1f} us "
                    f"{row['block_gbps']:6.0f} GB/s {' '.join(row['kernels'])}",
                    flush=True,
                )
            del xs, mid, mid2, out, variants
            cupy.get_default_memory_pool().free_all_blocks()
    results["blocks"] = rows


def e2e(net, batches, results, specs=("",)) -> None:
    rows = []
    for batch in batches:
        x = random_input(net, batch, seed=batch)
        for spec, graph in [(sp, g) for sp in specs for g in ((True, False) if batch == 256 and not sp else (True,))]:
            be = CustomBackend(dtype="fp16", graph=graph, kernels=spec)
            t0 = time.perf_counter()
            be.prepare(net)
            be.plan(batch)
            t_prep = time.perf_counter() - t0
            be.run(x)
            dev = cuda_event_timing(
                lambda i, be=be, batch=batch: be.enqueue(batch), warmup=5, repeats=30, stream=be.stream
            )
            host = host_timing(lambda i, be=be, x=x: be.run(x), warmup=3, repeats=20)
            row = {
                "batch": batch,
                "kernels": spec or "default",
                "graph": graph,
                "device_ms": dev.median_ms,
                "device_p10_ms": dev.p10_ms,
                "device_p90_ms": dev.p90_ms,
                "host_ms": host.median_ms,
                "img_per_s": batch / (dev.median_ms / 1e3),
                "tflops": 2 * net.macs() * batch / dev.median_ms / 1e9,
                "prepare_plan_s": t_prep,
                "tuned": dict(be.tuned),
                "launches": len(be.plan(batch).launches),
            }
            rows.append(row)
            print(
                f"e2e fp16 bs{batch:<3} {spec or 'default':24s} graph={graph!s:5s} device {dev.median_ms:8.4f} ms  "
                f"host {host.median_ms:8.4f} ms  {row['img_per_s']:9.0f} img/s  {row['tflops']:6.1f} TFLOP/s  "
                f"launches {row['launches']}",
                flush=True,
            )
            be.close()
            cupy.get_default_memory_pool().free_all_blocks()
    results["e2e"] = rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--batches", default="1,64,256", help="per-layer batches")
    ap.add_argument("--e2e-batches", default="1,8,64,256")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: layers,e2e,hexdw,blocks,dw")
    ap.add_argument("--e2e-specs", default="", help="';'-separated kernel specs for e2e ('' = default)")
    ap.add_argument("--dw-batches", default="1,64,256", help="batches of the depthwise / stem version sweep")
    ap.add_argument("--hexdw-batches", default="1,64,256", help="batches of the hfuse v2 pair timing")
    ap.add_argument("--block-batches", default="1,64,256", help="batches of the hfuse v4 block timing")
    args = ap.parse_args()
    net = default_network()
    rng = np.random.default_rng(0)
    results: dict = {"gpu": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "dtype": "fp16"}
    skip = set(args.skip.split(","))
    if "e2e" not in skip:  # first: the headline figures survive a timeout in the per-layer sweep
        e2e(net, [int(b) for b in args.e2e_batches.split(",")], results, tuple(args.e2e_specs.split(";")))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if "hexdw" not in skip:
        hexdw_pairs(net, [int(x) for x in args.hexdw_batches.split(",")], results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if "blocks" not in skip:
        hexdwpw4_blocks(net, [int(x) for x in args.block_batches.split(",")], results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if "dw" not in skip:
        dw_sweep(net, [int(b) for b in args.dw_batches.split(",")], results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if "layers" not in skip:
        per_layer(net, [int(b) for b in args.batches.split(",")], rng, results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
