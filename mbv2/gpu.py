"""Is there a CUDA GPU this process can use? One answer with a reason, for backends and tests."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def gpu_status() -> tuple[bool, str]:
    """(True, "<device name>") or (False, why not). Never raises. MBV2_HIDE_GPU=1: no GPU, whatever the machine has
    (the host tests alone on a GPU machine; the shard script's host test)."""
    import ctypes
    import os

    if os.environ.get("MBV2_HIDE_GPU", "").strip() not in ("", "0"):
        return False, "MBV2_HIDE_GPU is set"

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False, "no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded)"
    try:
        import cupy
    except Exception as exc:
        return False, f"CuPy is not importable ({exc.__class__.__name__}: {exc}); install the cuda12 or cuda13 extra"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return False, f"no usable CUDA driver/GPU ({exc.__class__.__name__}: {exc})"
    if n < 1:
        return False, "no CUDA GPU found"
    try:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    except Exception as exc:
        return False, f"cannot query GPU 0 ({exc.__class__.__name__}: {exc})"
    return True, name
