"""The custom backend's fp16 mode, host side, on a machine without a GPU (the NumPy stand-in of
tests/test_custom_host.py, with kernels/half.cu emulated by tests/_half_emulation.py).

Checks the fp16 plan (buffers, the stem reading the fp32 NCHW input, fp32 logits, graph capture),
every fp16 kernel version's launch arguments, the fallbacks for odd shapes and the input checks.
Says nothing about the CUDA code (tests/test_custom_fp16.py does, on a GPU).
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls.numpy_ref import NumpyBackend
from mbv2.errors import InputError
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, top1_agreement
from tests.test_custom_host import LAUNCHES, fake_cupy, ort_logits  # noqa: F401  (fixtures)

HALF_FAMILIES = ("hgemm", "hdepthwise", "hstem", "hpool", "hlinear", "hfuse", "hblock0")
# the hstem versions pinned with hblock0=v1: hblock0 v2 / v3 (v3 the default) runs the network's stem inside
# its own kernel
HSPECS = [""] + [
    f"{f}={v}" + (",hblock0=v1" if f == "hstem" else "")
    for f in HALF_FAMILIES
    for v in K.KERNEL_VERSIONS[f]
    if v != K.DEFAULT_VERSIONS[f]
]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("spec", HSPECS)
def test_fp16_plan_matches_onnxruntime_with_emulated_kernels(fake_cupy, net, ort_logits, spec, graph):  # noqa: F811
    x, ref = ort_logits
    be = fake_cupy.CustomBackend(dtype="fp16", kernels=spec, graph=graph)
    be.prepare(net)
    be.poison(2)
    y = be.run(x)
    assert y.dtype == np.float32 and y.shape == ref.shape
    assert_close(y, ref, "fp16", "e2e", what=f"emulated custom fp16 {spec or 'default'}")
    assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp16"]
    launched = set(LAUNCHES)
    # the stem reads the fp32 NCHW input: no conversion kernel, no fp32 kernel at all
    assert "h_from_nchw_f32" not in launched and "transpose_batched" not in launched
    assert all(k.startswith(("h", "f32_to_h")) for k in launched), launched
    if not spec:
        # hblock0 (v3): the first three convs (stem, the one unfused stride-1 depthwise, 32->16) as one kernel
        hb0 = K.hblock0_kernel(32, 16, K.DEFAULT_VERSIONS["hblock0"])
        assert {hb0, "hlinear_gemv"} <= launched and "hstem3x3c3_v3_nchw32" not in launched
        dw = {k for k in launched if k.startswith("hdw3_")}  # hdepthwise v4 (+ v3's and v2's stride-2 kernels)
        assert all(k.startswith(("hdw3_v4_", "hdw3_v3_", "hdw3_v2_s2")) for k in dw), dw
        assert any(k.startswith("hgemm_v3_") for k in launched)
        allowed = {k for _, k in K.default_kernels()}
        assert launched <= allowed, launched - allowed
        assert not be.info()["fallbacks"], be.info()["fallbacks"]


def test_fp16_plan_at_large_batch_uses_the_tensor_core_classifier(fake_cupy, net):  # noqa: F811
    be = fake_cupy.CustomBackend(dtype="fp16", autotune=True)
    be.TUNE_MIN_FLOP = 0
    be.prepare(net)
    plan = be.plan(9)  # above GEMV_MAX_BATCH: the classifier is an hgemm with fp32 output
    names = [launch.name for launch in plan.launches]
    assert names[-1].startswith("hgemm_v2_") and names[-1].endswith("_f32"), names[-1]
    assert plan.out.dtype == np.float32 and plan.stage_in.dtype == np.float32
    assert any(k[0] == "hgemm" for k in be._tune_cache)


def test_fp16_odd_shapes_with_emulated_kernels(fake_cupy, rng):  # noqa: F811
    from tests.test_custom_kernels import ODD_CONVS, make_conv

    for spec in ("", "hgemm=v1,hdepthwise=v1,hstem=v1", "hdepthwise=v3,hstem=v4", "hdepthwise=v4"):
        be = fake_cupy.CustomBackend(dtype="fp16", kernels=spec)
        for fam, shapes in ODD_CONVS.items():
            for cin, cout, k, stride, pad, groups, h, w, batch, act, has_res in shapes:
                lay = make_conv(rng, cin, cout, k, stride, pad, groups, h, w)
                x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
                res = rng.standard_normal((batch, *lay.out_shape), dtype=np.float32) if has_res else None
                xh = x.astype(np.float16).astype(np.float64)
                rh = None if res is None else res.astype(np.float16).astype(np.float64)
                y = be.to_host(
                    be.conv2d(be.to_device(x), lay, act=act, residual=None if res is None else be.to_device(res))
                )
                assert y.dtype == np.float32
                ref = NumpyBackend(dtype="fp64").conv2d(xh, lay, act=act, residual=rh)
                assert_close(y, ref, "fp16", "layer", what=f"fp16 {spec or 'default'} {fam} {lay.describe([])}")


def test_fp16_stem_reads_nchw_fp32(fake_cupy, rng):  # noqa: F811
    from tests.test_custom_kernels import make_conv

    for spec, kernel in (
        ("", "hstem3x3c3_v3_nchw32"),
        ("hstem=v3", "hstem3x3c3_v3_nchw32"),
        ("hstem=v2", "hstem3x3c3_nchw32"),
        ("hstem=v1", "hconv_direct_nchw32"),
        ("hstem=v4", "hstem3x3c3_v4_nchw32"),
    ):
        be = fake_cupy.CustomBackend(dtype="fp16", kernels=spec)
        be._ensure_device()
        lay = make_conv(rng, 3, 16, 3, 2, 1, 1, 9, 7)
        x = rng.standard_normal((2, 3, 9, 7), dtype=np.float32)
        LAUNCHES.clear()
        y = be.to_host(be.conv2d_nchw_input(be._cp.asarray(x), lay, act=True))
        assert LAUNCHES[0] == kernel
        ref = NumpyBackend(dtype="fp64").conv2d(x.astype(np.float64), lay, act=True)
        assert_close(y, ref, "fp16", "layer", what=f"stem {spec}")


def test_fp16_stem_op_on_half_nhwc_input(fake_cupy, rng):  # noqa: F811
    """The stem as an op on its own (conv2d on a half NHWC array, the per-layer benchmark): hstem v5 (the default) runs
    v3's kernel on it (hstem3x3c3_v3_nhwc16), v1 - v4 the direct kernel; each against float64 on the half-rounded
    input, with the residual path too; an unsupported shape (Cout % 8) falls back to the direct kernel, recorded."""
    from tests.test_custom_kernels import make_conv

    lay = make_conv(rng, 3, 16, 3, 2, 1, 1, 9, 7)
    x = rng.standard_normal((2, 3, 9, 7), dtype=np.float32).astype(np.float16).astype(np.float32)  # (to_device: NHWC)
    ho, wo = lay.out_hw(9, 7)
    res = rng.standard_normal((2, 16, ho, wo), dtype=np.float32).astype(np.float16).astype(np.float32)
    for spec, kernel in (("", "hstem3x3c3_v3_nhwc16"), ("hstem=v5", "hstem3x3c3_v3_nhwc16"),
                         ("hstem=v3", "hconv_direct_nhwc"), ("hstem=v1", "hconv_direct_nhwc")):  # fmt: skip
        be = fake_cupy.CustomBackend(dtype="fp16", kernels=spec)
        be._ensure_device()
        for r in (None, res):
            LAUNCHES.clear()
            rd = None if r is None else be.to_device(r)
            y = be.to_host(be.conv2d(be.to_device(x), lay, act=True, residual=rd))
            assert [k for k in LAUNCHES if k.startswith(("hstem", "hconv"))] == [kernel], (spec, LAUNCHES)
            r64 = None if r is None else r.astype(np.float64)
            ref = NumpyBackend(dtype="fp64").conv2d(x.astype(np.float64), lay, act=True, residual=r64)
            assert_close(y, ref, "fp16", "layer", what=f"stem op {spec or 'default'} res={r is not None}")
        assert not be.info()["fallbacks"]
    odd = make_conv(rng, 3, 12, 3, 1, 1, 1, 9, 7)  # Cout 12: no 8-channel groups
    be = fake_cupy.CustomBackend(dtype="fp16")
    be._ensure_device()
    LAUNCHES.clear()
    y = be.to_host(be.conv2d(be.to_device(x), odd, act=False))
    assert [k for k in LAUNCHES if k.startswith(("hstem", "hconv"))] == ["hconv_direct_nhwc"], LAUNCHES
    assert any("hstem v5 -> v1" in f for f in be.info()["fallbacks"])
    ref = NumpyBackend(dtype="fp64").conv2d(x.astype(np.float64), odd, act=False)
    assert_close(y, ref, "fp16", "layer", what="stem op Cout 12")


def test_fp16_input_checks(fake_cupy, net, rng):  # noqa: F811
    be = fake_cupy.CustomBackend(dtype="fp16")
    be.prepare(net)
    conv = net.fused[1].layer
    x32 = be._cp.asarray(rng.standard_normal((1, 112, 112, 32), dtype=np.float32))
    with pytest.raises(InputError, match="float16"):
        be.conv2d(x32, conv)
    xh = be.to_device(rng.standard_normal((1, 32, 112, 112), dtype=np.float32))
    assert xh.dtype == np.float16 and xh.shape == (1, 112, 112, 32)
    with pytest.raises(InputError, match="shape"):
        be.conv2d(xh, conv, out=be._cp.empty((1, 112, 112, 31), be._cp.float16))
    lin = net.fused[-1].layer
    f = be.to_device(rng.standard_normal((2, lin.in_features), dtype=np.float32))
    with pytest.raises(InputError, match="float32"):
        be.linear(f, lin, out=be._cp.empty((2, lin.out_features), be._cp.float16))
    with pytest.raises(InputError, match="fp32 only"):
        be.dw_pointwise(xh, conv, net.fused[2].layer)
    with pytest.raises(InputError, match="supports dtype"):
        fake_cupy.CustomBackend(dtype="tf32")


@pytest.mark.parametrize("cin,cout,hw,batch,has_res", [(16, 96, 12, 2, False), (24, 144, 7, 3, False),
                                                       (960, 160, 7, 1, True), (320, 1280, 7, 1, False),
                                                       (144, 24, 9, 2, True)])  # fmt: skip
def test_fp16_hgemm_v4_every_candidate_with_emulated_kernels(fake_cupy, rng, cin, cout, hw, batch, has_res):  # noqa: F811
    """hgemm v4: every autotuner candidate (v3 tiles, small-K persistent, split-K + reduce) launches
    with well-formed arguments and gives the reference result; the batch-1 cost model splits K."""
    from tests.test_custom_kernels import make_conv

    lay = make_conv(rng, cin, cout, 1, 1, 0, 1, hw, hw)
    x = rng.standard_normal((batch, cin, hw, hw), dtype=np.float32)
    res = rng.standard_normal((batch, *lay.out_shape), dtype=np.float32) if has_res else None
    ref = NumpyBackend(dtype="fp64").conv2d(
        x.astype(np.float16).astype(np.float64),
        lay,
        act=True,
        residual=None if res is None else res.astype(np.float16).astype(np.float64),
    )
    be = fake_cupy.CustomBackend(dtype="fp16", kernels="hgemm=v4", autotune=False)
    LAUNCHES.clear()
    y = be.to_host(be.conv2d(be.to_device(x), lay, act=True, residual=None if res is None else be.to_device(res)))
    assert_close(y, ref, "fp16", "layer", what=f"hgemm v4 model {cin}->{cout}")
    if cin >= 384 and batch == 1:
        assert "hgemm_v4_splitk_reduce" in LAUNCHES, LAUNCHES
    be = fake_cupy.CustomBackend(dtype="fp16", kernels="hgemm=v4", autotune=True)
    be.TUNE_MIN_FLOP = 0
    seen: list = []

    def tuned(key, cands, build, model):
        seen.extend(cands)
        assert model in cands
        out = []
        for cand in cands:
            out = build(cand)
            with be.stream:
                for launch in out:
                    be._launch(launch)
            got = be.to_host(yd)
            assert_close(got, ref, "fp16", "layer", what=f"hgemm v4 {cand} {cin}->{cout}")
            yd.fill(np.nan)
        return out

    be._ensure_device()
    be._tuned = tuned
    xd = be.to_device(x)
    rd = None if res is None else be.to_device(res)
    yd = be._h_empty((batch, hw, hw, cout))
    yd.fill(np.nan)
    be.conv2d(xd, lay, act=True, residual=rd, out=yd)
    kinds = {c[0] for c in seen}
    assert "v3" in kinds and ("sk" in kinds if cin <= 32 else True) and ("split" in kinds if cin >= 128 else True)


@pytest.mark.parametrize("ver,prefix", [("v2", "hexdw_"), ("v3", "hexdw3_")])
def test_fp16_plan_hfuse_fuses_every_expansion_pair(fake_cupy, net, ver, prefix):  # noqa: F811
    """hfuse v2 / v3: the 6 (expansion, depthwise) pairs of fp32's criterion run as hexdw kernels, no fallback."""
    for batch in (1, 64):
        be = fake_cupy.CustomBackend(dtype="fp16", kernels=f"hfuse={ver}", autotune=False)
        be.prepare(net)
        names = [launch.name for launch in be.plan(batch).launches]
        assert sum(n.startswith(prefix) for n in names) == 6, names
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        base = fake_cupy.CustomBackend(dtype="fp16", kernels="hfuse=v1", autotune=False)
        base.prepare(net)
        assert len(base.plan(batch).launches) == len(names) + 6


