"""fuse v46 (session 33; results/NOTES.md "Session 33"): v45 + at batch 1 the head's pwpool_c8 by programmatic
dependent launch, the exdwpw6 launch before it on its exit twin: the same build compiled with PDL_TRIGGER_AT_EXIT
(kernels/cblock.cu: no explicit griddepcontrol.launch_dependents, so pwpool_c8 is scheduled as that grid's blocks exit,
after their last sums). Host tests: the one trigger line the define removes, the twin's names and build options (the
same in a process of either MBV2_PDL_TRIGGER value), what the builder and the plan refuse, the committed batch-1 picks
replayed in v46 on the CuPy stand-in (with and without v45's twins: trig=), the build-cache prefill, and that the twin
compiles (nvcc here)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K
from mbv2.errors import InputError
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_kernels_compile import SPEC_CASES
from tests.test_pdl_trigger import EARLY, TRIGGER, _device_source, record_compiles
from tests.test_trigger_twins import V42_RUN, _committed_bs1

ROOT = Path(__file__).resolve().parent.parent
EXIT = K.PDL_TRIGGER_EXIT_DEFINES[0]
SIX = SPEC_CASES[5]  # (build, modes, shape): a 7x7 exdwpw6 fixed build


def test_v46_is_v45_but_for_the_head() -> None:
    assert [K.pwpool_exit(v) for v in ("v29", "v42", "v45", "v46")] == [False, False, False, True]
    assert [K.trigger_early(v) for v in ("v45", "v46")] == [True, True]
    assert not K.pwpool_pdl("v46") and "v46" in K.KERNEL_VERSIONS["fuse"] and K.DEFAULT_VERSIONS["fuse"] == "v51"
    spec = K.exdwpw6_spec_name(*SIX)
    assert K.twin_parse(spec + K.EXIT_SUFFIX) == (spec, K.EXIT_SUFFIX)
    assert K.generic_of(spec + K.EXIT_SUFFIX) == SIX[0]
    # only exdwpw6 builds with a fixed shape have an exit twin
    for n in ("exdwpw6_c24" + K.EXIT_SUFFIX, "pwpool_c8" + K.EXIT_SUFFIX, "block0_v4_c32_p16" + K.EXIT_SUFFIX):
        assert K.twin_parse(n) == (n, None), n


def test_exit_drops_exactly_the_trigger() -> None:
    """With PDL_TRIGGER_AT_EXIT the preprocessed device code of kernels/cblock.cu is the default's less exdwpw6's one
    trigger line (so the default build is the code as before); with the early define too, the file refuses."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot preprocess kernels/cblock.cu")
    default, at_exit = _device_source(nvcc, "cblock", []), _device_source(nvcc, "cblock", [EXIT])
    diff = [d for d in difflib.ndiff(default, at_exit) if d[:1] in "+-"]
    assert diff == [f"- {TRIGGER}"], diff
    with pytest.raises(AssertionError, match="one trigger place at most"):
        _device_source(nvcc, "cblock", [EXIT, EARLY])


@pytest.mark.parametrize("process", ["", "early"])
def test_exit_twin_build_options(monkeypatch, process) -> None:
    """The twin is its build's options with PDL_TRIGGER_AT_EXIT (never the early define) and the kernel renamed
    <spec>EXIT_SUFFIX, in a process of either MBV2_PDL_TRIGGER value: the same options, so the same cache key."""
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, process)
    seen = record_compiles(monkeypatch)
    build, modes, shape = SIX
    spec = K.exdwpw6_spec_name(build, modes, shape)
    assert K.build_exdwpw6_spec(build, modes, "90", "nvcc", shape, at_exit=True).name == spec + K.EXIT_SUFFIX
    plain = [d for d in K.exdwpw6_spec_defines(build, modes, shape) if not d.startswith("-DEXDWPW6_SPEC_NAME=")]
    assert seen[spec + K.EXIT_SUFFIX] == plain + [EXIT, f"-DEXDWPW6_SPEC_NAME={spec}{K.EXIT_SUFFIX}"]
    assert K.build_exdwpw6_spec(build, modes, "90", None, shape, at_exit=True).source.startswith(
        "#define EXDWPW6_SPEC_ONLY"
    )
    for kw in ({"early": True}, {"flags": True}, {"stamp": True}):
        with pytest.raises(ValueError, match="an exit twin needs a fixed shape, no stamps, no flags and no early"):
            K.build_exdwpw6_spec(build, modes, "90", None, shape, at_exit=True, **kw)
    with pytest.raises(ValueError, match="needs a fixed shape"):
        K.build_exdwpw6_spec(build, modes, "90", None, None, at_exit=True)


