"""ONNX graph -> Network. Weights from graph.initializer (and Constant nodes); BatchNorm folded.

Takes the MobileNetV2-family files users bring: torchvision exports at opsets 9..21, Clip with
min/max as attributes (opset < 11) or as inputs (initializers or Constant nodes), BatchNormalization
left unfolded, ReLU6 as Clip(0, 6) or Relu + Min(6), Flatten or Reshape before Gemm, or MatMul + Add,
any width multiplier and resolution, a fixed or dynamic batch. Anything else is refused with the
node's name, its op type and what is supported - never a wrong answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError
from .layers import Conv2d, GlobalAveragePool, Layer, Linear, ReLU6, ResidualAdd
from .network import Network

SUPPORTED_OPS = (
    "Conv, BatchNormalization, Clip(0, 6), Relu+Min(6), Add (residual, or bias after MatMul), "
    "GlobalAveragePool, ReduceMean over H and W, Flatten, Reshape to (N, -1), Gemm, MatMul, "
    "Identity, Dropout, Constant and the Shape/Gather/Unsqueeze/Concat/Cast nodes that compute a Reshape's shape"
)
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Concat", "Cast", "Squeeze", "Slice")


@dataclass
class _Val:
    """What a tensor name stands for while importing."""

    kind: str  # "input" | "layer" | "const" | "shape" | "relu" | "flat" | "matmul"
    layer: int = -1  # index into layers: this tensor is that layer's output
    array: np.ndarray | None = None
    node: str = ""  # producing node (for messages)
    extra: dict = field(default_factory=dict)


def import_file(path: str) -> Network:
    """Read an ONNX file and build the Network; ModelError with a one-line reason when it can't."""
    if not os.path.exists(path):
        raise ModelError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelError(f"model path is a directory, not an ONNX file: {path}")
    size = os.path.getsize(path)
    if size == 0:
        raise ModelError(f"model file is empty: {path}")
    with open(path, "rb") as f:
        data = f.read()
    return import_bytes(data, source=path)


