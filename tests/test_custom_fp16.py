"""The custom backend's fp16 tensor-core mode (kernels/half.cu) on a GPU, against NumPy float64.

Per layer: every distinct layer of MobileNetV2-1.0 (``Network.distinct_ops()``) at batch 1, 3 and 64,
every fp16 kernel version, plus the odd shapes of tests/test_custom_kernels.py. The input (and the
residual) is rounded to half first and the float64 reference takes the same rounded values, so the
error measured is the layer's own (weights rounded to half, fp32 accumulation, output rounded to
half); bound ``tolerance("fp16")`` (rel L2 < 1e-2). The stem is run as the network plan runs it
(fp32 NCHW input, hstem kernels) and on a half NHWC array (conv2d). Outputs poisoned with NaN.
At batch 64 images 0, 33 and 63 are compared (all 64 must be finite).

End to end: logits at batch 1, 8, 64, eager and CUDA graph, against NumPy float64 on the same fp32
input: rel L2 < tolerance("fp16", "e2e") and top-1 agreement >= TOP1_AGREEMENT["fp16"], every planned
buffer poisoned first. Measured errors are appended to $MBV2_FP16_ERRLOG when set (device runs).
"""

from __future__ import annotations

import functools
import os
import zlib

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls.numpy_ref import NumpyBackend
from mbv2.errors import InputError
from mbv2.model import default_network
from mbv2.network import random_input
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, rel_l2, tolerance, top1_agreement

pytestmark = pytest.mark.gpu

BATCHES = (1, 3, 64)
CHECK_IMAGES = (0, 33, 63)


