"""fuse v43 / v44's flag hand-off on the host (impls/_custom_flags.py; kernels/cblock.cu EXDWPW6_FLAGS, kernels/conv.cu
EXDWPW5_EPOCH and EXDWPW5_FLAGS): the twins compile without spills and hold the acquire / release pair and the epoch
store where the plan's builds hold none, the tiles a consumer polls are the ones its input rows lie in, the launch list
is rewired as the module says, and the batch-1 / 2 plans on the host's NumPy stand-ins for the kernels give v42's
logits bit for bit while every flag launch finds its producer's flags at this forward's number before it runs."""

from __future__ import annotations

import itertools
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from impls import _custom_flags as F
from impls import _custom_kernels as K
from tests.test_custom_host import fake_cupy  # noqa: F401 (the fixture)

SPEC_RES = "exdwpw6_c24x16_t512_m5210e1fz_s14x14_64_384_64_14x14_1_2_1101"  # NG 1, residual
SPEC_NG5 = "exdwpw6_c24_t512_m4410e1fz_s7x7_160_960_160_7x7_1_3_1101"  # NG 5 (the last cluster stores)
FIX5 = "exdwpw5_s2_c24_o32_t4x4_cc72_k2_f56_56_144_28_28_1_1_1_0_0"  # batch 1's last exdwpw5 launch (run.json)
FIX5_1 = "exdwpw5_s2_c16_o24_t4x8_cc48_k2_f112_112_96_56_56_1_1_1_0_0"  # its first (196 blocks)
FIX5_2 = "exdwpw5_s1_c24_o24_t4x8_cc72_k2_f56_56_144_56_56_1_1_1_0_1"  # its second (196 blocks, residual)


def _compile(nvcc: str, src: str, defines: list[str], tmp: Path) -> tuple[str, str]:
    """(ptxas -v's report, the PTX) of kernels/<src> with ``defines`` for sm_90a."""
    common = [nvcc, *K.NVCC_FLAGS, *defines, "-arch=sm_90a", str(K.KERNEL_DIR / src)]
    r = subprocess.run([*common, "-cubin", "-Xptxas", "-v", "-o", str(tmp / "f.cubin")], capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"\b0 bytes spill stores", r.stderr) and not re.search(r"[1-9]\d* bytes spill", r.stderr)
    return r.stderr, subprocess.run([*common, "-ptx", "-o", "-"], capture_output=True, text=True, timeout=600).stdout


def _nvcc() -> str:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the hand-off twins")
    return nvcc


def _defines(built_fn, *a, **kw) -> list[str]:
    """The -D options build_exdwpw6_spec / build_fixed pass to nvcc (their compile call recorded, not run)."""
    seen = []

    def record(src_path, source, stem, defines, arch, nvcc, what):
        seen.append(defines)
        return Path("/nonexistent")

    orig = K._compile_cached
    K._compile_cached = record
    try:
        built_fn(*a, **kw)
    finally:
        K._compile_cached = orig
    return seen[0]


@pytest.mark.parametrize("spec", [SPEC_RES, SPEC_NG5])
def test_flag_twin_compiles_and_publishes_its_tiles(spec: str, tmp_path: Path) -> None:
    nvcc = _nvcc()
    base, modes, shape = K.exdwpw6_spec_parse(spec)
    ptx = {}
    for flags in (False, True):
        d = _defines(K.build_exdwpw6_spec, base, modes, "90", nvcc, shape, flags=flags)
        ptx[flags] = _compile(nvcc, "cblock.cu", d, tmp_path)[1]
    assert f".entry {spec}{K.FLAG_SUFFIX}(" in ptx[True] and f".entry {spec}(" in ptx[False]
    assert (
        ptx[True].count(f".param .u64 {spec}{K.FLAG_SUFFIX}_param_")
        == ptx[False].count(f".param .u64 {spec}_param_") + 3
    )
    for op in ("ld.acquire.gpu", "st.release.gpu", "fence.proxy.async.global", "trap"):
        assert op in ptx[True] and op not in ptx[False], op
    assert "griddepcontrol.wait" in ptx[True] and "griddepcontrol.wait" in ptx[False]  # (fin == nullptr: the grid)
    assert ptx[True].count("st.release.gpu") == 2  # NG == 1 and NG > 1's stores


# the epoch twins' one step: block (0, 0)'s thread 0 loads the word, adds one and stores it (PTX)
EPOCH_STEP = re.compile(r"ld\.global\.u32\s+%r\d+, \[%rd\d+\];\s+add\.s32\s+%r\d+, %r\d+, 1;\s+st\.global\.u32")


