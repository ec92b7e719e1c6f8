"""ctypes bindings to libcudnn (cuDNN 9, legacy API) and libcublas: discovery, signatures, enums, status checks.

Discovery order (first that loads wins), for each library:
  1. the NVIDIA wheels in site-packages: ``nvidia/cudnn/lib/libcudnn.so.9`` (nvidia-cudnn-cu12/-cu13),
     ``nvidia/cu13/lib/libcublas.so.13`` (nvidia-cublas, CUDA 13) and ``nvidia/cublas/lib/libcublas.so.1[23]``
     (nvidia-cublas-cu12 and older layouts);
  2. the system: ``ldconfig -p``, then ``$CUDA_PATH``/``$CUDA_HOME``/``/usr/local/cuda`` lib64 and targets/;
  3. the bare soname (the loader's own search: LD_LIBRARY_PATH, RUNPATH of the process).

cuBLAS is loaded first and with RTLD_GLOBAL (after its libcublasLt), because cuDNN 9's engine sub-libraries
dlopen ``libcublasLt.so`` by soname. ``libcudnn.so.9`` is a small dispatch shim that dlopens its
sub-libraries (libcudnn_graph, _ops, _cnn, ...) from its own directory (RPATH $ORIGIN) on first use; the
``cudnn*VersionCheck`` calls in :func:`Libraries.check_sublibraries` force that load early so that a missing
or mismatched sub-library is reported by ``available()`` instead of at the first convolution.

Signatures are written as C declarations (the header's spelling) and turned into ctypes argtypes through
one table, so that tests/test_cudnn_bindings.py can compare them with the installed headers.
Every status is checked: a failure raises CudaError naming the function and the library's status string.
"""

from __future__ import annotations

import ctypes
import os
import re
import site
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbv2.errors import BackendUnavailable, CudaError

# -- enums (values checked against the headers by tests/test_cudnn_bindings.py) -----------------------
ENUMS: dict[str, int] = {
    # cudnn_graph.h
    "CUDNN_STATUS_SUCCESS": 0,
    "CUDNN_STATUS_NOT_SUPPORTED": 3000,
    "CUDNN_DATA_FLOAT": 0,
    "CUDNN_DATA_DOUBLE": 1,
    "CUDNN_DATA_HALF": 2,
    "CUDNN_DEFAULT_MATH": 0,
    "CUDNN_TENSOR_OP_MATH": 1,
    "CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION": 2,
    "CUDNN_FMA_MATH": 3,
    "CUDNN_NOT_PROPAGATE_NAN": 0,
    "CUDNN_PROPAGATE_NAN": 1,
    "CUDNN_TENSOR_NCHW": 0,
    "CUDNN_TENSOR_NHWC": 1,
    "CUDNN_ACTIVATION_RELU": 1,
    "CUDNN_ACTIVATION_CLIPPED_RELU": 3,
    "CUDNN_ACTIVATION_IDENTITY": 5,
    "CUDNN_CONVOLUTION": 0,
    "CUDNN_CROSS_CORRELATION": 1,
    # cudnn_ops.h
    "CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING": 1,
    "CUDNN_NON_DETERMINISTIC": 0,
    "CUDNN_DETERMINISTIC": 1,
    "CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM": 0,
    "CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM": 1,
    "CUDNN_CONVOLUTION_FWD_ALGO_GEMM": 2,
    "CUDNN_CONVOLUTION_FWD_ALGO_DIRECT": 3,
    "CUDNN_CONVOLUTION_FWD_ALGO_FFT": 4,
    "CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING": 5,
    "CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD": 6,
    "CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED": 7,
    "CUDNN_CONVOLUTION_FWD_ALGO_COUNT": 8,
    # cublas_api.h
    "CUBLAS_STATUS_SUCCESS": 0,
    "CUBLAS_OP_N": 0,
    "CUBLAS_OP_T": 1,
    "CUBLAS_DEFAULT_MATH": 0,
    "CUBLAS_PEDANTIC_MATH": 2,
    "CUBLAS_TF32_TENSOR_OP_MATH": 3,
    "CUBLAS_COMPUTE_32F": 68,
    "CUBLAS_COMPUTE_32F_PEDANTIC": 69,
    "CUBLAS_COMPUTE_32F_FAST_TF32": 77,
    "CUBLAS_GEMM_DEFAULT": -1,
    # library_types.h (CUDA toolkit)
    "CUDA_R_32F": 0,
    "MAJOR_VERSION": 0,
    "MINOR_VERSION": 1,
    "PATCH_LEVEL": 2,
}