@pytest.mark.parametrize(
    "force", [None, (7, 1), (7, 2), (14, 5), (14, 5, 2), (7, 2, 2)], ids=["auto", "t7-cpb1", "t7-cpb2", "t14-all",
                                                                         "t14-all-b2", "t7-cpb2-b2"]
)  # fmt: skip
def test_fp16_expand_depthwise_with_emulated_kernels(fake_cupy, rng, force):  # noqa: F811
    """fp16 expand_depthwise: hexdw (hfuse v2) / hexdw3 (v3) where it applies, two kernels for CIN = 12 /
    hfuse v1."""
    from tests.test_custom_kernels import make_conv

    # (cin, ce, stride, h, w, batch, ex_act)
    shapes = [(16, 40, 2, 9, 10, 3, True), (24, 72, 1, 5, 7, 2, True), (8, 48, 2, 1, 1, 1, True),
              (32, 104, 1, 17, 9, 2, False), (24, 144, 1, 56, 56, 1, True), (12, 36, 1, 4, 4, 2, True)]  # fmt: skip
    for ver in K.KERNEL_VERSIONS["hfuse"]:
        be = fake_cupy.CustomBackend(dtype="fp16", kernels=f"hfuse={ver}")
        be.hexdw_force = force
        for cin, ce, s, h, w, batch, ex_act in shapes:
            if force is not None and force[0] not in K.HEXDW_TILES[s]:
                continue
            ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
            dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
            x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
            LAUNCHES.clear()
            y = be.to_host(be.expand_depthwise(be.to_device(x), ex, dw, ex_act=ex_act))
            fused = ver != "v1" and cin in K.EXDW_CIN
            prefix = "hexdw3_" if ver in ("v3", "v4") else "hexdw_"
            assert any(k.startswith(prefix) for k in LAUNCHES) == fused, LAUNCHES
            if fused and force is not None and len(force) > 2 and ver in ("v3", "v4"):
                assert any(k.endswith(f"_b{force[2]}") for k in LAUNCHES), LAUNCHES
            r64 = NumpyBackend(dtype="fp64")
            x16 = x.astype(np.float16).astype(np.float64)
            ref = r64.conv2d(r64.conv2d(x16, ex, act=ex_act), dw, act=True)
            assert_close(y, ref, "fp16", "layer", what=f"hfuse {ver} ex{cin}->{ce} s{s} {force}")
        assert any(f"hfuse {ver} -> v1" in f for f in be._fallbacks) == (ver != "v1"), be._fallbacks


