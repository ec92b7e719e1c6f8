"""fuse v50 (session 42; results/NOTES.md "Session 42"): v48 + at batch 1 the exdwpw5 launches of the v26 plan's cluster
builds on K.EXDWPW5_RETILE's builds, other tilings of the same block (the two 98-tile blocks as 64 tiles of 7x7 on
clusters of 2, one block per SM). Host tests: the predicates, the builds'
configurations and grids, the committed batch-1 picks replayed in v50 on the CuPy stand-in (only the first two exdwpw5
launches change: their builds, grids and shared memory; the same arguments; the emulated logits those of v48), what
stays v48 (batch 2; a GPU too small for the grid: a fallback that says why), and the probe's variants."""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path

import numpy as np

from impls import _custom_kernels as K
from tests.test_block0_fuse import _arg
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_stage_twins import _plan, assert_batch2_plan_is
from tests.test_trigger_twins import _committed_bs1

ROOT = Path(__file__).resolve().parent.parent


def test_v50_is_v48_but_for_the_retiled_builds() -> None:
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert [f.__name__ for f in preds if f("v50") != f("v48")] == ["exdwpw5_retile"]
    assert K.exdwpw5_retile("v48") == {} and K.exdwpw5_retile("v50") == K.EXDWPW5_RETILE
    assert not K.block0_fuse("v50") and "v50" in K.KERNEL_VERSIONS["fuse"]
    assert set(K.kernels_of("fuse", "v50")) == set(K.kernels_of("fuse", "v48")) | {
        ("conv", n) for n in K.EXDWPW5_RETILE.values()
    }


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


def test_v50_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """v50: v48's plan with the first two exdwpw5 launches on the retiled builds' staged twins, their grids, shared
    memory and the same arguments; every other launch as v48's; the emulated logits v48's over poisoned runs."""
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=29)
    got, plans = {}, {}
    for version in ("v48", "v50"):
        be, plans[version] = _plan(fake_cupy, net, picks, version)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        got[version] = be.run(x)
    v48, v50 = plans["v48"], plans["v50"]
    assert len(v48) == len(v50)
    changed = [i for i, (a, b) in enumerate(zip(v48, v50)) if a.name != b.name]
    assert changed == [1, 2]
    cfgs = K.exdwpw5_configs()
    for i in changed:
        a, b = v48[i], v50[i]
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
        assert (v48[i].name, v48[i].grid, v48[i].smem) == (v50[i].name, v50[i].grid, v50[i].smem)
        assert [_arg(v) for v in v48[i].args] == [_arg(v) for v in v50[i].args]
    assert np.array_equal(got["v48"].view(np.uint32), got["v50"].view(np.uint32))


def test_v50_at_batch_2_is_v48(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    assert_batch2_plan_is(fake_cupy, net, monkeypatch, "v50", "v48")


def test_v50_says_why_a_grid_stays_v48(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """On a GPU of 100 SMs the 128-block grids do not fit one block per SM: those launches stay on v48's builds, and
    the fallback record says so."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: no picks for 100 SMs)
    be = fake_cupy.CustomBackend(graph=False, kernels="fuse=v50")
    be.prepare(net)
    be.sms = 100
    gens = [K.generic_of(la.name) for la in be.plan(1).launches if la.name.startswith("exdwpw5")]
    assert gens[:2] == list(K.EXDWPW5_RETILE)
    falls = [f for f in be.info()["fallbacks"] if f.startswith("fuse v50 -> v48")]
    assert len(falls) == 2 and all("128 blocks > 1 per SM" in f for f in falls), falls


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
