"""fuse v50 (session 42; results/NOTES.md "Session 42"): v48 + at batch 1 the exdwpw5 launches of the v26 plan's cluster
builds on K.EXDWPW5_RETILE's builds, other tilings of the same block (the two 98-tile blocks as 64 tiles of 7x7 on
clusters of 2, one block per SM); fuse v51 / v52 (session 43) retile the first / the second of them alone. Host tests:
the predicates, the builds' configurations and grids, the committed batch-1 picks replayed in each version on the CuPy
stand-in (only the retiled exdwpw5 launches change: their builds, grids and shared memory; the same arguments; the
emulated logits those of v48), what stays v48 (batch 2; a GPU too small for the grid: a fallback that says why), and
the probe's variants."""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K
from tests.test_block0_fuse import _arg
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_stage_twins import _plan, assert_batch2_plan_is
from tests.test_trigger_twins import _committed_bs1

ROOT = Path(__file__).resolve().parent.parent


# version -> the plan positions of the launches it retiles (the exdwpw5 launches are the plan's launches 1 - 3)
RETILED_AT = {"v50": [1, 2], "v51": [1], "v52": [2]}


@pytest.mark.parametrize("version", list(RETILED_AT))
def test_version_is_v48_but_for_its_retiled_builds(version) -> None:
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert [f.__name__ for f in preds if f(version) != f("v48")] == ["exdwpw5_retile"]
    olds = list(K.EXDWPW5_RETILE)
    want = {olds[i - 1]: K.EXDWPW5_RETILE[olds[i - 1]] for i in RETILED_AT[version]}
    assert K.exdwpw5_retile("v48") == {} and K.exdwpw5_retile(version) == want
    assert not K.block0_fuse(version) and version in K.KERNEL_VERSIONS["fuse"]
    assert K.DEFAULT_VERSIONS["fuse"] == "v51"  # (session 43's H100 A/B: 0.1101 (v47) -> 0.1094 ms at batch 1)
    assert set(K.kernels_of("fuse", version)) == set(K.kernels_of("fuse", "v48")) | {("conv", n) for n in want.values()}


def test_retiled_builds_are_the_same_blocks_on_grids_that_fit() -> None:
    """Each retiled build takes its old build's block (stride, CIN, COUT), DP, PT and WS on another tile, and at batch 1
    on 132 SMs a grid within its blocks per SM and shared memory for them; both are staged as their old builds were."""
    cfgs = K.exdwpw5_configs()
    blocks = []
    for old, new in K.EXDWPW5_RETILE.items():
        a, b = cfgs[old], cfgs[new]
        assert a[:3] == b[:3] and a[6:9] == b[6:9] and a[3:5] != b[3:5], (old, new)
        assert new.startswith(old[: len("exdwpw5_s2_c16_o24")])
        n = b[10] * math.ceil(56 / b[3]) * math.ceil(56 / b[4])  # (both on 56 x 56 outputs)
        assert n <= b[9] * 132, (new, n)
        blocks.append(n)
        assert (new in K.EXDWPW5_ASYNC_BUILDS) == (old in K.EXDWPW5_ASYNC_BUILDS) and new not in K.EXDWPW5_PATCH_BUILDS
        assert b[9] * (K.exdwpw5_smem(new, staged=True) + 1024) <= 228 * 1024
    assert blocks == [128, 128]


@pytest.mark.parametrize("version", list(RETILED_AT))
def test_version_replays_the_committed_batch1_picks(version, fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """v50 / v51 / v52: v48's plan with its retiled exdwpw5 launches (v50 the first two, v51 the first, v52 the second)
    on the retiled builds' staged twins, their grids, shared memory and the same arguments; every other launch as
    v48's; the emulated logits v48's over poisoned runs."""
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=29)
    got, plans = {}, {}
    for ver in ("v48", version):
        be, plans[ver] = _plan(fake_cupy, net, picks, ver)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        got[ver] = be.run(x)
    v48, got_plan = plans["v48"], plans[version]
    assert len(v48) == len(got_plan)
    changed = [i for i, (a, b) in enumerate(zip(v48, got_plan)) if a.name != b.name]
    assert changed == RETILED_AT[version]
    cfgs = K.exdwpw5_configs()
    for i in changed:
        a, b = v48[i], got_plan[i]
        old, new = K.generic_of(a.name), K.generic_of(b.name)
        assert K.EXDWPW5_RETILE[old] == new and K.twin_parse(b.name)[1] == (
            K.STAGE_SUFFIX if new in K.EXDWPW5_ASYNC_BUILDS else K.TRIGGER_SUFFIX
        )
        ho, wo = int(a.args[12]), int(a.args[13])
        c = cfgs[new]
        assert b.grid == (c[10] * math.ceil(ho / c[3]) * math.ceil(wo / c[4]), 1) != a.grid
        assert b.smem == K.exdwpw5_smem(new, staged=new in K.EXDWPW5_ASYNC_BUILDS)
        assert [_arg(v) for v in b.args] == [_arg(v) for v in a.args] and (b.block, b.pdl) == (a.block, a.pdl)
    for i in set(range(len(v48))) - set(changed):
        assert (v48[i].name, v48[i].grid, v48[i].smem) == (got_plan[i].name, got_plan[i].grid, got_plan[i].smem)
        assert [_arg(v) for v in v48[i].args] == [_arg(v) for v in got_plan[i].args]
    assert np.array_equal(got["v48"].view(np.uint32), got[version].view(np.uint32))


@pytest.mark.parametrize("version", list(RETILED_AT))
def test_version_at_batch_2_is_v48(version, fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    assert_batch2_plan_is(fake_cupy, net, monkeypatch, version, "v48")


@pytest.mark.parametrize("version", list(RETILED_AT))
def test_version_says_why_a_grid_stays_v48(version, fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """On a GPU of 100 SMs the 128-block grids do not fit one block per SM: the launches the version retiles stay on
    v48's builds, and the fallback record says so, once per launch."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: no picks for 100 SMs)
    be = fake_cupy.CustomBackend(graph=False, kernels=f"fuse={version}")
    be.prepare(net)
    be.sms = 100
    gens = [K.generic_of(la.name) for la in be.plan(1).launches if la.name.startswith("exdwpw5")]
    assert gens[:2] == list(K.EXDWPW5_RETILE)
    falls = [f for f in be.info()["fallbacks"] if f.startswith(f"fuse {version} -> v48")]
    assert len(falls) == len(RETILED_AT[version]) and all("128 blocks > 1 per SM" in f for f in falls), falls


def test_probe_variants() -> None:
    """scripts/exdwpw5_tile_probe.py: the plan's builds first, each variant a distinct name and configuration of its
    block with the plan build's DP, PT and WS; fuse v50's builds are among the probe's configurations."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import exdwpw5_tile_probe as P

    cfgs = P.variant_configs()
    gen = K.exdwpw5_configs()
    assert len(cfgs) == len(set(cfgs.values())) == 3 + sum(len(v) for v in P.VARIANTS.values())
    for name, c in cfgs.items():
        plan = gen[P.PLAN_BUILDS[c[:3]]]
        assert c[6:9] == plan[6:9], name
    for new in K.EXDWPW5_RETILE.values():
        assert gen[new] in cfgs.values(), new
