// half.cu -- the fp16 mode of the custom backend (CustomBackend(dtype="fp16")): tensor-core GEMMs and
// the memory-bound layers on __half NHWC activations.
//
// Storage: activations NHWC __half; pointwise / classifier / depthwise weights __half; biases fp32;
// the stem's 27x32 weights fp32 (tiny; read as broadcasts). All arithmetic is fp32 (tensor cores:
// fp16 in, fp32 accumulate); each layer rounds its output to half once. The network input stays fp32
// NCHW (the stem reads it directly, no transpose); the logits are fp32.
//
// Epilogue of every conv / GEMM, in this order (as the fp32 kernels): + bias, ReLU6 when act,
// + R (half, same shape as the output) when has_res, round to half.
//
// Families and versions (host: impls/_custom_fp16.py; selectable like the fp32 ones):
//   "hgemm" (pointwise 1x1 convs, NHWC: C (M, N) = A (M, K) @ B^T with B = W (N=Cout, K=Cin), both
//            K-contiguous, M = N*H*W; the classifier above batch 8 with fp32 output)
//     v1  SIMT: 16x16 shared-memory tiles, one output per thread, fp32 FMA. Any M, N, K, any alignment:
//         the generic path for odd channel counts (and what v2 falls back to).
//     v2  tensor cores: mma.sync.m16n8k16 (f16 x f16 -> f32), ldmatrix.x4 fragments from an XOR-swizzled
//         shared-memory tile (BK = 32 halves = 4 16-byte chunks per row; chunk ^= (row >> 1) & 3 makes the
//         8 row addresses of each ldmatrix phase hit distinct banks), cp.async 16-byte copies into a
//         STAGES-deep ring (zero-fill past M, N, K), one __syncthreads per 32-wide k step. Block tile
//         BM x BN, warps WM x WN, warp tile (BM/WM) x (BN/WN); tile picked per layer (cost model, or
//         the autotuner at >= TUNE_MIN_FLOP). Needs K % 8 == 0, N % 8 == 0, 16-byte aligned operands.
//         Measured (H100, bs256, first device run): the small-K expansions are store-bound at 0.9-1.0 TB/s
//         (16->96 @112x112: 720 us; 24->144 @56x56: 308 us): 4-byte half2 stores over 8 rows per warp.
//     v3  v2 + the epilogue staged through shared memory (bias, ReLU6 -> half tile; then 16-byte chunks
//         per thread: coalesced residual reads and output writes); v2 keeps the direct fragment stores.
//   "hdepthwise" (3x3, groups = C), weights (9, C) half:
//     v1  direct, one thread per output element (any C, stride, pad).
//     v2  8 channels per thread (one 16-byte load per tap), TW outputs along W per thread (s1: 4,
//         s2: 2, 1 on small grids), fp32 math; needs C % 8 == 0 and 16-byte alignment.
//     v3  8 channels x TW x TH outputs per thread, the whole input window loaded up front (no per-row
//         branch); tiles per layer (block at the end of this file). Measured (H100, bs256): depthwise sum
//         1.502 -> 1.417 ms (stride 1 1.034 -> 0.949); stride 2 on maps > 14 launches v2's kernel.
//   "hstem" (groups = 1, not pointwise; in the network plan it reads the fp32 NCHW input directly):
//     v1  direct, one thread per output element, weights (k*k*Cin, Cout) fp32 from global (any shape);
//         two kernels: hconv_direct_nchw32 (fp32 NCHW input) and hconv_direct_nhwc (half NHWC input).
//     v2  3x3 on 3 channels specialised: the 27 inputs in registers, 8 output channels per thread
//         from shared-memory weights, one 16-byte store; fp32 NCHW input (Cout % 8 == 0, else v1).
//         Measured (H100, bs256, first device run): 445 us = 0.81 TB/s (the 27 loads repeated per group).
//     v3  v2 with one thread per output pixel doing every group of 8 output channels (27 loads once).
//     v4  v3 + output staged through shared memory (coalesced stores) + float2 taps at stride 2 (block at
//         the end of this file). Measured (H100, bs256): 340 us vs v3 262 us: slower, not the default.
//   "hpool"   v1  global average pool, one thread per (image, channel), fp32 sum, half out.
//   "hlinear" v1  GEMV for batch <= 8: one warp per output feature streams its half W row (16-byte
//                 loads), fp32 accumulate, fp32 logits; above batch 8 the hgemm kernels with fp32 output.
//   "hfuse" (an expansion 1x1 conv on CIN <= 32 channels + the 3x3 depthwise conv reading it):
//     v1  none (the two layers' own kernels: the expanded 6x tensor goes to device memory and back).
//     v2  hexdw: the expansion on tensor cores (mma.sync) into a shared-memory expanded patch, the
//         depthwise from there; only the depthwise output is stored (block at the end of this file). Default;
//         the plan autotunes each pair against v1's two kernels (the stride-2 pairs keep hexdw at bs 64 / 256,
//         the stride-1 ones the two kernels). Measured (H100, e2e graph): bs256 3.461 -> 3.302 ms, bs64 1.057 ->
//         0.998, bs1 0.226 -> 0.222; issue-bound (DRAM 15%, issue slots 66% busy), not memory-bound.
//     v3  hexdw3: v2 with the depthwise phase in half2 arithmetic (HFMA2, weights in registers, 2 outputs per item on
//         stride-1 14x14 tiles, stride-2 patch stored even / odd columns apart). Measured (H100, bs256): pairs -20..-35%
//         vs v2, now faster than the two kernels on every pair; e2e graph bs256 3.207 -> 2.940 ms, bs64 0.966 -> 0.889.
//     v4  hexdwpw4: v3 + the projection 1x1 (+ bias, + residual) in the same kernel (the whole small-CIN block; the
//         depthwise output chunk stays in shared memory); tuned per block against v3's pair + projection GEMM. Default.
//         Measured (H100, e2e graph, same tree): bs256 2.618 (v3) -> 2.497 ms, bs64 0.826 -> 0.783, bs1 0.2117 both.
//   helpers: NCHW fp32 <-> NHWC half conversion (batched 32x32 tile transpose), fp32 <-> half copies,
//            hadd (residual add on half arrays; the fused network never launches it).
//
// Measured on H100 (results/NOTES.md, "fp16 tensor-core mode"), e2e graph: batch 1 0.268 ms, 64 1.142 ms,
// 256 3.807 ms (67k img/s); all pointwise GEMMs at batch 64 / 256: v1 6.11 / -, v2 0.954 / 3.097, v3 0.691 /
// 2.087 ms; stem at batch 256: v2 445 us, v3 262 us.

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

__device__ __forceinline__ float h_act(float v, int act) { return act ? fminf(fmaxf(v, 0.0f), 6.0f) : v; }

__device__ __forceinline__ void h8_to_f(const uint4& u, float* f) {
    const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float2 p = __half22float2(h[j]);
        f[2 * j] = p.x;
        f[2 * j + 1] = p.y;
    }
}

__device__ __forceinline__ uint4 f_to_h8(const float* f) {
    uint4 u;
    __half2* h = reinterpret_cast<__half2*>(&u);
#pragma unroll
    for (int j = 0; j < 4; ++j) h[j] = __floats2half2_rn(f[2 * j], f[2 * j + 1]);
    return u;
}

// ---------------------------------------------------------------------------------------------
// helpers
// NCHW fp32 -> NHWC half: per image the (C, HW) matrix transposed; grid (ceil(HW/32), ceil(C/32), N).
extern "C" __global__ void __launch_bounds__(256)
h_from_nchw_f32(const float* __restrict__ x, __half* __restrict__ y, int rows, int cols) {
    __shared__ float tile[32][33];
    const long long off = (long long)blockIdx.z * rows * cols;
    const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int i = threadIdx.y; i < 32; i += 8) {
        const int r = r0 + i, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[i][threadIdx.x] = x[off + (long long)r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += 8) {
        const int c = c0 + i, r = r0 + threadIdx.x;
        if (r < rows && c < cols) y[off + (long long)c * rows + r] = __float2half_rn(tile[threadIdx.x][i]);
    }
}

// NHWC half -> NCHW fp32: per image the (HW, C) matrix transposed.
extern "C" __global__ void __launch_bounds__(256)
h_to_nchw_f32(const __half* __restrict__ x, float* __restrict__ y, int rows, int cols) {
    __shared__ float tile[32][33];
    const long long off = (long long)blockIdx.z * rows * cols;
    const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int i = threadIdx.y; i < 32; i += 8) {
        const int r = r0 + i, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[i][threadIdx.x] = __half2float(x[off + (long long)r * cols + c]);
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += 8) {
        const int c = c0 + i, r = r0 + threadIdx.x;
        if (r < rows && c < cols) y[off + (long long)c * rows + r] = tile[threadIdx.x][i];
    }
}

extern "C" __global__ void f32_to_h(const float* __restrict__ x, __half* __restrict__ y, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = __float2half_rn(x[i]);
}

extern "C" __global__ void h_to_f32(const __half* __restrict__ x, float* __restrict__ y, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = __half2float(x[i]);
}

extern "C" __global__ void hadd(const __half* __restrict__ a, const __half* __restrict__ b, __half* __restrict__ y,
                                long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        y[i] = __float2half_rn(__half2float(a[i]) + __half2float(b[i]));
}

// ---------------------------------------------------------------------------------------------
// hgemm v1: SIMT, 16x16 tiles, any shape. C[m, n] = epi(sum_k A[m, k] * B[n, k]).
template <typename OutT>
__device__ __forceinline__ void hgemm_v1_body(const __half* __restrict__ A, const __half* __restrict__ B,
                                              OutT* __restrict__ C, const float* __restrict__ bias,
                                              const __half* __restrict__ R, int M, int N, int K, int act,
                                              int has_res) {
    __shared__ float As[16][17], Bs[16][17];
    const int tiles_n = (N + 15) / 16;
    const int m0 = (blockIdx.x / tiles_n) * 16, n0 = (blockIdx.x % tiles_n) * 16;
    const int tx = threadIdx.x, ty = threadIdx.y;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += 16) {
        const int ka = k0 + tx;
        As[ty][tx] = (m0 + ty < M && ka < K) ? __half2float(A[(long long)(m0 + ty) * K + ka]) : 0.0f;
        Bs[ty][tx] = (n0 + ty < N && ka < K) ? __half2float(B[(long long)(n0 + ty) * K + ka]) : 0.0f;
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < 16; ++kk) acc = fmaf(As[ty][kk], Bs[tx][kk], acc);
        __syncthreads();
    }
    const int m = m0 + ty, n = n0 + tx;
    if (m < M && n < N) {
        float v = h_act(acc + bias[n], act);
        if (has_res) v += __half2float(R[(long long)m * N + n]);
        if constexpr (sizeof(OutT) == 2) C[(long long)m * N + n] = __float2half_rn(v);
        else C[(long long)m * N + n] = v;
    }
}

extern "C" __global__ void __launch_bounds__(256)
hgemm_v1(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
         const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act, int has_res) {
    hgemm_v1_body<__half>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hgemm_v1_f32(const __half* __restrict__ A, const __half* __restrict__ B, float* __restrict__ C,
             const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act, int has_res) {
    hgemm_v1_body<float>(A, B, C, bias, R, M, N, K, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// hgemm v2: mma.sync m16n8k16, ldmatrix, cp.async ring of STAGES k-tiles of 32.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

__device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, const uint32_t* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// offset (in halves) of 16-byte chunk c (0..3) of row r in a [rows][32] swizzled tile
__device__ __forceinline__ int swz(int r, int c) { return r * 32 + ((c ^ ((r >> 1) & 3)) << 3); }

template <int BM, int BN, int WM, int WN, int STAGES, typename OutT, bool SMEM_EPI = false>
__device__ __forceinline__ void hgemm_mma_body(const __half* __restrict__ A, const __half* __restrict__ B,
                                               OutT* __restrict__ C, const float* __restrict__ bias,
                                               const __half* __restrict__ R, int M, int N, int K, int act,
                                               int has_res) {
    constexpr int NT = WM * WN * 32;
    constexpr int TM = BM / WM, TN = BN / WN;
    constexpr int MI = TM / 16, NI = TN / 8;
    static_assert(TM % 16 == 0 && TN % 16 == 0, "warp tile must be a multiple of 16x16");
    constexpr int LDC = BN + 8;  // staged output tile row stride (halves): conflict-free fragment stores
    constexpr int SMEM_HALVES = STAGES * (BM + BN) * 32 > BM * LDC ? STAGES * (BM + BN) * 32 : BM * LDC;
    __shared__ __align__(128) __half smem[SMEM_HALVES];
    __half* const sA0 = smem;                     // [STAGES][BM * 32]
    __half* const sB0 = smem + STAGES * BM * 32;  // [STAGES][BN * 32]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / WN, wn = warp % WN;
    const int tiles_n = (N + BN - 1) / BN;
    const int m0 = (blockIdx.x / tiles_n) * BM, n0 = (blockIdx.x % tiles_n) * BN;
    const int KT = (K + 31) / 32;

    auto load_tile = [&](int stage, int kt) {
        const int k0 = kt * 32;
#pragma unroll
        for (int i = tid; i < BM * 4; i += NT) {
            const int r = i >> 2, c = i & 3, gr = m0 + r, gk = k0 + c * 8;
            const bool ok = gr < M && gk < K;
            const __half* src = ok ? A + (long long)gr * K + gk : A;
            cp_async16(smem_u32(sA0 + stage * BM * 32 + swz(r, c)), src, ok ? 16 : 0);
        }
#pragma unroll
        for (int i = tid; i < BN * 4; i += NT) {
            const int r = i >> 2, c = i & 3, gr = n0 + r, gk = k0 + c * 8;
            const bool ok = gr < N && gk < K;
            const __half* src = ok ? B + (long long)gr * K + gk : B;
            cp_async16(smem_u32(sB0 + stage * BN * 32 + swz(r, c)), src, ok ? 16 : 0);
        }
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < KT) load_tile(s, s);
        cp_async_commit();
    }

    for (int kt = 0; kt < KT; ++kt) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();  // tile kt landed for every thread; the stage read at kt-1 is free
        {
            const int nk = kt + STAGES - 1;
            if (nk < KT) load_tile(nk % STAGES, nk);
            cp_async_commit();
        }
        const __half* a_s = sA0 + (kt % STAGES) * BM * 32;
        const __half* b_s = sB0 + (kt % STAGES) * BN * 32;
#pragma unroll
        for (int ks = 0; ks < 2; ++ks) {
            uint32_t af[MI][4], bf[NI][2];
#pragma unroll
            for (int mi = 0; mi < MI; ++mi) {
                const int r = wm * TM + mi * 16 + (lane & 15);
                const int c = ks * 2 + (lane >> 4);
                ldmatrix_x4(smem_u32(a_s + swz(r, c)), af[mi][0], af[mi][1], af[mi][2], af[mi][3]);
            }
#pragma unroll
            for (int nj = 0; nj < NI / 2; ++nj) {
                const int r = wn * TN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
                const int c = ks * 2 + ((lane >> 3) & 1);
                ldmatrix_x4(smem_u32(b_s + swz(r, c)), bf[2 * nj][0], bf[2 * nj][1], bf[2 * nj + 1][0],
                            bf[2 * nj + 1][1]);
            }
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) mma_16816(acc[mi][ni], af[mi], bf[ni]);
        }
    }
    cp_async_wait<0>();

    if constexpr (SMEM_EPI && sizeof(OutT) == 2) {
        // v3: bias + ReLU6 into a half tile in shared memory, then whole 16-byte chunks per thread:
        // coalesced residual reads and output writes (full 128-byte lines) instead of 4-byte half2
        // stores spread over 8 rows per warp instruction.
        __syncthreads();  // every warp is done with the operand tiles
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
            const int cl = wn * TN + ni * 8 + (lane & 3) * 2;
            const int col = n0 + cl;
            const float b0 = col < N ? bias[col] : 0.0f, b1 = col < N ? bias[col + 1] : 0.0f;
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                for (int hh = 0; hh < 2; ++hh) {
                    const int rl = wm * TM + mi * 16 + (lane >> 2) + hh * 8;
                    *reinterpret_cast<__half2*>(smem + rl * LDC + cl) = __floats2half2_rn(
                        h_act(acc[mi][ni][2 * hh] + b0, act), h_act(acc[mi][ni][2 * hh + 1] + b1, act));
                }
        }
        __syncthreads();
        constexpr int CH = BN / 8;
#pragma unroll 4
        for (int i = tid; i < BM * CH; i += NT) {
            const int rl = i / CH, cl = (i % CH) * 8;
            const int row = m0 + rl, col = n0 + cl;
            if (row >= M || col >= N) continue;
            uint4 v = *reinterpret_cast<const uint4*>(smem + rl * LDC + cl);
            const long long o = (long long)row * N + col;
            if (has_res) {
                float f[8], r[8];
                h8_to_f(v, f);
                h8_to_f(*reinterpret_cast<const uint4*>(R + o), r);
#pragma unroll
                for (int q = 0; q < 8; ++q) f[q] += r[q];
                v = f_to_h8(f);
            }
            *reinterpret_cast<uint4*>(C + o) = v;
        }
    } else {
    // v2: epilogue straight from the accumulator fragments: c0,c1 at (row g, cols 2q, 2q+1), c2,c3 at row g+8
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
        const int col = n0 + wn * TN + ni * 8 + (lane & 3) * 2;
        if (col >= N) continue;  // N % 8 == 0: col + 1 < N too
        const float b0 = bias[col], b1 = bias[col + 1];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
                const int row = m0 + wm * TM + mi * 16 + (lane >> 2) + hh * 8;
                if (row >= M) continue;
                float v0 = h_act(acc[mi][ni][2 * hh] + b0, act);
                float v1 = h_act(acc[mi][ni][2 * hh + 1] + b1, act);
                const long long o = (long long)row * N + col;
                if (has_res) {
                    const float2 r = __half22float2(*reinterpret_cast<const __half2*>(R + o));
                    v0 += r.x;
                    v1 += r.y;
                }
                if constexpr (sizeof(OutT) == 2) {
                    *reinterpret_cast<__half2*>(C + o) = __floats2half2_rn(v0, v1);
                } else {
                    *reinterpret_cast<float2*>(C + o) = make_float2(v0, v1);
                }
            }
        }
    }
    }
}

