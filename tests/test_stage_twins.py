"""fuse v47 (session 37; results/NOTES.md "Session 37"): v46 + at batch 1 the exdwpw5 launches of
K.EXDWPW5_ASYNC_BUILDS on their staged twins: the early-trigger twin with STAGE_ASYNC too (kernels/conv.cu
EXDWPW5_ASYNC: the input patch and the staged weights' biases by cp.async), session 33's MBV2_STAGE=async per build
instead of for the whole process. Host tests: the predicates and names, the twin's build options (the same in a process
of any MBV2_STAGE / MBV2_PDL_TRIGGER value, so the same cache key), its shared memory, the committed batch-1 picks
replayed in v47 on the CuPy stand-in (bit-identical logits to v46 and v42), stage_launches and what it refuses, the
build-cache prefill, and that the twin compiles (nvcc here)."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K
from mbv2.errors import InputError
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_pdl_trigger import record_compiles
from tests.test_trigger_twins import V42_RUN, _committed_bs1

ROOT = Path(__file__).resolve().parent.parent
EARLY, ASYNC, PATCH = K.PDL_TRIGGER_EARLY_DEFINES[0], K.STAGE_ASYNC_DEFINES[0], K.STAGE_PATCH_DEFINES[0]
# the committed batch-1 picks' three exdwpw5 launches (plan positions 1 - 3): the first two are staged in v47
STAGED = (1, 2)


def test_v47_is_v46_but_for_the_staged_twins() -> None:
    assert [K.stage_twins(v) for v in ("v42", "v45", "v46", "v47")] == [False, False, False, True]
    assert all(f("v47") for f in (K.trigger_early, K.pwpool_exit)) and "v47" in K.KERNEL_VERSIONS["fuse"]
    _, committed = _committed_bs1()
    five = [n for n in committed if n.startswith("exdwpw5")]
    assert [committed.index(n) for n in five] == [1, 2, 3]
    assert [K.fixed_parse(n)[0] in K.EXDWPW5_ASYNC_BUILDS for n in five] == [True, True, False]
    assert K.EXDWPW5_ASYNC_BUILDS <= set(K.exdwpw5_configs())
    n = five[0] + K.STAGE_SUFFIX
    assert K.twin_parse(n) == (five[0], K.STAGE_SUFFIX) and K.generic_of(n) == K.fixed_parse(five[0])[0]
    # only exdwpw5 fixed builds have a staged twin
    six = next(x for x in committed if x.startswith("exdwpw6"))
    for x in (six + K.STAGE_SUFFIX, "block0_v4_c32_p16" + K.STAGE_SUFFIX, K.fixed_parse(five[0])[0] + K.STAGE_SUFFIX):
        assert K.twin_parse(x) == (x, None), x


def test_v47_predicates_are_v46s_but_stage_twins() -> None:
    """Every version predicate but stage_twins reads v47 as v46 (the same tuner, candidates, hand-offs and builds)."""
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert len(preds) > 20
    assert [f.__name__ for f in preds if f("v47") != f("v46")] == ["stage_twins"]
    assert [f.__name__ for f in preds if f("v48") != f("v47")] == ["patch_twins"]
    assert set(K.kernels_of("fuse", "v47")) == set(K.kernels_of("fuse", "v46")) == set(K.kernels_of("fuse", "v48"))


def _assert_twin_options(monkeypatch, position: int, kind: str, suffix: str, define: str) -> tuple:
    """The committed batch-1 plan's exdwpw5 launch at ``position``: its twin (build_fixed(kind=True)) is named
    <spec><suffix> and compiled with the fixed build's options, the early define, ``define``, then its name (the
    compile recorded, not run). Returns (the generic build, the shape)."""
    seen = record_compiles(monkeypatch)
    _, committed = _committed_bs1()
    gen, shape = K.fixed_parse(committed[position])
    spec = K.fixed_name(gen, shape)
    assert K.build_fixed(gen, shape, "90", "nvcc", **{kind: True}).name == spec + suffix
    plain = [d for d in K.fixed_defines(gen, shape) if not d.startswith("-DEXDWPW5_SPEC_NAME=")]
    assert seen[spec + suffix] == plain + [EARLY, define, f"-DEXDWPW5_SPEC_NAME={spec}{suffix}"]
    return gen, shape


@pytest.mark.parametrize("stage", ["", "async"])
@pytest.mark.parametrize("trigger", ["", "early"])
def test_staged_twin_build_options(monkeypatch, stage, trigger) -> None:
    """The twin is its fixed build's options with the early and the async define once each, then its name: the same
    options (so the same cache key) in a process of either MBV2_STAGE or MBV2_PDL_TRIGGER value."""
    monkeypatch.setenv(K.STAGE_ENV, stage)
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, trigger)
    gen, shape = _assert_twin_options(monkeypatch, 1, "staged", K.STAGE_SUFFIX, ASYNC)
    for kw in ({"early": True}, {"epoch": True}, {"flags": True}):
        with pytest.raises(ValueError, match="an early-trigger, a staged, a patch or a b0fuse twin \\(one of"):
            K.build_fixed(gen, shape, "90", None, staged=True, **kw)
    with pytest.raises(ValueError, match="only exdwpw5 builds"):
        K.build_fixed("block0_v3_c32_p16", (224, 224, 112, 112), "90", None, staged=True)


def test_staged_smem_is_the_async_buffers_more(monkeypatch) -> None:
    """exdwpw5_smem(staged=True) is what MBV2_STAGE=async gives the build: Wos [2][11 * CC] and Bps [COUT] more where
    it stages its weights (WS bit 0), nothing more where it does not."""
    monkeypatch.delenv(K.STAGE_ENV, raising=False)
    for name, (_, _, cout, _, _, cc, _, _, ws, _, _) in K.exdwpw5_configs().items():
        plain, staged = K.exdwpw5_smem(name), K.exdwpw5_smem(name, staged=True)
        assert staged - plain == 4 * (ws & 1) * (2 * 11 * cc + cout), name
        monkeypatch.setenv(K.STAGE_ENV, "async")
        assert K.exdwpw5_smem(name) == staged == K.exdwpw5_smem(name, staged=True), name
        monkeypatch.delenv(K.STAGE_ENV)


def _plan(fake_cupy, net, picks, version, stage=None, trig=None, batch=1, graph=False):  # noqa: F811
    be = fake_cupy.CustomBackend(graph=graph, kernels=f"fuse={version}", tune_picks=picks)
    be.trigger_launches, be.stage_launches = trig, stage
    be.prepare(net)
    return be, be.plan(batch).launches


def assert_batch2_plan_is(fake_cupy, net, monkeypatch, version, base) -> None:  # noqa: F811
    """``version``'s untuned batch-2 plan launches what ``base``'s does, with no fallback that names ``version`` (a
    batch-1 version: fuse v49, v50)."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: the emulated tuner is slow)
    be, two = _plan(fake_cupy, net, None, version, batch=2)
    _, ref = _plan(fake_cupy, net, None, base, batch=2)
    assert [la.name for la in two] == [la.name for la in ref]
    assert not any(version in f for f in be.info()["fallbacks"])


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_v47_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch, graph) -> None:  # noqa: F811
    """The committed batch-1 picks in v47: v46's plan but positions 1 and 2 on their staged twins (with stage=1+2+3
    the third too); the same grids, blocks and arguments, the staged twins' shared memory exdwpw5_smem(staged=True);
    the emulated logits bit-identical to v42 and v46 over poisoned runs; each twin built once."""
    import tests.test_custom_host as host
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=17)
    got, plans = {}, {}
    arms = (("v42", "v42", None), ("v46", "v46", None), ("v47", "v47", None), ("v47+3", "v47", frozenset({1, 2, 3})))
    for key, version, stage in arms:
        be, plans[key] = _plan(fake_cupy, net, picks, version, stage, graph=graph)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        assert ("stage_launches" in be.info()) == (stage is not None)
        be.poison(1)
        got[key] = be.run(x)
    for key, staged in (("v47", STAGED), ("v47+3", (1, 2, 3))):
        want = [n[: -len(K.TRIGGER_SUFFIX)] + K.STAGE_SUFFIX if i in staged else n for i, n in
                enumerate(la.name for la in plans["v46"])]  # fmt: skip
        assert [la.name for la in plans[key]] == want, key
        for i, (a, b) in enumerate(zip(plans["v46"], plans[key])):
            assert (a.grid, a.block, len(a.args), a.pdl) == (b.grid, b.block, len(b.args), b.pdl), b.name
            smem = K.exdwpw5_smem(K.generic_of(b.name), staged=True) if i in staged else a.smem
            assert b.smem == smem and (i not in staged or b.smem > a.smem), b.name
        assert np.array_equal(got["v42"].view(np.uint32), got[key].view(np.uint32)), key
    assert np.array_equal(got["v42"].view(np.uint32), got["v46"].view(np.uint32))
    staged_builds = [b for b in host.FIXED_BUILDS if b[-1] == "staged"]
    assert sorted(staged_builds) == sorted((*K.fixed_parse(committed[i]), "staged") for i in (1, 2, 3))