@pytest.mark.parametrize("ver", ["v2", "v3"])
def test_fp16_plan_hfuse_autotune_candidates_with_emulated_kernels(fake_cupy, net, ver):  # noqa: F811
    """hfuse v2 / v3 at plan time: the tuner gets the model's hexdw shape, the other tiles (v3: both builds) and
    the two layers' own kernels, and launches each on the stand-in (signatures checked, kernels emulated)."""
    seen: list = []
    be = fake_cupy.CustomBackend(dtype="fp16", kernels=f"hfuse={ver}", autotune=True)
    be.TUNE_MIN_FLOP = 0
    tuned = be._tuned

    def spy(key, cands, build, model):
        if key[0] == "hfuse":
            assert model in cands and "two kernels" in cands
            for cand in cands:
                seen.append(cand)
                assert build(cand)
        return tuned(key, cands, build, model)

    be._tuned = spy
    be.prepare(net)
    be.plan(2)
    assert "two kernels" in seen and (14, 5) in seen and (7, 6) in seen, seen
    assert ((14, 5, 2) in seen and (7, 6, 2) in seen) == (ver == "v3"), seen


def test_fp16_plan_hfuse_v4_runs_the_six_blocks_as_block_kernels(fake_cupy, net):  # noqa: F811
    """hfuse v4: at batch 64 (model, no timing) the 6 small-CIN blocks are hexdwpw4 kernels (no pair, no projection
    GEMM launch of their own); at batch 1 the model keeps v3's pair + GEMM where the block grid is < SMs / 3."""
    for batch, blocks in ((64, 6), (1, 2)):
        be = fake_cupy.CustomBackend(dtype="fp16", kernels="hfuse=v4", autotune=False)
        be.prepare(net)
        names = [launch.name for launch in be.plan(batch).launches]
        assert sum(n.startswith("hexdwpw4_") for n in names) == blocks, names
        assert sum(n.startswith("hexdw3_") for n in names) == 6 - blocks, names
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        base = fake_cupy.CustomBackend(dtype="fp16", kernels="hfuse=v3", autotune=False)
        base.prepare(net)
        assert len(base.plan(batch).launches) == len(names) + blocks


