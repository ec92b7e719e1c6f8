"""fuse v3 / v4 (exdw, exdw4), v5 (exdwpw5) and v7 (exgdw): the expansion 1x1 conv computed inside the 3x3 depthwise
conv (v7: the depthwise conv inside the expansion GEMM), against NumPy float64.

Every distinct (expansion, depthwise) pair of MobileNetV2-1.0 that fuse v3 fuses, at batch 1, 3 and 64,
plus odd shapes (expanded channels not a multiple of 32, maps not a multiple of the 8x8 / 4x8 tile,
1x1 maps where every tap but the centre is padding, CIN = 8). Outputs NaN-poisoned; fp32 per-layer
tolerance; the fused kernel must have run (no fallback).
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls.custom import CustomBackend
from mbv2.tolerances import assert_close
from tests.test_custom_kernels import _REF64, BATCHES, CHECK_IMAGES, _net, _seeded, backend_for, make_conv, ref64


def _network_pairs(fusable):
    """(expansion op, depthwise op) of the network that ``fusable(op, nxt)`` takes (the backend's own criterion)."""
    net = _net()
    return [
        (op, nxt)
        for op, nxt in zip(net.fused, net.fused[1:])
        if op.kind == "conv" and nxt.kind == "conv" and nxt.input == op.index and op.residual is None
        if nxt.residual is None and fusable(op, nxt)
    ]


def _distinct(pairs):
    """(expansion op index, depthwise op index) of the distinct shapes among ``pairs``."""
    seen, out = set(), []
    for op, nxt in pairs:
        key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride)
        if key not in seen:
            seen.add(key)
            out.append((op.index, nxt.index))
    return out


def _fusable_pairs():
    """The pairs fuse v3/v4 fuses (exdw)."""
    return _network_pairs(lambda op, nxt: CustomBackend._exdw_fusable(op.layer, nxt.layer))


def _ex_dw_pairs():
    return _distinct(_fusable_pairs())


def _cases():
    cases = []
    for i, j in _ex_dw_pairs():
        ex, dw = _net().fused[i], _net().fused[j]
        c, h, w = ex.layer.in_shape
        for batch in BATCHES:
            for ver in ("v3", "v4"):
                label = f"{i}+{j}:ex{c}->{ex.layer.out_channels}@{h}x{w}s{dw.layer.stride}"
                cases.append(pytest.param(i, j, batch, ver, id=f"fuse-{ver}-bs{batch}-{label}"))
    return cases


def _run(be, ex, dw, x, ex_act=True, dw_act=True):
    import cupy

    xd = be.to_device(x)
    nb, h, w, _ = xd.shape
    ho, wo = dw.out_hw(h, w)
    with be.stream:
        out = cupy.full((nb, ho, wo, dw.out_channels), np.nan, cupy.float32)
    y = be.expand_depthwise(xd, ex, dw, ex_act=ex_act, dw_act=dw_act, out=out)
    assert y is out
    assert not any("fuse v3" in f for f in be._fallbacks), be._fallbacks  # "fuse v3/v4 -> v1 ..."
    return be.to_host(y)


def test_network_has_six_fusable_expansions():
    pairs = [(op.index, nxt.index) for op, nxt in _fusable_pairs()]
    assert len(pairs) == 6, pairs  # 16->96, 24->144 x2, 32->192 x3


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,batch,version", _cases())
def test_fused_expand_depthwise_matches_float64_reference(i, j, batch, version):
    net = _net()
    ex, dw = net.fused[i], net.fused[j]
    rng = _seeded("exdw", i, j, batch)
    x = rng.standard_normal((batch, *ex.layer.in_shape), dtype=np.float32)
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    mid = _REF64.conv2d(x[idx].astype(np.float64), ex.layer, act=ex.act)
    ref = _REF64.conv2d(mid, dw.layer, act=dw.act)
    y = _run(backend_for(f"fuse={version}"), ex.layer, dw.layer, x, ex.act, dw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"fuse {version} ops {i}+{j} bs{batch}")


def _odd_pair(shape, rng):
    """An (expansion, depthwise) pair of odd shape (cin, ce, stride, h, w, batch, ex_act) made here, a random input and
    the float64 reference (depthwise with ReLU6)."""
    cin, ce, s, h, w, batch, ex_act = shape
    ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
    dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
    x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
    r64 = ref64()
    ref = r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=ex_act), dw, act=True)
    return ex, dw, x, ex_act, ref