def _plan(fake_cupy, net, picks, version, graph=False, trig=None, batch=1):  # noqa: F811
    be = fake_cupy.CustomBackend(graph=graph, kernels=f"fuse={version}", tune_picks=picks)
    be.trigger_launches = trig
    be.prepare(net)
    return be, be.plan(batch).launches


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_v46_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch, graph) -> None:  # noqa: F811
    """The committed batch-1 picks in v46: v45's plan but the last exdwpw6 launch (position 16) on its exit twin and
    pwpool_c8 by PDL; with trig= (no v45 twins) only those two changes against v42. The same grids, blocks, shared
    memory and arguments; the emulated logits bit-identical to v42 over poisoned runs; the twin built once."""
    import tests.test_custom_host as host
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    assert K.generic_of(committed[17]) == "pwpool_c8" and K.exdwpw6_spec_parse(committed[16])[2] is not None
    x = random_input(net, 1, seed=13)
    got, plans = {}, {}
    for key, version, trig in (("v42", "v42", None), ("v46", "v46", None), ("v46-", "v46", frozenset())):
        be, plans[key] = _plan(fake_cupy, net, picks, version, graph, trig)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        host.PDL_LAUNCHES.clear()
        got[key] = be.run(x)
        pdl = [la.name for la in plans[key] if la.pdl]
        if not graph:  # (the stand-in's captured graph replays without the launch path)
            assert sorted(host.PDL_LAUNCHES) == sorted(pdl), host.PDL_LAUNCHES
    exit_twin = committed[16] + K.EXIT_SUFFIX
    want = [n + K.TRIGGER_SUFFIX if K.trigger_twin_kind(n) and i != 16 else n for i, n in enumerate(committed)]
    want[16] = exit_twin
    assert [la.name for la in plans["v46"]] == want
    assert [la.name for la in plans["v46-"]] == [*committed[:16], exit_twin, *committed[17:]]
    for key in ("v46", "v46-"):
        assert [la.pdl for la in plans[key]] == [la.pdl or i == 17 for i, la in enumerate(plans["v42"])], key
        assert not plans["v42"][17].pdl
        for a, b in zip(plans["v42"], plans[key]):
            assert (a.grid, a.block, a.smem, len(a.args)) == (b.grid, b.block, b.smem, len(b.args)), b.name
        assert np.array_equal(got["v42"].view(np.uint32), got[key].view(np.uint32)), key
    assert [b[:3] for b in host.SPEC_BUILDS if b[3:] == ("exit",)] == [K.exdwpw6_spec_parse(committed[16])]


def test_v46_refuses_a_trigger_twin_at_the_exit_twin(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    with pytest.raises(InputError, match="position 16 runs on fuse v46's exit twin"):
        _plan(fake_cupy, net, picks, "v46", trig=frozenset({3, 16}))
    be, launches = _plan(fake_cupy, net, picks, "v46", trig=frozenset({3, 15}))
    assert [i for i, la in enumerate(launches) if la.name.endswith(K.TRIGGER_SUFFIX)] == [3, 15]
    assert launches[16].name.endswith(K.EXIT_SUFFIX) and launches[17].pdl


def test_v46_at_batch_2_is_v45(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: the emulated tuner is slow)
    _, two = _plan(fake_cupy, net, None, "v46", batch=2)
    assert not any(la.name.endswith((K.EXIT_SUFFIX, K.TRIGGER_SUFFIX)) for la in two)
    assert not any(la.pdl for la in two if K.generic_of(la.name) == "pwpool_c8")


def test_v46_falls_back_where_the_head_is_not_after_an_exdwpw6_fixed_build(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """The head pinned to pwpool (not pwpool_c8): no exit twin, no PDL head (v45's plan), and info() says why."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)
    be = fake_cupy.CustomBackend(kernels="fuse=v46")
    be.force_pwpool = "pwpool"
    be.prepare(net)
    launches = be.plan(1).launches
    assert not any(la.name.endswith(K.EXIT_SUFFIX) for la in launches)
    assert "fuse v46 -> v45 (the head is not pwpool_c8 after an exdwpw6 fixed build)" in be.info()["fallbacks"]


def test_prefill_adds_the_exit_twin(monkeypatch) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import cache_prefill

    _, committed = _committed_bs1()
    more = set(cache_prefill.builds_of_run(V42_RUN, "90", False, True))
    assert [n for n, _ in more if n.endswith(K.EXIT_SUFFIX)] == [committed[16] + K.EXIT_SUFFIX]
    calls = []
    monkeypatch.setattr(K, "build_exdwpw6_spec", lambda *a, **k: calls.append(k))
    assert cache_prefill.build(committed[16] + K.EXIT_SUFFIX, "90", "nvcc") == "exdwpw6_at_exit"
    assert calls == [{"at_exit": True}]


def test_exit_twin_compiles_under_its_name(tmp_path, monkeypatch) -> None:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the twin")
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path))
    monkeypatch.delenv(K.PDL_TRIGGER_ENV, raising=False)
    b = K.build_exdwpw6_spec(SIX[0], SIX[1], "90", nvcc, SIX[2], at_exit=True)
    assert b.path is not None and b.path.exists() and b.name.endswith(K.EXIT_SUFFIX)
    assert b.name.encode() in b.path.read_bytes()
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, "early")
    assert K.build_exdwpw6_spec(SIX[0], SIX[1], "90", nvcc, SIX[2], at_exit=True).path == b.path
    assert json.dumps(sorted(p.name for p in (tmp_path / "kernels").iterdir())).count(K.EXIT_SUFFIX) == 1
