"""hfuse v2 (hexdw) and v3 (hexdw3, half2 depthwise phase; kernels/half.cu): the fp16 expansion 1x1 conv on
tensor cores inside the 3x3 depthwise conv, and v4 (hexdwpw4: + the projection 1x1 and residual, the whole
bottleneck block through ``bottleneck``), against NumPy float64.

Every distinct (expansion, depthwise) pair of MobileNetV2-1.0 that the fp16 plan fuses (fp32's criterion,
``CustomBackend._exdw_fusable``) at batch 1, 3 and 64 with the tile the backend picks, every tile and
chunk grouping forced on each pair, plus odd shapes (expanded channels not a multiple of the 32-channel
chunk, maps not a multiple of the 7 / 14 tile, 1x1 maps, CIN = 8, no ReLU6 on the expansion); v3 also with
each build (3 / 2 blocks per SM) forced. The input
is rounded to half first and the reference takes the same values; bound ``tolerance("fp16")`` per layer.
Outputs NaN-poisoned; the fused kernel must have run (no fallback).
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls.custom import CustomBackend
from impls.numpy_ref import NumpyBackend
from mbv2.tolerances import assert_close, rel_l2
from tests.test_custom_exdw import _ex_dw_pairs
from tests.test_custom_fp16 import BATCHES, CHECK_IMAGES, _h, _log, _net, backend_for
from tests.test_custom_kernels import _seeded, make_conv

pytestmark = pytest.mark.gpu


def _run(be, ex, dw, x, ex_act=True, dw_act=True, force=None):
    import cupy

    xd = be.to_device(x)
    nb, h, w, _ = xd.shape
    ho, wo = dw.out_hw(h, w)
    with be.stream:
        out = cupy.full((nb, ho, wo, dw.out_channels), np.nan, cupy.float16)
    be.hexdw_force = force
    try:
        y = be.expand_depthwise(xd, ex, dw, ex_act=ex_act, dw_act=dw_act, out=out)
    finally:
        be.hexdw_force = None
    assert y is out
    assert not any("hfuse" in f for f in be._fallbacks), be._fallbacks
    return be.to_host(y)


def _check(y, ref, what):
    err = rel_l2(y, ref)
    _log(f"{what}: rel L2 {err:.3e}")
    assert_close(y, ref, "fp16", "layer", what=what)


def _pair_case(i, j, batch):
    net = _net()
    ex, dw = net.fused[i], net.fused[j]
    rng = _seeded("hexdw", i, j, batch)
    x = _h(rng.standard_normal((batch, *ex.layer.in_shape), dtype=np.float32))
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    r64 = NumpyBackend(dtype="fp64")
    ref = r64.conv2d(r64.conv2d(x[idx].astype(np.float64), ex.layer, act=ex.act), dw.layer, act=dw.act)
    return ex, dw, x, idx, ref


def _label(i, j):
    ex, dw = _net().fused[i], _net().fused[j]
    c, h, w = ex.layer.in_shape
    return f"{i}+{j}:ex{c}->{ex.layer.out_channels}@{h}x{w}s{dw.layer.stride}"


PAIRS = _ex_dw_pairs()


VERSIONS = ["v2", "v3"]


@pytest.mark.parametrize("ver", VERSIONS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("i,j", PAIRS, ids=[_label(i, j) for i, j in PAIRS])
def test_hexdw_pair_matches_float64_reference(i, j, batch, ver):
    ex, dw, x, idx, ref = _pair_case(i, j, batch)
    y = _run(backend_for(f"hfuse={ver}"), ex.layer, dw.layer, x, ex.act, dw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    _check(y[idx], ref, f"hfuse {ver} ops {_label(i, j)} bs{batch}")


def _forced():
    out = []
    for ver in VERSIONS:
        occs = [()] if ver == "v2" else [(o,) for o in K.HEXDW3_OCC]
        for i, j in PAIRS:
            s = _net().fused[j].layer.stride
            for t in K.HEXDW_TILES[s]:
                for cpb in (1, 2, 6):
                    for occ in occs:
                        sid = f"{ver}-{_label(i, j)}-t{t}-cpb{cpb}" + (f"-b{occ[0]}" if occ else "")
                        out.append(pytest.param(ver, i, j, (t, cpb, *occ), id=sid))
    return out


@pytest.mark.parametrize("ver,i,j,force", _forced())
def test_hexdw_every_tile_and_chunk_grouping(ver, i, j, force):
    ex, dw, x, idx, ref = _pair_case(i, j, 3)
    y = _run(backend_for(f"hfuse={ver}"), ex.layer, dw.layer, x, ex.act, dw.act, force=force)
    assert np.isfinite(y).all()
    _check(y[idx], ref, f"hfuse {ver} ops {_label(i, j)} bs3 forced {force}")


# (cin, ce, stride, h, w, batch, ex_act)
ODD = [
    (16, 40, 1, 5, 7, 3, True),  # Ce not a multiple of 32, map smaller than a tile
    (24, 72, 2, 9, 10, 3, True),  # stride 2, odd input size
    (8, 48, 2, 1, 1, 1, True),  # 1x1 map, CIN = 8
    (8, 24, 1, 1, 1, 2, True),  # 1x1 map stride 1, Ce < one chunk
    (32, 104, 1, 17, 9, 2, False),  # no ReLU6 on the expansion, partial tiles in both directions
    (24, 144, 1, 15, 29, 2, True),  # maps not a multiple of 7 or 14
    (16, 96, 2, 112, 112, 1, True),  # the network's first expansion shape at batch 1
]


@pytest.mark.parametrize("ver", VERSIONS)
@pytest.mark.parametrize("force", [None, "all"])
@pytest.mark.parametrize("shape", ODD, ids=[f"c{s[0]}-{s[1]}s{s[2]}-{s[3]}x{s[4]}-bs{s[5]}" for s in ODD])
def test_odd_hexdw_matches_float64_reference(shape, force, ver, rng):
    cin, ce, s, h, w, batch, ex_act = shape
    ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
    dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
    x = _h(rng.standard_normal((batch, cin, h, w), dtype=np.float32))
    r64 = NumpyBackend(dtype="fp64")
    ref = r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=ex_act), dw, act=True)
    be = backend_for(f"hfuse={ver}")
    occs = [()] if ver == "v2" else [(o,) for o in K.HEXDW3_OCC]
    forces = [None] if force is None else [(t, cpb, *o) for t in K.HEXDW_TILES[s] for cpb in (1, 2, 5) for o in occs]
    for f in forces:
        y = _run(be, ex, dw, x, ex_act, True, force=f)
        assert np.isfinite(y).all()
        _check(y, ref, f"hfuse {ver} {shape} forced {f}")


@pytest.mark.parametrize("ver,prefix", [("v2", "hexdw_"), ("v3", "hexdw3_")])
def test_hexdw_fuses_the_six_network_pairs(ver, prefix):
    be = CustomBackend(dtype="fp16", kernels=f"hfuse={ver}", autotune=False)  # autotune may keep two kernels
    be.prepare(_net())
    names = [launch.name for launch in be.plan(2).launches]
    assert sum(n.startswith(prefix) for n in names) == 6, names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]


# -- hfuse v4: the whole bottleneck block (hexdwpw4) ----------------------------------------------------------------
def _run_block(be, ex, dw, pw, x, res, ex_act=True, dw_act=True, act=False, tile=None):
    import cupy

    xd = be.to_device(x)
    rd = None if res is None else be.to_device(res)
    nb, h, w, _ = xd.shape
    ho, wo = dw.out_hw(h, w)
    with be.stream:
        out = cupy.full((nb, ho, wo, pw.out_channels), np.nan, cupy.float16)
    be.hexdwpw4_force = tile
    try:
        y = be.bottleneck(xd, ex, dw, pw, ex_act=ex_act, dw_act=dw_act, act=act, residual=rd, out=out)
    finally:
        be.hexdwpw4_force = None
    assert y is out
    assert not any("hfuse" in f for f in be._fallbacks), be._fallbacks
    return be.to_host(y)


def _block_tiles(s, cin, cout):
    return [t for s_, t, c, co in K.HEXDWPW4_INSTANCES if (s_, c, co) == (s, cin, cout)]


def _block_params():
    from tests.test_custom_exdw import _blocks

    out = []
    for i, j, k in _blocks():
        net = _net()
        ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
        c, h, w = ex.layer.in_shape
        label = f"{i}+{j}+{k}:{c}->{ex.layer.out_channels}->{pw.layer.out_channels}@{h}s{dw.layer.stride}"
        label += "+res" if pw.residual is not None else ""
        for t in _block_tiles(dw.layer.stride, c, pw.layer.out_channels):
            for batch in BATCHES:
                out.append(pytest.param(i, j, k, t, batch, id=f"{label}-t{t}-bs{batch}"))
    return out


@pytest.mark.parametrize("i,j,k,tile,batch", _block_params())
def test_hexdwpw4_block_matches_float64_reference(i, j, k, tile, batch):
    """Every distinct bottleneck block of MobileNetV2-1.0 that hfuse v4 fuses, each compiled tile forced, the
    residual (the block input) where the network has one."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    rng = _seeded("hexdwpw4", i, j, k, tile, batch)
    x = _h(rng.standard_normal((batch, *ex.layer.in_shape), dtype=np.float32))
    res = x if pw.residual is not None else None
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    r64 = NumpyBackend(dtype="fp64")
    ref = r64.conv2d(r64.conv2d(x[idx].astype(np.float64), ex.layer, act=ex.act), dw.layer, act=dw.act)
    ref = r64.conv2d(ref, pw.layer, act=pw.act) + (0.0 if res is None else x[idx].astype(np.float64))
    be = backend_for("hfuse=v4")
    y = _run_block(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, tile=tile)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    _check(y[idx], ref, f"hfuse v4 block {i}+{j}+{k} t{tile} bs{batch}")


