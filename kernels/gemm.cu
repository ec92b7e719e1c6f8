// gemm.cu -- SGEMM with a fused epilogue: C = epi(A @ B), all row-major.
//
//   A: (M, K), B: (K, N), C and R: (M, N); batch = gridDim.y with element strides sA, sB, sC.
//   Output tiles are numbered along blockIdx.x with the N tile fastest (blocks running together
//   share A rows in L2; a 1-D tile index has no 65535 limit at batch 256).
//   epilogue, in this order: + bias (bias_mode 1: bias[n] per column, the NHWC pointwise conv;
//   bias_mode 2: bias[m] per row, the NCHW pointwise conv), ReLU6 when act, + R[m, n] when has_res.
//
// In the NHWC backend a pointwise conv is ONE GEMM: A = activations (N*H*W, Cin), B = W^T (Cin, Cout).
// The NCHW orientation (A = W (Cout, Cin), B = x_n (Cin, H*W), batched over n, bias per row) runs on
// the same kernels; the layout decision in results/NOTES.md compares the two.
//
// Versions (host: impls/custom.py, family "gemm"):
//   Measured on H100 (results/NOTES.md), all pointwise convs of the network, batch 1 / 64:
//   v1 0.676 / 7.39 ms, v2 0.353 / 6.30, v3 0.683 / 2.28, v4 0.436 / 1.90, v5 0.238 / 1.83, v6 0.242 / 2.09,
//   v7 (session 2 run, batch 64 / 256) 1.655 / 5.618 ms vs v5 1.746 / 5.866.
//
//   v1  naive: one thread per output, A and B straight from global memory (L1/L2 do the reuse).
//   v2  shared-memory tiles 16x16x16, one output per thread: every global element is loaded once per
//       tile instead of once per output; expected several x over v1 at large M.
//   v3  register-blocked: a block computes BM x BN, each thread TM x TN outputs from registers,
//       A tile stored transposed in shared memory, float4 global loads/stores when K and N are
//       multiples of 4 (VEC), tile shape chosen per layer on the host (big tiles for big M, small for
//       the 7x7 / batch-1 layers). Expected: bound by FMA issue, ~10-20 TFLOP/s fp32 on H100.
//   v4  v3 + double-buffered shared memory with the next tile prefetched into registers while the
//       current one is multiplied (one __syncthreads per K step instead of two).
//   v5  v4 + split-K when the output tiles cannot fill the GPU (batch 1; the classifier at batch 64):
//       gridDim.z splits of K write partial sums to a workspace, gemm_splitk_reduce sums them in a
//       fixed order (deterministic) and applies the epilogue. Expected: the K=960 projections at
//       batch 1 from ~40 us (10 blocks x 120 k-steps) to a few us.
//   v6  v5 + a streaming kernel for the small-K expansions (K = 16, 24, 32; NHWC, bias per column):
//       each thread keeps its K x CW slice of B in registers and streams rows of A (float4) through,
//       no shared memory, no sync. These layers are memory-bound (writing N floats per K read); v4's
//       tiles spend most of their time in prologue/epilogue for 2-4 k-steps.
//       MEASURED (H100, batch 64): LOST except for N = 16: 16->96 198 -> 268 us, 24->144 101 -> 157 us,
//       32->192 31 -> 61 us, 32->16 94 -> 80 us; e2e 2.72 -> 2.94 ms. The G threads of a row all load
//       the same A row, so a warp has only ~2 distinct rows (128 B) of loads in flight: latency-bound,
//       not bandwidth-bound. Kept as the lesson; the fix is distinct rows per lane + shuffles.
//   v8  v5 + a SIMT SGEMM for the 14x14 / 7x7 pointwise convs at batch 64 / 256 as autotune candidates
//       (section "v8" at the end): BK = 16, 3-stage cp.async ring (A copied element-wise into its
//       transposed place, conflict-free), 8x8 / 8x4 / 4x8 thread tiles of float4 slabs with warp lanes laid
//       out so every fragment load is one broadcast LDS.128 wavefront, x96 / x160 tiles for N = 96 / 160 /
//       320 / 576 / 960, float4 epilogue. Expected: those GEMMs from 24-36 to ~40-45 TFLOP/s fp32.
//       MEASURED (H100, autotuned v5 -> v8): the 14x14 / 7x7 pointwise convs 0.971 -> 0.878 ms at batch 64,
//       3.000 -> 2.713 ms at batch 256 (28-39 TFLOP/s; best 320->1280 38.7); e2e graph 2.016 -> 1.928 ms (bs64),
//       7.106 -> 6.821 ms (bs256), batch 1 the same plan. Issue-bound (ncu: 0.78 issues / scheduler-cycle at
//       2 blocks/SM for 8x8; ~15% of the main loop is LDS + the A copy's address work).
//   v9  v8 + 96- and 32-row tiles (even block counts on the 14x14 maps at batch 64; session 8).
//   v10 v9 + k-sliced builds of the v8 body (GEMM_V8K_KERNEL, `_k<KS>`): KS warp groups split each 16-wide
//       k-step of one tile and sum their partial tiles in shared memory at the end, so 8x8 / 8x12 / 8x20
//       thread tiles (4-5.7 FFMA per shared-memory wavefront; 4x4 / 4x8 are capped by the L1 pipe at 50 / 67%
//       of the FMA pipe) fit the 32-row tiles that fill 132 SMs at batch 64. MEASURED (H200, session 10):
//       576->96 60.0 -> 49.0 us, 384->96 38.5 -> 32.4; e2e batch 64 1.652 -> 1.609 ms (interleaved A/B),
//       batch 256 5.849 -> 5.813, batch 1 / 8 the same. The default since.
//
// Family "fuse" (host: impls/custom.py; v1 = no fusion, every layer its own kernel):
//   v2  depthwise 3x3 (+ bias, ReLU6) fused into the A operand of the following pointwise GEMM
//       (+ bias, + residual): dwpw_s{1,2}_<tile>. A(m, k) = relu6(dw(X)[pixel m, channel k]) is
//       computed while the A tile is staged (9 float4 loads of X per 4 channels, L1/L2 do the halo
//       reuse), so the depthwise output (the 6x expanded tensor) never goes to HBM and one launch
//       per block disappears. Same tiles, double buffer and split-K as gemm v4/v5 (the reduce is
//       gemm_splitk_reduce). Needs C % 4 == 0, Cout % 4 == 0, 16-byte aligned arrays (else the host
//       runs the two kernels). The depthwise work is redone once per column tile (ceil(Cout / BN)).
//       Expected: batch 64 2.72 -> ~2.2 ms e2e. MEASURED (H100): LOST at batch 64/256, a wash at
//       batch 1: all 17 pairs 1.54 -> 2.66 ms at batch 64, 5.04 -> 8.27 ms at batch 256, 0.214 ->
//       0.219 ms at batch 1; e2e graph 2.72 -> 3.86 ms (bs64), 0.279 -> 0.303 ms (bs1). The 9-float4
//       window gather per 4 A elements (36 KB of L1 traffic per 128x8 A tile) with 1-2 blocks per SM
//       is slower than the HBM round trip it saves. Kept (not default); the fix is staging the input
//       patch + halo in shared memory once per block and BN = Cout (results/NOTES.md, issue 6).

#include <cuda_runtime.h>

__device__ __forceinline__ float gemm_epilogue(float v, const float* __restrict__ bias,
                                               const float* __restrict__ R, int m, int n, int N,
                                               int bias_mode, int act, int has_res) {
    if (bias_mode == 1) v += bias[n];
    else if (bias_mode == 2) v += bias[m];
    if (act) v = fminf(fmaxf(v, 0.0f), 6.0f);
    if (has_res) v += R[(long long)m * N + n];
    return v;
}

