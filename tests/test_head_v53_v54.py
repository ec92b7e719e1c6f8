"""The batch-1 head, session 44 (results/NOTES.md "Session 44"). fuse v53: v51 + v31's head (head_fc: the head's
pwpool_c8 and the classifier GEMV as one pwpool_fc_c8 kernel at batch <= PWPOOL_MAX_BATCH), launched at batch 1 by PDL
after v46's exit twin as v51 launches pwpool_c8. Host tests: the predicates; the committed batch-1 picks replayed on the
CuPy stand-in (v51's plan with its last two launches replaced by one, by PDL, the exit twin before it unchanged; the
emulated logits against v51's and ONNX Runtime's); batch 2 (the fused head, plain) and 3 (v51's plan); a head the fused
kernel does not apply to (v51's head by PDL, and a fallback note that names v51). fuse v54: v51 with the head's
pwpool_c8 as pwpool_c10 (80 channels per cluster: 128 blocks, one per SM on 132 SMs) at batch 1: its fixed build, the
replayed picks (only the head launch changes: build, grid, shared memory), batch 2 (v51's plan) and a GPU too small for
one block per SM. fuse v55: v53 on pwpool_fc_c8e (the classifier slice requested before the kernel's
griddepcontrol.wait): its fixed build and the replayed picks as v53's."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import impls
from impls import _custom_kernels as K
from tests.test_block0_fuse import _arg
from tests.test_custom_host import (
    LAUNCHES,
    _head_launches,
    fake_cupy,  # noqa: F401  (the CuPy stand-in fixture)
)
from tests.test_stage_twins import _plan, assert_batch2_plan_is
from tests.test_trigger_twins import _committed_bs1

SHAPE = (49, 320, 1280, 1000, 1)  # the fused head's fixed shape at 224: HW, K, COUT, OUT, ACT


def test_v53_is_v51_but_for_the_head() -> None:
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert len(preds) > 20
    assert [f.__name__ for f in preds if f("v53") != f("v51")] == ["head_fc", "head_fc_base"]
    assert K.head_fc("v53") and not K.head_fc("v51") and K.head_fc_base("v53") == "v51"
    assert [K.head_fc_base(v) for v in ("v31", "v38")] == ["v30", "v36"]
    assert K.pwpool_exit("v53") and K.exdwpw5_retile("v53") == K.exdwpw5_retile("v51") != {}
    assert "v53" in K.KERNEL_VERSIONS["fuse"] and K.DEFAULT_VERSIONS["fuse"] == "v51"
    assert set(K.kernels_of("fuse", "v53")) - set(K.kernels_of("fuse", "v51")) == {("cblock", "pwpool_fc_c8")}


def test_v55_is_v53_but_for_the_fused_kernel() -> None:
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert [f.__name__ for f in preds if f("v55") != f("v53")] == ["head_fc_early", "head_fc_kernel"]
    assert [K.head_fc_kernel(v) for v in ("v31", "v38", "v51", "v53", "v55")] == ["pwpool_fc_c8"] * 4 + [
        "pwpool_fc_c8e"
    ]
    assert set(K.kernels_of("fuse", "v55")) - set(K.kernels_of("fuse", "v51")) == {("cblock", "pwpool_fc_c8e")}
    name = K.fixed_name("pwpool_fc_c8e", SHAPE)
    assert name == "pwpool_fc_c8e_f49_320_1280_1000_1" and K.fixed_parse(name) == ("pwpool_fc_c8e", SHAPE)
    assert K.fixed_defines("pwpool_fc_c8e", SHAPE) == [
        "-DPWPOOL_SPEC_ONLY", "-DPWPOOL_FIX_SHAPE", f"-DPWPOOL_SPEC_NAME={name}", "-DPWPOOL_SPEC_CFG_FC=2",
        "-DPWPOOL_HW=49", "-DPWPOOL_K=320", "-DPWPOOL_COUT=1280", "-DPWPOOL_OUT=1000", "-DPWPOOL_ACT=1",
    ]  # fmt: skip
    assert "pwpool_fc_c8e" in K.EXIT_HEADS and "v55" in K.KERNEL_VERSIONS["fuse"]


@pytest.mark.parametrize("version", ["v53", "v55"])
def test_v53_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch, version) -> None:  # noqa: F811
    """The committed batch-1 picks in v53: v51's plan up to its head, the launch before the head on the same exit twin;
    v51's pwpool_c8 (by PDL) and GEMV replaced by ONE pwpool_fc_c8 launch on its fixed build, by PDL, on pwpool_c8's
    input, weights, bias and pooled buffer, the logits into the plan's output; the emulated logits within the e2e
    tolerance of v51's and ONNX Runtime's over poisoned runs, bit-identical run to run, no fallback."""
    from mbv2.network import random_input
    from mbv2.tolerances import assert_close

    picks, _ = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=53)
    got, plans, bes = {}, {}, {}
    for ver in ("v51", version):
        bes[ver], plans[ver] = _plan(fake_cupy, net, picks, ver)
        assert not bes[ver].info()["fallbacks"], bes[ver].info()["fallbacks"]
        bes[ver].poison(1)
        LAUNCHES.clear()
        got[ver] = bes[ver].run(x)
    a, b = plans["v51"], plans[version]
    head = K.head_fc_kernel(version)
    assert _head_launches(a) == [("pwpool_c8", True), ("linear_gemv_v5", True)], _head_launches(a)
    assert _head_launches(b) == [(head, True)], _head_launches(b)
    assert len(b) == len(a) - 1 and a[-3].name.endswith(K.EXIT_SUFFIX)
    for la, lb in zip(a[:-2], b[:-1]):
        assert (la.name, la.grid, la.block, la.smem, la.pdl) == (lb.name, lb.grid, lb.block, lb.smem, lb.pdl)
        assert [_arg(v) for v in la.args] == [_arg(v) for v in lb.args]
    fc, pw = b[-1], a[-2]
    assert fc.name == K.fixed_name(head, SHAPE) and fc.grid == pw.grid == (160, 1)
    assert fc.smem == K.pwpool_fc_c8_smem(*SHAPE[:2], SHAPE[3]) and fc.block == pw.block == (256,)
    assert [_arg(v) for v in fc.args[:4]] == [_arg(v) for v in pw.args[:4]]
    assert [int(v) for v in fc.args[9:]] == list(SHAPE)
    assert fc.args[6].data.ptr == bes[version].plan(1).out.data.ptr
    assert [K.generic_of(n) for n in LAUNCHES] == [K.generic_of(la.name) for la in b], LAUNCHES
    assert not np.array_equal(got["v51"], got[version])  # (another summation order of the classifier)
    assert_close(got[version], got["v51"], "fp32", "e2e", what=f"emulated {version} against v51, committed picks")
    ort = impls.create("ort")
    ort.prepare(net)
    assert_close(got[version], ort.run(x), "fp32", "e2e", what=f"emulated {version}, committed picks")
    bes[version].poison(1)
    np.testing.assert_array_equal(got[version], bes[version].run(x))


@pytest.mark.parametrize("batch", [2, 3])
def test_v53_above_batch_1(fake_cupy, net, monkeypatch, batch) -> None:  # noqa: F811
    """Batch 2: v51's untuned plan with its head (pwpool_c8 and the GEMV, plain) as one plain pwpool_fc_c8 launch;
    batch 3 (above PWPOOL_MAX_BATCH): v51's plan. No fallback either way."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: the emulated tuner is slow)
    be, got = _plan(fake_cupy, net, None, "v53", batch=batch)
    _, ref = _plan(fake_cupy, net, None, "v51", batch=batch)
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    if batch > K.PWPOOL_MAX_BATCH:
        assert [la.name for la in got] == [la.name for la in ref]
        return
    assert _head_launches(ref) == [("pwpool_c8", False), ("linear_gemv_v3", False)], _head_launches(ref)
    assert _head_launches(got) == [("pwpool_fc_c8", False)], _head_launches(got)
    assert [la.name for la in got[:-1]] == [la.name for la in ref[:-2]]


