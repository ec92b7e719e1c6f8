"""fuse v49 (session 38; results/NOTES.md "Session 38"): v48 + at batch 1 block0 computed inside the first exdwpw5
launch (kernels/conv.cu EXDWPW5_B0FUSE, the b0fuse twin K.B0FUSE_SUFFIX of the builds of K.B0FUSE_BUILDS): one launch
fewer. Host tests: the predicates and names, the twin's build options and shared memory, the committed batch-1 picks
replayed in v49 on the CuPy stand-in (one launch fewer, its arguments, the op ranges, logits bit-identical to v42 and
v48 over poisoned runs), what stays v48 (batch 2, other plans: a fallback that says why), the build-cache prefill, and
that the twin compiles here without spills at the build's register budget."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_pdl_trigger import record_compiles
from tests.test_stage_twins import _nvcc_in, _plan, assert_batch2_plan_is
from tests.test_trigger_twins import V42_RUN, _committed_bs1

ROOT = Path(__file__).resolve().parent.parent
EARLY, ASYNC, B0 = K.PDL_TRIGGER_EARLY_DEFINES[0], K.STAGE_ASYNC_DEFINES[0], K.B0FUSE_DEFINES[0]


def test_v49_is_v48_but_for_block0_fuse() -> None:
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f is not K.fuse_level]  # fmt: skip
    assert [f.__name__ for f in preds if f("v49") != f("v48")] == ["block0_fuse"]
    assert [K.block0_fuse(v) for v in ("v47", "v48", "v49")] == [False, False, True]
    assert not K.block0_fuse("v50")  # (v49 alone: measured slower, session 39; later versions build on v48)
    assert "v49" in K.KERNEL_VERSIONS["fuse"] and set(K.kernels_of("fuse", "v49")) == set(K.kernels_of("fuse", "v48"))
    _, committed = _committed_bs1()
    assert K.twin_parse(committed[0])[0] == K.B0FUSE_BLOCK0  # (its early-trigger twin in the committed plan)
    assert K.fixed_parse(committed[1])[0] in K.B0FUSE_BUILDS and K.B0FUSE_BUILDS <= K.EXDWPW5_ASYNC_BUILDS
    n = committed[1] + K.B0FUSE_SUFFIX
    assert K.twin_parse(n) == (committed[1], K.B0FUSE_SUFFIX) and K.generic_of(n) == K.fixed_parse(committed[1])[0]
    assert K.twin_parse(K.fixed_parse(committed[1])[0] + K.B0FUSE_SUFFIX)[1] is None  # (fixed builds only)


def test_b0fuse_twin_build_options_and_smem(monkeypatch) -> None:
    """The staged twin's options and the b0fuse define, then its name (one STAGE_ASYNC 1, whatever the process runs);
    its shared memory is the staged twin's + the image patch / depthwise tile and block0's weights, two blocks per SM
    on an H100 (228 KB per SM, 1 KB per block reserved)."""
    monkeypatch.setenv(K.STAGE_ENV, "async")
    seen = record_compiles(monkeypatch)
    _, committed = _committed_bs1()
    gen, shape = K.fixed_parse(committed[1])
    spec = K.fixed_name(gen, shape)
    assert K.build_fixed(gen, shape, "90", "nvcc", b0fuse=True).name == spec + K.B0FUSE_SUFFIX
    plain = [d for d in K.fixed_defines(gen, shape) if not d.startswith("-DEXDWPW5_SPEC_NAME=")]
    assert seen[spec + K.B0FUSE_SUFFIX] == plain + [EARLY, ASYNC, B0, f"-DEXDWPW5_SPEC_NAME={spec}{K.B0FUSE_SUFFIX}"]
    with pytest.raises(ValueError, match="a patch or a b0fuse twin \\(one of"):
        K.build_fixed(gen, shape, "90", None, staged=True, b0fuse=True)
    smem = K.exdwpw5_b0_smem(gen)
    s, _, cout, th, tw, *_ = K.exdwpw5_configs()[gen]
    ih, iw = (th - 1) * s + 3, (tw - 1) * s + 3
    more = max(3 * (2 * ih + 5) * (2 * iw + 5), ih * iw * 32) + 27 * 32 + 32 + 9 * 32 + 32 + 32 * 16 + 16
    assert smem == K.exdwpw5_smem(gen, staged=True) + 4 * (-(cout % 4) % 4 + more)
    assert 2 * (smem + 1024) <= 228 * 1024


def _arg(a) -> tuple:
    """A launch argument as comparable across backends: an array's shape and dtype, a scalar's type and value."""
    return ("array", a.shape, str(a.dtype)) if isinstance(a, np.ndarray) and a.ndim else (type(a).__name__, int(a))


def test_v49_replays_the_committed_batch1_picks(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """v49: v48's plan without block0's launch, the exdwpw5 launch after it on its b0fuse twin (its arguments, then
    block0's first seven and its image size and activations; block0's PDL setting, grid and block as before); op
    ranges shifted down by one (block0's empty); the emulated logits bit-identical to v42's and v48's over poisoned
    runs; the twin built once."""
    import tests.test_custom_host as host
    from mbv2.network import random_input

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    x = random_input(net, 1, seed=23)
    got, plans, ranges = {}, {}, {}
    for version in ("v42", "v48", "v49"):
        be, plans[version] = _plan(fake_cupy, net, picks, version)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        ranges[version] = be.plan(1).op_ranges
        be.poison(1)
        got[version] = be.run(x)
    v48, v49 = plans["v48"], plans["v49"]
    assert [la.name for la in v49] == [committed[1] + K.B0FUSE_SUFFIX, *(la.name for la in v48[2:])]
    b0, ex, fused = v48[0], v48[1], v49[0]
    want = (*ex.args, *b0.args[:7], b0.args[8], b0.args[9], *b0.args[12:15])
    assert [_arg(a) for a in fused.args] == [_arg(a) for a in want]  # (other backends: other buffers, same shapes)
    assert (fused.grid, fused.block, fused.pdl) == (ex.grid, ex.block, b0.pdl)
    assert fused.smem == K.exdwpw5_b0_smem(K.fixed_parse(committed[1])[0]) > ex.smem
    assert [[_arg(a) for a in la.args] for la in v49[1:]] == [[_arg(a) for a in la.args] for la in v48[2:]]
    shifted = [(lb, max(lo - 1, 0), max(hi - 1, 0)) for lb, lo, hi in ranges["v48"]]
    assert ranges["v49"] == shifted and shifted[-1][2] == len(v49)
    first = [next(i for i, (_, lo, hi) in enumerate(ranges[v]) if hi > lo) for v in ("v48", "v49")]
    assert ranges["v48"][first[0]][1:] == ranges["v49"][first[1]][1:] == (0, 1) and first[1] > first[0]  # (block0's)
    for version in ("v48", "v49"):
        assert np.array_equal(got["v42"].view(np.uint32), got[version].view(np.uint32)), version
    assert [b for b in host.FIXED_BUILDS if b[-1] == "b0fuse"] == [(*K.fixed_parse(committed[1]), "b0fuse")]


def test_v49_at_batch_2_is_v48(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    assert_batch2_plan_is(fake_cupy, net, monkeypatch, "v49", "v48")


def test_v49_says_why_a_plan_stays_v48(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """block0 v4 on 4-block clusters (other sums: block0_k4) is not fused: the plan stays v48's and the fallback
    record says why."""
    picks, _ = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)
    be = fake_cupy.CustomBackend(graph=False, kernels="fuse=v49", tune_picks=picks)
    be.block0_k4 = True
    be.prepare(net)
    names = [la.name for la in be.plan(1).launches]
    assert names[0].startswith("block0_v4_c32_p16_k4") and not any(n.endswith(K.B0FUSE_SUFFIX) for n in names)
    assert any(f.startswith("fuse v49 -> v48 (the plan does not start with") for f in be.info()["fallbacks"])


def test_prefill_adds_the_b0fuse_twin(monkeypatch) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import cache_prefill

    _, committed = _committed_bs1()
    more = set(cache_prefill.builds_of_run(V42_RUN, "90", False, True))
    assert [n for n, _ in more if n.endswith(K.B0FUSE_SUFFIX)] == [committed[1] + K.B0FUSE_SUFFIX]
    calls = []
    monkeypatch.setattr(K, "build_fixed", lambda *a, **k: calls.append(k))
    assert cache_prefill.build(committed[1] + K.B0FUSE_SUFFIX, "90", "nvcc") == "fixed_b0fuse"
    assert calls == [{"b0fuse": True}]


@pytest.mark.parametrize("split", ["0", "1"])
def test_b0fuse_twin_compiles_without_spills(tmp_path, monkeypatch, split) -> None:
    """nvcc here: the twin compiles under its name with no warning, no spills and within the build's budget of 2
    blocks of 256 threads per SM (128 registers: ptxas -v); so does it with MBV2_B0SPLIT=1 (distributed shared memory
    stores, two more cluster barriers)."""
    nvcc = _nvcc_in(tmp_path, monkeypatch)
    monkeypatch.setenv(K.B0SPLIT_ENV, split)
    _, committed = _committed_bs1()
    gen, shape = K.fixed_parse(committed[1])
    b = K.build_fixed(gen, shape, "90", nvcc, b0fuse=True)
    assert b.path is not None and b.path.exists() and b.name.encode() in b.path.read_bytes()
    seen = record_compiles(monkeypatch)
    K.build_fixed(gen, shape, "90", nvcc, b0fuse=True)
    cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / "conv.cu", tmp_path / "b0.cubin", "90", verbose=True)
    cmd[1:1] = seen[b.name]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and "warning" not in proc.stderr.lower(), proc.stderr[-2000:]
    (report,) = K.parse_ptxas(proc.stdout + proc.stderr).values()
    assert report["spill_stores"] == 0 and report["stack"] == 0 and report["registers"] <= 128, report
    assert K.exdwpw5_configs()[gen][9] == 2  # (MINB: 2 blocks per SM, so <= 128 registers)


def test_b0split_option_defines_and_info(monkeypatch, fake_cupy) -> None:  # noqa: F811
    """MBV2_B0SPLIT (a measuring option): "1" adds -DEXDWPW5_B0SPLIT=1 to kernels/conv.cu's builds only (so to the
    b0fuse twin's options), the backend's info() names it; anything but 0 / 1 is an InputError."""
    from mbv2.errors import InputError

    monkeypatch.delenv(K.B0SPLIT_ENV, raising=False)
    assert K.b0split_option() == "0" and K.B0SPLIT_DEFINES[0] not in K.process_defines("conv")
    be = fake_cupy.CustomBackend(kernels="fuse=v49")
    assert be.b0split == "0" and "b0split" not in be.info()
    monkeypatch.setenv(K.B0SPLIT_ENV, "1")
    assert K.process_defines("conv")[-1] == K.B0SPLIT_DEFINES[0]
    assert all(K.B0SPLIT_DEFINES[0] not in K.process_defines(f) for f in K.KERNEL_FILES if f != "conv")
    assert fake_cupy.CustomBackend(kernels="fuse=v49").info()["b0split"] == "1"
    monkeypatch.setenv(K.B0SPLIT_ENV, "2")
    with pytest.raises(InputError, match="MBV2_B0SPLIT='2'"):
        K.b0split_option()


def test_b0split_reaches_the_twins_options(monkeypatch) -> None:
    monkeypatch.setenv(K.B0SPLIT_ENV, "1")
    seen = record_compiles(monkeypatch)
    _, committed = _committed_bs1()
    gen, shape = K.fixed_parse(committed[1])
    name = K.build_fixed(gen, shape, "90", "nvcc", b0fuse=True).name
    assert seen[name].count(K.B0SPLIT_DEFINES[0]) == 1 and seen[name][-1] == f"-DEXDWPW5_SPEC_NAME={name}"
