"""CPU reference: im2col + GEMM in NumPy. ``dtype="fp64"`` is the project's ground truth.

Convolution is one code path for every group count: im2col into (groups, Cin/g * k * k, N * Ho * Wo)
and a batched matmul with the (groups, Cout/g, Cin/g * k * k) weights. Arrays are NCHW NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mbv2.layers import Conv2d, Linear

from .base import Backend

_NP_DTYPES = {"fp32": np.float32, "fp64": np.float64}


def available() -> tuple[bool, str]:
    return True, ""


def create(**options: Any) -> NumpyBackend:
    return NumpyBackend(**options)


def im2col(x: np.ndarray, k: int, stride: int, pad: int, groups: int) -> tuple[np.ndarray, int, int]:
    """(N, C, H, W) -> (groups, C/g * k * k, N * Ho * Wo), Ho, Wo."""
    n, c, h, w = x.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    if k == 1:
        win = x[:, :, : (ho - 1) * stride + 1 : stride, : (wo - 1) * stride + 1 : stride][..., None, None]
    else:
        win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
        win = win[:, :, : (ho - 1) * stride + 1 : stride, : (wo - 1) * stride + 1 : stride]
    # win: (N, C, Ho, Wo, k, k) -> (g, C/g, k, k, N, Ho, Wo)
    cols = win.reshape(n, groups, c // groups, ho, wo, k, k).transpose(1, 2, 5, 6, 0, 3, 4)
    return np.ascontiguousarray(cols).reshape(groups, (c // groups) * k * k, n * ho * wo), ho, wo


class NumpyBackend(Backend):
    name = "numpy"
    dtypes = ("fp32", "fp64")

    def __init__(self, dtype: str = "fp32", **options: Any) -> None:
        super().__init__(dtype=dtype, **options)
        self.np_dtype = _NP_DTYPES[dtype]
        self._weights: dict[int, tuple[Conv2d | Linear, np.ndarray, np.ndarray]] = {}

    def _params(self, layer: Conv2d | Linear) -> tuple[np.ndarray, np.ndarray]:
        # keyed by id() but holding the layer itself: a freed layer's id can be reused by a new one
        entry = self._weights.get(id(layer))
        if entry is None or entry[0] is not layer:
            if isinstance(layer, Conv2d):
                g = layer.groups
                w = layer.weight.reshape(g, layer.out_channels // g, -1)
            else:
                w = layer.weight
            entry = (layer, w.astype(self.np_dtype), layer.bias.astype(self.np_dtype))
            self._weights[id(layer)] = entry
        return entry[1], entry[2]

    def prepare(self, net) -> None:
        super().prepare(net)
        self._weights.clear()
        for layer in net.layers:
            if isinstance(layer, (Conv2d, Linear)):
                self._params(layer)

    def to_device(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=self.np_dtype)

    def to_host(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y)

    def conv2d(self, x: np.ndarray, layer: Conv2d, act: bool = False, residual: Any = None) -> np.ndarray:
        n = x.shape[0]
        w, b = self._params(layer)
        cols, ho, wo = im2col(x.astype(self.np_dtype, copy=False), layer.kernel, layer.stride, layer.pad, layer.groups)
        y = np.matmul(w, cols)  # (g, Cout/g, N*Ho*Wo)
        y = y.reshape(layer.out_channels, n, ho, wo).transpose(1, 0, 2, 3)
        y = y + b[None, :, None, None]
        if act:
            y = np.clip(y, 0, 6)
        if residual is not None:
            y = y + residual
        return np.ascontiguousarray(y, dtype=self.np_dtype)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def global_avg_pool(self, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=(2, 3), dtype=self.np_dtype)

    def linear(self, x: np.ndarray, layer: Linear) -> np.ndarray:
        w, b = self._params(layer)
        return x.astype(self.np_dtype, copy=False) @ w.T + b

    def run(self, x: np.ndarray) -> np.ndarray:
        return super().run(x)
