"""MBV2_PDL_TRIGGER (session 31, a measuring option; results/NOTES.md "Session 31"): "early" compiles kernels/
block0.cu, conv.cu and cblock.cu with -DPDL_TRIGGER_EARLY=1, which moves each PDL kernel's trigger
(griddepcontrol.launch_dependents) from after its last stores to after its input staging. Host tests: the option's
checks, that every build of those files (and no other) gets the define, that the preprocessed device code differs
by exactly that one moved trigger per file (so the default build is the code as before), that the early builds of
the batch-1 plan's kinds compile within their register bounds without spills, and that a backend refuses a second
value in one process. The option checks cover MBV2_STAGE too (the two share K.two_value_option)."""

from __future__ import annotations

import subprocess

import pytest

from impls import _custom_kernels as K
from mbv2.errors import InputError
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_kernels_compile import FIXED_CASES, SPEC_CASES

EARLY = "-DPDL_TRIGGER_EARLY=1"
TRIGGER = 'asm volatile("griddepcontrol.launch_dependents;\\n" ::: "memory");'


# the two process-wide options of two values (K.two_value_option): (option, its variable, its default, the other)
OPTIONS = {"trigger": (K.pdl_trigger_option, K.PDL_TRIGGER_ENV, "end", "early"),
           "stage": (K.stage_option, K.STAGE_ENV, "sync", "async")}  # fmt: skip


@pytest.mark.parametrize("which", OPTIONS)
@pytest.mark.parametrize("raw, value", [("", 0), ("{default}", 0), (" {other} ", 1)])
def test_option_values(monkeypatch, which, raw, value) -> None:
    fn, env, default, other = OPTIONS[which]
    monkeypatch.setenv(env, raw.format(default=default, other=other))
    assert fn() == (default, other)[value]


@pytest.mark.parametrize(
    "which, raw",
    [("trigger", r) for r in ("start", "1", "EARLY", "early,end")]
    + [("stage", r) for r in ("1", "ASYNC", "cp.async", "sync,async")],
)
def test_option_refuses(monkeypatch, which, raw) -> None:
    fn, env, default, other = OPTIONS[which]
    monkeypatch.setenv(env, raw)
    with pytest.raises(InputError, match=f"{env}=.*expected {default} .the default. or {other}"):
        fn()


def record_compiles(monkeypatch) -> dict[str, list[str]]:
    """The -D options each build would pass to nvcc, by cubin stem (K._compile_cached recorded, not run)."""
    seen: dict[str, list[str]] = {}

    def fake_compile(src_path, source, stem, defines, arch, nvcc, what):
        seen[stem] = list(defines)
        return src_path

    monkeypatch.setattr(K, "_compile_cached", fake_compile)
    return seen


def defines_of_every_build(monkeypatch) -> dict[str, tuple[str, list[str]]]:
    """Every kernel file's own build, FIXED_CASES' fixed builds and SPEC_CASES' exdwpw6 spec builds, recorded (not
    compiled): {cubin stem: (the kernel file it is built from, the -D options it would pass to nvcc)}."""
    seen = record_compiles(monkeypatch)
    files = {}
    for name in K.KERNEL_FILES:
        files[K.build_one(name, "90", "nvcc").name] = name
    for build, shape in FIXED_CASES:
        files[K.build_fixed(build, shape, "90", "nvcc").name] = K.FIXED_KINDS[K.fixed_kind(build)][0]
    for build, modes, shape in SPEC_CASES:
        files[K.build_exdwpw6_spec(build, modes, "90", "nvcc", shape).name] = "cblock"
    return {stem: (file, seen[stem]) for stem, file in files.items()}


