"""fuse v45 (session 32; results/NOTES.md "Session 32"): v42's plan with every block0 v4, exdwpw5 and exdwpw6 launch
at batch 1 on its early-trigger twin, the same build compiled with PDL_TRIGGER_EARLY (the trigger right after the
input staging). Session 31's MBV2_PDL_TRIGGER=early does this to every build of a process; v45 is the same kernels as
a plan, so that v42 and v45 can be timed side by side in one process. Host tests: the predicates, the twins' names
and build options (the same cache key whatever MBV2_PDL_TRIGGER the process runs), the committed batch-1 plan
replayed in v45 on the CuPy stand-in (the same launches but for the twins, bit-identical logits to v42), what the
build-cache prefill adds, and that the twins compile (nvcc here)."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_kernels_compile import FIXED_CASES, SPEC_CASES
from tests.test_pdl_trigger import record_compiles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import cache_prefill  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EARLY = K.PDL_TRIGGER_EARLY_DEFINES[0]
FIVE = FIXED_CASES[0]  # (build, shape): batch 1's first exdwpw5 launch
SIX = SPEC_CASES[5]  # (build, modes, shape): a 7x7 exdwpw6 fixed build
V42_RUN = ROOT / "results/h200/session27/run.json"  # session 27's H200 run (fuse v42): the picks these tests replay


def _committed_bs1() -> tuple[dict, list[str]]:
    """(the autotuner's picks, the launches in order) of V42_RUN's fp32 batch-1 CUDA-graph figure."""
    run = json.loads(V42_RUN.read_text())
    bench = next(b for b in run["benchmarks"] if b["name"] == "test_e2e[custom-fp32-graph-bs1]")
    return bench["extra_info"]["tuned"], bench["extra_info"]["kernels"]


def test_v45_is_v42_but_for_the_trigger() -> None:
    """Every version predicate but trigger_early reads v45 as v42 (the same tuner, candidates and builds: v43 / v44's
    flag hand-off is not carried), and v45 needs no other kernel file build."""
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f not in (K.fuse_level, K.trigger_early)]  # fmt: skip
    assert len(preds) > 20
    assert [f.__name__ for f in preds if f("v45") != f("v42")] == []
    assert set(K.kernels_of("fuse", "v45")) == set(K.kernels_of("fuse", "v42"))
    assert [K.trigger_early(v) for v in ("v42", "v43", "v44", "v45")] == [False, False, False, True]
    assert [K.flag_handoff(v) for v in ("v42", "v43", "v44", "v45")] == [False, True, True, False]
    assert [K.flag_upstream(v) for v in ("v43", "v44", "v45")] == [False, True, False]
    assert "v45" in K.KERNEL_VERSIONS["fuse"]


def test_twin_names_parse() -> None:
    _, committed = _committed_bs1()
    kinds = [K.trigger_twin_kind(n) for n in committed]
    assert kinds == ["block0"] + ["fixed"] * 3 + ["exdwpw6"] * 13 + [None, None], list(zip(committed, kinds))
    for n, kind in zip(committed, kinds):
        assert K.twin_parse(n + K.TRIGGER_SUFFIX) == ((n, K.TRIGGER_SUFFIX) if kind else (n + K.TRIGGER_SUFFIX, None))
        assert not kind or K.generic_of(n + K.TRIGGER_SUFFIX) == K.generic_of(n)
    # generic builds and the v3 / pwpool fixed builds have no twin
    for n in ("exdwpw6_c24", SIX[0], K.fixed_name("block0_v3_c32_p16", (224, 224, 112, 112)), "pwpool_c8"):
        assert K.trigger_twin_kind(n) is None and K.twin_parse(n + K.TRIGGER_SUFFIX)[1] is None, n


@pytest.mark.parametrize("process", ["", "early"])
def test_twin_build_options(monkeypatch, process) -> None:
    """A twin is its build's options with PDL_TRIGGER_EARLY once and the kernel renamed <spec>TRIGGER_SUFFIX, in a
    process of either MBV2_PDL_TRIGGER value (the same options, so the same cache key); block0's is the whole file's
    early build under its own stem."""
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, process)
    seen = record_compiles(monkeypatch)
    b5, s5 = FIVE
    spec5 = K.fixed_name(b5, s5)
    assert K.build_fixed(b5, s5, "90", "nvcc", early=True).name == spec5 + K.TRIGGER_SUFFIX
    plain5 = [d for d in K.fixed_defines(b5, s5) if not d.startswith("-DEXDWPW5_SPEC_NAME=")]
    assert seen[spec5 + K.TRIGGER_SUFFIX] == plain5 + [EARLY, f"-DEXDWPW5_SPEC_NAME={spec5}{K.TRIGGER_SUFFIX}"]
    b6, m6, s6 = SIX
    spec6 = K.exdwpw6_spec_name(b6, m6, s6)
    assert K.build_exdwpw6_spec(b6, m6, "90", "nvcc", s6, early=True).name == spec6 + K.TRIGGER_SUFFIX
    plain6 = [d for d in K.exdwpw6_spec_defines(b6, m6, s6) if not d.startswith("-DEXDWPW6_SPEC_NAME=")]
    assert seen[spec6 + K.TRIGGER_SUFFIX] == plain6 + [EARLY, f"-DEXDWPW6_SPEC_NAME={spec6}{K.TRIGGER_SUFFIX}"]
    assert K.build_file_twin("block0", "90", "nvcc").name == "block0" + K.TRIGGER_SUFFIX
    assert seen["block0" + K.TRIGGER_SUFFIX] == [EARLY]
    K.build_one("block0", "90", "nvcc")
    assert seen["block0"] == ([EARLY] if process else [])
    # without nvcc (NVRTC) the define is a #define line in front of the source, the kernels keep their names
    assert K.build_file_twin("block0", "90", None).source.splitlines()[0] == "#define PDL_TRIGGER_EARLY 1"


def test_twin_builds_refuse() -> None:
    b6, m6, s6 = SIX
    with pytest.raises(ValueError, match="early-trigger twin needs a fixed shape"):
        K.build_exdwpw6_spec(b6, m6, "90", None, None, early=True)
    with pytest.raises(ValueError, match="early-trigger twin needs a fixed shape, no stamps and no flags"):
        K.build_exdwpw6_spec(b6, m6, "90", None, s6, flags=True, early=True)
    with pytest.raises(ValueError, match="only exdwpw5 builds have"):
        K.build_fixed("pwpool_c8", (49, 320, 1280, 1), "90", None, early=True)
    with pytest.raises(ValueError, match="only exdwpw5 builds have"):
        K.build_fixed(*FIVE, "90", None, epoch=True, early=True)
    with pytest.raises(ValueError, match="has no PDL_TRIGGER_EARLY"):
        K.build_file_twin("gemm", "90", None)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_v45_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch, graph) -> None:  # noqa: F811
    """Session 27's H200 run's batch-1 picks (results/h200/session27/run.json, v42) in v45: the committed launches in
    order with block0, the three exdwpw5 and the 13 exdwpw6 launches on their twins (the same grids, blocks, shared
    memory, arguments and PDL flags), pwpool_c8 and the GEMV as they are; each twin built once; the emulated logits
    equal v42's bit for bit over poisoned runs. At batch 2 v45's plan is v42's."""
    import tests.test_custom_host as host
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)  # (batch 1 is tuned: the picks are replayed)
    x = random_input(net, 1, seed=11)
    got, plans = {}, {}
    for v in ("v42", "v45"):
        be = fake_cupy.CustomBackend(graph=graph, kernels=f"fuse={v}", tune_picks=picks)
        be.prepare(net)
        plans[v] = be.plan(1).launches
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        got[v] = be.run(x)
        np.testing.assert_array_equal(got[v], be.run(x))
    assert [la.name for la in plans["v42"]] == committed
    want = [n + K.TRIGGER_SUFFIX if K.trigger_twin_kind(n) else n for n in committed]
    assert [la.name for la in plans["v45"]] == want
    assert sum(n.endswith(K.TRIGGER_SUFFIX) for n in want) == 17
    for a, b in zip(plans["v42"], plans["v45"]):
        assert (a.grid, a.block, a.smem, a.pdl, len(a.args)) == (b.grid, b.block, b.smem, b.pdl, len(b.args)), b.name
        for p, q in zip(a.args, b.args):  # (each backend its own buffers: the same shapes, the same scalars)
            assert type(p) is type(q) and (p.shape == q.shape if hasattr(p, "shape") and p.ndim else p == q), b.name
    assert np.array_equal(got["v42"].view(np.uint32), got["v45"].view(np.uint32))
    early = {b[0] for b in host.FIXED_BUILDS if b[2:] == ("early",)}
    assert early == {K.fixed_parse(n)[0] for n in committed[1:4]}
    six = {K.exdwpw6_spec_name(*b[:3]) for b in host.SPEC_BUILDS if b[3:] == ("early",)}
    assert six == set(committed[4:17])
    assert host.FILE_TWINS == ["block0"]
    n_builds = len(host.FIXED_BUILDS) + len(host.SPEC_BUILDS)
    again = fake_cupy.CustomBackend(graph=graph, kernels="fuse=v45", tune_picks=picks)
    again.prepare(net)
    assert [la.name for la in again.plan(1).launches] == want  # (the twins are the process's: nothing built again)
    assert len(host.FIXED_BUILDS) + len(host.SPEC_BUILDS) == n_builds and host.FILE_TWINS == ["block0"]
    if not graph:  # (batch 2 is tuned here, emulated: once is enough)
        two = [la.name for la in again.plan(2).launches]
        assert two and not any(n.endswith(K.TRIGGER_SUFFIX) for n in two), two


