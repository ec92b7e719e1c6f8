"""The custom backend's kernels, one layer at a time, against NumPy float64.

Every kernel version of every op family runs every distinct layer of MobileNetV2-1.0 (from
``Network.distinct_ops()``) at batch 1, 3 and 64, plus odd shapes (channels not multiples of 4 or
32, 1x1 spatial, non-square maps). Outputs are poisoned with NaN before each run; the error bound
is ``tolerance("fp32")`` (rel L2 < 1e-5). At batch 64 all 64 images are computed and must be finite;
images 0, 33 and 63 are compared with the float64 reference (the reference of all 64 would take
gigabytes of float64 im2col for the 112x112 layers).

Sanitizer runs (scripts/custom_sanitize.sh) set MBV2_NO_POOL=1 so that every CuPy array is its own
cudaMalloc and memcheck sees exact bounds.
"""

from __future__ import annotations

import functools
import math
import os
import zlib

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls.custom import (
    KERNEL_VERSIONS,
    choose_gemm_tile,
    plan_buffers,
    slot_sizes,
    split_k,
)
from impls.numpy_ref import NumpyBackend
from mbv2.errors import InputError
from mbv2.layers import Conv2d, Linear
from mbv2.model import default_network
from mbv2.tolerances import assert_close, tolerance

if os.environ.get("MBV2_NO_POOL") == "1":  # exact allocation bounds for compute-sanitizer
    try:
        import cupy

        cupy.cuda.set_allocator(None)
    except Exception:  # no CuPy: the GPU tests skip anyway
        pass

BATCHES = (1, 3, 64)
CHECK_IMAGES = (0, 33, 63)  # batch-64 images compared with the reference


# -- CPU: host-side logic -------------------------------------------------------------------------------
def test_parse_versions_defaults_and_overrides():
    assert K.parse_versions("") == K.DEFAULT_VERSIONS
    v = K.parse_versions("gemm=v2, pool=v1")
    assert v["gemm"] == "v2" and v["pool"] == "v1" and v["depthwise"] == K.DEFAULT_VERSIONS["depthwise"]
    assert K.parse_versions({"add": "v1"})["add"] == "v1"


@pytest.mark.parametrize("spec", ["gemm=v99", "nosuch=v1", "gemm"])
def test_parse_versions_rejects_unknown(spec):
    with pytest.raises(InputError):
        K.parse_versions(spec)


def test_default_versions_exist():
    for fam, ver in K.DEFAULT_VERSIONS.items():
        assert ver in KERNEL_VERSIONS[fam]
    assert set(K.DEFAULT_VERSIONS) == set(KERNEL_VERSIONS)


def test_gemm_tile_choice_small_problem_prefers_small_tiles():
    # batch 1, 7x7: M = 49 rows; a 128-row tile would leave almost every SM idle
    assert choose_gemm_tile(49, 960, 160, 1, K.GEMM_TILES_VEC, 132)[0] <= 64
    # batch 64 at 56x56 with 144 outputs: enough blocks for big tiles
    assert choose_gemm_tile(64 * 56 * 56, 144, 24, 1, K.GEMM_TILES_VEC, 132)[0] == 128


def test_split_k_only_when_tiles_leave_sms_idle():
    assert split_k(200, 960, 132) == 1  # enough tiles
    assert split_k(10, 96, 132) == 1  # K too small to split
    s = split_k(10, 960, 132)
    assert 2 <= s <= 32
    chunk = math.ceil(math.ceil(960 / s) / 8) * 8  # the kernel's chunk
    assert (s - 1) * chunk < 960  # no empty split


def test_plan_buffers_never_aliases_live_tensors():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = 30
        sizes = [int(s) for s in rng.integers(1, 100, n)]
        last = [min(n - 1, i + int(rng.integers(1, 5))) for i in range(n)]
        slot = plan_buffers(sizes, last)
        cap = slot_sizes(slot, sizes)
        for i in range(n):
            assert cap[slot[i]] >= sizes[i]
            for j in range(i + 1, n):  # j is written while i is still needed -> different slots
                if j <= last[i]:
                    assert slot[i] != slot[j], (i, j)


# -- GPU helpers ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _net():
    return default_network()


@functools.cache
def backend_for(spec: str):
    from impls.custom import CustomBackend

    be = CustomBackend(kernels=spec)
    be._ensure_device()
    return be


_REF64 = NumpyBackend(dtype="fp64")  # for the network's own layers (alive all session)


