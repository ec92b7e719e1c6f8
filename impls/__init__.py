"""Backend registry: name -> module. Availability is data: ``available(name) -> (bool, reason)``.

Each backend module defines ``available() -> tuple[bool, str]`` and ``create(**options) -> Backend``.
Modules are imported lazily so that a missing CUDA library never breaks ``import impls``.
Adding a backend: one new module and one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mbv2.errors import BackendUnavailable

if TYPE_CHECKING:
    from .base import Backend

BACKENDS: dict[str, str] = {
    "numpy": "impls.numpy_ref",
    "ort": "impls.ort",
    "custom": "impls.custom",
    "cudnn": "impls.cudnn",
    "torch": "impls.torch_peer",
}


def names() -> list[str]:
    return list(BACKENDS)


def _module(name: str):
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; known backends: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def available(name: str) -> tuple[bool, str]:
    """(True, "") or (False, why not). Never raises for a known name."""
    try:
        mod = _module(name)
    except BackendUnavailable:
        raise
    except Exception as exc:  # a backend module that fails to import is unavailable, with the reason
        return False, f"cannot import {BACKENDS[name]}: {exc.__class__.__name__}: {exc}"
    try:
        return mod.available()
    except Exception as exc:
        return False, f"{exc.__class__.__name__}: {exc}"


def create(name: str, **options: Any) -> Backend:
    """A new backend instance, or BackendUnavailable with the reason."""
    ok, reason = available(name)
    if not ok:
        raise BackendUnavailable(f"backend {name!r} is not available: {reason}")
    return _module(name).create(**options)
