"""Session 40: the FFMA issue rate of a register-tiled outer product on this GPU, by tile shape and warps per scheduler.
Any CUDA GPU; results/NOTES.md "Session 40" cites its output.

    python3 scripts/ffma_rate_probe.py [--json out.json]

exdwpw6's expansion runs a lane tile of 4 pixels x 4 channels (16 accumulators, an input float4 and a weight float4 per
k step) on 1 - 3 warps per scheduler; scripts/ex_phase_probe.py found its FFMAs issued at ~0.5 per cycle per
scheduler with or without its shared-memory loads. Here each lane runs K steps of a TP x TC outer product from
registers only (acc[i][c] = fma(x[i], w[c], acc[i][c]); x[0] and w[0] change by one FADD each per step),
in one block per SM of 4 x W warps (W per scheduler); clock64 around the loop between block barriers, median over
blocks; printed: FFMA per cycle per scheduler (4 schedulers per SM) for each tile and W.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SRC = r"""
template <int TP, int TC>
__device__ void ffma_tile(float* out, long long* cyc, int K) {
    float x[TP], w[TC], acc[TP][TC];
#pragma unroll
    for (int i = 0; i < TP; ++i) x[i] = 1.0f + 1e-3f * (threadIdx.x + i);
#pragma unroll
    for (int c = 0; c < TC; ++c) w[c] = 1.0f - 1e-3f * (threadIdx.x + c);
#pragma unroll
    for (int i = 0; i < TP; ++i)
#pragma unroll
        for (int c = 0; c < TC; ++c) acc[i][c] = 0.0f;
    __syncthreads();
    const long long t0 = clock64();
#pragma unroll 2
    for (int k = 0; k < K; ++k) {
#pragma unroll
        for (int i = 0; i < TP; ++i)
#pragma unroll
            for (int c = 0; c < TC; ++c) acc[i][c] = fmaf(x[i], w[c], acc[i][c]);
        x[0] += 1e-7f;  // (one input of each kind moves; constant indices keep the arrays in registers)
        w[0] -= 1e-7f;
    }
    __syncthreads();
    const long long t1 = clock64();
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < TP; ++i)
#pragma unroll
        for (int c = 0; c < TC; ++c) s += acc[i][c];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
    if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
}
#define TILE(TP, TC) \
    extern "C" __global__ void __launch_bounds__(512) t##TP##x##TC(float* out, long long* cyc, int K) { \
        ffma_tile<TP, TC>(out, cyc, K); \
    }
TILE(4, 4)
TILE(4, 8)
TILE(8, 4)
TILE(8, 8)
TILE(2, 4)
"""
TILES = ((4, 4), (4, 8), (8, 4), (8, 8), (2, 4))
WARPS_PER_SCHEDULER = (1, 2, 3, 4)
FFMA_PER_LANE = 4096  # K = FFMA_PER_LANE / (TP * TC)


def block_cycles(fn, sms: int, warps_per_scheduler: int, k: int, out_dtype) -> float:
    """A rate kernel ``fn(out, cyc, K)`` on one block per SM of 4 x W warps, three launches: the median over blocks of
    its timed loop's cycles in the last (dmma_probe's rate kernels take the same arguments)."""
    import cupy

    threads = 128 * warps_per_scheduler
    out = cupy.zeros(sms * threads, out_dtype)
    cyc = cupy.zeros(sms, cupy.int64)
    for _ in range(3):
        fn((sms,), (threads,), (out, cyc, np.int32(k)))
    cupy.cuda.runtime.deviceSynchronize()
    return float(np.median(cyc.get()))


def main() -> None:
    import cupy

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    mod = cupy.RawModule(code=SRC, options=("-std=c++17",))
    sms = int(cupy.cuda.runtime.getDeviceProperties(0)["multiProcessorCount"])
    rows = []
    for tp, tc in TILES:
        fn = mod.get_function(f"t{tp}x{tc}")
        k = FFMA_PER_LANE // (tp * tc)
        line = []
        for w in WARPS_PER_SCHEDULER:
            c = block_cycles(fn, sms, w, k, cupy.float32)
            rate = w * tp * tc * k / c  # warp-FFMA per cycle per scheduler
            rows.append({"tile": f"{tp}x{tc}", "warps_per_scheduler": w, "cycles": c, "ffma_per_cycle": rate})
            line.append(f"W{w} {rate:.2f}")
        print(f"tile {tp}x{tc} ({k} steps, {tp * tc * k} FFMA per lane): warp-FFMA per cycle per scheduler "
              + ", ".join(line), flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
