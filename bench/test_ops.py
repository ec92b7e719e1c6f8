"""Per-operator benchmarks: every distinct operator configuration of the network (net.distinct_ops())
x every available backend x batch 1 and 64 (1, 8, 64, 256 with --full).

The figure is the CUDA-event median of device time (warm-up first; input buffers rotated when the
working set fits in L2; a spin kernel hides Python's launch cost so back-to-back calls are timed).
pytest-benchmark itself records host time including synchronisation (benchmark.pedantic).
CPU backends have no CUDA events: their device_ms is the host median (extra_info timer="host").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.harness import (
    CPU_BACKENDS,
    OpCase,
    Rotation,
    backend_extra,
    dtypes_for,
    family_of,
    gpu_inner,
    is_cpu_backend,
    kernel_versions,
    launched_kernels,
    op_batches,
    op_call,
    op_choice,
    op_extra,
    op_inputs,
    op_work,
    rates,
    statuses,
    unavailable_param,
    version_option,
)
from mbv2.errors import BackendUnavailable

_NET: list[Any] = []


def _net():
    if not _NET:
        from mbv2.model import default_network

        _NET.append(default_network())
    return _NET[0]


def _distinct():
    return {e["op"].index: e for e in _net().distinct_ops()}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    params = []
    distinct = _distinct()
    for st in statuses(config):
        if not st.ok:
            params.append(unavailable_param(st))
            continue
        variants: list[tuple[tuple, str, set | None]] = [((), "", None)]
        if config.getoption("--all-versions"):
            kv = kernel_versions(st.name)
            opt = version_option(st.name)
            if kv:
                variants = []
                for family, versions in kv.items():
                    ops = {i for i, e in distinct.items() if family_of(st.name, e["op"]) in (family, None)}
                    for v in versions:
                        variants.append((((opt, f"{family}={v}"),), f"{family}={v}", ops))
        for dtype in dtypes_for(config, st.name):
            for batch in op_batches(config, st.name):
                for options, label, only in variants:
                    for idx, entry in distinct.items():
                        if only is not None and idx not in only:
                            continue
                        case = OpCase(st.name, batch, dtype, idx, entry["key"], options, label)
                        params.append(pytest.param(case, id=case.id))
    metafunc.parametrize("case", params)


def _host_rounds(name: str, flops: int) -> int:
    """Rounds for a CPU backend: about 0.3 s per case, at least 2."""
    rate = 3e9 if name == "numpy" else 20e9  # rough FLOP/s, only to bound the run time
    est_s = max(flops / rate, 2e-5)
    return int(min(30, max(2, 0.3 / est_s)))


def test_op(case: OpCase, benchmark, backend_pool, net) -> None:
    entry = _distinct()[case.op_index]
    op = net.fused[case.op_index]
    try:
        be = backend_pool.get(case.backend, case.dtype, **dict(case.options))
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    call = op_call(be, op)
    extra: dict[str, Any] = {
        "kind": "op",
        "backend": case.backend,
        "batch": case.batch,
        "dtype": case.dtype,
        "graph": False,
        **op_extra(net, op, entry["ops"], case.batch, case.dtype),
        "op_key": list(entry["key"]),
        **backend_extra(be),
    }
    seed = 1000 + case.op_index

    x, r = op_inputs(op, case.batch, seed)
    xd = be.to_device(x)
    rd = be.to_device(r) if r is not None else None
    if op.kind == "add":
        rd = be.to_device(x)
    first = be.to_host(call(xd, rd))
    if not np.all(np.isfinite(first)):
        pytest.fail(f"{case.backend} {op.label}: output holds NaN/Inf; not timed")

    if is_cpu_backend(case.backend, be) or case.backend in CPU_BACKENDS:
        rounds = _host_rounds(case.backend, op_work(op, case.batch, case.dtype)["flops"])
        benchmark.pedantic(call, args=(xd, rd), rounds=rounds, warmup_rounds=1)
        stats = getattr(benchmark, "stats", None)
        host_ms = stats.stats.median * 1e3 if stats is not None else None
        extra.update(
            timer="host",
            device_ms=host_ms,
            host_ms=host_ms,
            rounds=rounds,
            timer_note="CPU backend: no CUDA events; device_ms is the host median",
        )
    else:
        from mbv2.timing import cuda_event_timing, rotation_count, stream_of

        work = op_work(op, case.batch, case.dtype)
        n_sets = rotation_count(work["bytes"])
        rot = Rotation()
        rot.sets.append((xd, rd))
        for k in range(1, n_sets):
            xk, rk = op_inputs(op, case.batch, seed + 7919 * k)
            rot.sets.append(
                (
                    be.to_device(xk),
                    be.to_device(rk) if rk is not None else (be.to_device(xk) if op.kind == "add" else None),
                )
            )
        inner = gpu_inner(case.batch)
        t = cuda_event_timing(lambda i: call(*rot(i)), warmup=10, repeats=30, stream=stream_of(be), inner=inner)

        def host_call() -> None:
            call(*rot.next())
            be.synchronize()

        rounds = 50 if case.batch <= 8 else 20
        benchmark.pedantic(host_call, rounds=rounds, warmup_rounds=3)
        stats = getattr(benchmark, "stats", None)
        extra.update(
            timer="cuda-event",
            device_ms=t.median_ms,
            device_p10_ms=t.p10_ms,
            device_p90_ms=t.p90_ms,
            device_min_ms=t.min_ms,
            repeats=t.repeats,
            inner=inner,
            rotation=n_sets,
            host_ms=stats.stats.median * 1e3 if stats is not None else None,
        )
    extra.update(op_choice(be, op, case.batch, case.backend))
    kernels = launched_kernels(be, lambda: call(xd, rd))
    if kernels is not None:
        extra["kernels"] = kernels
    if case.version_label:
        extra["kernel_version"] = case.version_label
    rates(extra)
    benchmark.extra_info.update(extra)