FWD_ALGO_NAMES = {
    v: k.removeprefix("CUDNN_CONVOLUTION_FWD_ALGO_")
    for k, v in ENUMS.items()
    if k.startswith("CUDNN_CONVOLUTION_FWD_ALGO_") and not k.endswith("_COUNT")
}
MATH_NAMES = {0: "DEFAULT_MATH", 1: "TENSOR_OP_MATH", 2: "TENSOR_OP_MATH_ALLOW_CONVERSION", 3: "FMA_MATH"}


class ConvolutionFwdAlgoPerf(ctypes.Structure):
    """cudnnConvolutionFwdAlgoPerf_t (cudnn_cnn.h)."""

    _fields_ = [
        ("algo", ctypes.c_int),
        ("status", ctypes.c_int),
        ("time", ctypes.c_float),
        ("memory", ctypes.c_size_t),
        ("determinism", ctypes.c_int),
        ("mathType", ctypes.c_int),
        ("reserved", ctypes.c_int * 3),
    ]


# C type of the struct fields above, for the header check
ALGO_PERF_C_FIELDS = [
    ("cudnnConvolutionFwdAlgo_t", "algo"),
    ("cudnnStatus_t", "status"),
    ("float", "time"),
    ("size_t", "memory"),
    ("cudnnDeterminism_t", "determinism"),
    ("cudnnMathType_t", "mathType"),
    ("int", "reserved[3]"),
]

# -- C type -> ctypes -------------------------------------------------------------------------------------
_ENUM_TYPES = {
    "cudnnStatus_t",
    "cudnnDataType_t",
    "cudnnTensorFormat_t",
    "cudnnActivationMode_t",
    "cudnnNanPropagation_t",
    "cudnnPoolingMode_t",
    "cudnnConvolutionMode_t",
    "cudnnMathType_t",
    "cudnnConvolutionFwdAlgo_t",
    "cudnnDeterminism_t",
    "libraryPropertyType",
    "cublasStatus_t",
    "cublasOperation_t",
    "cublasMath_t",
    "cudaDataType",
    "cublasComputeType_t",
    "cublasGemmAlgo_t",
}
_OPAQUE_POINTERS = {
    "cudnnHandle_t",
    "cudnnTensorDescriptor_t",
    "cudnnFilterDescriptor_t",
    "cudnnConvolutionDescriptor_t",
    "cudnnActivationDescriptor_t",
    "cudnnPoolingDescriptor_t",
    "cudaStream_t",
    "cublasHandle_t",
}


def normalize_c_type(t: str) -> str:
    """'const cudnnTensorDescriptor_t' -> 'cudnnTensorDescriptor_t'; 'const void *' -> 'void*'.

    const does not change the ABI of a parameter, so it is dropped from both sides of the comparison.
    """
    t = re.sub(r"\bconst\b", " ", t)
    t = re.sub(r"\s*\*\s*", "*", t)
    return " ".join(t.split())


def ctype_of(c_type: str) -> Any:
    t = normalize_c_type(c_type)
    if t == "void":
        return None
    if t in _ENUM_TYPES or t == "int":
        return ctypes.c_int
    if t == "unsigned":
        return ctypes.c_uint
    if t == "size_t":
        return ctypes.c_size_t
    if t == "double":
        return ctypes.c_double
    if t == "float":
        return ctypes.c_float
    if t == "char*":
        return ctypes.c_char_p
    if t in _OPAQUE_POINTERS or t in ("void*", "float*"):
        return ctypes.c_void_p
    if t.endswith("*"):
        base = t[:-1]
        if base in _OPAQUE_POINTERS:
            return ctypes.POINTER(ctypes.c_void_p)
        if base in _ENUM_TYPES or base == "int":
            return ctypes.POINTER(ctypes.c_int)
        if base == "size_t":
            return ctypes.POINTER(ctypes.c_size_t)
        if base == "cudnnConvolutionFwdAlgoPerf_t":
            return ctypes.POINTER(ConvolutionFwdAlgoPerf)
    raise TypeError(f"no ctypes mapping for C type {c_type!r}")


