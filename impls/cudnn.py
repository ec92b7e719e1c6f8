"""cuDNN 9 + cuBLAS backend (the seed's Step 4): ctypes bindings (impls/_cudnn_lib.py) behind the Op interface.

Arrays are CuPy device arrays on the backend's own non-blocking stream, which cuDNN (cudnnSetStream) and
cuBLAS (cublasSetStream) run on too. Layout is NCHW or NHWC (``layout=``); features after the pool are
(N, F) in both. The ops and the library calls they make:

  conv    cudnnConvolutionBiasActivationForward: y = act(conv(x) + alpha2 * z + bias) with act = ReLU when
          ReLU6 is fused (then cudnnActivationForward CLIPPED_RELU at 6, in place), IDENTITY otherwise; the
          residual add of MobileNetV2 (convs without activation) goes in through z with alpha2 = 1. When both
          an activation and a residual are asked for (not in MobileNetV2), the add is a second step
          (cudnnAddTensor), since our fused op adds the residual after ReLU6. Depthwise convs: group count.
  add     cudnnAddTensor (C = A + C, C first holding a copy of b).
  pool    cudnnPoolingForward, average, window = the spatial size.
  linear  ``linear="cublas"``: cublasGemmEx (``"cublas_sgemm"``: cublasSgemm) then cudnnAddTensor for the
          bias; ``linear="cudnn"``: cudnnConvolutionForward as a 1x1 conv, then cudnnAddTensor.

prepare() uploads filters and biases and creates the per-layer descriptors. Everything that depends on the
batch size (tensor descriptors, cudnnFindConvolutionForwardAlgorithmEx per layer, the workspace, the
activation buffers of a whole run and, with ``graph=True``, the CUDA graph) is planned once per batch size:
in prepare() for ``batch_sizes=(...)``, else on the first run() of that batch (the warm-up run), never again.
The chosen algorithm of every layer is in info()["algorithms"].

Math: fp32 sets CUDNN_FMA_MATH on every convolution (no TF32) and keeps only FMA algorithms from the search;
cuBLAS runs CUBLAS_DEFAULT_MATH with CUBLAS_COMPUTE_32F, which does not use TF32. ``dtype="tf32"`` allows
TF32 (CUDNN_DEFAULT_MATH, CUBLAS_COMPUTE_32F_FAST_TF32). fp16 is not implemented.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mbv2 import nvtx
from mbv2.errors import BackendUnavailable, CudaError, InputError
from mbv2.gpu import gpu_status
from mbv2.layers import Conv2d, Linear
from mbv2.network import NETWORK_INPUT, FusedOp, Network

from . import _cudnn_lib as L
from .base import Backend

E = L.ENUMS
F32 = E["CUDNN_DATA_FLOAT"]
NCHW, NHWC = E["CUDNN_TENSOR_NCHW"], E["CUDNN_TENSOR_NHWC"]


def _retryable(status: int) -> bool:
    """BAD_PARAM (2xxx) and NOT_SUPPORTED (3xxx): this algorithm/activation does not take the config; try the next."""
    return 2000 <= status < 4000


CUBLAS_WORKSPACE_BYTES = 32 << 20  # cuBLAS's recommendation for Hopper; a user workspace keeps capture alloc-free
_MEMCPY_D2D = 3


def available() -> tuple[bool, str]:
    try:
        libs = L.load()
        libs.check_sublibraries()
    except BackendUnavailable as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"cannot bind cuDNN/cuBLAS ({exc.__class__.__name__}: {exc})"
    ok, why = gpu_status()
    if not ok:
        return False, f"needs a CUDA GPU: {why}"
    return True, ""


def create(**options: Any) -> CudnnBackend:
    return CudnnBackend(**options)


def _pinned(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 NumPy array in page-locked host memory (CuPy's pinned pool)."""
    import cupy

    count = int(np.prod(shape))
    mem = cupy.cuda.alloc_pinned_memory(max(1, count) * 4)
    return np.frombuffer(mem, np.float32, count).reshape(shape)


# -- plans -------------------------------------------------------------------------------------------
Call = tuple[Any, tuple, str]  # (ctypes function or callable, arguments, name for the error message)


@dataclass
class _ConvLayer:
    """Per conv layer, independent of the batch: filter, bias and their descriptors."""

    w: Any
    b: Any
    wdesc: int
    convdesc: int
    bdesc: int
    layer: Any = None  # held so that id(layer), the cache key, cannot be reused by another object


@dataclass
class _LinearLayer:
    w: Any
    b: Any
    bdesc: int
    wdesc: int = 0  # cudnn path: (out, in, 1, 1) filter
    convdesc: int = 0
    layer: Any = None


@dataclass
class _ConvPlan:
    """A conv (or cudnn linear) at one batch size: descriptors and the chosen algorithm."""

    xdesc: int
    ydesc: int
    algo: int
    ws_bytes: int
    act_desc: int
    info: dict[str, Any]
    split: bool = False  # BiasActivationForward refused every algorithm: ConvolutionForward + AddTensor (+ act)


@dataclass
class _NetPlan:
    batch: int
    input: Any
    slabs: list[Any]
    outputs: dict[int, Any]
    output: Any
    workspace: Any
    op_calls: list[tuple[str, list[Call]]]
    algorithms: list[dict[str, Any]]
    graph: Any = None
    calls: list[Call] = field(default_factory=list)
    host_in: Any = None  # pinned host staging buffers: asynchronous, full-speed H2D / D2H copies in run()
    host_out: Any = None