// ---------------------------------------------------------------------------------------------
// v1: naive
extern "C" __global__ void gemm_v1(const float* __restrict__ A, const float* __restrict__ B,
                                   float* __restrict__ C, const float* __restrict__ bias,
                                   const float* __restrict__ R, int M, int N, int K,
                                   long long sA, long long sB, long long sC,
                                   int bias_mode, int act, int has_res) {
    const int ntn = (N + blockDim.x - 1) / blockDim.x;
    const int n = (blockIdx.x % ntn) * blockDim.x + threadIdx.x;
    const int m = (blockIdx.x / ntn) * blockDim.y + threadIdx.y;
    A += blockIdx.y * sA;
    B += blockIdx.y * sB;
    C += blockIdx.y * sC;
    if (has_res) R += blockIdx.y * sC;
    if (m >= M || n >= N) return;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) acc = fmaf(A[(long long)m * K + k], B[(long long)k * N + n], acc);
    C[(long long)m * N + n] = gemm_epilogue(acc, bias, R, m, n, N, bias_mode, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// v2: shared-memory tiles, one output per thread
template <int TILE>
__device__ __forceinline__ void gemm_v2_body(const float* __restrict__ A, const float* __restrict__ B,
                                             float* __restrict__ C, const float* __restrict__ bias,
                                             const float* __restrict__ R, int M, int N, int K,
                                             long long sA, long long sB, long long sC,
                                             int bias_mode, int act, int has_res) {
    __shared__ float As[TILE][TILE + 1];
    __shared__ float Bs[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int ntn = (N + TILE - 1) / TILE;
    const int n = (blockIdx.x % ntn) * TILE + tx;
    const int m = (blockIdx.x / ntn) * TILE + ty;
    A += blockIdx.y * sA;
    B += blockIdx.y * sB;
    C += blockIdx.y * sC;
    if (has_res) R += blockIdx.y * sC;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        const int ka = k0 + tx, kb = k0 + ty;
        As[ty][tx] = (m < M && ka < K) ? A[(long long)m * K + ka] : 0.0f;
        Bs[ty][tx] = (kb < K && n < N) ? B[(long long)kb * N + n] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TILE; ++k) acc = fmaf(As[ty][k], Bs[k][tx], acc);
        __syncthreads();
    }
    if (m < M && n < N) C[(long long)m * N + n] = gemm_epilogue(acc, bias, R, m, n, N, bias_mode, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
gemm_v2(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,
        const float* __restrict__ bias, const float* __restrict__ R, int M, int N, int K,
        long long sA, long long sB, long long sC, int bias_mode, int act, int has_res) {
    gemm_v2_body<16>(A, B, C, bias, R, M, N, K, sA, sB, sC, bias_mode, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// v3 / v4: register-blocked
//
// Thread t owns rows tr*TM .. tr*TM+TM-1 and columns tc*TN .. tc*TN+TN-1 of the block tile, with
// tc = t % (BN/TN): neighbouring threads own neighbouring column groups, so stores coalesce.
// As holds the A tile transposed (As[k][m]) so that a thread's TM values are contiguous; a pad of 4
// keeps float4 alignment and moves the transposed stores of neighbouring k onto different banks.

template <int BM, int BN, int BK, int NT, bool VEC>
__device__ __forceinline__ void gemm_load_tile_regs(const float* __restrict__ A, const float* __restrict__ B,
                                                    int M, int N, int K, int kend, int m0, int n0, int k0,
                                                    float (&ra)[(BM * BK + NT - 1) / NT],
                                                    float (&rb)[(BK * BN + NT - 1) / NT]) {
    // Scalar-granular staging used by the non-VEC path (any K, N): element e = i*NT + tid.
    const int tid = threadIdx.x;
#pragma unroll
    for (int i = 0; i < (BM * BK + NT - 1) / NT; ++i) {
        const int e = i * NT + tid;
        const int r = e / BK, c = e % BK;
        const int gm = m0 + r, gk = k0 + c;
        ra[i] = (e < BM * BK && gm < M && gk < kend) ? A[(long long)gm * K + gk] : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < (BK * BN + NT - 1) / NT; ++i) {
        const int e = i * NT + tid;
        const int r = e / BN, c = e % BN;
        const int gk = k0 + r, gn = n0 + c;
        rb[i] = (e < BK * BN && gk < kend && gn < N) ? B[(long long)gk * N + gn] : 0.0f;
    }
}

template <int BM, int BN, int BK, int NT>
__device__ __forceinline__ void gemm_load_tile_vec(const float* __restrict__ A, const float* __restrict__ B,
                                                   int M, int N, int K, int kend, int m0, int n0, int k0,
                                                   float4 (&ra)[(BM * BK / 4 + NT - 1) / NT],
                                                   float4 (&rb)[(BK * BN / 4 + NT - 1) / NT]) {
    // float4 staging; K % 4 == 0 and N % 4 == 0, so a float4 is either wholly inside or outside.
    const int tid = threadIdx.x;
    const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int i = 0; i < (BM * BK / 4 + NT - 1) / NT; ++i) {
        const int e = i * NT + tid;
        const int r = e / (BK / 4), c4 = e % (BK / 4);
        const int gm = m0 + r, gk = k0 + c4 * 4;
        ra[i] = (e < BM * BK / 4 && gm < M && gk < kend)
                    ? __ldg(reinterpret_cast<const float4*>(A + (long long)gm * K + gk)) : zero;
    }
#pragma unroll
    for (int i = 0; i < (BK * BN / 4 + NT - 1) / NT; ++i) {
        const int e = i * NT + tid;
        const int r = e / (BN / 4), c4 = e % (BN / 4);
        const int gk = k0 + r, gn = n0 + c4 * 4;
        rb[i] = (e < BK * BN / 4 && gk < kend && gn < N)
                    ? __ldg(reinterpret_cast<const float4*>(B + (long long)gk * N + gn)) : zero;
    }
}

// fuse v2: the depthwise 3x3 conv whose ReLU6 output is the GEMM's A operand (NHWC X: (n, H, W, K)).
struct DwArgs {
    const float* __restrict__ X;
    const float* __restrict__ Wd;  // (9, K)
    const float* __restrict__ bd;  // (K)
    int H, W, Ho, Wo, pad, act;
};

template <int BM, int BN, int BK, int TM, int TN, bool VEC, bool DBUF, int DWS = 0>
__device__ __forceinline__ void gemm_reg_body(const float* __restrict__ A, const float* __restrict__ B,
                                              float* __restrict__ C, const float* __restrict__ bias,
                                              const float* __restrict__ R, int M, int N, int K,
                                              long long sA, long long sB, long long sC,
                                              int bias_mode, int act, int has_res, DwArgs dw = DwArgs{}) {
    static_assert(DWS == 0 || (VEC && DBUF), "the fused depthwise prologue exists for the v4 float4 path");
    constexpr int NT = (BM / TM) * (BN / TN);
    constexpr int NBUF = DBUF ? 2 : 1;
    constexpr int PAD = 4;
    __shared__ __align__(16) float As[NBUF][BK][BM + PAD];
    __shared__ __align__(16) float Bs[NBUF][BK][BN + PAD];

    const int tid = threadIdx.x;
    const int tr = tid / (BN / TN), tc = tid % (BN / TN);
    const int ntn = (N + BN - 1) / BN;
    const int m0 = (blockIdx.x / ntn) * BM, n0 = (blockIdx.x % ntn) * BN;
    A += blockIdx.y * sA;
    B += blockIdx.y * sB;
    C += blockIdx.y * sC;
    if (has_res) R += blockIdx.y * sC;
    // split-K (gridDim.z > 1, batch 1): split z sums k in [kbeg, kend) and writes its raw partial
    // sums to the workspace C + z*M*N; gemm_splitk_reduce adds the splits and applies the epilogue.
    int kbeg = 0, kend = K;
    if (gridDim.z > 1) {
        const int chunk = ((K + gridDim.z - 1) / gridDim.z + BK - 1) / BK * BK;
        kbeg = blockIdx.z * chunk;
        kend = min(K, kbeg + chunk);
        C += (long long)blockIdx.z * M * N;
        bias_mode = 0;
        act = 0;
        has_res = 0;
    }

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    constexpr int NA4 = (BM * BK / 4 + NT - 1) / NT, NB4 = (BK * BN / 4 + NT - 1) / NT;
    constexpr int NA1 = (BM * BK + NT - 1) / NT, NB1 = (BK * BN + NT - 1) / NT;
    float4 ra4[VEC ? NA4 : 1], rb4[VEC ? NB4 : 1];
    float ra1[VEC ? 1 : NA1], rb1[VEC ? 1 : NB1];

    // fused depthwise prologue (DWS = stride): each thread's A rows are fixed for the whole K loop,
    // so their (n, ho, wo) -> input-window decode is done once; load() fetches the 3x3 window of 4
    // channels (zeros outside the image), store() applies the weights, bias and ReLU6.
    constexpr int NXR = DWS ? NA4 : 1;
    long long xbase[NXR];
    int hi0[NXR], wi0[NXR];
    bool rowok[NXR];
    float4 xr[DWS ? NA4 : 1][DWS ? 9 : 1];
    if constexpr (DWS != 0) {
#pragma unroll
        for (int i = 0; i < NA4; ++i) {
            const int e = i * NT + tid;
            const int gm = m0 + e / (BK / 4);
            rowok[i] = e < BM * BK / 4 && gm < M;
            const int hw = dw.Ho * dw.Wo;
            const int nimg = rowok[i] ? gm / hw : 0, rem = rowok[i] ? gm % hw : 0;
            const int ho = rem / dw.Wo, wo = rem % dw.Wo;
            hi0[i] = ho * DWS - dw.pad;
            wi0[i] = wo * DWS - dw.pad;
            xbase[i] = (((long long)nimg * dw.H + hi0[i]) * dw.W + wi0[i]) * K;
        }
    }
    auto load = [&](int k0) {
        if constexpr (DWS != 0) {
            const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int i = 0; i < NA4; ++i) {
                const int e = i * NT + tid;
                const int gk = k0 + (e % (BK / 4)) * 4;
                const bool ok = rowok[i] && gk < kend;
#pragma unroll
                for (int dy = 0; dy < 3; ++dy)
#pragma unroll
                    for (int dx = 0; dx < 3; ++dx) {
                        const int hi = hi0[i] + dy, wi = wi0[i] + dx;
                        xr[i][dy * 3 + dx] =
                            (ok && hi >= 0 && hi < dw.H && wi >= 0 && wi < dw.W)
                                ? __ldg(reinterpret_cast<const float4*>(dw.X + xbase[i] + ((long long)dy * dw.W + dx) * K + gk))
                                : zero;
                    }
            }
#pragma unroll
            for (int i = 0; i < NB4; ++i) {
                const int e = i * NT + tid;
                const int r = e / (BN / 4), c4 = e % (BN / 4);
                const int gk = k0 + r, gn = n0 + c4 * 4;
                rb4[i] = (e < BK * BN / 4 && gk < kend && gn < N)
                             ? __ldg(reinterpret_cast<const float4*>(B + (long long)gk * N + gn)) : zero;
            }
        } else if constexpr (VEC) {
            gemm_load_tile_vec<BM, BN, BK, NT>(A, B, M, N, K, kend, m0, n0, k0, ra4, rb4);
        } else {
            gemm_load_tile_regs<BM, BN, BK, NT, VEC>(A, B, M, N, K, kend, m0, n0, k0, ra1, rb1);
        }
    };
    // depthwise weights, bias, ReLU6 on the fetched windows -> ra4 (called just before store)
    auto dw_finish = [&](int k0) {
        if constexpr (DWS != 0) {
#pragma unroll
            for (int i = 0; i < NA4; ++i) {
                const int e = i * NT + tid;
                const int gk = k0 + (e % (BK / 4)) * 4;
                float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                if (rowok[i] && gk < kend) {
                    v = __ldg(reinterpret_cast<const float4*>(dw.bd + gk));
#pragma unroll
                    for (int t = 0; t < 9; ++t) {
                        const float4 w = __ldg(reinterpret_cast<const float4*>(dw.Wd + (long long)t * K + gk));
                        v.x = fmaf(xr[i][t].x, w.x, v.x);
                        v.y = fmaf(xr[i][t].y, w.y, v.y);
                        v.z = fmaf(xr[i][t].z, w.z, v.z);
                        v.w = fmaf(xr[i][t].w, w.w, v.w);
                    }
                    if (dw.act) {
                        v.x = fminf(fmaxf(v.x, 0.0f), 6.0f);
                        v.y = fminf(fmaxf(v.y, 0.0f), 6.0f);
                        v.z = fminf(fmaxf(v.z, 0.0f), 6.0f);
                        v.w = fminf(fmaxf(v.w, 0.0f), 6.0f);
                    }
                }
                ra4[i] = v;
            }
        }
    };
    auto store = [&](int buf) {
        if constexpr (VEC) {
#pragma unroll
            for (int i = 0; i < NA4; ++i) {
                const int e = i * NT + tid;
                if (e < BM * BK / 4) {
                    const int r = e / (BK / 4), c = (e % (BK / 4)) * 4;
                    As[buf][c + 0][r] = ra4[i].x;
                    As[buf][c + 1][r] = ra4[i].y;
                    As[buf][c + 2][r] = ra4[i].z;
                    As[buf][c + 3][r] = ra4[i].w;
                }
            }
#pragma unroll
            for (int i = 0; i < NB4; ++i) {
                const int e = i * NT + tid;
                if (e < BK * BN / 4) {
                    const int r = e / (BN / 4), c = (e % (BN / 4)) * 4;
                    *reinterpret_cast<float4*>(&Bs[buf][r][c]) = rb4[i];
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < NA1; ++i) {
                const int e = i * NT + tid;
                if (e < BM * BK) As[buf][e % BK][e / BK] = ra1[i];
            }
#pragma unroll
            for (int i = 0; i < NB1; ++i) {
                const int e = i * NT + tid;
                if (e < BK * BN) Bs[buf][e / BN][e % BN] = rb1[i];
            }
        }
    };
    auto compute = [&](int buf) {
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            float a[TM], b[TN];
            if constexpr (TM % 4 == 0) {
#pragma unroll
                for (int i = 0; i < TM; i += 4) {
                    const float4 v = *reinterpret_cast<const float4*>(&As[buf][k][tr * TM + i]);
                    a[i] = v.x; a[i + 1] = v.y; a[i + 2] = v.z; a[i + 3] = v.w;
                }
            } else {
#pragma unroll
                for (int i = 0; i < TM; ++i) a[i] = As[buf][k][tr * TM + i];
            }
            if constexpr (TN % 4 == 0) {
#pragma unroll
                for (int j = 0; j < TN; j += 4) {
                    const float4 v = *reinterpret_cast<const float4*>(&Bs[buf][k][tc * TN + j]);
                    b[j] = v.x; b[j + 1] = v.y; b[j + 2] = v.z; b[j + 3] = v.w;
                }
            } else {
#pragma unroll
                for (int j = 0; j < TN; ++j) b[j] = Bs[buf][k][tc * TN + j];
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
    };

    if constexpr (DBUF) {
        load(kbeg);
        dw_finish(kbeg);
        store(0);
        __syncthreads();
        int buf = 0;
        for (int k0 = kbeg; k0 < kend; k0 += BK) {
            const bool more = k0 + BK < kend;
            if (more) load(k0 + BK);  // global loads in flight while this tile is multiplied
            compute(buf);
            if (more) {
                dw_finish(k0 + BK);
                store(buf ^ 1);
            }
            __syncthreads();
            buf ^= 1;
        }
    } else {
        for (int k0 = kbeg; k0 < kend; k0 += BK) {
            load(k0);
            store(0);
            __syncthreads();
            compute(0);
            __syncthreads();
        }
    }

    // epilogue
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int gm = m0 + tr * TM + i;
        if (gm >= M) continue;
        if constexpr (VEC && TN % 4 == 0) {
#pragma unroll
            for (int j = 0; j < TN; j += 4) {
                const int gn = n0 + tc * TN + j;
                if (gn < N) {  // N % 4 == 0: the float4 is wholly inside
                    float4 v;
                    v.x = gemm_epilogue(acc[i][j + 0], bias, R, gm, gn + 0, N, bias_mode, act, has_res);
                    v.y = gemm_epilogue(acc[i][j + 1], bias, R, gm, gn + 1, N, bias_mode, act, has_res);
                    v.z = gemm_epilogue(acc[i][j + 2], bias, R, gm, gn + 2, N, bias_mode, act, has_res);
                    v.w = gemm_epilogue(acc[i][j + 3], bias, R, gm, gn + 3, N, bias_mode, act, has_res);
                    *reinterpret_cast<float4*>(C + (long long)gm * N + gn) = v;
                }
            }
        } else {
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                const int gn = n0 + tc * TN + j;
                if (gn < N) C[(long long)gm * N + gn] = gemm_epilogue(acc[i][j], bias, R, gm, gn, N, bias_mode, act, has_res);
            }
        }
    }
}

// One extern "C" kernel per (version, tile shape, vector path): plain names the host can look up
// in a cubin, and that `nvcc -Xptxas -v` reports one by one (tests/test_kernels_compile.py).
#define GEMM_REG_KERNEL(NAME, BM, BN, BK, TM, TN, VEC, DBUF)                                            \
    extern "C" __global__ void __launch_bounds__((BM / TM) * (BN / TN))                               \
    NAME(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,              \
         const float* __restrict__ bias, const float* __restrict__ R, int M, int N, int K,             \
         long long sA, long long sB, long long sC, int bias_mode, int act, int has_res) {              \
        gemm_reg_body<BM, BN, BK, TM, TN, VEC, DBUF>(A, B, C, bias, R, M, N, K, sA, sB, sC, bias_mode, \
                                                     act, has_res);                                    \
    }

// v3 tile shapes: name suffix = BMxBN_TMxTN, "_vec" = float4 path
GEMM_REG_KERNEL(gemm_v3_128x128_8x8_vec, 128, 128, 8, 8, 8, true, false)
GEMM_REG_KERNEL(gemm_v3_128x64_8x4_vec, 128, 64, 8, 8, 4, true, false)
GEMM_REG_KERNEL(gemm_v3_128x32_4x4_vec, 128, 32, 8, 4, 4, true, false)
GEMM_REG_KERNEL(gemm_v3_64x64_4x4_vec, 64, 64, 8, 4, 4, true, false)
GEMM_REG_KERNEL(gemm_v3_32x32_2x2_vec, 32, 32, 8, 2, 2, true, false)
GEMM_REG_KERNEL(gemm_v3_128x64_8x4, 128, 64, 8, 8, 4, false, false)
GEMM_REG_KERNEL(gemm_v3_64x64_4x4, 64, 64, 8, 4, 4, false, false)
GEMM_REG_KERNEL(gemm_v3_32x32_2x2, 32, 32, 8, 2, 2, false, false)
// v4 = v3 + double buffering
GEMM_REG_KERNEL(gemm_v4_128x128_8x8_vec, 128, 128, 8, 8, 8, true, true)
GEMM_REG_KERNEL(gemm_v4_128x64_8x4_vec, 128, 64, 8, 8, 4, true, true)
GEMM_REG_KERNEL(gemm_v4_128x32_4x4_vec, 128, 32, 8, 4, 4, true, true)
GEMM_REG_KERNEL(gemm_v4_64x64_4x4_vec, 64, 64, 8, 4, 4, true, true)
GEMM_REG_KERNEL(gemm_v4_32x32_2x2_vec, 32, 32, 8, 2, 2, true, true)
GEMM_REG_KERNEL(gemm_v4_128x64_8x4, 128, 64, 8, 8, 4, false, true)
GEMM_REG_KERNEL(gemm_v4_64x64_4x4, 64, 64, 8, 4, 4, false, true)
GEMM_REG_KERNEL(gemm_v4_32x32_2x2, 32, 32, 8, 2, 2, false, true)

// fuse v2: depthwise 3x3 (stride S) + ReLU6 -> pointwise GEMM. X: (n, H, W, K) NHWC, Wd (9, K),
// bd (K); B = W^T (K, N); C, R: (M = n*Ho*Wo, N); bias per column, act / has_res as in the GEMM
// epilogue; split-K through gridDim.z exactly as v5 (partials to C + z*M*N, then gemm_splitk_reduce).
// MINB (min blocks per SM) caps registers: 2 where that costs no spill (<= 128 regs, 2 blocks of 256
// threads per SM), 1 for the 8-row tiles (they would spill at 128).
#define DWPW_KERNEL(NAME, S, BM, BN, TM, TN, MINB)                                                       \
    extern "C" __global__ void __launch_bounds__((BM / TM) * (BN / TN), MINB)                         \
    NAME(const float* __restrict__ X, const float* __restrict__ Wd, const float* __restrict__ bd,       \
         const float* __restrict__ B, float* __restrict__ C, const float* __restrict__ bias,            \
         const float* __restrict__ R, int M, int N, int K, int H, int W, int Ho, int Wo, int pad,       \
         int dwact, int act, int has_res) {                                                            \
        DwArgs dw{X, Wd, bd, H, W, Ho, Wo, pad, dwact};                                                \
        gemm_reg_body<BM, BN, 8, TM, TN, true, true, S>(nullptr, B, C, bias, R, M, N, K, 0, 0, 0, 1,     \
                                                        act, has_res, dw);                             \
    }

DWPW_KERNEL(dwpw_s1_128x128_8x8, 1, 128, 128, 8, 8, 1)
DWPW_KERNEL(dwpw_s1_128x64_8x4, 1, 128, 64, 8, 4, 1)
DWPW_KERNEL(dwpw_s1_128x32_4x4, 1, 128, 32, 4, 4, 2)
DWPW_KERNEL(dwpw_s1_64x64_4x4, 1, 64, 64, 4, 4, 2)
DWPW_KERNEL(dwpw_s1_32x32_2x2, 1, 32, 32, 2, 2, 2)
DWPW_KERNEL(dwpw_s2_128x128_8x8, 2, 128, 128, 8, 8, 1)
DWPW_KERNEL(dwpw_s2_128x64_8x4, 2, 128, 64, 8, 4, 1)
DWPW_KERNEL(dwpw_s2_128x32_4x4, 2, 128, 32, 4, 4, 2)
DWPW_KERNEL(dwpw_s2_64x64_4x4, 2, 64, 64, 4, 4, 2)
DWPW_KERNEL(dwpw_s2_32x32_2x2, 2, 32, 32, 2, 2, 2)

// v7 / v8: this block's GEMM of the batch (blockIdx.y) and, under split-K (gridDim.z > 1), its K range
// [kbeg, kend) in whole BK steps (possibly empty); a split writes raw partial sums to C + z*M*N (no epilogue:
// gemm_splitk_reduce finishes)
template <int BK>
__device__ __forceinline__ void gemm_batch_split(const float* __restrict__& A, const float* __restrict__& B,
                                                 float* __restrict__& C, const float* __restrict__& R, int M, int N,
                                                 int K, long long sA, long long sB, long long sC, int& bias_mode,
                                                 int& act, int& has_res, int& kbeg, int& kend) {
    A += blockIdx.y * sA;
    B += blockIdx.y * sB;
    C += blockIdx.y * sC;
    if (has_res) R += blockIdx.y * sC;
    kbeg = 0, kend = K;
    if (gridDim.z > 1) {
        const int chunk = ((K + gridDim.z - 1) / gridDim.z + BK - 1) / BK * BK;
        kbeg = min(K, (int)blockIdx.z * chunk);
        kend = min(K, kbeg + chunk);
        C += (long long)blockIdx.z * M * N;
        bias_mode = 0;
        act = 0;
        has_res = 0;
    }
}

// v5: sum of the split-K partials (fixed order) + the epilogue. ws: (S, M, N); C, R: (M, N).
extern "C" __global__ void gemm_splitk_reduce(const float* __restrict__ ws, float* __restrict__ C,
                                              const float* __restrict__ bias, const float* __restrict__ R,
                                              int M, int N, int S, int bias_mode, int act, int has_res) {
    const long long total = (long long)M * N;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        float v = 0.0f;
        for (int s = 0; s < S; ++s) v += ws[s * total + i];
        C[i] = gemm_epilogue(v, bias, R, (int)(i / N), (int)(i % N), N, bias_mode, act, has_res);
    }
}

// v6: small-K streaming GEMM. Thread = (column group g of CW columns, row slot r0); rows
// r0, r0 + rpb, ... of the block's share. Needs N % CW == 0, N / CW <= blockDim.x, K % 4 == 0,
// 16-byte aligned A; bias per column (bias_mode 1).
template <int K, int CW>
__device__ __forceinline__ void gemm_smallk_body(const float* __restrict__ A, const float* __restrict__ B,
                                                 float* __restrict__ C, const float* __restrict__ bias,
                                                 const float* __restrict__ R, int M, int N, int act, int has_res) {
    const int G = N / CW;
    const int rpb = blockDim.x / G;
    const int g = threadIdx.x % G, r0 = threadIdx.x / G;
    if (r0 >= rpb) return;
    const int n0 = g * CW;
    float b[K][CW];
#pragma unroll
    for (int k = 0; k < K; ++k)
#pragma unroll
        for (int j = 0; j < CW; ++j) b[k][j] = __ldg(B + (long long)k * N + n0 + j);
    float bi[CW];
#pragma unroll
    for (int j = 0; j < CW; ++j) bi[j] = __ldg(bias + n0 + j);
    for (long long m = (long long)blockIdx.x * rpb + r0; m < M; m += (long long)gridDim.x * rpb) {
        const float4* a4 = reinterpret_cast<const float4*>(A + m * K);
        float acc[CW];
#pragma unroll
        for (int j = 0; j < CW; ++j) acc[j] = bi[j];
#pragma unroll
        for (int k4 = 0; k4 < K / 4; ++k4) {
            const float4 a = __ldg(a4 + k4);
#pragma unroll
            for (int j = 0; j < CW; ++j) {
                acc[j] = fmaf(a.x, b[4 * k4 + 0][j], acc[j]);
                acc[j] = fmaf(a.y, b[4 * k4 + 1][j], acc[j]);
                acc[j] = fmaf(a.z, b[4 * k4 + 2][j], acc[j]);
                acc[j] = fmaf(a.w, b[4 * k4 + 3][j], acc[j]);
            }
        }
        const long long off = m * N + n0;
#pragma unroll
        for (int j = 0; j < CW; ++j) {
            if (act) acc[j] = fminf(fmaxf(acc[j], 0.0f), 6.0f);
            if (has_res) acc[j] += R[off + j];
        }
        if constexpr (CW == 4) {
            *reinterpret_cast<float4*>(C + off) = make_float4(acc[0], acc[1], acc[2], acc[3]);
        } else if constexpr (CW == 2) {
            *reinterpret_cast<float2*>(C + off) = make_float2(acc[0], acc[1]);
        } else {
#pragma unroll
            for (int j = 0; j < CW; ++j) C[off + j] = acc[j];
        }
    }
}

#define GEMM_SMALLK_KERNEL(NAME, K, CW)                                                                  \
    extern "C" __global__ void __launch_bounds__(256)                                                  \
    NAME(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,               \
         const float* __restrict__ bias, const float* __restrict__ R, int M, int N, int act, int has_res) { \
        gemm_smallk_body<K, CW>(A, B, C, bias, R, M, N, act, has_res);                                  \
    }

GEMM_SMALLK_KERNEL(gemm_smallk_k16_c4, 16, 4)
GEMM_SMALLK_KERNEL(gemm_smallk_k24_c2, 24, 2)
GEMM_SMALLK_KERNEL(gemm_smallk_k32_c2, 32, 2)

// v7: fp32-accurate GEMM on the tensor cores by 3xTF32 splitting (the "fast accurate fp32" of CUTLASS).
//   Every fp32 operand x is split into big = tf32(x) and small = tf32(x - big) (together 21+ mantissa
//   bits), and a*b is computed as a_small*b_big + a_big*b_small + a_big*b_big with
//   mma.sync.m16n8k8.tf32 and fp32 accumulation; only a_small*b_small (~2^-22 relative) is dropped,
//   so the error is of fp32's order, not TF32's (tests: rel L2 < 1e-5 per layer against float64, as
//   every fp32 version). NOT plain TF32: a TF32 GEMM would be ~1e-3. Tiles BM x BN x 16, 8 warps of
//   WM x WN, cp.async double buffer, padded shared memory (conflict-free fragment reads), the same
//   epilogue / split-K workspace contract as v4/v5. Needs K % 4 == 0, N % 4 == 0 and 16-byte aligned
//   A, B (the host runs v5's scalar kernels otherwise). Expected: the compute-bound pointwise convs
//   (96->576, 160->960, 320->1280 at batch 64: 25-30 TFLOP/s SIMT) to 1.5-2x, i.e. memory-bound.
//   MEASURED (H100): all pointwise convs 1.746 -> 1.655 ms at batch 64, 5.866 -> 5.618 ms at 256;
//   best 320->1280 @7x7 84 -> 72 us (35.7 TFLOP/s). Fragments are re-split by every warp (2 cvt + sub
//   per element per use, scalar LDS): issue-bound at ~28% of the TF32 MMA rate. Not the default.
__device__ __forceinline__ unsigned f32_to_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ void split_tf32(float x, unsigned& big, unsigned& small) {
    big = f32_to_tf32(x);
    small = f32_to_tf32(x - __uint_as_float(big));
}

__device__ __forceinline__ void mma_tf32_16x8x8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// 16-byte global -> shared copy; ok == false writes 16 zero bytes (src is not read)
__device__ __forceinline__ void cp_async16_zfill(void* smem, const void* gmem, bool ok) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    const int n = ok ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

template <int BM, int BN, int WM, int WN>
__device__ __forceinline__ void gemm_3xtf32_body(const float* __restrict__ A, const float* __restrict__ B,
                                                 float* __restrict__ C, const float* __restrict__ bias,
                                                 const float* __restrict__ R, int M, int N, int K,
                                                 long long sA, long long sB, long long sC, int bias_mode,
                                                 int act, int has_res) {
    constexpr int BK = 16, PADA = 4, PADB = 8;
    constexpr int WARPS_N = BN / WN;
    constexpr int NT = (BM / WM) * WARPS_N * 32;
    constexpr int MT = WM / 16, NTL = WN / 8;  // mma tiles per warp along M and N
    static_assert(WM % 16 == 0 && WN % 8 == 0 && BM % WM == 0 && BN % WN == 0, "tile shape");
    __shared__ __align__(16) float As[2][BM][BK + PADA];
    __shared__ __align__(16) float Bs[2][BK][BN + PADB];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int g = lane >> 2, t = lane & 3;
    const int ntn = (N + BN - 1) / BN;
    const int m0 = (blockIdx.x / ntn) * BM, n0 = (blockIdx.x % ntn) * BN;
    int kbeg, kend;
    gemm_batch_split<BK>(A, B, C, R, M, N, K, sA, sB, sC, bias_mode, act, has_res, kbeg, kend);

    float acc[MT][NTL][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NTL; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

    auto load = [&](int stage, int k0) {
#pragma unroll
        for (int e = tid; e < BM * BK / 4; e += NT) {
            const int r = e / (BK / 4), c4 = (e % (BK / 4)) * 4;
            const int gm = m0 + r, gk = k0 + c4;
            const bool ok = gm < M && gk < kend;
            cp_async16_zfill(&As[stage][r][c4], ok ? A + (long long)gm * K + gk : A, ok);
        }
#pragma unroll
        for (int e = tid; e < BK * BN / 4; e += NT) {
            const int r = e / (BN / 4), c4 = (e % (BN / 4)) * 4;
            const int gk = k0 + r, gn = n0 + c4;
            const bool ok = gk < kend && gn < N;
            cp_async16_zfill(&Bs[stage][r][c4], ok ? B + (long long)gk * N + gn : B, ok);
        }
        cp_async_commit();
    };

    const int nk = (kend - kbeg + BK - 1) / BK;
    if (nk > 0) load(0, kbeg);
    for (int kt = 0; kt < nk; ++kt) {
        if (kt + 1 < nk) {
            load((kt + 1) & 1, kbeg + (kt + 1) * BK);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const int s = kt & 1;
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            unsigned ab[MT][4], as[MT][4], bb[NTL][2], bs[NTL][2];
#pragma unroll
            for (int i = 0; i < MT; ++i) {
                const int r = wm * WM + i * 16 + g;
                split_tf32(As[s][r][kk + t], ab[i][0], as[i][0]);
                split_tf32(As[s][r + 8][kk + t], ab[i][1], as[i][1]);
                split_tf32(As[s][r][kk + t + 4], ab[i][2], as[i][2]);
                split_tf32(As[s][r + 8][kk + t + 4], ab[i][3], as[i][3]);
            }
#pragma unroll
            for (int j = 0; j < NTL; ++j) {
                const int c = wn * WN + j * 8 + g;
                split_tf32(Bs[s][kk + t][c], bb[j][0], bs[j][0]);
                split_tf32(Bs[s][kk + t + 4][c], bb[j][1], bs[j][1]);
            }
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NTL; ++j) {
                    mma_tf32_16x8x8(acc[i][j], as[i], bb[j]);  // small terms first
                    mma_tf32_16x8x8(acc[i][j], ab[i], bs[j]);
                    mma_tf32_16x8x8(acc[i][j], ab[i], bb[j]);
                }
        }
        __syncthreads();
    }

    // accumulator (i, j): rows r, r + 8 (r = ... + g), columns c, c + 1 (c = ... + 2t); N % 4 == 0
#pragma unroll
    for (int i = 0; i < MT; ++i) {
#pragma unroll
        for (int j = 0; j < NTL; ++j) {
            const int gn = n0 + wn * WN + j * 8 + 2 * t;
            if (gn >= N) continue;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int gm = m0 + wm * WM + i * 16 + g + 8 * h;
                if (gm >= M) continue;
                float2 v;
                v.x = gemm_epilogue(acc[i][j][2 * h], bias, R, gm, gn, N, bias_mode, act, has_res);
                v.y = gemm_epilogue(acc[i][j][2 * h + 1], bias, R, gm, gn + 1, N, bias_mode, act, has_res);
                *reinterpret_cast<float2*>(C + (long long)gm * N + gn) = v;
            }
        }
    }
}

