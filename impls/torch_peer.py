"""PyTorch as a peer: the same Network built as torch modules from our weights (not torchvision).

Channels-last (NHWC in memory, NCHW in shape) with ``cudnn.benchmark``; fp32 runs with TF32 off
(cuDNN and cuBLAS), so that fp32 means fp32; ``dtype="tf32"`` turns it on, ``dtype="fp16"`` runs
half weights and activations. Options:

- ``graph=True``: ``run`` replays a CUDA graph captured once per batch size (static input/output).
- ``compile=True``: ``torch.compile`` (inductor) of the module; with ``graph=True`` its
  ``reduce-overhead`` mode (inductor's own CUDA graphs).

The Op interface (conv2d/add/global_avg_pool/linear) works on torch CUDA tensors, so eager ``run``
walks Network.forward and every layer gets its NVTX range; the module (``TorchMobileNetV2``) runs
the same calls and is what graph capture and torch.compile see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mbv2 import nvtx
from mbv2.errors import BackendUnavailable
from mbv2.layers import Conv2d, Linear
from mbv2.network import NETWORK_INPUT, Network

from .base import Backend


def available() -> tuple[bool, str]:
    try:
        import torch
    except Exception as exc:
        return False, f"torch is not importable ({exc.__class__.__name__}: {exc}); pip install '.[torch]'"
    try:
        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} sees no CUDA GPU (torch.cuda.is_available() is False)"
    except Exception as exc:
        return False, f"torch CUDA check failed ({exc.__class__.__name__}: {exc})"
    return True, ""


def create(**options: Any) -> TorchBackend:
    return TorchBackend(**options)


def _torch_dtype(dtype: str):
    import torch

    return torch.float16 if dtype == "fp16" else torch.float32


def build_module(net: Network, dtype: str = "fp32"):
    """A torch.nn.Module that runs ``net.fused`` with nn.Conv2d / nn.Linear holding our weights."""
    import torch
    from torch import nn

    tdt = _torch_dtype(dtype)

    class TorchMobileNetV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.plan: list[tuple[str, int, int | None, bool, int]] = []  # kind, input, residual, act, module
            mods: list[nn.Module] = []
            for op in net.fused:
                lay = op.layer
                mi = -1
                if op.kind == "conv":
                    assert isinstance(lay, Conv2d)
                    m = nn.Conv2d(
                        lay.in_channels, lay.out_channels, lay.kernel, lay.stride, lay.pad, groups=lay.groups, bias=True
                    )
                    with torch.no_grad():
                        m.weight.copy_(torch.from_numpy(np.ascontiguousarray(lay.weight, np.float32)))
                        m.bias.copy_(torch.from_numpy(np.ascontiguousarray(lay.bias, np.float32)))
                    mi = len(mods)
                    mods.append(m)
                elif op.kind == "linear":
                    assert isinstance(lay, Linear)
                    m = nn.Linear(lay.in_features, lay.out_features, bias=True)
                    with torch.no_grad():
                        m.weight.copy_(torch.from_numpy(np.ascontiguousarray(lay.weight, np.float32)))
                        m.bias.copy_(torch.from_numpy(np.ascontiguousarray(lay.bias, np.float32)))
                    mi = len(mods)
                    mods.append(m)
                self.plan.append((op.kind, op.input, op.residual, op.act, mi))
            self.layers = nn.ModuleList(mods)

        def forward(self, x):
            outs = {NETWORK_INPUT: x}
            y = x
            for i, (kind, inp, res, act, mi) in enumerate(self.plan):
                a = outs[inp]
                if kind == "conv":
                    y = self.layers[mi](a)
                    if act:
                        y = torch.clamp(y, 0.0, 6.0)
                    if res is not None:
                        y = y + outs[res]
                elif kind == "add":
                    y = a + outs[res]
                elif kind == "pool":
                    y = a.mean(dim=(2, 3))
                else:
                    y = self.layers[mi](a)
                outs[i] = y
            return y

    module = TorchMobileNetV2().to(device="cuda", dtype=tdt).eval().requires_grad_(False)
    return module.to(memory_format=torch.channels_last)


class TorchBackend(Backend):
    name = "torch"
    dtypes = ("fp32", "tf32", "fp16")

    def __init__(
        self,
        dtype: str = "fp32",
        graph: bool = False,
        compile: bool = False,
        cudnn_benchmark: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(dtype=dtype, **options)
        import torch

        self.torch = torch
        # cudnn.benchmark autotunes per shape and per process, so the kernels can differ run to run;
        # False gives cuDNN's heuristic choice, the same in every process (the NVTX/ncu test needs that)
        self.cudnn_benchmark = bool(cudnn_benchmark)
        self.graph = bool(graph)
        self.compile = bool(compile)
        self.tdt = _torch_dtype(dtype)
        self.module = None
        self._fn = None  # what forward_device calls (module or its compiled form)
        self._graphs: dict[tuple, tuple[Any, Any, Any]] = {}  # shape -> (graph, static in, static out)
        self._params: dict[int, tuple[Any, Any]] = {}

    # -- settings --------------------------------------------------------------------------------
    def _apply_flags(self) -> None:
        torch = self.torch
        tf32 = self.dtype == "tf32"
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32

    @property
    def cuda_stream(self) -> int:
        """Raw handle of the stream torch launches on (for CUDA-event timing from mbv2.timing)."""
        return int(self.torch.cuda.current_stream().cuda_stream)

    def info(self) -> dict[str, Any]:
        torch = self.torch
        return {
            **super().info(),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "allow_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "memory_format": "channels_last",
            "graph": self.graph,
            "compile": self.compile,
            "algorithm": ("cudnn (benchmark autotuned)" if self.cudnn_benchmark else "cudnn (heuristics)")
            + (" + torch.compile" if self.compile else ""),
        }

    # -- lifecycle -------------------------------------------------------------------------------
    def prepare(self, net: Network) -> None:
        super().prepare(net)
        torch = self.torch
        self._apply_flags()
        self.module = build_module(net, self.dtype)
        self._params.clear()
        for op, m in zip(net.fused, self._module_map(net)):
            if m is not None:
                self._params[id(op.layer)] = (m.weight, m.bias)
        self._fn = self.module
        if self.compile:
            try:
                mode = "reduce-overhead" if self.graph else "default"
                # every instance compiles the same forward code object once per batch size and mode; the
                # benchmark makes more than dynamo's default 8 of them (seen failing: recompile limit hit)
                import torch._dynamo as dynamo

                for knob in (
                    "recompile_limit",
                    "cache_size_limit",
                    "accumulated_recompile_limit",
                    "accumulated_cache_size_limit",
                ):
                    if hasattr(dynamo.config, knob):
                        setattr(dynamo.config, knob, max(int(getattr(dynamo.config, knob)), 256))
                self._fn = torch.compile(self.module, mode=mode, fullgraph=True, dynamic=False)
            except Exception as exc:
                raise BackendUnavailable(f"torch.compile failed: {exc.__class__.__name__}: {exc}") from exc
        self._graphs.clear()

    def _module_map(self, net: Network) -> list[Any]:
        out = []
        for _kind, _inp, _res, _act, mi in self.module.plan:
            out.append(self.module.layers[mi] if mi >= 0 else None)
        return out

    def close(self) -> None:
        self._graphs.clear()
        self._params.clear()
        self.module = None
        self._fn = None

    # -- data movement ---------------------------------------------------------------------------
    def to_device(self, x: np.ndarray) -> Any:
        torch = self.torch
        t = torch.from_numpy(np.ascontiguousarray(x)).to("cuda", non_blocking=False).to(self.tdt)
        if t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def to_host(self, y: Any) -> np.ndarray:
        return y.float().contiguous().cpu().numpy()

    def synchronize(self) -> None:
        self.torch.cuda.synchronize()

    # -- the ops ---------------------------------------------------------------------------------
    def _weights(self, layer: Conv2d | Linear) -> tuple[Any, Any]:
        key = id(layer)
        if key not in self._params:  # a layer not from the prepared net (tests of odd shapes)
            torch = self.torch
            w = torch.from_numpy(np.ascontiguousarray(layer.weight, np.float32)).to("cuda", self.tdt)
            if w.dim() == 4:
                w = w.contiguous(memory_format=torch.channels_last)
            b = torch.from_numpy(np.ascontiguousarray(layer.bias, np.float32)).to("cuda", self.tdt)
            self._params[key] = (w, b)
        return self._params[key]

    def conv2d(self, x: Any, layer: Conv2d, act: bool = False, residual: Any = None) -> Any:
        F = self.torch.nn.functional
        w, b = self._weights(layer)
        y = F.conv2d(x, w, b, layer.stride, layer.pad, 1, layer.groups)
        if act:
            y = self.torch.clamp(y, 0.0, 6.0)
        if residual is not None:
            y = y + residual
        return y

    def add(self, a: Any, b: Any) -> Any:
        return a + b

    def global_avg_pool(self, x: Any) -> Any:
        return x.mean(dim=(2, 3))

    def linear(self, x: Any, layer: Linear) -> Any:
        w, b = self._weights(layer)
        return self.torch.nn.functional.linear(x, w, b)

    # -- whole network ---------------------------------------------------------------------------
    def _capture(self, xd: Any) -> tuple[Any, Any, Any]:
        torch = self.torch
        key = (tuple(xd.shape), xd.dtype)
        if key not in self._graphs:
            static_in = xd.clone(memory_format=torch.channels_last)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.inference_mode():
                for _ in range(3):  # warm-up: cudnn.benchmark autotuning and lazy init, outside the capture
                    self.module(static_in)
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g), torch.inference_mode():
                static_out = self.module(static_in)
            self._graphs[key] = (g, static_in, static_out)
        return self._graphs[key]

    def forward_device(self, xd: Any) -> Any:
        """Logits on the device for a device input; eager, CUDA-graph replay or compiled, per options."""
        torch = self.torch
        if self.compile:
            with torch.inference_mode():
                out = self._fn(xd)
            return out.clone() if self.graph else out  # reduce-overhead outputs are overwritten next replay
        if self.graph:
            g, static_in, static_out = self._capture(xd)
            static_in.copy_(xd)
            g.replay()
            return static_out
        with torch.inference_mode():
            return self.net.forward(self, xd)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x)
        self._apply_flags()
        with nvtx.annotate(f"{self.name}/e2e/bs{x.shape[0]}"):
            xd = self.to_device(x)
            y = self.forward_device(xd)
            out = self.to_host(y)
        return out