// One extern "C" kernel per tile shape (plain names for the host; no macro so signatures stay greppable).
// Name: hgemm_v2_<BM>x<BN>[_f32]; warps WM x WN and STAGES in the comment.
// 128x128: 2x4 warps (64x32 each), 3 stages, 48 KB
extern "C" __global__ void __launch_bounds__(256)
hgemm_v2_128x128(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                 const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                 int has_res) {
    hgemm_mma_body<128, 128, 2, 4, 3, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// 128x64: 2x2 warps (64x32), 4 stages, 48 KB
extern "C" __global__ void __launch_bounds__(128)
hgemm_v2_128x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                int has_res) {
    hgemm_mma_body<128, 64, 2, 2, 4, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// 64x128: 2x2 warps (32x64), 4 stages, 48 KB
extern "C" __global__ void __launch_bounds__(128)
hgemm_v2_64x128(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                int has_res) {
    hgemm_mma_body<64, 128, 2, 2, 4, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// 64x64: 2x2 warps (32x32), 4 stages, 32 KB
extern "C" __global__ void __launch_bounds__(128)
hgemm_v2_64x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
               int has_res) {
    hgemm_mma_body<64, 64, 2, 2, 4, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// 128x32: 4x1 warps (32x32), 4 stages, 40 KB (the narrow projections: Cout 16, 24, 32)
extern "C" __global__ void __launch_bounds__(128)
hgemm_v2_128x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                int has_res) {
    hgemm_mma_body<128, 32, 4, 1, 4, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// 64x32: 2x1 warps (32x32), 4 stages, 24 KB
extern "C" __global__ void __launch_bounds__(64)
hgemm_v2_64x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
               int has_res) {
    hgemm_mma_body<64, 32, 2, 1, 4, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// 32x32: 2x1 warps (16x32), 4 stages, 16 KB (batch 1 at 7x7 / 14x14: more blocks)
extern "C" __global__ void __launch_bounds__(64)
hgemm_v2_32x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
               int has_res) {
    hgemm_mma_body<32, 32, 2, 1, 4, __half>(A, B, C, bias, R, M, N, K, act, has_res);
}

// hgemm v3: the same tiles with the shared-memory staged epilogue (16-byte coalesced stores)
extern "C" __global__ void __launch_bounds__(256)
hgemm_v3_128x128(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                 const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                 int has_res) {
    hgemm_mma_body<128, 128, 2, 4, 3, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v3_128x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                int has_res) {
    hgemm_mma_body<128, 64, 2, 2, 4, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v3_64x128(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                int has_res) {
    hgemm_mma_body<64, 128, 2, 2, 4, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v3_64x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
               int has_res) {
    hgemm_mma_body<64, 64, 2, 2, 4, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v3_128x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                int has_res) {
    hgemm_mma_body<128, 32, 4, 1, 4, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(64)
hgemm_v3_64x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
               int has_res) {
    hgemm_mma_body<64, 32, 2, 1, 4, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(64)
hgemm_v3_32x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
               int has_res) {
    hgemm_mma_body<32, 32, 2, 1, 4, __half, true>(A, B, C, bias, R, M, N, K, act, has_res);
}

// fp32 output (the classifier above batch 8): 64x64, 32x32
extern "C" __global__ void __launch_bounds__(128)
hgemm_v2_64x64_f32(const __half* __restrict__ A, const __half* __restrict__ B, float* __restrict__ C,
                   const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                   int has_res) {
    hgemm_mma_body<64, 64, 2, 2, 4, float>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(64)
hgemm_v2_32x32_f32(const __half* __restrict__ A, const __half* __restrict__ B, float* __restrict__ C,
                   const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                   int has_res) {
    hgemm_mma_body<32, 32, 2, 1, 4, float>(A, B, C, bias, R, M, N, K, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// depthwise 3x3, weights (9, C) half, bias fp32.
extern "C" __global__ void __launch_bounds__(256)
hdw3_v1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
        const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo, int s,
        int pad, int act, int has_res) {
    const long long total = (long long)N * Ho * Wo * C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int c = (int)(i % C);
        long long t = i / C;
        const int wo = (int)(t % Wo);
        t /= Wo;
        const int ho = (int)(t % Ho);
        const int n = (int)(t / Ho);
        float acc = bias[c];
#pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const int hi = ho * s - pad + ky;
            if (hi < 0 || hi >= H) continue;
#pragma unroll
            for (int kx = 0; kx < 3; ++kx) {
                const int wi = wo * s - pad + kx;
                if (wi < 0 || wi >= W) continue;
                acc = fmaf(__half2float(x[(((long long)n * H + hi) * W + wi) * C + c]),
                           __half2float(w[(ky * 3 + kx) * C + c]), acc);
            }
        }
        float v = h_act(acc, act);
        if (has_res) v += __half2float(R[i]);
        y[i] = __float2half_rn(v);
    }
}

// 8 channels x TW outputs along W per thread; threads ordered (n, ho, wo strip, channel group) with the
// channel group fastest (a warp's 16-byte loads are contiguous).
template <int S, int TW>
__device__ __forceinline__ void hdw3_v2_body(const __half* __restrict__ x, const __half* __restrict__ w,
                                             const float* __restrict__ bias, const __half* __restrict__ R,
                                             __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                                             int pad, int act, int has_res) {
    constexpr int IW = (TW - 1) * S + 3;
    const int C8 = C >> 3;
    const int strips = (Wo + TW - 1) / TW;
    const long long total = (long long)N * Ho * strips * C8;
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int cg = (int)(i % C8);
    long long t = i / C8;
    const int st = (int)(t % strips);
    t /= strips;
    const int ho = (int)(t % Ho);
    const int n = (int)(t / Ho);
    const int c = cg * 8;
    const int wo0 = st * TW;

    float acc[TW][8];
    {
        const float4 b0 = *reinterpret_cast<const float4*>(bias + c);
        const float4 b1 = *reinterpret_cast<const float4*>(bias + c + 4);
#pragma unroll
        for (int o = 0; o < TW; ++o) {
            acc[o][0] = b0.x, acc[o][1] = b0.y, acc[o][2] = b0.z, acc[o][3] = b0.w;
            acc[o][4] = b1.x, acc[o][5] = b1.y, acc[o][6] = b1.z, acc[o][7] = b1.w;
        }
    }
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        const int hi = ho * S - pad + ky;
        if (hi < 0 || hi >= H) continue;
        float wk[3][8];
#pragma unroll
        for (int kx = 0; kx < 3; ++kx) h8_to_f(__ldg(reinterpret_cast<const uint4*>(w + (ky * 3 + kx) * C + c)), wk[kx]);
        const __half* row = x + ((long long)n * H + hi) * W * C + c;
#pragma unroll
        for (int j = 0; j < IW; ++j) {
            const int wi = wo0 * S - pad + j;
            float xv[8];
            h8_to_f((wi >= 0 && wi < W) ? __ldg(reinterpret_cast<const uint4*>(row + (long long)wi * C))
                                        : make_uint4(0u, 0u, 0u, 0u),
                    xv);
#pragma unroll
            for (int o = 0; o < TW; ++o) {
                const int kx = j - o * S;  // compile-time after unrolling
                if (kx >= 0 && kx <= 2) {
#pragma unroll
                    for (int q = 0; q < 8; ++q) acc[o][q] = fmaf(xv[q], wk[kx][q], acc[o][q]);
                }
            }
        }
    }
#pragma unroll
    for (int o = 0; o < TW; ++o) {
        const int wo = wo0 + o;
        if (wo >= Wo) break;
        const long long off = (((long long)n * Ho + ho) * Wo + wo) * C + c;
        float v[8];
#pragma unroll
        for (int q = 0; q < 8; ++q) v[q] = h_act(acc[o][q], act);
        if (has_res) {
            float r[8];
            h8_to_f(*reinterpret_cast<const uint4*>(R + off), r);
#pragma unroll
            for (int q = 0; q < 8; ++q) v[q] += r[q];
        }
        *reinterpret_cast<uint4*>(y + off) = f_to_h8(v);
    }
}

extern "C" __global__ void __launch_bounds__(256)
hdw3_v2_s1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
           const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo, int pad,
           int act, int has_res) {
    hdw3_v2_body<1, 4>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hdw3_v2_s1_tw1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
               const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
               int pad, int act, int has_res) {
    hdw3_v2_body<1, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hdw3_v2_s2(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
           const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo, int pad,
           int act, int has_res) {
    hdw3_v2_body<2, 2>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hdw3_v2_s2_tw1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
               const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
               int pad, int act, int has_res) {
    hdw3_v2_body<2, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// stem v1: direct conv, any k / stride / pad / Cin (groups = 1); weights (k*k*Cin, Cout) fp32, rows (ky, kx, ci).
template <bool NCHW_F32, typename InT>
__device__ __forceinline__ void hconv_direct_body(const InT* __restrict__ x, const float* __restrict__ w,
                                                  const float* __restrict__ bias, const __half* __restrict__ R,
                                                  __half* __restrict__ y, int N, int H, int W, int Cin, int Ho,
                                                  int Wo, int Cout, int k, int s, int pad, int act, int has_res) {
    const long long total = (long long)N * Ho * Wo * Cout;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int co = (int)(i % Cout);
        long long t = i / Cout;
        const int wo = (int)(t % Wo);
        t /= Wo;
        const int ho = (int)(t % Ho);
        const int n = (int)(t / Ho);
        float acc = bias[co];
        for (int ky = 0; ky < k; ++ky) {
            const int hi = ho * s - pad + ky;
            if (hi < 0 || hi >= H) continue;
            for (int kx = 0; kx < k; ++kx) {
                const int wi = wo * s - pad + kx;
                if (wi < 0 || wi >= W) continue;
                for (int ci = 0; ci < Cin; ++ci) {
                    float xv;
                    if constexpr (NCHW_F32) xv = x[(((long long)n * Cin + ci) * H + hi) * W + wi];
                    else xv = __half2float(x[(((long long)n * H + hi) * W + wi) * Cin + ci]);
                    acc = fmaf(xv, w[((ky * k + kx) * Cin + ci) * Cout + co], acc);
                }
            }
        }
        float v = h_act(acc, act);
        if (has_res) v += __half2float(R[i]);
        y[i] = __float2half_rn(v);
    }
}

extern "C" __global__ void __launch_bounds__(256)
hconv_direct_nhwc(const __half* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                  const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int Cin, int Ho, int Wo,
                  int Cout, int k, int s, int pad, int act, int has_res) {
    hconv_direct_body<false, __half>(x, w, bias, R, y, N, H, W, Cin, Ho, Wo, Cout, k, s, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hconv_direct_nchw32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                    const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int Cin, int Ho,
                    int Wo, int Cout, int k, int s, int pad, int act, int has_res) {
    hconv_direct_body<true, float>(x, w, bias, R, y, N, H, W, Cin, Ho, Wo, Cout, k, s, pad, act, has_res);
}

// stem v2: 3x3 on 3 channels, fp32 NCHW input, 8 output channels per thread (Cout % 8 == 0),
// weights (27, Cout) fp32 in dynamic shared memory (27 * Cout * 4 bytes).
// ALL_COUT (v3): one thread per output pixel computes every group of 8 output channels from the same
// 27 registers (v2: one thread per (pixel, group): the 27 input loads repeated Cout / 8 times).
// NHWC16 (hstem v5, the op on its own: conv2d with a half NHWC input): x is half NHWC (N, H, W, 3); the same 27
// values in the same order, so the sums are those of the NCHW path on the same (half) input values.
template <bool ALL_COUT, bool NHWC16 = false, typename TI = float>
__device__ __forceinline__ void hstem_body(const TI* __restrict__ x, const float* __restrict__ w,
                                           const float* __restrict__ bias, const __half* __restrict__ R,
                                           __half* __restrict__ y, int N, int H, int W, int Ho, int Wo, int Cout,
                                           int s, int pad, int act, int has_res) {
    extern __shared__ float sw[];
    for (int i = threadIdx.x; i < 27 * Cout; i += blockDim.x) sw[i] = w[i];
    __syncthreads();
    const int G = Cout >> 3;
    const int GT = ALL_COUT ? 1 : G;  // groups across threads
    const long long total = (long long)N * Ho * Wo * GT;
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= total) return;
    const int g0 = ALL_COUT ? 0 : (int)(i % GT);
    long long t = i / GT;
    const int wo = (int)(t % Wo);
    t /= Wo;
    const int ho = (int)(t % Ho);
    const int n = (int)(t / Ho);
    float xin[27];
    if constexpr (NHWC16) {
#pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const int hi = ho * s - pad + ky;
#pragma unroll
            for (int kx = 0; kx < 3; ++kx) {
                const int wi = wo * s - pad + kx;
                const bool in = hi >= 0 && hi < H && wi >= 0 && wi < W;
                const TI* px = x + (((long long)n * H + hi) * W + wi) * 3;
#pragma unroll
                for (int ci = 0; ci < 3; ++ci) xin[(ky * 3 + kx) * 3 + ci] = in ? __half2float(px[ci]) : 0.0f;
            }
        }
    } else {
#pragma unroll
        for (int ci = 0; ci < 3; ++ci) {
            const TI* plane = x + ((long long)n * 3 + ci) * H * W;
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int hi = ho * s - pad + ky;
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
                    const int wi = wo * s - pad + kx;
                    xin[(ky * 3 + kx) * 3 + ci] =
                        (hi >= 0 && hi < H && wi >= 0 && wi < W) ? __ldg(plane + (long long)hi * W + wi) : 0.0f;
                }
            }
        }
    }
    for (int g = g0; g < (ALL_COUT ? G : g0 + 1); ++g) {
    const int c = g * 8;
    float acc[8];
    {
        const float4 b0 = *reinterpret_cast<const float4*>(bias + c);
        const float4 b1 = *reinterpret_cast<const float4*>(bias + c + 4);
        acc[0] = b0.x, acc[1] = b0.y, acc[2] = b0.z, acc[3] = b0.w;
        acc[4] = b1.x, acc[5] = b1.y, acc[6] = b1.z, acc[7] = b1.w;
    }
#pragma unroll
    for (int r = 0; r < 27; ++r) {
        const float4 w0 = *reinterpret_cast<const float4*>(sw + r * Cout + c);
        const float4 w1 = *reinterpret_cast<const float4*>(sw + r * Cout + c + 4);
        acc[0] = fmaf(xin[r], w0.x, acc[0]);
        acc[1] = fmaf(xin[r], w0.y, acc[1]);
        acc[2] = fmaf(xin[r], w0.z, acc[2]);
        acc[3] = fmaf(xin[r], w0.w, acc[3]);
        acc[4] = fmaf(xin[r], w1.x, acc[4]);
        acc[5] = fmaf(xin[r], w1.y, acc[5]);
        acc[6] = fmaf(xin[r], w1.z, acc[6]);
        acc[7] = fmaf(xin[r], w1.w, acc[7]);
    }
    const long long off = (((long long)n * Ho + ho) * Wo + wo) * Cout + c;
#pragma unroll
    for (int q = 0; q < 8; ++q) acc[q] = h_act(acc[q], act);
    if (has_res) {
        float r[8];
        h8_to_f(*reinterpret_cast<const uint4*>(R + off), r);
#pragma unroll
        for (int q = 0; q < 8; ++q) acc[q] += r[q];
    }
    *reinterpret_cast<uint4*>(y + off) = f_to_h8(acc);
    }
}