# (cin, ce, cout, stride, h, w, batch, residual, ex_act)
ODD_BLOCKS = [
    (24, 144, 24, 1, 9, 10, 2, True, True),  # partial tiles, residual
    (16, 40, 24, 2, 9, 10, 3, False, True),  # Ce not a multiple of 32 (last chunk partial), odd input size
    (32, 104, 32, 1, 17, 9, 2, True, False),  # no ReLU6 on the expansion, Ce % 32 = 8
    (32, 192, 64, 2, 5, 7, 1, False, True),
    (24, 72, 32, 2, 1, 1, 2, False, True),  # 1x1 map
    (24, 48, 24, 1, 15, 29, 3, True, True),  # maps not a multiple of 7 or 14
]


@pytest.mark.parametrize(
    "shape", ODD_BLOCKS, ids=[f"c{s[0]}-{s[1]}-{s[2]}s{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD_BLOCKS]
)
def test_odd_hexdwpw4_matches_float64_reference(shape, rng):
    cin, ce, cout, s, h, w, batch, with_res, ex_act = shape
    ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
    dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
    ho, wo = dw.out_hw(h, w)
    pw = make_conv(rng, ce, cout, 1, 1, 0, 1, ho, wo)
    x = _h(rng.standard_normal((batch, cin, h, w), dtype=np.float32))
    res = _h(rng.standard_normal((batch, cout, ho, wo), dtype=np.float32)) if with_res else None
    r64 = NumpyBackend(dtype="fp64")
    ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=ex_act), dw, act=True), pw, act=False)
    ref = ref + (0.0 if res is None else res.astype(np.float64))
    be = backend_for("hfuse=v4")
    for t in _block_tiles(s, cin, cout):
        y = _run_block(be, ex, dw, pw, x, res, ex_act, True, False, tile=t)
        assert np.isfinite(y).all()
        _check(y, ref, f"hfuse v4 block {shape} t{t}")


def test_hexdwpw4_runs_the_six_network_blocks():
    be = CustomBackend(dtype="fp16", kernels="hfuse=v4", autotune=False)  # autotune may keep the pair
    be.prepare(_net())
    names = [launch.name for launch in be.plan(64).launches]
    assert sum(n.startswith("hexdwpw4_") for n in names) == 6, names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