@pytest.mark.parametrize("force", [None, 7, 14], ids=["auto", "t7", "t14"])
def test_fp16_bottleneck_with_emulated_kernels(fake_cupy, rng, force):  # noqa: F811
    """fp16 bottleneck: the hexdwpw4 kernel where an instance applies (with / without residual, partial tiles,
    Ce not a multiple of 32), the three layers' kernels otherwise (recorded); vs float64 on the half input."""
    from tests.test_custom_kernels import make_conv

    # (cin, ce, cout, stride, h, w, batch, residual)
    shapes = [(24, 144, 24, 1, 9, 10, 2, True), (16, 40, 24, 2, 9, 10, 3, False), (32, 104, 32, 1, 17, 9, 2, True),
              (32, 192, 64, 2, 5, 7, 1, False), (24, 72, 32, 2, 1, 1, 2, False),
              (16, 48, 16, 1, 6, 6, 2, True)]  # fmt: skip
    be = fake_cupy.CustomBackend(dtype="fp16", kernels="hfuse=v4")
    be.hexdwpw4_force = force
    for cin, ce, cout, s, h, w, batch, with_res in shapes:
        ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
        dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
        ho, wo = dw.out_hw(h, w)
        pw = make_conv(rng, ce, cout, 1, 1, 0, 1, ho, wo)
        x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
        res = rng.standard_normal((batch, cout, ho, wo), dtype=np.float32) if with_res else None
        LAUNCHES.clear()
        rd = None if res is None else be.to_device(res)
        y = be.to_host(be.bottleneck(be.to_device(x), ex, dw, pw, residual=rd))
        fused = (s, cin, cout) in {(i[0], i[2], i[3]) for i in K.HEXDWPW4_INSTANCES}
        assert any(k.startswith("hexdwpw4_") for k in LAUNCHES) == fused, LAUNCHES
        r64 = NumpyBackend(dtype="fp64")
        x16 = x.astype(np.float16).astype(np.float64)
        ref = r64.conv2d(r64.conv2d(r64.conv2d(x16, ex, act=True), dw, act=True), pw, act=False)
        if res is not None:
            ref = ref + res.astype(np.float16).astype(np.float64)
        assert_close(y, ref, "fp16", "layer", what=f"hfuse v4 bottleneck {cin}->{ce}->{cout} s{s} {h}x{w} {force}")
    assert any("hfuse v4 -> v1" in f for f in be._fallbacks), be._fallbacks


def test_fp16_plan_hfuse_v4_autotune_candidates_with_emulated_kernels(fake_cupy, net):  # noqa: F811
    """hfuse v4 at plan time: per block the tuner gets every applicable hexdwpw4 tile and v3's pair (+ GEMM), and
    launches each on the stand-in (signatures, shared-memory opt-in and grids checked; kernels emulated)."""
    seen: list = []
    be = fake_cupy.CustomBackend(dtype="fp16", kernels="hfuse=v4", autotune=True)
    be.TUNE_MIN_FLOP = 0
    tuned = be._tuned

    def spy(key, cands, build, model):
        if key[0] == "hfuse-block":
            assert model in cands and "pair" in cands
            for cand in cands:
                seen.append((key[4], cand))
                assert build(cand)
        return tuned(key, cands, build, model)

    be._tuned = spy
    be.prepare(net)
    be.plan(2)
    assert {(1, 14), (1, 7), (2, 7), (1, "pair"), (2, "pair")} <= set(seen), seen