extern "C" __global__ void __launch_bounds__(256)
hstem3x3c3_nchw32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                  const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int Ho, int Wo,
                  int Cout, int s, int pad, int act, int has_res) {
    hstem_body<false>(x, w, bias, R, y, N, H, W, Ho, Wo, Cout, s, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hstem3x3c3_v3_nchw32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                     const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int Ho, int Wo,
                     int Cout, int s, int pad, int act, int has_res) {
    hstem_body<true>(x, w, bias, R, y, N, H, W, Ho, Wo, Cout, s, pad, act, has_res);
}

// hstem v5: v3's kernel on a half NHWC input (the stem as an op on its own; the network plan's stem reads fp32 NCHW)
extern "C" __global__ void __launch_bounds__(256)
hstem3x3c3_v3_nhwc16(const __half* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                     const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int Ho, int Wo,
                     int Cout, int s, int pad, int act, int has_res) {
    hstem_body<true, true, __half>(x, w, bias, R, y, N, H, W, Ho, Wo, Cout, s, pad, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// global average pool, NHWC half (N, HW, C) -> half (N, C); grid (ceil(C/128), N), block 128.
extern "C" __global__ void __launch_bounds__(128)
hpool_v1(const __half* __restrict__ x, __half* __restrict__ y, int HW, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x, n = blockIdx.y;
    if (c >= C) return;
    const __half* p = x + (long long)n * HW * C + c;
    float s = 0.0f;
    for (int i = 0; i < HW; ++i) s += __half2float(p[(long long)i * C]);
    y[(long long)n * C + c] = __float2half_rn(s / (float)HW);
}

// ---------------------------------------------------------------------------------------------
// classifier GEMV (batch N <= 8): y (N, OUT) fp32 = x (N, IN) half @ W (OUT, IN)^T half + bias fp32.
constexpr int HGEMV_MAX_BATCH = 8;

extern "C" __global__ void __launch_bounds__(256)
hlinear_gemv(const __half* __restrict__ x, const __half* __restrict__ W, const float* __restrict__ bias,
             float* __restrict__ y, int N, int IN, int OUT, int vec) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= OUT) return;
    const __half* wr = W + (long long)warp * IN;
    float acc[HGEMV_MAX_BATCH];
#pragma unroll
    for (int b = 0; b < HGEMV_MAX_BATCH; ++b) acc[b] = 0.0f;
    if (vec) {  // IN % 8 == 0 and 16-byte aligned rows
        for (int k8 = lane; k8 < IN / 8; k8 += 32) {
            float wv[8];
            h8_to_f(__ldg(reinterpret_cast<const uint4*>(wr) + k8), wv);
#pragma unroll
            for (int b = 0; b < HGEMV_MAX_BATCH; ++b) {
                if (b < N) {
                    float xv[8];
                    h8_to_f(__ldg(reinterpret_cast<const uint4*>(x + (long long)b * IN) + k8), xv);
#pragma unroll
                    for (int q = 0; q < 8; ++q) acc[b] = fmaf(wv[q], xv[q], acc[b]);
                }
            }
        }
    } else {
        for (int k = lane; k < IN; k += 32) {
            const float wv = __half2float(wr[k]);
#pragma unroll
            for (int b = 0; b < HGEMV_MAX_BATCH; ++b)
                if (b < N) acc[b] = fmaf(wv, __half2float(x[(long long)b * IN + k]), acc[b]);
        }
    }
#pragma unroll
    for (int b = 0; b < HGEMV_MAX_BATCH; ++b) {
        float s = acc[b];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && b < N) y[(long long)b * OUT + warp] = s + bias[warp];
    }
}

// =============================================================================================
// BEGIN hdepthwise v3 / hstem v4 block (appended; host: impls/_custom_fp16.py `_h_dw_launch`,
// `_h_conv_launches`; results/NOTES.md "hdepthwise v3").
//
// hdepthwise v3: 8 channels (one 16-byte load) x TW outputs along W x TH outputs along H per thread;
// the whole ((TH-1)*S+3) x ((TW-1)*S+3) input window is loaded up front from clamped addresses, with no
// branch between the loads (v2 branched per input row on the padding test, so a thread waited for one
// row's loads before it issued the next row's: three dependent memory round trips), out-of-range taps
// zeroed by a select, window kept packed (4 registers per column) and converted to fp32 per use; fp32
// math, + bias, ReLU6, + residual, one 16-byte store per output. Instances hdw3_v3_s<S>_w<TW>h<TH>;
// the host picks the largest tile that still gives the GPU enough threads (small maps: w1h1).
// hdepthwise v3 / v4: a thread's (image n, first output row ho0 / column wo0, channels c .. c + 7) and its whole
// ((TH-1)*S+3) x ((TW-1)*S+3) input window, loaded up front from clamped addresses with no branch between the
// loads, out-of-range taps zeroed by a select; false when the thread has no work
template <int S, int TW, int TH>
__device__ __forceinline__ bool hdw3_window(const __half* __restrict__ x, int N, int H, int W, int C, int Ho, int Wo,
                                            int pad, uint4 (&xv)[(TH - 1) * S + 3][(TW - 1) * S + 3], int& n, int& c,
                                            int& ho0, int& wo0) {
    constexpr int IW = (TW - 1) * S + 3;
    constexpr int IH = (TH - 1) * S + 3;
    const int C8 = C >> 3;
    const int wstrips = (Wo + TW - 1) / TW;
    const int hstrips = (Ho + TH - 1) / TH;
    const long long total = (long long)N * hstrips * wstrips * C8;
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= total) return false;
    const int cg = (int)(i % C8);
    long long t = i / C8;
    const int ws = (int)(t % wstrips);
    t /= wstrips;
    const int hs = (int)(t % hstrips);
    n = (int)(t / hstrips);
    c = cg * 8;
    wo0 = ws * TW, ho0 = hs * TH;
    const int wi0 = wo0 * S - pad, hi0 = ho0 * S - pad;
    const __half* img = x + (long long)n * H * W * C + c;
#pragma unroll
    for (int r = 0; r < IH; ++r) {
        const int hi = hi0 + r;
        const bool rok = hi >= 0 && hi < H;
        const __half* row = img + (long long)min(max(hi, 0), H - 1) * W * C;
#pragma unroll
        for (int j = 0; j < IW; ++j) {
            const int wi = wi0 + j;
            const bool ok = rok && wi >= 0 && wi < W;
            const uint4 v = __ldg(reinterpret_cast<const uint4*>(row + (long long)min(max(wi, 0), W - 1) * C));
            xv[r][j] = ok ? v : make_uint4(0u, 0u, 0u, 0u);
        }
    }
    return true;
}

