"""CUDA-event timing: warm-up, many repeats, medians; and a CUDA-graph capture helper.

Device work is asynchronous: every figure here comes from CUDA events recorded on the stream the
work runs on, read after the stop event has completed. Nothing is compiled, allocated or uploaded
between the events: callers prepare first and pass a closure that only launches.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    mean_ms: float
    stdev_ms: float
    repeats: int
    warmup: int
    samples_ms: list[float] = field(default_factory=list, repr=False)

    def as_dict(self, samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not samples:
            d.pop("samples_ms")
        return d


def summarize(samples_ms: list[float], warmup: int) -> Timing:
    if not samples_ms:
        raise ValueError("no samples")
    s = sorted(samples_ms)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]

    return Timing(
        median_ms=statistics.median(s),
        p10_ms=pct(10),
        p90_ms=pct(90),
        p99_ms=pct(99),
        min_ms=s[0],
        mean_ms=statistics.fmean(s),
        stdev_ms=statistics.pstdev(s) if len(s) > 1 else 0.0,
        repeats=len(s),
        warmup=warmup,
        samples_ms=list(samples_ms),
    )


def cuda_event_timing(
    fn: Callable[[int], Any],
    *,
    warmup: int = 10,
    repeats: int = 100,
    stream: Any = None,
    inner: int = 1,
    hide_launch: bool = True,
) -> Timing:
    """Median device time of ``fn(i)`` (i = call index, for rotating input buffers).

    Each sample brackets ``inner`` calls with two events on ``stream`` (CuPy's current stream when
    None) and divides by ``inner``; use inner > 1 for kernels of a few microseconds.

    hide_launch: before each sample, queue a spin kernel on ``stream`` that keeps the GPU busy for
    longer than the host needs to enqueue the ``inner`` calls (estimated from the warm-up). The
    calls then run back to back, so the figure is device time, not Python launch rate. The spin
    kernel itself runs before the start event and is not counted.
    """
    import cupy

    stream = stream if stream is not None else cupy.cuda.get_current_stream()
    timed_from = warmup // 2  # the first calls may compile or autotune: not a launch-rate sample
    t0 = time.perf_counter()
    for i in range(warmup):
        if i == timed_from:
            t0 = time.perf_counter()
        fn(i)
    host_per_call_us = (time.perf_counter() - t0) * 1e6 / max(1, warmup - timed_from)
    stream.synchronize()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    spin_us = min(50_000.0, 1.5 * host_per_call_us * inner + 50.0) if hide_launch else 0.0
    samples: list[float] = []
    k = warmup
    for _ in range(repeats):
        if spin_us:
            spin(spin_us, stream)
        start.record(stream)
        for _ in range(inner):
            fn(k)
            k += 1
        stop.record(stream)
        stop.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, stop) / inner)
    return summarize(samples, warmup)


_SPIN_SRC = r"""
extern "C" __global__ void mbv2_spin(unsigned long long ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
"""
_spin_kernels: dict[int, tuple[Any, Any]] = {}  # id(CuPy module) -> (the module, its compiled mbv2_spin)


def spin(us: float, stream: Any = None) -> None:
    """Queue a one-thread kernel that busy-waits ``us`` microseconds on ``stream`` (GPU time only). Used by
    cuda_event_timing (hide_launch) and by the custom backend's autotuner (its timed windows). The kernel is compiled
    once per CuPy module, so a test's stand-in CuPy never hands its kernel to the real one."""
    import cupy

    entry = _spin_kernels.get(id(cupy))
    if entry is None or entry[0] is not cupy:
        entry = _spin_kernels[id(cupy)] = (cupy, cupy.RawKernel(_SPIN_SRC, "mbv2_spin"))
    stream = stream if stream is not None else cupy.cuda.get_current_stream()
    with stream:
        entry[1]((1,), (1,), (cupy.uint64(int(us * 1e3)),))


def l2_cache_bytes() -> int:
    """L2 size of the current device (0 when unknown)."""
    try:
        import cupy

        return int(cupy.cuda.Device().attributes.get("L2CacheSize", 0))
    except Exception:
        return 0


def rotation_count(
    working_set_bytes: int, l2_bytes: int | None = None, *, max_copies: int = 16, max_total_bytes: int = 1 << 30
) -> int:
    """How many input buffer sets to rotate through so that consecutive calls miss in L2.

    1 when one working set already exceeds twice the L2 (nothing to rotate); otherwise enough sets
    to span 2x the L2, bounded by ``max_copies`` and ``max_total_bytes``.
    """
    l2 = l2_cache_bytes() if l2_bytes is None else l2_bytes
    if l2 <= 0 or working_set_bytes <= 0 or working_set_bytes >= 2 * l2:
        return 1
    n = -(-2 * l2 // working_set_bytes) + 1
    n = min(n, max_copies, max(1, max_total_bytes // working_set_bytes))
    return max(1, int(n))


def stream_of(backend: Any) -> Any:
    """The CuPy stream a backend launches on: its ``stream`` (a CuPy stream) or ``cuda_stream``
    (a raw handle, e.g. from torch), else CuPy's current stream."""
    import cupy

    s = getattr(backend, "stream", None)
    if s is not None and hasattr(s, "ptr") and hasattr(s, "synchronize"):
        return s
    handle = getattr(backend, "cuda_stream", None)
    if callable(handle):
        handle = handle()
    if isinstance(handle, int):
        import warnings

        with warnings.catch_warnings():  # CuPy 14 deprecates ExternalStream for Stream.from_external(obj)
            warnings.simplefilter("ignore", DeprecationWarning)
            return cupy.cuda.ExternalStream(handle)
    return cupy.cuda.get_current_stream()


def host_timing(
    fn: Callable[[int], Any], *, warmup: int = 3, repeats: int = 20, sync: Callable[[], None] | None = None
) -> Timing:
    """Wall time of ``fn(i)`` including ``sync()`` (host view: launch overhead and synchronisation)."""
    for i in range(warmup):
        fn(i)
    if sync:
        sync()
    samples = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        if sync:
            sync()
        samples.append((time.perf_counter() - t0) * 1e3)
    return summarize(samples, warmup)


class CudaGraph:
    """Capture ``fn()`` (launches on ``stream`` only, no allocation, no sync) once; ``replay()`` it.

    CuPy's stream capture: the closure must enqueue everything on ``stream`` (a non-default
    cupy.cuda.Stream) and must not allocate from a pool that returns memory during capture.
    """

    def __init__(self, fn: Callable[[], Any], stream: Any) -> None:
        self.stream = stream
        with stream:
            fn()  # one eager run first: lazy module loads and allocations happen outside the capture
        stream.synchronize()
        with stream:
            stream.begin_capture()
            try:
                self.result = fn()
            finally:
                self.graph = stream.end_capture()
        if hasattr(self.graph, "upload"):
            self.graph.upload(stream)

    def replay(self) -> Any:
        self.graph.launch(self.stream)
        return self.result
