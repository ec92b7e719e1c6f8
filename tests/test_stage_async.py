"""MBV2_STAGE (session 33, a measuring option; results/NOTES.md "Session 33"): "async" compiles kernels/conv.cu and
block0.cu with -DSTAGE_ASYNC=1, which stages exdwpw5's input patch and block0 v3 / v4's weights by cp.async (all
requested at once) instead of loops whose loads wait for each other (2 - 4 L2 round trips in a row per thread at
batch 1). Host tests (the option's values and refusals are tests/test_pdl_trigger.py's, beside MBV2_PDL_TRIGGER's):
that every build of those two files (and no other) gets the define, that the preprocessed device code differs by
exactly the constant or statements that switch it, that exdwpw5's shared memory grows by its buffers where it stages
its weights, that the batch-1 plan's async builds compile without spills, and that a backend refuses a second value
in one process."""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest

from impls import _custom_kernels as K
from mbv2.errors import InputError
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_kernels_compile import FIXED_CASES, SPEC_CASES
from tests.test_pdl_trigger import _device_source, record_compiles
from tests.test_trigger_twins import _committed_bs1

ROOT = Path(__file__).resolve().parent.parent
ASYNC = K.STAGE_ASYNC_DEFINES[0]

# what the define swaps in the preprocessed device code (stripped lines): removed exactly, and what every added line
# is made of. conv.cu's exdwpw5 branches on one constant (if constexpr); block0.cu swaps the staging and weight loads
# themselves (cp.async into shared memory, then reads from there: SB, the fp32 builds)
SWAPPED = {
    "conv": ({"constexpr bool EXDWPW5_ASYNC = false;"}, ("constexpr bool EXDWPW5_ASYNC = true;",)),
    "block0": (
        {
            "for (int e = tid; e < 27 * C1; e += NT) Wst[e] = __ldg(Ws + e);",
            "for (int e = tid; e < C1 * C3; e += NT) Wps[e] = __ldg(Wp + e);",
            "const float2 b = __ldg(reinterpret_cast<const float2*>(bs + c));",
            "const float2 b = __ldg(reinterpret_cast<const float2*>(bd + c));",
            "const float4 b = __ldg(reinterpret_cast<const float4*>(bp + og * 4));",
        },
        ("stage_cp16", "cp.async", "SB", "static_assert", ": __ldg(", '"l"(g));', "}", "const float2 b =",
         "const float4 b ="),
    ),
}  # fmt: skip


@pytest.mark.parametrize("trigger", ["", "early"])
def test_every_build_of_the_two_files_gets_the_define(monkeypatch, trigger) -> None:
    """With MBV2_STAGE=async every build of conv.cu and block0.cu (whole files, fixed builds, fuse v45's twins) has
    the define after MBV2_PDL_TRIGGER's; cblock.cu's builds and the other files do not."""
    monkeypatch.setenv(K.STAGE_ENV, "async")
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, trigger)
    seen = record_compiles(monkeypatch)
    for name in K.KERNEL_FILES:
        K.build_one(name, "90", "nvcc")
        assert (ASYNC in seen[name]) == (name in K.STAGE_FILES), name
        assert seen[name][-1:] == ([ASYNC] if name in K.STAGE_FILES else seen[name][-1:])
    for build, shape in FIXED_CASES:
        spec = K.build_fixed(build, shape, "90", "nvcc").name
        assert (ASYNC in seen[spec]) == (K.FIXED_KINDS[K.fixed_kind(build)][0] in K.STAGE_FILES), spec
    five = next(c for c in FIXED_CASES if K.fixed_kind(c[0]) == "exdwpw5")
    assert ASYNC in seen[K.build_fixed(*five, "90", "nvcc", early=True).name]
    assert ASYNC in seen[K.build_file_twin("block0", "90", "nvcc").name]
    spec6 = K.build_exdwpw6_spec(*SPEC_CASES[5][:2], "90", "nvcc", SPEC_CASES[5][2]).name
    assert ASYNC not in seen[spec6]
    monkeypatch.setenv(K.STAGE_ENV, "")
    assert K.process_defines("conv") == K.pdl_trigger_defines("conv")