#define GEMM_3XTF32_KERNEL(NAME, BM, BN, WM, WN)                                                          \
    extern "C" __global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32)                             \
    NAME(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,                 \
         const float* __restrict__ bias, const float* __restrict__ R, int M, int N, int K,                \
         long long sA, long long sB, long long sC, int bias_mode, int act, int has_res) {                 \
        gemm_3xtf32_body<BM, BN, WM, WN>(A, B, C, bias, R, M, N, K, sA, sB, sC, bias_mode, act, has_res); \
    }

// v7 tile shapes: name suffix = BMxBN_WMxWN (warp tile); 8 warps each
GEMM_3XTF32_KERNEL(gemm_v7_128x128_64x32, 128, 128, 64, 32)
GEMM_3XTF32_KERNEL(gemm_v7_128x64_32x32, 128, 64, 32, 32)
GEMM_3XTF32_KERNEL(gemm_v7_128x32_32x16, 128, 32, 32, 16)
GEMM_3XTF32_KERNEL(gemm_v7_64x64_32x16, 64, 64, 32, 16)
GEMM_3XTF32_KERNEL(gemm_v7_64x32_16x16, 64, 32, 16, 16)

// ---------------------------------------------------------------------------------------------
// v8: a SIMT SGEMM tuned for the 14x14 / 7x7 pointwise convs at batch 64 / 256 (true fp32 FMAs, no
//   tensor cores). v8 = v5 (split-K, v3/v4 tiles) + these kernels as autotune candidates.
//   * BK = 16, a STAGES-deep cp.async ring (one __syncthreads per 16 k, no register staging): the A tile is
//     copied element-wise (4-byte cp.async) straight into its transposed place As[k][m], 8 k x 4 rows per
//     warp instruction (32 B sectors from global; with the row pitch BM + 4 the 32 lanes hit 32 distinct
//     banks), the B tile with 16-byte cp.async (rows of B are contiguous along N).
//   * thread tile TM x TN made of (TM/4) x (TN/4) float4 slabs spaced BM/(TM/4) rows and BN/(TN/4)
//     columns apart; lanes of a warp are LM x LN (8 x 4 or 4 x 8) threads with consecutive slab offsets,
//     so a warp's fragment load per k is one LDS.128 per slab reading LM (resp. LN) distinct, contiguous
//     float4s (<= 128 B: one wavefront, the rest broadcast): per k an 8x8 thread does 64 FFMA for 4 LDS.128.
//   * tile shapes not multiples of 64 (x96, x160, with 192 / 320 threads) so that N = 96, 160, 320, 576,
//     960 need no padded tile; float4 epilogue (bias per column, ReLU6, residual).
//   Needs K % 4 == 0, N % 4 == 0 and 16-byte aligned B, C, R and bias (the host keeps v5's kernels otherwise).
//   Dynamic shared memory: STAGES * 16 * (BM + 4 + BN) floats (host: impls/_custom_kernels.py gemm_v8_smem).

