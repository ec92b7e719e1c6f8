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
        median_ms=statistics.median(s), p10_ms=pct(10), p90_ms=pct(90), p99_ms=pct(99), min_ms=s[0],
        mean_ms=statistics.fmean(s), stdev_ms=statistics.pstdev(s) if len(s) > 1 else 0.0,
        repeats=len(s), warmup=warmup, samples_ms=list(samples_ms),
    )


def cuda_event_timing(fn: Callable[[int], Any], *, warmup: int = 10, repeats: int = 100,
                      stream: Any = None, inner: int = 1) -> Timing:
    """Median device time of ``fn(i)`` (i = repeat index, for rotating input buffers).

    Each sample brackets ``inner`` calls with two events on ``stream`` (CuPy's current stream when
    None) and divides by ``inner``; use inner > 1 for kernels of a few microseconds.
    """
    import cupy

    stream = stream if stream is not None else cupy.cuda.get_current_stream()
    for i in range(warmup):
        fn(i)
    stream.synchronize()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    samples: list[float] = []
    k = 0
    for _ in range(repeats):
        start.record(stream)
        for _ in range(inner):
            fn(k)
            k += 1
        stop.record(stream)
        stop.synchronize()
        samples.append(cupy.cuda.get_elapsed_time(start, stop) / inner)
    return summarize(samples, warmup)


def host_timing(fn: Callable[[int], Any], *, warmup: int = 3, repeats: int = 20,
                sync: Callable[[], None] | None = None) -> Timing:
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
        fn()  # one eager run first: lazy module loads and allocations happen outside the capture
        stream.synchronize()
        stream.begin_capture()
        try:
            self.result = fn()
        finally:
            self.graph = stream.end_capture()
        self.graph.upload(stream) if hasattr(self.graph, "upload") else None

    def replay(self) -> Any:
        self.graph.launch(self.stream)
        return self.result
