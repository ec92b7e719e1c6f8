"""Soak: 10,000 end-to-end runs per GPU backend, device memory flat, no error, same answer at the end."""

from __future__ import annotations

import numpy as np
import pytest

import impls
from mbv2.network import random_input
from mbv2.tolerances import assert_close

pytestmark = [pytest.mark.gpu, pytest.mark.slow, pytest.mark.exclusive_gpu]  # memGetInfo: device-wide
RUNS = 10_000
FLAT_BYTES = 16 << 20  # allowed drift of device memory in use, after warm-up


def _device_used() -> int:
    import cupy

    free, total = cupy.cuda.runtime.memGetInfo()
    return int(total - free)


@pytest.mark.parametrize("name", ["custom", "cudnn", "torch"])
def test_soak_10k_runs_memory_flat(net, name):
    ok, reason = impls.available(name)
    if not ok:
        pytest.skip(f"backend {name} not available: {reason}")
    x = random_input(net, 1, seed=42)
    with impls.create(name, graph=True) as be:
        be.prepare(net)
        first = be.run(x)
        step = getattr(be, "forward_device", None)
        xd = be.to_device(x) if step else None

        def once():
            return step(xd) if step else be.run(x)

        for _ in range(100):  # warm-up: pools, graphs, autotuning settle
            once()
        be.synchronize()
        before = _device_used()
        for i in range(RUNS):
            y = once()
            if i % 1000 == 999:
                be.synchronize()
        be.synchronize()
        after = _device_used()
        last = be.to_host(y) if step else y
    assert np.all(np.isfinite(last))
    assert_close(last, first, "fp32", "e2e", what=f"{name} run {RUNS} vs run 1")
    assert after - before <= FLAT_BYTES, f"{name}: device memory in use grew by {(after - before) >> 20} MiB"