# (cin, ce, stride, h, w, batch, ex_act)
ODD = [
    (16, 40, 1, 5, 7, 3, True),  # Ce not a multiple of 32, map smaller than a tile
    (24, 72, 2, 9, 10, 3, True),  # stride 2, odd input size
    (8, 48, 2, 1, 1, 1, True),  # 1x1 map, CIN = 8
    (32, 100, 1, 17, 9, 2, False),  # no ReLU6 on the expansion, partial tiles in both directions
    (16, 96, 2, 112, 112, 1, True),  # the network's first expansion shape at batch 1
]


@pytest.mark.gpu
@pytest.mark.parametrize("version", ["v3", "v4"])
@pytest.mark.parametrize("shape", ODD, ids=[f"c{s[0]}-{s[1]}s{s[2]}-{s[3]}x{s[4]}-bs{s[5]}" for s in ODD])
def test_odd_fused_expand_depthwise_matches_float64_reference(shape, version, rng):
    ex, dw, x, ex_act, ref = _odd_pair(shape, rng)
    y = _run(backend_for(f"fuse={version}"), ex, dw, x, ex_act, True)
    assert_close(y, ref, "fp32", "layer", what=f"fuse {version} {shape}")


# -- fuse v5: the whole block (expansion + depthwise + projection + residual) in one kernel (exdwpw5) ----------
def _blocks():
    """(expansion, depthwise, projection) op indices of the network whose shapes have an exdwpw5 instance."""
    net = _net()
    out, seen = [], set()
    for op, nxt in _fusable_pairs():
        pw = net.fused[nxt.index + 1]
        key = (op.layer.in_shape, op.layer.out_channels, nxt.layer.stride, pw.layer.out_channels, pw.residual is None)
        if pw.input == nxt.index and pw.layer.is_pointwise and key not in seen:
            seen.add(key)
            out.append((op.index, nxt.index, pw.index))
    return out


def test_network_blocks_have_exdwpw5_instances():
    net = _net()
    blocks = _blocks()
    assert len(blocks) == 5, blocks  # 16->96->24 s2, 24->144->24 s1 + res, 24->144->32 s2, 32->192->32 (+res), ->64
    for i, j, k in blocks:
        ex, dw, pw = net.fused[i].layer, net.fused[j].layer, net.fused[k].layer
        ho, wo = dw.out_hw(*ex.in_shape[1:])
        assert K.exdwpw5_tile(dw.stride, ex.in_channels, pw.out_channels, ho, wo) is not None, (i, j, k)


def _run_block(be, ex, dw, pw, x, res, ex_act=True, dw_act=True, act=False):
    import cupy

    xd = be.to_device(x)
    nb, h, w, _ = xd.shape
    ho, wo = dw.out_hw(h, w)
    with be.stream:
        out = cupy.full((nb, ho, wo, pw.out_channels), np.nan, cupy.float32)
    rd = be.to_device(res) if res is not None else None
    y = be.bottleneck(xd, ex, dw, pw, ex_act=ex_act, dw_act=dw_act, act=act, residual=rd, out=out)
    assert y is out
    assert not be._fallbacks, be._fallbacks
    return be.to_host(y)


