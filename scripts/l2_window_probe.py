"""Session 40: does an L2 access-policy window keep a kernel's data in the L2 of this GPU, inside a CUDA graph? Any
sm_80+ GPU; results/NOTES.md "Session 40" cites its output.

    python3 scripts/l2_window_probe.py [--mb 5] [--flood-mb 96] [--json out.json]

A buffer W of --mb MB (the batch-1 classifier's weights: 5.1 MB) is read by one kernel after a flood kernel has read
--flood-mb MB of other data, both in one CUDA graph replayed back to back: without a window W comes from DRAM each
replay. W's read costs t([flood, read]) - t([flood]) (CUDA-event medians of the replays). Variants:

    off      plain launches, no window
    launch   the read launched by cuLaunchKernelEx with CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW over W (hits
             persisting, misses streaming): what MBV2_L2_PERSIST=head gives the head's launches (without the PDL
             attribute here)
    stream   the window as an attribute of the stream the graph is captured from (cuStreamSetAttribute)

with cudaLimitPersistingL2CacheSize set to W's size rounded up to a MiB (at most the GPU's maximum) for the last two.
Each variant is checked: the read kernel's sum of W must be the host's (W holds small integers, exact in fp32).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import custom  # noqa: E402

SRC = r"""
// each block's sum of its float4s of w into part[blockIdx.x] (no atomics: the read is the cost measured)
extern "C" __global__ void read_sum(const float4* __restrict__ w, float* __restrict__ part, int n4) {
    __shared__ float ws[32];
    float s = 0.0f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += gridDim.x * blockDim.x) {
        const float4 v = __ldg(w + i);
        s += (v.x + v.y) + (v.z + v.w);
    }
    for (int m = 16; m > 0; m >>= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
    if ((threadIdx.x & 31) == 0) ws[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.0f;
        for (int k = 0; k < (int)(blockDim.x >> 5); ++k) t += ws[k];
        part[blockIdx.x] = t;
    }
}
"""
VARIANTS = ("off", "launch", "stream")


def main() -> None:
    import cupy

    from mbv2.timing import CudaGraph, cuda_event_timing

    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=5.12)
    ap.add_argument("--flood-mb", type=float, default=96.0)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    props = cupy.cuda.runtime.getDeviceProperties(0)
    most = int(props["persistingL2CacheMaxSize"])
    n4 = int(args.mb * 1e6) // 16
    f4 = int(args.flood_mb * 1e6) // 16
    rng = np.random.default_rng(0)
    w_host = rng.integers(0, 4, size=4 * n4).astype(np.float32)
    w = cupy.asarray(w_host)
    flood = cupy.asarray(rng.integers(0, 4, size=4 * f4).astype(np.float32))
    grid, block = (4 * int(props["multiProcessorCount"]),), (256,)
    out = cupy.zeros(2 * grid[0], cupy.float32)  # the read's block sums, then the flood's
    fn = cupy.RawModule(code=SRC).get_function("read_sum")
    stream = cupy.cuda.Stream(non_blocking=True)
    launch_ex = custom._driver_launch_ex()
    set_attr = custom._driver_fn("cuStreamSetAttribute")
    if launch_ex is None or set_attr is None:
        raise SystemExit("cuLaunchKernelEx / cuStreamSetAttribute not found in libcuda")
    nbytes = 16 * n4
    aside = min(most, -(-nbytes // (1 << 20)) << 20)
    window = custom.AccessPolicyWindow(w.data.ptr, nbytes, min(1.0, aside / nbytes), 2, 1)
    rows = []
    for variant in VARIANTS:
        cupy.cuda.runtime.deviceSetLimit(custom.LIMIT_PERSISTING_L2_CACHE_SIZE, 0 if variant == "off" else aside)
        if variant == "stream":  # (the last variant: the earlier ones ran on the stream without a window)
            val = custom.LaunchAttrValue()
            val.window = window
            err = set_attr(ctypes.c_void_p(stream.ptr), custom.ACCESS_POLICY_WINDOW, ctypes.byref(val))
            if err != 0:
                raise SystemExit(f"cuStreamSetAttribute: CUresult {err}")

        def read(variant: str = variant) -> None:
            if variant != "launch":
                fn(grid, block, (w, out, np.int32(n4)))
                return
            attr = custom.LaunchAttr(id=custom.ACCESS_POLICY_WINDOW)
            attr.value.window = window
            cfg = custom.LaunchConfig(*grid, 1, 1, *block, 1, 1, 0, stream.ptr, ctypes.pointer(attr), 1)
            vals = [ctypes.c_uint64(w.data.ptr), ctypes.c_uint64(out.data.ptr), ctypes.c_int(n4)]
            params = (ctypes.c_void_p * 3)(*[ctypes.addressof(v) for v in vals])
            e = launch_ex(ctypes.byref(cfg), ctypes.c_void_p(fn.kernel.ptr), params, None)
            if e != 0:
                raise SystemExit(f"cuLaunchKernelEx: CUresult {e}")

        def flood_only() -> None:
            fn(grid, block, (flood, out[grid[0] :], np.int32(f4)))

        def both() -> None:
            flood_only()
            read()

        times = {}
        for name, body in (("flood", flood_only), ("flood+read", both)):
            g = CudaGraph(body, stream)
            t = cuda_event_timing(lambda i, g=g: g.replay(), warmup=20, repeats=args.repeats, stream=stream)
            times[name] = 1000.0 * t.median_ms
        out[:] = 0
        with stream:
            read()
        stream.synchronize()
        ok = float(out.get()[: grid[0]].astype(np.float64).sum()) == float(w_host.astype(np.float64).sum())
        row = {"variant": variant, "set_aside": 0 if variant == "off" else aside, "read_us": times["flood+read"] -
               times["flood"], **{f"{k}_us": v for k, v in times.items()}, "correct": ok}  # fmt: skip
        rows.append(row)
        head = f"{variant:7s} set-aside {row['set_aside'] / 2**20:5.1f} MiB: flood {times['flood']:.2f} us, "
        print(head + f"flood+read {times['flood+read']:.2f} us, read {row['read_us']:.2f} us, correct={ok}", flush=True)
    print(f"W {nbytes / 1e6:.2f} MB, flood {16 * f4 / 1e6:.0f} MB, persistingL2CacheMaxSize {most / 2**20:.1f} MiB, "
          f"L2 {int(props['l2CacheSize']) / 2**20:.0f} MiB")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
