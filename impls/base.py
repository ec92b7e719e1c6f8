"""The Op interface every backend implements (DESIGN.md, The Op interface).

A backend works on its own device arrays: ``to_device`` takes a host NumPy array in the network's
layout (NCHW for images, (N, F) for features) and returns the backend's array, in whatever layout
the backend keeps internally; ``to_host`` gives back NumPy in the network's layout. ``run`` does the
whole network: upload, walk the fused list (Network.forward), download.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from mbv2 import nvtx
from mbv2.errors import InputError
from mbv2.layers import Conv2d, Linear
from mbv2.network import Network
from mbv2.tolerances import DTYPES


class Backend(abc.ABC):
    name = "base"
    #: dtypes this backend can run; the run refuses others with a clear error
    dtypes: tuple[str, ...] = ("fp32",)

    def __init__(self, dtype: str = "fp32", **options: Any) -> None:
        if dtype not in DTYPES and dtype != "fp64":
            raise InputError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        if dtype not in self.dtypes:
            raise InputError(f"backend {self.name!r} supports dtype {', '.join(self.dtypes)}, not {dtype!r}")
        self.dtype = dtype
        self.options = options
        self.net: Network | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def prepare(self, net: Network) -> None:
        """Upload weights, compile, choose algorithms, plan buffers. Nothing of this in timed regions."""
        self.net = net

    def close(self) -> None:
        """Release device resources. Safe to call twice."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> dict[str, Any]:
        """What this backend chose and runs on (versions, algorithms, kernel versions) for results."""
        return {"backend": self.name, "dtype": self.dtype}

    # -- data movement ---------------------------------------------------------------------------
    @abc.abstractmethod
    def to_device(self, x: np.ndarray) -> Any: ...

    @abc.abstractmethod
    def to_host(self, y: Any) -> np.ndarray: ...

    def synchronize(self) -> None:
        """Wait for all work this backend queued (no-op for host backends)."""

    # -- the ops ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def conv2d(self, x: Any, layer: Conv2d, act: bool = False, residual: Any = None) -> Any:
        """conv(x) + bias, then ReLU6 when act, then + residual when given."""

    @abc.abstractmethod
    def add(self, a: Any, b: Any) -> Any: ...

    @abc.abstractmethod
    def global_avg_pool(self, x: Any) -> Any:
        """(N, C, H, W) -> (N, C)."""

    @abc.abstractmethod
    def linear(self, x: Any, layer: Linear) -> Any:
        """(N, in) -> (N, out): x @ W.T + b."""

    # -- whole network ---------------------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> None:
        if self.net is None:
            raise RuntimeError(f"backend {self.name!r}: call prepare(net) before run()")
        validate_input(self.net, x)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, classes) as float32 NumPy for a host batch x (N, C, H, W)."""
        self.check_input(x)
        assert self.net is not None
        with nvtx.annotate(f"{self.name}/e2e/bs{x.shape[0]}"):
            xd = self.to_device(x)
            y = self.net.forward(self, xd)
            out = self.to_host(y)
        return out


def validate_input(net: Network, x: Any) -> None:
    """Refuse what the network cannot take, with a message that says what and where."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"input must be a NumPy array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise InputError(f"input dtype is {x.dtype}, expected float32 (convert with x.astype(np.float32))")
    dims = ", ".join(map(str, net.input_shape))
    if x.ndim != len(net.input_shape) + 1:
        raise InputError(f"input has rank {x.ndim} (shape {x.shape}), expected rank 4: (batch, {dims})")
    if x.shape[0] < 1:
        raise InputError(f"batch must be >= 1, got {x.shape[0]}")
    if tuple(x.shape[1:]) != tuple(net.input_shape):
        raise InputError(
            f"input shape {tuple(x.shape)} does not match the model's (batch, {', '.join(map(str, net.input_shape))})"
        )
    if net.batch is not None and x.shape[0] != net.batch:
        raise InputError(f"the model has a fixed batch of {net.batch}; the input has batch {x.shape[0]}")
    # one float64 sum reads the batch once and cannot overflow for finite float32 input; NaN/Inf propagate
    if not np.isfinite(x.sum(dtype=np.float64)):
        bad = np.argwhere(~np.isfinite(x))
        first = tuple(int(i) for i in bad[0])
        raise InputError(f"input holds {len(bad)} NaN/Inf value(s); first at index {first} (value {x[first]})")