// 4-byte global -> shared copy; ok == false writes a zero (src is not read)
__device__ __forceinline__ void cp_async4_zfill(void* smem, const void* gmem, bool ok) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    const int n = ok ? 4 : 0;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}

template <int BM, int BN, int TM, int TN, int STAGES, int KS = 1>
__device__ __forceinline__ void gemm_v8_body(const float* __restrict__ A, const float* __restrict__ B,
                                             float* __restrict__ C, const float* __restrict__ bias,
                                             const float* __restrict__ R, int M, int N, int K, long long sA,
                                             long long sB, long long sC, int bias_mode, int act, int has_res) {
    constexpr int BK = 16;
    constexpr int THR_M = BM / TM, THR_N = BN / TN, NT = THR_M * THR_N;  // NT: threads of one k slice
    constexpr int NTA = NT * KS;                                          // all threads (they share the copies)
    static_assert(BK % KS == 0, "k slices");
    constexpr int LN = THR_N % 8 == 0 ? 8 : 4, LM = 32 / LN;  // lanes of a warp: LM rows x LN columns of threads
    constexpr int WARPS_N = THR_N / LN;
    constexpr int SLM = TM / 4, SLN = TN / 4;                  // float4 slabs per thread along M, N
    constexpr int PM = BM / SLM, PN = BN / SLN;                // slab pitch (rows, columns)
    constexpr int LDA = BM + 4, LDB = BN;
    constexpr int STAGE_A = BK * LDA, STAGE_B = BK * LDB;
    constexpr int ROWS_PER_PASS = NTA / 8, APASS = (BM + ROWS_PER_PASS - 1) / ROWS_PER_PASS;
    constexpr int NB4 = BK * BN / 4, BPASS = (NB4 + NTA - 1) / NTA;
    static_assert(TM % 4 == 0 && TN % 4 == 0 && THR_N % LN == 0 && THR_M % LM == 0 && NT % 32 == 0, "tile shape");
    static_assert(BM % 32 == 0 && BN % 4 == 0 && ROWS_PER_PASS % 4 == 0, "tile shape");
    extern __shared__ __align__(16) float gemm_v8_smem[];
    float* As = gemm_v8_smem;                    // [STAGES][BK][LDA]: the A tile transposed
    float* Bs = gemm_v8_smem + STAGES * STAGE_A;  // [STAGES][BK][LDB]

    const int tid = threadIdx.x, lane = tid & 31;
    const int slice = KS > 1 ? tid / NT : 0, st = KS > 1 ? tid % NT : tid;  // k slice, thread within it
    const int warp = st >> 5;
    const int ty = (warp / WARPS_N) * LM + lane / LN;
    const int tx = (warp % WARPS_N) * LN + lane % LN;
    const int ntn = (N + BN - 1) / BN;
    const int m0 = (blockIdx.x / ntn) * BM, n0 = (blockIdx.x % ntn) * BN;
    int kbeg, kend;
    gemm_batch_split<BK>(A, B, C, R, M, N, K, sA, sB, sC, bias_mode, act, has_res, kbeg, kend);

    // A copy: thread = (k lane kq = tid % 8, rows (tid / 8) + j * NT / 8); both 8-wide halves of BK
    const int kq = tid & 7, r0 = tid >> 3;
    const int rows_left = M - m0 - r0;  // row r0 + j * ROWS_PER_PASS exists iff j * ROWS_PER_PASS < rows_left
    const float* arow = A + (long long)(m0 + r0) * K + kq;
    auto load = [&](int stage, int k0) {
        float* as = As + stage * STAGE_A + kq * LDA + r0;
        float* bs = Bs + stage * STAGE_B;
#pragma unroll
        for (int j = 0; j < APASS; ++j) {
            if (BM % ROWS_PER_PASS == 0 || r0 + j * ROWS_PER_PASS < BM) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const bool ok = j * ROWS_PER_PASS < rows_left && k0 + h * 8 + kq < kend;
                    const float* src = arow + (long long)j * ROWS_PER_PASS * K + k0 + h * 8;
                    cp_async4_zfill(as + h * 8 * LDA + j * ROWS_PER_PASS, ok ? src : A, ok);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < BPASS; ++i) {
            const int e = i * NTA + tid;
            if (NB4 % NTA == 0 || e < NB4) {
                const int r = e / (BN / 4), c4 = (e % (BN / 4)) * 4;
                const int gk = k0 + r, gn = n0 + c4;
                const bool ok = gk < kend && gn < N;
                cp_async16_zfill(bs + r * LDB + c4, ok ? B + (long long)gk * N + gn : B, ok);
            }
        }
    };

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    const int nk = (kend - kbeg + BK - 1) / BK;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < nk) load(s, kbeg + s * BK);
        cp_async_commit();
    }
    for (int kt = 0; kt < nk; ++kt) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // tile kt landed for every thread; every thread is done with tile kt - 1's stage
        const int pre = kt + STAGES - 1;
        if (pre < nk) load(pre % STAGES, kbeg + pre * BK);
        cp_async_commit();
        const float* as = As + (kt % STAGES) * STAGE_A + slice * (BK / KS) * LDA + ty * 4;
        const float* bs = Bs + (kt % STAGES) * STAGE_B + slice * (BK / KS) * LDB + tx * 4;
