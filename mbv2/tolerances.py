"""Accuracy tolerances (DESIGN.md, Correctness): the only place these numbers live.

Relative L2 error ``||y - ref|| / ||ref||`` against the NumPy float64 reference (or against ONNX
Runtime end to end). NaN or Inf never passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = ("fp32", "tf32", "fp16")


@dataclass(frozen=True)
class Tolerance:
    layer: float  # one layer against float64
    e2e: float  # whole network (logits)


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(layer=1e-5, e2e=1e-4),
    "tf32": Tolerance(layer=1e-3, e2e=5e-3),
    "fp16": Tolerance(layer=1e-2, e2e=3e-2),
}

# End-to-end top-1 agreement with ONNX Runtime required at each dtype (fraction of the batch).
TOP1_AGREEMENT = {"fp32": 1.0, "tf32": 0.95, "fp16": 0.9}


def tolerance(dtype: str, scope: str = "layer") -> float:
    if dtype not in TOLERANCES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if scope not in ("layer", "e2e"):
        raise ValueError(f"scope must be 'layer' or 'e2e', not {scope!r}")
    return getattr(TOLERANCES[dtype], scope)


def rel_l2(y: np.ndarray, ref: np.ndarray) -> float:
    """Relative L2 error in float64; inf when y holds NaN/Inf or the shapes differ."""
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"shape mismatch: result {y.shape} vs reference {ref.shape}")
    if not np.all(np.isfinite(y)):
        return float("inf")
    denom = np.linalg.norm(ref.ravel())
    num = np.linalg.norm((y - ref).ravel())
    if denom == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(num / denom)


def max_abs(y: np.ndarray, ref: np.ndarray) -> float:
    d = np.abs(np.asarray(y, np.float64) - np.asarray(ref, np.float64))
    return float(np.nanmax(d)) if np.all(np.isfinite(d)) else float("inf")


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def assert_close(y: np.ndarray, ref: np.ndarray, dtype: str = "fp32", scope: str = "layer", what: str = "") -> float:
    """Raise AssertionError (with the error, the bound and NaN count) unless rel_l2 is within tolerance."""
    err = rel_l2(y, ref)
    tol = tolerance(dtype, scope)
    if not err < tol:
        nonfinite = int(np.size(y) - np.count_nonzero(np.isfinite(np.asarray(y, np.float64))))
        raise AssertionError(
            f"{what or 'result'}: rel L2 {err:.3e} >= {tol:.0e} ({dtype}, {scope}); "
            f"{nonfinite} non-finite of {np.size(y)} elements"
        )
    return err