def import_bytes(data: bytes, source: str = "<bytes>") -> Network:
    import onnx
    from google.protobuf.message import DecodeError

    if not data:
        raise ModelError(f"{source}: empty model")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{source}: not a readable ONNX model (truncated or another format?): {exc}") from None
    if not model.graph.node:
        raise ModelError(f"{source}: not an ONNX model, or an empty graph (no nodes)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ModelError(f"{source}: the ONNX checker rejects this file: {first}") from None
    net = _Importer(model, source).run()
    net.model_bytes = data
    return net


class _Importer:
    def __init__(self, model, source: str) -> None:
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.source = source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.vals: dict[str, _Val] = {}
        self.layers: list[Layer] = []
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers[name] = self.consumers.get(name, 0) + 1
        for out in self.graph.output:
            self.consumers[out.name] = self.consumers.get(out.name, 0) + 1
        for t in self.graph.initializer:
            self.vals[t.name] = _Val("const", array=numpy_helper.to_array(t), node=f"initializer {t.name}")
        self._np = numpy_helper

    # -- helpers ---------------------------------------------------------------------------------
    def fail(self, node, msg: str) -> ModelError:
        where = f"node {node.name or '(unnamed)'!r} ({node.op_type})" if node is not None else "graph"
        return ModelError(f"{self.source}: {where}: {msg}")

    def val(self, node, name: str) -> _Val:
        if name not in self.vals:
            raise self.fail(node, f"input {name!r} is produced by nothing this importer supports")
        return self.vals[name]

    def const(self, node, name: str, what: str) -> np.ndarray:
        v = self.val(node, name)
        if v.kind != "const" or v.array is None:
            raise self.fail(node, f"{what} ({name!r}) must be a constant (initializer or Constant node)")
        return v.array

    def layer_input(self, node, name: str) -> int:
        """The index of the layer whose output ``name`` is; it must be the latest layer (sequential net)."""
        v = self.val(node, name)
        if v.kind == "input":
            if self.layers:
                raise self.fail(node, "reads the network input after other layers; only a chain is supported")
            return -1
        if v.kind == "relu":
            raise self.fail(self._node_named(v.node), "Relu is supported only as ReLU6, i.e. followed by Min(x, 6)")
        if v.kind != "layer":
            raise self.fail(node, f"input {name!r} is a {v.kind} value, not a feature map")
        if v.layer != len(self.layers) - 1:
            raise self.fail(
                node,
                f"reads the output of layer {v.layer}, not the latest one; "
                "only a chain with residual adds is supported",
            )
        return v.layer

    def channels_of(self, index: int) -> int:
        """Channels of layer ``index``'s output (chains are sequential, so walk back to a Conv)."""
        for layer in reversed(self.layers[: index + 1]):
            if isinstance(layer, Conv2d):
                return layer.out_channels
        return -1

    def check_channels(self, node, prev: int, cin: int) -> None:
        have = self.channels_of(prev)
        if have not in (-1, cin):
            raise self.fail(node, f"expects {cin} input channels, the layer before gives {have}")

    def _node_named(self, name: str):
        for n in self.graph.node:
            if n.name == name or (n.output and n.output[0] == name):
                return n
        return None

    def attrs(self, node) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def add_layer(self, layer: Layer, out: str, node) -> None:
        layer.index = len(self.layers)
        self.layers.append(layer)
        self.vals[out] = _Val("layer", layer=layer.index, node=node.name or out)

    # -- the walk --------------------------------------------------------------------------------
    def run(self) -> Network:
        graph = self.graph
        init_names = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in init_names]
        if len(inputs) != 1:
            raise ModelError(
                f"{self.source}: the graph has {len(inputs)} data inputs; exactly one image input is supported"
            )
        inp = inputs[0]
        if inp.type.tensor_type.elem_type != 1:  # FLOAT
            raise ModelError(
                f"{self.source}: input {inp.name!r} has element type {inp.type.tensor_type.elem_type}; "
                "only float32 (1) is supported"
            )
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != 4:
            raise ModelError(f"{self.source}: input {inp.name!r} has rank {len(dims)}; expected 4 (N, C, H, W)")
        chw = []
        for d, label in zip(dims[1:], "CHW"):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                raise ModelError(
                    f"{self.source}: input {inp.name!r} has a dynamic {label} dimension; "
                    "only the batch dimension may be dynamic (re-export with a fixed resolution)"
                )
            chw.append(int(d.dim_value))
        batch = int(dims[0].dim_value) if dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
        self.vals[inp.name] = _Val("input", node="graph input")

        for node in graph.node:
            handler = getattr(self, f"op_{node.op_type}", None)
            if node.domain not in ("", "ai.onnx") or handler is None:
                dom = f" in domain {node.domain!r}" if node.domain not in ("", "ai.onnx") else ""
                raise self.fail(node, f"unsupported op type {node.op_type}{dom}; supported: {SUPPORTED_OPS}")
            handler(node)

        if len(graph.output) != 1:
            raise ModelError(
                f"{self.source}: the graph has {len(graph.output)} outputs; exactly one (logits) is supported"
            )
        outv = self.vals.get(graph.output[0].name)
        if outv is None or outv.kind != "layer" or not isinstance(self.layers[outv.layer], Linear):
            raise ModelError(
                f"{self.source}: the graph output {graph.output[0].name!r} is not the classifier's "
                "(Gemm or MatMul+Add) output"
            )
        if outv.layer != len(self.layers) - 1:
            raise ModelError(f"{self.source}: layers after the classifier are not used by the output")
        for name, v in self.vals.items():
            if v.kind == "relu" and not v.extra.get("converted") and self.consumers.get(name):
                raise self.fail(
                    self._node_named(v.node), "Relu is supported only as ReLU6 (Relu followed by Min(x, 6))"
                )
        try:
            return Network(
                self.layers,
                (chw[0], chw[1], chw[2]),
                name="MobileNetV2",
                source=self.source,
                input_name=inp.name,
                batch=batch,
            )
        except ModelError as exc:
            raise ModelError(f"{self.source}: {exc}") from None

    # -- op handlers -----------------------------------------------------------------------------
    def op_Constant(self, node) -> None:
        a = self.attrs(node)
        if "value" in a:
            arr = self._np.to_array(a["value"])
        elif "value_float" in a:
            arr = np.array(a["value_float"], np.float32)
        elif "value_floats" in a:
            arr = np.array(a["value_floats"], np.float32)
        elif "value_int" in a:
            arr = np.array(a["value_int"], np.int64)
        elif "value_ints" in a:
            arr = np.array(a["value_ints"], np.int64)
        else:
            raise self.fail(node, f"Constant with attributes {sorted(a)} is not supported")
        self.vals[node.output[0]] = _Val("const", array=arr, node=node.name)

    def op_Identity(self, node) -> None:
        self.vals[node.output[0]] = self.val(node, node.input[0])

    def op_Dropout(self, node) -> None:  # inference: identity (a mask output, if any, must be unused)
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            raise self.fail(node, "Dropout's mask output is used; only inference graphs are supported")
        self.vals[node.output[0]] = self.val(node, node.input[0])

    def op_Conv(self, node) -> None:
        a = self.attrs(node)
        prev = self.layer_input(node, node.input[0])
        w = self.const(node, node.input[1], "the weight").astype(np.float32)
        if w.ndim != 4:
            raise self.fail(node, f"weight rank {w.ndim}; only 2-D convolutions are supported")
        cout, cin_g, kh, kw = w.shape
        b = (
            self.const(node, node.input[2], "the bias").astype(np.float32)
            if len(node.input) > 2 and node.input[2]
            else np.zeros(cout, np.float32)
        )
        k = list(a.get("kernel_shape", [kh, kw]))
        strides = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        dil = list(a.get("dilations", [1, 1]))
        group = int(a.get("group", 1))
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", ""):
            raise self.fail(node, f"auto_pad={auto_pad} is not supported; export with explicit pads")
        if kh != kw or k != [kh, kw]:
            raise self.fail(node, f"kernel {k} is not square; only square kernels are supported")
        if strides[0] != strides[1]:
            raise self.fail(node, f"strides {strides} differ; only equal strides are supported")
        if len(set(pads)) != 1:
            raise self.fail(node, f"pads {pads} are not symmetric; only equal pads on every side are supported")
        if dil != [1, 1]:
            raise self.fail(node, f"dilations {dil} are not supported (only 1)")
        cin = cin_g * group
        if cout % group:
            raise self.fail(node, f"{cout} output channels do not divide into {group} groups")
        layer = Conv2d(
            name=node.name,
            in_channels=cin,
            out_channels=cout,
            kernel=kh,
            stride=int(strides[0]),
            pad=int(pads[0]),
            groups=group,
            weight=np.ascontiguousarray(w),
            bias=np.ascontiguousarray(b),
        )
        if prev >= 0:
            self.check_channels(node, prev, cin)
        self.add_layer(layer, node.output[0], node)

    def op_BatchNormalization(self, node) -> None:
        src = self.val(node, node.input[0])
        if src.kind != "layer" or not isinstance(self.layers[src.layer], Conv2d) or src.layer != len(self.layers) - 1:
            raise self.fail(node, "BatchNormalization is supported only directly after a Conv (it is folded into it)")
        if self.consumers.get(node.input[0], 0) != 1:
            raise self.fail(node, "the Conv before this BatchNormalization has other consumers; cannot fold")
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise self.fail(node, "training_mode=1 is not supported (inference only)")
        outs = [o for o in node.output[1:] if o and self.consumers.get(o)]
        if outs:
            raise self.fail(node, "running mean/var outputs are used; only inference BatchNormalization is supported")
        eps = float(a.get("epsilon", 1e-5))
        gamma, beta, mean, var = (
            self.const(node, n, w).astype(np.float64) for n, w in zip(node.input[1:5], ("scale", "bias", "mean", "var"))
        )
        conv = self.layers[src.layer]
        assert isinstance(conv, Conv2d)
        scale = gamma / np.sqrt(var + eps)
        conv.weight = np.ascontiguousarray(
            (conv.weight.astype(np.float64) * scale[:, None, None, None]).astype(np.float32)
        )
        conv.bias = ((conv.bias.astype(np.float64) - mean) * scale + beta).astype(np.float32)
        self.vals[node.output[0]] = src

    def _relu6(self, node, src_name: str, lo: float | None, hi: float | None) -> None:
        if lo != 0.0 or hi != 6.0:
            raise self.fail(node, f"Clip(min={lo}, max={hi}) is supported only as ReLU6 (min 0, max 6)")
        prev = self.layer_input(node, src_name)
        self.add_layer(ReLU6(name=node.name), node.output[0], node)
        _ = prev

    def _scalar(self, node, name: str, what: str) -> float:
        arr = self.const(node, name, what)
        if arr.size != 1:
            raise self.fail(node, f"{what} must be a scalar, has shape {arr.shape}")
        return float(arr.reshape(()))

    def op_Clip(self, node) -> None:
        a = self.attrs(node)
        if self.opset < 11 or "min" in a or "max" in a:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            lo = self._scalar(node, node.input[1], "Clip's min") if len(node.input) > 1 and node.input[1] else None
            hi = self._scalar(node, node.input[2], "Clip's max") if len(node.input) > 2 and node.input[2] else None
        self._relu6(node, node.input[0], None if lo is None else float(lo), None if hi is None else float(hi))

    def op_Relu(self, node) -> None:
        self.layer_input(node, node.input[0])
        self.vals[node.output[0]] = _Val("relu", node=node.name or node.output[0], extra={"src": node.input[0]})

    def op_Min(self, node) -> None:
        if len(node.input) != 2:
            raise self.fail(node, "Min is supported only as Min(Relu(x), 6) with two inputs")
        v0, v1 = self.val(node, node.input[0]), self.val(node, node.input[1])
        relu, six = (v0, node.input[1]) if v0.kind == "relu" else (v1, node.input[0])
        if relu.kind != "relu":
            raise self.fail(node, "Min is supported only as Min(Relu(x), 6)")
        if self.consumers.get(relu_name := next(n for n in node.input if self.vals[n] is relu), 0) != 1:
            raise self.fail(
                node, f"the Relu output {relu_name!r} has other consumers; only Relu+Min(6) as ReLU6 is supported"
            )
        self._relu6(node, relu.extra["src"], 0.0, self._scalar(node, six, "Min's bound"))
        relu.extra["converted"] = True

    def op_Add(self, node) -> None:
        v0, v1 = self.val(node, node.input[0]), self.val(node, node.input[1])
        if {v0.kind, v1.kind} == {"matmul", "const"}:  # classifier bias
            mm, bias = (v0, v1) if v0.kind == "matmul" else (v1, v0)
            lin = self.layers[mm.layer]
            assert isinstance(lin, Linear) and bias.array is not None
            b = bias.array.astype(np.float32).reshape(-1)
            if b.size != lin.out_features:
                raise self.fail(node, f"bias of size {b.size} after MatMul with {lin.out_features} outputs")
            lin.bias = b + lin.bias
            self.vals[node.output[0]] = _Val("layer", layer=mm.layer, node=node.name)
            return
        if v0.kind == "layer" and v1.kind == "layer":
            newest, older = (v0, v1) if v0.layer > v1.layer else (v1, v0)
            if newest.layer != len(self.layers) - 1:
                raise self.fail(node, "a residual Add must take the latest layer's output")
            if older.layer == newest.layer:
                raise self.fail(node, "Add of a tensor with itself is not supported")
            self.add_layer(ResidualAdd(name=node.name, skip=older.layer), node.output[0], node)
            return
        if {v0.kind, v1.kind} == {"layer", "input"}:
            raise self.fail(node, "a residual Add from the network input is not supported")
        raise self.fail(
            node,
            f"Add of a {v0.kind} and a {v1.kind} value is not supported; supported: "
            "residual Add of two feature maps, or the bias Add after the classifier's MatMul",
        )

    def op_GlobalAveragePool(self, node) -> None:
        self.layer_input(node, node.input[0])
        self.add_layer(GlobalAveragePool(name=node.name), node.output[0], node)

    def op_ReduceMean(self, node) -> None:
        a = self.attrs(node)
        axes = a.get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.const(node, node.input[1], "ReduceMean's axes").tolist()
        if axes is None or sorted(int(x) % 4 for x in axes) != [2, 3]:
            raise self.fail(node, f"ReduceMean over axes {axes} is not supported; only over H and W (2, 3)")
        self.layer_input(node, node.input[0])
        self.add_layer(GlobalAveragePool(name=node.name), node.output[0], node)
        if not a.get("keepdims", 1):
            self.vals[node.output[0]].extra["flat"] = True

    def _pooled(self, node, name: str) -> _Val:
        v = self.val(node, name)
        if v.kind != "layer" or not isinstance(self.layers[v.layer], GlobalAveragePool):
            raise self.fail(node, "Flatten/Reshape is supported only right after the global average pool")
        return v

    def op_Flatten(self, node) -> None:
        a = self.attrs(node)
        if int(a.get("axis", 1)) != 1:
            raise self.fail(node, f"Flatten axis={a.get('axis')} is not supported (only 1)")
        v = self._pooled(node, node.input[0])
        self.vals[node.output[0]] = _Val("layer", layer=v.layer, node=node.name, extra={"flat": True})

    def op_Reshape(self, node) -> None:
        v = self._pooled(node, node.input[0])
        s = self.val(node, node.input[1])
        if s.kind == "const":
            shape = [int(x) for x in np.asarray(s.array).reshape(-1)]
            channels = self.channels_of(v.layer)
            if len(shape) != 2 or shape == [-1, -1] or shape[1] not in (-1, channels) or shape[0] < -1:
                raise self.fail(node, f"Reshape to {shape} is not supported; only to (N, -1) after the pool")
        elif s.kind == "shape":
            if s.extra.get("rank") not in (None, 2):
                raise self.fail(node, "Reshape's computed shape does not have two elements; only (N, -1) is supported")
        else:
            raise self.fail(node, "Reshape's shape must be a constant or computed from Shape")
        self.vals[node.output[0]] = _Val("layer", layer=v.layer, node=node.name, extra={"flat": True})

    def _shape_op(self, node) -> None:
        for name in node.input:
            if not name:
                continue
            v = self.val(node, name)
            if node.op_type == "Shape":
                break
            if v.kind not in ("const", "shape"):
                raise self.fail(node, f"{node.op_type} on a feature map is not supported (only in a Reshape's shape)")
        rank = len([n for n in node.input if n]) if node.op_type == "Concat" else None
        for out in node.output:
            self.vals[out] = _Val("shape", node=node.name, extra={"rank": rank})

    op_Shape = op_Gather = op_Unsqueeze = op_Concat = op_Cast = op_Squeeze = op_Slice = _shape_op

    def _classifier_input(self, node, name: str) -> int:
        v = self.val(node, name)
        if v.kind != "layer" or not isinstance(self.layers[v.layer], GlobalAveragePool) or not v.extra.get("flat"):
            raise self.fail(node, "the classifier must take the flattened global-average-pool output")
        return v.layer

    def op_Gemm(self, node) -> None:
        a = self.attrs(node)
        self._classifier_input(node, node.input[0])
        if int(a.get("transA", 0)):
            raise self.fail(node, "transA=1 is not supported")
        w = self.const(node, node.input[1], "Gemm's B").astype(np.float64)
        if not int(a.get("transB", 0)):
            w = w.T
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        out_f, in_f = w.shape
        b = (
            self.const(node, node.input[2], "Gemm's C").astype(np.float64).reshape(-1)
            if len(node.input) > 2 and node.input[2]
            else np.zeros(out_f)
        )
        if b.size == 1:
            b = np.full(out_f, float(b[0]))
        if b.size != out_f:
            raise self.fail(node, f"Gemm's C has {b.size} elements; expected {out_f}")
        lin = Linear(
            name=node.name,
            in_features=in_f,
            out_features=out_f,
            weight=np.ascontiguousarray((w * alpha).astype(np.float32)),
            bias=(b * beta).astype(np.float32),
        )
        self.add_layer(lin, node.output[0], node)

    def op_MatMul(self, node) -> None:
        self._classifier_input(node, node.input[0])
        w = self.const(node, node.input[1], "MatMul's weight")
        if w.ndim != 2:
            raise self.fail(node, f"MatMul weight of rank {w.ndim}; expected 2 (in, out)")
        in_f, out_f = w.shape
        lin = Linear(
            name=node.name,
            in_features=in_f,
            out_features=out_f,
            weight=np.ascontiguousarray(w.T.astype(np.float32)),
            bias=np.zeros(out_f, np.float32),
        )
        self.add_layer(lin, node.output[0], node)
        self.vals[node.output[0]] = _Val("matmul", layer=lin.index, node=node.name)
        # a MatMul that is the graph output directly is fine too: keep it addressable as a layer
        if any(o.name == node.output[0] for o in self.graph.output):
            self.vals[node.output[0]] = _Val("layer", layer=lin.index, node=node.name)
