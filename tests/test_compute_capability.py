"""The custom backend's GPU requirement (impls/custom.py available(): compute capability 9.0 or later), and the gpu
tests that skip with its reason on an older GPU (conftest.py runs_custom / skip_custom) while the other backends'
gpu tests run. No GPU here: the device query and the items are stand-ins."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import conftest
from impls import custom


@pytest.mark.parametrize("cc", [(7, 5), (8, 0), (8, 6), (8, 9)])
def test_below_9_0_the_reason_names_the_gpu_and_what_runs_instead(cc) -> None:
    why = custom.compute_capability_issue("NVIDIA A100-SXM4-80GB", *cc)
    assert f"GPU 0 (NVIDIA A100-SXM4-80GB) is {cc[0]}.{cc[1]}" in why and "9.0 or later" in why
    assert "thread-block clusters" in why and "cudnn, torch, ort and numpy backends run" in why


@pytest.mark.parametrize("cc", [(9, 0), (10, 0), (12, 0)])
def test_from_9_0_on_no_reason(cc) -> None:
    assert custom.compute_capability_issue("GPU", *cc) == ""


def _fake_cupy(monkeypatch, major: int, minor: int) -> None:
    props = {"major": major, "minor": minor}
    runtime = SimpleNamespace(getDeviceProperties=lambda i: props)
    monkeypatch.setitem(sys.modules, "cupy", SimpleNamespace(cuda=SimpleNamespace(runtime=runtime)))
    monkeypatch.setattr(custom, "gpu_status", lambda: (True, "NVIDIA Test GPU"))
    monkeypatch.setattr(custom.K, "find_nvcc", lambda: "/usr/local/cuda/bin/nvcc")


def test_available_checks_the_compute_capability(monkeypatch) -> None:
    _fake_cupy(monkeypatch, 8, 6)
    ok, why = custom.available()
    assert not ok and "GPU 0 (NVIDIA Test GPU) is 8.6" in why
    _fake_cupy(monkeypatch, 9, 0)
    assert custom.available() == (True, "")


def _item(path: str, gpu: bool = True, **params):
    marks: list = []
    item = SimpleNamespace(path=Path(path), keywords={"gpu": 1} if gpu else {}, add_marker=marks.append, marks=marks)
    if params:
        item.callspec = SimpleNamespace(params=params)
    return item


def test_only_the_custom_gpu_tests_skip_with_the_reason(monkeypatch) -> None:
    items = [
        _item("tests/test_custom_e2e.py"),  # a custom gpu test module
        _item("tests/test_custom_host.py", gpu=False),  # its host tests run
        _item("tests/test_soak.py", name="custom"),  # parametrized with the backend name
        _item("tests/test_soak.py", name="cudnn"),
        _item("tests/test_torch_peer.py"),
        _item("tests/test_nvtx_gpu.py", backend="torch", batch=1),
    ]
    monkeypatch.setattr(custom, "available", lambda: (False, "needs compute capability 9.0 or later (...)"))
    conftest.skip_custom(items)
    skipped = [bool(it.marks) for it in items]
    assert skipped == [True, False, True, False, False, False]
    mark = items[0].marks[0]
    assert mark.name == "skip" and mark.kwargs["reason"].startswith("the custom backend is unavailable: needs compute")
    monkeypatch.setattr(custom, "available", lambda: (True, ""))
    fresh = [_item("tests/test_custom_e2e.py"), _item("tests/test_soak.py", name="custom")]
    conftest.skip_custom(fresh)
    assert not any(it.marks for it in fresh)