template <int S, int TW, int TH>
__device__ __forceinline__ void hdw3_v3_body(const __half* __restrict__ x, const __half* __restrict__ w,
                                             const float* __restrict__ bias, const __half* __restrict__ R,
                                             __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                                             int pad, int act, int has_res) {
    constexpr int IW = (TW - 1) * S + 3;
    constexpr int IH = (TH - 1) * S + 3;
    int n, c, ho0, wo0;
    uint4 xv[IH][IW];
    if (!hdw3_window<S, TW, TH>(x, N, H, W, C, Ho, Wo, pad, xv, n, c, ho0, wo0)) return;
    float acc[TH][TW][8];
    {
        const float4 b0 = __ldg(reinterpret_cast<const float4*>(bias + c));
        const float4 b1 = __ldg(reinterpret_cast<const float4*>(bias + c + 4));
#pragma unroll
        for (int a = 0; a < TH; ++a)
#pragma unroll
            for (int o = 0; o < TW; ++o) {
                acc[a][o][0] = b0.x, acc[a][o][1] = b0.y, acc[a][o][2] = b0.z, acc[a][o][3] = b0.w;
                acc[a][o][4] = b1.x, acc[a][o][5] = b1.y, acc[a][o][6] = b1.z, acc[a][o][7] = b1.w;
            }
    }
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        float wk[3][8];
#pragma unroll
        for (int kx = 0; kx < 3; ++kx) h8_to_f(__ldg(reinterpret_cast<const uint4*>(w + (ky * 3 + kx) * C + c)), wk[kx]);
#pragma unroll
        for (int a = 0; a < TH; ++a) {
            const int r = a * S + ky;
#pragma unroll
            for (int j = 0; j < IW; ++j) {
                float f[8];
                h8_to_f(xv[r][j], f);
#pragma unroll
                for (int o = 0; o < TW; ++o) {
                    const int kx = j - o * S;  // compile-time after unrolling
                    if (kx >= 0 && kx <= 2) {
#pragma unroll
                        for (int q = 0; q < 8; ++q) acc[a][o][q] = fmaf(f[q], wk[kx][q], acc[a][o][q]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int a = 0; a < TH; ++a) {
        const int ho = ho0 + a;
        if (ho >= Ho) break;
#pragma unroll
        for (int o = 0; o < TW; ++o) {
            const int wo = wo0 + o;
            if (wo >= Wo) break;
            const long long off = (((long long)n * Ho + ho) * Wo + wo) * C + c;
            float v[8];
#pragma unroll
            for (int q = 0; q < 8; ++q) v[q] = h_act(acc[a][o][q], act);
            if (has_res) {
                float rr[8];
                h8_to_f(*reinterpret_cast<const uint4*>(R + off), rr);
#pragma unroll
                for (int q = 0; q < 8; ++q) v[q] += rr[q];
            }
            *reinterpret_cast<uint4*>(y + off) = f_to_h8(v);
        }
    }
}

// One extern "C" kernel per (stride, TW, TH); signature as hdw3_v2_*.
extern "C" __global__ void __launch_bounds__(256)
hdw3_v3_s1_w1h1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<1, 1, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hdw3_v3_s1_w2h1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<1, 2, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256, 2)
hdw3_v3_s1_w4h1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<1, 4, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256, 2)
hdw3_v3_s1_w2h2(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<1, 2, 2>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
hdw3_v3_s2_w1h1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<2, 1, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256, 2)
hdw3_v3_s2_w2h1(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<2, 2, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256, 2)
hdw3_v3_s2_w1h2(const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,
                const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                int pad, int act, int has_res) {
    hdw3_v3_body<2, 1, 2>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

// hdepthwise v4: v3's tiles and loads with half2 arithmetic (HFMA2). ncu of v3 at batch 256 (results/h100/
// ncu_custom_fp16_bs256.md): 45-60% of DRAM peak, 22.6% occupancy; per tap and 8 channels v3 issues 8 FFMA + 8
// half->float conversions and keeps TH x TW x 8 fp32 accumulators (w2h2: ~100 registers). v4 keeps the window
// packed and multiplies it as it is: 4 HFMA2 per tap and 8 channels, TH x TW x 4 half2 accumulators, weights
// 3 x uint4 per kernel row. The sum (bias first, taps in (ky, kx) order) is rounded to half at each step
// instead of once at the end: ~1e-3 relative error on a 9-tap sum, inside the fp16 per-layer tolerance.
// ReLU6 and the residual add in half2 too. Same instances and host tile choice as v3 (hdw3_v4_s<S>_w<TW>h<TH>).
template <int S, int TW, int TH>
__device__ __forceinline__ void hdw3_v4_body(const __half* __restrict__ x, const __half* __restrict__ w,
                                             const float* __restrict__ bias, const __half* __restrict__ R,
                                             __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                                             int pad, int act, int has_res) {
    constexpr int IW = (TW - 1) * S + 3;
    constexpr int IH = (TH - 1) * S + 3;
    int n, c, ho0, wo0;
    uint4 xv[IH][IW];
    if (!hdw3_window<S, TW, TH>(x, N, H, W, C, Ho, Wo, pad, xv, n, c, ho0, wo0)) return;
    __half2 acc[TH][TW][4];
    {
        const float4 b0 = __ldg(reinterpret_cast<const float4*>(bias + c));
        const float4 b1 = __ldg(reinterpret_cast<const float4*>(bias + c + 4));
        const __half2 bh[4] = {__floats2half2_rn(b0.x, b0.y), __floats2half2_rn(b0.z, b0.w),
                               __floats2half2_rn(b1.x, b1.y), __floats2half2_rn(b1.z, b1.w)};
#pragma unroll
        for (int a = 0; a < TH; ++a)
#pragma unroll
            for (int o = 0; o < TW; ++o)
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[a][o][q] = bh[q];
    }
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        uint4 wk[3];
#pragma unroll
        for (int kx = 0; kx < 3; ++kx) wk[kx] = __ldg(reinterpret_cast<const uint4*>(w + (ky * 3 + kx) * C + c));
#pragma unroll
        for (int a = 0; a < TH; ++a) {
            const int r = a * S + ky;
#pragma unroll
            for (int j = 0; j < IW; ++j) {
                const __half2* xh = reinterpret_cast<const __half2*>(&xv[r][j]);
#pragma unroll
                for (int o = 0; o < TW; ++o) {
                    const int kx = j - o * S;  // compile-time after unrolling
                    if (kx >= 0 && kx <= 2) {
                        const __half2* wh = reinterpret_cast<const __half2*>(&wk[kx]);
#pragma unroll
                        for (int q = 0; q < 4; ++q) acc[a][o][q] = __hfma2(xh[q], wh[q], acc[a][o][q]);
                    }
                }
            }
        }
    }
    const __half2 zero2 = __float2half2_rn(0.0f), six2 = __float2half2_rn(6.0f);
#pragma unroll
    for (int a = 0; a < TH; ++a) {
        const int ho = ho0 + a;
        if (ho >= Ho) break;
#pragma unroll
        for (int o = 0; o < TW; ++o) {
            const int wo = wo0 + o;
            if (wo >= Wo) break;
            const long long off = (((long long)n * Ho + ho) * Wo + wo) * C + c;
            uint4 out;
            __half2* oh = reinterpret_cast<__half2*>(&out);
#pragma unroll
            for (int q = 0; q < 4; ++q) oh[q] = act ? __hmin2(__hmax2(acc[a][o][q], zero2), six2) : acc[a][o][q];
            if (has_res) {
                const uint4 rv = *reinterpret_cast<const uint4*>(R + off);
                const __half2* rh = reinterpret_cast<const __half2*>(&rv);
#pragma unroll
                for (int q = 0; q < 4; ++q) oh[q] = __hadd2(oh[q], rh[q]);
            }
            *reinterpret_cast<uint4*>(y + off) = out;
        }
    }
}

#define HDW3_V4_KERNEL(S, TW, TH)                                                                                \
    extern "C" __global__ void __launch_bounds__(256) hdw3_v4_s##S##_w##TW##h##TH(                             \
        const __half* __restrict__ x, const __half* __restrict__ w, const float* __restrict__ bias,             \
        const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo, int pad, \
        int act, int has_res) {                                                                                  \
        hdw3_v4_body<S, TW, TH>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);                        \
    }
HDW3_V4_KERNEL(1, 4, 1)
HDW3_V4_KERNEL(1, 2, 2)
HDW3_V4_KERNEL(1, 2, 1)
HDW3_V4_KERNEL(1, 1, 1)
HDW3_V4_KERNEL(2, 2, 1)
HDW3_V4_KERNEL(2, 1, 2)
HDW3_V4_KERNEL(2, 1, 1)

// hstem v4: hstem v3 (one thread per output pixel, every output channel from the same 27 inputs, fp32
// NCHW input) with (a) the output staged through shared memory so that the block writes its contiguous
// blockDim x Cout halves with consecutive 16-byte stores (v3: each thread wrote Cout/8 16-byte chunks at
// a 2*Cout-byte stride: 4 half-filled sectors per store instruction), chunk (pixel p, group g) at
// p*G + (g + p) % G (rotation against bank conflicts), and (b) for stride 2, pad 1, even W the kx = 1, 2
// taps as one float2 load (18 loads instead of 27). Dynamic shared memory: 27*Cout*4 (weights) +
// blockDim*Cout*2 (staging) bytes; host: Cout % 8 == 0 and the total within 48 KB (else v3).
extern "C" __global__ void __launch_bounds__(256)
hstem3x3c3_v4_nchw32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                     const __half* __restrict__ R, __half* __restrict__ y, int N, int H, int W, int Ho, int Wo,
                     int Cout, int s, int pad, int act, int has_res) {
    extern __shared__ __align__(16) float sw4[];
    uint4* stage = reinterpret_cast<uint4*>(sw4 + 27 * Cout);  // 27 * Cout * 4 is a multiple of 16 (Cout % 8 == 0)
    for (int k = threadIdx.x; k < 27 * Cout; k += blockDim.x) sw4[k] = w[k];
    __syncthreads();
    const int G = Cout >> 3;
    const long long total = (long long)N * Ho * Wo;
    const long long p0 = (long long)blockIdx.x * blockDim.x;
    const long long i = p0 + threadIdx.x;
    if (i < total) {
        const int wo = (int)(i % Wo);
        const long long t = i / Wo;
        const int ho = (int)(t % Ho);
        const int n = (int)(t / Ho);
        float xin[27];
        const bool pair = s == 2 && pad == 1 && (W & 1) == 0;  // uniform
#pragma unroll
        for (int ci = 0; ci < 3; ++ci) {
            const float* plane = x + ((long long)n * 3 + ci) * H * W;
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int hi = ho * s - pad + ky;
                const bool rok = hi >= 0 && hi < H;
                const float* rowp = plane + (long long)min(max(hi, 0), H - 1) * W;
                if (pair) {  // wi = 2wo - 1, 2wo, 2wo + 1: 2wo + 1 <= W - 1 always (W even)
                    const float2 v = __ldg(reinterpret_cast<const float2*>(rowp + 2 * wo));
                    const float u = __ldg(rowp + max(2 * wo - 1, 0));
                    xin[(ky * 3 + 0) * 3 + ci] = (rok && wo > 0) ? u : 0.0f;
                    xin[(ky * 3 + 1) * 3 + ci] = rok ? v.x : 0.0f;
                    xin[(ky * 3 + 2) * 3 + ci] = rok ? v.y : 0.0f;
                } else {
#pragma unroll
                    for (int kx = 0; kx < 3; ++kx) {
                        const int wi = wo * s - pad + kx;
                        const float v = __ldg(rowp + min(max(wi, 0), W - 1));
                        xin[(ky * 3 + kx) * 3 + ci] = (rok && wi >= 0 && wi < W) ? v : 0.0f;
                    }
                }
            }
        }
        for (int g = 0; g < G; ++g) {
            const int c = g * 8;
            float acc[8];
            const float4 b0 = __ldg(reinterpret_cast<const float4*>(bias + c));
            const float4 b1 = __ldg(reinterpret_cast<const float4*>(bias + c + 4));
            acc[0] = b0.x, acc[1] = b0.y, acc[2] = b0.z, acc[3] = b0.w;
            acc[4] = b1.x, acc[5] = b1.y, acc[6] = b1.z, acc[7] = b1.w;
#pragma unroll
            for (int r = 0; r < 27; ++r) {
                const float4 w0 = *reinterpret_cast<const float4*>(sw4 + r * Cout + c);
                const float4 w1 = *reinterpret_cast<const float4*>(sw4 + r * Cout + c + 4);
                acc[0] = fmaf(xin[r], w0.x, acc[0]);
                acc[1] = fmaf(xin[r], w0.y, acc[1]);
                acc[2] = fmaf(xin[r], w0.z, acc[2]);
                acc[3] = fmaf(xin[r], w0.w, acc[3]);
                acc[4] = fmaf(xin[r], w1.x, acc[4]);
                acc[5] = fmaf(xin[r], w1.y, acc[5]);
                acc[6] = fmaf(xin[r], w1.z, acc[6]);
                acc[7] = fmaf(xin[r], w1.w, acc[7]);
            }
#pragma unroll
            for (int q = 0; q < 8; ++q) acc[q] = h_act(acc[q], act);
            stage[threadIdx.x * G + (g + threadIdx.x) % G] = f_to_h8(acc);
        }
    }
    __syncthreads();
    const long long npix = min((long long)blockDim.x, total - p0);
    const int chunks = (int)npix * G;
    uint4* yb = reinterpret_cast<uint4*>(y + p0 * Cout);
    const uint4* rb = reinterpret_cast<const uint4*>(R + p0 * Cout);
    for (int q = threadIdx.x; q < chunks; q += blockDim.x) {
        const int p = q / G, g = q - p * G;
        uint4 v = stage[p * G + (g + p) % G];
        if (has_res) {
            float a[8], b[8];
            h8_to_f(v, a);
            h8_to_f(rb[q], b);
#pragma unroll
            for (int k = 0; k < 8; ++k) a[k] += b[k];
            v = f_to_h8(a);
        }
        yb[q] = v;
    }
}
// END hdepthwise v3 / hstem v4 block
// =============================================================================================

// =============================================================================================
// hgemm v4 (block owned by the pointwise-GEMM work; v1-v3 above unchanged). Host: impls/_custom_hgemm_v4.py.
//   The autotuner picks per layer among the v3 kernels and the v4 kernels below ("v4" can only help):
//   (a) hgemm_v4_sk_<BM>x<BN>: small K (K <= 32, K % 8 == 0: the whole K is one 32-wide tile). A
//       persistent-style grid (a few blocks per SM) loops over M tiles; the B slice (BN x K) is loaded
//       once per block, the next A tile's cp.async is issued before the current tile's MMA + staged
//       epilogue (2-stage A ring); 20-37 KB smem so 4-6 blocks stay resident per SM.
//       Expected (H100, bs256): 16->96 @112 379 -> ~250 us, 24->144 @56 181 -> ~120 us (2.5 TB/s).
//   (b) hgemm_v4_<BM>x<BN>: v3's mainloop with split-K over gridDim.z (K tiles split evenly; split z
//       writes raw fp32 partials to ws + z*M*N), then hgemm_v4_splitk_reduce sums the splits in a
//       fixed order (deterministic) and applies bias, ReLU6, residual, rounding to half. gridDim.z == 1:
//       the v3 staged epilogue. Adds the tiles 64x160 and 128x96 (N = 160 / 320 / 960 / 96 in 1-2 tiles).
//       Expected: the 7x7 / 14x14 GEMMs at batch 1 ~2-3x faster (10 -> 60-130 blocks), ~1.2x at bs64;
//       at bs256 (>= 2 waves already) only the wider tiles may help.
//       Measured (H100, graph e2e v3 -> v4): bs1 0.259 -> 0.236 ms, bs64 1.119 -> 1.045, bs256 3.720 -> 3.473;
//       bs256 16->96 378 -> 288 us, 24->144 181 -> 117 us (sk, grid 4 blocks/SM); split-K won only at batch 1
//       (960->320 15.9 -> 8.8 us), never chosen at bs64/256. Default since then (results/NOTES.md, "hgemm v4").

// One 32-wide k tile of MMAs from swizzled [rows][32] tiles; kss = number of 16-wide k steps (1 or 2).
template <int MI, int NI, int TM, int TN>
__device__ __forceinline__ void h4_ktile(const __half* a_s, const __half* b_s, float (&acc)[MI][NI][4], int wm,
                                         int wn, int lane, int kss) {
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
        if (ks == 1 && kss < 2) break;
        uint32_t af[MI][4], bf[NI][2];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
            const int r = wm * TM + mi * 16 + (lane & 15);
            const int c = ks * 2 + (lane >> 4);
            ldmatrix_x4(smem_u32(a_s + swz(r, c)), af[mi][0], af[mi][1], af[mi][2], af[mi][3]);
        }
#pragma unroll
        for (int nj = 0; nj < NI / 2; ++nj) {
            const int r = wn * TN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
            const int c = ks * 2 + ((lane >> 3) & 1);
            ldmatrix_x4(smem_u32(b_s + swz(r, c)), bf[2 * nj][0], bf[2 * nj][1], bf[2 * nj + 1][0], bf[2 * nj + 1][1]);
        }
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) mma_16816(acc[mi][ni], af[mi], bf[ni]);
    }
}

// Staged epilogue (as v3): bias + ReLU6 -> half tile sC [BM][BN + 8], then 16-byte chunks per thread
// (+ residual), coalesced. The caller makes sC free (a __syncthreads after its last reader) before this.
template <int BM, int BN, int WM, int WN, int MI, int NI>
__device__ __forceinline__ void h4_store_staged(__half* sC, const float (&acc)[MI][NI][4], int m0, int n0, int M,
                                                int N, const float* __restrict__ bias, const __half* __restrict__ R,
                                                __half* __restrict__ C, int act, int has_res, int tid) {
    constexpr int NT = WM * WN * 32, TM = BM / WM, TN = BN / WN, LDC = BN + 8;
    const int lane = tid & 31, warp = tid >> 5, wm = warp / WN, wn = warp % WN;
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
        const int cl = wn * TN + ni * 8 + (lane & 3) * 2;
        const int col = n0 + cl;
        const float b0 = col < N ? bias[col] : 0.0f, b1 = col < N ? bias[col + 1] : 0.0f;
#pragma unroll
        for (int mi = 0; mi < MI; ++mi)
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
                const int rl = wm * TM + mi * 16 + (lane >> 2) + hh * 8;
                *reinterpret_cast<__half2*>(sC + rl * LDC + cl) = __floats2half2_rn(
                    h_act(acc[mi][ni][2 * hh] + b0, act), h_act(acc[mi][ni][2 * hh + 1] + b1, act));
            }
    }
    __syncthreads();
    constexpr int CH = BN / 8;
