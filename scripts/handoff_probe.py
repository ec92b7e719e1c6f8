"""What a dependent launch costs at batch 1's shapes, and what a per-tile flag hand-off would save (session 28
probe; results/NOTES.md "Session 28"). Any sm_90+ GPU.

    python3 scripts/handoff_probe.py --json out.json

The batch-1 plan is a chain of launches shaped like this one: G = T x CPT blocks of 512 threads, one block per SM
(the dynamic shared memory sees to it, as the exdwpw6 builds' registers do), T row tiles of CPT blocks each. Every
block first requests its "weights" (PF bytes of a constant buffer) into shared memory, then needs the previous
launch's output tiles t-1, t, t+1 (a 3x3 depthwise conv's halo), runs a dependent FMA chain of ITER steps per
thread (the kernel's own work), and writes its slice of output tile t. Chains of L launches, each launch its own
output buffer, captured into a CUDA graph after a one-thread node that advances the replay count; device time per
launch = CUDA-event median of the graph / L. Hand-off variants:

    plain       plain launches (no programmatic dependent launch)
    wait_end    PDL: weights, griddepcontrol.wait, work, stores, then griddepcontrol.launch_dependents (the plan's
                scheme today: exdwpw6 triggers after its cluster reduce)
    flag_end    PDL without griddepcontrol.wait: after its stores each block adds 1 to its tile's counter
                (red.release.gpu); a block of the next launch spins (ld.acquire.gpu) until the counters of the tiles it
                reads reach CPT x the replay count. Trigger at the end, as wait_end.
    flag_start  flag_end triggered at the start: the next launch's blocks take free SMs as early as they can

Each variant's chain output is checked bit for bit against the host (integer sums): a hand-off that lets a block
read before its producers' stores are visible fails the check.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SRC = r"""
// MODE 0 plain, 1 wait_end, 2 flag_end, 3 flag_start. x: T tiles x E uint32 of the previous launch; y: this launch's.
template <int MODE>
__device__ __forceinline__ void tile_step(const unsigned* x, unsigned* y, const float* __restrict__ wts, int pf4,
                                          const unsigned* cnt_in, unsigned* cnt_out, const unsigned* epoch, int T,
                                          int CPT, int E, int iters, float a, float b) {
    extern __shared__ float4 ws[];
    const int tid = threadIdx.x, t = blockIdx.x / CPT, c = blockIdx.x % CPT;
    if (MODE == 3) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    // 1. the weights: nothing a previous launch writes
    for (int i = tid; i < pf4; i += blockDim.x) {
        const unsigned s = (unsigned)__cvta_generic_to_shared(ws + i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(wts + 4 * i) : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    // 2. the hand-off
    if (MODE == 1) asm volatile("griddepcontrol.wait;\n" ::: "memory");
    if ((MODE == 2 || MODE == 3) && cnt_in != nullptr) {
        if (tid < 3) {
            const int tt = min(T - 1, max(0, t - 1 + tid));
            const unsigned want = (unsigned)CPT * __ldcg(epoch);
            unsigned v;
            do {
                asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(cnt_in + tt) : "memory");
            } while ((int)(v - want) < 0);
        }
        __syncthreads();
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    __syncthreads();
    // 3. the work: the inputs, a dependent FMA chain, the outputs (exact integer sums; the chain's value and the
    // weights enter through comparisons the compiler cannot decide)
    const int per = E / CPT;
    const int tl = max(0, t - 1), tr = min(T - 1, t + 1);
    const float wv = ws[tid % (pf4 > 0 ? pf4 : 1)].x;
    for (int i = tid; i < per; i += blockDim.x) {
        const int e = c * per + i;
        const unsigned s =
            __ldcg(x + (size_t)tl * E + e) + __ldcg(x + (size_t)t * E + e) + __ldcg(x + (size_t)tr * E + e);
        float f = __uint_as_float(s & 0x3f7fffffu);
        for (int k = 0; k < iters; ++k) f = fmaf(f, a, b);
        y[(size_t)t * E + e] = s + 1u + (f == 1234.5f ? 1u : 0u) + (pf4 > 0 && wv == 1234.5f ? 1u : 0u);
    }
    // 4. the tile's counter, then the trigger
    if (MODE == 2 || MODE == 3) {
        __syncthreads();
        if (tid == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(cnt_out + t) : "memory");
    }
    if (MODE == 1 || MODE == 2) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

#define STEP(NAME, MODE)                                                                                           \
    extern "C" __global__ void __launch_bounds__(512, 1)                                                           \
    NAME(const unsigned* x, unsigned* y, const float* wts, int pf4, const unsigned* cnt_in, unsigned* cnt_out,      \
         const unsigned* epoch, int T, int CPT, int E, int iters, float a, float b) {                              \
        tile_step<MODE>(x, y, wts, pf4, cnt_in, cnt_out, epoch, T, CPT, E, iters, a, b);                           \
    }
STEP(step_plain, 0)
STEP(step_wait_end, 1)
STEP(step_flag_end, 2)
STEP(step_flag_start, 3)

extern "C" __global__ void epoch_next(unsigned* epoch) { *epoch += 1u; }
"""

VARIANTS = ("plain", "wait_end", "flag_end", "flag_start")


def reference(x0: np.ndarray, chain: int) -> np.ndarray:
    x = x0.copy()
    T = x.shape[0]
    for _ in range(chain):
        left = x[np.maximum(np.arange(T) - 1, 0)]
        right = x[np.minimum(np.arange(T) + 1, T - 1)]
        x = left + x + right + np.uint32(1)
    return x


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chain", type=int, default=32, help="launches per graph (L)")
    ap.add_argument("--shapes", default="7x16,3x40,14x8", help="T x CPT, comma-separated (batch 1: 7 tiles x 16)")
    ap.add_argument("--iters", default="0,400,1600", help="FMA chain lengths per thread (the kernel's own work)")
    ap.add_argument("--pf", type=int, default=24 * 1024, help="weight bytes each block stages (PF)")
    ap.add_argument("--smem", type=int, default=120 * 1024, help="dynamic shared memory per block (1 block per SM)")
    ap.add_argument("--elems", type=int, default=8192, help="uint32 per tile (E)")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.pf > args.smem:
        raise SystemExit(f"--pf {args.pf} exceeds --smem {args.smem}")
    import cupy  # here, so that the host tests can import this file without CuPy

    from impls.custom import PROGRAMMATIC_STREAM_SERIALIZATION, LaunchAttr, LaunchConfig
    from mbv2.timing import cuda_event_timing

    libcuda = ctypes.CDLL("libcuda.so.1")
    mod = cupy.RawModule(code=SRC, options=("-std=c++17",))
    fns = {v: mod.get_function(f"step_{v}") for v in VARIANTS}
    for f in fns.values():
        f.max_dynamic_shared_size_bytes = args.smem
    f_epoch = mod.get_function("epoch_next")
    stream = cupy.cuda.Stream(non_blocking=True)
    props = cupy.cuda.runtime.getDeviceProperties(0)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    wts = cupy.asarray(np.random.default_rng(0).random(args.smem // 4, dtype=np.float32))
    epoch = cupy.zeros(1, cupy.uint32)
    rows = []
    print(f"handoff probe on {gpu} ({props['multiProcessorCount']} SMs): chain {args.chain}, PF {args.pf} B, smem "
          f"{args.smem} B, E {args.elems}", flush=True)  # fmt: skip
    for shape in args.shapes.split(","):
        T, CPT = (int(v) for v in shape.lower().split("x"))
        if args.elems % CPT:
            raise SystemExit(f"--elems {args.elems} is not a multiple of CPT {CPT}")
        x0 = np.random.default_rng(T * 100 + CPT).integers(0, 1 << 20, (T, args.elems), dtype=np.uint32)
        bufs = [cupy.asarray(x0)] + [cupy.zeros((T, args.elems), cupy.uint32) for _ in range(args.chain)]
        cnts = [cupy.zeros(T, cupy.uint32) for _ in range(args.chain)]
        ref = reference(x0, args.chain)
        for iters in [int(v) for v in args.iters.split(",")]:
            for var in VARIANTS:
                fn = fns[var]
                keep = []

                def launch(k: int, var=var, fn=fn, T=T, CPT=CPT, bufs=bufs, cnts=cnts, iters=iters, keep=keep) -> None:
                    pdl = var != "plain" and k > 0  # the first launch follows the plain epoch node
                    attr = LaunchAttr(id=PROGRAMMATIC_STREAM_SERIALIZATION)
                    attr.value.i = 1
                    cfg = LaunchConfig(T * CPT, 1, 1, 512, 1, 1, args.smem, stream.ptr, ctypes.pointer(attr), int(pdl))
                    vals = [
                        ctypes.c_uint64(bufs[k].data.ptr), ctypes.c_uint64(bufs[k + 1].data.ptr),
                        ctypes.c_uint64(wts.data.ptr), ctypes.c_int(args.pf // 16),
                        ctypes.c_uint64(cnts[k - 1].data.ptr if k > 0 else 0), ctypes.c_uint64(cnts[k].data.ptr),
                        ctypes.c_uint64(epoch.data.ptr), ctypes.c_int(T), ctypes.c_int(CPT),
                        ctypes.c_int(args.elems), ctypes.c_int(iters), ctypes.c_float(0.999), ctypes.c_float(1e-3),
                    ]  # fmt: skip
                    keep.append((attr, cfg, vals))
                    params = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(v) for v in vals])
                    err = libcuda.cuLaunchKernelEx(ctypes.byref(cfg), ctypes.c_void_p(fn.kernel.ptr), params, None)
                    if err != 0:
                        raise RuntimeError(f"cuLaunchKernelEx ({var}, launch {k}): CUresult {err}")

                with stream:
                    # the flag variants count CPT per tile per replay against the replay count: both start at 0
                    epoch.fill(0)
                    for c in cnts:
                        c.fill(0)
                    for b in bufs[1:]:
                        b.fill(0)
                    stream.begin_capture()
                    f_epoch((1,), (1,), (epoch,))
                    for k in range(args.chain):
                        launch(k)
                    g = stream.end_capture()
                    t = cuda_event_timing(
                        lambda i, g=g: g.launch(stream), warmup=5, repeats=args.repeats, stream=stream
                    )
                    for b in bufs[1:]:
                        b.fill(0)
                    g.launch(stream)
                stream.synchronize()
                ok = bool(np.array_equal(cupy.asnumpy(bufs[-1]), ref))
                per = t.median_ms * 1e3 / args.chain
                row = {"gpu": gpu, "tiles": T, "blocks_per_tile": CPT, "grid": T * CPT, "iters": iters, "variant": var,
                       "us_per_launch": per, "graph_us": t.median_ms * 1e3, "chain": args.chain, "pf_bytes": args.pf,
                       "smem": args.smem, "elems": args.elems, "correct": ok}  # fmt: skip
                rows.append(row)
                print(f"{T:3d}x{CPT:<3d} grid {T * CPT:4d} iters {iters:5d} {var:11s} {per:7.3f} us per launch "
                      f"correct={ok}", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if not all(r["correct"] for r in rows):
        raise SystemExit("handoff probe: a chain's output differs from the host's (a hand-off read too early)")


if __name__ == "__main__":
    main()
