"""Sessions 40 - 41's measuring probes compile (nvcc for sm_90a / sm_90, no spills), on the host:
scripts/ex_phase_probe.py and dmma_probe.py include kernels/cblock.cu and call its pieces (cblock::ex_tiles_ec; ex_unit,
fma4), so a change there that breaks a probe shows here; scripts/ffma_rate_probe.py and l2_window_probe.py carry their
own small kernels. Skips with the reason where nvcc is absent. And dmma_probe's host-side weight order against the DMMA
B-fragment layout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import dmma_probe  # noqa: E402
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


def test_dmma_probe_builds_every_kernel_without_spills(nvcc, tmp_path) -> None:
    cubin, out = dmma_probe.build(nvcc, tmp_path)
    assert cubin.exists()
    entries = set(re.findall(r"Compiling entry function '(\w+)'", out))
    want = {f"rate_s{s}_a{a}" for s in dmma_probe.SHAPES for a in dmma_probe.ACCS} | set(dmma_probe.RATES2)
    want |= set(dmma_probe.PHASES) | set(dmma_probe.GPHASES) | set(dmma_probe.HPHASES)
    assert want <= entries, sorted(want - entries)
    assert not re.search(r"[1-9]\d* bytes spill", out), out[-1500:]


@pytest.mark.parametrize("kd,split", [(4, False), (8, False), (16, False), (16, True), (8, True)])
def test_dmma_fragment_weights_follow_the_b_fragment_layout(kd: int, split: bool) -> None:
    """Read back as the kernels read it (lane = 4 g + t holds B[k0 + t + 4 i][n0 + g], i < kd / 4; split: the two halves
    of a lane's fragment in separate lane-major runs), the order gives back W element for element."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((dmma_probe.CIN, dmma_probe.CH))
    f = dmma_probe.fragment_weights(w, kd, split)
    nb, ks, ntl = kd // 4, dmma_probe.CIN // kd, dmma_probe.CH // 8
    assert f.shape == (w.size,)
    back = np.full_like(w, np.nan)
    for nt in range(ntl):
        for s in range(ks):
            for lane in range(32):
                g, t = lane >> 2, lane & 3
                for i in range(nb):
                    if split and nb > 2:  # [n-tile][k-step][half][lane][2]
                        idx = (((nt * ks + s) * (nb // 2) + i // 2) * 32 + lane) * 2 + i % 2
                    else:  # [n-tile][k-step][lane][nb]
                        idx = ((nt * ks + s) * 32 + lane) * nb + i
                    back[s * kd + t + 4 * i, nt * 8 + g] = f[idx]
    np.testing.assert_array_equal(back, w)


def test_dmma_rate_kernels_do_the_planned_fmas() -> None:
    """Every rate kernel does RATE_FMA_PER_LANE float64 FMAs per lane as rate_plan counts them (K units of its FMAs
    per warp), and rate_plan's count per unit of K matches the kernel's loop: session 41's first rate_fresh figures
    were low by the factor A because the count missed its A DMMAs per unit of K."""
    src = dmma_probe.SRC
    for name, _, _acc in dmma_probe.rate_kernels():
        k, fma = dmma_probe.rate_plan(name)
        assert k * fma == dmma_probe.RATE_FMA_PER_LANE * 32, name
    body = {
        f: src[src.index(f"__device__ void {f}(") :].split("\n}\n", 1)[0] for f in ("rate", "rate_fresh", "rate_lds")
    }
    assert "for (int k = 0; k < K; ++k)" in body["rate"] and "for (int n = 0; n < NA; ++n)" in body["rate"]
    assert (
        "for (int k = 0; k < K; k += 2)" in body["rate_fresh"] and "for (int j = 0; j < 2; ++j)" in body["rate_fresh"]
    )
    assert "for (int k = 0; k < K; k += NA)" in body["rate_lds"]
    assert dmma_probe.rate_plan("rate_fresh_a4") == (dmma_probe.RATE_FMA_PER_LANE * 32 // (2048 * 4), 2048 * 4)
    with pytest.raises(ValueError):
        dmma_probe.rate_plan("d16_w12")