#pragma unroll 4
    for (int i = tid; i < BM * CH; i += NT) {
        const int rl = i / CH, cl = (i % CH) * 8;
        const int row = m0 + rl, col = n0 + cl;
        if (row >= M || col >= N) continue;
        uint4 v = *reinterpret_cast<const uint4*>(sC + rl * LDC + cl);
        const long long o = (long long)row * N + col;
        if (has_res) {
            float f[8], r[8];
            h8_to_f(v, f);
            h8_to_f(*reinterpret_cast<const uint4*>(R + o), r);
#pragma unroll
            for (int q = 0; q < 8; ++q) f[q] += r[q];
            v = f_to_h8(f);
        }
        *reinterpret_cast<uint4*>(C + o) = v;
    }
}

// (a) small K. Grid: a multiple of tiles_n blocks; block b owns column tile b % tiles_n and the M tiles
// b / tiles_n, + stride, ... (stride = gridDim.x / tiles_n).
template <int BM, int BN, int WM, int WN>
__device__ __forceinline__ void hgemm_v4_sk_body(const __half* __restrict__ A, const __half* __restrict__ B,
                                                 __half* __restrict__ C, const float* __restrict__ bias,
                                                 const __half* __restrict__ R, int M, int N, int K, int act,
                                                 int has_res) {
    constexpr int NT = WM * WN * 32, TM = BM / WM, TN = BN / WN, MI = TM / 16, NI = TN / 8, LDC = BN + 8;
    static_assert(TM % 16 == 0 && TN % 16 == 0, "warp tile must be a multiple of 16x16");
    __shared__ __align__(128) __half sA[2][BM * 32];
    __shared__ __align__(128) __half sB[BN * 32];
    __shared__ __align__(128) __half sC[BM * LDC];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp / WN, wn = warp % WN;
    const int tiles_n = (N + BN - 1) / BN, tiles_m = (M + BM - 1) / BM;
    const int n0 = (blockIdx.x % tiles_n) * BN;
    const int stride = gridDim.x / tiles_n;
    int mt = blockIdx.x / tiles_n;
    const int KC = K >> 3;            // 16-byte chunks per row: 2..4
    const int kss = (K + 15) >> 4;    // 16-wide k steps: 1..2
    // chunks past K stay zero (never written by cp.async): zero them once
    if (KC < 4) {
        for (int i = tid; i < BM * 4; i += NT) {
            const int r = i >> 2, c = i & 3;
            if (c < KC) continue;
            *reinterpret_cast<uint4*>(sA[0] + swz(r, c)) = make_uint4(0u, 0u, 0u, 0u);
            *reinterpret_cast<uint4*>(sA[1] + swz(r, c)) = make_uint4(0u, 0u, 0u, 0u);
        }
        for (int i = tid; i < BN * 4; i += NT) {
            const int r = i >> 2, c = i & 3;
            if (c >= KC) *reinterpret_cast<uint4*>(sB + swz(r, c)) = make_uint4(0u, 0u, 0u, 0u);
        }
    }
    for (int i = tid; i < BN * KC; i += NT) {
        const int r = i / KC, c = i - r * KC, gr = n0 + r;
        const bool ok = gr < N;
        cp_async16(smem_u32(sB + swz(r, c)), ok ? B + (long long)gr * K + c * 8 : B, ok ? 16 : 0);
    }
    auto load_a = [&](int stage, int t) {
        const int m0 = t * BM;
        for (int i = tid; i < BM * KC; i += NT) {
            const int r = i / KC, c = i - r * KC, gr = m0 + r;
            const bool ok = gr < M;
            cp_async16(smem_u32(sA[stage] + swz(r, c)), ok ? A + (long long)gr * K + c * 8 : A, ok ? 16 : 0);
        }
    };
    if (mt < tiles_m) load_a(0, mt);
    cp_async_commit();
    for (int s = 0; mt < tiles_m; mt += stride, s ^= 1) {
        if (mt + stride < tiles_m) load_a(s ^ 1, mt + stride);  // stage s^1 was last read before the
        cp_async_commit();                                       // previous tile's epilogue barrier
        cp_async_wait<1>();
        __syncthreads();  // tile mt landed for every thread; the previous tile's sC reads are done
        float acc[MI][NI][4];
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
            for (int j = 0; j < NI; ++j)
#pragma unroll
                for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;
        h4_ktile<MI, NI, TM, TN>(sA[s], sB, acc, wm, wn, lane, kss);
        h4_store_staged<BM, BN, WM, WN, MI, NI>(sC, acc, mt * BM, n0, M, N, bias, R, C, act, has_res, tid);
    }
    cp_async_wait<0>();
}

// (b) split-K over gridDim.z (1 = the v3 staged epilogue straight to C).
template <int BM, int BN, int WM, int WN, int STAGES>
__device__ __forceinline__ void hgemm_v4_body(const __half* __restrict__ A, const __half* __restrict__ B,
                                              __half* __restrict__ C, float* __restrict__ ws,
                                              const float* __restrict__ bias, const __half* __restrict__ R, int M,
                                              int N, int K, int act, int has_res) {
    constexpr int NT = WM * WN * 32, TM = BM / WM, TN = BN / WN, MI = TM / 16, NI = TN / 8, LDC = BN + 8;
    static_assert(TM % 16 == 0 && TN % 16 == 0, "warp tile must be a multiple of 16x16");
    constexpr int SMEM_HALVES = STAGES * (BM + BN) * 32 > BM * LDC ? STAGES * (BM + BN) * 32 : BM * LDC;
    __shared__ __align__(128) __half smem[SMEM_HALVES];
    __half* const sA0 = smem;
    __half* const sB0 = smem + STAGES * BM * 32;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp / WN, wn = warp % WN;
    const int tiles_n = (N + BN - 1) / BN;
    const int m0 = (blockIdx.x / tiles_n) * BM, n0 = (blockIdx.x % tiles_n) * BN;
    const int KT_ALL = (K + 31) / 32;
    const int per = (KT_ALL + gridDim.z - 1) / gridDim.z;
    const int kt0 = min(KT_ALL, (int)blockIdx.z * per);
    const int KT = min(KT_ALL, kt0 + per) - kt0;

    auto load_tile = [&](int stage, int kt) {
        const int k0 = (kt0 + kt) * 32;
#pragma unroll
        for (int i = tid; i < BM * 4; i += NT) {
            const int r = i >> 2, c = i & 3, gr = m0 + r, gk = k0 + c * 8;
            const bool ok = gr < M && gk < K;
            cp_async16(smem_u32(sA0 + stage * BM * 32 + swz(r, c)), ok ? A + (long long)gr * K + gk : A, ok ? 16 : 0);
        }
#pragma unroll
        for (int i = tid; i < BN * 4; i += NT) {
            const int r = i >> 2, c = i & 3, gr = n0 + r, gk = k0 + c * 8;
            const bool ok = gr < N && gk < K;
            cp_async16(smem_u32(sB0 + stage * BN * 32 + swz(r, c)), ok ? B + (long long)gr * K + gk : B, ok ? 16 : 0);
        }
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < KT) load_tile(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < KT; ++kt) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        {
            const int nk = kt + STAGES - 1;
            if (nk < KT) load_tile(nk % STAGES, nk);
            cp_async_commit();
        }
        h4_ktile<MI, NI, TM, TN>(sA0 + (kt % STAGES) * BM * 32, sB0 + (kt % STAGES) * BN * 32, acc, wm, wn, lane, 2);
    }
    cp_async_wait<0>();
    if (gridDim.z > 1) {  // raw fp32 partial sums of split z (hgemm_v4_splitk_reduce finishes)
        float* P = ws + (long long)blockIdx.z * M * N;
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
            const int col = n0 + wn * TN + ni * 8 + (lane & 3) * 2;
            if (col >= N) continue;
#pragma unroll
            for (int mi = 0; mi < MI; ++mi)
#pragma unroll
                for (int hh = 0; hh < 2; ++hh) {
                    const int row = m0 + wm * TM + mi * 16 + (lane >> 2) + hh * 8;
                    if (row < M)
                        *reinterpret_cast<float2*>(P + (long long)row * N + col) =
                            make_float2(acc[mi][ni][2 * hh], acc[mi][ni][2 * hh + 1]);
                }
        }
        return;
    }
    __syncthreads();  // every warp is done with the operand tiles (sC aliases them)
    h4_store_staged<BM, BN, WM, WN, MI, NI>(smem, acc, m0, n0, M, N, bias, R, C, act, has_res, tid);
}

// Sum of the S split-K partials ws (S, M, N) in split order + bias, ReLU6, residual -> half C (M, N);
// 8 columns per thread (N % 8 == 0), grid-stride.
extern "C" __global__ void __launch_bounds__(256)
hgemm_v4_splitk_reduce(const float* __restrict__ ws, __half* __restrict__ C, const float* __restrict__ bias,
                       const __half* __restrict__ R, int M, int N, int S, int act, int has_res) {
    const long long total = (long long)M * N / 8, mn = (long long)M * N;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long o = i * 8;
        const int col = (int)(o % N);
        float v[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        for (int s = 0; s < S; ++s) {
            const float4 p0 = *reinterpret_cast<const float4*>(ws + s * mn + o);
            const float4 p1 = *reinterpret_cast<const float4*>(ws + s * mn + o + 4);
            v[0] += p0.x, v[1] += p0.y, v[2] += p0.z, v[3] += p0.w;
            v[4] += p1.x, v[5] += p1.y, v[6] += p1.z, v[7] += p1.w;
        }
        const float4 b0 = *reinterpret_cast<const float4*>(bias + col);
        const float4 b1 = *reinterpret_cast<const float4*>(bias + col + 4);
        const float bb[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int q = 0; q < 8; ++q) v[q] = h_act(v[q] + bb[q], act);
        if (has_res) {
            float r[8];
            h8_to_f(*reinterpret_cast<const uint4*>(R + o), r);
#pragma unroll
            for (int q = 0; q < 8; ++q) v[q] += r[q];
        }
        *reinterpret_cast<uint4*>(C + o) = f_to_h8(v);
    }
}