def _exdwpw5_twin_ptx(fix: str, twin: str, tmp_path: Path) -> dict[bool, str]:
    """The PTX of exdwpw5 fixed build ``fix`` (False) and of its twin (True: build_fixed(**{twin: True})); both
    without spills, with the same registers."""
    nvcc = _nvcc()
    gen, shape = K.fixed_parse(fix)
    out = {}
    for on in (False, True):
        d = _defines(K.build_fixed, gen, shape, "90", nvcc, **{twin: on})
        assert any(x.startswith(("-DEXDWPW5_EPOCH=1", "-DEXDWPW5_FLAGS=1")) for x in d) == on
        out[on] = _compile(nvcc, "conv.cu", d, tmp_path)
    regs = [re.search(r"Used (\d+) registers", out[on][0])[1] for on in (False, True)]
    assert regs[0] == regs[1], regs
    return {on: out[on][1] for on in out}


def test_epoch_twin_compiles_and_advances_the_number(tmp_path: Path) -> None:
    """The exdwpw5 epoch twin: one more pointer, one load / add / store more (block (0, 0)'s thread 0), the same
    registers and no spills; the plan's fixed build holds no such store of its own parameters."""
    ptx = _exdwpw5_twin_ptx(FIX5, "epoch", tmp_path)
    name = FIX5 + K.EPOCH_SUFFIX
    assert f".entry {name}(" in ptx[True] and f"{name}_param_19" in ptx[True] and f"{FIX5}_param_19" not in ptx[False]
    assert EPOCH_STEP.search(ptx[True].split(f"{name}_param_19];", 1)[1])


@pytest.mark.parametrize("fix", [FIX5, FIX5_2])
def test_exdwpw5_flag_twin_compiles_and_publishes_its_block(fix: str, tmp_path: Path) -> None:
    """fuse v44's exdwpw5 flag twin: three more pointers and two ints, the acquire poll (with its trap) and one release
    store, the grid-wide wait kept for fin == nullptr, no async-proxy fence (it reads its input by ld.cg), the same
    registers as the plan's build and no spills; the plan's build holds none of these."""
    ptx = _exdwpw5_twin_ptx(fix, "flags", tmp_path)
    name = fix + K.FLAG_SUFFIX
    assert f".entry {name}(" in ptx[True] and f".entry {fix}(" in ptx[False]
    assert ptx[True].count(f".param .u64 {name}_param_") == ptx[False].count(f".param .u64 {fix}_param_") + 3
    assert ptx[True].count(f".param .u32 {name}_param_") == ptx[False].count(f".param .u32 {fix}_param_") + 2
    for op in ("ld.acquire.gpu", "st.release.gpu", "trap"):
        assert op in ptx[True] and op not in ptx[False], op
    assert ptx[True].count("st.release.gpu") == 1 and "fence.proxy.async" not in ptx[True]
    assert "griddepcontrol.wait" in ptx[True] and "griddepcontrol.wait" in ptx[False]


def test_block0_v4_epoch_twins_in_the_file(tmp_path: Path) -> None:
    """fuse v44: every block0 v4 build (K.BLOCK0_V4_BUILDS = the file's BLOCK0_V4_KERNEL lines) has its epoch twin in
    kernels/block0.cu's own build: one more pointer, the load / add / store of block (0, 0)'s thread 0, the same
    registers and shared memory; the plan's builds keep their code (compared on the PTX: their instructions are the
    same; only the body's static shared arrays move to module scope, now that two entries share the body)."""
    nvcc = _nvcc()
    text = (K.KERNEL_DIR / "block0.cu").read_text()
    assert set(re.findall(r"^BLOCK0_V4_KERNEL\((\w+),", text, re.M)) == set(K.BLOCK0_V4_BUILDS)
    assert {n + K.EPOCH_SUFFIX for n in K.BLOCK0_V4_BUILDS} <= {n for _, n in K.kernels_of("block0", "v4")}
    report, ptx = _compile(nvcc, "block0.cu", [], tmp_path)
    for n in K.BLOCK0_V4_BUILDS:
        ep = n + K.EPOCH_SUFFIX
        assert f".entry {ep}(" in ptx and f"{ep}_param_15" in ptx and not re.search(rf"\b{n}_param_15", ptx), n
        assert EPOCH_STEP.search(ptx.split(f"{ep}_param_15];", 1)[1])
        chunks = report.split("entry function")[1:]
        use = {c.split("'")[1]: re.search(r"Used \d+ registers[^\n]*", c)[0] for c in chunks}
        assert use[n] == use[ep], (n, use[n], use[ep])


