"""How much of a dependent chain of small kernels in a CUDA graph is launch gap, and how much programmatic
dependent launch (PDL, sm_90: `griddepcontrol` + the launch attribute PROGRAMMATIC_STREAM_SERIALIZATION) takes
off it. A probe for the batch-1 question of issue 6 (results/NOTES.md, "batch 1: launch gaps and PDL").

    python3 scripts/pdl_probe.py --json out.json

Chains of N launches of one small kernel (grid x 256 threads; each thread writes one float computed from its
neighbour's value of the previous launch: ping-pong between two buffers, a dependent chain through memory),
captured into a CUDA graph and replayed; device time per launch = CUDA-event median of the replays / N.
Variants: plain launches; PDL launches (cuLaunchKernelEx through the driver API with the attribute) of a kernel
that calls `griddepcontrol.launch_dependents` then `griddepcontrol.wait` first; the same kernel without the
attribute (the instructions alone). The chain's result is checked against the host (PDL must not let a kernel
read before its predecessor's writes are visible).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path

import cupy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls.custom import PROGRAMMATIC_STREAM_SERIALIZATION, LaunchAttr, LaunchConfig  # noqa: E402
from mbv2.timing import cuda_event_timing  # noqa: E402

SRC = r"""
extern "C" __global__ void chain_plain(const float* src, float* dst, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[(i + 1) % n] * 0.5f + 1.0f;
}
extern "C" __global__ void chain_pdl(const float* src, float* dst, int n) {
    asm volatile("griddepcontrol.launch_dependents;");
    asm volatile("griddepcontrol.wait;" ::: "memory");
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[(i + 1) % n] * 0.5f + 1.0f;
}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chain", type=int, default=50)
    ap.add_argument("--grids", default="1,8,32,132")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    libcuda = ctypes.CDLL("libcuda.so.1")
    mod = cupy.RawModule(code=SRC)
    f_plain, f_pdl = mod.get_function("chain_plain"), mod.get_function("chain_pdl")
    stream = cupy.cuda.Stream(non_blocking=True)
    rows = []
    for grid in [int(g) for g in args.grids.split(",")]:
        n = grid * 256
        bufs = [cupy.zeros(n, cupy.float32), cupy.zeros(n, cupy.float32)]
        nn = ctypes.c_int(n)

        def launch_ex(fn, pdl: bool, k: int, bufs=bufs, grid=grid, nn=nn) -> None:
            attr = LaunchAttr(id=PROGRAMMATIC_STREAM_SERIALIZATION)
            attr.value.i = 1
            cfg = LaunchConfig(grid, 1, 1, 256, 1, 1, 0, stream.ptr, ctypes.pointer(attr), 1 if pdl else 0)
            src, dst = ctypes.c_uint64(bufs[k % 2].data.ptr), ctypes.c_uint64(bufs[(k + 1) % 2].data.ptr)
            params = (ctypes.c_void_p * 3)(ctypes.addressof(src), ctypes.addressof(dst), ctypes.addressof(nn))
            err = libcuda.cuLaunchKernelEx(ctypes.byref(cfg), ctypes.c_void_p(fn.kernel.ptr), params, None)
            if err != 0:
                raise RuntimeError(f"cuLaunchKernelEx: CUresult {err}")

        variants = {
            "plain": lambda k, g=grid, b=bufs, n=n: f_plain((g,), (256,), (b[k % 2], b[(k + 1) % 2], np.int32(n))),
            "pdl_kernel_no_attr": lambda k: launch_ex(f_pdl, False, k),
            "pdl": lambda k: launch_ex(f_pdl, True, k),
        }
        for name, one in variants.items():
            with stream:
                bufs[0].fill(0)
                bufs[1].fill(0)
                stream.begin_capture()
                for k in range(args.chain):
                    one(k)
                g = stream.end_capture()
                g.launch(stream)
            stream.synchronize()
            got = cupy.asnumpy(bufs[args.chain % 2])
            ref = np.zeros(n, np.float32)
            for _ in range(args.chain):
                ref = ref[(np.arange(n) + 1) % n] * np.float32(0.5) + np.float32(1.0)
            ok = bool(np.allclose(got, ref, rtol=1e-6))
            t = cuda_event_timing(lambda i, g=g: g.launch(stream), warmup=5, repeats=30, stream=stream)
            per = t.median_ms * 1e3 / args.chain
            rows.append({"grid": grid, "variant": name, "us_per_launch": per, "chain": args.chain, "correct": ok})
            print(f"grid {grid:4d} {name:20s} {per:7.3f} us per launch  correct={ok}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
