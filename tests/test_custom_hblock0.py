"""hblock0 (fp16 mode; kernels/block0.cu hblock0_v2_* / _v3_* / _v4_*, impls/_custom_hblock0.py): the first three
convs as one kernel.

GPU: ``hstem_block`` (stem 3x3 s2 + ReLU6 -> depthwise 3x3 s1 + ReLU6 -> pointwise, fp32 NCHW input, half NHWC
output) against NumPy float64 on fresh random inputs, NaN-poisoned outputs, the fp16 per-layer tolerance on the
output of the three layers: MobileNetV2's first block (widths 1.0 / 0.5 / 0.75 / 1.4) at batch 1, 3 and 64, maps
that are not a multiple of the 14 x 14 tile, hblock0 v1, v2, v3 (tensor cores) and v4 (v3 persistent); the fused
versions must have run (no fallback) where their shapes are compiled and fall back (recorded) where not. End to end:
the fp16 plan with each fused version against float64.
CPU: the op and the plan on the CuPy stand-in of tests/test_custom_host.py (kernel emulated by
tests/_block0_emulation.py, which writes the half output through the stand-in's float16 array).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls._custom_hblock0 import hstem_block
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, rel_l2, top1_agreement
from tests.test_custom_block0 import ODD, _first_block, _net, _reference
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_custom_kernels import CHECK_IMAGES, _seeded, make_conv

VERSIONS = K.KERNEL_VERSIONS["hblock0"]


@functools.cache
def _backend(version: str):
    from impls.custom import CustomBackend

    be = CustomBackend(dtype="fp16", kernels=f"hblock0={version}")
    be._ensure_device()
    return be


def _check(version: str, x: np.ndarray, layers, acts, idx, what: str, fused: bool = True) -> None:
    import cupy

    be = _backend(version)
    be._fallbacks.clear()
    stem, dw, pw = layers
    nb, _, h, w = x.shape
    ho, wo = stem.out_hw(h, w)
    with be.stream:
        xd = cupy.asarray(x)
        out = cupy.full((nb, ho, wo, pw.out_channels), np.nan, cupy.float16)
    y = hstem_block(be, xd, stem, dw, pw, out=out, stem_act=acts[0], dw_act=acts[1], pw_act=acts[2])
    assert y is out
    y = be.to_host(y)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    if version != "v1":
        fell_back = any(f.startswith(f"hblock0 {version}") for f in be._fallbacks)
        assert fell_back != fused, be._fallbacks
    ref = _reference(x[idx], layers, acts)
    _log(f"hblock0 {version} {what} rel_l2 {rel_l2(y[idx], ref):.3e}")
    assert_close(y[idx], ref, "fp16", "layer", what=f"hblock0 {version} {what}")


def _log(line: str) -> None:
    from tests.test_custom_fp16 import _log as log

    log(line)


REAL = [(1.0, 224, b) for b in (1, 3, 64)] + [(0.5, 224, 3), (0.75, 192, 3), (1.4, 160, 3), (1.4, 224, 1)]


@pytest.mark.gpu
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("width,resolution,batch", REAL, ids=[f"w{w}-r{r}-bs{b}" for w, r, b in REAL])
def test_hstem_block_matches_float64_reference(width, resolution, batch, version):
    layers, acts = _first_block(width, resolution)
    rng = _seeded("hblock0", width, resolution, batch)
    x = rng.standard_normal((batch, 3, resolution, resolution), dtype=np.float32)
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    _check(version, x, layers, acts, idx, f"w{width} r{resolution} bs{batch}")


@pytest.mark.gpu
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("shape", ODD, ids=[f"c{s[0]}-p{s[1]}-{s[2]}x{s[3]}-bs{s[4]}" for s in ODD])
def test_odd_hstem_block_matches_float64_reference(shape, version, rng):
    c1, c3, h, w, batch, pw_act = shape
    stem = make_conv(rng, 3, c1, 3, 2, 1, 1, h, w)
    ho, wo = stem.out_hw(h, w)
    dw = make_conv(rng, c1, c1, 3, 1, 1, c1, ho, wo)
    pw = make_conv(rng, c1, c3, 1, 1, 0, 1, ho, wo)
    x = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
    fused = (c1, c3) in K.BLOCK0_SHAPES
    _check(version, x, (stem, dw, pw), (True, True, pw_act), list(range(batch)), f"{shape}", fused=fused)


@pytest.mark.gpu
@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "v1"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 64])
def test_e2e_hblock0_matches_float64_reference(batch, graph, version):
    from tests.test_custom_fp16 import e2e_backend, f64_reference

    x, ref = f64_reference(batch)
    be = e2e_backend(graph, f"hblock0={version}")
    be.poison(batch)
    y = be.run(x)
    err, top1 = rel_l2(y, ref), top1_agreement(y, ref)
    _log(f"hblock0 e2e {version} bs{batch} graph={graph} rel_l2 {err:.3e} top1 {top1:.3f}")
    assert_close(y, ref, "fp16", "e2e", what=f"custom fp16 hblock0={version} graph={graph} bs{batch}")
    assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp16"]
    names = [launch.name for launch in be.plan(batch).launches]
    assert names[0] == K.hblock0_kernel(32, 16, version), names[:4]
    assert not any(n.startswith("hstem") for n in names), names[:4]
    assert not [f for f in be.info()["fallbacks"] if f.startswith("hblock0")], be.info()["fallbacks"]


# -- CPU: the host side on the CuPy stand-in ---------------------------------------------------------------
def test_hstem_block_op_with_emulated_kernels(fake_cupy, rng):  # noqa: F811
    from impls.numpy_ref import NumpyBackend
    from tests.test_custom_host import LAUNCHES

    for ver in VERSIONS:
        be = fake_cupy.CustomBackend(dtype="fp16", kernels=f"hblock0={ver}")
        be._ensure_device()
        for c1, c3, h, w, batch in [(32, 16, 37, 30, 2), (16, 8, 1, 1, 1), (48, 24, 29, 29, 1), (40, 16, 9, 9, 2)]:
            stem = make_conv(rng, 3, c1, 3, 2, 1, 1, h, w)
            ho, wo = stem.out_hw(h, w)
            dw = make_conv(rng, c1, c1, 3, 1, 1, c1, ho, wo)
            pw = make_conv(rng, c1, c3, 1, 1, 0, 1, ho, wo)
            x = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
            LAUNCHES.clear()
            y = be.to_host(hstem_block(be, be._cp.asarray(x), stem, dw, pw))
            fused = ver != "v1" and (c1, c3) in K.BLOCK0_SHAPES
            assert any(k.startswith(f"hblock0_{ver}") for k in LAUNCHES) == fused, LAUNCHES
            r64 = NumpyBackend(dtype="fp64")
            ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), stem, act=True), dw, act=True), pw)
            assert_close(y, ref, "fp16", "layer", what=f"hblock0 {ver} {c1}->{c3} {h}x{w}")
        if ver != "v1":
            assert any(f"hblock0 {ver} -> v1" in f for f in be.info()["fallbacks"])  # the 40-channel case


@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "v1"])
@pytest.mark.parametrize("width,resolution", [(1.0, 224), (0.5, 224), (0.75, 192), (1.4, 160)])
def test_hblock0_plan_with_emulated_kernels(fake_cupy, width, resolution, version):  # noqa: F811
    from impls.numpy_ref import NumpyBackend
    from mbv2.network import random_input

    net = _net(width, resolution)
    c1, c3 = net.fused[0].layer.out_channels, net.fused[2].layer.out_channels
    be = fake_cupy.CustomBackend(dtype="fp16", kernels=f"hblock0={version}")
    be.prepare(net)
    names = [launch.name for launch in be.plan(2).launches]
    assert names[0] == K.hblock0_kernel(c1, c3, version) and not any(n.startswith("hstem") for n in names), names[:4]
    # other families may record fallbacks on these widths (e.g. a block shape without a compiled fused kernel)
    assert not [f for f in be.info()["fallbacks"] if f.startswith("hblock0")], be.info()["fallbacks"]
    if width == 1.0:
        be.poison(2)
        x = random_input(net, 2, seed=7)
        ref = NumpyBackend(dtype="fp64")
        ref.prepare(net)
        y = be.run(x)
        assert_close(y, ref.run(x), "fp16", "e2e", what=f"emulated custom fp16 hblock0={version}")
