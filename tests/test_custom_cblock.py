"""fuse v6 (kernels/cblock.cu exdwpw6): a whole bottleneck block as one kernel, the expanded channels split over
thread-block clusters of 8 and the projection partials reduced on chip, against NumPy float64.

Every distinct bottleneck block of MobileNetV2-1.0 whose expanded width the kernel takes, at batch 1, 3 and 8 with the
cost model's (CH, TR) and at batch 1 with EVERY valid (CH, TR) (one cluster per tile and several; the last row tile
partial; each CH build); odd shapes (maps of 1x1 and 5x7, no ReLU6 on the expansion, ReLU6 on the projection, a
residual). Outputs NaN-poisoned; fp32 per-layer tolerance; the exdwpw6 kernel must have run (no fallback); runs with
several clusters per tile are bit-identical when repeated (the fixed summation order), and the arrival counters are
zero after every launch.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls.custom import choose_exdwpw6, exdwpw6_configs
from mbv2.tolerances import assert_close
from tests.test_custom_exdw import _odd_block, _run_block
from tests.test_custom_kernels import _REF64, _net, _seeded, backend_for


def _blocks(ce_mult: int = 32):
    """(expansion, depthwise, projection) op indices of the network's distinct bottleneck blocks that exdwpw6 takes
    (expanded widths a multiple of ``ce_mult``: 32 for the builds of fuse v6 - v13, 4 with fuse v14's)."""
    net = _net()
    out, seen = [], set()
    for ex, dw, pw in zip(net.fused, net.fused[1:], net.fused[2:]):
        if not (ex.kind == dw.kind == pw.kind == "conv" and dw.input == ex.index and pw.input == dw.index):
            continue
        lx, ld, lp = ex.layer, dw.layer, pw.layer
        if not (lx.is_pointwise and ld.is_depthwise and lp.is_pointwise) or lx.out_channels % ce_mult:
            continue
        key = (lx.in_shape, lx.out_channels, ld.stride, lp.out_channels, pw.residual is None)
        if key not in seen:
            seen.add(key)
            out.append((ex.index, dw.index, pw.index))
    return out


def _block_ids(blocks):
    net = _net()
    return [
        f"ops{i}+{j}+{k}:{net.fused[i].layer.in_channels}->{net.fused[i].layer.out_channels}->"
        f"{net.fused[k].layer.out_channels}@{net.fused[i].layer.in_shape[1]}s{net.fused[j].layer.stride}"
        for i, j, k in blocks
    ]


BLOCKS = _blocks()
BLOCK_IDS = _block_ids(BLOCKS)
BLOCKS_V14 = _blocks(4)  # + the two 144-wide 56x56 blocks


def test_network_blocks_for_exdwpw6():
    # 16->96->24 s2 @112, 32->192->32 @28 (+res), 32->192->64 s2, 64->384->64 (+res), 64->384->96, 96->576->96 (+res),
    # 96->576->160 s2, 160->960->160 (+res), 160->960->320; the 144-wide blocks (144 % 32) are not taken
    assert len(BLOCKS) == 9, BLOCKS
    net = _net()
    for i, j, k in BLOCKS:
        args = _block_args(net.fused[i].layer, net.fused[j].layer, net.fused[k].layer)
        assert exdwpw6_configs(*args), (i, j, k)
        assert choose_exdwpw6(1, *args, 132) is not None


def _block_args(ex, dw, pw):
    """(h, w, cin, ce, cout, ho, wo, stride) of a block: the shape arguments of exdwpw6_configs / choose_exdwpw6."""
    h, w = ex.in_shape[1:]
    return (h, w, ex.in_channels, ex.out_channels, pw.out_channels, *dw.out_hw(h, w), dw.stride)


@functools.cache
def _block_case(i, j, k, batch):
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    rng = _seeded("exdwpw6", i, j, k, batch)
    x = rng.standard_normal((batch, *ex.layer.in_shape), dtype=np.float32)
    res = x * np.float32(0.5) if pw.residual is not None else None
    r64 = _REF64
    ref = r64.conv2d(
        r64.conv2d(r64.conv2d(x.astype(np.float64), ex.layer, act=ex.act), dw.layer, act=dw.act), pw.layer, act=pw.act
    )
    if res is not None:
        ref = ref + res
    return x, res, ref


def _run(be, ex, dw, pw, x, res, ex_act=True, dw_act=True, act=False, cfg=None):
    """One bottleneck op through exdwpw6 (``cfg`` = (CH, TR, CL) pinned, else the cost model's) by fuse v5's test
    runner (NaN-poisoned output, no fallback); the pinned build must have run (the launch list names it), and the
    arrival counters must be zero again afterwards."""
    names: list[str] = []
    launch_all = type(be).launch_all
    be.launch_all = lambda launches: (names.extend(la.name for la in launches), launch_all(be, launches))[-1]
    be._fallbacks.clear()
    be.force_block6 = cfg
    try:
        host = _run_block(be, ex, dw, pw, x, res, ex_act, dw_act, act)
    finally:
        be.force_block6 = None
        del be.launch_all
    ran = [n for n in names if n.startswith("exdwpw")]
    if cfg is not None:  # (fuse v30's expansion modes: on the fixed build of the generic one, the modes the pinned)
        base, modes, _ = K.exdwpw6_spec_parse(ran[0]) if len(ran) == 1 else (None, None, None)
        assert [base] == [K.exdwpw6_kernel(cfg[0], cfg[2], cfg[3] if len(cfg) > 3 else 256)], (cfg, names)
        if len(cfg) > 7:  # fuse v37's red_pf (2: the bulk-copy reduce): a fixed build with it
            assert modes is not None and modes[2] == cfg[7] and modes[0] == cfg[4], (cfg, names)
        elif len(cfg) > 4 and cfg[4] in K.PROJ_FIXED_ONLY:  # fuse v36's ordered projection tiles: a fixed build
            assert modes is not None and modes[0] == cfg[4] and (len(cfg) < 6 or modes[1] == cfg[5]), (cfg, names)
        else:
            assert modes is None if len(cfg) < 6 or cfg[5] < 16 else modes[1] == cfg[5], (cfg, names)
    assert not be._cnt.get().any(), "arrival counters not reset"
    return host


@pytest.mark.gpu
@pytest.mark.parametrize("batch", (1, 3, 8))
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_block_matches_float64_reference(i, j, k, batch):
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, batch)
    y = _run(backend_for("fuse=v6"), ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y, ref, "fp32", "layer", what=f"fuse v6 ops {i}+{j}+{k} bs{batch}")


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_every_configuration_matches_float64_reference(i, j, k):
    """Every (CH, TR) the host may pick for this block, at batch 1; a multi-cluster one repeated bit-identically."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    cfgs = exdwpw6_configs(*_block_args(ex.layer, dw.layer, pw.layer))
    _check_configurations(backend_for("fuse=v6"), (i, j, k), cfgs, x, res, ref, "fuse v6")


def _check_configurations(be, ijk, cfgs, x, res, ref, tag):
    """Network block ``ijk`` through each pinned configuration against its float64 reference (every output written);
    the last multi-cluster one (NG > 1: the global hand-off) repeated bit-identically."""
    net = _net()
    ex, dw, pw = (net.fused[n] for n in ijk)
    multi = None
    for cfg in cfgs:
        y = _run(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg)
        assert np.isfinite(y).all(), f"cfg {cfg}: {np.size(y) - np.isfinite(y).sum()} unwritten outputs"
        assert_close(y, ref, "fp32", "layer", what=f"{tag} ops {ijk} cfg (CH, TR, CL) = {cfg}")
        if ex.layer.out_channels // (cfg[2] * cfg[0]) > 1:
            multi = (cfg, y)
    if multi is not None:
        cfg, y = multi
        y2 = _run(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg)
        np.testing.assert_array_equal(y, y2, err_msg=f"cfg {cfg} not bit-identical on a repeat")


# (stride, cin, ce, cout, h, w, batch, residual, ex_act, act): odd maps, every CH build, flags off / on
ODD = [
    (1, 8, 64, 12, 5, 7, 2, False, True, False),  # CH 8 only one cluster (64 = 8 x 8)
    (2, 8, 96, 16, 5, 7, 3, False, False, True),  # stride 2 on an odd map, no ReLU6 on the expansion, ReLU6 after
    (1, 16, 128, 16, 9, 4, 2, True, True, False),  # residual, several clusters per tile
    (1, 20, 192, 24, 1, 1, 1, False, True, False),  # 1x1 map: every tap but the centre is padding
    (2, 12, 256, 40, 3, 3, 2, False, True, False),  # 3x3 -> 2x2
]


@pytest.mark.gpu
@pytest.mark.parametrize("fuse", ["v6", "v15", "v16", "v17", "v18", "v19", "v20", "v21"])
@pytest.mark.parametrize("shape", ODD, ids=[f"s{s[0]}-c{s[1]}-e{s[2]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD])
def test_odd_block_matches_float64_reference(shape, fuse, rng):
    """Every configuration of fuse v6's builds (fuse v15: of v13's builds at 512 threads; fuse v16: v13's builds at
    256 and 512 threads, the projection by output columns, COUT 12 / 16 / 40 leaving lanes of a column group idle;
    fuse v17: the lane tiles with each k split, pixel counts no multiple of 4) on a made-up block."""
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = dw.out_hw(h, w)
    if fuse == "v6":
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s)
    else:
        wide = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True)
        if fuse == "v15":
            cfgs = [(*c, 512) for c in wide]
        elif fuse == "v16":
            cfgs = [(*c, nt, 1) for c in wide for nt in (256, 512)]
        else:  # v17 - v21: the lane tiles of both phases, every k split CIN allows (CIN 8 / 12 / 16 / 20: 1, 2, 4)
            pc = 3 if fuse in ("v19", "v20", "v21") else 2
            cfgs = [(*c, nt, pc, ks) for c in wide for nt in (256, 512) for ks in K.ex_ks_modes(cin)[1:]]
            if fuse == "v21":  # pinned with each depthwise mapping (v20 runs the segments untimed)
                cfgs = [(*c, ds) for c in cfgs for ds in (0, 1)]
    assert cfgs
    _check_odd(backend_for(f"fuse={fuse}"), (ex, dw, pw, x, res, ref), ex_act, act, cfgs, f"fuse {fuse} {shape}")


def _check_odd(be, case, ex_act, act, cfgs, tag):
    """A made-up block (_odd_block's layers, input, residual, reference) through each pinned configuration: every
    output written, within the float64 tolerance."""
    ex, dw, pw, x, res, ref = case
    for cfg in cfgs:
        y = _run(be, ex, dw, pw, x, res, ex_act, True, act, cfg=cfg)
        assert np.isfinite(y).all(), f"cfg {cfg}: {np.size(y) - np.isfinite(y).sum()} unwritten outputs"
        assert_close(y, ref, "fp32", "layer", what=f"{tag} cfg {cfg}")


@pytest.mark.gpu
def test_compiled_builds_are_the_host_list():
    be = backend_for("fuse=v6")
    for ch in K.EXDWPW6_CH:
        assert be._fn(K.exdwpw6_kernel(ch)) is not None
    be = backend_for("fuse=v13")
    for ch, cl in K.EXDWPW6_WIDE:
        assert be._fn(K.exdwpw6_kernel(ch, cl)) is not None
    be = backend_for("fuse=v14")
    for ch, cl in K.EXDWPW6_V14:
        assert be._fn(K.exdwpw6_kernel(ch, cl)) is not None
    be = backend_for("fuse=v15")
    for ch, cl in K.EXDWPW6_T512:
        assert be._fn(K.exdwpw6_kernel(ch, cl, 512)) is not None


# -- fuse v13: the wider exdwpw6 builds (24 channels per block; clusters of 16, non-portable) -------------------------
def _wide_configs(args):
    narrow = set(exdwpw6_configs(*args))
    return [c for c in exdwpw6_configs(*args, wide=True) if c not in narrow]


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_wide_configurations_match_float64_reference(i, j, k):
    """Every configuration fuse v13 adds for this block, at batch 1 (clusters of 16 run: the launch would fail without
    the non-portable opt-in); a multi-cluster one repeated bit-identically; the counters zero after each launch."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    cfgs = _wide_configs(_block_args(ex.layer, dw.layer, pw.layer))
    if not cfgs:
        pytest.skip(f"no wider build divides CE = {ex.layer.out_channels} (EXDWPW6_WIDE {K.EXDWPW6_WIDE})")
    _check_configurations(backend_for("fuse=v13"), (i, j, k), cfgs, x, res, ref, "fuse v13")


@pytest.mark.gpu
@pytest.mark.parametrize("batch", (1, 3))
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_wide_cost_model_pick_matches_float64_reference(i, j, k, batch):
    """fuse v13's cost-model pick (the wider builds included) at batch 1 and 3 (several images: the counters'
    image index), pinned through the op."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, batch)
    be = backend_for("fuse=v13")
    cfg = choose_exdwpw6(batch, *_block_args(ex.layer, dw.layer, pw.layer), be.sms, 2, wide=True)
    y = _run(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y, ref, "fp32", "layer", what=f"fuse v13 ops {i}+{j}+{k} bs{batch} cfg {cfg}")


# -- fuse v10 (exdwpw10): the two-phase cooperative kernel (expansion + depthwise -> L2, grid barrier, projection) -----
BLOCKS10 = [b for b in BLOCKS if _net().fused[b[2]].layer.out_channels % K.EXDWPW10_PN == 0]
BLOCK10_IDS = [i for b, i in zip(BLOCKS, BLOCK_IDS) if b in BLOCKS10]


def _run10(be, ex, dw, pw, x, res, ex_act=True, dw_act=True, act=False, cfg=None):
    """One bottleneck op through exdwpw10 (``cfg`` = (CH, TR) pinned, else fuse v9's exdwpw6 pick); the kernel must
    have run (the launch list names it), NaN-poisoned output, no fallback."""
    names: list[str] = []
    launch_all = type(be).launch_all
    be.launch_all = lambda launches: (names.extend(la.name for la in launches), launch_all(be, launches))[-1]
    be._fallbacks.clear()
    be.force_block6 = cfg
    try:
        host = _run_block(be, ex, dw, pw, x, res, ex_act, dw_act, act)
    finally:
        be.force_block6 = None
        del be.launch_all
    assert [n for n in names if n.startswith("exdwpw")] == [n for n in names if n.startswith("exdwpw10")] != [], names
    return host


@pytest.mark.gpu
@pytest.mark.parametrize("batch", (1, 3, 8))
@pytest.mark.parametrize("i,j,k", BLOCKS10, ids=BLOCK10_IDS)
def test_exdwpw10_block_matches_float64_reference(i, j, k, batch):
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, batch)
    be = backend_for("fuse=v10")
    y = _run10(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act)
    assert np.isfinite(y).all(), f"{np.size(y) - np.isfinite(y).sum()} unwritten/non-finite outputs"
    assert_close(y, ref, "fp32", "layer", what=f"fuse v10 ops {i}+{j}+{k} bs{batch}")
    y2 = _run10(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act)
    np.testing.assert_array_equal(y, y2, err_msg="exdwpw10 not bit-identical on a repeat")


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS10, ids=BLOCK10_IDS)
def test_exdwpw10_every_configuration_matches_float64_reference(i, j, k):
    """Every (CH, TR) exdwpw6 may run this block with, through exdwpw10 at batch 1."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    args = _block_args(ex.layer, dw.layer, pw.layer)
    be = backend_for("fuse=v10")
    for cfg in exdwpw6_configs(*args):
        h, w, cin, ce, _, _, wo, stride = args
        if K.exdwpw10_smem(h, w, cin, ce, wo, stride, cfg[1], cfg[0]) > K.EXDWPW6_MAX_SMEM:
            continue
        y = _run10(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg)
        assert_close(y, ref, "fp32", "layer", what=f"fuse v10 ops {i}+{j}+{k} cfg (CH, TR) = {cfg}")


# odd shapes with COUT % 16 == 0: (stride, cin, ce, cout, h, w, batch, residual, ex_act, act)
ODD10 = [
    (1, 8, 64, 16, 5, 7, 2, False, True, False),
    (2, 8, 96, 32, 5, 7, 3, False, False, True),
    (1, 16, 128, 16, 9, 4, 2, True, True, False),
    (1, 20, 192, 48, 1, 1, 1, False, True, False),
    (2, 12, 256, 64, 3, 3, 2, False, True, False),
]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ODD10, ids=[f"s{s[0]}-c{s[1]}-e{s[2]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD10])
def test_exdwpw10_odd_block_matches_float64_reference(shape, rng):
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = dw.out_hw(h, w)
    be = backend_for("fuse=v10")
    for cfg in exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s):
        y = _run10(be, ex, dw, pw, x, res, ex_act, True, act, cfg=cfg)
        assert_close(y, ref, "fp32", "layer", what=f"fuse v10 {shape} cfg {cfg}")


# -- fuse v14: clusters of 4, 6 and 12 (the 144-wide 56x56 blocks; more tuner candidates elsewhere) -------------------
def test_network_blocks_for_exdwpw6_v14():
    assert len(BLOCKS_V14) == 11, BLOCKS_V14
    net = _net()
    for i, j, k in BLOCKS_V14:
        args = _block_args(net.fused[i].layer, net.fused[j].layer, net.fused[k].layer)
        assert _v14_configs(args), (i, j, k)  # every distinct block gets some v14 build


def _v14_configs(args):
    before = set(exdwpw6_configs(*args, wide=True))
    return [c for c in exdwpw6_configs(*args, wide=True, v14=True) if c not in before]


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS_V14, ids=_block_ids(BLOCKS_V14))
def test_v14_configurations_match_float64_reference(i, j, k):
    """Every configuration fuse v14 adds for this block, at batch 1 (clusters of 12 run only with the non-portable
    opt-in); a multi-cluster one repeated bit-identically; the counters zero after each launch."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    cfgs = _v14_configs(_block_args(ex.layer, dw.layer, pw.layer))
    _check_configurations(backend_for("fuse=v14"), (i, j, k), cfgs, x, res, ref, "fuse v14")


# (stride, cin, ce, cout, h, w, batch, residual, ex_act, act): several images, one and several clusters per tile
ODD_V14 = [
    (1, 8, 144, 12, 5, 7, 2, False, True, False),  # c12x12 / c24x6 / c36x4: NG = 1
    (2, 16, 288, 20, 9, 6, 3, True, False, True),  # NG = 2 (c12x12 ...) and 3 (c24x4, c16x6, c8x12), stride 2
    (1, 4, 96, 8, 1, 1, 2, True, True, False),  # 1x1 map
]


@pytest.mark.gpu
@pytest.mark.parametrize(
    "shape", ODD_V14, ids=[f"s{s[0]}-c{s[1]}-e{s[2]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD_V14]
)
def test_odd_block_v14_builds_match_float64_reference(shape, rng):
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = dw.out_hw(h, w)
    cfgs = _v14_configs((h, w, cin, ce, cout, ho, wo, s))
    assert {(c[0], c[2]) for c in cfgs} <= set(K.EXDWPW6_V14) and cfgs
    _check_odd(backend_for("fuse=v14"), (ex, dw, pw, x, res, ref), ex_act, act, cfgs, f"fuse v14 {shape}")


# -- fuse v15: v13's builds at 512 threads per block ---------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_t512_configurations_match_float64_reference(i, j, k):
    """Every configuration of v13's builds at 512 threads, at batch 1; a multi-cluster one repeated bit-identically;
    the counters zero after each launch."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    cfgs = [(*c, 512) for c in exdwpw6_configs(*_block_args(ex.layer, dw.layer, pw.layer), wide=True)]
    _check_configurations(backend_for("fuse=v15"), (i, j, k), cfgs, x, res, ref, "fuse v15")


# -- fuse v16: the projection phase by output columns (kernel argument proj_cols) ----------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v16_configurations_match_float64_and_v15_bitwise(i, j, k):
    """fuse v16: every configuration of v13's builds at 256 and 512 threads with the projection by output columns
    (pinned: proj_cols 1) against float64 (a multi-cluster one repeated bit-identically); a spread of them
    bit-identical to fuse v15's run of the same configuration (the pixel-lane projection: the same products summed in
    the same order over the block's channels)."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    wide = exdwpw6_configs(*_block_args(ex.layer, dw.layer, pw.layer), wide=True)
    cfgs = [(*c, nt, 1) for c in wide for nt in (256, 512)]  # the projection by output columns, pinned
    be16 = backend_for("fuse=v16")
    _check_configurations(be16, (i, j, k), cfgs, x, res, ref, "fuse v16")
    be15 = backend_for("fuse=v15")
    for cfg in cfgs[:: max(1, len(cfgs) // 6)]:
        y15 = _run(be15, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg[:4])
        y16 = _run(be16, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg)
        np.testing.assert_array_equal(y16, y15, err_msg=f"cfg {cfg}: fuse v16 differs from v15")


# -- fuse v17: the expansion and projection phases in lane tiles (kernel arguments ex_ks, proj_cols 2) -------------
@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v17_configurations_match_float64_and_v16_bitwise(i, j, k):
    """fuse v17: every configuration of v13's builds at 256 and 512 threads with both phases in lane tiles (pinned:
    proj_cols 2, ex_ks the rule's) against float64 (a multi-cluster one repeated bit-identically); on a spread of
    them every k split and projection mapping against float64, and ex_ks 1 with proj_cols 2 bit-identical to fuse
    v16's pixel-lane run (ex_ks 0, proj_cols 0: the same sums in the same order)."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    args = _block_args(ex.layer, dw.layer, pw.layer)
    cin = args[2]
    wide = exdwpw6_configs(*args, wide=True)
    cfgs = [(*c, nt, 2, K.ex_ks_rule(cin)) for c in wide for nt in (256, 512)]
    be17 = backend_for("fuse=v17")
    _check_configurations(be17, (i, j, k), cfgs, x, res, ref, "fuse v17")
    spread = cfgs[:: max(1, len(cfgs) // 4)]
    more = [(*c[:4], pc, ks) for c in spread for pc in (0, 1, 2) for ks in K.ex_ks_modes(cin)]
    _check_configurations(be17, (i, j, k), more, x, res, ref, "fuse v17")
    be16 = backend_for("fuse=v16")
    for cfg in spread:
        y16 = _run(be16, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=(*cfg[:4], 0))
        y17 = _run(be17, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=(*cfg[:4], 2, 1))
        np.testing.assert_array_equal(y17, y16, err_msg=f"cfg {cfg}: fuse v17 (ex_ks 1, tiles) differs from v16")


def _check_bitwise_against(ijk, fuse, pc, base, base_pc):
    """Network block ``ijk`` through every configuration of v13's builds at 256 and 512 threads with ex_ks_rule's k
    split: fuse ``fuse`` with proj_cols ``pc`` against float64 (_check_configurations), and bit-identical to fuse
    ``base`` with proj_cols ``base_pc`` on each."""
    net = _net()
    ex, dw, pw = (net.fused[n] for n in ijk)
    x, res, ref = _block_case(*ijk, 1)
    args = _block_args(ex.layer, dw.layer, pw.layer)
    ks = K.ex_ks_rule(args[2])
    cfgs = [(*c, nt) for c in exdwpw6_configs(*args, wide=True) for nt in (256, 512)]
    be, be_base = backend_for(f"fuse={fuse}"), backend_for(f"fuse={base}")
    _check_configurations(be, ijk, [(*c, pc, ks) for c in cfgs], x, res, ref, f"fuse {fuse}")
    for c in cfgs:
        y0 = _run(be_base, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=(*c, base_pc, ks))
        y1 = _run(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=(*c, pc, ks))
        np.testing.assert_array_equal(y1, y0, err_msg=f"cfg {c}: fuse {fuse} differs from {base}")


# -- fuse v30: the expansion in tiles of EC channel groups per lane, the k slices skewed (ex_ks = KS + 16 * EC) ------
def _prebuild_v30(be, generic, modes, shape):
    """The fixed builds (generic, each of modes, shape) compiled in parallel first (the disk cache): the pinned runs
    below then only load them (the backend compiles one at a time on first use)."""
    from concurrent.futures import ThreadPoolExecutor

    nvcc = K.find_nvcc()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda m: K.build_exdwpw6_spec(generic, m, be.arch, nvcc, shape), modes))


def _check_v30(case, acts, cfg, tag, fuse="v30"):
    """One block (ex, dw, pw, x, res, ref; the activations ``acts``) with configuration cfg = (CH, TR, CL, NT) and
    the projection's 2-pixel tiles through every v30 expansion mode (ex_ec_modes; on fixed builds, compiled first;
    ``fuse`` v32: the padded tiles, v33: unrolled too; v34: v17's tiles and the EC modes in boustrophedon order; v35:
    and the EC modes unrolled): every
    output written, within the float64 tolerance, the fixed build ran, and bit-identical to fuse v28's run with v17's
    tiles of the same KS (the same sums in the same order)."""
    ex, dw, pw, x, res, ref = case
    ex_act, dw_act, act = acts
    nb, cin, h, w = x.shape
    ho, wo = dw.out_hw(h, w)
    ch = cfg[0]
    modes = K.ex_version_ec_modes(cin, ch, fuse)
    assert modes and all(K.ex_padded(m) == K.ex_pad(fuse) and K.ex_full(m) == K.ex_unroll(fuse) for m in modes)
    if K.ex_snake(fuse):  # v17's tiles in that order: fixed builds too
        modes = [m for m in K.ex_v17_modes(cin, fuse) if m] + modes
        assert all(K.ex_snaked(m) for m in modes), modes
    be30, be28 = backend_for(f"fuse={fuse}"), backend_for("fuse=v28")
    generic = K.exdwpw6_kernel(ch, cfg[2], cfg[3])
    shape = (h, w, cin, ex.out_channels, pw.out_channels, ho, wo, dw.stride, cfg[1], int(ex_act), int(dw_act))
    shape += (int(act), int(res is not None))
    _prebuild_v30(be30, generic, [(3, m, 1, 1) for m in modes], shape)
    for m in modes:
        c30 = (*cfg, 3, m)
        y = _run(be30, ex, dw, pw, x, res, ex_act, dw_act, act, cfg=c30)
        assert np.isfinite(y).all(), f"cfg {c30}: {np.size(y) - np.isfinite(y).sum()} unwritten outputs"
        assert_close(y, ref, "fp32", "layer", what=f"{tag} fuse {fuse} cfg {c30}")
        y28 = _run(be28, ex, dw, pw, x, res, ex_act, dw_act, act, cfg=(*cfg, 3, m & 15))
        np.testing.assert_array_equal(y, y28, err_msg=f"{tag} cfg {c30}: fuse {fuse} differs from v28's KS {m & 15}")


def _wide_block(i, j, k):
    """Network block (i, j, k) at batch 1 as (case, activations, configuration, tag) for _check_v30 / _check_v36: at
    512 threads, a configuration with several clusters per row tile where the block has one, else the first."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    args = _block_args(ex.layer, dw.layer, pw.layer)
    wide = exdwpw6_configs(*args, wide=True)
    multi = [c for c in wide if args[3] // (c[2] * c[0]) > 1]
    cfg = (*(multi or wide)[0], 512)
    return (ex.layer, dw.layer, pw.layer, x, res, ref), (ex.act, dw.act, pw.act), cfg, f"ops {i}+{j}+{k}"


@pytest.mark.gpu
@pytest.mark.parametrize("fuse", ["v30", "v32", "v33", "v34", "v35"])
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v30_expansion_modes_match_float64_and_v28_bitwise(i, j, k, fuse):
    """fuse v30's expansion modes (v32: padded) on each network block (at 512 threads, a configuration with several
    clusters per row tile where the block has one, else the first): every mode against float64 and bit-identical to
    v28's tiles of the same KS."""
    _check_v30(*_wide_block(i, j, k), fuse)


