// linear.cu -- the classifier y = x @ W^T + b, x (N, IN), W (OUT, IN) row-major, y (N, OUT).
//
//   v1  as a GEMM: gemm.cu with A = x, B = W^T (stored (IN, OUT) at upload), bias per column.
//   v2  GEMV for small batches (N <= 8): one warp per output feature reads its W row once (float4
//       when IN % 4 == 0) and keeps N partial sums, warp-shuffle reduction. At batch 1 the GEMM
//       tiles leave most of the GPU idle; here 1000 warps stream W (5 MB) at memory speed.
//       The host uses v1 above batch 8.
//   v3  v2 with every W float4 of a lane requested before the first FMA (GEMV3_U float4 per lane held in registers,
//       a loop over passes beyond 32 * 4 * GEMV3_U inputs): v2's loop has one L2 round trip per 128 inputs in its
//       dependency chain (10 at IN = 1280); here one per pass (IN % 4 == 0; the host uses v2 otherwise).
//   v5  v3 launched with programmatic dependent launch (sm_90+, the host's cuLaunchKernelEx; at batch 1): the kernel
//       may start while the previous one (pwpool_c8, which triggers its dependents at entry) still runs; each lane
//       requests its first pass of W rows, THEN waits (griddepcontrol.wait) for the previous grid, then reads x.
//       linear_gemv_v5 = v3's code with that wait. H200: batch 1 -0.7 us e2e (predicted -2 to -3).
//   v6  v5 with x staged once per block (session 40): after griddepcontrol.wait the block's threads copy the N x IN
//       inputs (16-byte L2 loads, .cg) into shared memory, one block barrier, then each warp reads x there. In v5
//       every one of the OUT warps reads the whole of x from L2 itself (1000 x 5 KB = 5 MB of requests for the same
//       40 lines at IN 1280, after the wait); here 125 blocks x 5 KB. The same products in the same order as v3 /
//       v5: bit-identical logits. Dynamic shared memory N * IN * 4 bytes (the host uses it at batch <=
//       LINEAR_PDL_MAX_BATCH, where it fits 48 KB). MEASURED (H100, fuse v47, 6 instances each): batch 1 0.1104
//       ms against v5's 0.1102, the GEMV's marginal 3.15 against 3.17 us: those requests were not on the critical
//       path. Selectable, not the default.
//   Measured on H100 (1280 -> 1000): batch 1 v1 12.0 us, v2 6.7 us; batch 64 (GEMM, split-K) 19.4 us.
//   v3: results/NOTES.md "Session 11"; v5: "Session 14"; v6: "Session 40".

#include <cuda_runtime.h>

constexpr int GEMV_MAX_BATCH = 8;

// the warp's N partial sums: shuffle-reduced over the lanes (fixed tree), + bias, stored by lane 0
__device__ __forceinline__ void gemv_store(const float (&acc)[GEMV_MAX_BATCH], const float* __restrict__ bias,
                                           float* __restrict__ y, int N, int OUT, int warp, int lane) {
#pragma unroll
    for (int b = 0; b < GEMV_MAX_BATCH; ++b) {
        float s = acc[b];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && b < N) y[(long long)b * OUT + warp] = s + bias[warp];
    }
}

extern "C" __global__ void __launch_bounds__(256)
linear_gemv(const float* __restrict__ x, const float* __restrict__ W, const float* __restrict__ bias,
            float* __restrict__ y, int N, int IN, int OUT) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= OUT) return;
    const float* wr = W + (long long)warp * IN;
    float acc[GEMV_MAX_BATCH];
#pragma unroll
    for (int b = 0; b < GEMV_MAX_BATCH; ++b) acc[b] = 0.0f;
    if ((IN & 3) == 0) {
        const float4* w4 = reinterpret_cast<const float4*>(wr);
        for (int k4 = lane; k4 < IN / 4; k4 += 32) {
            const float4 wv = __ldg(w4 + k4);
#pragma unroll
            for (int b = 0; b < GEMV_MAX_BATCH; ++b) {
                if (b < N) {
                    const float4 xv = __ldg(reinterpret_cast<const float4*>(x + (long long)b * IN) + k4);
                    acc[b] = fmaf(wv.x, xv.x, fmaf(wv.y, xv.y, fmaf(wv.z, xv.z, fmaf(wv.w, xv.w, acc[b]))));
                }
            }
        }
    } else {
        for (int k = lane; k < IN; k += 32) {
            const float wv = __ldg(wr + k);
#pragma unroll
            for (int b = 0; b < GEMV_MAX_BATCH; ++b)
                if (b < N) acc[b] = fmaf(wv, __ldg(x + (long long)b * IN + k), acc[b]);
        }
    }
    gemv_store(acc, bias, y, N, OUT, warp, lane);
}

