"""NVTX ranges in the domain ``mbv2`` (DESIGN.md, NVTX).

Uses the ``nvtx`` package when it is installed (it ships with the cuda12/cuda13 extras). Without
it, ranges are no-ops and ``status()`` says so; machine info records which it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

DOMAIN = "mbv2"

try:  # the nvtx package costs ~1 us per range when no tool listens
    import nvtx as _nvtx

    _DOMAIN = _nvtx.get_domain(DOMAIN)
    _REASON = ""
except Exception as exc:  # ImportError, or a broken install
    _nvtx = None
    _DOMAIN = None
    _REASON = f"nvtx package not importable ({exc.__class__.__name__}: {exc})"

_enabled = True


def set_enabled(on: bool) -> None:
    """Turn ranges on or off (``--no-nvtx`` in the benchmarks, to measure their cost)."""
    global _enabled
    _enabled = bool(on)


def status() -> str:
    if _nvtx is None:
        return f"off: {_REASON}"
    return "on" if _enabled else "off: disabled by --no-nvtx"


@contextlib.contextmanager
def annotate(message: str) -> Iterator[None]:
    if _enabled and _DOMAIN is not None:
        attrs = _DOMAIN.get_event_attributes(message=message)
        rng = _DOMAIN.start_range(attrs)
        try:
            yield
        finally:
            _DOMAIN.end_range(rng)
    else:
        yield