#pragma unroll
        for (int k = 0; k < BK / KS; ++k) {  // this slice's k of the tile
            float a[TM], b[TN];
#pragma unroll
            for (int s = 0; s < SLM; ++s) {
                const float4 v = *reinterpret_cast<const float4*>(as + k * LDA + s * PM);
                a[4 * s] = v.x; a[4 * s + 1] = v.y; a[4 * s + 2] = v.z; a[4 * s + 3] = v.w;
            }
#pragma unroll
            for (int s = 0; s < SLN; ++s) {
                const float4 v = *reinterpret_cast<const float4*>(bs + k * LDB + s * PN);
                b[4 * s] = v.x; b[4 * s + 1] = v.y; b[4 * s + 2] = v.z; b[4 * s + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
    }
    cp_async_wait<0>();
    // epilogue of one float4 of C (row gm, columns gn..gn+3): bias, ReLU6, residual; N % 4 == 0 so a float4 is
    // wholly inside or outside
    auto store4 = [&](int gm, int gn, float4 v) {
        if (bias_mode == 1) {
            const float4 bb = __ldg(reinterpret_cast<const float4*>(bias + gn));
            v.x += bb.x; v.y += bb.y; v.z += bb.z; v.w += bb.w;
        } else if (bias_mode == 2) {
            const float bb = __ldg(bias + gm);
            v.x += bb; v.y += bb; v.z += bb; v.w += bb;
        }
        if (act) {
            v.x = fminf(fmaxf(v.x, 0.0f), 6.0f);
            v.y = fminf(fmaxf(v.y, 0.0f), 6.0f);
            v.z = fminf(fmaxf(v.z, 0.0f), 6.0f);
            v.w = fminf(fmaxf(v.w, 0.0f), 6.0f);
        }
        const long long off = (long long)gm * N + gn;
        if (has_res) {
            const float4 rr = __ldg(reinterpret_cast<const float4*>(R + off));
            v.x += rr.x; v.y += rr.y; v.z += rr.z; v.w += rr.w;
        }
        *reinterpret_cast<float4*>(C + off) = v;
    };
    if constexpr (KS > 1) {
        // every k slice puts its partial tile in shared memory (the ring is free: every copy landed and every
        // slice left the loop), layout [slice][row][column]; then all KS x NT threads walk the tile's float4s
        // (consecutive threads, consecutive float4s: coalesced stores), each the sum of the KS partials in the
        // fixed order 0, 1, .., and run the epilogue. Dynamic shared memory >= KS * BM * BN floats (host:
        // gemm_v8_smem).
        __syncthreads();
        float* red = gemm_v8_smem + slice * BM * BN;
#pragma unroll
        for (int sm = 0; sm < SLM; ++sm)
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int sn = 0; sn < SLN; ++sn)
                    *reinterpret_cast<float4*>(red + (sm * PM + ty * 4 + i) * BN + sn * PN + tx * 4) =
                        make_float4(acc[4 * sm + i][4 * sn], acc[4 * sm + i][4 * sn + 1], acc[4 * sm + i][4 * sn + 2],
                                    acc[4 * sm + i][4 * sn + 3]);
        __syncthreads();
        constexpr int NQ = BM * BN / 4;
#pragma unroll
        for (int q0 = 0; q0 < NQ; q0 += NTA) {
            const int q = q0 + tid;
            if (NQ % NTA != 0 && q >= NQ) break;
            const int r = q / (BN / 4), c = (q % (BN / 4)) * 4;
            const int gm = m0 + r, gn = n0 + c;
            if (gm >= M || gn >= N) continue;
            float4 v = *reinterpret_cast<const float4*>(gemm_v8_smem + r * BN + c);
#pragma unroll
            for (int z = 1; z < KS; ++z) {
                const float4 u = *reinterpret_cast<const float4*>(gemm_v8_smem + z * BM * BN + r * BN + c);
                v.x += u.x; v.y += u.y; v.z += u.z; v.w += u.w;
            }
            store4(gm, gn, v);
        }
    } else {
        // epilogue: float4 per (row, column slab)
#pragma unroll
        for (int sm = 0; sm < SLM; ++sm) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int gm = m0 + sm * PM + ty * 4 + i;
                if (gm >= M) continue;
#pragma unroll
                for (int sn = 0; sn < SLN; ++sn) {
                    const int gn = n0 + sn * PN + tx * 4;
                    if (gn >= N) continue;
                    store4(gm, gn, make_float4(acc[4 * sm + i][4 * sn], acc[4 * sm + i][4 * sn + 1],
                                               acc[4 * sm + i][4 * sn + 2], acc[4 * sm + i][4 * sn + 3]));
                }
            }
        }
    }
}