# -- signatures: (return type, name, parameter types), spelled as in the headers ---------------------------
_DESC = "cudnnTensorDescriptor_t"
CUDNN_SIGNATURES: list[tuple[str, str, list[str]]] = [
    ("size_t", "cudnnGetVersion", []),
    ("size_t", "cudnnGetCudartVersion", []),
    ("cudnnStatus_t", "cudnnGetProperty", ["libraryPropertyType", "int*"]),
    ("const char*", "cudnnGetErrorString", ["cudnnStatus_t"]),
    ("void", "cudnnGetLastErrorString", ["char*", "size_t"]),
    ("cudnnStatus_t", "cudnnGraphVersionCheck", []),
    ("cudnnStatus_t", "cudnnOpsVersionCheck", []),
    ("cudnnStatus_t", "cudnnCnnVersionCheck", []),
    ("cudnnStatus_t", "cudnnCreate", ["cudnnHandle_t*"]),
    ("cudnnStatus_t", "cudnnDestroy", ["cudnnHandle_t"]),
    ("cudnnStatus_t", "cudnnSetStream", ["cudnnHandle_t", "cudaStream_t"]),
    # tensors
    ("cudnnStatus_t", "cudnnCreateTensorDescriptor", ["cudnnTensorDescriptor_t*"]),
    ("cudnnStatus_t", "cudnnDestroyTensorDescriptor", [_DESC]),
    (
        "cudnnStatus_t",
        "cudnnSetTensor4dDescriptor",
        [_DESC, "cudnnTensorFormat_t", "cudnnDataType_t", "int", "int", "int", "int"],
    ),
    (
        "cudnnStatus_t",
        "cudnnAddTensor",
        ["cudnnHandle_t", "const void*", _DESC, "const void*", "const void*", _DESC, "void*"],
    ),
    # activation
    ("cudnnStatus_t", "cudnnCreateActivationDescriptor", ["cudnnActivationDescriptor_t*"]),
    ("cudnnStatus_t", "cudnnDestroyActivationDescriptor", ["cudnnActivationDescriptor_t"]),
    (
        "cudnnStatus_t",
        "cudnnSetActivationDescriptor",
        ["cudnnActivationDescriptor_t", "cudnnActivationMode_t", "cudnnNanPropagation_t", "double"],
    ),
    (
        "cudnnStatus_t",
        "cudnnActivationForward",
        [
            "cudnnHandle_t",
            "cudnnActivationDescriptor_t",
            "const void*",
            _DESC,
            "const void*",
            "const void*",
            _DESC,
            "void*",
        ],
    ),
    # pooling
    ("cudnnStatus_t", "cudnnCreatePoolingDescriptor", ["cudnnPoolingDescriptor_t*"]),
    ("cudnnStatus_t", "cudnnDestroyPoolingDescriptor", ["cudnnPoolingDescriptor_t"]),
    (
        "cudnnStatus_t",
        "cudnnSetPooling2dDescriptor",
        [
            "cudnnPoolingDescriptor_t",
            "cudnnPoolingMode_t",
            "cudnnNanPropagation_t",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
        ],
    ),
    (
        "cudnnStatus_t",
        "cudnnPoolingForward",
        [
            "cudnnHandle_t",
            "cudnnPoolingDescriptor_t",
            "const void*",
            _DESC,
            "const void*",
            "const void*",
            _DESC,
            "void*",
        ],
    ),
    # filters and convolutions
    ("cudnnStatus_t", "cudnnCreateFilterDescriptor", ["cudnnFilterDescriptor_t*"]),
    ("cudnnStatus_t", "cudnnDestroyFilterDescriptor", ["cudnnFilterDescriptor_t"]),
    (
        "cudnnStatus_t",
        "cudnnSetFilter4dDescriptor",
        ["cudnnFilterDescriptor_t", "cudnnDataType_t", "cudnnTensorFormat_t", "int", "int", "int", "int"],
    ),
    ("cudnnStatus_t", "cudnnCreateConvolutionDescriptor", ["cudnnConvolutionDescriptor_t*"]),
    ("cudnnStatus_t", "cudnnDestroyConvolutionDescriptor", ["cudnnConvolutionDescriptor_t"]),
    (
        "cudnnStatus_t",
        "cudnnSetConvolution2dDescriptor",
        [
            "cudnnConvolutionDescriptor_t",
            "int",
            "int",
            "int",
            "int",
            "int",
            "int",
            "cudnnConvolutionMode_t",
            "cudnnDataType_t",
        ],
    ),
    ("cudnnStatus_t", "cudnnSetConvolutionGroupCount", ["cudnnConvolutionDescriptor_t", "int"]),
    ("cudnnStatus_t", "cudnnSetConvolutionMathType", ["cudnnConvolutionDescriptor_t", "cudnnMathType_t"]),
    (
        "cudnnStatus_t",
        "cudnnGetConvolution2dForwardOutputDim",
        ["cudnnConvolutionDescriptor_t", _DESC, "cudnnFilterDescriptor_t", "int*", "int*", "int*", "int*"],
    ),
    ("cudnnStatus_t", "cudnnGetConvolutionForwardAlgorithmMaxCount", ["cudnnHandle_t", "int*"]),
    (
        "cudnnStatus_t",
        "cudnnFindConvolutionForwardAlgorithmEx",
        [
            "cudnnHandle_t",
            _DESC,
            "const void*",
            "cudnnFilterDescriptor_t",
            "const void*",
            "cudnnConvolutionDescriptor_t",
            _DESC,
            "void*",
            "int",
            "int*",
            "cudnnConvolutionFwdAlgoPerf_t*",
            "void*",
            "size_t",
        ],
    ),
    (
        "cudnnStatus_t",
        "cudnnGetConvolutionForwardWorkspaceSize",
        [
            "cudnnHandle_t",
            _DESC,
            "cudnnFilterDescriptor_t",
            "cudnnConvolutionDescriptor_t",
            _DESC,
            "cudnnConvolutionFwdAlgo_t",
            "size_t*",
        ],
    ),
    (
        "cudnnStatus_t",
        "cudnnConvolutionForward",
        [
            "cudnnHandle_t",
            "const void*",
            _DESC,
            "const void*",
            "cudnnFilterDescriptor_t",
            "const void*",
            "cudnnConvolutionDescriptor_t",
            "cudnnConvolutionFwdAlgo_t",
            "void*",
            "size_t",
            "const void*",
            _DESC,
            "void*",
        ],
    ),
    (
        "cudnnStatus_t",
        "cudnnConvolutionBiasActivationForward",
        [
            "cudnnHandle_t",
            "const void*",
            _DESC,
            "const void*",
            "cudnnFilterDescriptor_t",
            "const void*",
            "cudnnConvolutionDescriptor_t",
            "cudnnConvolutionFwdAlgo_t",
            "void*",
            "size_t",
            "const void*",
            _DESC,
            "const void*",
            _DESC,
            "const void*",
            "cudnnActivationDescriptor_t",
            _DESC,
            "void*",
        ],
    ),
]