@pytest.mark.parametrize("name", K.STAGE_FILES)
def test_async_swaps_exactly_the_staging(name) -> None:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot preprocess the kernel files")
    default, staged = _device_source(nvcc, name, []), _device_source(nvcc, name, [ASYNC])
    diff = [d for d in difflib.ndiff(default, staged) if d[:1] in "+-"]
    removed, parts = SWAPPED[name]
    assert {d[2:] for d in diff if d[0] == "-"} == removed, diff
    added = [d[2:] for d in diff if d[0] == "+"]
    assert added and all(any(p in line for p in parts) for line in added), added
    assert not any("__ldg(" in line and ": __ldg(" not in line for line in added), added  # (only as SB's fallback)


@pytest.mark.parametrize("which", [1, 2, 3, "block0"])
def test_async_builds_compile_as_the_default(which, tmp_path) -> None:
    """The committed batch-1 plan's exdwpw5 fixed builds and block0.cu (its v4 builds): the async build compiles without
    spills, within its launch bounds (block0: at most the default's registers)."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the kernel files")
    if which == "block0":
        src, defines, names = "block0", [], list(K.BLOCK0_V4_BUILDS)
    else:
        spec = _committed_bs1()[1][which]
        src, defines, names = "conv", K.fixed_defines(*K.fixed_parse(spec)), [spec]  # type: ignore[arg-type]
    got = []
    for extra in ([], [ASYNC]):
        cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / f"{src}.cu", tmp_path / "s.cubin", "90", verbose=True)
        cmd[1:1] = [*defines, *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = K.parse_ptxas(proc.stdout + proc.stderr)
        got.append({n: report[n] for n in names})
    for n in names:
        assert got[1][n]["spill_stores"] == got[1][n]["spill_loads"] == 0, (n, got[1][n])
        if which == "block0":
            assert got[1][n]["registers"] <= got[0][n]["registers"], (n, got)
        else:  # (within the launch bounds' registers: 256 threads x MINB blocks per SM)
            minb = dict(zip(K.FIXED_KINDS["exdwpw5"][4], K.fixed_config(K.fixed_parse(n)[0])))["MINB"]
            assert got[1][n]["registers"] <= min(255, 65536 // (256 * minb)), (n, got)


@pytest.mark.parametrize("first, second", [("async", ""), ("", "async"), ("sync", "async")])
def test_a_second_value_in_one_process_is_refused(fake_cupy, net, monkeypatch, first, second) -> None:  # noqa: F811
    monkeypatch.setenv(K.STAGE_ENV, first)
    be = fake_cupy.CustomBackend()
    be.prepare(net)
    assert be.info()["stage"] == (first or "sync")
    monkeypatch.setenv(K.STAGE_ENV, second)
    with pytest.raises(InputError, match="this process already runs the custom kernels with MBV2_STAGE"):
        fake_cupy.CustomBackend().prepare(net)


def test_exdwpw5_smem_adds_the_async_buffers(monkeypatch) -> None:
    """With MBV2_STAGE=async a build that stages its weights (WS bit 0) holds Wos [2][11 * CC] and Bps [COUT] more;
    the others and every build in the default mode as before."""
    configs = K.exdwpw5_configs()
    monkeypatch.setenv(K.STAGE_ENV, "")
    sync = {n: K.exdwpw5_smem(n) for n in configs}
    monkeypatch.setenv(K.STAGE_ENV, "async")
    for n, (_, _, cout, _, _, cc, _, _, ws, _, _) in configs.items():
        assert K.exdwpw5_smem(n) - sync[n] == (4 * (22 * cc + cout) if ws & 1 else 0), n
    assert sum(ws & 1 for *_, ws, _, _ in configs.values()) > 10