def _block_case(tag, i, j, k, batch):
    """A network block's ops, a fresh input (seeded by ``tag`` and the case), the residual (the block input scaled,
    where the block has one), the images compared and their float64 reference."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    rng = _seeded(tag, i, j, k, batch)
    x = rng.standard_normal((batch, *ex.layer.in_shape), dtype=np.float32)
    res = x * np.float32(0.5) if pw.residual is not None else None  # the block input (NCHW), as in the network
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    r64 = _REF64
    ref = r64.conv2d(
        r64.conv2d(r64.conv2d(x[idx].astype(np.float64), ex.layer, act=ex.act), dw.layer, act=dw.act),
        pw.layer,
        act=pw.act,
    )
    if res is not None:
        ref = ref + res[idx]
    return ex, dw, pw, x, res, idx, ref


@pytest.mark.gpu
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("i,j,k", _blocks(), ids=[f"ops{i}+{j}+{k}" for i, j, k in _blocks()])
def test_fused_block_matches_float64_reference(i, j, k, batch):
    ex, dw, pw, x, res, idx, ref = _block_case("exdwpw5", i, j, k, batch)
    y = _run_block(backend_for("fuse=v5"), ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"fuse v5 ops {i}+{j}+{k} bs{batch}")


def _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act):
    """A block made up for a test (expansion cin->ce, 3x3 depthwise stride s, projection ce->cout on an h x w map),
    a fresh input, the residual if asked, and the float64 reference (depthwise ReLU6 on)."""
    ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
    dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
    pw = make_conv(rng, ce, cout, 1, 1, 0, 1, *dw.out_shape[1:])
    x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
    res = rng.standard_normal((batch, *pw.out_shape), dtype=np.float32) if has_res else None
    r64 = ref64()
    ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=ex_act), dw, act=True), pw, act=act)
    if has_res:
        ref = ref + res
    return ex, dw, pw, x, res, ref


# (stride, cin, cout, h, w, batch, residual, ex_act, act, tile): every instance (its tile pinned) on maps that are
# not a multiple of its tile; fuse v9's small tiles on their network blocks' maps too
ODD_BLOCKS = [
    (s, ci, co, h, w, b, s == 1 and ci == co, True, False, (th, tw))
    for s, ci, co, th, tw in K.EXDWPW5_COMPILED
    for h, w, b in ((9, 10, 2), (1, 1, 1))
]
ODD_BLOCKS += [(1, 32, 32, 28, 28, 3, True, False, True, None), (2, 16, 24, 112, 112, 1, False, True, False, None)]
ODD_BLOCKS += [(1, 24, 24, 56, 56, 1, True, True, False, (4, 8)), (2, 24, 32, 56, 56, 2, False, True, False, (4, 4))]


@pytest.mark.gpu
@pytest.mark.parametrize(
    "shape",
    ODD_BLOCKS,
    ids=[f"s{s[0]}-c{s[1]}-o{s[2]}-{s[3]}x{s[4]}-bs{s[5]}-res{int(s[6])}-t{s[9]}" for s in ODD_BLOCKS],
)
def test_odd_fused_block_matches_float64_reference(shape, rng):
    s, cin, cout, h, w, batch, has_res, ex_act, act, tile = shape
    ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, 6 * cin, cout, h, w, batch, has_res, ex_act, act)
    be = CustomBackend(kernels="fuse=v5")
    be.force_tile5 = tile
    names: list[str] = []
    launch_all = be.launch_all
    be.launch_all = lambda launches: (names.extend(la.name for la in launches), launch_all(launches))[-1]
    y = _run_block(be, ex, dw, pw, x, res, ex_act, True, act)
    assert_close(y, ref, "fp32", "layer", what=f"fuse v5 {shape}")
    if tile is not None:
        assert names == [K.exdwpw5_kernel(s, cin, cout, tile)], names


# fuse v11: each larger-chunk build (K.EXDWPW5_BIG_CHUNK) on odd maps (a partial last tile, a 1x1 map, the residual)
# and on its network block's map, at batch 1 (EXDWPW5_BIG_CHUNK_MAX_BATCH); (stride, cin, cout, h, w, batch, residual,
# tile)
BIG_CHUNK_CASES = [
    (s, ci, co, h, w, b, s == 1 and ci == co, (th, tw))
    for s, ci, co, th, tw in K.EXDWPW5_COMPILED
    if K.exdwpw5_kernel(s, ci, co, (th, tw)) in K.EXDWPW5_BIG_CHUNK
    for h, w, b in ((9, 10, 1), (1, 1, 1), (112 if ci == 16 else 56, 112 if ci == 16 else 56, 1))
]


@pytest.mark.gpu
@pytest.mark.parametrize(
    "shape", BIG_CHUNK_CASES, ids=[f"s{c[0]}-c{c[1]}-o{c[2]}-{c[3]}x{c[4]}-bs{c[5]}-t{c[7]}" for c in BIG_CHUNK_CASES]
)
def test_big_chunk_block_matches_float64_reference(shape, rng):
    import cupy

    s, cin, cout, h, w, batch, has_res, tile = shape
    ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, 6 * cin, cout, h, w, batch, has_res, True, False)
    be = CustomBackend(kernels="fuse=v11")
    be.force_tile5 = tile
    xd = be.to_device(x)
    ho, wo = dw.out_hw(h, w)
    ys = []
    for _ in range(2):
        with be.stream:
            out = cupy.full((batch, ho, wo, cout), np.nan, cupy.float32)
        rd = be.to_device(res) if has_res else None
        launch = be._exdwpw_launch(xd, ex, True, dw, True, pw, False, rd, out, be.sms)  # min_blocks: as in a plan
        assert launch.name == K.exdwpw5_kernel(s, cin, cout, tile) + K.EXDWPW5_BIG_CHUNK[launch.name.split("_cc")[0]][0]
        be.launch_all([launch])
        ys.append(be.to_host(out))
    assert_close(ys[0], ref, "fp32", "layer", what=f"fuse v11 big chunk {shape}")
    np.testing.assert_array_equal(ys[0], ys[1], err_msg="not bit-identical on a repeat")


# fuse v25: the cluster build of the 56 -> 28 block (K.EXDWPW5_SPLIT) on odd maps and its network map at batch 1, and
# with fewer expanded channels than 2 chunks (Ce 96: the second block's chunk partly past Ce; Ce 40: no chunk for it);
# (h, w, ce, projection ReLU6)
SPLIT_CASES = [(9, 10, 144, False), (1, 1, 144, True), (56, 56, 144, False), (30, 27, 96, False), (15, 15, 40, True)]


@pytest.mark.gpu
@pytest.mark.parametrize("case", SPLIT_CASES, ids=[f"{c[0]}x{c[1]}-ce{c[2]}-act{int(c[3])}" for c in SPLIT_CASES])
def test_split_block_matches_float64_reference(case, rng):
    import cupy

    h, w, ce, act = case
    ex, dw, pw, x, _, ref = _odd_block(rng, 2, 24, ce, 32, h, w, 1, False, True, act)
    be = CustomBackend(kernels="fuse=v25")
    be.force_tile5 = (4, 4)
    xd = be.to_device(x)
    ho, wo = dw.out_hw(h, w)
    ys = []
    for _ in range(2):
        with be.stream:
            out = cupy.full((1, ho, wo, 32), np.nan, cupy.float32)
        launch = be._exdwpw_launch(xd, ex, True, dw, True, pw, act, None, out, be.sms)  # min_blocks: as in a plan
        assert launch.name == "exdwpw5_s2_c24_o32_t4x4_cc72_k2", launch.name
        assert launch.grid == (2 * -(-ho // 4) * -(-wo // 4), 1), launch.grid
        be.launch_all([launch])
        ys.append(be.to_host(out))
    assert_close(ys[0], ref, "fp32", "layer", what=f"fuse v25 split {case}")
    np.testing.assert_array_equal(ys[0], ys[1], err_msg="not bit-identical on a repeat")


# fuse v26: the cluster builds of the two 98-tile blocks (K.EXDWPW5_SPLIT's v26 entries) on their network maps at
# batch 1, odd maps, and expanded widths that leave the second block a partial chunk or none; fuse v50: the builds that
# take their place (K.EXDWPW5_RETILE: 7x7 tiles, one block per SM) on the same cases; (stride, cin, cout, h, w, ce,
# residual, projection ReLU6)
SPLIT26_CASES = [
    (2, 16, 24, 112, 112, 96, False, False),
    (2, 16, 24, 9, 10, 96, False, True),
    (2, 16, 24, 15, 17, 72, False, False),
    (2, 16, 24, 7, 7, 40, False, False),
    (1, 24, 24, 56, 56, 144, True, False),
    (1, 24, 24, 9, 10, 144, True, True),
    (1, 24, 24, 13, 11, 100, False, False),
    (1, 24, 24, 5, 6, 64, True, False),
]


@pytest.mark.gpu
@pytest.mark.parametrize("version", ["v26", "v50"], ids=["split26", "retile50"])
@pytest.mark.parametrize(
    "case", SPLIT26_CASES, ids=[f"s{c[0]}-c{c[1]}-{c[3]}x{c[4]}-ce{c[5]}-res{int(c[6])}" for c in SPLIT26_CASES]
)
def test_split26_block_matches_float64_reference(case, version, rng):
    import cupy

    s, cin, cout, h, w, ce, has_res, act = case
    ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, ce, cout, h, w, 1, has_res, True, act)
    be = CustomBackend(kernels=f"fuse={version}")
    be.force_tile5 = (4, 8)  # (the v26 plan's tile: v50 retiles its cluster build)
    xd = be.to_device(x)
    rd = be.to_device(res) if has_res else None
    ho, wo = dw.out_hw(h, w)
    want = "exdwpw5_s2_c16_o24_t4x8_cc48_k2" if s == 2 else "exdwpw5_s1_c24_o24_t4x8_cc72_k2"
    want = K.exdwpw5_retile(version).get(want, want)
    cfg = K.exdwpw5_configs()[want]
    ys = []
    for _ in range(2):
        with be.stream:
            out = cupy.full((1, ho, wo, cout), np.nan, cupy.float32)
        launch = be._exdwpw_launch(xd, ex, True, dw, True, pw, act, rd, out, be.sms)  # min_blocks: as in a plan
        assert launch.name == want, launch.name
        assert launch.grid == (cfg[10] * -(-ho // cfg[3]) * -(-wo // cfg[4]), 1), launch.grid
        be.launch_all([launch])
        ys.append(be.to_host(out))
    assert_close(ys[0], ref, "fp32", "layer", what=f"fuse {version} {want} {case}")
    np.testing.assert_array_equal(ys[0], ys[1], err_msg="not bit-identical on a repeat")


# -- fuse v7: the expansion GEMM with the depthwise conv in its epilogue (exgdw, kernels/gemm.cu) ---------------
def _exgdw_network_pairs():
    """The pairs fuse v7 takes above batch 1 (exgdw)."""
    return _network_pairs(lambda op, nxt: CustomBackend._exgdw_fusable(op.layer, nxt.layer, *op.layer.out_shape[1:]))


def _exgdw_pairs():
    return _distinct(_exgdw_network_pairs())


def test_network_has_ten_exgdw_pairs():
    """The 14x14 and 7x7 blocks: 64->384 x4, 96->576 x3 (one stride 2), 160->960 x3."""
    pairs = _exgdw_network_pairs()
    assert len(pairs) == 10, [(a.index, b.index) for a, b in pairs]
    assert len(_exgdw_pairs()) == 4


def _run_exgdw(ex, dw, x, ex_act, dw_act, force):
    """expand_depthwise with fuse=v7 and the exgdw build pinned (force = BN), on a NaN-poisoned output; the launches
    are recorded so that the test knows the kernel ran."""
    import cupy

    be = backend_for("fuse=v7")
    be.force_exgdw = force
    ran: list[str] = []
    launch_all = be.launch_all
    be.launch_all = lambda launches: (ran.extend(lc.name for lc in launches), launch_all(launches))[1]
    xd = be.to_device(x)
    nb, h, w, _ = xd.shape
    ho, wo = dw.out_hw(h, w)
    with be.stream:
        out = cupy.full((nb, ho, wo, dw.out_channels), np.nan, cupy.float32)
    y = be.expand_depthwise(xd, ex, dw, ex_act=ex_act, dw_act=dw_act, out=out)
    assert y is out
    assert ran == [K.exgdw_kernel(dw.stride, force)], (ran, be._fallbacks)
    return be.to_host(y)


@pytest.mark.gpu
@pytest.mark.parametrize("bn", list(K.EXGDW_VARIANTS))
@pytest.mark.parametrize("batch", (*BATCHES, 5))
@pytest.mark.parametrize("i,j", _exgdw_pairs(), ids=[f"ops{i}+{j}" for i, j in _exgdw_pairs()])
def test_exgdw_matches_float64_reference(i, j, batch, bn):
    net = _net()
    ex, dw = net.fused[i], net.fused[j]
    rng = _seeded("exgdw", i, j, batch)
    x = rng.standard_normal((batch, *ex.layer.in_shape), dtype=np.float32)
    idx = list(range(batch)) if batch < 64 else list(CHECK_IMAGES)
    ref = _REF64.conv2d(_REF64.conv2d(x[idx].astype(np.float64), ex.layer, act=ex.act), dw.layer, act=dw.act)
    y = _run_exgdw(ex.layer, dw.layer, x, ex.act, dw.act, bn)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"fuse v7 BN {bn} ops {i}+{j} bs{batch}")


# (cin, ce, stride, h, w, batch, ex_act): K tails, partial column tiles, several / partial images per block, 1x1 maps
ODD_EXGDW = [
    (40, 100, 1, 10, 9, 3, True),  # K = 16 + 16 + 8, CE 100 (BN 64: a 36-wide second tile), 2 images per block
    (36, 72, 2, 13, 13, 2, True),  # stride 2 on an odd map, 1 image per block
    (48, 96, 1, 1, 1, 5, True),  # 1x1 maps: 196 images per block, every tap but the centre is padding
    (64, 128, 2, 14, 14, 1, False),  # no ReLU6 on the expansion
    (44, 64, 1, 7, 7, 9, True),  # 4 images per block, the last block holds 1
    (160, 960, 1, 7, 7, 3, True),  # the 7x7 block's expansion with a partial block of images
]


@pytest.mark.gpu
@pytest.mark.parametrize("bn", list(K.EXGDW_VARIANTS))
@pytest.mark.parametrize("shape", ODD_EXGDW, ids=[f"c{s[0]}-{s[1]}s{s[2]}-{s[3]}x{s[4]}-bs{s[5]}" for s in ODD_EXGDW])
def test_odd_exgdw_matches_float64_reference(shape, bn, rng):
    ex, dw, x, ex_act, ref = _odd_pair(shape, rng)
    y = _run_exgdw(ex, dw, x, ex_act, True, bn)
    assert_close(y, ref, "fp32", "layer", what=f"fuse v7 BN {bn} {shape}")


# -- fuse v8: exdwpw5's block with larger register tiles and a split-K projection (exdwpw8, kernels/conv.cu) -------
def test_network_blocks_have_exdwpw8_builds():
    """Every small-CIN block shape of the network has at least one exdwpw8 build, and every build serves one."""
    net = _net()
    shapes = set()
    for i, j, k in _blocks():
        ex, dw, pw = net.fused[i].layer, net.fused[j].layer, net.fused[k].layer
        shapes.add((dw.stride, ex.in_channels, pw.out_channels))
        assert K.exdwpw8_builds(dw.stride, ex.in_channels, pw.out_channels), (i, j, k)
    cfgs = K.exdwpw8_configs()
    assert {(c["S"], c["CIN"], c["COUT"]) for c in cfgs.values()} <= shapes, cfgs


def _run_block8(ex, dw, pw, x, res, ex_act, dw_act, act, name):
    """bottleneck with fuse=v8 and the exdwpw8 build pinned, on a NaN-poisoned output; the launches are recorded so
    that the test knows the build ran."""
    be = backend_for("fuse=v8")
    be.force_block8 = name
    ran: list[str] = []
    launch_all = be.launch_all
    be.launch_all = lambda launches: (ran.extend(lc.name for lc in launches), launch_all(launches))[1]
    y = _run_block(be, ex, dw, pw, x, res, ex_act, dw_act, act)
    assert ran == [name], (ran, be._fallbacks)
    return y


def _block8_cases():
    net = _net()
    cases = []
    for i, j, k in _blocks():
        ex, dw, pw = net.fused[i].layer, net.fused[j].layer, net.fused[k].layer
        for name in K.exdwpw8_builds(dw.stride, ex.in_channels, pw.out_channels):
            for batch in (1, 3, 64):
                cases.append(pytest.param(i, j, k, batch, name, id=f"{name}-ops{i}+{j}+{k}-bs{batch}"))
    return cases


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k,batch,name", _block8_cases())
def test_exdwpw8_block_matches_float64_reference(i, j, k, batch, name):
    ex, dw, pw, x, res, idx, ref = _block_case("exdwpw8", i, j, k, batch)
    y = _run_block8(ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, name)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y[idx], ref, "fp32", "layer", what=f"fuse v8 {name} ops {i}+{j}+{k} bs{batch}")


# (expansion factor, h, w, batch, ex_act, act) per build (the residual where the block shape has one): maps that are
# not a multiple of the tile, 1x1 maps, expanded channels not a multiple of the chunk (factor 0: ce = 4 * cin + 4, a
# partial last chunk), no ReLU6 on the expansion, ReLU6 on the output
ODD_BLOCK8 = [
    (6, 9, 10, 2, True, False),
    (6, 1, 1, 1, True, False),
    (0, 13, 11, 2, False, True),
]


def _odd_block8_cases():
    cases = []
    for name, c in K.exdwpw8_configs().items():
        for mult, h, w, batch, ex_act, act in ODD_BLOCK8:
            ce = mult * c["CIN"] if mult else 4 * c["CIN"] + 4
            res = c["S"] == 1 and c["CIN"] == c["COUT"]
            cases.append(pytest.param(name, ce, h, w, batch, res, ex_act, act, id=f"{name}-ce{ce}-{h}x{w}-bs{batch}"))
    return cases


@pytest.mark.gpu
@pytest.mark.parametrize("name,ce,h,w,batch,has_res,ex_act,act", _odd_block8_cases())
def test_odd_exdwpw8_block_matches_float64_reference(name, ce, h, w, batch, has_res, ex_act, act, rng):
    c = K.exdwpw8_configs()[name]
    ex, dw, pw, x, res, ref = _odd_block(rng, c["S"], c["CIN"], ce, c["COUT"], h, w, batch, has_res, ex_act, act)
    y = _run_block8(ex, dw, pw, x, res, ex_act, True, act, name)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y, ref, "fp32", "layer", what=f"fuse v8 {name} {(ce, h, w, batch)}")