def test_twin_names_parse_and_build_rules() -> None:
    assert K.twin_parse(SPEC_RES + K.FLAG_SUFFIX) == (SPEC_RES, K.FLAG_SUFFIX)
    assert K.twin_parse(FIX5 + K.EPOCH_SUFFIX) == (FIX5, K.EPOCH_SUFFIX)
    assert K.twin_parse(FIX5 + K.FLAG_SUFFIX) == (FIX5, K.FLAG_SUFFIX)  # fuse v44
    assert K.generic_of(SPEC_RES + K.FLAG_SUFFIX) == "exdwpw6_c24x16_t512"
    for twin in (K.EPOCH_SUFFIX, K.FLAG_SUFFIX):
        assert K.generic_of(FIX5 + twin) == "exdwpw5_s2_c24_o32_t4x4_cc72_k2"
    assert K.twin_parse("block0_v4_c32_p16_ep") == ("block0_v4_c32_p16", K.EPOCH_SUFFIX)  # fuse v44
    for other in ("exdwpw6_c24x16_t512_hf", "block0_v3_c32_p16_ep", "block0_v4_c32_p16_hf", SPEC_RES + K.EPOCH_SUFFIX,
                  "exdwpw5_s1_c24_o24_t4x8_hf", "pwpool_c8_f49_320_1280_1_ep", "pwpool_c8_f49_320_1280_1_hf", SPEC_RES,
                  "linear_gemv_v5", FIX5 + K.EPOCH_SUFFIX + K.FLAG_SUFFIX):  # fmt: skip
        assert K.twin_parse(other) == (other, None), other
    base, modes, _ = K.exdwpw6_spec_parse(SPEC_RES)
    with pytest.raises(ValueError, match="fixed shape"):
        K.build_exdwpw6_spec(base, modes, "90", None, None, flags=True)
    for twin in ({"epoch": True}, {"flags": True}):
        with pytest.raises(ValueError, match="only exdwpw5"):
            K.build_fixed("pwpool_c8", (49, 320, 1280, 1), "90", None, **twin)
    with pytest.raises(ValueError, match="one of them"):
        K.build_fixed(*K.fixed_parse(FIX5), "90", None, epoch=True, flags=True)
    for twin, define, suffix in (("epoch", "EXDWPW5_EPOCH", K.EPOCH_SUFFIX), ("flags", "EXDWPW5_FLAGS", K.FLAG_SUFFIX)):
        src = K.build_fixed(*K.fixed_parse(FIX5), "90", None, **{twin: True})  # NVRTC: the defines in front of the file
        assert src.name == FIX5 + suffix and f"#define {define} 1\n" in src.source
        assert f"#define EXDWPW5_SPEC_NAME {FIX5}{suffix}\n" in src.source
    assert [K.flag_handoff(v) for v in ("v36", "v42", "v43", "v44")] == [False, False, True, True]
    assert [K.flag_upstream(v) for v in ("v42", "v43", "v44")] == [False, False, True]
    assert K.DEFAULT_VERSIONS["fuse"] not in ("v43", "v44") and "v44" in K.KERNEL_VERSIONS["fuse"]  # measured slower