def ref64() -> NumpyBackend:
    """A fresh float64 reference for layers made in a test: NumpyBackend caches weights by id(layer),
    and a freed layer's id can be reused by the next test's layer."""
    return NumpyBackend(dtype="fp64")


def family_of(op) -> str:
    if op.kind == "conv":
        lay = op.layer
        return "gemm" if lay.is_pointwise else ("depthwise" if lay.is_depthwise else "stem")
    return {"pool": "pool", "linear": "linear", "add": "add"}[op.kind]


def _seeded(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


@functools.lru_cache(maxsize=2)
def layer_case(key: tuple, batch: int):
    """Seeded fresh inputs for one distinct layer at one batch and the float64 reference."""
    entry = next(e for e in _net().distinct_ops() if e["key"] == key)
    op = entry["op"]
    rng = _seeded(key, batch)
    x = rng.standard_normal((batch, *op.layer.in_shape), dtype=np.float32)
    res = None
    if op.kind == "conv" and op.residual is not None:
        res = rng.standard_normal((batch, *op.layer.out_shape), dtype=np.float32)
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    xs = x[idx].astype(np.float64)
    if op.kind == "conv":
        ref = _REF64.conv2d(xs, op.layer, act=op.act, residual=None if res is None else res[idx].astype(np.float64))
    elif op.kind == "pool":
        ref = _REF64.global_avg_pool(xs)
    elif op.kind == "linear":
        ref = _REF64.linear(xs, op.layer)
    else:  # pragma: no cover - MobileNetV2's adds are all fused
        raise AssertionError(op.kind)
    return op, x, res, idx, ref


def run_op(be, op, x, res):
    """Run one fused op on the backend with a NaN-poisoned output buffer; host NCHW result."""
    import cupy

    xd = be.to_device(x)
    rd = be.to_device(res) if res is not None else None
    lay = op.layer
    with be.stream:
        if op.kind == "conv":
            nb, h, w, _ = xd.shape
            ho, wo = lay.out_hw(h, w)
            out = cupy.full((nb, ho, wo, lay.out_channels), np.nan, cupy.float32)
            y = be.conv2d(xd, lay, act=op.act, residual=rd, out=out)
        elif op.kind == "pool":
            out = cupy.full((xd.shape[0], xd.shape[3]), np.nan, cupy.float32)
            y = be.global_avg_pool(xd, out=out)
        else:
            out = cupy.full((xd.shape[0], lay.out_features), np.nan, cupy.float32)
            y = be.linear(xd, lay, out=out)
    assert y is out
    return be.to_host(y)


def _distinct_cases():
    cases = []
    for entry in _net().distinct_ops():
        op = entry["op"]
        fam = family_of(op)
        for batch in BATCHES:
            for ver in KERNEL_VERSIONS[fam]:
                label = f"{op.index}:{op.layer.describe(_net().layers)}{'+relu6' if op.act else ''}"
                label += f"{'+res' if op.residual is not None else ''}@{'x'.join(map(str, op.layer.in_shape[1:]))}"
                cases.append(pytest.param(entry["key"], batch, fam, ver, id=f"{fam}-{ver}-bs{batch}-{label}"))
    return cases


@pytest.mark.gpu
@pytest.mark.parametrize("key,batch,family,version", _distinct_cases())
def test_distinct_layer_matches_float64_reference(key, batch, family, version):
    op, x, res, idx, ref = layer_case(key, batch)
    be = backend_for(f"{family}={version}")
    y = run_op(be, op, x, res)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"{family} {version} op {op.index} bs{batch}")


# -- fuse: depthwise 3x3 + ReLU6 -> pointwise (+ residual) as one op -----------------------------------------
def _dw_pw_pairs():
    """Distinct (depthwise op, pointwise op) pairs of the network that fuse v2 fuses."""
    net = _net()
    seen, out = set(), []
    for op, nxt in zip(net.fused, net.fused[1:]):
        if (
            op.kind == "conv"
            and nxt.kind == "conv"
            and op.layer.is_depthwise
            and nxt.layer.is_pointwise
            and nxt.input == op.index
            and op.residual is None
        ):
            key = (op.layer.in_shape, op.layer.stride, nxt.layer.out_channels, nxt.residual is not None)
            if key not in seen:
                seen.add(key)
                out.append((op.index, nxt.index))
    return out