// name suffix = BMxBN_TMxTN; STAGES = cp.async ring depth; MINB = min blocks per SM (register cap: as many
// blocks as fit without spills; run 1 on H100 had every tile at MINB 2, the small ones then lost to v4's
// 3-4 blocks per SM on the K = 64 / 96 expansions)
// GEMM_V8K_KERNEL: KS k slices (gemm v10, below); GEMM_V8_KERNEL = the same build with one slice (v8 / v9)
#define GEMM_V8K_KERNEL(NAME, BM, BN, TM, TN, STAGES, MINB, KS)                                           \
    extern "C" __global__ void __launch_bounds__((BM / TM) * (BN / TN) * KS, MINB)                        \
    NAME(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C,                 \
         const float* __restrict__ bias, const float* __restrict__ R, int M, int N, int K,                \
         long long sA, long long sB, long long sC, int bias_mode, int act, int has_res) {                 \
        gemm_v8_body<BM, BN, TM, TN, STAGES, KS>(A, B, C, bias, R, M, N, K, sA, sB, sC, bias_mode, act,   \
                                                 has_res);                                                 \
    }

#define GEMM_V8_KERNEL(NAME, BM, BN, TM, TN, STAGES, MINB) GEMM_V8K_KERNEL(NAME, BM, BN, TM, TN, STAGES, MINB, 1)

