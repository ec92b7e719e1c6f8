"""Session 40's measuring probes compile (nvcc for sm_90a / sm_90, no spills), on the host: scripts/ex_phase_probe.py
includes kernels/cblock.cu and calls its expansion (cblock::ex_tiles_ec), so a change there that breaks the probe
shows here; scripts/ffma_rate_probe.py and l2_window_probe.py carry their own small kernels. Skips with the reason
where nvcc is absent."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from impls import _custom_kernels as K

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import ex_phase_probe  # noqa: E402
import ffma_rate_probe  # noqa: E402
import l2_window_probe  # noqa: E402


@pytest.fixture(scope="module")
def nvcc() -> str:
    path = K.find_nvcc()
    if path is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the probes")
    return path


def _ptxas(nvcc: str, src: str, tmp: Path, arch: str) -> str:
    cu = tmp / "probe.cu"
    cu.write_text(src)
    cmd = [nvcc, *K.NVCC_FLAGS, f"-arch=sm_{arch}", "-cubin", "-Xptxas", "-v", "-o", str(tmp / "p.cubin"), str(cu)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_ex_phase_probe_builds_every_variant_without_spills(nvcc, tmp_path) -> None:
    cubin, out = ex_phase_probe.build(nvcc, tmp_path)
    assert cubin.exists()
    entries = re.findall(r"Compiling entry function '(\w+)'", out)
    assert set(ex_phase_probe.VARIANTS) <= set(entries), (entries, out[-1500:])
    assert "bytes spill" in out and not re.search(r"[1-9]\d* bytes spill", out), out[-1500:]
    assert set(ex_phase_probe.CHECKED) <= set(ex_phase_probe.VARIANTS)


def test_ffma_rate_probe_compiles_without_spills(nvcc, tmp_path) -> None:
    report = _ptxas(nvcc, ffma_rate_probe.SRC, tmp_path, "90")
    for tp, tc in ffma_rate_probe.TILES:
        assert f"t{tp}x{tc}" in report
    assert not re.search(r"[1-9]\d* bytes spill", report), report[-1500:]


def test_l2_window_probe_kernel_compiles(nvcc, tmp_path) -> None:
    report = _ptxas(nvcc, l2_window_probe.SRC, tmp_path, "90")
    assert "read_sum" in report and not re.search(r"[1-9]\d* bytes spill", report)