def test_v53_runs_v51s_head_where_the_fused_one_does_not_apply(fake_cupy) -> None:  # noqa: F811
    """10 classes (OUT % 4 != 0): no pwpool_fc_c8; v51's head instead, pwpool_c8 by PDL after the exit twin at batch 1,
    with one fallback note that names v51; the emulated logits against NumPy float64."""
    from impls.numpy_ref import NumpyBackend
    from mbv2.model import default_network
    from mbv2.network import random_input
    from mbv2.tolerances import assert_close

    small = default_network(num_classes=10, resolution=96)
    x = random_input(small, 1, seed=530)
    ref = NumpyBackend(dtype="fp64")
    ref.prepare(small)
    be = fake_cupy.CustomBackend(kernels="fuse=v53", autotune=False)
    be.prepare(small)
    be.poison(1)
    y = be.run(x)
    assert_close(y, ref.run(x), "fp32", "e2e", what="emulated fuse v53, 10 classes")
    launches = be.plan(1).launches
    assert _head_launches(launches) == [("pwpool_c8", True), ("linear_gemv_v5", True)], _head_launches(launches)
    assert launches[-3].name.endswith(K.EXIT_SUFFIX), launches[-3].name
    notes = [f for f in be.info()["fallbacks"] if f.startswith("fuse v53 -> v51")]
    assert len(notes) == 1 and "OUT % 4 == 0" in notes[0], be.info()["fallbacks"]