class CudnnBackend(Backend):
    name = "cudnn"
    dtypes = ("fp32", "tf32")
    LAYOUTS = ("nchw", "nhwc")
    LINEARS = ("cublas", "cublas_sgemm", "cudnn")

    def __init__(
        self,
        dtype: str = "fp32",
        layout: str = "nchw",
        linear: str = "cublas",
        graph: bool = False,
        workspace_limit_mb: int = 256,
        batch_sizes: tuple[int, ...] = (),
        **options: Any,
    ) -> None:
        if dtype == "fp16":
            raise InputError(
                "backend 'cudnn' does not implement fp16 (half weights and activations); use dtype fp32 or tf32"
            )
        super().__init__(dtype=dtype, **options)
        if layout not in self.LAYOUTS:
            raise InputError(f"layout must be one of {', '.join(self.LAYOUTS)}, not {layout!r}")
        if linear not in self.LINEARS:
            raise InputError(f"linear must be one of {', '.join(self.LINEARS)}, not {linear!r}")
        if workspace_limit_mb < 0:
            raise InputError(f"workspace_limit_mb must be >= 0, got {workspace_limit_mb}")
        self.layout = layout
        self.fmt = NHWC if layout == "nhwc" else NCHW
        self.linear_impl = linear
        self.graph = bool(graph)
        self.workspace_limit = int(workspace_limit_mb) << 20
        self.batch_sizes = tuple(int(b) for b in batch_sizes)
        self.libs = L.load()  # BackendUnavailable with the reason when the libraries are missing
        self.conv_math = E["CUDNN_FMA_MATH"] if dtype == "fp32" else E["CUDNN_DEFAULT_MATH"]
        self.blas_compute = E["CUBLAS_COMPUTE_32F"] if dtype == "fp32" else E["CUBLAS_COMPUTE_32F_FAST_TF32"]
        self.blas_math = E["CUBLAS_DEFAULT_MATH"] if dtype == "fp32" else E["CUBLAS_TF32_TENSOR_OP_MATH"]
        self._one = ctypes.c_float(1.0)
        self._zero = ctypes.c_float(0.0)
        self.ONE = ctypes.addressof(self._one)
        self.ZERO = ctypes.addressof(self._zero)
        self.handle = 0
        self.blas = 0
        self.stream: Any = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._descs: list[tuple[str, int]] = []
        self._tensor_descs: dict[tuple, int] = {}
        self._pool_descs: dict[tuple[int, int], int] = {}
        self._act_descs: dict[str, int] = {}
        self._convs: dict[int, _ConvLayer] = {}
        self._linears: dict[int, _LinearLayer] = {}
        self._plans: dict[tuple, _ConvPlan] = {}
        self._net_plans: dict[int, _NetPlan] = {}
        self._eager_ws: Any = None
        self._blas_ws: Any = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def _open(self) -> None:
        if self.handle:
            return
        import cupy

        libs = self.libs
        self.stream = cupy.cuda.Stream(non_blocking=True)
        h = ctypes.c_void_p()
        libs.cudnnCreate(ctypes.byref(h))
        self.handle = h.value
        libs.cudnnSetStream(self.handle, self.stream.ptr)
        hb = ctypes.c_void_p()
        libs.cublasCreate_v2(ctypes.byref(hb))
        self.blas = hb.value
        libs.cublasSetStream_v2(self.blas, self.stream.ptr)
        libs.cublasSetMathMode(self.blas, self.blas_math)
        with self.stream:
            self._blas_ws = cupy.empty(CUBLAS_WORKSPACE_BYTES, dtype=cupy.uint8)
        libs.cublasSetWorkspace_v2(self.blas, self._blas_ws.data.ptr, CUBLAS_WORKSPACE_BYTES)
        for name, mode, nan, coef in (
            ("relu", "CUDNN_ACTIVATION_RELU", "CUDNN_PROPAGATE_NAN", 0.0),
            ("relu_nonan", "CUDNN_ACTIVATION_RELU", "CUDNN_NOT_PROPAGATE_NAN", 0.0),
            ("identity", "CUDNN_ACTIVATION_IDENTITY", "CUDNN_PROPAGATE_NAN", 0.0),
            ("clip6", "CUDNN_ACTIVATION_CLIPPED_RELU", "CUDNN_PROPAGATE_NAN", 6.0),
        ):
            d = self._create("Activation")
            libs.cudnnSetActivationDescriptor(d, E[mode], E[nan], coef)
            self._act_descs[name] = d

    def prepare(self, net: Network) -> None:
        if self.net is not None and self.net is not net:
            self.close()  # plans and weights belong to the previous network
        super().prepare(net)
        self._open()
        with self.stream:
            for layer in net.layers:
                if isinstance(layer, Conv2d):
                    self._conv_layer(layer)
                elif isinstance(layer, Linear):
                    self._linear_layer(layer)
            for b in self.batch_sizes:
                self.plan_network(b)
        self.stream.synchronize()

    def close(self) -> None:
        """Destroy graphs, descriptors and handles and drop every device buffer. Safe to call twice."""
        if not self.handle and not self.blas:
            return
        libs = self.libs
        errors: list[str] = []
        try:
            self.stream.synchronize()
        except Exception as exc:  # a sticky CUDA error: still release what we can
            errors.append(str(exc))
        for plan in self._net_plans.values():
            plan.graph = None
        self._net_plans.clear()
        self._plans.clear()
        for destroy, d in reversed(self._descs):
            status = libs.f[destroy](d)
            if status:
                errors.append(f"{destroy}: {libs.cudnn_status_string(status)}")
        if self.blas:
            status = libs.f["cublasDestroy_v2"](self.blas)
            if status:
                errors.append(f"cublasDestroy_v2: status {status}")
        if self.handle:
            status = libs.f["cudnnDestroy"](self.handle)
            if status:
                errors.append(f"cudnnDestroy: {libs.cudnn_status_string(status)}")
        self.handle = 0
        self.blas = 0
        self._reset_state()  # drops the weights, workspaces and buffers back to CuPy's pool
        self.stream = None
        if errors:
            raise CudaError("cudnn backend close: " + "; ".join(errors))

    def info(self) -> dict[str, Any]:
        libs = self.libs
        d: dict[str, Any] = {
            **super().info(),
            "cudnn_version": libs.cudnn_version(),
            "cudnn_cudart_version": libs.cudnn_cudart_version(),
            "cudnn_library": libs.cudnn_path,
            "cudnn_source": libs.cudnn_source,
            "cublas_version": libs.cublas_version(),
            "cublas_library": libs.cublas_path,
            "cublas_source": libs.cublas_source,
            "layout": self.layout,
            "linear": self.linear_impl,
            "graph": self.graph,
            "conv_math": L.MATH_NAMES[self.conv_math],
            "cublas_math": "CUBLAS_DEFAULT_MATH + CUBLAS_COMPUTE_32F"
            if self.dtype == "fp32"
            else "CUBLAS_TF32_TENSOR_OP_MATH + CUBLAS_COMPUTE_32F_FAST_TF32",
            "workspace_limit_bytes": self.workspace_limit,
        }
        if self.handle:
            v = ctypes.c_int()
            libs.cublasGetVersion_v2(self.blas, ctypes.byref(v))
            d["cublas_version_int"] = v.value
        d["algorithms"] = {str(b): p.algorithms for b, p in sorted(self._net_plans.items())}
        d["workspace_bytes"] = {
            str(b): int(p.workspace.nbytes) if p.workspace is not None else 0
            for b, p in sorted(self._net_plans.items())
        }
        d["activation_bytes"] = {
            str(b): int(sum(s.nbytes for s in p.slabs) + p.input.nbytes) for b, p in sorted(self._net_plans.items())
        }
        return d

    # -- descriptors ---------------------------------------------------------------------------------
    def _create(self, kind: str) -> int:
        h = ctypes.c_void_p()
        getattr(self.libs, f"cudnnCreate{kind}Descriptor")(ctypes.byref(h))
        self._descs.append((f"cudnnDestroy{kind}Descriptor", h.value))
        return h.value

    def _tensor(self, n: int, c: int, h: int, w: int, fmt: int | None = None) -> int:
        fmt = self.fmt if fmt is None else fmt
        key = (n, c, h, w, fmt)
        d = self._tensor_descs.get(key)
        if d is None:
            d = self._create("Tensor")
            self.libs.cudnnSetTensor4dDescriptor(d, fmt, F32, n, c, h, w)
            self._tensor_descs[key] = d
        return d

    def _conv_desc(self, pad: int, stride: int, groups: int) -> int:
        d = self._create("Convolution")
        self.libs.cudnnSetConvolution2dDescriptor(d, pad, pad, stride, stride, 1, 1, E["CUDNN_CROSS_CORRELATION"], F32)
        if groups > 1:
            self.libs.cudnnSetConvolutionGroupCount(d, groups)
        self.libs.cudnnSetConvolutionMathType(d, self.conv_math)
        return d

    def _conv_layer(self, layer: Conv2d) -> _ConvLayer:
        res = self._convs.get(id(layer))
        if res is not None:
            return res
        import cupy

        self._open()
        w = layer.weight.astype(np.float32)
        if self.layout == "nhwc":  # KCRS -> KRSC
            w = w.transpose(0, 2, 3, 1)
        with self.stream:
            wd = cupy.asarray(np.ascontiguousarray(w))
            bd = cupy.asarray(np.ascontiguousarray(layer.bias, dtype=np.float32))
        wdesc = self._create("Filter")
        self.libs.cudnnSetFilter4dDescriptor(
            wdesc, F32, self.fmt, layer.out_channels, layer.in_channels // layer.groups, layer.kernel, layer.kernel
        )
        res = _ConvLayer(
            w=wd,
            b=bd,
            wdesc=wdesc,
            convdesc=self._conv_desc(layer.pad, layer.stride, layer.groups),
            bdesc=self._tensor(1, layer.out_channels, 1, 1),
            layer=layer,
        )
        self._convs[id(layer)] = res
        return res

    def _linear_layer(self, layer: Linear) -> _LinearLayer:
        res = self._linears.get(id(layer))
        if res is not None:
            return res
        import cupy

        self._open()
        with self.stream:
            wd = cupy.asarray(np.ascontiguousarray(layer.weight, dtype=np.float32))  # (out, in) row-major
            bd = cupy.asarray(np.ascontiguousarray(layer.bias, dtype=np.float32))
        res = _LinearLayer(w=wd, b=bd, bdesc=self._tensor(1, layer.out_features, 1, 1, NCHW), layer=layer)
        if self.linear_impl == "cudnn":
            res.wdesc = self._create("Filter")
            self.libs.cudnnSetFilter4dDescriptor(res.wdesc, F32, NCHW, layer.out_features, layer.in_features, 1, 1)
            res.convdesc = self._conv_desc(0, 1, 1)
        self._linears[id(layer)] = res
        return res

    # -- layout helpers ------------------------------------------------------------------------------
    def _dev_shape(self, n: int, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Device array shape of a batch of per-image ``shape`` ((C, H, W) or (F,)) in this layout."""
        if len(shape) == 3 and self.layout == "nhwc":
            c, h, w = shape
            return (n, h, w, c)
        return (n, *shape)

    def _check_array(self, x: Any, n: int | None, shape: tuple[int, ...], what: str) -> int:
        import cupy

        if not isinstance(x, cupy.ndarray):
            raise InputError(f"{what}: expected a CuPy array from to_device(), got {type(x).__name__}")
        n = x.shape[0] if n is None else n
        want = self._dev_shape(n, tuple(shape))
        if tuple(x.shape) != want or x.dtype != np.float32 or not x.flags.c_contiguous:
            raise InputError(
                f"{what}: expected a C-contiguous float32 array of shape {want} ({self.layout}), "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        return n

    def _empty(self, n: int, shape: tuple[int, ...]) -> Any:
        import cupy

        with self.stream:
            return cupy.empty(self._dev_shape(n, shape), dtype=cupy.float32)

    # -- algorithm choice ----------------------------------------------------------------------------
    def _find(
        self, xdesc: int, x: int, wdesc: int, w: int, convdesc: int, ydesc: int, y: int, search_ws: Any
    ) -> list[L.ConvolutionFwdAlgoPerf]:
        libs = self.libs
        maxn = ctypes.c_int()
        libs.cudnnGetConvolutionForwardAlgorithmMaxCount(self.handle, ctypes.byref(maxn))
        perf = (L.ConvolutionFwdAlgoPerf * max(1, maxn.value))()
        got = ctypes.c_int()
        libs.cudnnFindConvolutionForwardAlgorithmEx(
            self.handle,
            xdesc,
            x,
            wdesc,
            w,
            convdesc,
            ydesc,
            y,
            len(perf),
            ctypes.byref(got),
            perf,
            search_ws.data.ptr if search_ws is not None else 0,
            search_ws.nbytes if search_ws is not None else 0,
        )
        results = [perf[i] for i in range(got.value)]
        return results

    def _ws_size(self, xdesc: int, res: Any, ydesc: int, algo: int) -> int:
        size = ctypes.c_size_t()
        self.libs.cudnnGetConvolutionForwardWorkspaceSize(
            self.handle, xdesc, res.wdesc, res.convdesc, ydesc, algo, ctypes.byref(size)
        )
        return int(size.value)

    def _usable(self, p: L.ConvolutionFwdAlgoPerf) -> bool:
        if p.status != 0:
            return False
        tensor_ops = (E["CUDNN_TENSOR_OP_MATH"], E["CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION"])
        if self.dtype == "fp32" and p.mathType in tensor_ops:
            return False  # TF32 or fp16 tensor-core conversion: not fp32
        return True

    def _search_ws(self) -> Any:
        import cupy

        if self.workspace_limit == 0:
            return None
        with self.stream:
            return cupy.empty(self.workspace_limit, dtype=cupy.uint8)

    def _plan_conv(
        self, layer: Conv2d, n: int, act: bool, has_res: bool, x: int, y: int, z: int, search_ws: Any
    ) -> _ConvPlan:
        """Find the algorithms for this conv at batch n (on the given buffers) and keep the fastest one that
        cudnnConvolutionBiasActivationForward accepts with this activation (tried once, here)."""
        res = self._conv_layer(layer)
        c, h, w = layer.in_shape
        oc, oh, ow = layer.out_shape
        xdesc, ydesc = self._tensor(n, c, h, w), self._tensor(n, oc, oh, ow)
        results = self._find(xdesc, x, res.wdesc, res.w.data.ptr, res.convdesc, ydesc, y, search_ws)
        usable = [p for p in results if self._usable(p)]
        if not usable:
            raise CudaError(
                f"cudnnFindConvolutionForwardAlgorithmEx: no usable algorithm for layer {layer.index} "
                f"{layer.describe([])} at batch {n} ({self._results_text(results)})"
            )
        ws_ptr = search_ws.data.ptr if search_ws is not None else 0
        ws_size = search_ws.nbytes if search_ws is not None else 0
        # ReLU6 inside the fused call (CLIPPED_RELU, accepted only if it also computes the clip: checked
        # against ReLU + a separate CLIPPED_RELU pass), else ReLU there and the ceiling in a second call
        act_names = ["clip6", "relu", "relu_nonan"] if act else ["identity"]
        refused: list[str] = []
        for p in usable:
            for act_name in act_names:
                if p.memory > ws_size:
                    continue
                plan = _ConvPlan(
                    xdesc=xdesc,
                    ydesc=ydesc,
                    algo=p.algo,
                    ws_bytes=max(int(p.memory), self._ws_size(xdesc, res, ydesc, p.algo)),
                    act_desc=self._act_descs[act_name],
                    info={},
                )
                calls = self._conv_calls(res, plan, x, y, z if has_res else 0, ws_ptr, ws_size, act, has_res)
                f, args, name = calls[0]
                status = f(*args)
                if (
                    status == 0
                    and act_name == "clip6"
                    and not self._clip_fusion_verified(res, plan, layer, n, ws_ptr, ws_size)
                ):
                    refused.append(f"{L.FWD_ALGO_NAMES.get(p.algo, p.algo)}/clip6: accepted but not clipped at 6")
                    continue
                if status == 0:
                    for f2, args2, name2 in calls[1:]:
                        self._call(f2, args2, name2)
                    best = usable[0]
                    plan.info = {
                        "algo": L.FWD_ALGO_NAMES.get(p.algo, str(p.algo)),
                        "math": L.MATH_NAMES.get(p.mathType),
                        "find_ms": round(float(p.time), 5),
                        "workspace_bytes": int(p.memory),
                        "fastest_conv_only": L.FWD_ALGO_NAMES.get(best.algo, str(best.algo)),
                        "fastest_conv_only_ms": round(float(best.time), 5),
                        "activation": act_name,
                    }
                    if refused:
                        plan.info["refused"] = refused
                    return plan
                if not _retryable(status):
                    self.libs.check_cudnn(name, status)
                refused.append(
                    f"{L.FWD_ALGO_NAMES.get(p.algo, p.algo)}/{act_name}: {self.libs.cudnn_status_string(status)}"
                )
        # cudnnConvolutionBiasActivationForward takes none: the same op in separate calls, each checked
        p = next((p for p in usable if p.memory <= ws_size), None)
        if p is None:
            raise CudaError(
                f"layer {layer.index} {layer.describe([])} at batch {n}: every algorithm needs more "
                f"workspace than workspace_limit_mb allows ({ws_size} bytes)"
            )
        plan = _ConvPlan(xdesc=xdesc, ydesc=ydesc, algo=p.algo, ws_bytes=int(p.memory), act_desc=0, info={}, split=True)
        self._launch(self._conv_calls(res, plan, x, y, z if has_res else 0, ws_ptr, ws_size, act, has_res))
        plan.info = {
            "algo": L.FWD_ALGO_NAMES.get(p.algo, str(p.algo)),
            "math": L.MATH_NAMES.get(p.mathType),
            "find_ms": round(float(p.time), 5),
            "workspace_bytes": int(p.memory),
            "activation": "split: ConvolutionForward + AddTensor",
            "refused": refused,
        }
        return plan

    def _clip_fusion_verified(
        self, res: _ConvLayer, plan: _ConvPlan, layer: Conv2d, n: int, ws: int, ws_size: int
    ) -> bool:
        """Does the fused call with CLIPPED_RELU give clip(conv + bias, 0, 6)? Checked on scratch data large
        enough to cross both bounds, against cuDNN's own ReLU + CLIPPED_RELU pass."""
        import cupy

        with self.stream:
            x = cupy.random.standard_normal(self._dev_shape(n, layer.in_shape), dtype=cupy.float32) * 8
            y1 = cupy.full(self._dev_shape(n, layer.out_shape), cupy.nan, dtype=cupy.float32)
            y2 = cupy.full_like(y1, cupy.nan)
            ref = _ConvPlan(plan.xdesc, plan.ydesc, plan.algo, plan.ws_bytes, self._act_descs["relu"], {})
            try:
                self._launch(self._conv_calls(res, plan, x.data.ptr, y1.data.ptr, 0, ws, ws_size, True, False))
                self._launch(self._conv_calls(res, ref, x.data.ptr, y2.data.ptr, 0, ws, ws_size, True, False))
            except CudaError:
                return False
            ok = bool(cupy.isfinite(y1).all()) and float(y1.max()) <= 6.0 and float(y2.max()) > 0.0
            ok = ok and float(cupy.abs(y1 - y2).max()) <= 1e-5 * max(1.0, float(cupy.abs(y2).max()))
        return ok

    @staticmethod
    def _results_text(results: list[L.ConvolutionFwdAlgoPerf]) -> str:
        return (
            ", ".join(
                f"{L.FWD_ALGO_NAMES.get(p.algo, p.algo)}: status {p.status}, {L.MATH_NAMES.get(p.mathType)}"
                for p in results
            )
            or "no results"
        )

    def _plan_linear_cudnn(self, layer: Linear, n: int, x: int, y: int, search_ws: Any) -> _ConvPlan:
        res = self._linear_layer(layer)
        xdesc = self._tensor(n, layer.in_features, 1, 1, NCHW)
        ydesc = self._tensor(n, layer.out_features, 1, 1, NCHW)
        results = self._find(xdesc, x, res.wdesc, res.w.data.ptr, res.convdesc, ydesc, y, search_ws)
        usable = [p for p in results if self._usable(p)]
        if not usable:
            raise CudaError(
                f"cudnnFindConvolutionForwardAlgorithmEx: no usable algorithm for the 1x1 conv of "
                f"{layer.describe([])} at batch {n} ({self._results_text(results)})"
            )
        p = usable[0]
        return _ConvPlan(
            xdesc=xdesc,
            ydesc=ydesc,
            algo=p.algo,
            ws_bytes=max(int(p.memory), self._ws_size(xdesc, res, ydesc, p.algo)),
            act_desc=0,
            info={
                "algo": L.FWD_ALGO_NAMES.get(p.algo, str(p.algo)),
                "math": L.MATH_NAMES.get(p.mathType),
                "find_ms": round(float(p.time), 5),
                "workspace_bytes": int(p.memory),
            },
        )

    # -- the library calls of each op ----------------------------------------------------------------
    def _call(self, f: Any, args: tuple, name: str) -> None:
        status = f(*args)
        if status:
            if name.startswith("cublas"):
                self.libs.check_cublas(name, status)
            else:
                self.libs.check_cudnn(name, status)

    def _launch(self, calls: list[Call]) -> None:
        for f, args, name in calls:
            status = f(*args)
            if status:
                self._call(f, args, name)  # raises with the status string

    def _conv_calls(
        self, res: _ConvLayer, plan: _ConvPlan, x: int, y: int, z: int, ws: int, ws_size: int, act: bool, has_res: bool
    ) -> list[Call]:
        f = self.libs.f
        if plan.split:
            calls: list[Call] = [
                (
                    f["cudnnConvolutionForward"],
                    (
                        self.handle,
                        self.ONE,
                        plan.xdesc,
                        x,
                        res.wdesc,
                        res.w.data.ptr,
                        res.convdesc,
                        plan.algo,
                        ws,
                        ws_size,
                        self.ZERO,
                        plan.ydesc,
                        y,
                    ),
                    "cudnnConvolutionForward",
                ),
                (
                    f["cudnnAddTensor"],
                    (self.handle, self.ONE, res.bdesc, res.b.data.ptr, self.ONE, plan.ydesc, y),
                    "cudnnAddTensor",
                ),
            ]
            if act:
                calls.append(
                    (
                        f["cudnnActivationForward"],
                        (self.handle, self._act_descs["clip6"], self.ONE, plan.ydesc, y, self.ZERO, plan.ydesc, y),
                        "cudnnActivationForward",
                    )
                )
            if has_res:
                calls.append(
                    (
                        f["cudnnAddTensor"],
                        (self.handle, self.ONE, plan.ydesc, z, self.ONE, plan.ydesc, y),
                        "cudnnAddTensor",
                    )
                )
            return calls
        fused_res = has_res and not act  # z input: y = conv + bias + z (no activation to come before the add)
        zdesc, zptr = (plan.ydesc, z) if fused_res else (plan.ydesc, y)
        alpha2 = self.ONE if fused_res else self.ZERO
        calls = [
            (
                f["cudnnConvolutionBiasActivationForward"],
                (
                    self.handle,
                    self.ONE,
                    plan.xdesc,
                    x,
                    res.wdesc,
                    res.w.data.ptr,
                    res.convdesc,
                    plan.algo,
                    ws,
                    ws_size,
                    alpha2,
                    zdesc,
                    zptr,
                    res.bdesc,
                    res.b.data.ptr,
                    plan.act_desc,
                    plan.ydesc,
                    y,
                ),
                "cudnnConvolutionBiasActivationForward",
            )
        ]
        if act:
            if plan.act_desc != self._act_descs["clip6"]:  # ReLU in the fused call, the ceiling of 6 here
                calls.append(
                    (
                        f["cudnnActivationForward"],
                        (self.handle, self._act_descs["clip6"], self.ONE, plan.ydesc, y, self.ZERO, plan.ydesc, y),
                        "cudnnActivationForward",
                    )
                )
            if has_res:
                calls.append(
                    (
                        f["cudnnAddTensor"],
                        (self.handle, self.ONE, plan.ydesc, z, self.ONE, plan.ydesc, y),
                        "cudnnAddTensor",
                    )
                )
        return calls

    def _add_calls(self, desc: int, a: int, b: int, out: int, nbytes: int) -> list[Call]:
        import cupy

        calls: list[Call] = []
        if out != b:
            stream = self.stream.ptr

            def copy(dst: int = out, src: int = b) -> int:
                cupy.cuda.runtime.memcpyAsync(dst, src, nbytes, _MEMCPY_D2D, stream)
                return 0

            calls.append((copy, (), "cudaMemcpyAsync"))
        calls.append(
            (self.libs.f["cudnnAddTensor"], (self.handle, self.ONE, desc, a, self.ONE, desc, out), "cudnnAddTensor")
        )
        return calls

    def _pool_calls(self, n: int, c: int, h: int, w: int, x: int, y: int) -> list[Call]:
        pdesc = self._pool_descs.get((h, w))
        if pdesc is None:
            pdesc = self._create("Pooling")
            self.libs.cudnnSetPooling2dDescriptor(
                pdesc, E["CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING"], E["CUDNN_PROPAGATE_NAN"], h, w, 0, 0, h, w
            )
            self._pool_descs[(h, w)] = pdesc
        xdesc, ydesc = self._tensor(n, c, h, w), self._tensor(n, c, 1, 1)
        return [
            (
                self.libs.f["cudnnPoolingForward"],
                (self.handle, pdesc, self.ONE, xdesc, x, self.ZERO, ydesc, y),
                "cudnnPoolingForward",
            )
        ]

    def _linear_calls(
        self, layer: Linear, n: int, x: int, y: int, plan: _ConvPlan | None, ws: int, ws_size: int
    ) -> list[Call]:
        res = self._linear_layer(layer)
        f = self.libs.f
        m, k = layer.out_features, layer.in_features
        calls: list[Call]
        if self.linear_impl == "cudnn":
            assert plan is not None
            calls = [
                (
                    f["cudnnConvolutionForward"],
                    (
                        self.handle,
                        self.ONE,
                        plan.xdesc,
                        x,
                        res.wdesc,
                        res.w.data.ptr,
                        res.convdesc,
                        plan.algo,
                        ws,
                        ws_size,
                        self.ZERO,
                        plan.ydesc,
                        y,
                    ),
                    "cudnnConvolutionForward",
                )
            ]
        elif self.linear_impl == "cublas_sgemm":
            # row-major y (n, m) = x (n, k) @ W.T: column-major y^T (m x n) = W^T... as cuBLAS sees W (k x m)
            calls = [
                (
                    f["cublasSgemm_v2"],
                    (
                        self.blas,
                        E["CUBLAS_OP_T"],
                        E["CUBLAS_OP_N"],
                        m,
                        n,
                        k,
                        self.ONE,
                        res.w.data.ptr,
                        k,
                        x,
                        k,
                        self.ZERO,
                        y,
                        m,
                    ),
                    "cublasSgemm_v2",
                )
            ]
        else:
            r32 = E["CUDA_R_32F"]
            calls = [
                (
                    f["cublasGemmEx"],
                    (
                        self.blas,
                        E["CUBLAS_OP_T"],
                        E["CUBLAS_OP_N"],
                        m,
                        n,
                        k,
                        self.ONE,
                        res.w.data.ptr,
                        r32,
                        k,
                        x,
                        r32,
                        k,
                        self.ZERO,
                        y,
                        r32,
                        m,
                        self.blas_compute,
                        E["CUBLAS_GEMM_DEFAULT"],
                    ),
                    "cublasGemmEx",
                )
            ]
        ydesc = self._tensor(n, m, 1, 1, NCHW)
        calls.append(
            (
                f["cudnnAddTensor"],
                (self.handle, self.ONE, res.bdesc, res.b.data.ptr, self.ONE, ydesc, y),
                "cudnnAddTensor",
            )
        )
        return calls

    def _eager_workspace(self, nbytes: int) -> tuple[int, int]:
        import cupy

        if nbytes == 0:
            return 0, 0
        if self._eager_ws is None or self._eager_ws.nbytes < nbytes:
            with self.stream:
                self._eager_ws = cupy.empty(nbytes, dtype=cupy.uint8)
        return self._eager_ws.data.ptr, self._eager_ws.nbytes

    # -- the Op interface: results in new arrays ------------------------------------------------------
    def to_device(self, x: np.ndarray) -> Any:
        import cupy

        self._open()
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 4 and self.layout == "nhwc":
            x = x.transpose(0, 2, 3, 1)
        with self.stream:
            return cupy.asarray(np.ascontiguousarray(x))

    def to_host(self, y: Any) -> np.ndarray:
        out = y.get(stream=self.stream)
        if out.ndim == 4 and self.layout == "nhwc":
            out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
        return out

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()

    def conv2d(self, x: Any, layer: Conv2d, act: bool = False, residual: Any = None) -> Any:
        self._open()
        y = self._empty(x.shape[0], layer.out_shape)
        return self.conv2d_into(x, layer, y, act=act, residual=residual)

    def add(self, a: Any, b: Any) -> Any:
        import cupy

        self._open()
        with self.stream:
            out = cupy.empty_like(a)
        return self.add_into(a, b, out)

    def global_avg_pool(self, x: Any) -> Any:
        import cupy

        self._open()
        if x.ndim != 4:
            raise InputError(f"global_avg_pool: expected a 4-D array, got shape {tuple(x.shape)}")
        c = x.shape[3] if self.layout == "nhwc" else x.shape[1]
        with self.stream:
            y = cupy.empty((x.shape[0], c), dtype=cupy.float32)
        return self.global_avg_pool_into(x, y)

    def linear(self, x: Any, layer: Linear) -> Any:
        self._open()
        y = self._empty(x.shape[0], (layer.out_features,))
        return self.linear_into(x, layer, y)

    # -- the same ops into caller-given outputs (tests poison them; benchmarks time only the launches) ----
    def conv2d_into(self, x: Any, layer: Conv2d, y: Any, act: bool = False, residual: Any = None) -> Any:
        import cupy

        self._open()
        n = self._check_array(x, None, layer.in_shape, f"conv2d layer {layer.index} input")
        self._check_array(y, n, layer.out_shape, f"conv2d layer {layer.index} output")
        has_res = residual is not None
        if has_res:
            self._check_array(residual, n, layer.out_shape, f"conv2d layer {layer.index} residual")
        z = residual.data.ptr if has_res else 0
        key = ("conv", id(layer), n, bool(act), has_res)
        plan = self._plans.get(key)
        with self.stream:
            if plan is None:  # planned on a scratch output, so that the search never writes the caller's y
                scratch = cupy.empty_like(y)
                plan = self._plan_conv(layer, n, act, has_res, x.data.ptr, scratch.data.ptr, z, self._search_ws())
                self._plans[key] = plan
            ws, ws_size = self._eager_workspace(plan.ws_bytes)
            self._launch(
                self._conv_calls(self._convs[id(layer)], plan, x.data.ptr, y.data.ptr, z, ws, ws_size, act, has_res)
            )
        return y

    def add_into(self, a: Any, b: Any, out: Any) -> Any:
        self._open()
        if a.shape != b.shape or a.shape != out.shape or a.ndim != 4:
            raise InputError(f"add: shapes {tuple(a.shape)}, {tuple(b.shape)} -> {tuple(out.shape)} must be equal 4-D")
        n, c, h, w = (a.shape[0], a.shape[3], a.shape[1], a.shape[2]) if self.layout == "nhwc" else a.shape
        with self.stream:
            self._launch(self._add_calls(self._tensor(n, c, h, w), a.data.ptr, b.data.ptr, out.data.ptr, a.nbytes))
        return out

    def global_avg_pool_into(self, x: Any, y: Any) -> Any:
        self._open()
        n, c, h, w = (x.shape[0], x.shape[3], x.shape[1], x.shape[2]) if self.layout == "nhwc" else x.shape
        if tuple(y.shape) != (n, c):
            raise InputError(f"global_avg_pool: output shape {tuple(y.shape)}, expected {(n, c)}")
        with self.stream:
            self._launch(self._pool_calls(n, c, h, w, x.data.ptr, y.data.ptr))
        return y

    def linear_into(self, x: Any, layer: Linear, y: Any) -> Any:
        import cupy

        self._open()
        n = self._check_array(x, None, (layer.in_features,), f"linear layer {layer.index} input")
        self._check_array(y, n, (layer.out_features,), f"linear layer {layer.index} output")
        plan = None
        ws, ws_size = 0, 0
        with self.stream:
            if self.linear_impl == "cudnn":
                key = ("linear", id(layer), n)
                plan = self._plans.get(key)
                if plan is None:
                    scratch = cupy.empty_like(y)
                    plan = self._plan_linear_cudnn(layer, n, x.data.ptr, scratch.data.ptr, self._search_ws())
                    self._plans[key] = plan
                ws, ws_size = self._eager_workspace(plan.ws_bytes)
            self._launch(self._linear_calls(layer, n, x.data.ptr, y.data.ptr, plan, ws, ws_size))
        return y

    # -- the whole network ---------------------------------------------------------------------------
    def plan_network(self, n: int) -> _NetPlan:
        """Buffers, algorithms, workspace and the launch list of a whole run at batch n (once per n)."""
        plan = self._net_plans.get(n)
        if plan is not None:
            return plan
        import cupy

        if self.net is None:
            raise RuntimeError("backend 'cudnn': call prepare(net) before run()")
        if n < 1:
            raise InputError(f"batch must be >= 1, got {n}")
        self._open()
        net = self.net
        fused = net.fused
        # liveness: an op's output buffer returns to the free list after its last reader has been launched
        last_use: dict[int, int] = {}
        for op in fused:
            for src in (op.input, op.residual):
                if src is not None:
                    last_use[src] = op.index
        slab_elems = max(int(np.prod(op.out_shape)) for op in fused) * n
        slabs: list[Any] = []
        free: list[int] = []
        slab_of: dict[int, int] = {}
        outputs: dict[int, Any] = {}
        with self.stream:
            xin = cupy.zeros(self._dev_shape(n, tuple(net.input_shape)), dtype=cupy.float32)
            outputs[NETWORK_INPUT] = xin
            for op in fused:
                if free:
                    s = free.pop()
                else:
                    slabs.append(cupy.zeros(slab_elems, dtype=cupy.float32))
                    s = len(slabs) - 1
                slab_of[op.index] = s
                size = n * int(np.prod(op.out_shape))
                outputs[op.index] = slabs[s][:size].reshape(self._dev_shape(n, tuple(op.out_shape)))
                for src in {op.input, op.residual} - {None, NETWORK_INPUT}:
                    if last_use.get(src) == op.index:
                        free.append(slab_of[src])
            # pass 1: algorithms (on the real buffers, with a search workspace)
            search_ws = self._search_ws()
            plans: dict[int, _ConvPlan] = {}
            for op in fused:
                if op.kind == "conv":
                    z = outputs[op.residual].data.ptr if op.residual is not None else 0
                    plans[op.index] = self._plan_conv(
                        op.layer,
                        n,
                        op.act,
                        op.residual is not None,
                        outputs[op.input].data.ptr,
                        outputs[op.index].data.ptr,
                        z,
                        search_ws,
                    )
                elif op.kind == "linear" and self.linear_impl == "cudnn":
                    plans[op.index] = self._plan_linear_cudnn(
                        op.layer, n, outputs[op.input].data.ptr, outputs[op.index].data.ptr, search_ws
                    )
            del search_ws
            ws_bytes = max([p.ws_bytes for p in plans.values()] + [0])
            workspace = cupy.empty(max(ws_bytes, 1), dtype=cupy.uint8)
            ws, ws_size = workspace.data.ptr, workspace.nbytes
            # pass 2: the launch list
            op_calls: list[tuple[str, list[Call]]] = []
            algorithms: list[dict[str, Any]] = []
            for op in fused:
                calls = self._op_calls(op, n, outputs, plans.get(op.index), ws, ws_size)
                op_calls.append((f"{self.name}/{op.covers[0]}:{op.label}", calls))
                if op.index in plans:
                    algorithms.append(
                        {
                            "op": op.index,
                            "layer": op.covers[0],
                            "label": op.label,
                            "describe": op.describe(net.layers),
                            **plans[op.index].info,
                        }
                    )
        plan = _NetPlan(
            batch=n,
            input=xin,
            slabs=slabs,
            outputs=outputs,
            output=outputs[fused[-1].index],
            workspace=workspace,
            op_calls=op_calls,
            algorithms=algorithms,
        )
        plan.calls = [c for _, calls in op_calls for c in calls]
        plan.host_in = _pinned(xin.shape)
        plan.host_out = _pinned(plan.output.shape)
        self._launch(plan.calls)  # once eagerly: lazy kernel loads happen here, not in the first timed run
        self.stream.synchronize()
        if self.graph:
            from mbv2.timing import CudaGraph

            try:
                plan.graph = CudaGraph(lambda: self._launch(plan.calls), self.stream)
            except Exception as exc:
                raise CudaError(
                    f"CUDA graph capture of the cudnn run at batch {n} failed: {exc.__class__.__name__}: {exc}"
                ) from exc
        self._net_plans[n] = plan
        return plan

    def _op_calls(
        self, op: FusedOp, n: int, outputs: dict[int, Any], plan: _ConvPlan | None, ws: int, ws_size: int
    ) -> list[Call]:
        x, y = outputs[op.input], outputs[op.index]
        if op.kind == "conv":
            assert plan is not None
            z = outputs[op.residual].data.ptr if op.residual is not None else 0
            return self._conv_calls(
                self._convs[id(op.layer)], plan, x.data.ptr, y.data.ptr, z, ws, ws_size, op.act, op.residual is not None
            )
        if op.kind == "add":
            c, h, w = op.out_shape
            return self._add_calls(
                self._tensor(n, c, h, w), x.data.ptr, outputs[op.residual].data.ptr, y.data.ptr, y.nbytes
            )
        if op.kind == "pool":
            c, h, w = op.in_shape
            return self._pool_calls(n, c, h, w, x.data.ptr, y.data.ptr)
        if op.kind == "linear":
            return self._linear_calls(op.layer, n, x.data.ptr, y.data.ptr, plan, ws, ws_size)
        raise AssertionError(op.kind)

    def bind(self, op: FusedOp, x: Any, y: Any, residual: Any = None) -> Any:
        """Plan ``op`` on these buffers once and return a closure that only enqueues its library calls.

        The closure owns its workspace and keeps x, y and residual alive; it checks nothing and allocates
        nothing, so it can be timed or captured into a CUDA graph (scripts/cudnn_time.py, benchmarks)."""
        import cupy

        n = int(x.shape[0])
        plan: _ConvPlan | None = None
        if op.kind == "conv":
            self.conv2d_into(x, op.layer, y, act=op.act, residual=residual)
            plan = self._plans[("conv", id(op.layer), n, bool(op.act), residual is not None)]
        elif op.kind == "linear":
            self.linear_into(x, op.layer, y)
            plan = self._plans.get(("linear", id(op.layer), n))
        elif op.kind == "add":
            self.add_into(x, residual, y)
        elif op.kind == "pool":
            self.global_avg_pool_into(x, y)
        with self.stream:
            ws = cupy.empty(max(plan.ws_bytes if plan else 0, 1), dtype=cupy.uint8)
        outputs = {op.input: x, op.index: y}
        if residual is not None:
            outputs[op.residual] = residual
        calls = self._op_calls(op, n, outputs, plan, ws.data.ptr, ws.nbytes)
        launch_calls = self._launch

        def launch() -> None:
            launch_calls(calls)

        launch.keep = (ws, x, y, residual)  # type: ignore[attr-defined]
        return launch

    def launch_network(self, n: int) -> Any:
        """Enqueue one whole run at batch n on the planned buffers (graph replay when graph=True); no host copies.

        Returns the device logits buffer (overwritten by the next launch). For device-time measurements."""
        plan = self.plan_network(n)
        if plan.graph is not None:
            plan.graph.replay()
        else:
            for label, calls in plan.op_calls:
                with nvtx.annotate(label):
                    self._launch(calls)
        return plan.output

    def run(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x)
        n = int(x.shape[0])
        plan = self.plan_network(n)
        with nvtx.annotate(f"{self.name}/e2e/bs{n}"):
            np.copyto(plan.host_in, x.transpose(0, 2, 3, 1) if self.layout == "nhwc" else x)
            plan.input.set(plan.host_in, stream=self.stream)
            out = self.launch_network(n)
            out.get(stream=self.stream, out=plan.host_out, blocking=True)
            return plan.host_out.copy()