def test_prefill_adds_the_twins(monkeypatch) -> None:
    """cache_prefill --trigger: the committed run's exdwpw5 / exdwpw6 fixed builds' twins and block0.cu's early build,
    each dispatched to its builder with early=True (and, since session 33, fuse v46's one exit twin; since session 37,
    fuse v47's staged twins; since session 38, fuse v49's b0fuse twin)."""
    _, committed = _committed_bs1()
    plain = set(cache_prefill.builds_of_run(V42_RUN, "90", False))
    more = set(cache_prefill.builds_of_run(V42_RUN, "90", False, True)) - plain
    assert ("block0" + K.TRIGGER_SUFFIX, "90") in more
    assert {(n + K.TRIGGER_SUFFIX, "90") for n in committed[1:17]} <= more
    twins = (K.TRIGGER_SUFFIX, K.EXIT_SUFFIX, K.STAGE_SUFFIX, K.PATCH_SUFFIX, K.B0FUSE_SUFFIX)  # (v46 - v49: ..)
    assert all(n == "block0_te" or K.twin_parse(n)[1] in twins for n, _ in more), more
    assert sum(K.twin_parse(n)[1] == K.EXIT_SUFFIX for n, _ in more) == 1  # (fuse v46's: tests/test_pwpool_exit.py)
    calls = []
    monkeypatch.setattr(K, "build_file_twin", lambda *a, **k: calls.append(("file", a, k)))
    monkeypatch.setattr(K, "build_exdwpw6_spec", lambda *a, **k: calls.append(("six", a, k)))
    monkeypatch.setattr(K, "build_fixed", lambda *a, **k: calls.append(("fixed", a, k)))
    nvcc = "/usr/local/cuda/bin/nvcc"
    assert cache_prefill.build("block0" + K.TRIGGER_SUFFIX, "90", nvcc) == "file_early"
    assert cache_prefill.build(committed[4] + K.TRIGGER_SUFFIX, "90", nvcc) == "exdwpw6_early"
    assert cache_prefill.build(committed[1] + K.TRIGGER_SUFFIX, "90", nvcc) == "fixed_early"
    assert cache_prefill.build(committed[4], "90", nvcc) == "exdwpw6"
    assert [(c[0], c[2]) for c in calls] == [("file", {}), ("six", {"early": True}), ("fixed", {"early": True}),
                                             ("six", {})]  # fmt: skip
    assert calls[0][1][0] == "block0"