CUBLAS_SIGNATURES: list[tuple[str, str, list[str]]] = [
    ("cublasStatus_t", "cublasCreate_v2", ["cublasHandle_t*"]),
    ("cublasStatus_t", "cublasDestroy_v2", ["cublasHandle_t"]),
    ("cublasStatus_t", "cublasGetVersion_v2", ["cublasHandle_t", "int*"]),
    ("cublasStatus_t", "cublasGetProperty", ["libraryPropertyType", "int*"]),
    ("const char*", "cublasGetStatusString", ["cublasStatus_t"]),
    ("const char*", "cublasGetStatusName", ["cublasStatus_t"]),
    ("cublasStatus_t", "cublasSetStream_v2", ["cublasHandle_t", "cudaStream_t"]),
    ("cublasStatus_t", "cublasSetWorkspace_v2", ["cublasHandle_t", "void*", "size_t"]),
    ("cublasStatus_t", "cublasSetMathMode", ["cublasHandle_t", "cublasMath_t"]),
    ("cublasStatus_t", "cublasGetMathMode", ["cublasHandle_t", "cublasMath_t*"]),
    (
        "cublasStatus_t",
        "cublasSgemm_v2",
        [
            "cublasHandle_t",
            "cublasOperation_t",
            "cublasOperation_t",
            "int",
            "int",
            "int",
            "const float*",
            "const float*",
            "int",
            "const float*",
            "int",
            "const float*",
            "float*",
            "int",
        ],
    ),
    (
        "cublasStatus_t",
        "cublasGemmEx",
        [
            "cublasHandle_t",
            "cublasOperation_t",
            "cublasOperation_t",
            "int",
            "int",
            "int",
            "const void*",
            "const void*",
            "cudaDataType",
            "int",
            "const void*",
            "cudaDataType",
            "int",
            "const void*",
            "void*",
            "cudaDataType",
            "int",
            "cublasComputeType_t",
            "cublasGemmAlgo_t",
        ],
    ),
]

