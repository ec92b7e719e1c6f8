"""The NVTX ranges are really there: Nsight Compute, filtering on one layer's range, captures exactly
that layer's kernels (DESIGN.md, NVTX)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess

import pytest

import impls
from mbv2 import nvtx
from mbv2.profile import e2e_range, layer_range, ncu_filters, worker_cmd

pytestmark = pytest.mark.gpu
GPU_BACKENDS = ("custom", "cudnn", "torch")


def _backend() -> str:
    """The first available GPU backend (MBV2_NVTX_BACKEND picks one)."""
    why = []
    pick = os.environ.get("MBV2_NVTX_BACKEND")
    for b in (pick,) if pick else GPU_BACKENDS:
        ok, reason = impls.available(b)
        if ok:
            return b
        why.append(f"{b}: {reason}")
    pytest.skip("no GPU backend available (" + "; ".join(why) + ")")


# each ncu run is a new process: the kernels must be the same choice in every process (torch's
# cudnn.benchmark autotuning is not, so the torch peer runs on cuDNN's heuristics here)
WORKER_OPTIONS = {"torch": {"cudnn_benchmark": False}}


def ncu_kernels(ncu: str, expr: str, backend: str, batch: int = 1) -> tuple[list[str], str]:
    """Kernel names ncu profiled under ``--nvtx-include expr`` for one annotated run of the worker."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        ncu,
        "--clock-control",  # never touch the GPU's clocks (ncu locks them to base by default)
        "none",
        "--nvtx",
        "--nvtx-include",
        expr,
        "--metrics",
        "gpu__time_duration.sum",
        "--csv",
        "--page",
        "raw",
        *worker_cmd(backend, batch, WORKER_OPTIONS.get(backend)),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=root, env=env)
    text = proc.stdout + proc.stderr
    if "ERR_NVGPUCTRPERM" in text:
        pytest.skip("ncu may not read the GPU performance counters here (ERR_NVGPUCTRPERM)")
    assert proc.returncode == 0, f"ncu failed ({proc.returncode}):\n{text[-3000:]}"
    lines = proc.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        return [], text
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))
    names = [r["Kernel Name"] for r in rows if r.get("ID", "").isdigit()]
    return names, text


def test_ncu_layer_range_captures_exactly_that_layers_kernels(net):
    ncu = shutil.which("ncu")
    if ncu is None:
        pytest.skip("Nsight Compute (ncu) is not on PATH")
    if nvtx.status().startswith("off"):
        pytest.skip(f"NVTX is {nvtx.status()}")
    backend = _backend()
    a, b = net.fused[1], net.fused[2]  # the first depthwise conv and the project conv after it
    if backend == "custom":  # fused kernels (block0, fuse) leave some ops without a launch of their own
        with impls.create("custom") as be:
            be.prepare(net)
            n_launches = {label: hi - lo for label, lo, hi in be.plan(1).op_ranges}

        def launches(op) -> int:
            return n_launches.get(f"custom/{op.covers[0]}:{op.label}", 0)

        a, b = next((o, n) for o, n in zip(net.fused, net.fused[1:]) if launches(o) and launches(n))
    got = {}
    for label, rng in (("a", layer_range(backend, a)), ("b", layer_range(backend, b)), ("e2e", e2e_range(backend, 1))):
        expr = ncu_filters(rng)[0]
        names, log = ncu_kernels(ncu, expr, backend)
        if not names:  # say which filter form would have worked, to fix ncu_filters
            others = {e: len(ncu_kernels(ncu, e, backend)[0]) for e in ncu_filters(rng)[1:]}
            pytest.fail(f"ncu --nvtx-include {expr!r} captured no kernel; other forms: {others}\n{log[-2000:]}")
        got[label] = names
    ka, kb, ke = got["a"], got["b"], got["e2e"]
    assert len(ka) + len(kb) < len(ke), (ka, kb, len(ke))
    # the two layers' kernels are consecutive in the whole run, a's then b's: the filter selected those
    # kernels and no neighbour's
    pair = ka + kb
    assert any(ke[i : i + len(pair)] == pair for i in range(len(ke) - len(pair) + 1)), (ka, kb, ke)