@pytest.mark.parametrize("mode", ["end", "early"])
def test_every_build_of_the_three_files_gets_the_define(monkeypatch, mode) -> None:
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, mode)
    seen = record_compiles(monkeypatch)
    for name in K.KERNEL_FILES:
        K.build_one(name, "90", "nvcc")
    fixed = [c for c in FIXED_CASES if c[0].startswith(("exdwpw5", "block0", "pwpool_c8"))]
    for build, shape in fixed:
        K.build_fixed(build, shape, "90", "nvcc")
    build6, modes6, shape6 = SPEC_CASES[-1]
    K.build_exdwpw6_spec(build6, modes6, "90", "nvcc", shape6)
    want = mode == "early"
    for name in K.KERNEL_FILES:
        assert (EARLY in seen[name]) == (want and name in K.PDL_TRIGGER_FILES), (name, seen[name])
    for build, shape in fixed:
        assert (EARLY in seen[K.fixed_name(build, shape)]) == want
    assert (EARLY in seen[K.exdwpw6_spec_name(build6, modes6, shape6)]) == want
    # without nvcc (NVRTC): the define as a #define line in front of the source
    head = K.build_one("conv", "90", None).source.splitlines()[0]
    assert (head == "#define PDL_TRIGGER_EARLY 1") == want, head


def _device_source(nvcc: str, name: str, defines: list[str]) -> list[str]:
    """kernels/<name>.cu preprocessed as device code for sm_90 (no line markers, no blank lines)."""
    cmd = [nvcc, "-std=c++17", "-arch=sm_90a", "-E", "-Xcompiler", "-P", "-D__CUDA_ARCH__=900", *defines,
           str(K.KERNEL_DIR / f"{name}.cu")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("name", K.PDL_TRIGGER_FILES)
def test_early_moves_exactly_one_trigger(name) -> None:
    """Default and early differ by one trigger line, later in the default than in the early build; the early one
    comes after the file's griddepcontrol.wait (block0, the graph's first kernel, waits for nothing: its staging)."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot preprocess the kernel files")
    import difflib

    default, early = _device_source(nvcc, name, []), _device_source(nvcc, name, [EARLY])
    diff = [d for d in difflib.ndiff(default, early) if d[:1] in "+-"]
    assert sorted(diff) == sorted([f"+ {TRIGGER}", f"- {TRIGGER}"]), diff
    added = next(i for i, d in enumerate(difflib.ndiff(default, early)) if d.startswith("+"))
    removed = next(i for i, d in enumerate(difflib.ndiff(default, early)) if d.startswith("-"))
    assert added < removed
    if name != "block0":
        waits = [i for i, line in enumerate(early) if "griddepcontrol.wait" in line]
        at = early.index(TRIGGER) if early.count(TRIGGER) == 1 else added
        assert any(w < at for w in waits), (name, waits[:3], at)


@pytest.mark.parametrize(
    "kind, case",
    [("fixed", FIXED_CASES[0]), ("fixed", FIXED_CASES[3]), ("spec", SPEC_CASES[-1]), ("spec", SPEC_CASES[4])],
)
def test_early_builds_compile_within_bounds(kind, case, tmp_path) -> None:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the kernel files")
    if kind == "fixed":
        build, shape = case
        src, defines, name = (
            K.FIXED_KINDS[K.fixed_kind(build)][0],
            K.fixed_defines(build, shape),
            K.fixed_name(build, shape),
        )
        minb = dict(zip(K.FIXED_KINDS["exdwpw5"][4], K.fixed_config(build))).get("MINB", 1)
        bound = min(255, 65536 // (256 * minb))
    else:
        build, modes, shape = case
        src, defines, name = (
            "cblock",
            K.exdwpw6_spec_defines(build, modes, shape),
            K.exdwpw6_spec_name(build, modes, shape),
        )
        nt = K.exdwpw6_build_of(build)[2]
        bound = 65536 // (nt * (512 // nt))
    cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / f"{src}.cu", tmp_path / "e.cubin", "90", verbose=True)
    cmd[1:1] = [*defines, EARLY]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = K.parse_ptxas(proc.stdout + proc.stderr)[name]
    assert r["spill_stores"] == 0 and r["spill_loads"] == 0 and r["registers"] <= bound, r


@pytest.mark.parametrize("first, second", [("early", ""), ("", "early"), ("end", "early")])
def test_a_second_value_in_one_process_is_refused(fake_cupy, net, monkeypatch, first, second) -> None:  # noqa: F811
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, first)
    be = fake_cupy.CustomBackend()
    be.prepare(net)
    assert be.info()["pdl_trigger"] == (first or "end")
    monkeypatch.setenv(K.PDL_TRIGGER_ENV, second)
    with pytest.raises(InputError, match="this process already runs the custom kernels with MBV2_PDL_TRIGGER"):
        fake_cupy.CustomBackend().prepare(net)