# functions whose return value is not a status
_NOT_CHECKED = {
    "cudnnGetVersion",
    "cudnnGetCudartVersion",
    "cudnnGetErrorString",
    "cudnnGetLastErrorString",
    "cublasGetStatusString",
    "cublasGetStatusName",
}

# -- discovery -----------------------------------------------------------------------------------------------
CUDNN_SONAMES = ("libcudnn.so.9",)
CUBLAS_SONAMES = ("libcublas.so.13", "libcublas.so.12")
# wheel sub-directories of site-packages holding each library, in order of preference
_WHEEL_DIRS = {
    "cudnn": ("nvidia/cudnn/lib",),
    "cublas": ("nvidia/cu13/lib", "nvidia/cublas/lib"),
}
_SONAMES = {"cudnn": CUDNN_SONAMES, "cublas": CUBLAS_SONAMES}


def site_dirs() -> list[Path]:
    """site-packages directories of this interpreter (and sys.path entries), each once, in order."""
    dirs: list[str] = []
    try:
        dirs += site.getsitepackages()
    except Exception:  # virtualenvs built without site.getsitepackages
        pass
    try:
        dirs.append(site.getusersitepackages())
    except Exception:
        pass
    dirs += [p for p in sys.path if p]
    seen: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_dir() and p not in seen:
            seen.append(p)
    return seen


def _ldconfig_paths(soname: str) -> list[Path]:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except Exception:
        return []
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(soname + " ") and "=>" in line:
            paths.append(Path(line.split("=>", 1)[1].strip()))
    return paths


def _toolkit_lib_dirs() -> list[Path]:
    roots = [os.environ.get(v) for v in ("CUDA_PATH", "CUDA_HOME")] + ["/usr/local/cuda"]
    dirs = []
    for r in roots:
        if r:
            dirs += [Path(r) / "lib64", Path(r) / "lib", Path(r) / "targets" / "x86_64-linux" / "lib"]
    return dirs


def candidates(kind: str) -> list[tuple[str, str]]:
    """(path or soname, where it came from) to try for ``kind`` ("cudnn" or "cublas"), best first."""
    out: list[tuple[str, str]] = []
    for sp in site_dirs():
        for sub in _WHEEL_DIRS[kind]:
            for soname in _SONAMES[kind]:
                p = sp / sub / soname
                if p.exists():
                    out.append((str(p), "wheel"))
    for soname in _SONAMES[kind]:
        out += [(str(p), "ldconfig") for p in _ldconfig_paths(soname)]
        out += [(str(d / soname), "CUDA toolkit") for d in _toolkit_lib_dirs() if (d / soname).exists()]
    out += [(soname, "loader search path") for soname in _SONAMES[kind]]
    dedup: list[tuple[str, str]] = []
    for c in out:
        if c[0] not in [d[0] for d in dedup]:
            dedup.append(c)
    return dedup


def header_dirs(kind: str) -> list[Path]:
    """Include directories that may hold the headers of ``kind`` (for the binding tests)."""
    dirs: list[Path] = []
    for sp in site_dirs():
        for sub in _WHEEL_DIRS[kind]:
            dirs.append(sp / sub.replace("/lib", "/include"))
    roots = [os.environ.get(v) for v in ("CUDA_PATH", "CUDA_HOME")] + ["/usr/local/cuda"]
    dirs += [Path(r) / "include" for r in roots if r]
    dirs += [Path("/usr/include"), Path("/usr/include/x86_64-linux-gnu")]
    return [d for d in dirs if d.is_dir()]