def test_polled_tiles_are_those_the_input_rows_lie_in() -> None:
    for h, tr_p, tr_c, stride in itertools.product((7, 14, 28), (1, 2, 3, 4, 7), (1, 2, 3, 4), (1, 2)):
        ho = (h - 1) // stride + 1
        stp = -(-h // tr_p)
        for oy0 in range(0, ho, tr_c):
            rows = min(tr_c, ho - oy0)
            iy0, iy1 = F.input_rows(oy0, rows, stride, h)
            need = {y // tr_p for y in range(max(0, oy0 * stride - 1), min(h, (oy0 + rows - 1) * stride + 2))}
            got = F.producer_tiles(iy0, iy1, tr_p)
            assert set(got) == need and got.stop <= stp, (h, tr_p, tr_c, stride, oy0)


def test_handoff_runs() -> None:
    names = ["block0", "exdwpw5_a", "exdwpw5_b", "exdwpw6_a", "exdwpw6_b", "pwpool", "exdwpw6_d", "gemv"]
    assert F.handoff_runs(names) == [(3, 5)]
    assert F.handoff_runs(names, upstream=True) == [(2, 5)]  # fuse v44: the first exdwpw5 launch advances the number
    v4 = ["block0_v4_c32_p16", *names[1:]]
    assert F.handoff_runs(v4, upstream=True) == [(1, 5)] and F.handoff_runs(v4) == [(3, 5)]  # block0 v4 advances it
    assert F.handoff_runs(["exdwpw6_a", "exdwpw6_b"]) == [(0, 2)]
    assert F.handoff_runs(["exdwpw6_a", "x", "exdwpw6_b"]) == []
    assert F.handoff_runs(["b", "exdwpw5_a", "exdwpw6_a", "p"], upstream=True) == []  # one launch left
    assert F.handoff_runs(["exdwpw6_a", "exdwpw5_b", "exdwpw6_c"], upstream=True) == [(0, 3)]
    assert F.handoff_runs(["exdwpw5_a", "exdwpw6_a", "exdwpw6_b", "x", "exdwpw5_b", "exdwpw6_c"], upstream=True) == [
        (1, 3), (4, 6)]  # fmt: skip


class _Arr:
    _next = itertools.count(1000, 1000)

    def __init__(self) -> None:
        self.data = SimpleNamespace(ptr=next(self._next))


def _fake_cp():
    return SimpleNamespace(empty_like=lambda a: _Arr(), zeros_like=lambda a: _Arr(), zeros=lambda n, dt: _Arr(),
                           uint32=np.uint32)  # fmt: skip


def _exdwpw6_launch(spec: str, x, y, res: bool, tr: int, ng: int, grid: tuple):
    from impls.custom import Launch

    r = x if res else y
    ws = _Arr() if ng > 1 else y
    ints = [np.int32(0)] * (28 - 11)
    ints[19 - 11], ints[23 - 11] = np.int32(tr), np.int32(int(res))
    args = (x, _Arr(), _Arr(), _Arr(), _Arr(), _Arr(), _Arr(), r, y, ws, _Arr(), *ints)
    return Launch(spec, "generic", grid, (512,), args, smem=1000, pdl=True)


def _five(before_name: str = FIX5):
    from impls.custom import Launch

    a0, a1, a2, out = _Arr(), _Arr(), _Arr(), _Arr()
    before = Launch(before_name, "k5", (196,), (256,), (_Arr(),) * 8 + (a0,) + (np.int32(1),) * 10, pdl=True)
    l1 = _exdwpw6_launch(SPEC_RES, a0, a1, True, 2, 1, (16, 7, 1))
    l2 = _exdwpw6_launch(SPEC_NG5, a1, a2, False, 3, 5, (40, 3, 1))
    after = Launch("pwpool_c8", "kp", (160,), (256,), (a2, _Arr(), _Arr(), out), pdl=True)
    gemv = Launch("linear_gemv_v5", "kg", (125,), (256,), (out, _Arr()), pdl=True)
    return [before, l1, l2, after, gemv]


def test_plan_flags_rewires_the_run() -> None:
    launches = _five()
    before, l1, l2, after, gemv = launches
    got = F.plan_flags(launches, _fake_cp(), lambda la: f"fn:{la.name}{K.FLAG_SUFFIX}",
                       lambda la: f"fn:{la.name}{K.EPOCH_SUFFIX}")  # fmt: skip
    assert isinstance(got, F.Rewired)
    new = got.launches
    assert new[4] is gemv and launches == [before, l1, l2, after, gemv]  # (the input list is left alone)
    # the epoch launch: its twin, the forward-number word as one more argument
    epoch = got.sync[-1]
    assert (
        new[0].name == FIX5 + K.EPOCH_SUFFIX and new[0].args == (*before.args, epoch) and new[0].kernel.endswith("_ep")
    )
    n1, n2 = new[1].args, new[2].args
    assert len(n1) == len(n2) == F.N_FLAG_ARGS
    # the first waits for the grid before it (null flags), reads the plan's buffer, writes a fresh one
    assert n1[0] is l1.args[0] and n1[28] == 0 and (n1[31], n1[32]) == (1, 1) and n1[30] is epoch
    assert n1[8] is not l1.args[8] and n1[7] is n1[0]  # residual = its input
    # the second polls the first's flags with its tiling (TR 2, clusters of 16), reads its fresh output
    assert n2[0] is n1[8] and n2[28] is n1[29] and (int(n2[31]), int(n2[32])) == (2, 16) and n2[30] is epoch
    assert n2[7] is n2[8] and n2[8] is not l2.args[8] and n2[9] is not l2.args[9] and n2[10] is not l2.args[10]
    assert new[3].args[0] is n2[8] and new[3].args[3] is after.args[3] and new[3].name == "pwpool_c8"
    assert [r["launch"] for r in got.rows] == [1, 2] and got.rows[1]["waits_on"] == "flags of 1"
    assert new[1].name == SPEC_RES + K.FLAG_SUFFIX and new[1].kernel == f"fn:{SPEC_RES}_hf" and new[1].pdl
    assert n1[8] in got.fresh and n2[8] in got.fresh and n2[9] in got.fresh and n1[10] not in got.fresh
    assert {id(a) for a in (n1[29], n2[29], n1[10], n2[10], epoch)} <= {id(a) for a in got.sync}
    lone = F.lone(new[2])
    assert (
        lone.args[28] == 0
        and type(lone.args[28]) is np.int64
        and lone.args[29:] == n2[29:]
        and lone.args[:28] == n2[:28]
    )
    assert F.lone(new[0]) is new[0] and F.lone(l2) is l2


def _exdwpw5_launch(name: str, x, y, res: bool, grid: tuple):
    from impls.custom import Launch

    ints = (np.int32(1),) * 10 + (np.int32(int(res)),)
    return Launch(name, "k5", grid, (256,), (x, *(_Arr() for _ in range(6)), x if res else y, y, *ints[1:]), pdl=True)


def _seven(block0: str = "block0_v4_c32_p16"):
    """block0, batch 1's three exdwpw5 launches (their fixed builds and grids), two exdwpw6 launches, the head."""
    from impls.custom import Launch

    a = [_Arr() for _ in range(6)]
    b0 = Launch(block0, "kb", (128,), (256,), (_Arr(),) * 7 + (a[0],) + (np.int32(1),) * 7, pdl=False)
    e1 = _exdwpw5_launch(FIX5_1, a[0], a[1], False, (196, 1))
    e2 = _exdwpw5_launch(FIX5_2, a[1], a[2], True, (196, 1))
    e3 = _exdwpw5_launch(FIX5, a[2], a[3], False, (98, 1))
    l1 = _exdwpw6_launch(SPEC_RES, a[3], a[4], False, 2, 1, (16, 7, 1))
    l2 = _exdwpw6_launch(SPEC_NG5, a[4], a[5], False, 3, 5, (40, 3, 1))
    after = Launch("pwpool_c8", "kp", (160,), (256,), (a[5], _Arr(), _Arr(), _Arr()), pdl=True)
    return [b0, e1, e2, e3, l1, l2, after]


@pytest.mark.parametrize("block0", ["block0_v4_c32_p16", "block0_v3_c32_p16_f224_224_112_112"])
def test_plan_flags_upstream_rewires_the_exdwpw5_launches(block0: str) -> None:
    """fuse v44: block0 v4 advances the number on its epoch twin (batch 1; a block0 v3 fixed build has none: the first
    exdwpw5 launch does it instead and stays out of the run); the run's first launch waits for the grid and publishes
    one flag per block; each later exdwpw5 launch polls its producer's bands (4 rows, 7 tiles x 2 ranks each) and
    reads its fresh output; the first exdwpw6 launch polls the last exdwpw5 launch's bands the same way."""
    launches = _seven(block0)
    b0, e1, e2, e3, l1, l2, after = launches
    got = F.plan_flags(launches, _fake_cp(), lambda la: f"fn:{la.name}{K.FLAG_SUFFIX}",
                       lambda la: f"fn:{la.name}{K.EPOCH_SUFFIX}", upstream=True)  # fmt: skip
    assert isinstance(got, F.Rewired)
    new, epoch = got.launches, got.sync[-1]
    v4 = block0.startswith("block0_v4")
    at = 0 if v4 else 1
    assert new[at].name == launches[at].name + K.EPOCH_SUFFIX and new[at].args == (*launches[at].args, epoch)
    assert new[at].kernel == f"fn:{launches[at].name}_ep" and (v4 or new[0] is b0)
    flagged = [e1, e2, e3, l1, l2][at:]
    assert [la.name for la in new[at + 1 : 6]] == [la.name + K.FLAG_SUFFIX for la in flagged]
    fives = [la.args for la in new[at + 1 : 4]]
    n4, n5 = new[4].args, new[5].args
    assert all(len(a) == F.N_EXDWPW5_FLAG_ARGS for a in fives) and len(n4) == len(n5) == F.N_FLAG_ARGS
    first = fives[0]
    assert first[0] is launches[at + 1].args[0] and first[19] == 0 and first[21] is epoch  # the grid; the plan's input
    assert first[8] is not launches[at + 1].args[8]
    for prev, cur in zip(fives, fives[1:]):  # exdwpw5 -> exdwpw5: bands of 4 rows, 14 flags
        assert cur[0] is prev[8] and cur[19] is prev[20] and cur[21] is epoch
        assert (int(cur[22]), int(cur[23])) == (4, 14)
    n2 = new[2].args
    assert n2[7] is n2[0]  # exdwpw5 #2's residual: its (possibly fresh) input
    assert n4[0] is fives[-1][8] and n4[28] is fives[-1][20] and (int(n4[31]), int(n4[32])) == (4, 14)
    assert n5[0] is n4[8] and n5[28] is n4[29] and (int(n5[31]), int(n5[32])) == (2, 16)
    assert new[6].args[0] is n5[8]
    assert [r["waits_on"] for r in got.rows] == ["grid"] + [f"flags of {i}" for i in range(at + 1, 5)]
    assert [r["tiles"] for r in got.rows[: len(fives)]] == [196, 196, 98][at:]
    assert {id(a) for a in (*(f[20] for f in fives), n4[29], n5[29], epoch)} <= {id(a) for a in got.sync}
    assert all(f[8] in got.fresh for f in fives)
    lone = F.lone(new[3])
    assert lone.args[19] == 0 and type(lone.args[19]) is np.int64 and lone.args[20:] == new[3].args[20:]
    # v43 on the same list: the exdwpw5 launches as they are, the last one advances the number
    v43 = F.plan_flags(launches, _fake_cp(), lambda la: "f", lambda la: "e")
    assert [la.name for la in v43.launches[:4]] == [block0, FIX5_1, FIX5_2, FIX5 + K.EPOCH_SUFFIX]
    # what v44 refuses: a generic exdwpw5 build in the run, a grid that is not the build's tiling, a block0 launch
    # with other arguments
    bad = [*launches]
    bad[3] = replace(e3, name="exdwpw5_s2_c24_o32_t4x4_cc72_k2")
    assert "launch 3 exdwpw5_s2_c24_o32_t4x4_cc72_k2: not a fixed exdwpw5 build" in F.plan_flags(
        bad, _fake_cp(), lambda la: "f", lambda la: "e", upstream=True)  # fmt: skip
    bad[3] = replace(e3, grid=(49, 1))
    assert "is not 7 bands x 14 blocks" in F.plan_flags(bad, _fake_cp(), lambda la: "f", lambda la: "e", upstream=True)
    if v4:
        bad = [replace(b0, args=b0.args[:8]), *launches[1:]]
        why = F.plan_flags(bad, _fake_cp(), lambda la: "f", lambda la: "e", upstream=True)
        assert "8 arguments, not block0's" in why


def test_plan_flags_says_why_it_does_not_apply() -> None:
    fns = (lambda la: "f", lambda la: "e")
    launches = _five("exdwpw5_s2_c24_o32_t4x4_cc72_k2")  # a generic build: no epoch twin
    assert F.plan_flags(launches, _fake_cp(), *fns) == (
        "no exdwpw5 launch on a fixed build before the first run of exdwpw6 launches"
    )
    launches = _five()
    assert F.plan_flags([launches[0], launches[1], launches[3]], _fake_cp(), *fns) == (
        "no run of two or more exdwpw6 launches"
    )
    bad = [*launches]
    bad[2] = replace(bad[2], args=(_Arr(), *bad[2].args[1:]))  # reads something else than the run's output: allowed
    assert isinstance(F.plan_flags(bad, _fake_cp(), *fns), F.Rewired)
    bad[3] = replace(bad[3], args=(_Arr(), *bad[3].args[1:]))  # the launch after the run does not read its output
    assert "is not the run's last output" in F.plan_flags(bad, _fake_cp(), *fns)
    bad = [*launches]
    bad[1] = replace(bad[1], args=(*bad[1].args[:7], _Arr(), *bad[1].args[8:]))  # a residual that is not the input
    assert "the residual is not the input tensor" in F.plan_flags(bad, _fake_cp(), *fns)
    bad = [*launches]
    bad[1] = replace(bad[1], name="exdwpw6_c24x16_t512")  # not a fixed build
    assert "not a fixed exdwpw6 build" in F.plan_flags(bad, _fake_cp(), *fns)


@pytest.mark.parametrize("fuse", ["v43", "v44"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_flag_plan_with_emulated_kernels_gives_v42s_logits(fake_cupy, net, fuse, batch, graph) -> None:  # noqa: F811
    """The v43 / v44 plan on the host's NumPy stand-ins (tests/test_custom_host.py emulate_flag_twin): every flag
    launch finds its producer's flags at this forward's number before it runs (on the GPU it would wait for them) and
    sets its own; over three forwards with every buffer poisoned (a launch that read a stale buffer would read NaN),
    the logits equal v42's bit for bit; a cut-off forward (the launches up to the middle of the run) leaves flags
    that the next forward does not take for its own. v44: the exdwpw5 launches are flag twins too, and block0 v4
    advances the number (batch 1; at batch 2 block0 v3 has no epoch twin: the first exdwpw5 launch does it)."""
    import tests.test_custom_host as host
    from mbv2.network import random_input

    x = random_input(net, batch, seed=3)
    v42 = fake_cupy.CustomBackend(graph=False, kernels="fuse=v42")
    v42.prepare(net)
    ref = v42.run(x)
    be = fake_cupy.CustomBackend(graph=graph, kernels=f"fuse={fuse}")
    be.prepare(net)
    plan = be.plan(batch)
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    names = [la.name for la in plan.launches]
    assert [K.twin_parse(n)[0] for n in names] == [la.name for la in v42.plan(batch).launches]
    six = [n for n in names if n.startswith("exdwpw6")]
    five = [n for n in names if n.startswith("exdwpw5")]
    assert len(six) >= 2 and all(n.endswith(K.FLAG_SUFFIX) for n in six), names
    assert len(five) == 3 and names.index(five[-1]) + 1 == names.index(six[0]), names
    if fuse == "v43":
        assert five[-1].endswith(K.EPOCH_SUFFIX) and not any(n.endswith(K.FLAG_SUFFIX) for n in five), names
    elif batch == 1:  # v44, block0 v4: it advances the number, every exdwpw5 launch is in the run
        assert names[0] == "block0_v4_c32_p16" + K.EPOCH_SUFFIX and all(n.endswith(K.FLAG_SUFFIX) for n in five), names
    else:  # v44, block0 v3 (no epoch twin): the first exdwpw5 launch advances it
        assert five[0].endswith(K.EPOCH_SUFFIX) and all(n.endswith(K.FLAG_SUFFIX) for n in five[1:]), names
    flagged = [n for n in names if n.endswith(K.FLAG_SUFFIX)]
    assert sum(n.endswith(K.EPOCH_SUFFIX) for n in names) == 1
    assert plan.sync and all(s.dtype in (np.uint32, np.int32) for s in plan.sync)
    assert {("flags",) == b[3:] for b in host.SPEC_BUILDS} == {False, True}
    assert sum(b[2:] == ("epoch",) for b in host.FIXED_BUILDS) == (0 if fuse == "v44" and batch == 1 else 1)
    assert sum(b[2:] == ("flags",) for b in host.FIXED_BUILDS) == (0 if fuse == "v43" else 3 if batch == 1 else 2)
    for forward in range(3):
        be.poison(batch)
        host.FLAG_CHECKS.clear()
        y = be.run(x)
        assert host.FLAG_CHECKS == [K.twin_parse(n)[0] for n in flagged[1:]], forward
        assert np.array_equal(y.view(np.uint32), ref.view(np.uint32)), forward
    epoch = plan.sync[-1]
    e = int(epoch[0])
    assert e == 3 + int(graph)  # one per forward (+ CudaGraph's eager run before its capture)
    be.poison(batch)
    be._enqueue_launches(plan.launches[: names.index(six[len(six) // 2])])  # a partial forward
    assert int(epoch[0]) == e + 1
    assert np.array_equal(be.run(x).view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("fuse", ["v43", "v44"])
def test_flag_emulation_catches_a_stale_producer(fake_cupy, net, fuse) -> None:  # noqa: F811
    """The stand-ins' check can fail: with the forward's number advanced and the run's first launch run alone, the
    third launch polls the second's flags, still a forward behind (on the GPU it would wait until its trap)."""
    from mbv2.network import random_input

    be = fake_cupy.CustomBackend(graph=False, kernels=f"fuse={fuse}")
    be.prepare(net)
    plan = be.plan(1)
    be.run(random_input(net, 1, seed=3))
    at = next(i for i, la in enumerate(plan.launches) if la.name.endswith(K.EPOCH_SUFFIX))
    be._enqueue_launches([plan.launches[at]])  # the number advances; nothing after it runs
    be._enqueue_launches([plan.launches[at + 1]])  # the first of the run: waits for the grid, publishes its flags
    with pytest.raises(AssertionError, match="would wait forever"):
        be._enqueue_launches([plan.launches[at + 3]])
    if fuse == "v44":  # an exdwpw5 flag twin whose producer has not run in this forward
        be._enqueue_launches([plan.launches[at]])
        assert plan.launches[at + 2].name.startswith("exdwpw5")
        with pytest.raises(AssertionError, match="exdwpw5.* would wait forever"):
            be._enqueue_launches([plan.launches[at + 2]])


def test_v43_and_v44_are_v42_but_for_the_hand_off() -> None:
    """Every version predicate but flag_handoff / flag_upstream reads v43 and v44 as v42 (the same tuner, candidates
    and builds), and they compile no other kernel file build: their twins are fixed builds compiled on first use."""
    import inspect

    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f not in (K.fuse_level, K.flag_handoff, K.flag_upstream)]  # fmt: skip
    assert len(preds) > 20
    for v in ("v43", "v44"):
        assert [f.__name__ for f in preds if f(v) != f("v42")] == [], v
        assert set(K.kernels_of("fuse", v)) == set(K.kernels_of("fuse", "v42")), v


def test_flag_versions_replay_the_committed_batch1_picks(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """scripts/flags_device.sh's A/B on the host: session 27's H200 run's batch-1 picks (session27/run.json, v42)
    replay in v43 and v44 (the same tuner keys and candidates), the plan is the committed one with its 13 exdwpw6
    launches on flag twins and its last exdwpw5 launch on the epoch twin (v44: block0 v4 on the epoch twin, the three
    exdwpw5 launches on flag twins too), and the emulated logits equal v42's bit for bit."""
    import tests.test_custom_host as host
    from mbv2.network import random_input
    from tests.test_trigger_twins import _committed_bs1

    picks, committed = _committed_bs1()
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)  # (batch 1 is tuned: the picks are replayed)
    x = random_input(net, 1, seed=5)
    got = {}
    for v in ("v42", "v43", "v44"):
        be = fake_cupy.CustomBackend(graph=True, kernels=f"fuse={v}", tune_picks=picks)
        be.prepare(net)
        names = [la.name for la in be.plan(1).launches]
        assert [K.twin_parse(n)[0] for n in names] == committed, (v, names)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be.poison(1)
        host.FLAG_CHECKS.clear()
        got[v] = be.run(x)
        if v == "v43":
            assert sum(n.endswith(K.FLAG_SUFFIX) for n in names) == 13 and len(host.FLAG_CHECKS) == 12
            assert names[3] == committed[3] + K.EPOCH_SUFFIX
        if v == "v44":
            assert sum(n.endswith(K.FLAG_SUFFIX) for n in names) == 16 and len(host.FLAG_CHECKS) == 15
            assert names[0] == committed[0] + K.EPOCH_SUFFIX and names[1] == committed[1] + K.FLAG_SUFFIX
    for v in ("v43", "v44"):
        assert np.array_equal(got["v42"].view(np.uint32), got[v].view(np.uint32)), v


def test_flag_extra_reaches_only_the_flag_twins_and_info(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """MBV2_FLAG_EXTRA (session 30's measuring variants, kernels/cblock.cu EXDWPW6_FLAG_*): read when the backend is
    made, passed to the flag twins' builds only, shown in info(); anything else in it is refused."""
    import tests.test_custom_host as host

    monkeypatch.setenv(K.FLAG_EXTRA_ENV, "-DEXDWPW6_FLAG_POLL=1 -DEXDWPW6_FLAG_TRIGGER=1")
    be = fake_cupy.CustomBackend(graph=False, kernels="fuse=v43")
    be.prepare(net)
    be.plan(1)
    want = ("-DEXDWPW6_FLAG_POLL=1", "-DEXDWPW6_FLAG_TRIGGER=1")
    got = {b[3:] == ("flags",): x for b, x in zip(host.SPEC_BUILDS, host.SPEC_EXTRAS)}
    assert got == {True: want, False: ()}
    assert be.info()["flag_extra"] == list(want)
    monkeypatch.setenv(K.FLAG_EXTRA_ENV, "-DEXDWPW6_FLAGS=0")
    with pytest.raises(ValueError, match="MBV2_FLAG_EXTRA"):
        fake_cupy.CustomBackend(graph=False, kernels="fuse=v43")
    monkeypatch.delenv(K.FLAG_EXTRA_ENV)
    assert "flag_extra" not in fake_cupy.CustomBackend(graph=False).info()