// Small-K kernels hgemm_v4_sk_<BM>x<BN>: warps WM x WN in the comment.
// 64x96: 4x1 warps (16x96; 2x2 spilled 8 bytes); 64x144: 4x1 (16x144); 128x64: 4x1 (32x64); 64x64: 2x2 (32x32);
// 128x32: 4x1 (32x32); 128x16: 4x1 (32x16)
extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_sk_64x96(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                  const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                  int has_res) {
    hgemm_v4_sk_body<64, 96, 4, 1>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_sk_64x144(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                   const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                   int has_res) {
    hgemm_v4_sk_body<64, 144, 4, 1>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_sk_128x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                   const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                   int has_res) {
    hgemm_v4_sk_body<128, 64, 4, 1>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_sk_64x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                  const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                  int has_res) {
    hgemm_v4_sk_body<64, 64, 2, 2>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_sk_128x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                   const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                   int has_res) {
    hgemm_v4_sk_body<128, 32, 4, 1>(A, B, C, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_sk_128x16(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                   const float* __restrict__ bias, const __half* __restrict__ R, int M, int N, int K, int act,
                   int has_res) {
    hgemm_v4_sk_body<128, 16, 4, 1>(A, B, C, bias, R, M, N, K, act, has_res);
}

// Split-K kernels hgemm_v4_<BM>x<BN> (warps, stages as v3's tiles; 64x160: 2x2 (32x80), 3 stages, 42 KB;
// 128x96: 2x2 (64x48), 3 stages, 42 KB).
extern "C" __global__ void __launch_bounds__(256)
hgemm_v4_128x128(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                 float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
                 int K, int act, int has_res) {
    hgemm_v4_body<128, 128, 2, 4, 3>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_128x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
                int K, int act, int has_res) {
    hgemm_v4_body<128, 64, 2, 2, 4>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_64x128(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
                int K, int act, int has_res) {
    hgemm_v4_body<64, 128, 2, 2, 4>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_64x64(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
               int K, int act, int has_res) {
    hgemm_v4_body<64, 64, 2, 2, 4>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_128x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
                int K, int act, int has_res) {
    hgemm_v4_body<128, 32, 4, 1, 4>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(64)
hgemm_v4_64x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
               int K, int act, int has_res) {
    hgemm_v4_body<64, 32, 2, 1, 4>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(64)
hgemm_v4_32x32(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
               float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
               int K, int act, int has_res) {
    hgemm_v4_body<32, 32, 2, 1, 4>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_64x160(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
                int K, int act, int has_res) {
    hgemm_v4_body<64, 160, 2, 2, 3>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}

extern "C" __global__ void __launch_bounds__(128)
hgemm_v4_128x96(const __half* __restrict__ A, const __half* __restrict__ B, __half* __restrict__ C,
                float* __restrict__ ws, const float* __restrict__ bias, const __half* __restrict__ R, int M, int N,
                int K, int act, int has_res) {
    hgemm_v4_body<128, 96, 2, 2, 3>(A, B, C, ws, bias, R, M, N, K, act, has_res);
}
// ============================== end of hgemm v4 ==============================================

// =============================================================================================
// hfuse v2 ("hexdw"): the expansion 1x1 conv on tensor cores inside the 3x3 depthwise conv that reads
// it (fp16 counterpart of kernels/conv.cu's exdw4; host: HalfMixin._h_exdw_launch).
//   A block owns a TH x TW tile of depthwise outputs of one image and loops over its expanded-channel
//   chunks of 32 (chunks [blockIdx.y * cpb, +cpb): all of them at large batch, so the input patch is
//   staged once). Phase 0: the ((TH-1)*S+3) x ((TW-1)*S+3) input patch (CIN halves per pixel) -> shared
//   memory by cp.async (zero-fill outside the image; K padded to 16 / 32 with zeros), rows padded to
//   24 / 40 halves (conflict-free ldmatrix). Per chunk: (1) the expansion as a GEMM M = patch pixels,
//   N = 32, K = CIN on mma.sync m16n8k16 (warp w: n-tile w & 3 with its B fragments in registers,
//   m-tiles (w >> 2) + 2j, A by ldmatrix.x4); epilogue + bias, ReLU6 when ex_act, 0 outside the image
//   (the depthwise conv's zero padding), rounded to half once (as the unfused hgemm's store) into the
//   expanded patch [pixel][32] (16-byte chunk XOR-swizzled by (pixel >> 1) & 3: conflict-free half2
//   writes); barrier; (2) the depthwise 3x3 from shared memory, one (output pixel, 8 channels) item per
//   thread per step, fp32 math from bias as hdepthwise, ReLU6 when dw_act, one 16-byte store; barrier.
//   Needs CIN in {8, 16, 24, 32}, CE % 8 == 0, 16-byte aligned arrays. Tiles: s1 14x14 (patch 16x16 =
//   16 m-tiles exactly) and 7x7, s2 7x7 (patch 15x15); 7 divides the 56 / 28 / 14 maps.
//   Chunk-invariant work hoisted out of the chunk loop: the epilogue's row offsets (one base: the swizzle is
//   the same for all of a lane's rows) and inside-image bits (a mask); the next chunk's B fragments are
//   loaded during the depthwise phase; the depthwise weights + bias of a chunk go to shared memory as fp32
//   once per block and chunk; bias in the MMA accumulator, ReLU6 on the rounded half2 (the same value).
//   First cut (no hoisting, weights read per item from global; device run 1, bs256): 499 / 399 / 221 /
//   134 / 73 us on the five distinct pairs vs 574 / 335 / 228 / 118 / 86 us unfused; e2e no gain. As now
//   (run 2): 463 / 375 / 200 / 125 / 67 us (bs1: 6.5 / 6.1 / 5.5 / 4.4 / 5.3 vs 9.7 / 8.7 / 8.4 / 8.3 / 7.9).
// hexdw: a warp's B fragments (8 expanded channels x K of chunk ch) and bias; zeros past CE / CIN
template <int CIN, int KS>
__device__ __forceinline__ void hexdw_load_b(const __half* __restrict__ we, const float* __restrict__ be, int CE,
                                             int ch, int nt, int g, int t4, uint32_t (&b)[KS][2], float2& bb) {
    const int ncol = (ch << 5) + nt * 8;
    const bool live = ncol < CE;
    const __half* wrow = we + (long long)(live ? ncol + g : 0) * CIN;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
        const int k0 = ks * 16 + 2 * t4, k1 = k0 + 8;
        b[ks][0] = live && k0 < CIN ? __ldg(reinterpret_cast<const unsigned int*>(wrow + k0)) : 0u;
        b[ks][1] = live && k1 < CIN ? __ldg(reinterpret_cast<const unsigned int*>(wrow + k1)) : 0u;
    }
    if (live) bb = __ldg(reinterpret_cast<const float2*>(be + ncol + 2 * t4));
}

template <int S, int CIN, int TH, int TW>
__device__ __forceinline__ void hexdw_body(const __half* __restrict__ x, const __half* __restrict__ we,
                                           const float* __restrict__ be, const __half* __restrict__ wd,
                                           const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                                           int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    constexpr int KP = CIN <= 16 ? 16 : 32;  // K padded to whole k16 steps
    constexpr int KS = KP / 16;
    constexpr int AST = KP + 8;  // A row stride in halves (48 / 80 bytes: ldmatrix rows on distinct banks)
    constexpr int PH = (TH - 1) * S + 3, PW = (TW - 1) * S + 3, P = PH * PW;
    constexpr int MT = (P + 15) / 16, MR = MT * 16;
    constexpr int MJ = (MT + 1) / 2;  // m-tiles per warp (warps w and w + 4 share an n-tile)
    constexpr int C8 = CIN / 8, KP8 = KP / 8;
    constexpr int ITEMS = TH * TW * 4;
    __shared__ __align__(16) __half a_s[MR * AST];
    __shared__ __align__(16) __half e_s[MR * 32];
    __shared__ __align__(16) float wd_s[10 * 32];  // this chunk's depthwise weights (9 taps) + bias, fp32

    const int tiles_w = (Wo + TW - 1) / TW;
    const int ty = blockIdx.x / tiles_w, tx = blockIdx.x - ty * tiles_w;
    const int n = blockIdx.z;
    const int chunks = (CE + 31) >> 5;
    const int ch0 = blockIdx.y * cpb;
    const int ch1 = min(chunks, ch0 + cpb);
    const int oy0 = ty * TH, ox0 = tx * TW;
    const int iy0 = oy0 * S - pad, ix0 = ox0 * S - pad;
    const int tid = threadIdx.x;

    // phase 0: the input patch
    const __half* img = x + (long long)n * H * W * CIN;
    for (int i = tid; i < MR * KP8; i += 256) {
        const int p = i / KP8, q = i - p * KP8;
        __half* dst = a_s + p * AST + q * 8;
        if (p < P && q < C8) {
            const int py = p / PW, px = p - py * PW;
            const int iy = iy0 + py, ix = ix0 + px;
            const bool ok = iy >= 0 && iy < H && ix >= 0 && ix < W;
            const __half* src = img + ((long long)(ok ? iy : 0) * W + (ok ? ix : 0)) * CIN + q * 8;
            cp_async16(smem_u32(dst), src, ok ? 16 : 0);
        } else {
            *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
        }
    }
    cp_async_commit();

    const int warp = tid >> 5, lane = tid & 31;
    const int nt = warp & 3, m0 = warp >> 2;
    const int g = lane >> 2, t4 = lane & 3;
    // chunk-invariant epilogue: this lane's rows (m0 + 2j) * 16 + g + 8 hr, their inside-image bits; the
    // swizzle (row >> 1) & 3 = (g >> 1) & 3 for all of them, so one base offset
    const int e_base = (m0 * 16 + g) * 32 + ((nt ^ ((g >> 1) & 3)) << 3) + 2 * t4;
    uint32_t okmask = 0u;
#pragma unroll
    for (int j = 0; j < MJ; ++j)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
            const int p = (m0 + 2 * j) * 16 + g + hr * 8;
            const int py = p / PW, px = p - py * PW;
            const int iy = iy0 + py, ix = ix0 + px;
            const bool ok = p < P && iy >= 0 && iy < H && ix >= 0 && ix < W;
            okmask |= (ok ? 1u : 0u) << (2 * j + hr);
        }
    const uint32_t a_base = smem_u32(a_s + (m0 * 16 + (lane & 15)) * AST + ((lane >> 4) << 3));

    // this warp's B fragments (8 expanded channels x K) and bias of a chunk; zeros past CE / CIN
    uint32_t b[KS][2];
    float2 bb = make_float2(0.0f, 0.0f);
    hexdw_load_b<CIN, KS>(we, be, CE, ch0, nt, g, t4, b, bb);
    cp_async_wait<0>();
    __syncthreads();

    const int q = tid & 3;  // a thread's depthwise items all have the same 8-channel group (256 % 4 == 0)
    for (int ch = ch0; ch < ch1; ++ch) {
        const int cbase = ch << 5;
        // this chunk's depthwise weights and bias -> fp32 shared memory (read after the barrier below;
        // the previous chunk's readers finished at the loop's closing barrier)
        for (int i = tid; i < 10 * 8; i += 256) {
            const int k = i >> 3, part = i & 7;  // 4 channels per part
            const int c = cbase + part * 4;
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (c < CE) {
                if (k < 9) {
                    const uint2 u = __ldg(reinterpret_cast<const uint2*>(wd + k * CE + c));
                    const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
                    const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
                    v = make_float4(lo.x, lo.y, hi.x, hi.y);
                } else {
                    v = __ldg(reinterpret_cast<const float4*>(bd + c));
                }
            }
            *reinterpret_cast<float4*>(wd_s + k * 32 + part * 4) = v;
        }
        if (cbase + nt * 8 < CE) {  // warp-uniform
#pragma unroll
            for (int j = 0; j < MJ; ++j) {
                if (m0 + 2 * j < MT) {
                    float acc[4] = {bb.x, bb.y, bb.x, bb.y};  // + bias in the accumulator
#pragma unroll
                    for (int ks = 0; ks < KS; ++ks) {
                        uint32_t a[4];
                        ldmatrix_x4(a_base + (j * 32 * AST + ks * 16) * 2, a[0], a[1], a[2], a[3]);
                        mma_16816(acc, a, b[ks]);
                    }
#pragma unroll
                    for (int hr = 0; hr < 2; ++hr) {
                        // round to half, then ReLU6 on half2: the same value as ReLU6 in fp32 then rounding
                        // (rounding is monotonic, 0 and 6 are exact); 0 outside the image
                        __half2 v = __floats2half2_rn(acc[2 * hr], acc[2 * hr + 1]);
                        if (ex_act) v = __hmin2(__hmax2(v, __float2half2_rn(0.0f)), __float2half2_rn(6.0f));
                        const uint32_t u = ((okmask >> (2 * j + hr)) & 1u) ? *reinterpret_cast<uint32_t*>(&v) : 0u;
                        *reinterpret_cast<uint32_t*>(e_s + e_base + j * 1024 + hr * 256) = u;
                    }
                }
            }
        }
        if (ch + 1 < ch1) {  // the next chunk's fragments, in flight over the depthwise phase
            hexdw_load_b<CIN, KS>(we, be, CE, ch + 1, nt, g, t4, b, bb);
        }
        __syncthreads();
        const int c = cbase + q * 8;
        if (c < CE) {
#pragma unroll 1
            for (int i = tid; i < ITEMS; i += 256) {
                const int opx = i >> 2;
                const int oy = opx / TW, ox = opx - oy * TW;
                const int ho = oy0 + oy, wo = ox0 + ox;
                if (ho >= Ho || wo >= Wo) continue;
                float acc[8];
                {
                    const float4 b0 = *reinterpret_cast<const float4*>(wd_s + 9 * 32 + q * 8);
                    const float4 b1 = *reinterpret_cast<const float4*>(wd_s + 9 * 32 + q * 8 + 4);
                    acc[0] = b0.x, acc[1] = b0.y, acc[2] = b0.z, acc[3] = b0.w;
                    acc[4] = b1.x, acc[5] = b1.y, acc[6] = b1.z, acc[7] = b1.w;
                }
#pragma unroll
                for (int ky = 0; ky < 3; ++ky)
#pragma unroll
                    for (int kx = 0; kx < 3; ++kx) {
                        const int p = (oy * S + ky) * PW + ox * S + kx;
                        float f[8];
                        h8_to_f(*reinterpret_cast<const uint4*>(e_s + p * 32 + ((q ^ ((p >> 1) & 3)) << 3)), f);
                        const float4 w0 = *reinterpret_cast<const float4*>(wd_s + (ky * 3 + kx) * 32 + q * 8);
                        const float4 w1 = *reinterpret_cast<const float4*>(wd_s + (ky * 3 + kx) * 32 + q * 8 + 4);
                        acc[0] = fmaf(f[0], w0.x, acc[0]);
                        acc[1] = fmaf(f[1], w0.y, acc[1]);
                        acc[2] = fmaf(f[2], w0.z, acc[2]);
                        acc[3] = fmaf(f[3], w0.w, acc[3]);
                        acc[4] = fmaf(f[4], w1.x, acc[4]);
                        acc[5] = fmaf(f[5], w1.y, acc[5]);
                        acc[6] = fmaf(f[6], w1.z, acc[6]);
                        acc[7] = fmaf(f[7], w1.w, acc[7]);
                    }
#pragma unroll
                for (int jj = 0; jj < 8; ++jj) acc[jj] = h_act(acc[jj], dw_act);
                *reinterpret_cast<uint4*>(y + (((long long)n * Ho + ho) * Wo + wo) * CE + c) = f_to_h8(acc);
            }
        }
        __syncthreads();
    }
}

// One extern "C" kernel per (stride, tile, CIN): hexdw_s<S>_t<T>_c<CIN> (T x T outputs), grid (tiles, chunk
// groups, N).
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t14_c8(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 8, 14, 14>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t14_c16(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                 const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                 int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 16, 14, 14>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t14_c24(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                 const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                 int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 24, 14, 14>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t14_c32(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                 const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                 int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 32, 14, 14>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t7_c8(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
               const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
               int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 8, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t7_c16(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 16, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t7_c24(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 24, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s1_t7_c32(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<1, 32, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s2_t7_c8(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
               const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
               int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<2, 8, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s2_t7_c16(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<2, 16, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s2_t7_c24(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<2, 24, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}
extern "C" __global__ void __launch_bounds__(256, 3)
hexdw_s2_t7_c32(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,
                const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    hexdw_body<2, 32, 7, 7>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);
}

// =============================================================================================
// hfuse v3 ("hexdw3"): hexdw with the depthwise phase in half2 arithmetic (host: HalfMixin._h_exdw_launch).
//   v3 = v2's expansion phase (mma.sync into the shared-memory expanded patch) + a depthwise phase that
//   issues 4 HFMA2 per tap per 8 channels (no half -> float conversions; the 9-term sum + bias rounds in
//   half, ~1e-3 relative, well inside the fp16 per-layer tolerance), each thread's 8 channels x 9 taps of
//   weights (+ bias) as half2 in registers (loaded from global after the expansion's MMAs, in flight over
//   the barrier; the next chunk's B fragments after the depthwise phase), and RB
//   vertically adjacent outputs per item (stride 1 on 14x14 tiles: RB = 2, the window's 4 rows loaded once
//   for 2 outputs: 12 LDS.128 instead of 18). The expanded patch is stored by "slot": stride 1 row-major
//   (PW slots per row), stride 2 with 16 slots per row, the even patch columns in slots 0..7 and the odd
//   ones in 8..15, so the outputs of adjacent threads read adjacent slots (distinct bank halves) at every
//   tap, and the MMA's M rows are the slots (15 x 16 = 240 = 15 m-tiles for the 15x15 patch, as v2).
//   Kernels hexdw3_s<S>_t<T>_c<CIN>[_b2], same arguments and grid as hexdw.
//   Expected (before the first device run): the depthwise phase ~3x fewer instructions; the pairs
//   -25..-35% at batch 64 / 256 (s2_t7_c16 463 -> ~320 us), the stride-1 pairs winning over the two kernels.
//   Measured (H100, bs256): 369 / 248 / 168 / 85 / 55 us on the five distinct pairs (v2 463 / 378 / 194 / 126 / 68,
//   unfused 574 / 339 / 229 / 119 / 87); bs1 6.0 / 5.9 / 5.2 / 4.3 / 4.9 us.
// hexdw3: per-slot geometry of the patch: (py, px) of slot sl, false for a padding slot
template <int S, int PW, int PWP>
__device__ __forceinline__ bool hexdw3_slot(int sl, int& py, int& px) {
    if constexpr (S == 1) {
        py = sl / PW;
        px = sl - py * PW;
        return true;
    } else {
        py = sl >> 4;
        const int c = sl & 15;
        px = c < 8 ? 2 * c : 2 * (c - 8) + 1;
        return px < PW;
    }
}

// hexdw3: the e_s offset (halves) of slot sl's 8-channel group q (16-byte chunk XOR-swizzled by (sl >> 1) & 3)
__device__ __forceinline__ int hexdw3_eoff(int sl, int q) { return sl * 32 + ((q ^ ((sl >> 1) & 3)) << 3); }

__device__ __forceinline__ __half2 u2h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }
__device__ __forceinline__ uint32_t h22u(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }

// hfuse v3 / v4 (hexdw3, hexdwpw4): phase 0, the input patch (slot layout of hexdw3_slot; CIN halves per pixel,
// K padded to 16 / 32 with zeros) into a_s by cp.async, zero-filled outside the image; committed, not waited for
template <int S, int CIN, int PW, int PWP, int P, int MR, int AST>
__device__ __forceinline__ void hexdw3_stage_patch(const __half* __restrict__ img, __half* a_s, int H, int W, int iy0,
                                                   int ix0, int tid) {
    constexpr int KP8 = (CIN <= 16 ? 16 : 32) / 8, C8 = CIN / 8;
    for (int i = tid; i < MR * KP8; i += 256) {
        const int p = i / KP8, q = i - p * KP8;
        __half* dst = a_s + p * AST + q * 8;
        int py, px;
        const bool slot = p < P && hexdw3_slot<S, PW, PWP>(p, py, px);
        if (slot && q < C8) {
            const int iy = iy0 + py, ix = ix0 + px;
            const bool ok = iy >= 0 && iy < H && ix >= 0 && ix < W;
            const __half* src = img + ((long long)(ok ? iy : 0) * W + (ok ? ix : 0)) * CIN + q * 8;
            cp_async16(smem_u32(dst), src, ok ? 16 : 0);
        } else {
            *reinterpret_cast<uint4*>(dst) = make_uint4(0u, 0u, 0u, 0u);
        }
    }
    cp_async_commit();
}

// the inside-image bits of a lane's epilogue rows (m0 + 2j) * 16 + g + 8 hr (bit 2j + hr)
template <int S, int PW, int PWP, int P, int MJ>
__device__ __forceinline__ uint32_t hexdw3_okmask(int m0, int g, int iy0, int ix0, int H, int W) {
    uint32_t okmask = 0u;
#pragma unroll
    for (int j = 0; j < MJ; ++j)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
            const int p = (m0 + 2 * j) * 16 + g + hr * 8;
            int py, px;
            const bool slot = p < P && hexdw3_slot<S, PW, PWP>(p, py, px);
            const int iy = iy0 + py, ix = ix0 + px;
            const bool ok = slot && iy >= 0 && iy < H && ix >= 0 && ix < W;
            okmask |= (ok ? 1u : 0u) << (2 * j + hr);
        }
    return okmask;
}

// one chunk's expansion on mma.sync (the warp's n-tile, its m-tiles m0 + 2j) + bias (in the accumulator), rounded
// to half, ReLU6 when ex_act, 0 outside the image, into the expanded patch e_s
template <int KS, int MJ, int MT, int AST>
__device__ __forceinline__ void hexdw3_expand(uint32_t a_base, const uint32_t (&b)[KS][2], float2 bb, uint32_t okmask,
                                              __half* e_s, int e_base, int m0, int ex_act) {
    const __half2 h0 = __float2half2_rn(0.0f), h6 = __float2half2_rn(6.0f);
#pragma unroll
    for (int j = 0; j < MJ; ++j) {
        if (m0 + 2 * j < MT) {
            float acc[4] = {bb.x, bb.y, bb.x, bb.y};
#pragma unroll
            for (int ks = 0; ks < KS; ++ks) {
                uint32_t a[4];
                ldmatrix_x4(a_base + (j * 32 * AST + ks * 16) * 2, a[0], a[1], a[2], a[3]);
                mma_16816(acc, a, b[ks]);
            }
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                __half2 v = __floats2half2_rn(acc[2 * hr], acc[2 * hr + 1]);
                if (ex_act) v = __hmin2(__hmax2(v, h0), h6);
                const uint32_t u = ((okmask >> (2 * j + hr)) & 1u) ? h22u(v) : 0u;
                *reinterpret_cast<uint32_t*>(e_s + e_base + j * 1024 + hr * 256) = u;
            }
        }
    }
}

// a thread's 8 channels' depthwise weights (9 taps) and bias as half2 (zeros where !live)
__device__ __forceinline__ void hexdw3_dw_weights(const __half* __restrict__ wd, const float* __restrict__ bd, int CE,
                                                  int c, bool live, __half2 (&wr)[9][4], __half2 (&br)[4]) {
    const __half* wp = wd + (live ? c : 0);
#pragma unroll
    for (int k = 0; k < 9; ++k) {
        const uint4 u = live ? __ldg(reinterpret_cast<const uint4*>(wp + k * CE)) : make_uint4(0u, 0u, 0u, 0u);
        wr[k][0] = u2h2(u.x), wr[k][1] = u2h2(u.y), wr[k][2] = u2h2(u.z), wr[k][3] = u2h2(u.w);
    }
    const float4 b0 = live ? __ldg(reinterpret_cast<const float4*>(bd + c)) : make_float4(0.f, 0.f, 0.f, 0.f);
    const float4 b1 = live ? __ldg(reinterpret_cast<const float4*>(bd + c + 4)) : make_float4(0.f, 0.f, 0.f, 0.f);
    br[0] = __floats2half2_rn(b0.x, b0.y), br[1] = __floats2half2_rn(b0.z, b0.w);
    br[2] = __floats2half2_rn(b1.x, b1.y), br[3] = __floats2half2_rn(b1.z, b1.w);
}

template <int S, int CIN, int TH, int TW, int RB>
__device__ __forceinline__ void hexdw3_body(const __half* __restrict__ x, const __half* __restrict__ we,
                                            const float* __restrict__ be, const __half* __restrict__ wd,
                                            const float* __restrict__ bd, __half* __restrict__ y, int H, int W,
                                            int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {
    constexpr int KP = CIN <= 16 ? 16 : 32;
    constexpr int KS = KP / 16;
    constexpr int AST = KP + 8;
    constexpr int PH = (TH - 1) * S + 3, PW = (TW - 1) * S + 3;
    constexpr int PWP = S == 1 ? PW : 16;  // slots per patch row
    static_assert(S == 1 || PW <= 16, "stride-2 slot layout holds up to 16 patch columns");
    static_assert(TH % RB == 0, "RB must divide TH");
    constexpr int P = PH * PWP;
    constexpr int MT = (P + 15) / 16, MR = MT * 16;
    constexpr int MJ = (MT + 1) / 2;
    constexpr int ITEMS = (TH / RB) * TW * 4;
    __shared__ __align__(16) __half a_s[MR * AST];
    __shared__ __align__(16) __half e_s[MR * 32];

    const int tiles_w = (Wo + TW - 1) / TW;
    const int ty = blockIdx.x / tiles_w, tx = blockIdx.x - ty * tiles_w;
    const int n = blockIdx.z;
    const int chunks = (CE + 31) >> 5;
    const int ch0 = blockIdx.y * cpb;
    const int ch1 = min(chunks, ch0 + cpb);
    const int oy0 = ty * TH, ox0 = tx * TW;
    const int iy0 = oy0 * S - pad, ix0 = ox0 * S - pad;
    const int tid = threadIdx.x;

    // phase 0: the input patch, by slot
    hexdw3_stage_patch<S, CIN, PW, PWP, P, MR, AST>(x + (long long)n * H * W * CIN, a_s, H, W, iy0, ix0, tid);

    const int warp = tid >> 5, lane = tid & 31;
    const int nt = warp & 3, m0 = warp >> 2;
    const int g = lane >> 2, t4 = lane & 3;
    const int e_base = (m0 * 16 + g) * 32 + ((nt ^ ((g >> 1) & 3)) << 3) + 2 * t4;
    const uint32_t okmask = hexdw3_okmask<S, PW, PWP, P, MJ>(m0, g, iy0, ix0, H, W);
    const uint32_t a_base = smem_u32(a_s + (m0 * 16 + (lane & 15)) * AST + ((lane >> 4) << 3));

    uint32_t b[KS][2];
    float2 bb = make_float2(0.0f, 0.0f);
    hexdw_load_b<CIN, KS>(we, be, CE, ch0, nt, g, t4, b, bb);
    cp_async_wait<0>();
    __syncthreads();

    const int q = tid & 3;  // a thread's depthwise items all have the same 8-channel group (256 % 4 == 0)
    const __half2 h0 = __float2half2_rn(0.0f), h6 = __float2half2_rn(6.0f);
    for (int ch = ch0; ch < ch1; ++ch) {
        const int cbase = ch << 5;
        const int c = cbase + q * 8;
        const bool live = c < CE;
        if (cbase + nt * 8 < CE)  // warp-uniform
            hexdw3_expand<KS, MJ, MT, AST>(a_base, b, bb, okmask, e_s, e_base, m0, ex_act);
        // this thread's 8 channels' depthwise weights (9 taps) and bias as half2: issued after the expansion's
        // MMAs (not live during them), in flight over the barrier
        __half2 wr[9][4], br[4];
        hexdw3_dw_weights(wd, bd, CE, c, live, wr, br);
        __syncthreads();
        if (live) {
#pragma unroll 1
            for (int i = tid; i < ITEMS; i += 256) {
                const int rest = i >> 2;
                const int strip = rest / TW, ox = rest - strip * TW;
                const int oy = strip * RB;
                const int wo = ox0 + ox;
                if (wo >= Wo || oy0 + oy >= Ho) continue;
                __half2 acc[RB][4];
#pragma unroll
                for (int jj = 0; jj < RB; ++jj)
#pragma unroll
                    for (int k = 0; k < 4; ++k) acc[jj][k] = br[k];
#pragma unroll
                for (int r = 0; r < (RB - 1) * S + 3; ++r) {
                    uint4 v[3];
#pragma unroll
                    for (int kx = 0; kx < 3; ++kx) {
                        // slot of patch (oy * S + r, ox * S + kx)
                        const int col = S == 1 ? ox + kx : (kx == 1 ? 8 + ox : ox + (kx >> 1));
                        const int sl = (oy * S + r) * PWP + col;
                        const int off = (PWP % 8 == 0) ? sl * 32 + ((q ^ ((col >> 1) & 3)) << 3) : hexdw3_eoff(sl, q);
                        v[kx] = *reinterpret_cast<const uint4*>(e_s + off);
                    }
#pragma unroll
                    for (int jj = 0; jj < RB; ++jj) {
                        const int ky = r - jj * S;
                        if (ky < 0 || ky > 2) continue;
#pragma unroll
                        for (int kx = 0; kx < 3; ++kx) {
                            acc[jj][0] = __hfma2(u2h2(v[kx].x), wr[ky * 3 + kx][0], acc[jj][0]);
                            acc[jj][1] = __hfma2(u2h2(v[kx].y), wr[ky * 3 + kx][1], acc[jj][1]);
                            acc[jj][2] = __hfma2(u2h2(v[kx].z), wr[ky * 3 + kx][2], acc[jj][2]);
                            acc[jj][3] = __hfma2(u2h2(v[kx].w), wr[ky * 3 + kx][3], acc[jj][3]);
                        }
                    }
                }
#pragma unroll
                for (int jj = 0; jj < RB; ++jj) {
                    const int ho = oy0 + oy + jj;
                    if (ho >= Ho) break;
                    uint4 o;
                    __half2 t[4];
#pragma unroll
                    for (int k = 0; k < 4; ++k) t[k] = dw_act ? __hmin2(__hmax2(acc[jj][k], h0), h6) : acc[jj][k];
                    o.x = h22u(t[0]), o.y = h22u(t[1]), o.z = h22u(t[2]), o.w = h22u(t[3]);
                    *reinterpret_cast<uint4*>(y + (((long long)n * Ho + ho) * Wo + wo) * CE + c) = o;
                }
            }
        }
        // the next chunk's B fragments after the depthwise phase (not live over it), in flight over the barrier
        if (ch + 1 < ch1) hexdw_load_b<CIN, KS>(we, be, CE, ch + 1, nt, g, t4, b, bb);
        __syncthreads();
    }
}

// One extern "C" kernel per (stride, tile, CIN, blocks per SM): hexdw3_s<S>_t<T>_c<CIN> under
// __launch_bounds__(256, 3) (80 registers; the 14x14 and stride-2 builds spill 4-40 bytes) and ..._b2 under
// (256, 2) (98-115 registers, no spills); RB = 2 on the stride-1 14x14 tile, else 1.
#define HEXDW3_KERNEL(NAME, MINB, S, CIN, TH, TW, RB)                                                         \
    extern "C" __global__ void __launch_bounds__(256, MINB)                                                   \
    NAME(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,             \
         const __half* __restrict__ wd, const float* __restrict__ bd, __half* __restrict__ y, int H, int W,     \
         int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int cpb) {                                  \
        hexdw3_body<S, CIN, TH, TW, RB>(x, we, be, wd, bd, y, H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb);   \
    }
HEXDW3_KERNEL(hexdw3_s1_t14_c8, 3, 1, 8, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t14_c16, 3, 1, 16, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t14_c24, 3, 1, 24, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t14_c32, 3, 1, 32, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t7_c8, 3, 1, 8, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t7_c16, 3, 1, 16, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t7_c24, 3, 1, 24, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t7_c32, 3, 1, 32, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c8, 3, 2, 8, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c16, 3, 2, 16, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c24, 3, 2, 24, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c32, 3, 2, 32, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t14_c8_b2, 2, 1, 8, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t14_c16_b2, 2, 1, 16, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t14_c24_b2, 2, 1, 24, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t14_c32_b2, 2, 1, 32, 14, 14, 2)
HEXDW3_KERNEL(hexdw3_s1_t7_c8_b2, 2, 1, 8, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t7_c16_b2, 2, 1, 16, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t7_c24_b2, 2, 1, 24, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s1_t7_c32_b2, 2, 1, 32, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c8_b2, 2, 2, 8, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c16_b2, 2, 2, 16, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c24_b2, 2, 2, 24, 7, 7, 1)
HEXDW3_KERNEL(hexdw3_s2_t7_c32_b2, 2, 2, 32, 7, 7, 1)

// =============================================================================================
// hfuse v4 ("hexdwpw4"): the whole small-CIN bottleneck block in one fp16 kernel (host: HalfMixin._h_block_launch):
//   expansion 1x1 (+ ReLU6) -> depthwise 3x3 (+ ReLU6) -> projection 1x1 (+ bias, + residual), the fp16
//   counterpart of kernels/conv.cu's exdwpw5. A block owns a T x T output tile of one image and loops over ALL
//   expanded-channel chunks of 32: per chunk hexdw3's expansion (mma.sync -> e_s) and half2 depthwise phase,
//   whose output chunk (T*T pixels x 32 channels, half, XOR-swizzled rows of 64 bytes) goes to shared memory
//   (d_s) instead of HBM; then the projection of the chunk, a second mma.sync GEMM (M = T*T outputs, N = COUT,
//   K = 32) accumulated in fp32 registers across chunks (warp w: m-tiles w, w + 8 / w & 3, n-tiles by w >> 2).
//   Epilogue once per block: + bias, ReLU6 when pw_act, staged as fp32 through the (then dead) patch buffers,
//   + residual (16-byte loads), rounded to half, 16-byte stores of the COUT-channel block output. Two barriers
//   per chunk (E | D | P: the next chunk's E writes e_s after this D, its D writes d_s after this P).
//   Dynamic shared memory (a_s + e_s + d_s, up to 49 KB: opted in above 48 KB). Kernels
//   hexdwpw4_s<S>_t<T>_c<CIN>_p<COUT>, instances for MobileNetV2-1.0's six blocks (K.HEXDWPW4_INSTANCES).
//   Measured (H100, bs256, vs v3's pair + projection GEMM): 16->96->24 s2 495 vs 451 us, 24->144->24 s1 +res (t14)
//   290 vs 384, 24->144->32 s2 205 vs 205, 32->192->32 s1 +res (t14) 115 vs 139, 32->192->64 s2 88 vs 70: the
//   stride-1 blocks win, the stride-2 ones at 2 blocks per SM do not (the tuner keeps the pair there).
template <int S, int CIN, int COUT, int TH, int TW, int RB>
__device__ __forceinline__ void hexdwpw4_body(const __half* __restrict__ x, const __half* __restrict__ we,
                                              const float* __restrict__ be, const __half* __restrict__ wd,
                                              const float* __restrict__ bd, const __half* __restrict__ wp,
                                              const float* __restrict__ bp, const __half* __restrict__ r,
                                              __half* __restrict__ y, int H, int W, int CE, int Ho, int Wo, int pad,
                                              int ex_act, int dw_act, int pw_act, int has_res) {
    constexpr int KP = CIN <= 16 ? 16 : 32;
    constexpr int KS = KP / 16;
    constexpr int AST = KP + 8;
    constexpr int PH = (TH - 1) * S + 3, PW = (TW - 1) * S + 3;
    constexpr int PWP = S == 1 ? PW : 16;
    static_assert(S == 1 || PW <= 16, "stride-2 slot layout holds up to 16 patch columns");
    static_assert(TH % RB == 0, "RB must divide TH");
    static_assert(COUT % 8 == 0, "COUT must be a multiple of 8");
    constexpr int P = PH * PWP;
    constexpr int MT = (P + 15) / 16, MR = MT * 16;
    constexpr int MJ = (MT + 1) / 2;
    constexpr int ITEMS = (TH / RB) * TW * 4;
    constexpr int TO = TH * TW;                       // outputs per tile = projection M
    constexpr int MTO = (TO + 15) / 16;               // projection m-tiles
    constexpr int WM = MTO >= 8 ? 8 : 4;              // warps along M
    constexpr int WN = 8 / WM;                        // warps along N
    constexpr int NT = COUT / 8;                      // projection n-tiles
    constexpr int MS = (MTO + WM - 1) / WM, NS = (NT + WN - 1) / WN;
    constexpr int OST = COUT + 4;                     // fp32 output staging row stride (floats)
    static_assert(TO * OST * 4 <= MR * (AST + 32) * 2, "output staging must fit in the patch buffers");
    extern __shared__ __align__(16) unsigned char hexdwpw4_smem[];
    __half* a_s = reinterpret_cast<__half*>(hexdwpw4_smem);
    __half* e_s = a_s + MR * AST;
    __half* d_s = e_s + MR * 32;  // [TO][32], 16-byte chunk ^= (row >> 1) & 3
    float* o_s = reinterpret_cast<float*>(hexdwpw4_smem);  // after the chunk loop: [TO][OST] fp32

    const int tiles_w = (Wo + TW - 1) / TW;
    const int ty = blockIdx.x / tiles_w, tx = blockIdx.x - ty * tiles_w;
    const int n = blockIdx.z;
    const int chunks = (CE + 31) >> 5;
    const int oy0 = ty * TH, ox0 = tx * TW;
    const int iy0 = oy0 * S - pad, ix0 = ox0 * S - pad;
    const int tid = threadIdx.x;

    hexdw3_stage_patch<S, CIN, PW, PWP, P, MR, AST>(x + (long long)n * H * W * CIN, a_s, H, W, iy0, ix0, tid);

    const int warp = tid >> 5, lane = tid & 31;
    const int nt = warp & 3, m0 = warp >> 2;
    const int g = lane >> 2, t4 = lane & 3;
    const int e_base = (m0 * 16 + g) * 32 + ((nt ^ ((g >> 1) & 3)) << 3) + 2 * t4;
    const uint32_t okmask = hexdw3_okmask<S, PW, PWP, P, MJ>(m0, g, iy0, ix0, H, W);
    const uint32_t a_base = smem_u32(a_s + (m0 * 16 + (lane & 15)) * AST + ((lane >> 4) << 3));
    // projection: this warp's m-tiles wm + WM * i and n-tiles wn + WN * j; ldmatrix row addresses of d_s
    // (rows past TO clamped: their outputs are never stored)
    const int wm = warp % WM, wn = warp / WM;
    uint32_t d_row[MS];
    int d_swz[MS];
#pragma unroll
    for (int i = 0; i < MS; ++i) {
        const int row = min((wm + WM * i) * 16 + (lane & 15), TO - 1);
        d_row[i] = smem_u32(d_s + row * 32);
        d_swz[i] = (row >> 1) & 3;
    }
    float pacc[MS][NS][4];
#pragma unroll
    for (int i = 0; i < MS; ++i)
#pragma unroll
        for (int j = 0; j < NS; ++j)
#pragma unroll
            for (int k = 0; k < 4; ++k) pacc[i][j][k] = 0.0f;

    uint32_t b[KS][2];
    float2 bb = make_float2(0.0f, 0.0f);
    hexdw_load_b<CIN, KS>(we, be, CE, 0, nt, g, t4, b, bb);
    cp_async_wait<0>();
    __syncthreads();

    const int q = tid & 3;
    const __half2 h0 = __float2half2_rn(0.0f), h6 = __float2half2_rn(6.0f);
#pragma unroll 1
    for (int ch = 0; ch < chunks; ++ch) {
        const int cbase = ch << 5;
        const int c = cbase + q * 8;
        const bool live = c < CE;
        if (cbase + nt * 8 < CE)  // warp-uniform
            hexdw3_expand<KS, MJ, MT, AST>(a_base, b, bb, okmask, e_s, e_base, m0, ex_act);
        __half2 wr[9][4], br[4];
        hexdw3_dw_weights(wd, bd, CE, c, live, wr, br);
        __syncthreads();
        // depthwise phase -> d_s (zeros for the channels past CE: the projection's K padding)
#pragma unroll 1
        for (int i = tid; i < ITEMS; i += 256) {
            const int rest = i >> 2;
            const int strip = rest / TW, ox = rest - strip * TW;
            const int oy = strip * RB;
            __half2 acc[RB][4];
#pragma unroll
            for (int jj = 0; jj < RB; ++jj)
#pragma unroll
                for (int k = 0; k < 4; ++k) acc[jj][k] = br[k];
            if (live) {
#pragma unroll
                for (int rr = 0; rr < (RB - 1) * S + 3; ++rr) {
                    uint4 v[3];
#pragma unroll
                    for (int kx = 0; kx < 3; ++kx) {
                        const int col = S == 1 ? ox + kx : (kx == 1 ? 8 + ox : ox + (kx >> 1));
                        const int sl = (oy * S + rr) * PWP + col;
                        const int off = (PWP % 8 == 0) ? sl * 32 + ((q ^ ((col >> 1) & 3)) << 3) : hexdw3_eoff(sl, q);
                        v[kx] = *reinterpret_cast<const uint4*>(e_s + off);
                    }
#pragma unroll
                    for (int jj = 0; jj < RB; ++jj) {
                        const int ky = rr - jj * S;
                        if (ky < 0 || ky > 2) continue;
#pragma unroll
                        for (int kx = 0; kx < 3; ++kx) {
                            acc[jj][0] = __hfma2(u2h2(v[kx].x), wr[ky * 3 + kx][0], acc[jj][0]);
                            acc[jj][1] = __hfma2(u2h2(v[kx].y), wr[ky * 3 + kx][1], acc[jj][1]);
                            acc[jj][2] = __hfma2(u2h2(v[kx].z), wr[ky * 3 + kx][2], acc[jj][2]);
                            acc[jj][3] = __hfma2(u2h2(v[kx].w), wr[ky * 3 + kx][3], acc[jj][3]);
                        }
                    }
                }
            }
#pragma unroll
            for (int jj = 0; jj < RB; ++jj) {
                const int row = (oy + jj) * TW + ox;
                uint4 o;
                __half2 t[4];
#pragma unroll
                for (int k = 0; k < 4; ++k) t[k] = dw_act ? __hmin2(__hmax2(acc[jj][k], h0), h6) : acc[jj][k];
                o.x = h22u(t[0]), o.y = h22u(t[1]), o.z = h22u(t[2]), o.w = h22u(t[3]);
                *reinterpret_cast<uint4*>(d_s + row * 32 + ((q ^ ((row >> 1) & 3)) << 3)) = o;
            }
        }
        // the projection's B fragments of this chunk (n = output channel, k = expanded channel; 0 past CE / COUT)
        uint32_t pb[NS][2][2];
#pragma unroll
        for (int j = 0; j < NS; ++j) {
            const int ncol = (wn + WN * j) * 8 + g;
            const bool nl = ncol < COUT;
            const __half* wrow = wp + (long long)(nl ? ncol : 0) * CE;
#pragma unroll
            for (int ks = 0; ks < 2; ++ks) {
                const int k0 = cbase + ks * 16 + 2 * t4, k1 = k0 + 8;
                pb[j][ks][0] = nl && k0 < CE ? __ldg(reinterpret_cast<const unsigned int*>(wrow + k0)) : 0u;
                pb[j][ks][1] = nl && k1 < CE ? __ldg(reinterpret_cast<const unsigned int*>(wrow + k1)) : 0u;
            }
        }
        if (ch + 1 < chunks) hexdw_load_b<CIN, KS>(we, be, CE, ch + 1, nt, g, t4, b, bb);
        __syncthreads();
        // projection of this chunk: pacc += d_s (TO x 32) @ Wp[:, chunk]^T
#pragma unroll
        for (int i = 0; i < MS; ++i) {
            if (wm + WM * i >= MTO) continue;
#pragma unroll
            for (int ks = 0; ks < 2; ++ks) {
                uint32_t a[4];
                const int chunk16 = ks * 2 + (lane >> 4);
                ldmatrix_x4(d_row[i] + ((chunk16 ^ d_swz[i]) << 4), a[0], a[1], a[2], a[3]);
#pragma unroll
                for (int j = 0; j < NS; ++j)
                    if (wn + WN * j < NT) mma_16816(pacc[i][j], a, pb[j][ks]);
            }
        }
    }
    // epilogue: + bias, ReLU6 when pw_act -> fp32 staging over the dead patch buffers (their last readers
    // passed the chunk loop's last barrier)
#pragma unroll
    for (int i = 0; i < MS; ++i) {
        const int mt = wm + WM * i;
        if (mt >= MTO) continue;
#pragma unroll
        for (int j = 0; j < NS; ++j) {
            const int nn = (wn + WN * j) * 8 + 2 * t4;
            if (nn >= COUT) continue;
            const float2 bias = __ldg(reinterpret_cast<const float2*>(bp + nn));
#pragma unroll
            for (int hr = 0; hr < 2; ++hr) {
                const int row = mt * 16 + g + hr * 8;
                if (row >= TO) continue;
                float2 v = make_float2(h_act(pacc[i][j][2 * hr] + bias.x, pw_act), h_act(pacc[i][j][2 * hr + 1] + bias.y, pw_act));
                *reinterpret_cast<float2*>(o_s + row * OST + nn) = v;
            }
        }
    }
    __syncthreads();
    // + residual, round to half, 16-byte stores (8 channels per item)
    for (int i = tid; i < TO * (COUT / 8); i += 256) {
        const int row = i / (COUT / 8), c8 = i - row * (COUT / 8);
        const int oy = row / TW, ox = row - oy * TW;
        const int ho = oy0 + oy, wo = ox0 + ox;
        if (ho >= Ho || wo >= Wo) continue;
        float f[8];
        const float4 v0 = *reinterpret_cast<const float4*>(o_s + row * OST + c8 * 8);
        const float4 v1 = *reinterpret_cast<const float4*>(o_s + row * OST + c8 * 8 + 4);
        f[0] = v0.x, f[1] = v0.y, f[2] = v0.z, f[3] = v0.w, f[4] = v1.x, f[5] = v1.y, f[6] = v1.z, f[7] = v1.w;
        const long long off = (((long long)n * Ho + ho) * Wo + wo) * COUT + c8 * 8;
        if (has_res) {
            float rf[8];
            h8_to_f(__ldg(reinterpret_cast<const uint4*>(r + off)), rf);
#pragma unroll
            for (int k = 0; k < 8; ++k) f[k] += rf[k];
        }
        *reinterpret_cast<uint4*>(y + off) = f_to_h8(f);
    }
}
// One extern "C" kernel per instance (stride, tile, CIN, COUT): hexdwpw4_s<S>_t<T>_c<CIN>_p<COUT>, 2 blocks per SM.
#define HEXDWPW4_KERNEL(NAME, MINB, S, CIN, COUT, TH, TW, RB)                                                  \
    extern "C" __global__ void __launch_bounds__(256, MINB)                                                   \
    NAME(const __half* __restrict__ x, const __half* __restrict__ we, const float* __restrict__ be,             \
         const __half* __restrict__ wd, const float* __restrict__ bd, const __half* __restrict__ wp,           \
         const float* __restrict__ bp, const __half* __restrict__ r, __half* __restrict__ y, int H, int W,      \
         int CE, int Ho, int Wo, int pad, int ex_act, int dw_act, int pw_act, int has_res) {                  \
        hexdwpw4_body<S, CIN, COUT, TH, TW, RB>(x, we, be, wd, bd, wp, bp, r, y, H, W, CE, Ho, Wo, pad, ex_act, \
                                                dw_act, pw_act, has_res);                                     \
    }
HEXDWPW4_KERNEL(hexdwpw4_s2_t7_c16_p24, 2, 2, 16, 24, 7, 7, 1)
HEXDWPW4_KERNEL(hexdwpw4_s1_t14_c24_p24, 2, 1, 24, 24, 14, 14, 2)
HEXDWPW4_KERNEL(hexdwpw4_s1_t7_c24_p24, 2, 1, 24, 24, 7, 7, 1)
HEXDWPW4_KERNEL(hexdwpw4_s2_t7_c24_p32, 2, 2, 24, 32, 7, 7, 1)
HEXDWPW4_KERNEL(hexdwpw4_s1_t14_c32_p32, 2, 1, 32, 32, 14, 14, 2)
HEXDWPW4_KERNEL(hexdwpw4_s1_t7_c32_p32, 2, 1, 32, 32, 7, 7, 1)
HEXDWPW4_KERNEL(hexdwpw4_s2_t7_c32_p64, 2, 2, 32, 64, 7, 7, 1)
