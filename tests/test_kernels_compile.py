"""kernels/*.cu compile with nvcc for sm_90, and no kernel the backend uses by default spills.

CPU only (no GPU needed); skips with the reason when nvcc is absent. Each file is compiled once per
session (in parallel) with the backend's own flags plus `-Xptxas -v`, whose report is parsed.
"""

from __future__ import annotations

import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from impls import _custom_kernels as K

ARCH = "90"


@pytest.fixture(scope="session")
def ptxas_reports():
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile kernels/*.cu")
    tmp = Path(tempfile.mkdtemp(prefix="mbv2-kernels-"))

    def build(name: str):
        cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / f"{name}.cu", tmp / f"{name}.cubin", ARCH, verbose=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        return name, proc.returncode, proc.stdout + proc.stderr, " ".join(cmd)

    with ThreadPoolExecutor(max_workers=len(K.KERNEL_FILES)) as pool:
        results = list(pool.map(build, K.KERNEL_FILES))
    return {name: (rc, out, cmd) for name, rc, out, cmd in results}


@pytest.mark.parametrize("name", K.KERNEL_FILES)
def test_kernel_file_compiles_for_sm90(ptxas_reports, name):
    rc, out, cmd = ptxas_reports[name]
    assert rc == 0, f"{cmd}\n{out}"
    assert "warning" not in out.lower(), f"{cmd}\n{out}"


def test_every_version_names_an_existing_kernel(ptxas_reports):
    for fam, versions in K.KERNEL_VERSIONS.items():
        for ver in versions:
            for file, kernel in K.kernels_of(fam, ver):
                report = K.parse_ptxas(ptxas_reports[file][1])
                assert kernel in report, f"{fam} {ver}: kernel {kernel} not in kernels/{file}.cu"


# Default kernels allowed a bounded spill, measured faster than their spill-free builds (results/NOTES.md "fuse v5"):
# exdwpw5 at 3 blocks per SM (80 registers) spills <= 144 bytes per thread and beat the
# 128-register, 2-blocks-per-SM builds by 10-35% on the H100.
# hexdw3 (hfuse v3) 3-blocks-per-SM builds (80 registers) spill <= 40 bytes; the tuner picks them over the spill-free
# _b2 builds on most pairs; hexdwpw4 (hfuse v4): s1_t14_c32_p32 spills <= 48 bytes at 128 registers (2 blocks per SM;
# the tuner's pick for 32->192->32 at batch 64 / 256) (H100, results/NOTES.md "hfuse v3 / v4").
# exdwpw8 (fuse v8) builds at 128 registers spill <= 28 bytes (stores) / 76 (loads) of loop-invariant values; the
# tuned ones beat the spill-free builds of their shape (e.g. 24->144->24: _f 16 bytes 625 us, _b 0 bytes 661 us at
# batch 256; results/NOTES.md "fuse v8").
SPILL_ALLOWED = {"exdwpw5_": 144, "hexdw3_": 40, "hexdwpw4_": 48, "exdwpw8_": 76}


def test_default_kernels_do_not_spill(ptxas_reports):
    bad = []
    for file, kernel in sorted(K.default_kernels()):
        props = K.parse_ptxas(ptxas_reports[file][1]).get(kernel)
        assert props is not None, f"{kernel} not found in the ptxas report of kernels/{file}.cu"
        allowed = max((b for prefix, b in SPILL_ALLOWED.items() if kernel.startswith(prefix)), default=0)
        if max(props["spill_stores"], props["spill_loads"], props["stack"]) > allowed:
            bad.append(f"{file}.cu:{kernel} {props}")
    assert not bad, "register spills / local-memory stack frames in default kernels:\n" + "\n".join(bad)


def test_persistent_kernel_does_not_spill_and_fits_two_blocks_per_sm(ptxas_reports):
    """net v2 (kernels/persistent.cu): no spills, and <= 128 registers so that 2 blocks of 256 threads
    are resident per SM (its grid is SMs x resident blocks; the grid barrier needs them all resident)."""
    props = K.parse_ptxas(ptxas_reports["persistent"][1]).get("net_persistent")
    assert props is not None, "net_persistent not found in the ptxas report of kernels/persistent.cu"
    assert not (props["spill_stores"] or props["spill_loads"] or props["stack"]), props
    assert props["registers"] <= 128, props


SPEC_CASES = [("exdwpw6_c24x16_t512", (3, 0, 1, 0), None), ("exdwpw6_c12x16", (2, 4, 1, 1), None),
              ("exdwpw6_c24", (1, 8, 0, 0), None), ("exdwpw6_c36x16_t512", (0, 2, 1, 1), None),
              ("exdwpw6_c24x16_t512", (3, 0, 1, 0), (14, 14, 64, 384, 64, 14, 14, 1, 2, 1, 1, 0, 1)),
              ("exdwpw6_c24", (2, 4, 1, 1), (7, 7, 160, 960, 160, 7, 7, 1, 3, 1, 1, 0, 1)),
              ("exdwpw6_c12x16", (3, 2, 1, 0), (28, 28, 32, 192, 64, 14, 14, 2, 1, 1, 1, 0, 0)),
              # fuse v37's bulk-copy reduce (red_pf 2) on one tile per cluster and on several (the 7x7 blocks)
              ("exdwpw6_c36x16_t512", (5, 402, 2, 1), (14, 14, 96, 576, 96, 14, 14, 1, 2, 1, 1, 0, 1)),
              ("exdwpw6_c24_t512", (4, 404, 2, 0), (7, 7, 160, 960, 320, 7, 7, 1, 3, 1, 1, 0, 0)),
              # fuse v36's ordered projection tiles (proj_cols 5 / 4) on v35's unrolled boustrophedon expansion
              ("exdwpw6_c36x16_t512", (5, 402, 1, 0), (14, 14, 96, 576, 96, 14, 14, 1, 2, 1, 1, 0, 1)),
              ("exdwpw6_c24_t512", (4, 404, 1, 0), (7, 7, 160, 960, 320, 7, 7, 1, 3, 1, 1, 0, 0))]  # fmt: skip


# fuse v24: MobileNetV2-1.0's batch-1 exdwpw5 builds, block0 and the head's pwpool_c8 at 224 and 160, shapes fixed;
# fuse v31's pwpool_fc_c8 at 224 and on a 3x3 map with 12 classes (blocks of rank 3 - 7 own no column); fuse v54's
# pwpool_c10 and v55's pwpool_fc_c8e at the same shapes
FIXED_CASES = [
    ("exdwpw5_s2_c16_o24_t4x8_cc48", (112, 112, 96, 56, 56, 1, 1, 1, 0, 0)),
    ("exdwpw5_s1_c24_o24_t4x8_cc72", (56, 56, 144, 56, 56, 1, 1, 1, 0, 1)),
    ("exdwpw5_s2_c24_o32_t4x4_cc144", (56, 56, 144, 28, 28, 1, 1, 1, 0, 0)),
    ("exdwpw5_s2_c24_o32_t4x4_cc72_k2", (56, 56, 144, 28, 28, 1, 1, 1, 0, 0)),  # fuse v25: clusters of 2
    ("exdwpw5_s1_c24_o24_t8x8", (56, 56, 144, 56, 56, 1, 1, 1, 0, 1)),
    ("block0_v3_c32_p16", (224, 224, 112, 112)),
    ("block0_v3_c32_p16", (160, 160, 80, 80)),
    ("pwpool_c8", (49, 320, 1280, 1)),
    ("pwpool_c8", (25, 320, 1280, 1)),
    ("pwpool_fc_c8", (49, 320, 1280, 1000, 1)),
    ("pwpool_fc_c8", (9, 320, 1280, 12, 1)),
    ("pwpool_c10", (49, 320, 1280, 1)),
    ("pwpool_c10", (25, 320, 1280, 1)),
    ("pwpool_fc_c8e", (49, 320, 1280, 1000, 1)),
    ("pwpool_fc_c8e", (9, 320, 1280, 12, 1)),
]


@pytest.mark.parametrize("build,shape", FIXED_CASES)
def test_fixed_shape_build_compiles_alone_spilling_no_more(ptxas_reports, build, shape, tmp_path, monkeypatch):
    """fuse v24: kernels/conv.cu (block0.cu, cblock.cu) with EXDWPW5_SPEC_ONLY (BLOCK0_, PWPOOL_) holds exactly the
    one fixed build, named as the host expects, within its generic build's register bound (256 threads x MINB blocks
    per SM) and spilling no more than the generic build (the 3-blocks-per-SM exdwpw5 builds spill by design:
    SPILL_ALLOWED); the backend's build function caches it."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the kernel files")
    kind = K.fixed_kind(build)
    cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / f"{K.FIXED_KINDS[kind][0]}.cu", tmp_path / "f.cubin", ARCH, verbose=True)
    cmd[1:1] = K.fixed_defines(build, shape)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = K.parse_ptxas(proc.stdout + proc.stderr)
    name = K.fixed_name(build, shape)
    assert list(report) == [name], list(report)
    r = report[name]
    g = K.parse_ptxas(ptxas_reports[K.FIXED_KINDS[kind][0]][1])[build]
    assert r["spill_stores"] <= g["spill_stores"] and r["spill_loads"] <= g["spill_loads"], (r, g)
    minb = dict(zip(K.FIXED_KINDS[kind][4], K.fixed_config(build))).get("MINB", 1)  # pwpool_c8: __launch_bounds__(256)
    assert r["registers"] <= min(255, 65536 // (256 * minb)), r
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path / "cache"))
    b = K.build_fixed(build, shape, ARCH, nvcc)
    assert b.name == name and b.path is not None and b.path.exists()
    mtime = b.path.stat().st_mtime_ns
    assert K.build_fixed(build, shape, ARCH, nvcc).path == b.path and b.path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("build,modes,shape", SPEC_CASES)
def test_fixed_mode_exdwpw6_build_compiles_alone_without_spills(build, modes, shape, tmp_path, monkeypatch):
    """fuse v22 (v23: with a shape): kernels/cblock.cu with EXDWPW6_SPEC_ONLY holds exactly the one fixed build,
    named as the host expects, spill-free and with no more registers than its generic build's bound (512 / NT blocks
    per SM); the backend's build function caches it (a second call compiles nothing)."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile kernels/cblock.cu")
    cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / "cblock.cu", tmp_path / "spec.cubin", ARCH, verbose=True)
    cmd[1:1] = K.exdwpw6_spec_defines(build, modes, shape)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = K.parse_ptxas(proc.stdout + proc.stderr)
    name = K.exdwpw6_spec_name(build, modes, shape)
    assert list(report) == [name], list(report)
    r = report[name]
    assert r["spill_stores"] == 0 and r["spill_loads"] == 0, r
    nt = K.exdwpw6_build_of(build)[2]
    assert r["registers"] <= 65536 // (nt * (512 // nt)), r
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path / "cache"))
    b = K.build_exdwpw6_spec(build, modes, ARCH, nvcc, shape)
    assert b.name == name and b.path is not None and b.path.exists()
    mtime = b.path.stat().st_mtime_ns
    assert K.build_exdwpw6_spec(build, modes, ARCH, nvcc, shape).path == b.path and b.path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("build,modes,shape", SPEC_CASES[-2:])
def test_push_measuring_build_compiles_without_spills(build, modes, shape, tmp_path):
    """Session 25's measuring define -DEXDWPW6_PUSH=1 (scripts/ex_variant_stamps.py --set push: the projection's tile
    results stored into the summing block's shared memory) compiles on the fixed builds it is measured on, spill-free
    and within the build's register bound (fuse v37's bulk-copy reduce: SPEC_CASES' red_pf 2 builds above)."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile kernels/cblock.cu")
    cmd = K.nvcc_command(nvcc, K.KERNEL_DIR / "cblock.cu", tmp_path / "push.cubin", ARCH, verbose=True)
    cmd[1:1] = [*K.exdwpw6_spec_defines(build, modes, shape), "-DEXDWPW6_PUSH=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = K.parse_ptxas(proc.stdout + proc.stderr)[K.exdwpw6_spec_name(build, modes, shape)]
    nt = K.exdwpw6_build_of(build)[2]
    assert r["spill_stores"] == 0 and r["spill_loads"] == 0 and r["registers"] <= 65536 // nt, r
