"""Shared fixtures: the default model, seeded inputs, backend parametrisation, the gpu marker."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from mbv2.gpu import gpu_status


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mbv2")
    group.addoption("--backends", default="", help="comma-separated backends to test/bench (default: all available)")
    group.addoption("--full", action="store_true", help="benchmarks: batch sizes 1, 8, 64, 256 (default 1 and 64)")
    group.addoption("--all-versions", action="store_true", help="benchmarks: time every custom kernel version")
    group.addoption("--compile", action="store_true", help="benchmarks: include torch.compile (slow to compile)")
    group.addoption("--no-nvtx", action="store_true", help="turn NVTX ranges off (to measure their cost)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--no-nvtx", default=False):
        from mbv2 import nvtx

        nvtx.set_enabled(False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ok, reason = gpu_status()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def net():
    """The embedded MobileNetV2-1.0 @ 224 (seed 0), imported through the ONNX importer."""
    from mbv2.model import default_network

    return default_network()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: fresh inputs per test, reproducible run to run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