GEMM_V8_KERNEL(gemm_v8_128x128_8x8, 128, 128, 8, 8, 3, 2)
GEMM_V8_KERNEL(gemm_v8_128x96_8x8, 128, 96, 8, 8, 3, 2)
GEMM_V8_KERNEL(gemm_v8_128x64_8x4, 128, 64, 8, 4, 3, 3)
GEMM_V8_KERNEL(gemm_v8_64x128_4x8, 64, 128, 4, 8, 3, 2)
GEMM_V8_KERNEL(gemm_v8_64x160_4x8, 64, 160, 4, 8, 3, 3)
GEMM_V8_KERNEL(gemm_v8_64x96_4x8, 64, 96, 4, 8, 3, 2)
GEMM_V8_KERNEL(gemm_v8_32x160_4x8, 32, 160, 4, 8, 3, 4)
GEMM_V8_KERNEL(gemm_v8_128x32_4x4, 128, 32, 4, 4, 3, 4)
GEMM_V8_KERNEL(gemm_v8_64x64_4x4, 64, 64, 4, 4, 3, 4)
// session 8: 96- and 32-row tiles so that M = 12544 (14x14 at batch 64) fills the 132 SMs evenly: 131 blocks of
// 96 rows (one per SM) or 392 of 32 rows (3 per SM) instead of 196 of 64 (64 SMs with 2, 68 with 1)
GEMM_V8_KERNEL(gemm_v8_96x64_4x4, 96, 64, 4, 4, 3, 2)
GEMM_V8_KERNEL(gemm_v8_96x96_4x8, 96, 96, 4, 8, 3, 2)
GEMM_V8_KERNEL(gemm_v8_32x64_4x4, 32, 64, 4, 4, 3, 4)
GEMM_V8_KERNEL(gemm_v8_32x96_4x8, 32, 96, 4, 8, 3, 4)

// gemm v10 (session 10): the tile's 16-wide k-steps split over KS thread groups ("k slices", KS x the threads of
// the v8 tile, each slice 16 / KS k per step), the partial tiles summed once at the end through shared memory by
// all threads. Same tile, same copies per block, KS x the threads: the 32-row tiles that fill 132 SMs at batch 64
// (M = 12544: 392 blocks) can then carry 8x8 / 8x12 / 8x20 thread tiles, which the L1 pipe does not cap (4x4 / 4x8
// tiles: at most 50 / 67% of the FMA pipe; measured, more warps alone gained ~10 us, the larger tiles ~40).
// Name suffix _k<KS>; threads (BM / TM) * (BN / TN) * KS; MINB as above.
// (first device run, H200: 32x96_4x8 k4, 32x64_4x4 k2 / k4, 64x64_4x4 k2, 64x96_4x8 k2 and 128x64_8x4 k2 were never the
// fastest on a network layer at batch 64 and were dropped; results/NOTES.md "Session 10")
GEMM_V8K_KERNEL(gemm_v8_32x96_4x8_k2, 32, 96, 4, 8, 3, 3, 2)
GEMM_V8K_KERNEL(gemm_v8_32x160_4x8_k2, 32, 160, 4, 8, 3, 2, 2)
// 8 x 8 / 8 x 12 thread tiles (one warp per slice): 4 / 4.8 FFMA per shared-memory wavefront instead of 2 / 2.7
GEMM_V8K_KERNEL(gemm_v8_32x64_8x8_k4, 32, 64, 8, 8, 3, 3, 4)
GEMM_V8K_KERNEL(gemm_v8_32x96_8x12_k4, 32, 96, 8, 12, 3, 3, 4)
GEMM_V8K_KERNEL(gemm_v8_32x64_8x8_k8, 32, 64, 8, 8, 3, 2, 8)
// 8 x 20 for N = 160 / 320 on the 7x7 maps (5.7 FFMA per wavefront; 254-255 registers, no spills)
GEMM_V8K_KERNEL(gemm_v8_32x160_8x20_k2, 32, 160, 8, 20, 3, 3, 2)
GEMM_V8K_KERNEL(gemm_v8_32x160_8x20_k4, 32, 160, 8, 20, 3, 2, 4)

// gemm v11 = v10 + 64-row k-sliced builds (session 10, compiled and checked for spills here; NOT yet run on a GPU:
// results/NOTES.md "gemm v11" has the prediction). Targets: the 7x7 maps at batch 64 (M = 3136: v10's 32-row
// tiles make 490 blocks for N = 320, 1.24 waves at 3 blocks per SM; 64-row tiles make 245, one wave at 2) and the
// 14x14 / 7x7 maps at batch 256 (4x the rows: larger tiles cut the B re-reads). 127-255 registers, no spills.
GEMM_V8K_KERNEL(gemm_v8_64x64_8x8_k2, 64, 64, 8, 8, 3, 3, 2)
GEMM_V8K_KERNEL(gemm_v8_64x64_8x8_k4, 64, 64, 8, 8, 3, 2, 4)
GEMM_V8K_KERNEL(gemm_v8_64x96_8x12_k2, 64, 96, 8, 12, 3, 2, 2)
GEMM_V8K_KERNEL(gemm_v8_64x128_8x16_k2, 64, 128, 8, 16, 3, 2, 2)
GEMM_V8K_KERNEL(gemm_v8_64x160_8x20_k2, 64, 160, 8, 20, 3, 2, 2)

// ---------------------------------------------------------------------------------------------------
// fuse v7 (host: impls/custom.py _exgdw_launch; kernels="fuse=v7"): the expansion 1x1 conv of a bottleneck
//   block whose input has too many channels for exdw4 (CIN > 32: the 14x14 and 7x7 blocks) as a GEMM whose
//   M tile is WHOLE IMAGES, with the 3x3 depthwise conv (+ bias, ReLU6) in its epilogue: the expanded tensor
//   before the depthwise conv never reaches device memory and the depthwise launch disappears (at batch 256
//   the 10 standalone depthwise convs on 14x14 / 7x7 maps cost ~0.6 ms, results/NOTES.md "fuse v7").
//   * block = `imgs` whole images (imgs * H * W <= 196 rows: 1 image at 14x14, 4 at 7x7) x BN expanded
//     channels; 224 threads = 28 row groups x 8 column groups; thread tile 7 rows (ty + 28 i) x BN / 8
//     columns (float4 slabs 32 apart).
//   * main loop: BK = 16, 3-stage cp.async ring; A kept [row][k] (16-byte copies along k; pitch 20 floats: the
//     LDS.64 fragment loads of a warp's 4 row groups hit distinct banks), B [k][n] (one LDS.128 wavefront).
//   * epilogue: + bias, ReLU6 -> the expanded tile in shared memory (over the ring) -> the depthwise conv
//     of the tile's images for its BN channels; thread = one output row x 4 channels, a sliding 3x3 window
//     of float4 in registers (3 LDS.128 per output at stride 1) -> + bias, ReLU6 -> float4 NHWC stores.
//   Needs CIN % 4 == 0, CE % 4 == 0, H * W <= 196, 16-byte aligned arrays (the host checks; else the two
//   layers' own kernels). Dynamic shared memory: 3 * (196 * 20 + 16 * BN) + 11 * BN floats (the ring, then the
//   epilogue's weights; impls/_custom_kernels.py exgdw_smem).
constexpr int EXG_ROWS = 196, EXG_THREADS = 224;