def _log(line: str) -> None:
    path = os.environ.get("MBV2_FP16_ERRLOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@functools.lru_cache(maxsize=1)
def _net():
    return default_network()


@functools.cache
def backend_for(spec: str):
    from impls.custom import CustomBackend

    be = CustomBackend(dtype="fp16", kernels=spec)
    be._ensure_device()
    return be


def _h(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else a.astype(np.float16).astype(np.float32)


def _family(op) -> str:
    if op.kind == "conv":
        lay = op.layer
        return "hgemm" if lay.is_pointwise else ("hdepthwise" if lay.is_depthwise else "hstem")
    return {"pool": "hpool", "linear": "hlinear"}[op.kind]


@functools.lru_cache(maxsize=1)
def layer_case(key: tuple, batch: int):
    entry = next(e for e in _net().distinct_ops() if e["key"] == key)
    op = entry["op"]
    rng = np.random.default_rng(zlib.crc32(repr(("fp16", key, batch)).encode()))
    x = rng.standard_normal((batch, *op.layer.in_shape), dtype=np.float32)
    if op.kind == "linear":  # pooled ReLU6 features: non-negative, like the network's
        x = np.abs(x)
    res = None
    if op.kind == "conv" and op.residual is not None:
        res = _h(rng.standard_normal((batch, *op.layer.out_shape), dtype=np.float32))
    stem = op.kind == "conv" and _family(op) == "hstem"
    xr = x if stem else _h(x)  # the stem reads the fp32 input in the plan; the NHWC path rounds it
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    ref64 = NumpyBackend(dtype="fp64")
    xs = xr[idx].astype(np.float64)
    if op.kind == "conv":
        ref = ref64.conv2d(xs, op.layer, act=op.act, residual=None if res is None else res[idx].astype(np.float64))
    elif op.kind == "pool":
        ref = ref64.global_avg_pool(xs)
    else:
        ref = ref64.linear(xs, op.layer)
    ref_h = ref64.conv2d(_h(x)[idx].astype(np.float64), op.layer, act=op.act) if stem else None
    return op, xr, res, idx, ref, ref_h


def run_op(be, op, x, res, nchw_stem: bool = False):
    import cupy

    lay = op.layer
    with be.stream:
        if op.kind == "conv":
            nb, _, h, w = x.shape
            ho, wo = lay.out_hw(h, w)
            out = cupy.full((nb, ho, wo, lay.out_channels), np.nan, cupy.float16)
            if nchw_stem:
                y = be.conv2d_nchw_input(cupy.asarray(x), lay, act=op.act, out=out)
            else:
                rd = be.to_device(res) if res is not None else None
                y = be.conv2d(be.to_device(x), lay, act=op.act, residual=rd, out=out)
        elif op.kind == "pool":
            out = cupy.full((x.shape[0], x.shape[1]), np.nan, cupy.float16)
            y = be.global_avg_pool(be.to_device(x), out=out)
        else:
            out = cupy.full((x.shape[0], lay.out_features), np.nan, cupy.float32)
            y = be.linear(be.to_device(x), lay, out=out)
    assert y is out
    return be.to_host(y)


def _cases():
    cases = []
    for entry in _net().distinct_ops():
        op = entry["op"]
        fam = _family(op)
        specs = [f"{fam}={v}" for v in K.KERNEL_VERSIONS[fam]]
        if fam == "hlinear":  # above batch 8 the classifier is an hgemm (fp32 output)
            specs += [f"hlinear=v1,hgemm={v}" for v in K.KERNEL_VERSIONS["hgemm"]]
        paths = ["nchw", "nhwc"] if fam == "hstem" else ["nhwc"]
        label = f"{op.index}:{op.layer.describe(_net().layers)}{'+relu6' if op.act else ''}"
        label += f"{'+res' if op.residual is not None else ''}@{'x'.join(map(str, op.layer.in_shape[1:]))}"
        for batch in BATCHES:
            for spec in specs:
                for path in paths:
                    cases.append(pytest.param(entry["key"], batch, spec, path, id=f"{spec}-{path}-bs{batch}-{label}"))
    return cases


@pytest.mark.parametrize("key,batch,spec,path", _cases())
def test_fp16_distinct_layer_matches_float64_reference(key, batch, spec, path):
    op, x, res, idx, ref, ref_h = layer_case(key, batch)
    be = backend_for(spec)
    if path == "nhwc" and ref_h is not None:  # stem on a half NHWC array: its input is rounded
        y = run_op(be, op, _h(x), res)
        ref = ref_h
    else:
        y = run_op(be, op, x, res, nchw_stem=path == "nchw")
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    err = assert_close(y[idx], ref, "fp16", "layer", what=f"fp16 {spec} {path} op {op.index} bs{batch}")
    _log(f"layer op{op.index} {spec} {path} bs{batch} rel_l2 {err:.3e}")


def _odd_cases():
    from tests.test_custom_kernels import ODD_CONVS

    out = []
    for fam, shapes in ODD_CONVS.items():
        for i, s in enumerate(shapes):
            specs = ("", "hgemm=v1,hdepthwise=v1,hstem=v1", "hdepthwise=v2", "hdepthwise=v3,hstem=v4", "hdepthwise=v4")
            for spec in (*specs, "hgemm=v4"):
                out.append(pytest.param(s, spec, id=f"{fam}-odd{i}-{spec or 'default'}"))
    return out


@pytest.mark.parametrize("shape,spec", _odd_cases())
def test_fp16_odd_conv_matches_float64_reference(shape, spec, rng):
    import cupy

    from tests.test_custom_kernels import make_conv

    cin, cout, k, stride, pad, groups, h, w, batch, act, has_res = shape
    lay = make_conv(rng, cin, cout, k, stride, pad, groups, h, w)
    x = _h(rng.standard_normal((batch, cin, h, w), dtype=np.float32))
    res = _h(rng.standard_normal((batch, *lay.out_shape), dtype=np.float32)) if has_res else None
    be = backend_for(spec)
    ho, wo = lay.out_hw(h, w)
    with be.stream:
        out = cupy.full((batch, ho, wo, cout), np.nan, cupy.float16)
    rd = be.to_device(res) if res is not None else None
    y = be.to_host(be.conv2d(be.to_device(x), lay, act=act, residual=rd, out=out))
    ref = NumpyBackend(dtype="fp64").conv2d(
        x.astype(np.float64), lay, act=act, residual=None if res is None else res.astype(np.float64)
    )
    assert_close(y, ref, "fp16", "layer", what=f"fp16 {spec or 'default'} {lay.describe([])}")


# hdepthwise v3 with every (TW, TH) tile forced: partial strips along W and H, 1x1 and 1-wide maps,
# padding on every side, residual; (C, stride, H, W, batch, act, residual), C % 8 == 0 (else v1)
HDW3_V3_SHAPES = [
    (8, 1, 1, 1, 1, True, False),
    (16, 2, 1, 1, 3, True, True),
    (24, 1, 5, 7, 3, True, True),
    (40, 2, 10, 9, 3, True, True),
    (32, 1, 3, 1, 1, False, False),
    (96, 2, 7, 7, 1, True, False),
    (72, 1, 17, 19, 64, True, False),
    (64, 2, 13, 6, 64, False, True),
]


def _hdw3_v3_cases():
    return [
        pytest.param(
            shape,
            tile,
            ver,
            id=f"hdw3{ver}-w{tile[0]}h{tile[1]}-c{shape[0]}s{shape[1]}-{shape[2]}x{shape[3]}-bs{shape[4]}",
        )
        for ver in ("v3", "v4")  # v4: v3's tiles with half2 arithmetic
        for shape in HDW3_V3_SHAPES
        for tile in K.HDW3_V3_TILES[shape[1]]
    ]


@pytest.mark.parametrize("shape,tile,ver", _hdw3_v3_cases())
def test_fp16_hdw3_v3_every_tile_matches_float64_reference(shape, tile, ver, rng):
    import cupy

    from impls.custom import CustomBackend
    from tests.test_custom_kernels import make_conv

    c, stride, h, w, batch, act, has_res = shape
    lay = make_conv(rng, c, c, 3, stride, 1, c, h, w)
    x = _h(rng.standard_normal((batch, c, h, w), dtype=np.float32))
    res = _h(rng.standard_normal((batch, *lay.out_shape), dtype=np.float32)) if has_res else None
    be = backend_for(f"hdepthwise={ver},hstem=v4")
    assert isinstance(be, CustomBackend)
    ho, wo = lay.out_hw(h, w)
    be.hdw3_v3_force = tile
    try:
        with be.stream:
            out = cupy.full((batch, ho, wo, c), np.nan, cupy.float16)
        rd = be.to_device(res) if res is not None else None
        launches = be._h_conv_launches(be.to_device(x), lay, act, rd, out)
        assert [la.name for la in launches] == [K.hdw3_v3_kernel(stride, tile, ver)]
        be.launch_all(launches)
        y = be.to_host(out)
    finally:
        be.hdw3_v3_force = None
    ref = NumpyBackend(dtype="fp64").conv2d(
        x.astype(np.float64), lay, act=act, residual=None if res is None else res.astype(np.float64)
    )
    assert np.isfinite(y).all()
    err = assert_close(y, ref, "fp16", "layer", what=f"hdw3 {ver} tile {tile} {lay.describe([])}")
    _log(f"hdw3_{ver} tile {tile} c{c} s{stride} {h}x{w} bs{batch} rel_l2 {err:.3e}")


def test_fp16_input_checks():
    import cupy

    be = backend_for("")
    lay = _net().fused[1].layer
    with pytest.raises(InputError, match="float16"):
        be.conv2d(cupy.zeros((1, 112, 112, 32), cupy.float32), lay)
    with pytest.raises(InputError, match="host NumPy"):
        be.conv2d(np.zeros((1, 112, 112, 32), np.float16), lay)


# -- end to end ---------------------------------------------------------------------------------------------
@functools.cache
def f64_reference(batch: int):
    net = _net()
    x = random_input(net, batch, seed=2000 + batch)
    ref = NumpyBackend(dtype="fp64")
    ref.prepare(net)
    return x, ref.run(x)


@functools.cache
def e2e_backend(graph: bool, kernels: str = ""):
    import impls

    be = impls.create("custom", dtype="fp16", graph=graph, kernels=kernels or None)
    be.prepare(_net())
    return be


@pytest.mark.parametrize(
    "kernels",
    ["", "hgemm=v4", "hfuse=v1", "hfuse=v2", "hfuse=v3", "hfuse=v4", "hblock0=v1"],
    ids=["default", "hgemm_v4", "hfuse_v1", "hfuse_v2", "hfuse_v3", "hfuse_v4", "hblock0_v1"],
)
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 8, 64])
def test_fp16_e2e_matches_float64_reference(batch, graph, kernels):
    x, ref = f64_reference(batch)
    be = e2e_backend(graph, kernels)
    be.poison(batch)
    y = be.run(x)
    assert y.shape == ref.shape and y.dtype == np.float32
    err = rel_l2(y, ref)
    agree = top1_agreement(y, ref)
    tol = tolerance("fp16", "e2e")
    _log(f"e2e {kernels or 'default'} bs{batch} graph={graph} rel_l2 {err:.3e} top1 {agree:.3f} (tol {tol:.0e})")
    assert_close(y, ref, "fp16", "e2e", what=f"custom fp16 graph={graph} bs{batch}")
    assert agree >= TOP1_AGREEMENT["fp16"], f"top-1 agreement {agree:.3f}"
    np.testing.assert_array_equal(be.run(x), y)  # the same plan / graph gives the same logits
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
