"""hfuse v2 (hexdw, kernels/half.cu): the fp16 expansion 1x1 conv on tensor cores inside the 3x3 depthwise
conv, against NumPy float64.

Every distinct (expansion, depthwise) pair of MobileNetV2-1.0 that the fp16 plan fuses (fp32's criterion,
``CustomBackend._exdw_fusable``) at batch 1, 3 and 64 with the tile the backend picks, every tile and
chunk grouping forced on each pair, plus odd shapes (expanded channels not a multiple of the 32-channel
chunk, maps not a multiple of the 7 / 14 tile, 1x1 maps, CIN = 8, no ReLU6 on the expansion). The input
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


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("i,j", PAIRS, ids=[_label(i, j) for i, j in PAIRS])
def test_hexdw_pair_matches_float64_reference(i, j, batch):
    ex, dw, x, idx, ref = _pair_case(i, j, batch)
    y = _run(backend_for("hfuse=v2"), ex.layer, dw.layer, x, ex.act, dw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    _check(y[idx], ref, f"hfuse v2 ops {_label(i, j)} bs{batch}")


def _forced():
    out = []
    for i, j in PAIRS:
        s = _net().fused[j].layer.stride
        for t in K.HEXDW_TILES[s]:
            for cpb in (1, 2, 6):
                out.append(pytest.param(i, j, (t, cpb), id=f"{_label(i, j)}-t{t}-cpb{cpb}"))
    return out


@pytest.mark.parametrize("i,j,force", _forced())
def test_hexdw_every_tile_and_chunk_grouping(i, j, force):
    ex, dw, x, idx, ref = _pair_case(i, j, 3)
    y = _run(backend_for("hfuse=v2"), ex.layer, dw.layer, x, ex.act, dw.act, force=force)
    assert np.isfinite(y).all()
    _check(y[idx], ref, f"hfuse v2 ops {_label(i, j)} bs3 forced {force}")


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


@pytest.mark.parametrize("force", [None, "all"])
@pytest.mark.parametrize("shape", ODD, ids=[f"c{s[0]}-{s[1]}s{s[2]}-{s[3]}x{s[4]}-bs{s[5]}" for s in ODD])
def test_odd_hexdw_matches_float64_reference(shape, force, rng):
    cin, ce, s, h, w, batch, ex_act = shape
    ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
    dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
    x = _h(rng.standard_normal((batch, cin, h, w), dtype=np.float32))
    r64 = NumpyBackend(dtype="fp64")
    ref = r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=ex_act), dw, act=True)
    be = backend_for("hfuse=v2")
    forces = [None] if force is None else [(t, cpb) for t in K.HEXDW_TILES[s] for cpb in (1, 2, 5)]
    for f in forces:
        y = _run(be, ex, dw, x, ex_act, True, force=f)
        _check(y, ref, f"hfuse v2 {shape} forced {f}")


def test_hexdw_fuses_the_six_network_pairs():
    be = CustomBackend(dtype="fp16", kernels="hfuse=v2", autotune=False)  # autotune may keep two kernels
    be.prepare(_net())
    names = [launch.name for launch in be.plan(2).launches]
    assert sum(n.startswith("hexdw_") for n in names) == 6, names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
