"""scripts/handoff_probe.py on the host: its reference chain, and its kernels compile (nvcc, sm_90) without spills,
with the acquire / release hand-off and the PDL instructions where each variant needs them."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K

ROOT = Path(__file__).resolve().parent.parent


def _probe():
    spec = importlib.util.spec_from_file_location("handoff_probe", ROOT / "scripts/handoff_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_is_the_halo_sum_chain() -> None:
    hp = _probe()
    rng = np.random.default_rng(1)
    x0 = rng.integers(0, 1 << 20, (5, 7), dtype=np.uint32)
    x = x0.astype(np.int64)
    for _ in range(3):
        x = np.stack([x[max(t - 1, 0)] + x[t] + x[min(t + 1, 4)] + 1 for t in range(5)]) % (1 << 32)
    assert np.array_equal(hp.reference(x0, 3), x.astype(np.uint32))


def test_probe_kernels_compile(tmp_path: Path) -> None:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the probe's kernels")
    src = tmp_path / "probe.cu"
    src.write_text(_probe().SRC)
    out = subprocess.run([nvcc, "-std=c++17", "-arch=sm_90", "-cubin", "-Xptxas", "-v", "-o", str(tmp_path / "p.cubin"),
                          str(src)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "spill" in out.stderr and not re.search(r"[1-9]\d* bytes spill", out.stderr)
    ptx = subprocess.run([nvcc, "-std=c++17", "-arch=sm_90", "-ptx", "-o", "-", str(src)], capture_output=True,
                         text=True, timeout=300).stdout  # fmt: skip
    bodies = dict(re.findall(r"\.entry (step_\w+)\((.*?)\n}\n", ptx, re.S))
    assert set(bodies) == {"step_plain", "step_wait_end", "step_flag_end", "step_flag_start"}
    for name, body in bodies.items():
        flag = "flag" in name
        assert ("ld.acquire.gpu" in body) == flag and ("red.release.gpu" in body) == flag, name
        assert ("griddepcontrol.wait" in body) == (name == "step_wait_end"), name
        assert ("griddepcontrol.launch_dependents" in body) == (name != "step_plain"), name
