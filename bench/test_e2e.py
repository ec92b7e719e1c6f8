"""End-to-end benchmarks: the whole network x backend x batch 1, 8, 64, 256 x {eager, CUDA-graph replay}.

Every backend gets the same seeded input, and its logits are checked against ONNX Runtime (CPU
provider) before anything is timed: a wrong backend is reported as failed, never timed.

Figures: device time (CUDA events around device-side inference: input already on the device, logits
left there) and host time (pytest-benchmark: host array in, host logits out, synchronised); img/s.
MLPerf-named scenarios: single-stream (batch 1, latency p50/p90/p99 over many queries, host time
per query) and offline (the largest batch, img/s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from bench.harness import (
    INPUT_SEED,
    E2ECase,
    backend_extra,
    dtypes_for,
    e2e_batches,
    e2e_modes,
    is_cpu_backend,
    plan_kernels,
    statuses,
    unavailable_param,
)
from mbv2.errors import BackendUnavailable
from mbv2.network import random_input
from mbv2.tolerances import TOP1_AGREEMENT, rel_l2, tolerance, top1_agreement

SINGLE_STREAM_QUERIES_GPU = 1000
SINGLE_STREAM_QUERIES_CPU = {"numpy": 40, "ort": 200}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    scenario = {"test_e2e": "", "test_single_stream": "single-stream", "test_offline": "offline"}[
        metafunc.function.__name__
    ]
    params = []
    for st in statuses(config):
        if not st.ok:
            params.append(unavailable_param(st))
            continue
        batches = e2e_batches(config, st.name)
        if scenario == "single-stream":
            batches = (1,)
        elif scenario == "offline":
            batches = (max(batches),)
        for dtype in dtypes_for(config, st.name):
            for mode in e2e_modes(config, st.name):
                for batch in batches:
                    case = E2ECase(st.name, batch, dtype, mode, scenario)
                    params.append(pytest.param(case, id=case.id))
    metafunc.parametrize("case", params)


@dataclass
class Runner:
    device_fn: Callable[[int], Any]  # device input -> device logits (no host transfer)
    host_fn: Callable[[], np.ndarray]  # host input -> host logits, synchronised
    to_host: Callable[[Any], np.ndarray]
    stream: Any = None
    graph_by: str = ""  # "backend" (its own graph/compile) or "harness" (mbv2.timing.CudaGraph)


def make_runner(be: Any, net: Any, x: np.ndarray, case: E2ECase) -> Runner:
    stream = None
    if not is_cpu_backend(case.backend, be):
        from mbv2.timing import stream_of

        stream = stream_of(be)
    # a backend's own device-side entry (its graph replay when created with graph=True): input staged
    # by one run(x), then only launches, no host copies
    for entry in ("enqueue", "launch_network"):
        fn = getattr(be, entry, None)
        if callable(fn):
            be.run(x)  # plans the batch and stages x in the backend's input buffer
            return Runner(
                lambda i, fn=fn: fn(case.batch), lambda: be.run(x), be.to_host, stream, "backend" if case.graph else ""
            )
    if hasattr(be, "forward_device"):
        xd = be.to_device(x)
        return Runner(
            lambda i: be.forward_device(xd), lambda: be.run(x), be.to_host, stream, "backend" if case.graph else ""
        )
    if not case.graph:
        xd = be.to_device(x)
        return Runner(lambda i: net.forward(be, xd), lambda: be.run(x), be.to_host, stream)
    # graph mode for a backend that exposes no device-side entry: capture Network.forward ourselves
    import cupy

    from mbv2.timing import CudaGraph

    cap = cupy.cuda.Stream(non_blocking=True)
    with cap:
        xd = be.to_device(x)
    try:
        g = CudaGraph(lambda: net.forward(be, xd), cap)
    except Exception as exc:
        pytest.skip(
            f"{case.backend}: CUDA-graph capture of Network.forward failed "
            f"({exc.__class__.__name__}: {exc}); give the backend forward_device() with graph=True"
        )

    def host() -> np.ndarray:
        with cap:
            xd[...] = be.to_device(x)
        out = g.replay()
        cap.synchronize()
        return be.to_host(out)

    return Runner(lambda i: g.replay(), host, be.to_host, cap, "harness")


def _check(case: E2ECase, logits: np.ndarray, ref: np.ndarray, what: str) -> dict[str, Any]:
    tol = tolerance(case.dtype, "e2e")
    if logits.shape != ref.shape:
        pytest.fail(
            f"{case.backend} {case.mode} bs{case.batch}: {what} logits shape {logits.shape}, "
            f"ONNX Runtime {ref.shape}; not timed"
        )
    err = rel_l2(logits, ref)
    agree = top1_agreement(logits, ref)
    need = TOP1_AGREEMENT[case.dtype]
    if not (err < tol and agree >= need):
        pytest.fail(
            f"{case.backend} {case.dtype} {case.mode} bs{case.batch}: {what} logits vs ONNX Runtime: "
            f"rel L2 {err:.3e} (tolerance {tol:.0e}), top-1 agreement {agree:.3f} (need {need}); not timed"
        )
    return {"reference": "ort-cpu", "rel_l2": err, "top1_agree": agree, "tolerance": tol}


def _prepare(case: E2ECase, backend_pool, net, ort_reference):
    if case is None:  # pragma: no cover - unavailable backends are skipped by their marker
        pytest.skip("backend not available")
    try:
        be = backend_pool.get(case.backend, case.dtype, **case.options)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    x = random_input(net, case.batch, seed=INPUT_SEED)
    ref = ort_reference(case.batch)
    runner = make_runner(be, net, x, case)
    # correctness first, on both paths that get timed
    dev_out = runner.device_fn(0)
    if runner.stream is not None:
        runner.stream.synchronize()
    check = _check(case, runner.to_host(dev_out), ref, "device path")
    _check(case, runner.host_fn(), ref, "run()")
    return be, runner, check


def _measure(case: E2ECase, be: Any, runner: Runner, benchmark, host_rounds: int) -> dict[str, Any]:
    cpu = is_cpu_backend(case.backend, be)
    out: dict[str, Any] = {}
    if not cpu:
        from mbv2.timing import cuda_event_timing

        repeats = 50 if case.batch <= 8 else 20
        t = cuda_event_timing(runner.device_fn, warmup=5, repeats=repeats, stream=runner.stream, inner=1)
        out.update(
            timer="cuda-event",
            device_ms=t.median_ms,
            device_p10_ms=t.p10_ms,
            device_p90_ms=t.p90_ms,
            device_p99_ms=t.p99_ms,
            device_min_ms=t.min_ms,
            repeats=t.repeats,
        )
    benchmark.pedantic(runner.host_fn, rounds=host_rounds, warmup_rounds=2 if not cpu else 1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        data = sorted(stats.stats.data)

        def pct(p: float) -> float:
            return data[min(len(data) - 1, max(0, round(p / 100 * (len(data) - 1))))] * 1e3

        out.update(
            host_ms=stats.stats.median * 1e3,
            latency_p50_ms=pct(50),
            latency_p90_ms=pct(90),
            latency_p99_ms=pct(99),
            host_rounds=len(data),
        )
    else:
        out.update(host_ms=None)
    if cpu:
        out.update(
            timer="host",
            device_ms=out.get("host_ms"),
            timer_note="CPU backend: no CUDA events; device_ms is the host median",
        )
    return out


def _extra(case: E2ECase, be: Any, net: Any, runner: Runner, check: dict, figures: dict) -> dict[str, Any]:
    d: dict[str, Any] = {
        "kind": "e2e",
        "backend": case.backend,
        "batch": case.batch,
        "dtype": case.dtype,
        "graph": case.graph,
        "mode": case.mode,
        "scenario": case.scenario or None,
        "graph_by": runner.graph_by or None,
        "input_seed": INPUT_SEED,
        "flops": int(2 * net.macs() * case.batch),
        "check": check,
        **backend_extra(be),
        **plan_kernels(be, case.batch),
        **figures,
    }
    for key, src in (("images_per_s", "device_ms"), ("images_per_s_host", "host_ms")):
        ms = d.get(src)
        d[key] = case.batch / ms * 1e3 if ms else None
    if d.get("device_ms"):
        d["gflops"] = d["flops"] / d["device_ms"] / 1e6
    return d


def _host_rounds(case: E2ECase, cpu: bool) -> int:
    if not cpu:
        return 50 if case.batch <= 8 else 20
    per_image_s = {"numpy": 0.02, "ort": 0.004}.get(case.backend, 0.02)
    return int(min(20, max(3, 1.5 / (per_image_s * case.batch))))


def test_e2e(case: E2ECase, benchmark, backend_pool, net, ort_reference) -> None:
    be, runner, check = _prepare(case, backend_pool, net, ort_reference)
    cpu = is_cpu_backend(case.backend, be)
    figures = _measure(case, be, runner, benchmark, _host_rounds(case, cpu))
    benchmark.extra_info.update(_extra(case, be, net, runner, check, figures))


def test_single_stream(case: E2ECase, benchmark, backend_pool, net, ort_reference) -> None:
    """MLPerf single-stream: one image per query, latency percentiles over many queries (host time)."""
    be, runner, check = _prepare(case, backend_pool, net, ort_reference)
    cpu = is_cpu_backend(case.backend, be)
    queries = SINGLE_STREAM_QUERIES_CPU.get(case.backend, 40) if cpu else SINGLE_STREAM_QUERIES_GPU
    figures = _measure(case, be, runner, benchmark, queries)
    benchmark.extra_info.update(_extra(case, be, net, runner, check, figures))


def test_offline(case: E2ECase, benchmark, backend_pool, net, ort_reference) -> None:
    """MLPerf offline: the largest batch, throughput in images/s."""
    be, runner, check = _prepare(case, backend_pool, net, ort_reference)
    cpu = is_cpu_backend(case.backend, be)
    figures = _measure(case, be, runner, benchmark, _host_rounds(case, cpu))
    benchmark.extra_info.update(_extra(case, be, net, runner, check, figures))