@pytest.mark.parametrize("kind", ["exdwpw5", "exdwpw6"])
def test_twins_compile_under_their_names(kind, tmp_path, monkeypatch) -> None:
    """The twin compiles (nvcc, into a fresh cache), its cubin holds the kernel under the twin's name, and the same
    build in a process with MBV2_PDL_TRIGGER=early is the same cubin (a cache hit)."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the twins")
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path))
    monkeypatch.delenv(K.PDL_TRIGGER_ENV, raising=False)

    def build():
        if kind == "exdwpw5":
            return K.build_fixed(*FIVE, "90", nvcc, early=True)
        return K.build_exdwpw6_spec(SIX[0], SIX[1], "90", nvcc, SIX[2], early=True)

    b = build()
    assert b.path is not None and b.path.exists() and b.name.endswith(K.TRIGGER_SUFFIX)
    assert b.name.encode() in b.path.read_bytes()
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, "early")
    assert build().path == b.path
    assert len(list((tmp_path / "kernels").iterdir())) == 1


def test_block0_twin_holds_the_v4_kernels(tmp_path, monkeypatch) -> None:
    """kernels/block0.cu's early build names every block0 v4 build as the plain build does (the backend loads each as
    <name>TRIGGER_SUFFIX), and its stem keeps it apart from the plain build in the cache."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile kernels/block0.cu")
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path))
    monkeypatch.delenv(K.PDL_TRIGGER_ENV, raising=False)
    b = K.build_file_twin("block0", "90", nvcc)
    assert b.path is not None and b.path.name.startswith("block0" + K.TRIGGER_SUFFIX + "-sm90")
    data = b.path.read_bytes()
    assert all(n.encode() in data for n in K.BLOCK0_V4_BUILDS)


