"""ONNX Runtime on the same ONNX file. CUDA execution provider when onnxruntime-gpu provides it, else CPU.

The whole network runs as one InferenceSession on ``Network.model_bytes``. The per-op interface
builds a one-node ONNX model per layer (Conv [+ Clip] [+ Add], Add, GlobalAveragePool, Gemm) once,
so that ONNX Runtime answers the same single-layer questions as the other backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mbv2.errors import BackendUnavailable
from mbv2.layers import Conv2d, Linear

from .base import Backend

OPSET = 17


def available() -> tuple[bool, str]:
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:
        return False, f"onnxruntime is not importable ({exc.__class__.__name__}: {exc}); pip install onnxruntime"
    return True, ""


def create(**options: Any) -> OrtBackend:
    return OrtBackend(**options)


def providers(device: str = "auto") -> list[str]:
    import onnxruntime as ort

    have = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in have:
            raise BackendUnavailable("ONNX Runtime has no CUDAExecutionProvider here (install onnxruntime-gpu)")
        return ["CUDAExecutionProvider"]
    return ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in have else ["CPUExecutionProvider"]


class OrtBackend(Backend):
    name = "ort"

    def __init__(self, dtype: str = "fp32", device: str = "auto", **options: Any) -> None:
        super().__init__(dtype=dtype, **options)
        self.providers = providers(device)
        self._session = None
        self._op_sessions: dict[tuple, Any] = {}

    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**super().info(), "onnxruntime": ort.__version__, "providers": self.providers}

    def _new_session(self, model_bytes: bytes):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3
        return ort.InferenceSession(model_bytes, sess_options=so, providers=self.providers)

    def prepare(self, net) -> None:
        super().prepare(net)
        if not net.model_bytes:
            raise BackendUnavailable("the network carries no ONNX bytes for ONNX Runtime to run")
        self._session = self._new_session(net.model_bytes)
        self._input_name = self._session.get_inputs()[0].name

    def close(self) -> None:
        self._session = None
        self._op_sessions.clear()

    def to_device(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.float32)

    def to_host(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x)
        from mbv2 import nvtx

        with nvtx.annotate(f"{self.name}/e2e/bs{x.shape[0]}"):
            return self._session.run(None, {self._input_name: np.ascontiguousarray(x)})[0]

    # -- single ops: a tiny ONNX model each, built once per (op, shape) -------------------------
    def _op_session(self, key: tuple, build):
        if key not in self._op_sessions:
            self._op_sessions[key] = self._new_session(build().SerializeToString())
        return self._op_sessions[key]

    def conv2d(self, x: np.ndarray, layer: Conv2d, act: bool = False, residual: Any = None) -> np.ndarray:
        from onnx import TensorProto, helper, numpy_helper

        def build():
            nodes = [
                helper.make_node(
                    "Conv",
                    ["x", "w", "b"],
                    ["c"],
                    kernel_shape=[layer.kernel] * 2,
                    strides=[layer.stride] * 2,
                    pads=[layer.pad] * 4,
                    group=layer.groups,
                )
            ]
            inits = [numpy_helper.from_array(layer.weight, "w"), numpy_helper.from_array(layer.bias, "b")]
            out = "c"
            inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *layer.in_shape])]
            if act:
                inits += [
                    numpy_helper.from_array(np.array(0, np.float32), "lo"),
                    numpy_helper.from_array(np.array(6, np.float32), "hi"),
                ]
                nodes.append(helper.make_node("Clip", [out, "lo", "hi"], ["a"]))
                out = "a"
            if residual is not None:
                inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, ["N", *layer.out_shape]))
                nodes.append(helper.make_node("Add", [out, "r"], ["s"]))
                out = "s"
            return _model(nodes, inits, inputs, out)

        sess = self._op_session(("conv", id(layer), act, residual is not None), build)
        feeds = {"x": x} if residual is None else {"x": x, "r": residual}
        return sess.run(None, feeds)[0]

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        from onnx import TensorProto, helper

        def build():
            shape = ["N", *a.shape[1:]]
            inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("a", "b")]
            return _model([helper.make_node("Add", ["a", "b"], ["s"])], [], inputs, "s")

        return self._op_session(("add", a.shape[1:]), build).run(None, {"a": a, "b": b})[0]

    def global_avg_pool(self, x: np.ndarray) -> np.ndarray:
        from onnx import TensorProto, helper

        def build():
            inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x.shape[1:]])]
            nodes = [
                helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                helper.make_node("Flatten", ["p"], ["f"], axis=1),
            ]
            return _model(nodes, [], inputs, "f")

        return self._op_session(("pool", x.shape[1:]), build).run(None, {"x": x})[0]

    def linear(self, x: np.ndarray, layer: Linear) -> np.ndarray:
        from onnx import TensorProto, helper, numpy_helper

        def build():
            inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", layer.in_features])]
            inits = [numpy_helper.from_array(layer.weight, "w"), numpy_helper.from_array(layer.bias, "b")]
            return _model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], inits, inputs, "y")

        return self._op_session(("linear", id(layer)), build).run(None, {"x": x})[0]


def _model(nodes, inits, inputs, out: str):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "op", inputs, [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model