@pytest.mark.gpu
@pytest.mark.parametrize("fuse", ["v30", "v32", "v33", "v34", "v35"])
@pytest.mark.parametrize("shape", ODD, ids=[f"s{s[0]}-c{s[1]}-e{s[2]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD])
def test_v30_expansion_modes_on_odd_blocks(shape, rng, fuse):
    """fuse v30's expansion modes (v32: padded) on the made-up blocks (pixel counts no multiple of 4, 1x1 maps, CIN 8
    - 20: KS 1 - 4), the first and the last configuration at 512 threads: against float64 and bit-identical to v28."""
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    case = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = case[1].out_hw(h, w)
    wide = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True)
    for c in {wide[0], wide[-1]}:
        if K.ex_ec_modes(cin, c[0]):
            _check_v30(case, (ex_act, True, act), (*c, 512), f"odd {shape}", fuse)


# -- fuse v36: the projection's lane tiles in the lane-pair order (proj_cols 4 / 5, fixed builds) ------------------
def _check_fixed_modes(case, acts, cfg, tag, new, old, runs, builds):
    """One block with configuration cfg = (CH, TR, CL, NT) and v34's ordered tiles of ex_ks_rule's KS (fixed builds,
    ``builds(ks)``' modes compiled first): each pair of ``runs(ks)`` = (the rest of fuse ``new``'s pinned
    configuration, the rest of fuse ``old``'s) gives every output written, within the float64 tolerance, the fixed
    build of those modes ran, and bit-identical runs (the same sums in the same order)."""
    ex, dw, pw, x, res, ref = case
    ex_act, dw_act, act = acts
    nb, cin, h, w = x.shape
    ho, wo = dw.out_hw(h, w)
    ks = K.ex_pack(K.ex_ks_rule(cin), 0, snake=True)
    be_new, be_old = backend_for(f"fuse={new}"), backend_for(f"fuse={old}")
    generic = K.exdwpw6_kernel(cfg[0], cfg[2], cfg[3])
    shape = (h, w, cin, ex.out_channels, pw.out_channels, ho, wo, dw.stride, cfg[1], int(ex_act), int(dw_act))
    shape += (int(act), int(res is not None))
    _prebuild_v30(be_new, generic, builds(ks), shape)
    for rest_new, rest_old in runs(ks):
        cn = (*cfg, *rest_new)
        y = _run(be_new, ex, dw, pw, x, res, ex_act, dw_act, act, cfg=cn)
        assert np.isfinite(y).all(), f"cfg {cn}: {np.size(y) - np.isfinite(y).sum()} unwritten outputs"
        assert_close(y, ref, "fp32", "layer", what=f"{tag} fuse {new} cfg {cn}")
        y_old = _run(be_old, ex, dw, pw, x, res, ex_act, dw_act, act, cfg=(*cfg, *rest_old))
        np.testing.assert_array_equal(y, y_old, err_msg=f"{tag} cfg {cn}: {new} differs from {old} {rest_old}")


def _check_v36(case, acts, cfg, tag):
    """fuse v36's proj_cols 4 and 5 (the lane tiles in the lane-pair order) against float64 and bit-identical to fuse
    v35's proj_cols 2 / 3 (the same units), on v34's ordered expansion tiles (_check_fixed_modes)."""
    _check_fixed_modes(case, acts, cfg, tag, "v36", "v35", lambda ks: [((pc, ks), (pc - 2, ks)) for pc in
                       K.PROJ_FIXED_ONLY], lambda ks: [(pc, ks, 1, 1) for pc in K.PROJ_ORDER_MODES])  # fmt: skip


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v36_ordered_projection_matches_float64_and_v35_bitwise(i, j, k):
    """fuse v36's ordered projection tiles on each network block (the configuration of the v30 test above): against
    float64 and bit-identical to v35's unordered tiles."""
    _check_v36(*_wide_block(i, j, k))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ODD, ids=[f"s{s[0]}-c{s[1]}-e{s[2]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD])
def test_v36_ordered_projection_on_odd_blocks(shape, rng):
    """fuse v36's ordered projection tiles on the made-up blocks (pixel counts no multiple of 4 or 2, output groups
    COUT / 4 odd, 1x1 maps), the first and the last configuration at 512 threads: against float64 and bit-identical
    to v35."""
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    case = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = case[1].out_hw(h, w)
    wide = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True)
    for c in {wide[0], wide[-1]}:
        _check_v36(case, (ex_act, True, act), (*c, 512), f"odd {shape}")


# -- fuse v37: the cluster reduce by bulk copies on mbarriers (red_pf 2, fixed builds) ----------------------------
def _check_v37(case, acts, cfg, tag):
    """fuse v37's red_pf 2 (the bulk-copy reduce, its receive buffer in the launch's shared memory) with proj_cols 3
    and 5 against float64 and bit-identical to fuse v36's red_pf 1 (the same partials added in the same order), on
    v34's ordered expansion tiles (_check_fixed_modes)."""
    _check_fixed_modes(case, acts, cfg, tag, "v37", "v36", lambda ks: [((pc, ks, 1, 2), (pc, ks, 1)) for pc in (3, 5)],
                       lambda ks: [(pc, ks, r, 1) for pc in (3, 5) for r in (1, 2)])  # fmt: skip


def _bulk_fits(args, c):
    """Whether configuration c = (CH, TR, CL, ...) of a block (_block_args ``args``) fits red_pf 2's shared memory."""
    h, w, cin, _, cout, _, wo, s = args
    return K.exdwpw6_launch_smem(h, w, cin, cout, wo, s, c[1], c[0], 0, c[2], 2) <= K.EXDWPW6_MAX_SMEM


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v37_bulk_reduce_matches_float64_and_v36_bitwise(i, j, k):
    """fuse v37's bulk-copy reduce on each network block, in the configuration of the v30 test above where its
    receive buffer fits, else the first that fits (preferring several clusters per row tile): against float64 and
    bit-identical to v36's pulls after the cluster barrier. A configuration that does not fit is refused with a
    clear error before any launch."""
    case, acts, cfg, tag = _wide_block(i, j, k)
    args = _block_args(*case[:3])
    if not _bulk_fits(args, cfg):
        ex, dw, pw, x, res, _ = case
        with pytest.raises(ValueError, match="red_pf 2's receive buffer"):
            ks = K.ex_pack(K.ex_ks_rule(args[2]), 0, snake=True)
            _run(backend_for("fuse=v37"), ex, dw, pw, x, res, *acts, cfg=(*cfg, 3, ks, 1, 2))
        wide = [c for c in exdwpw6_configs(*args, wide=True) if _bulk_fits(args, c)]
        assert wide, f"{tag}: no configuration fits red_pf 2"
        multi = [c for c in wide if args[3] // (c[2] * c[0]) > 1]
        cfg = (*(multi or wide)[0], 512)
    _check_v37(case, acts, cfg, tag)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ODD, ids=[f"s{s[0]}-c{s[1]}-e{s[2]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD])
def test_v37_bulk_reduce_on_odd_blocks(shape, rng):
    """fuse v37's bulk-copy reduce on the made-up blocks (fewer pixels than blocks per cluster: empty slices; several
    clusters per tile; 1x1 maps), the first and the last configuration at 512 threads: against float64 and
    bit-identical to v36."""
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    case = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = case[1].out_hw(h, w)
    wide = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True)
    for c in {wide[0], wide[-1]}:
        if _bulk_fits((h, w, cin, ce, cout, ho, wo, s), c):
            _check_v37(case, (ex_act, True, act), (*c, 512), f"odd {shape}")


# -- fuse v39: CE 960 in one cluster of 16 per row tile (exdwpw6_c60x16_t512) -------------------------------------
BLOCKS_960 = [b for b in BLOCKS if _net().fused[b[0]].layer.out_channels == 960]


def _v39_modes(cin):
    """The fixed-build modes the v39 tests pin on c60x16: each projection mode of the last tuner stage (2 - 5) with
    v34's ordered tiles of ex_ks_rule's KS, then each EC the 15 channel groups allow (1, 3: v35's unrolled tiles),
    each depthwise mapping; red_pf 1."""
    ks = K.ex_ks_rule(cin)
    exs = [K.ex_pack(ks, 0, snake=True)] + [m for m in K.ex_version_ec_modes(cin, 60, "v39") if m & 15 == ks]
    assert len(exs) == 3, exs  # EC 1 and 3 (15 channel groups: no EC 2)
    return [(pc, ex, 1, ds) for pc in K.PROJ_ORDER_MODES for ex in exs for ds in (0, 1)]


def test_network_blocks_for_exdwpw6_v39():
    # 160->960->160 (+res) and 160->960->320 at 7x7: one cluster of 16 blocks of 60 channels per row tile
    assert len(BLOCKS_960) == 2
    net = _net()
    for i, j, k in BLOCKS_960:
        args = _block_args(net.fused[i].layer, net.fused[j].layer, net.fused[k].layer)
        c60 = [c for c in exdwpw6_configs(*args, v39=True) if c[0] == 60]
        assert [c[1] for c in c60] == [7, 4, 3, 2, 1] and all(c[2] == 16 for c in c60), c60
        assert not [c for c in exdwpw6_configs(*args, wide=True) if c[0] * c[2] == 960]


@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS_960, ids=_block_ids(BLOCKS_960))
def test_v39_configurations_match_float64_reference(i, j, k):
    """fuse v39's c60x16 build on the 7x7 blocks: every row tiling on the generic build, then the one-row tiles (the
    one wave of most blocks) on fixed builds with every mode the tuner's later stages time (_v39_modes): every output
    written, within the float64 tolerance; a repeat bit-identical; the counters zero after each launch."""
    net = _net()
    ex, dw, pw = net.fused[i], net.fused[j], net.fused[k]
    x, res, ref = _block_case(i, j, k, 1)
    args = _block_args(ex.layer, dw.layer, pw.layer)
    be = backend_for("fuse=v39")
    cfgs = [(*c, 512) for c in exdwpw6_configs(*args, v39=True) if c[0] == 60]
    _check_configurations(be, (i, j, k), cfgs, x, res, ref, "fuse v39")
    modes = _v39_modes(args[2])
    generic = K.exdwpw6_kernel(60, 16, 512)
    shape = (*args[:7], args[7], 1, int(ex.act), int(dw.act), int(pw.act), int(pw.residual is not None))
    _prebuild_v30(be, generic, modes, shape)
    first = None
    for pc, ex_ks, _, ds in modes:
        cfg = (60, 1, 16, 512, pc, ex_ks, ds)
        y = _run(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=cfg)
        assert np.isfinite(y).all(), f"cfg {cfg}: {np.size(y) - np.isfinite(y).sum()} unwritten outputs"
        assert_close(y, ref, "fp32", "layer", what=f"fuse v39 ops {i}+{j}+{k} cfg {cfg}")
        first = first or (cfg, y)
    y2 = _run(be, ex.layer, dw.layer, pw.layer, x, res, ex.act, dw.act, pw.act, cfg=first[0])
    np.testing.assert_array_equal(first[1], y2, err_msg=f"cfg {first[0]} not bit-identical on a repeat")


ODD_960 = [
    (1, 16, 960, 40, 5, 7, 2, True, True, False),  # 5x7 map, 2 images, residual: COUT 40 (10 groups over 16 blocks)
    (2, 8, 960, 12, 3, 3, 1, False, False, True),  # 3x3 -> 2x2, no ReLU6 on the expansion, ReLU6 after
]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ODD_960, ids=[f"s{s[0]}-c{s[1]}-o{s[3]}-{s[4]}x{s[5]}-bs{s[6]}" for s in ODD_960])
def test_v39_odd_blocks(shape, rng):
    """fuse v39's c60x16 build on made-up CE 960 blocks (fewer output slices than blocks per cluster, odd maps,
    several images), every row tiling on the generic build: against float64."""
    s, cin, ce, cout, h, w, batch, has_res, ex_act, act = shape
    case = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, ex_act, act)
    ho, wo = case[1].out_hw(h, w)
    cfgs = [(*c, 512) for c in exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, v39=True) if c[0] == 60]
    assert cfgs
    _check_odd(backend_for("fuse=v39"), case, ex_act, act, cfgs, f"fuse v39 {shape}")


