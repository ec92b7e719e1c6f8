"""MBV2_L2_PERSIST (session 40): the batch-1 head's two programmatic-dependent launches (pwpool_c8 and the classifier
GEMV) with an L2 access-policy window over their weight array, a measuring option (results/NOTES.md "Session 40").
Host tests: the value's checks, the launch attributes cuLaunchKernelEx gets (ctypes layout as CUlaunchAttribute /
CUaccessPolicyWindow), which launches of an emulated batch-1 plan carry a window and over what, the L2 set-aside asked
of the runtime, info(), the logits unchanged, and that a second value in one process is refused."""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest

from impls import _custom_kernels as K
from impls import custom
from mbv2.errors import InputError
from mbv2.network import random_input
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)


@pytest.mark.parametrize("raw, value", [("", "off"), (" ", "off"), ("off", "off"), ("head", "head"), (" head", "head")])
def test_option_values(monkeypatch, raw, value) -> None:
    monkeypatch.setenv(K.L2_PERSIST_ENV, raw)
    assert K.l2_persist_option() == value


@pytest.mark.parametrize("raw", ["on", "all", "1", "HEAD"])
def test_option_refuses(monkeypatch, raw) -> None:
    monkeypatch.setenv(K.L2_PERSIST_ENV, raw)
    with pytest.raises(InputError, match="MBV2_L2_PERSIST=.*expected off"):
        K.l2_persist_option()


def test_launch_attrs_layout() -> None:
    assert ctypes.sizeof(custom.LaunchAttr) == 72 and ctypes.sizeof(custom.AccessPolicyWindow) == 32
    attrs, n = custom.launch_attrs(None)
    assert n == 1 and attrs[0].id == custom.PROGRAMMATIC_STREAM_SERIALIZATION and attrs[0].value.i == 1
    attrs, n = custom.launch_attrs((0x7F0000001000, 5_120_000, 0.5))
    assert n == 2 and attrs[0].id == custom.PROGRAMMATIC_STREAM_SERIALIZATION and attrs[0].value.i == 1
    w = attrs[1].value.window
    assert attrs[1].id == custom.ACCESS_POLICY_WINDOW == 1
    assert (w.base_ptr, w.num_bytes, w.hitRatio) == (0x7F0000001000, 5_120_000, 0.5)
    assert (w.hitProp, w.missProp) == (2, 1)  # CU_ACCESS_PROPERTY_PERSISTING, CU_ACCESS_PROPERTY_STREAMING
    raw = bytes(attrs)[72 + 8 : 72 + 8 + 28]  # the second attribute's value: CUaccessPolicyWindow's bytes
    assert raw[:8] == (0x7F0000001000).to_bytes(8, "little") and raw[8:16] == (5_120_000).to_bytes(8, "little")


def _with_l2(monkeypatch, most: int) -> list:
    """The stand-in runtime with persistingL2CacheMaxSize = most and a recorded deviceSetLimit."""
    calls: list = []
    rt = sys.modules["cupy"].cuda.runtime
    props = rt.getDeviceProperties(0)
    monkeypatch.setattr(rt, "getDeviceProperties", lambda i: {**props, "persistingL2CacheMaxSize": most})
    monkeypatch.setattr(rt, "deviceSetLimit", lambda limit, value: calls.append((limit, value)), raising=False)
    return calls


def test_head_launches_carry_the_window(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv(K.L2_PERSIST_ENV, "head")
    calls = _with_l2(monkeypatch, 37 << 20)
    be = fake_cupy.CustomBackend(kernels="fuse=v51", graph=False)  # (pwpool_c8 and the GEMV: two launches)
    be.prepare(net)
    assert calls == [(custom.LIMIT_PERSISTING_L2_CACHE_SIZE, K.L2_PERSIST_BYTES)] and be.l2_set_aside == 8 << 20
    got = {}
    for la in be.plan(1).launches:
        w = be._persist_window(la)
        if w is not None:
            got[K.generic_of(la.name)] = w
            assert w[:2] == (la.args[1].data.ptr, la.args[1].nbytes), (la.name, w)
    assert set(got) == {"pwpool_c8", "linear_gemv_v5"}, got
    assert got["linear_gemv_v5"][1] == 1000 * 1280 * 4 and got["linear_gemv_v5"][2] == 1.0
    assert got["pwpool_c8"][1] == 320 * 1280 * 4 and got["pwpool_c8"][2] == 1.0
    info = be.info()
    assert info["l2_persist"] == "head" and info["l2_set_aside"] == 8 << 20
    be.l2_set_aside = 1 << 20  # a set-aside smaller than the window: the hit ratio is what it holds
    w = be._persist_window(next(la for la in be.plan(1).launches if la.name.startswith("linear_gemv")))
    assert w[2] == pytest.approx((1 << 20) / (1000 * 1280 * 4))


def test_off_sets_nothing_and_the_logits_are_the_same(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    x = random_input(net, 1, seed=1)
    monkeypatch.delenv(K.L2_PERSIST_ENV, raising=False)
    calls = _with_l2(monkeypatch, 37 << 20)
    be = fake_cupy.CustomBackend()
    be.prepare(net)
    assert calls == [] and be.l2_set_aside == 0 and "l2_persist" not in be.info()
    assert all(be._persist_window(la) is None for la in be.plan(1).launches)
    y0 = be.run(x)
    custom._PROCESS_OPTIONS.clear()  # (a fresh process)
    monkeypatch.setenv(K.L2_PERSIST_ENV, "head")
    be2 = fake_cupy.CustomBackend()
    be2.prepare(net)
    np.testing.assert_array_equal(be2.run(x), y0)


def test_no_set_aside_on_this_gpu_is_refused(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv(K.L2_PERSIST_ENV, "head")
    _with_l2(monkeypatch, 0)
    with pytest.raises(InputError, match="sets aside no L2"):
        fake_cupy.CustomBackend().prepare(net)


def test_a_second_value_in_one_process_is_refused(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    _with_l2(monkeypatch, 37 << 20)
    monkeypatch.setenv(K.L2_PERSIST_ENV, "head")
    fake_cupy.CustomBackend().prepare(net)
    monkeypatch.setenv(K.L2_PERSIST_ENV, "off")
    with pytest.raises(InputError, match="this process already runs the custom kernels with MBV2_L2_PERSIST"):
        fake_cupy.CustomBackend().prepare(net)


@pytest.mark.parametrize("version, head", [("v53", "pwpool_fc_c8"), ("v55", "pwpool_fc_c8e")])
def test_fused_head_carries_the_window(fake_cupy, net, monkeypatch, version, head) -> None:  # noqa: F811
    """Session 45: fuse v53 / v55's one head launch (the head conv, the pool and the classifier) carries the window
    over its conv weights (argument 1), as pwpool_c8 does; no GEMV launch is left at batch 1."""
    monkeypatch.setenv(K.L2_PERSIST_ENV, "head")
    _with_l2(monkeypatch, 37 << 20)
    be = fake_cupy.CustomBackend(kernels=f"fuse={version}", graph=False)
    be.prepare(net)
    got = {K.generic_of(la.name): be._persist_window(la) for la in be.plan(1).launches}
    got = {k: w for k, w in got.items() if w is not None}
    assert set(got) == {head}, got
    assert got[head][1] == 320 * 1280 * 4 and got[head][2] == 1.0