// BK: k per ring stage, STAGES: ring depth (the default builds 16 / 3; _k32: 32 / 2)
template <int BN, int S, int BK, int STAGES>
__device__ __forceinline__ void exgdw_body(const float* __restrict__ X, const float* __restrict__ We,
                                           const float* __restrict__ be, const float* __restrict__ Wd,
                                           const float* __restrict__ bd, float* __restrict__ Y, int NB, int H,
                                           int W, int CIN, int CE, int Ho, int Wo, int pad, int imgs, int act_e,
                                           int act_d) {
    constexpr int TM = 7, TN = BN / 8, SLN = TN / 4, LDA = BK + 4;
    constexpr int STAGE_A = EXG_ROWS * LDA, STAGE_B = BK * BN;
    constexpr int LDE = BN + 4;
    constexpr int AQ = BK / 4, AROWS = EXG_THREADS / AQ, APASS = (EXG_ROWS + AROWS - 1) / AROWS;
    constexpr int NB4 = BK * BN / 4, BPASS = (NB4 + EXG_THREADS - 1) / EXG_THREADS;
    static_assert(TN % 4 == 0 && EXG_ROWS * LDE <= STAGES * (STAGE_A + STAGE_B), "tile shape");
    extern __shared__ __align__(16) float exg_smem[];
    float* As = exg_smem;                          // [STAGES][196][LDA]
    float* Bs = exg_smem + STAGES * STAGE_A;  // [STAGES][BK][BN]
    float* Ws = Bs + STAGES * STAGE_B;        // [11][BN]: depthwise taps 0..8, depthwise bias, expansion bias

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int ty = warp * 4 + (lane >> 3);  // 0..27: rows ty + 28 i
    const int tx = lane & 7;                // columns tx * 4 + 32 s
    const int ntn = (CE + BN - 1) / BN;
    const int img0 = (blockIdx.x / ntn) * imgs, n0 = (blockIdx.x % ntn) * BN;
    const int hw = H * W;
    const int nimg = min(imgs, NB - img0);
    const int rows = nimg * hw;  // rows of this tile that exist
    const float* Xt = X + (long long)img0 * hw * CIN;

    // copy assignments, fixed per thread (a stage adds k0): A rows ar + AROWS j (16 bytes at k = aq), B rows br + BROWS j
    constexpr int BQ = BN / 4, BROWS = EXG_THREADS / BQ;
    static_assert(EXG_THREADS % AQ == 0 && EXG_THREADS % BQ == 0, "copy assignment");
    const int ar = tid / AQ, aq = (tid % AQ) * 4;
    const int br = tid / BQ, bc = (tid % BQ) * 4;
    const bool bcol = n0 + bc < CE;
    const float* asrc = Xt + ar * CIN + aq;
    const float* bsrc = We + br * CE + n0 + bc;
    auto load = [&](int stage, int k0) {
        float* as = As + stage * STAGE_A + ar * LDA + aq;
        float* bs = Bs + stage * STAGE_B + br * BN + bc;
        const bool kq = k0 + aq < CIN;
#pragma unroll
        for (int j = 0; j < APASS; ++j) {
            if ((j + 1) * AROWS <= EXG_ROWS || ar + j * AROWS < EXG_ROWS) {
                const bool ok = kq && ar + j * AROWS < rows;
                cp_async16_zfill(as + j * AROWS * LDA, ok ? asrc + j * AROWS * CIN + k0 : X, ok);
            }
        }
#pragma unroll
        for (int j = 0; j < BPASS; ++j) {
            if ((j + 1) * BROWS <= BK || br + j * BROWS < BK) {
                const bool ok = bcol && k0 + br + j * BROWS < CIN;
                cp_async16_zfill(bs + j * BROWS * BN, ok ? bsrc + (k0 + j * BROWS) * CE : We, ok);
            }
        }
    };

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    // the epilogue's weights of these BN channels (zero past CE) with the first stage: no load latency there
    if (tid < 11 * BQ) {
        const int q = tid / BQ, c = (tid % BQ) * 4;
        const bool ok = n0 + c < CE;
        const float* src = q < 9 ? Wd + q * CE : (q == 9 ? bd : be);
        cp_async16_zfill(Ws + q * BN + c, ok ? src + n0 + c : Wd, ok);
    }
    const int nk = (CIN + BK - 1) / BK;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < nk) load(s, s * BK);
        cp_async_commit();
    }
    for (int kt = 0; kt < nk; ++kt) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // tile kt landed for every thread; every thread is done with tile kt - 1's stage
        const int pre = kt + STAGES - 1;
        if (pre < nk) load(pre % STAGES, pre * BK);
        cp_async_commit();
        const float* as = As + (kt % STAGES) * STAGE_A + ty * LDA;
        const float* bs = Bs + (kt % STAGES) * STAGE_B + tx * 4;
#pragma unroll
        for (int k = 0; k < BK; k += 2) {
            float2 a[TM];
            float b0[TN], b1[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = *reinterpret_cast<const float2*>(as + i * 28 * LDA + k);
#pragma unroll
            for (int s = 0; s < SLN; ++s) {
                const float4 v = *reinterpret_cast<const float4*>(bs + k * BN + s * 32);
                const float4 u = *reinterpret_cast<const float4*>(bs + (k + 1) * BN + s * 32);
                b0[4 * s] = v.x; b0[4 * s + 1] = v.y; b0[4 * s + 2] = v.z; b0[4 * s + 3] = v.w;
                b1[4 * s] = u.x; b1[4 * s + 1] = u.y; b1[4 * s + 2] = u.z; b1[4 * s + 3] = u.w;
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i].y, b1[j], fmaf(a[i].x, b0[j], acc[i][j]));
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // every thread is done with the ring: the expanded tile goes over it

    float* E = exg_smem;  // [196][LDE]: relu6(expansion + bias) of this tile's rows, BN channels
#pragma unroll
    for (int s = 0; s < SLN; ++s) {
        const int c = s * 32 + tx * 4;
        const float4 bb = *reinterpret_cast<const float4*>(Ws + 10 * BN + c);
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            float4 v = make_float4(acc[i][4 * s] + bb.x, acc[i][4 * s + 1] + bb.y, acc[i][4 * s + 2] + bb.z,
                                   acc[i][4 * s + 3] + bb.w);
            if (act_e) {
                v.x = fminf(fmaxf(v.x, 0.0f), 6.0f);
                v.y = fminf(fmaxf(v.y, 0.0f), 6.0f);
                v.z = fminf(fmaxf(v.z, 0.0f), 6.0f);
                v.w = fminf(fmaxf(v.w, 0.0f), 6.0f);
            }
            *reinterpret_cast<float4*>(E + (ty + 28 * i) * LDE + c) = v;
        }
    }
    __syncthreads();

    // the depthwise conv: task = (image j, output row y, channel group cg of 4)
    constexpr int CG = BN / 4;
    const int tasks = nimg * Ho * CG;
    for (int t = tid; t < tasks; t += EXG_THREADS) {
        const int cg = t % CG, rest = t / CG;
        const int y = rest % Ho, j = rest / Ho;
        const int c = n0 + cg * 4;
        if (c >= CE) continue;
        float4 wt[9];
#pragma unroll
        for (int q = 0; q < 9; ++q) wt[q] = *reinterpret_cast<const float4*>(Ws + q * BN + cg * 4);
        const float4 bb = *reinterpret_cast<const float4*>(Ws + 9 * BN + cg * 4);
        const float* Ej = E + j * hw * LDE + cg * 4;
        const int iy0 = y * S - pad;
        auto column = [&](int ix, float4(&v)[3]) {
#pragma unroll
            for (int dy = 0; dy < 3; ++dy) {
                const int iy = iy0 + dy;
                v[dy] = (iy >= 0 && iy < H && ix >= 0 && ix < W)
                            ? *reinterpret_cast<const float4*>(Ej + (iy * W + ix) * LDE)
                            : make_float4(0, 0, 0, 0);
            }
        };
        float4 c0[3], c1[3], c2[3];
        if (S == 1) {
            column(-pad, c0);
            column(1 - pad, c1);
        } else {
            column(-pad, c2);
        }
        float* yrow = Y + ((long long)(img0 + j) * Ho + y) * Wo * CE + c;
        for (int x = 0; x < Wo; ++x) {
            if (S == 1) {
                column(x + 2 - pad, c2);
            } else {
#pragma unroll
                for (int dy = 0; dy < 3; ++dy) c0[dy] = c2[dy];
                column(2 * x + 1 - pad, c1);
                column(2 * x + 2 - pad, c2);
            }
            float4 o = bb;
#pragma unroll
            for (int dy = 0; dy < 3; ++dy) {
                const float4 w0 = wt[3 * dy], w1 = wt[3 * dy + 1], w2 = wt[3 * dy + 2];
                o.x = fmaf(c0[dy].x, w0.x, o.x); o.y = fmaf(c0[dy].y, w0.y, o.y);
                o.z = fmaf(c0[dy].z, w0.z, o.z); o.w = fmaf(c0[dy].w, w0.w, o.w);
                o.x = fmaf(c1[dy].x, w1.x, o.x); o.y = fmaf(c1[dy].y, w1.y, o.y);
                o.z = fmaf(c1[dy].z, w1.z, o.z); o.w = fmaf(c1[dy].w, w1.w, o.w);
                o.x = fmaf(c2[dy].x, w2.x, o.x); o.y = fmaf(c2[dy].y, w2.y, o.y);
                o.z = fmaf(c2[dy].z, w2.z, o.z); o.w = fmaf(c2[dy].w, w2.w, o.w);
            }
            if (act_d) {
                o.x = fminf(fmaxf(o.x, 0.0f), 6.0f);
                o.y = fminf(fmaxf(o.y, 0.0f), 6.0f);
                o.z = fminf(fmaxf(o.z, 0.0f), 6.0f);
                o.w = fminf(fmaxf(o.w, 0.0f), 6.0f);
            }
            *reinterpret_cast<float4*>(yrow + (long long)x * CE) = o;
            if (S == 1) {
#pragma unroll
                for (int dy = 0; dy < 3; ++dy) {
                    c0[dy] = c1[dy];
                    c1[dy] = c2[dy];
                }
            }
        }
    }
}

// name: exgdw_s<stride>_n<BN>[_k32]; MINB = min blocks per SM (register cap 65536 / (224 * MINB)); BK, STAGES: the ring
#define EXGDW_KERNEL(NAME, BN, S, MINB, BK, STAGES)                                                                      \
    extern "C" __global__ void __launch_bounds__(EXG_THREADS, MINB)                                         \
    NAME(const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,           \
         const float* __restrict__ Wd, const float* __restrict__ bd, float* __restrict__ Y, int NB, int H,  \
         int W, int CIN, int CE, int Ho, int Wo, int pad, int imgs, int act_e, int act_d) {                 \
        exgdw_body<BN, S, BK, STAGES>(X, We, be, Wd, bd, Y, NB, H, W, CIN, CE, Ho, Wo, pad, imgs, act_e, act_d); \
    }

EXGDW_KERNEL(exgdw_s1_n64, 64, 1, 2, 16, 3)
EXGDW_KERNEL(exgdw_s2_n64, 64, 2, 2, 16, 3)
EXGDW_KERNEL(exgdw_s1_n32, 32, 1, 2, 16, 3)
EXGDW_KERNEL(exgdw_s2_n32, 32, 2, 2, 16, 3)
// session 6 experiment: BK = 32 in 2 stages (half the barriers per k; K = 64 is then loaded in one prologue)
EXGDW_KERNEL(exgdw_s1_n64_k32, 64, 1, 2, 32, 2)
EXGDW_KERNEL(exgdw_s2_n64_k32, 64, 2, 2, 32, 2)
