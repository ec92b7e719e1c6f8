"""block0 (kernels/block0.cu, impls/_custom_block0.py): the network's first three convs as one kernel.

GPU: ``CustomBackend.stem_block`` (stem 3x3 s2 + ReLU6 -> depthwise 3x3 s1 + ReLU6 -> pointwise, NCHW input,
NHWC output) against NumPy float64 on fresh random inputs, NaN-poisoned outputs, the fp32 per-layer tolerance
on the output of the three layers: the real first block of MobileNetV2 widths 1.0 / 0.5 / 0.75 / 1.4 at batch
1, 3 and 64, resolution 160 and maps that are not a multiple of the 14 x 14 tile, block0 v1 - v4 (v4's cluster
split also forced on at every batch, and on clusters of 4); v2 - v4 must have run (no fallback) where their shapes
are compiled, and fall back (recorded) where not. End to end against ONNX Runtime with every block0 version, and
v2 - v4 on the width / resolution variants. CPU: the same op and the plan on the CuPy stand-in of
tests/test_custom_host.py (kernel emulated in tests/_block0_emulation.py).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from impls import _custom_kernels as K
from mbv2.model import default_network
from mbv2.tolerances import assert_close
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_custom_kernels import CHECK_IMAGES, _seeded, backend_for, make_conv, ref64


@functools.cache
def _net(width: float = 1.0, resolution: int = 224):
    return default_network(width_mult=width, resolution=resolution)


def _first_block(width: float = 1.0, resolution: int = 224):
    ops = _net(width, resolution).fused[:3]
    return tuple(op.layer for op in ops), tuple(op.act for op in ops)


def _reference(x: np.ndarray, layers, acts) -> np.ndarray:
    r64 = ref64()
    y = x.astype(np.float64)
    for lay, act in zip(layers, acts):
        y = r64.conv2d(y, lay, act=act)
    return y  # NCHW


def _run(be, x: np.ndarray, layers, acts) -> np.ndarray:
    """stem_block on a device NCHW input into a NaN-poisoned NHWC output; returned as NCHW on the host."""
    import cupy

    stem, dw, pw = layers
    nb, _, h, w = x.shape
    ho, wo = stem.out_hw(h, w)
    with be.stream:
        xd = cupy.asarray(x)
        out = cupy.full((nb, ho, wo, pw.out_channels), np.nan, cupy.float32)
    y = be.stem_block(xd, stem, dw, pw, out=out, stem_act=acts[0], dw_act=acts[1], pw_act=acts[2])
    assert y is out
    return be.to_host(y)


def _check(version: str, x: np.ndarray, layers, acts, idx, what: str, fused: bool = True) -> None:
    be = backend_for(f"block0={version}")
    be._fallbacks.clear()
    y = _run(be, x, layers, acts)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    if version != "v1":
        fell_back = any(f.startswith(f"block0 {version}") for f in be._fallbacks)
        assert fell_back != fused, be._fallbacks
    assert_close(y[idx], _reference(x[idx], layers, acts), "fp32", "layer", what=f"block0 {version} {what}")


# (width, resolution, batch)
REAL = [(1.0, 224, b) for b in (1, 3, 64)] + [
    (0.5, 224, 3),
    (0.75, 192, 3),
    (1.4, 160, 3),
    (1.0, 160, 3),
    (0.5, 224, 64),
    (1.4, 224, 1),
]


@pytest.mark.gpu
@pytest.mark.parametrize("version", K.KERNEL_VERSIONS["block0"])
@pytest.mark.parametrize("width,resolution,batch", REAL, ids=[f"w{w}-r{r}-bs{b}" for w, r, b in REAL])
def test_stem_block_matches_float64_reference(width, resolution, batch, version):
    layers, acts = _first_block(width, resolution)
    rng = _seeded("block0", width, resolution, batch)
    x = rng.standard_normal((batch, 3, resolution, resolution), dtype=np.float32)
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    _check(version, x, layers, acts, idx, f"w{width} r{resolution} bs{batch}")


# (c1, c3, h, w, batch, pw_act): maps not a multiple of the tile, non-square, 1x1, uncompiled channels (fallback)
ODD = [
    (32, 16, 37, 37, 2, False),  # 19 x 19 map: one full tile + a 5-wide strip
    (32, 16, 33, 58, 3, False),  # 17 x 29, non-square
    (16, 8, 1, 1, 2, False),  # 1 x 1 map: every tap but the centre is padding
    (24, 16, 30, 27, 1, True),  # 15 x 14, ReLU6 on the projection too
    (48, 24, 29, 29, 2, False),  # 15 x 15
    (40, 16, 20, 20, 2, False),  # 40 stem channels: not compiled, falls back to v1 (recorded)
]


@pytest.mark.gpu
@pytest.mark.parametrize("version", K.KERNEL_VERSIONS["block0"])
@pytest.mark.parametrize("shape", ODD, ids=[f"c{s[0]}-p{s[1]}-{s[2]}x{s[3]}-bs{s[4]}" for s in ODD])
def test_odd_stem_block_matches_float64_reference(shape, version, rng):
    c1, c3, h, w, batch, pw_act = shape
    stem = make_conv(rng, 3, c1, 3, 2, 1, 1, h, w)
    ho, wo = stem.out_hw(h, w)
    dw = make_conv(rng, c1, c1, 3, 1, 1, c1, ho, wo)
    pw = make_conv(rng, c1, c3, 1, 1, 0, 1, ho, wo)
    x = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
    fused = (c1, c3) in K.BLOCK0_SHAPES
    _check(version, x, (stem, dw, pw), (True, True, pw_act), list(range(batch)), f"{shape}", fused=fused)


@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 3])
def test_stem_block_v3_two_blocks_per_sm_build_matches_float64_reference(batch):
    layers, acts = _first_block()
    x = _seeded("block0-occ2", batch).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    be = backend_for("block0=v3")
    be.block0_occ2 = True
    try:
        _check("v3", x, layers, acts, list(range(batch)), f"occ2 bs{batch}")
    finally:
        be.block0_occ2 = False


SPLIT = [(1.0, 224, b) for b in (1, 3, 64)] + [(0.5, 224, 3), (0.75, 192, 1), (1.4, 160, 3)]


@pytest.mark.gpu
@pytest.mark.parametrize("k4", [False, True], ids=["cluster2", "cluster4"])
@pytest.mark.parametrize("case", SPLIT + ODD, ids=[str(c) for c in SPLIT + ODD])
def test_stem_block_v4_split_forced_matches_float64_reference(case, k4):
    """block0 v4's cluster kernel at every batch (block0_split = True; the plan runs it below one block per SM only),
    on the real first blocks and the odd shapes; k4: 4 blocks per tile where the shape is 32 -> 16."""
    rng = _seeded("block0-v4", *case[:3], k4)
    if len(case) == 3:
        width, resolution, batch = case
        layers, acts = _first_block(width, resolution)
        x = rng.standard_normal((batch, 3, resolution, resolution), dtype=np.float32)
        fused = True
    else:
        c1, c3, h, w, batch, pw_act = case
        stem = make_conv(rng, 3, c1, 3, 2, 1, 1, h, w)
        ho, wo = stem.out_hw(h, w)
        layers = (stem, make_conv(rng, c1, c1, 3, 1, 1, c1, ho, wo), make_conv(rng, c1, c3, 1, 1, 0, 1, ho, wo))
        acts = (True, True, pw_act)
        x = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
        fused = (c1, c3) in K.BLOCK0_SHAPES
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    be = backend_for("block0=v4")
    be.block0_split, be.block0_k4 = True, k4
    try:
        _check("v4", x, layers, acts, idx, f"split {case} k4={k4}", fused=fused)
    finally:
        be.block0_split, be.block0_k4 = None, False


@pytest.mark.gpu
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("version", K.KERNEL_VERSIONS["block0"])
@pytest.mark.parametrize("batch", [1, 64])
def test_e2e_block0_matches_onnxruntime(net, batch, version, graph):
    import impls
    from tests.test_custom_e2e import check_against_ort

    be = impls.create("custom", kernels=f"block0={version}", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom block0={version} graph={graph} bs{batch}")
    names = [K.generic_of(launch.name) for launch in be.plan(batch).launches]  # fuse v24: v3 on a fixed build
    ran = "v3" if version == "v4" and 128 * batch > be.sms else version  # v4: the split where it fits 1 block per SM
    assert (K.block0_kernel(32, 16, ran) in names) == (version != "v1"), names
    assert ("nchw_to_nhwc_smallc" in names) == (version == "v1"), names
    assert not any(f.startswith("block0") for f in be.info()["fallbacks"])


@pytest.mark.gpu
@pytest.mark.parametrize("version", ["v2", "v3", "v4"])
@pytest.mark.parametrize("name", ["w0.5-r224", "w0.75-r192", "w1.4-r160", "w1.0-r160-bn-unfolded"])
def test_e2e_block0_on_model_variants_matches_onnxruntime(name, version):
    import impls
    from mbv2.tolerances import TOP1_AGREEMENT, top1_agreement
    from tests.test_gpu_model_variants import variant

    net, x, ref = variant(name)
    with impls.create("custom", kernels=f"block0={version}", graph=True) as be:
        be.prepare(net)
        y = be.run(x)
        names = [launch.name for launch in be.plan(x.shape[0]).launches]
        fallbacks = be.info()["fallbacks"]
    assert_close(y, ref, "fp32", "e2e", what=f"custom block0={version} on {name}")
    assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp32"]
    ran = ("block0_v4", "block0_v3") if version == "v4" else (f"block0_{version}",)  # v4: v3 where the split won't fit
    assert any(n.startswith(ran) for n in names) and "nchw_to_nhwc_smallc" not in names, names
    assert not any(f.startswith("block0") for f in fallbacks), fallbacks


# -- CPU: the host side on the CuPy stand-in ---------------------------------------------------------------
def test_stem_block_op_with_emulated_kernels(fake_cupy, rng):  # noqa: F811
    from impls.numpy_ref import NumpyBackend
    from tests.test_custom_host import LAUNCHES

    for ver in K.KERNEL_VERSIONS["block0"]:
        be = fake_cupy.CustomBackend(kernels=f"block0={ver}")
        be._ensure_device()
        for c1, c3, h, w, batch in [(32, 16, 37, 30, 2), (16, 8, 1, 1, 1), (48, 24, 29, 29, 1), (40, 16, 9, 9, 2)]:
            stem = make_conv(rng, 3, c1, 3, 2, 1, 1, h, w)
            ho, wo = stem.out_hw(h, w)
            dw = make_conv(rng, c1, c1, 3, 1, 1, c1, ho, wo)
            pw = make_conv(rng, c1, c3, 1, 1, 0, 1, ho, wo)
            x = rng.standard_normal((batch, 3, h, w), dtype=np.float32)
            LAUNCHES.clear()
            y = be.to_host(be.stem_block(be._cp.asarray(x), stem, dw, pw))
            fused = ver != "v1" and (c1, c3) in K.BLOCK0_SHAPES
            assert any(k.startswith(f"block0_{ver}") for k in LAUNCHES) == fused, LAUNCHES
            r64 = NumpyBackend(dtype="fp64")
            ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), stem, act=True), dw, act=True), pw)
            assert_close(y, ref, "fp32", "layer", what=f"block0 {ver} {c1}->{c3} {h}x{w}")
        if ver != "v1":
            assert any(f"block0 {ver} -> v1" in f for f in be.info()["fallbacks"])  # the 40-channel case


@pytest.mark.parametrize("version", ["v2", "v3", "v4"])
@pytest.mark.parametrize("width,resolution", [(0.5, 224), (0.75, 192), (1.4, 160), (1.0, 160)])
def test_block0_plan_on_width_variants(fake_cupy, width, resolution, version):  # noqa: F811
    net = _net(width, resolution)
    c1, c3 = net.fused[0].layer.out_channels, net.fused[2].layer.out_channels
    be = fake_cupy.CustomBackend(kernels=f"block0={version}")
    be.prepare(net)
    names = [launch.name for launch in be.plan(1).launches]  # v4: batch 1 fits one block per SM at these maps
    assert K.generic_of(names[0]) == K.block0_kernel(c1, c3, version), names[:4]
    assert "nchw_to_nhwc_smallc" not in names, names[:4]
    assert not any(f.startswith("block0") for f in be.info()["fallbacks"])


@pytest.mark.parametrize("batch", [1, 2, 3, 64])
def test_block0_v4_runs_the_cluster_kernel_below_one_block_per_sm(fake_cupy, batch):  # noqa: F811
    """block0 v4's rule: the cluster kernel (grid 2 x tiles, or 4 x tiles on the _k4 build) where its grid fits one
    block per SM (the stand-in's 132: batch 1 at 224, 64 tiles per image), v3's kernel elsewhere; block0_split forces
    either way. The emulated cluster kernel against float64: test_stem_block_op_with_emulated_kernels (v4 splits
    there: small maps)."""
    (stem, dw, pw), (a0, a1, a2) = _first_block()
    be = fake_cupy.CustomBackend(kernels="block0=v4")
    be._ensure_device()
    x, out = be._empty((batch, 3, 224, 224)), be._empty((batch, 112, 112, 16))

    def launch() -> tuple[str, tuple]:
        la = be._block0_launch(x, stem, a0, dw, a1, pw, a2, out)
        return la.name, la.grid

    split = 128 * batch <= be.sms
    assert launch() == (("block0_v4_c32_p16", (128, batch)) if split else ("block0_v3_c32_p16", (64, batch)))
    be.block0_split = True
    assert launch() == ("block0_v4_c32_p16", (128, batch))
    be.block0_k4 = True
    assert launch() == ("block0_v4_c32_p16_k4", (256, batch))
    be.block0_split = False
    assert launch() == ("block0_v3_c32_p16", (64, batch))