def test_v54_is_v51_but_for_the_head_kernel() -> None:
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert [f.__name__ for f in preds if f("v54") != f("v51")] == ["pwpool_c10"]
    assert [K.pwpool_c10(v) for v in ("v51", "v53", "v54")] == [False, False, True]
    assert "v54" in K.KERNEL_VERSIONS["fuse"] and K.DEFAULT_VERSIONS["fuse"] == "v51"
    assert set(K.kernels_of("fuse", "v54")) - set(K.kernels_of("fuse", "v51")) == {("cblock", "pwpool_c10")}
    shape = (49, 320, 1280, 1)
    name = K.fixed_name("pwpool_c10", shape)
    assert name == "pwpool_c10_f49_320_1280_1" and K.fixed_parse(name) == ("pwpool_c10", shape)
    assert K.fixed_defines("pwpool_c10", shape) == [
        "-DPWPOOL_SPEC_ONLY", "-DPWPOOL_FIX_SHAPE", f"-DPWPOOL_SPEC_NAME={name}", "-DPWPOOL_SPEC_CFG_C10=1",
        "-DPWPOOL_HW=49", "-DPWPOOL_K=320", "-DPWPOOL_COUT=1280", "-DPWPOOL_ACT=1",
    ]  # fmt: skip
    # the kernel's layout (kernels/cblock.cu pwpool_c10_body): KW = 40, weight rows of 8 x 12, partial rows of 84
    src = (K.KERNEL_DIR / "cblock.cu").read_text()
    assert "constexpr int CPC = 80, CPW = 10, WG = 12, WR = 8 * WG, PS = CPC + 4;" in src
    assert K.pwpool_c10_smem(49, 320) == 4 * (49 * 44 + 40 * 96 + 64 * 84)
    assert "pwpool_c10" in K.L2_PERSIST_HEAD and "pwpool_c10" in K.EXIT_HEADS


def test_v54_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """The committed batch-1 picks in v54: v51's plan but the head launch, pwpool_c10 on its fixed build by PDL after
    the same exit twin: grid (128, 1), 256 threads, K.pwpool_c10_smem, pwpool_c8's arguments; the emulated logits
    v51's; no fallback."""
    from mbv2.network import random_input

    picks, _ = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=54)
    got, plans = {}, {}
    for ver in ("v51", "v54"):
        be, plans[ver] = _plan(fake_cupy, net, picks, ver)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        got[ver] = be.run(x)
    a, b = plans["v51"], plans["v54"]
    assert _head_launches(b) == [("pwpool_c10", True), ("linear_gemv_v5", True)], _head_launches(b)
    changed = [i for i, (la, lb) in enumerate(zip(a, b)) if la.name != lb.name]
    assert len(a) == len(b) and changed == [len(a) - 2] and b[-3].name.endswith(K.EXIT_SUFFIX)
    for la, lb in zip(a, b):
        assert [_arg(v) for v in la.args] == [_arg(v) for v in lb.args] and (la.block, la.pdl) == (lb.block, lb.pdl)
    pw, c10 = a[-2], b[-2]
    assert c10.name == K.fixed_name("pwpool_c10", SHAPE[:3] + SHAPE[4:]) and (pw.grid, c10.grid) == ((160, 1), (128, 1))
    assert c10.smem == K.pwpool_c10_smem(49, 320) and pw.smem == K.pwpool_c8_smem(49, 320)
    assert np.array_equal(got["v51"].view(np.uint32), got["v54"].view(np.uint32))


