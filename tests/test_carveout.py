"""MBV2_CARVEOUT (session 31): the shared-memory carveout given to every kernel of the custom backend, a measuring
option (results/NOTES.md "Session 31"). Host tests: the value's checks, that every launch of an emulated plan runs a
kernel given that carveout (and none is touched when it is unset), that a second value in one process is refused,
and that a driver error names the kernel."""

from __future__ import annotations

import sys

import pytest

from impls import _custom_kernels as K
from mbv2.errors import CudaError, InputError
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)


@pytest.mark.parametrize("raw, value", [("", None), ("  ", None), ("0", 0), ("50", 50), ("100", 100), (" 100 ", 100)])
def test_carveout_option_values(monkeypatch, raw, value) -> None:
    monkeypatch.setenv(K.CARVEOUT_ENV, raw)
    assert K.carveout_option() == value


def test_carveout_option_unset(monkeypatch) -> None:
    monkeypatch.delenv(K.CARVEOUT_ENV, raising=False)
    assert K.carveout_option() is None


@pytest.mark.parametrize("raw", ["101", "-1", "max", "1.5", "50%", "1000"])
def test_carveout_option_refuses(monkeypatch, raw) -> None:
    monkeypatch.setenv(K.CARVEOUT_ENV, raw)
    with pytest.raises(InputError, match=r"MBV2_CARVEOUT=.*expected a percentage 0 - 100"):
        K.carveout_option()


def _plan_kernels(custom, net, batch: int = 1) -> tuple[object, list]:
    be = custom.CustomBackend(graph=True)
    be.prepare(net)
    return be, [la.kernel for la in be.plan(batch).launches]


def test_every_planned_kernel_gets_the_carveout(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv(K.CARVEOUT_ENV, "100")
    be, kernels = _plan_kernels(fake_cupy, net)
    assert len(kernels) >= 10
    got = {getattr(k, "name", "?"): getattr(k, "preferred_shared_memory_carveout", None) for k in kernels}
    assert set(got.values()) == {100}, got
    assert be.info()["carveout"] == 100


def test_unset_carveout_touches_no_kernel(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv(K.CARVEOUT_ENV, raising=False)
    be, kernels = _plan_kernels(fake_cupy, net)
    assert not any(hasattr(k, "preferred_shared_memory_carveout") for k in kernels)
    assert be.info()["carveout"] == "driver default"


@pytest.mark.parametrize("first, second", [("100", ""), ("", "0"), ("100", "0")])
def test_a_second_value_in_one_process_is_refused(fake_cupy, net, monkeypatch, first, second) -> None:  # noqa: F811
    monkeypatch.setenv(K.CARVEOUT_ENV, first)
    fake_cupy.CustomBackend().prepare(net)
    monkeypatch.setenv(K.CARVEOUT_ENV, second)
    with pytest.raises(InputError, match="this process already runs the custom kernels with MBV2_CARVEOUT"):
        fake_cupy.CustomBackend().prepare(net)
    monkeypatch.setenv(K.CARVEOUT_ENV, first)  # the same value again is fine
    fake_cupy.CustomBackend().prepare(net)


def test_a_driver_error_names_the_kernel(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    class Refusing(sys.modules["cupy"].RawKernel):  # type: ignore[misc,name-defined]
        def __setattr__(self, key, value):
            if key == "preferred_shared_memory_carveout":
                raise RuntimeError("CUDA_ERROR_INVALID_VALUE")
            super().__setattr__(key, value)

    monkeypatch.setenv(K.CARVEOUT_ENV, "100")
    be = fake_cupy.CustomBackend()
    be.prepare(net)
    name = next(iter(be._fns))
    be._fns[name] = Refusing(name)
    be._carved.discard(name)
    with pytest.raises(CudaError, match=rf"{name}: setting the shared-memory carveout to 100%: CUDA_ERROR_INVALID"):
        be._fn(name)