def _open(path: str) -> ctypes.CDLL:
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def _bind(lib: ctypes.CDLL, signatures: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    funcs: dict[str, Any] = {}
    for ret, name, params in signatures:
        try:
            f = getattr(lib, name)
        except AttributeError as exc:
            raise BackendUnavailable(f"{lib._name} has no symbol {name} (too old?)") from exc
        f.restype = ctype_of(ret)
        f.argtypes = [ctype_of(p) for p in params]
        funcs[name] = f
    return funcs


def _load_first(kind: str) -> tuple[ctypes.CDLL, str, str]:
    tried = []
    for path, source in candidates(kind):
        try:
            if kind == "cublas" and os.sep in path:
                # libcublas NEEDs libcublasLt of the same directory; load it first, globally, so that
                # cuDNN's engines find the same copy by soname
                lt = Path(path).with_name(Path(path).name.replace("libcublas.", "libcublasLt."))
                if lt.exists():
                    _open(str(lt))
            return _open(path), path, source
        except OSError as exc:
            tried.append(f"{path} ({source}): {exc}")
    sonames = " or ".join(_SONAMES[kind])
    pip = "nvidia-cudnn-cu13 (or -cu12)" if kind == "cudnn" else "nvidia-cublas (CUDA 13) or nvidia-cublas-cu12"
    detail = "; ".join(tried) if tried else "no candidate paths"
    raise BackendUnavailable(f"cannot load {sonames}: tried {detail}. Install {pip}, e.g. the cuda13 extra")


@dataclass
class Libraries:
    cudnn: ctypes.CDLL
    cublas: ctypes.CDLL
    cudnn_path: str
    cublas_path: str
    cudnn_source: str
    cublas_source: str
    f: dict[str, Any] = field(default_factory=dict)  # name -> ctypes function (unchecked)

    # -- checked calls ----------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """``libs.cudnnCreate(...)``: call and raise CudaError unless it returned success."""
        f = self.__dict__.get("f", {}).get(name)
        if f is None:
            raise AttributeError(name)
        if name in _NOT_CHECKED:
            return f
        check = self.check_cudnn if name.startswith("cudnn") else self.check_cublas

        def call(*args: Any) -> int:
            status = f(*args)
            if status != 0:
                check(name, status)
            return status

        call.__name__ = name
        return call

    def cudnn_status_string(self, status: int) -> str:
        s = self.f["cudnnGetErrorString"](status)
        return s.decode(errors="replace") if s else f"status {status}"

    def cudnn_last_error(self) -> str:
        buf = ctypes.create_string_buffer(1024)
        self.f["cudnnGetLastErrorString"](buf, len(buf))
        return buf.value.decode(errors="replace").strip()

    def check_cudnn(self, name: str, status: int) -> None:
        if status == 0:
            return
        text = self.cudnn_status_string(status)
        last = self.cudnn_last_error()
        raise CudaError(f"{name} failed: {text} (status {status})" + (f"; cuDNN says: {last}" if last else ""))

    def check_cublas(self, name: str, status: int) -> None:
        if status == 0:
            return
        s = self.f["cublasGetStatusString"](status)
        n = self.f["cublasGetStatusName"](status)
        text = (n.decode() + ": " if n else "") + (s.decode() if s else f"status {status}")
        raise CudaError(f"{name} failed: {text} (status {status})")

    # -- versions ---------------------------------------------------------------------------------
    def cudnn_version(self) -> str:
        v = int(self.f["cudnnGetVersion"]())
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"

    def cudnn_cudart_version(self) -> int:
        return int(self.f["cudnnGetCudartVersion"]())

    def cublas_version(self) -> str:
        parts = []
        for prop in (ENUMS["MAJOR_VERSION"], ENUMS["MINOR_VERSION"], ENUMS["PATCH_LEVEL"]):
            v = ctypes.c_int()
            self.cublasGetProperty(prop, ctypes.byref(v))
            parts.append(str(v.value))
        return ".".join(parts)

    def check_sublibraries(self) -> None:
        """Load cuDNN's graph/ops/cnn sub-libraries now; raise BackendUnavailable if one is missing or mismatched."""
        for name in ("cudnnGraphVersionCheck", "cudnnOpsVersionCheck", "cudnnCnnVersionCheck"):
            status = self.f[name]()
            if status != 0:
                raise BackendUnavailable(
                    f"{name} failed: {self.cudnn_status_string(status)} (status {status}) "
                    f"for {self.cudnn_path}; {self.cudnn_last_error()}"
                )


_LOADED: dict[str, Libraries] = {}


def load() -> Libraries:
    """The bound libraries (loaded once per process), or BackendUnavailable with what was tried."""
    if "libs" in _LOADED:
        return _LOADED["libs"]
    errors, loaded = [], {}
    for kind in ("cublas", "cudnn"):  # cuBLAS first: cuDNN's engines find its libcublasLt by soname
        try:
            loaded[kind] = _load_first(kind)
        except BackendUnavailable as exc:
            errors.append(str(exc))
    if errors:
        raise BackendUnavailable("; ".join(errors))
    (cublas, cublas_path, cublas_src), (cudnn, cudnn_path, cudnn_src) = loaded["cublas"], loaded["cudnn"]
    libs = Libraries(
        cudnn=cudnn,
        cublas=cublas,
        cudnn_path=cudnn_path,
        cublas_path=cublas_path,
        cudnn_source=cudnn_src,
        cublas_source=cublas_src,
    )
    libs.f.update(_bind(cudnn, CUDNN_SIGNATURES))
    libs.f.update(_bind(cublas, CUBLAS_SIGNATURES))
    major = int(libs.f["cudnnGetVersion"]()) // 10000
    if major != 9:
        raise BackendUnavailable(f"{cudnn_path} is cuDNN {libs.cudnn_version()}; this backend binds cuDNN 9")
    _LOADED["libs"] = libs
    return libs


def reset() -> None:
    """Forget the loaded libraries (tests that simulate a machine without them). The CDLLs stay mapped."""
    _LOADED.clear()


# -- header parsing (used by the binding tests; here so that scripts can use it too) ---------------------------
def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def parse_prototypes(text: str, api_macro: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (return type, [parameter types]) for every ``RET API_MACRO name(params);`` in a header."""
    text = strip_comments(text)
    protos: dict[str, tuple[str, list[str]]] = {}
    pat = re.compile(r"([A-Za-z_][\w\s\*]*?)\b" + api_macro + r"\s+(\w+)\s*\(([^;{]*?)\)\s*;", re.S)
    for m in pat.finditer(text):
        ret = m.group(1).replace("CUDNN_DEPRECATED", " ").split("\n")[-1]
        ret = normalize_c_type(ret.replace("extern", " "))
        params = [p.strip() for p in m.group(3).split(",")]
        if params == ["void"] or params == [""]:
            params = []
        types = []
        for p in params:
            p = re.sub(r"\[[^\]]*\]", "*", p)  # int x[] -> int*
            mm = re.match(r"(.*?)([A-Za-z_]\w*)\s*$", p, re.S)
            # the last identifier is the parameter's name unless the declaration has no name
            t = mm.group(1) if mm and normalize_c_type(mm.group(1)) not in ("", "const") else p
            types.append(normalize_c_type(t))
        protos[m.group(2)] = (ret, types)
    return protos


def parse_enum_values(text: str) -> dict[str, int]:
    """NAME -> value for every ``NAME = <int>`` enumerator with an explicit value, and implicit ones after them."""
    text = strip_comments(text)
    values: dict[str, int] = {}
    for body in re.findall(r"\benum\b[^{;]*\{(.*?)\}", text, flags=re.S):
        nxt = 0
        for item in body.split(","):
            item = re.sub(r"\bCUDNN_DEPRECATED_ENUM\b", " ", item).strip()
            if not item:
                continue
            m = re.match(r"([A-Za-z_]\w*)\s*(?:=\s*(.+))?$", item, re.S)
            if not m:
                continue
            if m.group(2) is not None:
                try:
                    nxt = int(m.group(2).strip().rstrip("uUlL"), 0)
                except ValueError:
                    try:
                        nxt = int(eval(m.group(2).strip(), {}, dict(values)))  # e.g. 1 << 3, NAME + 1
                    except Exception:
                        continue
            values[m.group(1)] = nxt
            nxt += 1
    return values


def parse_struct_fields(text: str, typedef_name: str) -> list[tuple[str, str]]:
    """[(C type, field name)] of ``typedef struct ... { ... } typedef_name``."""
    text = strip_comments(text)
    m = re.search(r"typedef\s+struct\s+\w*\s*\{([^}]*)\}\s*" + re.escape(typedef_name) + r"\b", text, re.S)
    if not m:
        return []
    fields = []
    for decl in m.group(1).split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        mm = re.match(r"(.*?)\s*([A-Za-z_]\w*(?:\[\d+\])?)$", decl)
        if mm:
            fields.append((normalize_c_type(mm.group(1)), mm.group(2)))
    return fields