def test_v54_at_batch_2_is_v51(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    assert_batch2_plan_is(fake_cupy, net, monkeypatch, "v54", "v51")


def test_v54_says_why_the_head_stays_pwpool_c8(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """On 100 SMs pwpool_c10's 128 blocks do not fit one per SM: the head stays pwpool_c8 (still by PDL after the exit
    twin), and the fallback record says why; a head whose COUT is no multiple of 80 is refused too."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: no picks for 100 SMs)
    be = fake_cupy.CustomBackend(graph=False, kernels="fuse=v54")
    be.prepare(net)
    be.sms = 100
    launches = be.plan(1).launches
    assert _head_launches(launches) == [("pwpool_c8", True), ("linear_gemv_v5", True)], _head_launches(launches)
    falls = [f for f in be.info()["fallbacks"] if f.startswith("fuse v54 -> v51")]
    assert falls == ["fuse v54 -> v51 (pwpool_c8 where pwpool_c10 needs its 128 blocks <= 1 per SM (100 SMs))"], falls
    assert be._pwpool_c10_refusal(49, 320, 1792, 1) == "needs COUT % 80 == 0 (COUT 1792)"
    be.sms = 132
    assert be._pwpool_c10_refusal(49, 320, 1280, 1) == "" and be._pwpool_c10_refusal(49, 320, 1280, 2) != ""


def test_v54_pointwise_pool_op_picks_pwpool_c10(fake_cupy, rng) -> None:  # noqa: F811
    """The pointwise_pool op in v54 at batch 1: pwpool_c10 wherever COUT % 80 == 0 (in place of pwpool_c8, or of pwpool
    where COUT % 64 != 0), else v51's kernel with a note; above batch 1 v51's kernels; the emulated results against
    NumPy float64."""
    from impls.numpy_ref import NumpyBackend
    from mbv2.tolerances import assert_close
    from tests.test_custom_kernels import make_conv

    # (cin, cout, h, w, batch, the kernel)
    for cin, cout, h, w, batch, kernel in [(320, 1280, 7, 7, 1, "pwpool_c10"), (36, 80, 8, 8, 1, "pwpool_c10"),
                                           (4, 160, 1, 1, 1, "pwpool_c10"), (36, 64, 8, 8, 1, "pwpool_c8"),
                                           (8, 16, 3, 3, 1, "pwpool"), (36, 80, 8, 8, 2, "pwpool")]:  # fmt: skip
        be = fake_cupy.CustomBackend(kernels="fuse=v54")
        lay = make_conv(rng, cin, cout, 1, 1, 0, 1, h, w)
        x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
        LAUNCHES.clear()
        y = be.to_host(be.pointwise_pool(be.to_device(x), lay, act=True))
        ref = NumpyBackend(dtype="fp64").conv2d(x.astype(np.float64), lay, act=True).mean(axis=(2, 3))
        assert_close(y, ref, "fp32", "layer", what=f"pointwise_pool fuse v54 {cin}->{cout} {h}x{w} bs{batch}")
        assert LAUNCHES[-1:] == [kernel] and not any(n.startswith("pool_") for n in LAUNCHES), (cout, batch, LAUNCHES)
        notes = [f for f in be.info()["fallbacks"] if f.startswith("fuse v54 -> v51")]
        assert (notes == [f"fuse v54 -> v51 ({kernel} where pwpool_c10 needs COUT % 80 == 0 (COUT {cout}))"]) == (
            batch == 1 and kernel != "pwpool_c10"
        ), notes
