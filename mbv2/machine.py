"""What a result was measured on: GPU, driver, CUDA runtime, libraries, clocks, commit, and the
measured ceilings of this machine (copy bandwidth, SGEMM rate) that the report's ratios use.

Everything here is read-only: nvidia-smi is only queried, never used to change clocks or modes.
Every field is present on every machine; what cannot be known here is None, with the reason beside
it (``*_reason``), so a CPU-only run still writes a complete record.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import time
from typing import Any

SMI_FIELDS = (
    "name",
    "driver_version",
    "pstate",
    "clocks.sm",
    "clocks.mem",
    "clocks.max.sm",
    "clocks.max.mem",
    "power.draw",
    "power.limit",
    "temperature.gpu",
    "persistence_mode",
    "compute_mode",
)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _first_version(*dists: str) -> str | None:
    for d in dists:
        v = _version(d)
        if v:
            return v
    return None


def git_info(root: str | None = None) -> dict[str, Any]:
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out: dict[str, Any] = {"commit": None, "dirty": None}
    env_commit = os.environ.get("MBV2_GIT_COMMIT")
    if env_commit:  # the caller knows better than the tree it runs in (a copied tree may carry a stale .git)
        dirty = os.environ.get("MBV2_GIT_DIRTY")
        out["commit"] = env_commit
        out["dirty"] = None if dirty is None else dirty.lower() in ("1", "true", "yes")
        out["source"] = "MBV2_GIT_COMMIT / MBV2_GIT_DIRTY environment"
        return out
    try:
        out["commit"] = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            or None
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        out["dirty"] = bool(status.strip())
    except Exception as exc:  # a copy of the tree without .git (e.g. a remote GPU machine)
        out["reason"] = (
            f"git not usable here ({exc.__class__.__name__}); set MBV2_GIT_COMMIT (and MBV2_GIT_DIRTY) to record it"
        )
    return out


def nvidia_smi() -> dict[str, Any]:
    """One read-only nvidia-smi query of GPU 0 (clocks, power, pstate at this moment)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"reason": "nvidia-smi not found"}
    try:
        res = subprocess.run(
            [exe, f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits", "--id=0"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except Exception as exc:
        return {"reason": f"nvidia-smi failed ({exc.__class__.__name__}: {exc})"}
    if res.returncode != 0:
        return {"reason": f"nvidia-smi exit {res.returncode}: {res.stderr.strip()[:200]}"}
    values = [v.strip() for v in res.stdout.strip().splitlines()[0].split(",")]
    return {k.replace(".", "_"): v for k, v in zip(SMI_FIELDS, values)}


def _fmt_cuda_version(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def gpu_info() -> dict[str, Any]:
    from .gpu import gpu_status

    ok, why = gpu_status()
    if not ok:
        return {"name": None, "reason": why}
    import cupy

    rt = cupy.cuda.runtime
    props = rt.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {
        "name": name,
        "sm_count": int(props["multiProcessorCount"]),
        "compute_capability": f"{props['major']}.{props['minor']}",
        "memory_gb": round(props["totalGlobalMem"] / 2**30, 2),
        "l2_bytes": int(props.get("l2CacheSize", 0)),
        "driver_cuda_version": _fmt_cuda_version(rt.driverGetVersion()),
        "cuda_runtime": _fmt_cuda_version(rt.runtimeGetVersion()),
    }


def _cublas_version() -> int | None:
    try:
        import cupy
        from cupy_backends.cuda.libs import cublas

        return int(cublas.getVersion(cupy.cuda.device.get_cublas_handle()))
    except Exception:
        return None


def library_versions(gpu: bool) -> dict[str, Any]:
    """cuDNN / cuBLAS as the cudnn backend reports them (its info()), else as CuPy sees them."""
    out: dict[str, Any] = {"cudnn": None, "cublas": None}
    if gpu:
        try:
            import impls

            ok, reason = impls.available("cudnn")
            if ok:
                mod = impls._module("cudnn")
                versions = getattr(mod, "library_versions", None) or getattr(mod, "versions", None)
                info = versions() if callable(versions) else None
                if info is None:
                    with impls.create("cudnn") as be:
                        info = be.info()
                for key in ("cudnn", "cudnn_version"):
                    if info.get(key) is not None:
                        out["cudnn"] = str(info[key])
                        break
                for key in ("cublas", "cublas_version"):
                    if info.get(key) is not None:
                        out["cublas"] = str(info[key])
                        break
            else:
                out["cudnn_reason"] = f"cudnn backend not available: {reason}"
        except Exception as exc:
            out["cudnn_reason"] = f"cudnn backend info failed ({exc.__class__.__name__}: {exc})"
        if out["cublas"] is None:
            v = _cublas_version()
            out["cublas"] = str(v) if v is not None else None
    else:
        out["reason"] = "no GPU"
    out["cupy"] = _first_version("cupy-cuda13x", "cupy-cuda12x", "cupy")
    out["onnxruntime"] = _first_version("onnxruntime", "onnxruntime-gpu")
    out["torch"] = _version("torch")
    out["numpy"] = _version("numpy")
    out["nvidia_cudnn_wheel"] = _first_version("nvidia-cudnn-cu13", "nvidia-cudnn-cu12")
    return out


# -- measured ceilings ---------------------------------------------------------------------------
def measure_gpu(copy_mb: int = 512, gemm_n: int = 8192, repeats: int = 10) -> dict[str, Any]:
    """Device-to-device copy bandwidth (bytes read + written) and SGEMM rate (fp32, TF32 off) of GPU 0,
    plus the fp16 tensor-core GEMM rate. Medians of CUDA-event timings."""
    import cupy

    tf32_env = os.environ.get("CUPY_TF32", "0")
    out: dict[str, Any] = {"method": f"cupy: D2D memcpy of {copy_mb} MB; cupy.matmul n={gemm_n}"}
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()

    def timed(fn) -> float:
        fn()
        cupy.cuda.Device().synchronize()
        t = []
        for _ in range(repeats):
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            t.append(cupy.cuda.get_elapsed_time(start, stop))
        return statistics.median(t)

    nbytes = copy_mb << 20
    a = cupy.empty(nbytes, dtype=cupy.uint8)
    b = cupy.empty_like(a)
    a.fill(1)
    ms = timed(
        lambda: cupy.cuda.runtime.memcpyAsync(b.data.ptr, a.data.ptr, nbytes, cupy.cuda.runtime.memcpyDeviceToDevice, 0)
    )
    out["copy_gbps"] = 2 * nbytes / ms / 1e6
    a = b = None
    if tf32_env == "1":
        out["sgemm_gflops"] = None
        out["sgemm_reason"] = "CUPY_TF32=1 in the environment: cupy.matmul would use TF32, not SIMT fp32"
    else:
        x = cupy.random.standard_normal((gemm_n, gemm_n), dtype=cupy.float32)
        y = cupy.random.standard_normal((gemm_n, gemm_n), dtype=cupy.float32)
        ms = timed(lambda: cupy.matmul(x, y))
        out["sgemm_gflops"] = 2 * gemm_n**3 / ms / 1e6
        x = y = None
    x = cupy.random.standard_normal((gemm_n, gemm_n), dtype=cupy.float32).astype(cupy.float16)
    y = x.copy()
    ms = timed(lambda: cupy.matmul(x, y))
    out["hgemm_gflops"] = 2 * gemm_n**3 / ms / 1e6
    out["cupy_tf32_env"] = tf32_env
    cupy.get_default_memory_pool().free_all_blocks()
    return out


def measure_cpu(copy_mb: int = 256, gemm_n: int = 1024, repeats: int = 5) -> dict[str, Any]:
    """The same two ceilings for the CPU backends: NumPy copy (read + write) and float32 matmul."""
    import numpy as np

    def timed(fn) -> float:
        fn()
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(t)

    a = np.ones(copy_mb << 18, dtype=np.float32)
    b = np.empty_like(a)
    ms = timed(lambda: np.copyto(b, a))
    x = np.random.default_rng(0).standard_normal((gemm_n, gemm_n), dtype=np.float32)
    ms_g = timed(lambda: x @ x)
    return {
        "copy_gbps": 2 * a.nbytes / ms / 1e6,
        "sgemm_gflops": 2 * gemm_n**3 / ms_g / 1e6,
        "method": f"numpy: copyto of {copy_mb} MB; float32 matmul n={gemm_n}",
    }


def collect(measure: bool = True) -> dict[str, Any]:
    """The machine record that goes into every results JSON (pytest-benchmark's machine_info)."""
    from . import nvtx
    from .gpu import gpu_status

    ok, _ = gpu_status()
    info: dict[str, Any] = {
        "gpu": gpu_info(),
        "nvidia_smi_at_start": nvidia_smi() if ok else {"reason": "no GPU"},
        "libraries": library_versions(ok),
        "git": git_info(),
        "nvtx": nvtx.status(),
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        "measured": None,
        "measured_cpu": None,
    }
    if measure:
        if ok:
            try:
                info["measured"] = measure_gpu()
            except Exception as exc:
                info["measured"] = {
                    "copy_gbps": None,
                    "sgemm_gflops": None,
                    "reason": f"measurement failed ({exc.__class__.__name__}: {exc})",
                }
        else:
            info["measured"] = {"copy_gbps": None, "sgemm_gflops": None, "reason": "no GPU"}
        info["measured_cpu"] = measure_cpu()
    return info


def gpu_name(machine_info: dict[str, Any]) -> str | None:
    """The GPU name of a results JSON's machine_info (None for a CPU-only run)."""
    m = machine_info.get("mbv2", machine_info)
    return (m.get("gpu") or {}).get("name")