# -- fuse v18: the cluster reduce's loads requested early (kernel argument red_pf) ----------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v18_configurations_match_float64_and_v17_bitwise(i, j, k):
    """fuse v18 (clusters of 8 and 16: partials requested in one and two groups of 8; one cluster per tile and
    several) against float64 and bit-identical to fuse v17 (the same sums in the same order)."""
    _check_bitwise_against((i, j, k), "v18", 2, "v17", 2)


# -- fuse v19: the projection's lane tiles of 2 pixels (kernel argument proj_cols 3) --------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v19_configurations_match_float64_and_v17_bitwise(i, j, k):
    """fuse v19's 2-pixel projection tiles (proj_cols 3) against float64 and bit-identical to fuse v17's 4-pixel tiles
    (proj_cols 2: the same sums)."""
    _check_bitwise_against((i, j, k), "v19", 3, "v17", 2)


# -- fuse v20: the depthwise phase by output-row segments (kernel argument dw_segs) ---------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("i,j,k", BLOCKS, ids=BLOCK_IDS)
def test_v20_configurations_match_float64_and_v19_bitwise(i, j, k):
    """fuse v20 (row tiles of 1 - 14 rows, the last one partial; segments of 4 on 7 / 14 / 28-wide rows) against
    float64 and bit-identical to fuse v19 (the same taps in the same order)."""
    _check_bitwise_against((i, j, k), "v20", 2, "v19", 2)