def _fuse_cases():
    cases = []
    for i, j in _dw_pw_pairs():
        dw, pw = _net().fused[i], _net().fused[j]
        for batch in BATCHES:
            for ver in KERNEL_VERSIONS["fuse"]:
                c, h, w = dw.layer.in_shape
                tail = "+res" if pw.residual is not None else ""
                label = f"{i}+{j}:dw{c}s{dw.layer.stride}@{h}x{w}->{pw.layer.out_channels}{tail}"
                cases.append(pytest.param(i, j, batch, ver, id=f"fuse-{ver}-bs{batch}-{label}"))
    return cases


def _run_dw_pw(be, dw, pw, x, res, act_dw=True, act_pw=False):
    import cupy

    xd = be.to_device(x)
    rd = be.to_device(res) if res is not None else None
    nb, h, w, _ = xd.shape
    ho, wo = dw.out_hw(h, w)
    with be.stream:
        out = cupy.full((nb, ho, wo, pw.out_channels), np.nan, cupy.float32)
    y = be.dw_pointwise(xd, dw, pw, dw_act=act_dw, act=act_pw, residual=rd, out=out)
    assert y is out
    return be.to_host(y)


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,batch,version", _fuse_cases())
def test_fused_dw_pointwise_matches_float64_reference(i, j, batch, version):
    net = _net()
    dw, pw = net.fused[i], net.fused[j]
    rng = _seeded("fuse", i, j, batch)
    x = rng.standard_normal((batch, *dw.layer.in_shape), dtype=np.float32)
    res = rng.standard_normal((batch, *pw.layer.out_shape), dtype=np.float32) if pw.residual is not None else None
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    mid = _REF64.conv2d(x[idx].astype(np.float64), dw.layer, act=dw.act)
    ref = _REF64.conv2d(mid, pw.layer, act=pw.act, residual=None if res is None else res[idx].astype(np.float64))
    be = backend_for(f"fuse={version}")
    y = _run_dw_pw(be, dw.layer, pw.layer, x, res, dw.act, pw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"fuse {version} ops {i}+{j} bs{batch}")
    if version == "v2":
        assert not any("fuse" in f for f in be._fallbacks), be._fallbacks


# (c, cout, stride, h, w, batch, residual)
ODD_FUSE = [
    (36, 20, 1, 5, 7, 3, True),  # non-square, M not a tile multiple, residual
    (40, 8, 2, 9, 10, 3, False),  # stride 2, odd input size
    (36, 12, 2, 1, 1, 1, False),  # 1x1 map: every tap but the centre is padding
    (260, 20, 1, 2, 3, 1, True),  # split-K (batch 1, K >= 128), residual
    (64, 40, 1, 9, 9, 64, False),  # batch 64
    (6, 8, 1, 4, 4, 2, True),  # C % 4 != 0: the two layers' own kernels
]


@pytest.mark.gpu
@pytest.mark.parametrize("version", KERNEL_VERSIONS["fuse"])
@pytest.mark.parametrize("shape", ODD_FUSE, ids=[f"c{s[0]}-{s[1]}s{s[2]}-{s[3]}x{s[4]}-bs{s[5]}" for s in ODD_FUSE])
def test_odd_fused_dw_pointwise_matches_float64_reference(version, shape, rng):
    c, cout, s, h, w, batch, has_res = shape
    dw = make_conv(rng, c, c, 3, s, 1, c, h, w)
    ho, wo = dw.out_hw(h, w)
    pw = make_conv(rng, c, cout, 1, 1, 0, 1, ho, wo)
    x = rng.standard_normal((batch, c, h, w), dtype=np.float32)
    res = rng.standard_normal((batch, cout, ho, wo), dtype=np.float32) if has_res else None
    r64 = ref64()
    mid = r64.conv2d(x.astype(np.float64), dw, act=True)
    ref = r64.conv2d(mid, pw, act=False, residual=None if res is None else res.astype(np.float64))
    y = _run_dw_pw(backend_for(f"fuse={version}"), dw, pw, x, res)
    assert_close(y, ref, "fp32", "layer", what=f"fuse {version} {shape}")


