"""The five layer kinds of MobileNetV2 and their seed-style listing.

A Network is an ordered list of these. Every layer reads the output of the layer before it;
ResidualAdd also reads the output of an earlier layer (``skip``, an index into the same list).
Weights are float32 NumPy arrays (BatchNorm already folded into Conv2d at import).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class Layer:
    """Base class. ``index`` is the position in Network.layers; shapes are per image (C, H, W) or (F,)."""

    index: int = -1
    name: str = ""
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    kind = "Layer"

    def describe(self, layers: list[Layer]) -> str:
        return self.kind

    def flops(self) -> int:
        """Floating-point operations per image (a multiply-add counts 2)."""
        return 0

    def param_count(self) -> int:
        return 0


@dataclass(eq=False)
class Conv2d(Layer):
    in_channels: int = 0
    out_channels: int = 0
    kernel: int = 1
    stride: int = 1
    pad: int = 0
    groups: int = 1
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32), repr=False)
    bias: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32), repr=False)

    kind = "Conv2d"

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    @property
    def is_pointwise(self) -> bool:
        return self.kernel == 1 and self.groups == 1 and self.stride == 1 and self.pad == 0

    def describe(self, layers: list[Layer]) -> str:
        return (
            f"Conv2d({self.in_channels // self.groups}, {self.out_channels}, {self.kernel}, "
            f"{self.stride}, {self.pad}, {self.groups})"
        )

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return (
            (h + 2 * self.pad - self.kernel) // self.stride + 1,
            (w + 2 * self.pad - self.kernel) // self.stride + 1,
        )

    def macs(self) -> int:
        c, h, w = self.out_shape
        return c * h * w * (self.in_channels // self.groups) * self.kernel * self.kernel

    def flops(self) -> int:
        return 2 * self.macs()

    def param_count(self) -> int:
        return int(self.weight.size + self.bias.size)


@dataclass(eq=False)
class ReLU6(Layer):
    kind = "ReLU6"


@dataclass(eq=False)
class ResidualAdd(Layer):
    skip: int = -1  # index of the layer whose output is added to the previous layer's output

    kind = "ResidualAdd"

    def describe(self, layers: list[Layer]) -> str:
        return f"ResidualAdd({layers[self.skip].describe(layers)})"


@dataclass(eq=False)
class GlobalAveragePool(Layer):
    kind = "GlobalAveragePool"


@dataclass(eq=False)
class Linear(Layer):
    in_features: int = 0
    out_features: int = 0
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32), repr=False)  # (out, in)
    bias: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32), repr=False)

    kind = "Linear"

    def describe(self, layers: list[Layer]) -> str:
        return f"Linear({self.in_features}, {self.out_features})"

    def macs(self) -> int:
        return self.in_features * self.out_features

    def flops(self) -> int:
        return 2 * self.macs()

    def param_count(self) -> int:
        return int(self.weight.size + self.bias.size)


LAYER_KINDS = ("Conv2d", "ReLU6", "ResidualAdd", "GlobalAveragePool", "Linear")


def census(layers: list[Layer]) -> str:
    counts = {k: 0 for k in LAYER_KINDS}
    for layer in layers:
        counts[layer.kind] += 1
    return " ".join(f"{k}={v}" for k, v in counts.items())


def listing(layers: list[Layer], title: str = "MobileNetV2") -> str:
    """The seed's Step 2 listing: header, one numbered entry per layer, footer, census line."""
    lines = ["-----", title, "-----"]
    lines += [f"{i}: {layer.describe(layers)}" for i, layer in enumerate(layers)]
    lines += ["-----", census(layers)]
    return "\n".join(lines)