def test_stage_launches_refusals(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    picks, _ = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    with pytest.raises(InputError, match="no staged twin at position 0 \\(block0_v4"):
        _plan(fake_cupy, net, picks, "v47", stage=frozenset({0, 1}))
    with pytest.raises(InputError, match="no staged twin at position 4 \\(exdwpw6"):
        _plan(fake_cupy, net, picks, "v47", stage=frozenset({4}))
    with pytest.raises(InputError, match="no staged twin at position 2"):  # (not among the early-trigger twins)
        _plan(fake_cupy, net, picks, "v47", stage=frozenset({2}), trig=frozenset({1, 3}))
    with pytest.raises(InputError, match="fuse v46 has no staged twins"):
        _plan(fake_cupy, net, picks, "v46", stage=frozenset({1}))
    _, none = _plan(fake_cupy, net, picks, "v47", stage=frozenset())  # stage= : v46's plan
    assert not any(la.name.endswith(K.STAGE_SUFFIX) for la in none)


def test_v47_at_batch_2_is_v46(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 1e18)  # (untuned: the emulated tuner is slow)
    _, two = _plan(fake_cupy, net, None, "v47", batch=2)
    _, ref = _plan(fake_cupy, net, None, "v46", batch=2)
    assert [la.name for la in two] == [la.name for la in ref]
    assert not any(la.name.endswith(K.STAGE_SUFFIX) for la in two)


def test_prefill_adds_the_staged_twins(monkeypatch) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import cache_prefill

    _, committed = _committed_bs1()
    more = set(cache_prefill.builds_of_run(V42_RUN, "90", False, True))
    assert sorted(n for n, _ in more if n.endswith(K.STAGE_SUFFIX)) == sorted(
        committed[i] + K.STAGE_SUFFIX for i in STAGED
    )
    assert not any(n.endswith(K.STAGE_SUFFIX) for n, _ in cache_prefill.builds_of_run(V42_RUN, "90", False, False))
    calls = []
    monkeypatch.setattr(K, "build_fixed", lambda *a, **k: calls.append(k))
    assert cache_prefill.build(committed[1] + K.STAGE_SUFFIX, "90", "nvcc") == "fixed_staged"
    assert calls == [{"staged": True}]


def _nvcc_in(tmp_path, monkeypatch) -> str:
    """nvcc here (else skip), the build cache in tmp_path, no process-wide option set."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the twin")
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path))
    monkeypatch.delenv(K.STAGE_ENV, raising=False)
    monkeypatch.delenv(K.PDL_TRIGGER_ENV, raising=False)
    return nvcc


def test_staged_twin_compiles_under_its_name(tmp_path, monkeypatch) -> None:
    """The twin compiles (nvcc here) under its own name, to one cubin for a process of either MBV2_STAGE value."""
    nvcc = _nvcc_in(tmp_path, monkeypatch)
    _, committed = _committed_bs1()
    gen, shape = K.fixed_parse(committed[1])
    b = K.build_fixed(gen, shape, "90", nvcc, staged=True)
    assert b.path is not None and b.path.exists() and b.name == committed[1] + K.STAGE_SUFFIX
    assert b.name.encode() in b.path.read_bytes()
    early = K.build_fixed(gen, shape, "90", nvcc, early=True)
    assert early.path != b.path
    monkeypatch.setenv(K.STAGE_ENV, "async")
    assert K.build_fixed(gen, shape, "90", nvcc, staged=True).path == b.path
    # under MBV2_STAGE=async the early-trigger twin is the same code as the staged one (another name)
    assert K.build_fixed(gen, shape, "90", nvcc, early=True).path not in (b.path, early.path)
    cubins = json.dumps(sorted(p.name for p in (tmp_path / "kernels").iterdir()))
    assert cubins.count(K.STAGE_SUFFIX + "-") == 1


# fuse v48 (session 37): the third exdwpw5 launch (EXDWPW5_PATCH_BUILDS) on its patch twin (STAGE_ASYNC 2: the patch by
# cp.async only, the weights' biases by __ldg as in sync, so the same registers as sync)


def test_patch_twin_names_and_builds() -> None:
    _, committed = _committed_bs1()
    assert [K.fixed_parse(committed[i])[0] in K.EXDWPW5_PATCH_BUILDS for i in (1, 2, 3)] == [False, False, True]
    assert not K.EXDWPW5_PATCH_BUILDS & K.EXDWPW5_ASYNC_BUILDS and K.EXDWPW5_PATCH_BUILDS <= set(K.exdwpw5_configs())
    n = committed[3] + K.PATCH_SUFFIX
    assert K.twin_parse(n) == (committed[3], K.PATCH_SUFFIX) and K.generic_of(n) == K.fixed_parse(committed[3])[0]
    assert [K.patch_twins(v) for v in ("v46", "v47", "v48")] == [False, False, True] and "v48" in K.KERNEL_VERSIONS[
        "fuse"
    ]


@pytest.mark.parametrize("stage", ["", "async"])
def test_patch_twin_build_options(monkeypatch, stage) -> None:
    """The patch twin's options: the fixed build's, the early define, STAGE_ASYNC 2 once (never the process's
    STAGE_ASYNC 1), then its name: the same cache key in a process of either MBV2_STAGE value. No staged buffers in
    its shared memory."""
    monkeypatch.setenv(K.STAGE_ENV, stage)
    monkeypatch.delenv(K.PDL_TRIGGER_ENV, raising=False)
    gen, shape = _assert_twin_options(monkeypatch, 3, "patch", K.PATCH_SUFFIX, PATCH)
    with pytest.raises(ValueError, match="a staged, a patch or a b0fuse twin \\(one of"):
        K.build_fixed(gen, shape, "90", None, staged=True, patch=True)
    assert K.exdwpw5_smem(gen, staged=False) < K.exdwpw5_smem(gen, staged=True)
    assert K.exdwpw5_smem(gen) == K.exdwpw5_smem(gen, staged=stage == "async")


def test_v48_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """v48: v47's plan but position 3 on its patch twin (shared memory as sync: exdwpw5_smem(staged=False)); with
    stage=1+2+3 position 3 is staged instead; the emulated logits bit-identical to v47's."""
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=19)
    got, plans = {}, {}
    for key, version, stage in (("v47", "v47", None), ("v48", "v48", None), ("v48+3", "v48", frozenset({1, 2, 3}))):
        be, plans[key] = _plan(fake_cupy, net, picks, version, stage)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        got[key] = be.run(x)
    v47 = [la.name for la in plans["v47"]]
    assert [la.name for la in plans["v48"]] == [*v47[:3], committed[3] + K.PATCH_SUFFIX, *v47[4:]]
    assert [la.name for la in plans["v48+3"]] == [*v47[:3], committed[3] + K.STAGE_SUFFIX, *v47[4:]]
    assert plans["v48"][3].smem == plans["v47"][3].smem == K.exdwpw5_smem(K.fixed_parse(committed[3])[0], False)
    for key in ("v48", "v48+3"):
        assert np.array_equal(got["v47"].view(np.uint32), got[key].view(np.uint32)), key