# -- odd shapes ----------------------------------------------------------------------------------------------
def make_conv(rng, cin, cout, k, stride, pad, groups, h, w) -> Conv2d:
    lay = Conv2d(
        index=0,
        name="odd",
        in_channels=cin,
        out_channels=cout,
        kernel=k,
        stride=stride,
        pad=pad,
        groups=groups,
        weight=(rng.standard_normal((cout, cin // groups, k, k)) * 0.3).astype(np.float32),
        bias=rng.standard_normal(cout).astype(np.float32),
    )
    ho, wo = lay.out_hw(h, w)
    lay.in_shape, lay.out_shape = (cin, h, w), (cout, ho, wo)
    return lay


def run_twice_poisoned(be, call, shape) -> tuple[list[np.ndarray], list[str]]:
    """``call(out)`` twice, each on a fresh NaN-poisoned float32 ``out`` of ``shape``: the host results and the names
    of the kernels the backend launched (for the bit-identical and which-kernel checks)."""
    import cupy

    names: list[str] = []
    launch_all = be.launch_all
    be.launch_all = lambda launches: (names.extend(la.name for la in launches), launch_all(launches))[-1]
    outs = []
    for _ in range(2):
        with be.stream:
            out = cupy.full(shape, np.nan, cupy.float32)
        y = call(out)
        assert y is out
        outs.append(be.to_host(y))
    return outs, names


def make_linear(rng, fin, fout) -> Linear:
    lay = Linear(
        index=0,
        name="fc",
        in_features=fin,
        out_features=fout,
        weight=(rng.standard_normal((fout, fin)) * 0.1).astype(np.float32),
        bias=rng.standard_normal(fout).astype(np.float32),
    )
    lay.in_shape, lay.out_shape = (fin,), (fout,)
    return lay


# (cin, cout, k, stride, pad, groups, h, w, batch, act, residual)
ODD_CONVS = {
    "gemm": [
        (5, 7, 1, 1, 0, 1, 3, 3, 3, True, False),  # nothing a multiple of 4
        (13, 33, 1, 1, 0, 1, 1, 1, 1, False, True),  # 1x1 spatial, batch 1, residual
        (36, 20, 1, 1, 0, 1, 5, 7, 3, True, True),  # multiples of 4 but not 32; act then residual
        (64, 40, 1, 1, 0, 1, 9, 9, 64, False, False),  # batch 64, M not a multiple of any tile
        (3, 200, 1, 1, 0, 1, 2, 3, 3, True, False),  # K smaller than one k-step
        (260, 20, 1, 1, 0, 1, 2, 3, 1, True, True),  # v5 split-K (M = 6, K = 260), act + residual
        (301, 7, 1, 1, 0, 1, 1, 1, 1, False, True),  # v5 split-K on the scalar path (K, N not % 4)
        (16, 12, 1, 1, 0, 1, 3, 5, 3, True, True),  # v6 streaming K = 16, act + residual
        (24, 6, 1, 1, 0, 1, 1, 1, 1, True, False),  # v6 streaming K = 24, 1x1 spatial
        (32, 2, 1, 1, 0, 1, 7, 9, 64, False, True),  # v6 streaming K = 32, one column group, batch 64
    ],
    "depthwise": [
        (5, 5, 3, 1, 1, 5, 7, 7, 3, True, False),  # C % 4 != 0
        (5, 5, 3, 2, 1, 5, 7, 6, 1, True, False),
        (36, 36, 3, 1, 1, 36, 1, 1, 3, False, False),  # 1x1 spatial
        (36, 36, 3, 2, 1, 36, 1, 1, 1, True, False),
        (40, 40, 3, 2, 1, 40, 10, 9, 3, True, True),  # non-square, residual
        (72, 72, 3, 1, 1, 72, 17, 19, 64, True, False),  # batch 64, spans several 8x8 tiles
    ],
    "stem": [
        (3, 10, 3, 2, 1, 1, 9, 11, 3, True, False),  # Cout % 4 != 0
        (5, 7, 3, 1, 1, 1, 6, 5, 1, False, True),  # K = 45 -> padded to 48
        (3, 32, 3, 2, 1, 1, 1, 1, 64, True, False),  # 1x1 input
    ],
}


def _odd_cases():
    out = []
    for fam, shapes in ODD_CONVS.items():
        for i, s in enumerate(shapes):
            for ver in KERNEL_VERSIONS[fam]:
                out.append(
                    pytest.param(
                        fam, ver, s, id=f"{fam}-{ver}-odd{i}-c{s[0]}x{s[1]}k{s[2]}s{s[3]}-{s[6]}x{s[7]}-bs{s[8]}"
                    )
                )
    return out


@pytest.mark.gpu
@pytest.mark.parametrize("family,version,shape", _odd_cases())
def test_odd_conv_matches_float64_reference(family, version, shape, rng):
    import cupy

    cin, cout, k, stride, pad, groups, h, w, batch, act, has_res = shape
    lay = make_conv(rng, cin, cout, k, stride, pad, groups, h, w)
    x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
    res = rng.standard_normal((batch, *lay.out_shape), dtype=np.float32) if has_res else None
    ref = ref64().conv2d(x.astype(np.float64), lay, act=act, residual=None if res is None else res.astype(np.float64))
    be = backend_for(f"{family}={version}")
    xd = be.to_device(x)
    rd = be.to_device(res) if has_res else None
    with be.stream:
        out = cupy.full((batch, lay.out_shape[1], lay.out_shape[2], cout), np.nan, cupy.float32)
    y = be.to_host(be.conv2d(xd, lay, act=act, residual=rd, out=out))
    assert_close(y, ref, "fp32", "layer", what=f"{family} {version} {shape}")


# -- gemm v8: every tile shape pinned (the autotuner alone would test only the tiles that win) -----------------
# odd shapes the v8 tiles take (K % 4 == 0, N % 4 == 0): k-tails, N not a multiple of any BN, split-K at batch 1
V8_ODD = [
    (36, 20, 5, 7, 3, True, True),
    (64, 40, 9, 9, 64, False, False),
    (100, 164, 7, 5, 3, True, True),  # K not a multiple of BK = 16, N of 32; act then residual
    (260, 20, 2, 3, 1, True, True),  # split-K (M = 6, K = 260): 7 splits of 48, the last one empty
    (960, 172, 3, 3, 1, False, True),  # split-K into 30 splits, 2 column tiles of x160, residual
]


@functools.cache
def v8_backend():
    from impls.custom import CustomBackend

    be = CustomBackend(kernels="gemm=v11")  # v11 = v10 + 64-row k-sliced tiles: every GEMM_V8(K)_KERNEL build
    be._ensure_device()
    return be


def _run_v8_tile(tile, lay, x, act, res):
    """One pointwise conv through gemm v8 with its tile pinned, NaN-poisoned output; host NCHW result."""
    import cupy

    be = v8_backend()
    xd = be.to_device(x)
    rd = be.to_device(res) if res is not None else None
    nb, h, w, _ = xd.shape
    with be.stream:
        out = cupy.full((nb, h, w, lay.out_channels), np.nan, cupy.float32)
    be._layer_params(lay)
    be.force_tile = tile
    try:
        launches = be._conv_launches(xd, lay, act, rd, out)
    finally:
        be.force_tile = None
    assert launches[0].name == K.gemm_tile_kernel("v8", tile, False), [la.name for la in launches]
    be.launch_all(launches)
    return be.to_host(out)


def _v8_layer_cases():
    cases = []
    for entry in _net().distinct_ops():
        op = entry["op"]
        if family_of(op) != "gemm":
            continue
        for batch in BATCHES:
            for t in K.GEMM_TILES_V11:  # innermost: layer_case's cache holds the (layer, batch) input
                tid = K.gemm_tile_kernel("v8", t, False).removeprefix("gemm_v8_")
                label = f"{op.index}:{op.layer.in_channels}->{op.layer.out_channels}@{op.layer.in_shape[1]}"
                cases.append(pytest.param(entry["key"], batch, t, id=f"v8-{tid}-bs{batch}-{label}"))
    return cases


@pytest.mark.gpu
@pytest.mark.parametrize("key,batch,tile", _v8_layer_cases())
def test_gemm_v8_tile_matches_float64_reference(key, batch, tile):
    op, x, res, idx, ref = layer_case(key, batch)
    y = _run_v8_tile(tile, op.layer, x, op.act, res)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"gemm v8 {tile} op {op.index} bs{batch}")


@pytest.mark.gpu
@pytest.mark.parametrize("tile", K.GEMM_TILES_V11, ids=lambda t: K.gemm_tile_kernel("v8", t, False)[8:])
@pytest.mark.parametrize("shape", V8_ODD, ids=[f"c{s[0]}x{s[1]}-{s[2]}x{s[3]}-bs{s[4]}" for s in V8_ODD])
def test_gemm_v8_tile_odd_shapes_match_float64_reference(tile, shape, rng):
    cin, cout, h, w, batch, act, has_res = shape
    lay = make_conv(rng, cin, cout, 1, 1, 0, 1, h, w)
    x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
    res = rng.standard_normal((batch, *lay.out_shape), dtype=np.float32) if has_res else None
    ref = ref64().conv2d(x.astype(np.float64), lay, act=act, residual=None if res is None else res.astype(np.float64))
    y = _run_v8_tile(tile, lay, x, act, res)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y, ref, "fp32", "layer", what=f"gemm v8 {tile} {shape}")


@pytest.mark.gpu
@pytest.mark.parametrize("version", KERNEL_VERSIONS["pool"])
@pytest.mark.parametrize("c,h,w,batch", [(5, 1, 1, 3), (37, 3, 3, 1), (1280, 7, 7, 64), (300, 15, 13, 3)])
def test_odd_pool_matches_float64_reference(version, c, h, w, batch, rng):
    import cupy

    x = rng.standard_normal((batch, c, h, w), dtype=np.float32)
    be = backend_for(f"pool={version}")
    xd = be.to_device(x)
    with be.stream:
        out = cupy.full((batch, c), np.nan, cupy.float32)
    y = be.to_host(be.global_avg_pool(xd, out=out))
    assert_close(y, x.astype(np.float64).mean(axis=(2, 3)), "fp32", "layer", what=f"pool {version}")


# (CIN, COUT, H, W, batch, ReLU6): the network's head (7x7, 320 -> 1280) at batch 1 / 3 / 8; 64 and 1 pixels; K not a
# multiple of 32 (uneven warp slices, idle warps at K = 4); past pwpool's limits (81 pixels, CIN % 4, COUT % 8):
# the conv + pool kernels
PWPOOL_CASES = [
    (320, 1280, 7, 7, 1, True),
    (320, 1280, 7, 7, 3, True),
    (320, 1280, 7, 7, 8, True),
    (36, 24, 8, 8, 2, False),
    (4, 8, 1, 1, 1, True),
    (324, 16, 5, 5, 1, True),
    (40, 16, 9, 9, 1, True),
    (30, 16, 3, 3, 1, True),
    (32, 12, 3, 3, 1, True),
    (36, 64, 8, 8, 2, False),
    (4, 128, 2, 3, 3, True),
]


@pytest.mark.gpu
@pytest.mark.parametrize("fuse,force", [("v8", None), ("v9", None), ("v9", "pwpool")])
@pytest.mark.parametrize("case", PWPOOL_CASES, ids=[f"c{c[0]}-{c[1]}-{c[2]}x{c[3]}-bs{c[4]}" for c in PWPOOL_CASES])
def test_pointwise_pool_matches_float64_reference(fuse, force, case, rng):
    """fuse v9's head kernels (the pointwise conv + ReLU6 + global average pool as one kernel: pwpool_c8 where
    COUT % 64 == 0, else or pinned pwpool) against NumPy float64 on a NaN-poisoned output; where neither applies, the
    two kernels and a recorded fallback; runs bit-identical."""

    from impls.custom import CustomBackend

    cin, cout, h, w, batch, act = case
    lay = make_conv(rng, cin, cout, 1, 1, 0, 1, h, w)
    x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
    be = CustomBackend(kernels=f"fuse={fuse}")
    be.force_pwpool = force
    xd = be.to_device(x)
    outs, names = run_twice_poisoned(be, lambda out: be.pointwise_pool(xd, lay, act=act, out=out), (batch, cout))
    ref = ref64().conv2d(x.astype(np.float64), lay, act=act).mean(axis=(2, 3))
    assert_close(outs[0], ref, "fp32", "layer", what=f"pointwise_pool fuse {fuse} {case}")
    assert np.array_equal(outs[0], outs[1]), "two runs differ"
    applies = fuse == "v9" and h * w <= K.PWPOOL_MAX_HW and cin % 4 == 0 and cout % K.PWPOOL_CO == 0
    kernel = force or ("pwpool_c8" if cout % 64 == 0 else "pwpool")
    assert names == [kernel] * 2 if applies else (kernel not in names and "pool_v2" in names), names
    assert any("fuse v9" in f for f in be.info()["fallbacks"]) == (fuse == "v9" and not applies)


# fuse v54's pwpool_c10 (COUT % 80 == 0): the head at 224 and 160; 64 pixels with K 36 (ranks 5 - 7 own no k);
# K 4 (rank 0 alone); K 324 (KW 44); 1 pixel; COUT 320 (where pwpool_c8 applies too)
PWPOOL_C10_CASES = [
    (320, 1280, 7, 7, True),
    (320, 1280, 5, 5, True),
    (36, 80, 8, 8, False),
    (4, 160, 1, 1, True),
    (324, 160, 3, 3, True),
    (40, 320, 3, 3, True),
]


@pytest.mark.gpu
@pytest.mark.parametrize("case", PWPOOL_C10_CASES, ids=[f"c{c[0]}-{c[1]}-{c[2]}x{c[3]}" for c in PWPOOL_C10_CASES])
def test_pointwise_pool_c10_matches_float64_and_pwpool_c8(case, rng):
    """fuse v54's pwpool_c10 at batch 1 against NumPy float64 on a NaN-poisoned output, runs bit-identical; where
    COUT % 64 == 0 too, bit-identical to v51's pwpool_c8 (the same sums in the same order per channel)."""
    from impls.custom import CustomBackend

    cin, cout, h, w, act = case
    lay = make_conv(rng, cin, cout, 1, 1, 0, 1, h, w)
    x = rng.standard_normal((1, cin, h, w), dtype=np.float32)
    be = CustomBackend(kernels="fuse=v54")
    xd = be.to_device(x)
    outs, names = run_twice_poisoned(be, lambda out: be.pointwise_pool(xd, lay, act=act, out=out), (1, cout))
    ref = ref64().conv2d(x.astype(np.float64), lay, act=act).mean(axis=(2, 3))
    assert_close(outs[0], ref, "fp32", "layer", what=f"pointwise_pool fuse v54 {case}")
    assert np.array_equal(outs[0], outs[1]), "two runs differ"
    assert names == ["pwpool_c10"] * 2 and not be.info()["fallbacks"], (names, be.info()["fallbacks"])
    if cout % 64 == 0:
        c8 = CustomBackend(kernels="fuse=v51")
        xd8 = c8.to_device(x)
        got, names8 = run_twice_poisoned(c8, lambda out: c8.pointwise_pool(xd8, lay, act=act, out=out), (1, cout))
        assert names8 == ["pwpool_c8"] * 2 and np.array_equal(got[0].view(np.uint32), outs[0].view(np.uint32))


@pytest.mark.gpu
@pytest.mark.parametrize("gemm", KERNEL_VERSIONS["gemm"])
@pytest.mark.parametrize("version", KERNEL_VERSIONS["linear"])
@pytest.mark.parametrize(
    "fin,fout,batch",
    [(13, 7, 1), (13, 7, 3), (1280, 1000, 8), (64, 30, 64), (6, 1001, 9), (2052, 33, 2), (1280, 1000, 64), (36, 8, 9)]
    + [(1280, 1000, 1), (36, 8, 1)],  # batch 1, IN % 4 == 0: linear v5's GEMV by programmatic dependent launch
)
def test_odd_linear_matches_float64_reference(version, gemm, fin, fout, batch, rng):
    import cupy

    lay = make_linear(rng, fin, fout)
    x = rng.standard_normal((batch, fin), dtype=np.float32)
    be = backend_for(f"linear={version},gemm={gemm}")
    xd = be.to_device(x)
    with be.stream:
        out = cupy.full((batch, fout), np.nan, cupy.float32)
    y = be.to_host(be.linear(xd, lay, out=out))
    assert_close(y, ref64().linear(x.astype(np.float64), lay), "fp32", "layer", what=f"linear {version}")


LINEAR_C8_CASES = [(1280, 1000, 9), (1280, 1000, 64), (1280, 1000, 200), (36, 8, 9), (2052, 40, 130), (4, 8, 65)]


@pytest.mark.gpu
@pytest.mark.parametrize("fin,fout,batch", LINEAR_C8_CASES, ids=[f"{a}-{b}-bs{c}" for a, b, c in LINEAR_C8_CASES])
def test_linear_c8_matches_float64_reference(fin, fout, batch, rng):
    """linear v4's cluster kernel (linear_c8: clusters of 8 split K; partial row / column tiles, k slices past IN)
    against NumPy float64 on a NaN-poisoned output, one launch, runs bit-identical."""

    from impls.custom import CustomBackend

    lay = make_linear(rng, fin, fout)
    x = rng.standard_normal((batch, fin), dtype=np.float32)
    be = CustomBackend(kernels="linear=v4")
    xd = be.to_device(x)
    outs, names = run_twice_poisoned(be, lambda out: be.linear(xd, lay, out=out), (batch, fout))
    assert names == ["linear_c8"] * 2, names
    assert_close(outs[0], ref64().linear(x.astype(np.float64), lay), "fp32", "layer", what=f"linear_c8 {fin}->{fout}")
    assert np.array_equal(outs[0], outs[1]), "two runs differ"


@pytest.mark.gpu
@pytest.mark.parametrize("version", KERNEL_VERSIONS["add"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (3, 4099), (3, 5, 7, 9), (64, 56, 56, 24)])
def test_add_matches_float64_reference(version, shape, rng):
    import cupy

    a = rng.standard_normal(shape, dtype=np.float32)
    b = rng.standard_normal(shape, dtype=np.float32)
    be = backend_for(f"add={version}")
    ad, bd = be.to_device(a), be.to_device(b)
    with be.stream:
        out = cupy.full(ad.shape, np.nan, cupy.float32)
    y = be.to_host(be.add(ad, bd, out=out))
    assert_close(y, a.astype(np.float64) + b.astype(np.float64), "fp32", "layer", what=f"add {version}")


@pytest.mark.gpu
def test_add_v2_unaligned_view_uses_scalar_path(rng):
    import cupy

    be = backend_for("add=v2")
    a = rng.standard_normal(1001, dtype=np.float32)
    b = rng.standard_normal(1001, dtype=np.float32)
    with be.stream:
        ad = cupy.asarray(a)[1:]  # 4-byte offset: not 16-byte aligned
        bd = cupy.asarray(b)[1:]
    y = be.add(ad, bd).get()
    be.synchronize()
    assert_close(y, a[1:].astype(np.float64) + b[1:], "fp32", "layer")


# -- bad input -------------------------------------------------------------------------------------------
@pytest.fixture
def pw_layer(rng):
    return make_conv(rng, 8, 16, 1, 1, 0, 1, 4, 4)


@pytest.mark.gpu
def test_conv_refuses_host_numpy_array(pw_layer):
    be = backend_for("")
    with pytest.raises(InputError, match="host NumPy"):
        be.conv2d(np.zeros((1, 4, 4, 8), np.float32), pw_layer)


@pytest.mark.gpu
def test_conv_refuses_wrong_channels_dtype_rank_and_strides(pw_layer):
    import cupy

    be = backend_for("")
    with pytest.raises(InputError, match="channels"):
        be.conv2d(cupy.zeros((1, 4, 4, 7), cupy.float32), pw_layer)
    with pytest.raises(InputError, match="float32"):
        be.conv2d(cupy.zeros((1, 4, 4, 8), cupy.float64), pw_layer)
    with pytest.raises(InputError, match="rank"):
        be.conv2d(cupy.zeros((4, 4, 8), cupy.float32), pw_layer)
    with pytest.raises(InputError, match="contiguous"):
        be.conv2d(cupy.zeros((1, 8, 4, 4), cupy.float32).transpose(0, 2, 3, 1), pw_layer)


@pytest.mark.gpu
def test_conv_refuses_bad_residual_and_out(pw_layer):
    import cupy

    be = backend_for("")
    x = cupy.zeros((2, 4, 4, 8), cupy.float32)
    with pytest.raises(InputError, match="residual"):
        be.conv2d(x, pw_layer, residual=cupy.zeros((2, 4, 4, 8), cupy.float32))
    with pytest.raises(InputError, match="residual"):
        be.conv2d(x, pw_layer, residual=np.zeros((2, 4, 4, 16), np.float32))
    with pytest.raises(InputError, match="out"):
        be.conv2d(x, pw_layer, out=cupy.zeros((2, 4, 4, 15), cupy.float32))


@pytest.mark.gpu
def test_pool_linear_add_refuse_bad_input(rng):
    import cupy

    be = backend_for("")
    lay = Linear(
        index=0,
        name="fc",
        in_features=8,
        out_features=3,
        weight=np.zeros((3, 8), np.float32),
        bias=np.zeros(3, np.float32),
    )
    with pytest.raises(InputError, match="rank"):
        be.global_avg_pool(cupy.zeros((2, 8), cupy.float32))
    with pytest.raises(InputError, match="features"):
        be.linear(cupy.zeros((2, 9), cupy.float32), lay)
    with pytest.raises(InputError, match="host NumPy"):
        be.linear(np.zeros((2, 8), np.float32), lay)
    with pytest.raises(InputError, match="differ"):
        be.add(cupy.zeros((2, 8), cupy.float32), cupy.zeros((2, 9), cupy.float32))
    with pytest.raises(InputError, match="float32"):
        be.to_device(np.zeros((1, 3, 4, 4), np.float64))


@pytest.mark.gpu
def test_unsupported_conv_is_refused_before_launch(rng):
    import cupy

    be = backend_for("")
    grouped = make_conv(rng, 8, 8, 3, 1, 1, 2, 4, 4)
    with pytest.raises(InputError, match="groups"):
        be.conv2d(cupy.zeros((1, 4, 4, 8), cupy.float32), grouped)


def test_layer_tolerance_is_the_fp32_one():
    assert tolerance("fp32") == 1e-5
