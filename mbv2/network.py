"""Network: the ordered layers, the fusion pass, and the walk that runs them on a backend.

Fusion: Conv2d followed by ReLU6 becomes one conv op with ``act=True``; Conv2d followed by
ResidualAdd becomes one conv op with ``residual`` = the fused op whose output is the skip input.
Each backend runs ``Network.fused`` through the Op interface (impls/base.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import nvtx
from .errors import ModelError
from .layers import Conv2d, GlobalAveragePool, Layer, Linear, ReLU6, ResidualAdd, census, listing

if TYPE_CHECKING:
    from impls.base import Backend

NETWORK_INPUT = -1  # the "producer" index of the network's input tensor


@dataclass(eq=False)
class FusedOp:
    """One entry of the fused list: what a backend launches."""

    index: int  # position in Network.fused
    kind: str  # "conv", "add", "pool", "linear"
    layer: Layer  # the Conv2d / ResidualAdd / GlobalAveragePool / Linear it runs
    input: int  # fused index of the op whose output is this op's input (NETWORK_INPUT for the first)
    act: bool = False  # ReLU6 fused into a conv
    residual: int | None = None  # conv: fused index of the skip tensor added after the conv; add: the skip
    covers: tuple[int, ...] = ()  # indices into Network.layers this op stands for

    @property
    def label(self) -> str:
        names = {"conv": "Conv2d", "add": "ResidualAdd", "pool": "GlobalAveragePool", "linear": "Linear"}
        s = names[self.kind]
        if self.act:
            s += "+ReLU6"
        if self.kind == "conv" and self.residual is not None:
            s += "+ResidualAdd"
        return s

    def describe(self, layers: list[Layer]) -> str:
        s = self.layer.describe(layers)
        if self.act:
            s += " + ReLU6"
        if self.kind == "conv" and self.residual is not None:
            s += f" + ResidualAdd(skip from layer {layers[self.covers[-1]].skip})"  # type: ignore[attr-defined]
        return s

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.layer.in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layer.out_shape


@dataclass(eq=False)
class Network:
    layers: list[Layer]
    input_shape: tuple[int, int, int]  # (C, H, W) per image
    name: str = "MobileNetV2"
    source: str = ""  # path of the ONNX file it came from, if any
    input_name: str = "input"
    batch: int | None = None  # fixed batch of the ONNX input, or None when dynamic
    fused: list[FusedOp] = field(default_factory=list)
    model_bytes: bytes = field(default=b"", repr=False)  # the ONNX file's bytes (ONNX Runtime runs them)

    def __post_init__(self) -> None:
        for i, layer in enumerate(self.layers):
            layer.index = i
        self.infer_shapes()
        self.fused = fuse(self.layers)

    # -- structure -------------------------------------------------------------------------------
    def infer_shapes(self) -> None:
        shape: tuple[int, ...] = tuple(self.input_shape)
        outs: list[tuple[int, ...]] = []
        for layer in self.layers:
            layer.in_shape = shape
            if isinstance(layer, Conv2d):
                if len(shape) != 3 or shape[0] != layer.in_channels:
                    raise ModelError(f"layer {layer.index} {layer.describe(self.layers)}: input shape {shape}")
                h, w = layer.out_hw(shape[1], shape[2])
                if h < 1 or w < 1:
                    raise ModelError(f"layer {layer.index}: spatial size {shape[1:]} too small for the conv")
                shape = (layer.out_channels, h, w)
            elif isinstance(layer, ResidualAdd):
                if not 0 <= layer.skip < layer.index - 1:
                    raise ModelError(f"layer {layer.index} ResidualAdd: skip index {layer.skip} is not earlier")
                if outs[layer.skip] != shape:
                    raise ModelError(f"layer {layer.index} ResidualAdd: shapes {shape} and {outs[layer.skip]} differ")
            elif isinstance(layer, GlobalAveragePool):
                if len(shape) != 3:
                    raise ModelError(f"layer {layer.index} GlobalAveragePool: input shape {shape}")
                shape = (shape[0],)
            elif isinstance(layer, Linear):
                if shape != (layer.in_features,):
                    raise ModelError(f"layer {layer.index} Linear: input shape {shape}, expects ({layer.in_features},)")
                shape = (layer.out_features,)
            layer.out_shape = shape
            outs.append(shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    @property
    def num_classes(self) -> int:
        return int(self.output_shape[0])

    def listing(self, fused: bool = False) -> str:
        if not fused:
            return listing(self.layers, self.name)
        lines = ["-----", f"{self.name} (fused)", "-----"]
        for op in self.fused:
            span = f"{op.covers[0]}" if len(op.covers) == 1 else f"{op.covers[0]}-{op.covers[-1]}"
            lines.append(f"{op.index}: {op.describe(self.layers)}  [layers {span}]")
        lines += ["-----", census(self.layers) + f" -> {len(self.fused)} fused ops"]
        return "\n".join(lines)

    def convs(self) -> list[Conv2d]:
        return [layer for layer in self.layers if isinstance(layer, Conv2d)]

    def macs(self) -> int:
        return sum(layer.macs() for layer in self.layers if isinstance(layer, (Conv2d, Linear)))

    def param_count(self) -> int:
        return sum(layer.param_count() for layer in self.layers)

    def bottleneck_blocks(self) -> list[tuple[FusedOp, FusedOp, FusedOp]]:
        """The (expansion, depthwise, projection) fused-op triples of the inverted-residual blocks, in order: a 1x1
        conv, the depthwise conv that reads it, the 1x1 conv that reads that (scripts/cblock_sweep.py and
        tr_stamps.py time and stamp the custom backend's block kernels on them)."""
        out = []
        for ex, dw, pw in zip(self.fused, self.fused[1:], self.fused[2:]):
            if not (ex.kind == dw.kind == pw.kind == "conv" and dw.input == ex.index and pw.input == dw.index):
                continue
            if ex.layer.is_pointwise and dw.layer.is_depthwise and pw.layer.is_pointwise:
                out.append((ex, dw, pw))
        return out

    def distinct_ops(self) -> list[dict[str, Any]]:
        """Every distinct operator configuration of the fused list, with the ops that share it.

        The key is everything that changes the work: for convs the channels, kernel, stride, pad,
        groups, input spatial size, fused activation and residual. Used by tests and benchmarks so
        that no shape table is written twice.
        """
        seen: dict[tuple, dict[str, Any]] = {}
        for op in self.fused:
            lay = op.layer
            if op.kind == "conv":
                assert isinstance(lay, Conv2d)
                key = (
                    "conv",
                    lay.in_channels,
                    lay.out_channels,
                    lay.kernel,
                    lay.stride,
                    lay.pad,
                    lay.groups,
                    lay.in_shape[1],
                    lay.in_shape[2],
                    op.act,
                    op.residual is not None,
                )
            else:
                key = (op.kind, *lay.in_shape)
            entry = seen.setdefault(key, {"key": key, "op": op, "ops": []})
            entry["ops"].append(op.index)
        return list(seen.values())

    # -- running ---------------------------------------------------------------------------------
    def forward(self, backend: Backend, x: Any) -> Any:
        """Walk the fused list on ``backend`` with device tensors; returns the last op's output."""
        last_use: dict[int, int] = {}
        for op in self.fused:
            last_use[op.input] = op.index
            if op.residual is not None:
                last_use[op.residual] = op.index
        outs: dict[int, Any] = {NETWORK_INPUT: x}
        y = x
        for op in self.fused:
            with nvtx.annotate(f"{backend.name}/{op.covers[0]}:{op.label}"):
                a = outs[op.input]
                if op.kind == "conv":
                    res = outs[op.residual] if op.residual is not None else None
                    y = backend.conv2d(a, op.layer, act=op.act, residual=res)  # type: ignore[arg-type]
                elif op.kind == "add":
                    y = backend.add(a, outs[op.residual])  # type: ignore[index]
                elif op.kind == "pool":
                    y = backend.global_avg_pool(a)
                elif op.kind == "linear":
                    y = backend.linear(a, op.layer)  # type: ignore[arg-type]
                else:  # pragma: no cover - fuse() makes only the kinds above
                    raise AssertionError(op.kind)
            outs[op.index] = y
            for k in [k for k, last in last_use.items() if last == op.index]:
                if k != op.index:
                    outs.pop(k, None)
        return y


def fuse(layers: list[Layer]) -> list[FusedOp]:
    """Fold ReLU6 and ResidualAdd into the conv before them where the conv's raw output has no other use."""
    skip_sources = {layer.skip for layer in layers if isinstance(layer, ResidualAdd)}
    producer: dict[int, int] = {}  # layer index -> fused index whose output equals that layer's output
    fused: list[FusedOp] = []
    i = 0
    prev = NETWORK_INPUT
    while i < len(layers):
        layer = layers[i]
        covers = [i]
        if isinstance(layer, Conv2d):
            op = FusedOp(index=len(fused), kind="conv", layer=layer, input=prev)
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(nxt, ReLU6) and i not in skip_sources:
                op.act = True
                covers.append(i + 1)
            elif isinstance(nxt, ResidualAdd) and i not in skip_sources:
                op.residual = producer[nxt.skip]
                covers.append(i + 1)
        elif isinstance(layer, ResidualAdd):
            op = FusedOp(index=len(fused), kind="add", layer=layer, input=prev, residual=producer[layer.skip])
        elif isinstance(layer, GlobalAveragePool):
            op = FusedOp(index=len(fused), kind="pool", layer=layer, input=prev)
        elif isinstance(layer, Linear):
            op = FusedOp(index=len(fused), kind="linear", layer=layer, input=prev)
        elif isinstance(layer, ReLU6):
            prev_layer = layers[i - 1] if i else None
            raise ModelError(
                f"layer {i} ReLU6 follows {prev_layer.describe(layers) if prev_layer else 'the input'}; "
                "only ReLU6 directly after a Conv2d (whose raw output has no other use) is supported"
            )
        else:  # pragma: no cover
            raise ModelError(f"layer {i}: unknown layer kind {layer.kind}")
        op.covers = tuple(covers)
        fused.append(op)
        for c in covers:
            producer[c] = op.index
        prev = op.index
        i += len(covers)
    return fused


def random_input(net: Network, batch: int, seed: int = 0) -> np.ndarray:
    """A seeded float32 input batch of standard-normal pixels (like a normalised image)."""
    if batch < 1:
        from .errors import InputError

        raise InputError(f"batch must be >= 1, got {batch}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, *net.input_shape), dtype=np.float32)