def test_prefill_adds_the_patch_twin(monkeypatch) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import cache_prefill

    _, committed = _committed_bs1()
    more = set(cache_prefill.builds_of_run(V42_RUN, "90", False, True))
    assert [n for n, _ in more if n.endswith(K.PATCH_SUFFIX)] == [committed[3] + K.PATCH_SUFFIX]
    calls = []
    monkeypatch.setattr(K, "build_fixed", lambda *a, **k: calls.append(k))
    assert cache_prefill.build(committed[3] + K.PATCH_SUFFIX, "90", "nvcc") == "fixed_patch"
    assert calls == [{"patch": True}]


def test_patch_twin_compiles_with_the_sync_registers(tmp_path, monkeypatch) -> None:
    """nvcc here: the patch twin compiles under its name, with as many registers as the early-trigger (sync) twin
    (ptxas -v; the staged twin of this build has fewer: the loss session 37 measured)."""
    import subprocess

    nvcc = _nvcc_in(tmp_path, monkeypatch)
    _, committed = _committed_bs1()
    gen, shape = K.fixed_parse(committed[3])
    b = K.build_fixed(gen, shape, "90", nvcc, patch=True)
    assert b.path is not None and b.path.exists() and b.name.encode() in b.path.read_bytes()
    seen = record_compiles(monkeypatch)
    regs = {}
    for kw in ("early", "patch", "staged"):
        K.build_fixed(gen, shape, "90", nvcc, **{kw: True})
        src, defines = K.KERNEL_DIR / "conv.cu", seen[K.fixed_name(gen, shape) + {"early": K.TRIGGER_SUFFIX,
                                                  "patch": K.PATCH_SUFFIX, "staged": K.STAGE_SUFFIX}[kw]]  # fmt: skip
        cmd = K.nvcc_command(nvcc, src, tmp_path / f"{kw}.cubin", "90", verbose=True)
        cmd[1:1] = defines
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (report,) = K.parse_ptxas(proc.stdout + proc.stderr).values()
        assert report["spill_stores"] == 0, (kw, report)
        regs[kw] = report["registers"]
    assert regs["patch"] == regs["early"] > regs["staged"], regs