constexpr int GEMV3_U = 12;

// PDL (v5): nothing the previous kernel writes (x) is read, and nothing is written, before griddepcontrol.wait; the
// wait is a no-op in a plain launch and after the first pass. sm_90+ only (the file is also built for older GPUs).
// XS (v6, with PDL): x staged in shared memory xs4 ([N][IN / 4] float4) by the whole block right after the wait; the
// warps past OUT stay until that barrier (no loads of W), then leave.
template <bool PDL, bool XS = false>
__device__ __forceinline__ void gemv_v3_body(const float* __restrict__ x, const float* __restrict__ W,
                                             const float* __restrict__ bias, float* __restrict__ y, int N, int IN,
                                             int OUT, float4* xs4 = nullptr) {
    static_assert(PDL || !XS, "v6: the staged x comes with the PDL wait");
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    const bool on = warp < OUT;  // (XS: block-uniform control flow up to the staging barrier)
    if (!XS && !on) return;
    const int n4 = IN / 4;
    const float4* w4 = reinterpret_cast<const float4*>(W + (long long)(on ? warp : 0) * IN);
    float acc[GEMV_MAX_BATCH];
#pragma unroll
    for (int b = 0; b < GEMV_MAX_BATCH; ++b) acc[b] = 0.0f;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int base = 0; base < n4; base += 32 * GEMV3_U) {
        float4 wv[GEMV3_U];
#pragma unroll
        for (int u = 0; u < GEMV3_U; ++u) {
            const int k4 = base + u * 32 + lane;
            wv[u] = (XS ? on && k4 < n4 : k4 < n4) ? __ldg(w4 + k4) : zero;
        }
        if constexpr (PDL) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
            asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
        }
        if constexpr (XS) {
            if (base == 0) {  // (base is block-uniform: every thread reaches the barrier)
                const float4* xg = reinterpret_cast<const float4*>(x);
#pragma unroll 4
                for (int i = threadIdx.x; i < N * n4; i += blockDim.x) xs4[i] = __ldcg(xg + i);
                __syncthreads();
            }
            if (!on) return;
        }
#pragma unroll
        for (int b = 0; b < GEMV_MAX_BATCH; ++b) {
            if (b < N) {
                const float4* x4 = reinterpret_cast<const float4*>(x + (long long)b * IN);
                float4 xv[GEMV3_U];
#pragma unroll
                for (int u = 0; u < GEMV3_U; ++u) {
                    const int k4 = base + u * 32 + lane;
                    // PDL: x was written while this grid ran (before the wait): an L2 load (.cg), not the
                    // read-only path (.nc assumes the data never changes during the kernel); XS: from shared memory
                    if constexpr (XS) xv[u] = k4 < n4 ? xs4[b * n4 + k4] : zero;
                    else xv[u] = k4 < n4 ? (PDL ? __ldcg(x4 + k4) : __ldg(x4 + k4)) : zero;
                }
                float a = acc[b];
#pragma unroll
                for (int u = 0; u < GEMV3_U; ++u)
                    a = fmaf(wv[u].x, xv[u].x, fmaf(wv[u].y, xv[u].y, fmaf(wv[u].z, xv[u].z, fmaf(wv[u].w, xv[u].w, a))));
                acc[b] = a;
            }
        }
    }
    gemv_store(acc, bias, y, N, OUT, warp, lane);
}

extern "C" __global__ void __launch_bounds__(256)
linear_gemv_v3(const float* __restrict__ x, const float* __restrict__ W, const float* __restrict__ bias,
               float* __restrict__ y, int N, int IN, int OUT) {
    gemv_v3_body<false>(x, W, bias, y, N, IN, OUT);
}

extern "C" __global__ void __launch_bounds__(256)
linear_gemv_v5(const float* __restrict__ x, const float* __restrict__ W, const float* __restrict__ bias,
               float* __restrict__ y, int N, int IN, int OUT) {
    gemv_v3_body<true>(x, W, bias, y, N, IN, OUT);
}

extern "C" __global__ void __launch_bounds__(256)
linear_gemv_v6(const float* __restrict__ x, const float* __restrict__ W, const float* __restrict__ bias,
               float* __restrict__ y, int N, int IN, int OUT) {
    extern __shared__ __align__(16) float4 gemv_xs4[];  // [N][IN / 4]
    gemv_v3_body<true, true>(x, W, bias, y, N, IN, OUT, gemv_xs4);
}