# -- session 33: the twins kept alone (CustomBackend.trigger_launches, scripts/trigger_mask.py) ---------------------


@pytest.mark.parametrize(
    ("text", "positions", "again"),
    [("", set(), ""), ("3", {3}, "3"), ("1+4-9", {1, *range(4, 10)}, "1+4-9"), (" 2 + 3 ", {2, 3}, "2+3"),
     ("5-5+0+1+2", {0, 1, 2, 5}, "0-2+5"), ("7-9+1-2", {1, 2, 7, 8, 9}, "1+2+7-9")],
)  # fmt: skip
def test_trigger_set_parse_and_format(text, positions, again) -> None:
    assert K.trigger_set_parse(text) == positions
    assert K.trigger_set_format(positions) == again
    assert K.trigger_set_parse(again) == positions


@pytest.mark.parametrize("text", ["1,2", "a", "3-1", "-2", "1++2", "1-2-3"])
def test_trigger_set_parse_refuses(text) -> None:
    from mbv2.errors import InputError

    with pytest.raises(InputError, match="expected plan positions and ranges joined by"):
        K.trigger_set_parse(text)


def test_v45_twins_only_where_asked(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """trigger_launches: the committed batch-1 picks in v45 with twins at the given positions only (one of the two
    identical 28x28 launches among them), the rest as v42's; the logits bit-identical to v42; info() names the
    positions. A position without a twin (pwpool_c8, or past the plan) is refused, naming it."""
    from mbv2.errors import InputError
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    assert committed[4] == committed[5]  # (the two 28x28 32 -> 192 -> 32 blocks: one build)
    x = random_input(net, 1, seed=12)
    got = {}
    for v, mask in (("v42", None), ("v45", frozenset({0, 2, 5, 16}))):
        be = fake_cupy.CustomBackend(graph=True, kernels=f"fuse={v}", tune_picks=picks)
        be.trigger_launches = mask
        be.prepare(net)
        names = [la.name for la in be.plan(1).launches]
        be.poison(1)
        got[v] = be.run(x)
    want = [n + K.TRIGGER_SUFFIX if i in (0, 2, 5, 16) else n for i, n in enumerate(committed)]
    assert names == want
    assert be.info()["trigger_launches"] == [0, 2, 5, 16]
    assert np.array_equal(got["v42"].view(np.uint32), got["v45"].view(np.uint32))
    for bad, what in (({3, 17}, r"position 17 \(pwpool_c8"), ({19}, r"position 19 \(the plan has 19 launches\)")):
        be = fake_cupy.CustomBackend(graph=False, kernels="fuse=v45", tune_picks=picks)
        be.trigger_launches = frozenset(bad)
        be.prepare(net)
        with pytest.raises(InputError, match=what):
            be.plan(1)


def _prefix(path: Path, names: list[str], rounds: list[list[float]]) -> str:
    """A plan_prefix_times.py JSON: each launch's per-round marginal times -> prefix times per round and medians."""
    rows, tot, prev = [], [0.0] * len(rounds[0]), 0.0
    for k, (n, m) in enumerate(zip(names, rounds)):
        tot = [a + b for a, b in zip(tot, m)]
        med = float(np.median(tot))
        rows.append({"launch": k, "name": n, "rounds_us": tot, "prefix_us": med, "marginal_us": med - prev})
        prev = med
    path.write_text(json.dumps({"rows": rows, "plan_graph_us": prev}))
    return str(path)


def test_trigger_mask_reads_each_twin_off_the_next_launch(tmp_path, capsys) -> None:
    """A twin's effect is the next launch's marginal time, v45 minus v42: here twin 0 gains 0.3 us, twin 1 loses
    0.2, twin 3 (a launch without a twin follows) gains 0.1, twin 4 is last (no launch after it: 0, not kept);
    --keep-below moves the line; --proper empties the line where all or none are kept."""
    import trigger_mask

    names = ["a", "b", "c", "d", "e"]
    base = [[5.0, 5.2, 5.1], [4.0, 4.1, 4.0], [3.0, 3.0, 3.1], [6.0, 6.0, 6.0], [2.0, 2.1, 2.0]]
    twin = [[5.0, 5.2, 5.1], [3.7, 3.8, 3.7], [3.2, 3.2, 3.3], [6.0, 6.0, 6.0], [1.9, 2.0, 1.9]]
    tn = [n + K.TRIGGER_SUFFIX if k in (0, 1, 3, 4) else n for k, n in enumerate(names)]
    pb, pt = _prefix(tmp_path / "b.json", names, base), _prefix(tmp_path / "t.json", tn, twin)
    rows = trigger_mask.effects(json.loads(Path(pb).read_text()), json.loads(Path(pt).read_text()))
    assert [(r["launch"], round(r["effect_us"], 6)) for r in rows] == [(0, -0.3), (1, 0.2), (3, -0.1), (4, 0.0)]
    assert [(round(r["lo_us"], 6), round(r["hi_us"], 6)) for r in rows] == [(-0.3, -0.3), (0.2, 0.2), (-0.1, -0.1),
                                                                             (0.0, 0.0)]  # fmt: skip
    assert trigger_mask.main([pb, pt]) == "0+3"
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "0+3" and "sum of effects -0.20 us over all twins, -0.40 us over the 2 kept" in out[-2]
    assert trigger_mask.main([pb, pt, "--keep-below", "0.25", "--quiet"]) == "0+1+3+4"
    assert trigger_mask.main([pb, pt, "--keep-below", "0.25", "--proper"]) == ""
    assert trigger_mask.main([pb, pt, "--keep-below", "-1", "--proper"]) == ""
    assert trigger_mask.main([pb, pt, "--proper"]) == "0+3"
    base_rows = json.loads(Path(pb).read_text())
    other = json.loads(Path(_prefix(tmp_path / "x.json", [*tn[:2], "x", *tn[3:]], twin)).read_text())
    with pytest.raises(SystemExit, match="launch 2 is c against x"):
        trigger_mask.effects(base_rows, other)
    short = json.loads(Path(_prefix(tmp_path / "y.json", tn[:4], twin[:4])).read_text())
    with pytest.raises(SystemExit, match="5 launches against 4"):
        trigger_mask.effects(base_rows, short)
