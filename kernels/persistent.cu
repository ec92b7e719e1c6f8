// The whole network in one persistent kernel (op family "net", impls/_custom_persistent.py).
//
// Versions of family "net":
//   v1  one kernel per layer (the other .cu files; the CUDA-graph plan of ~55 launches)
//   v2  net_persistent: one launch, grid = SMs x resident blocks, that walks a table of stages in
//       device memory; every block takes the work items of a stage grid-stride, then all blocks meet
//       at a grid barrier (flip-bit arrive counter, release/acquire, the scheme of cooperative
//       groups' grid.sync) before the next stage. Stages: stem 3x3 s2 conv on the NCHW input
//       (layout transpose fused in), depthwise 3x3 + ReLU6, pointwise GEMM (+bias, ReLU6, residual)
//       with split-K reduced by the last-arriving block (deterministic order, no extra barrier),
//       depthwise 3x3 computed inside the pointwise GEMM's A-tile load (one stage, one barrier per
//       dw + projection pair), global average pool, classifier GEMV. fp32 FMA throughout, NHWC.
//       Measured (H100, fp32): batch 1 0.326 ms (v1 graph 0.257: lost), batch 8 0.730 ms (v1 0.592);
//       grid barrier 1.4-1.8 us; see results/NOTES.md, "batch 1: persistent whole-network kernel (net v2)".
//
// Memory model: activations written in one stage are read in a later one by other blocks, so they
// are read with plain (coherent) loads, never __ldg / ld.global.nc; the barrier's acquire makes them
// visible. Weights and biases (read-only for the launch) use __ldg. Split-K partials go through L2
// only (__stcg / __ldcg).


#define NT 256  // threads per block (impls/_custom_persistent.py: NT)

struct Stage {
    int kind, act, dwact, has_res;
    int nb, h, wd, c;  // input (NHWC; stem: NCHW with c = 3); dwpw: the depthwise input
    int ho, wo, n;    // output spatial size and channels / features
    int stride, pad;
    int m, k;  // GEMM rows (nb * ho * wo) and reduction length
    int tile;  // GEMM tile variant (TILES in impls/_custom_persistent.py)
    int tiles_m, tiles_n, splits, kchunk;
    int items;  // work items of the stage (info; the loops recompute their own bounds)
    int sync;   // grid barrier after this stage
    int pad0, pad1;
    const float* in;
    float* out;
    const float* res;
    const float* w;
    const float* b;
    const float* dw_w;
    const float* dw_b;
    float* ws;
};
static_assert(sizeof(Stage) == 160, "Stage layout must match STAGE_DTYPE in impls/_custom_persistent.py");

enum { K_NOP = 0, K_STEM = 1, K_DW = 2, K_PW = 3, K_DWPW = 4, K_POOL = 5, K_LINEAR = 6 };

__device__ __forceinline__ float relu6f(float v) { return fminf(fmaxf(v, 0.f), 6.f); }
__device__ __forceinline__ float4 relu6f4(float4 v) {
    return make_float4(relu6f(v.x), relu6f(v.y), relu6f(v.z), relu6f(v.w));
}
__device__ __forceinline__ void fma4(float4& a, float4 x, float4 w) {
    a.x = fmaf(x.x, w.x, a.x);
    a.y = fmaf(x.y, w.y, a.y);
    a.z = fmaf(x.z, w.z, a.z);
    a.w = fmaf(x.w, w.w, a.w);
}
__device__ __forceinline__ float4 add4(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ float4 ldg4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }
__device__ __forceinline__ void st4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }

// Grid barrier: block 0 adds 0x80000000 - (blocks - 1), the others add 1, so the top bit of the
// counter flips exactly when every block has arrived; no reset, reusable from any start value.
__device__ __forceinline__ void grid_barrier(unsigned int* bar) {
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned int add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
        unsigned int old, cur;
        asm volatile("atom.add.release.gpu.u32 %0,[%1],%2;" : "=r"(old) : "l"(bar), "r"(add) : "memory");
        do {
            asm volatile("ld.acquire.gpu.u32 %0,[%1];" : "=r"(cur) : "l"(bar) : "memory");
        } while (((old ^ cur) & 0x80000000u) == 0);
    }
    __syncthreads();
}

// -- stem: 3x3 conv on the 3-channel NCHW input, 8 output channels per thread, NHWC out --------------
__device__ void stage_stem(const Stage& st) {
    const int groups = st.n >> 3;
    const int total = st.nb * st.ho * st.wo * groups;
    const int hw = st.h * st.wd;
    for (int it = blockIdx.x * NT + threadIdx.x; it < total; it += gridDim.x * NT) {
        const int g = it % groups;
        const int pix = it / groups;
        const int ox = pix % st.wo;
        const int t = pix / st.wo;
        const int oy = t % st.ho;
        const int img = t / st.ho;
        const float* x = st.in + (size_t)img * 3 * hw;
        const float* wg = st.w + g * 8;
        float4 a0 = ldg4(st.b + g * 8), a1 = ldg4(st.b + g * 8 + 4);
#pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const int iy = oy * st.stride - st.pad + ky;
            if (iy < 0 || iy >= st.h) continue;
#pragma unroll
            for (int kx = 0; kx < 3; ++kx) {
                const int ix = ox * st.stride - st.pad + kx;
                if (ix < 0 || ix >= st.wd) continue;
#pragma unroll
                for (int ci = 0; ci < 3; ++ci) {
                    const float v = x[ci * hw + iy * st.wd + ix];
                    const float* wr = wg + ((ky * 3 + kx) * 3 + ci) * st.n;
                    const float4 w0 = ldg4(wr), w1 = ldg4(wr + 4);
                    fma4(a0, make_float4(v, v, v, v), w0);
                    fma4(a1, make_float4(v, v, v, v), w1);
                }
            }
        }
        if (st.act) {
            a0 = relu6f4(a0);
            a1 = relu6f4(a1);
        }
        float* y = st.out + (size_t)pix * st.n + g * 8;
        if (st.has_res) {
            a0 = add4(a0, ld4(st.res + (size_t)pix * st.n + g * 8));
            a1 = add4(a1, ld4(st.res + (size_t)pix * st.n + g * 8 + 4));
        }
        st4(y, a0);
        st4(y + 4, a1);
    }
}

// -- depthwise 3x3 value at output pixel m (of the ho x wo grid), channels k..k+3 ---------------------
// All 9 window loads are issued unconditionally from clamped (always valid) addresses and masked
// afterwards, so they are in flight together instead of one L2 round trip per tap behind a branch.
__device__ __forceinline__ float4 dw_point(const float* x, const float* __restrict__ w,
                                           const float* __restrict__ b, int m, int k, int c, int h, int wd,
                                           int ho, int wo, int s, int pad, int act) {
    const int ox = m % wo;
    const int t = m / wo;
    const int oy = t % ho;
    const int img = t / ho;
    const float* xi = x + (size_t)img * h * wd * c + k;
    float4 v[9];
    bool ok[9];
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        const int iy = oy * s - pad + ky;
        const int cy = min(max(iy, 0), h - 1);
#pragma unroll
        for (int kx = 0; kx < 3; ++kx) {
            const int ix = ox * s - pad + kx;
            const int cx = min(max(ix, 0), wd - 1);
            ok[ky * 3 + kx] = iy >= 0 && iy < h && ix >= 0 && ix < wd;
            v[ky * 3 + kx] = ld4(xi + ((size_t)cy * wd + cx) * c);
        }
    }
    float4 acc = ldg4(b + k);
#pragma unroll
    for (int i = 0; i < 9; ++i)
        if (ok[i]) fma4(acc, v[i], ldg4(w + i * c + k));
    return act ? relu6f4(acc) : acc;
}

__device__ void stage_dw(const Stage& st) {
    const int c4 = st.c >> 2;
    const int total = st.nb * st.ho * st.wo * c4;
    for (int it = blockIdx.x * NT + threadIdx.x; it < total; it += gridDim.x * NT) {
        const int k = (it % c4) * 4;
        const int m = it / c4;
        float4 v = dw_point(st.in, st.w, st.b, m, k, st.c, st.h, st.wd, st.ho, st.wo, st.stride, st.pad, st.act);
        const size_t o = (size_t)m * st.c + k;
        if (st.has_res) v = add4(v, ld4(st.res + o));
        st4(st.out + o, v);
    }
}

// -- pointwise GEMM work item: C[m0:m0+BM, n0:n0+BN] (+)= A[m, kb:ke] @ B[kb:ke, n] ------------------
// A = activations (M, K) row-major, or (DW) the depthwise 3x3 of the dw input computed while loading;
// B = weights (K, N) row-major. Register prefetch of the next k-step while the current one is in FMAs,
// double-buffered shared memory, one __syncthreads per k-step. splits > 1: raw partials to ws, the
// last block to finish a tile (arrival counter) sums the partials in split order and runs the epilogue.
template <int BM, int BN, int BK>
struct TileSmem {
    static constexpr int AS = BM + 4;  // padded row of the transposed A tile
    static constexpr int FLOATS = 2 * BK * AS + 2 * BK * BN;
};

template <int BM, int BN, int TM, int TN, int BK, bool DW>
__device__ void gemm_item(const Stage& st, int item, float* smem, unsigned int* counters) {
    constexpr int TX = BN / TN;
    constexpr int TY = BM / TM;
    static_assert(TX * TY == NT, "tile / thread mismatch");
    constexpr int AQ = BK / 4;  // float4 per A row of a k-step
    constexpr int BQ = BN / 4;  // float4 per B row
    constexpr int A_F4 = BM * AQ / NT;
    constexpr int B_F4 = BK * BQ / NT;
    static_assert(A_F4 >= 1 && B_F4 >= 1 && A_F4 * NT == BM * AQ && B_F4 * NT == BK * BQ, "load split");
    constexpr int AS = TileSmem<BM, BN, BK>::AS;
    float* As = smem;                 // [2][BK][AS]
    float* Bs = smem + 2 * BK * AS;   // [2][BK][BN]
    __shared__ int s_last;

    const int tiles_mn = st.tiles_m * st.tiles_n;
    const int split = item / tiles_mn;
    const int tmn = item - split * tiles_mn;
    const int tm = tmn / st.tiles_n;
    const int tn = tmn - tm * st.tiles_n;
    const int m0 = tm * BM, n0 = tn * BN;
    const int kb = split * st.kchunk;
    const int ke = min(st.k, kb + st.kchunk);
    const int tid = threadIdx.x;
    const int tx = tid % TX, ty = tid / TX;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;

    float4 ra[A_F4], rb[B_F4];
    const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
    auto load = [&](int k0) {
#pragma unroll
        for (int i = 0; i < A_F4; ++i) {
            const int idx = tid + i * NT;
            const int row = idx / AQ, kq = idx - row * AQ;
            const int m = m0 + row, k = k0 + kq * 4;
            if (m < st.m && k < ke) {
                if (DW)
                    ra[i] = dw_point(st.in, st.dw_w, st.dw_b, m, k, st.k, st.h, st.wd, st.ho, st.wo, st.stride, st.pad,
                                     st.dwact);
                else
                    ra[i] = ld4(st.in + (size_t)m * st.k + k);
            } else {
                ra[i] = zero;
            }
        }
#pragma unroll
        for (int i = 0; i < B_F4; ++i) {
            const int idx = tid + i * NT;
            const int kr = idx / BQ, nq = idx - kr * BQ;
            const int k = k0 + kr, n = n0 + nq * 4;
            rb[i] = (k < ke && n < st.n) ? ldg4(st.w + (size_t)k * st.n + n) : zero;
        }
    };
    auto store = [&](int buf) {
        float* a = As + buf * BK * AS;
        float* b = Bs + buf * BK * BN;
#pragma unroll
        for (int i = 0; i < A_F4; ++i) {
            const int idx = tid + i * NT;
            const int row = idx / AQ, kq = idx - row * AQ;
            a[(kq * 4 + 0) * AS + row] = ra[i].x;
            a[(kq * 4 + 1) * AS + row] = ra[i].y;
            a[(kq * 4 + 2) * AS + row] = ra[i].z;
            a[(kq * 4 + 3) * AS + row] = ra[i].w;
        }
#pragma unroll
        for (int i = 0; i < B_F4; ++i) {
            const int idx = tid + i * NT;
            const int kr = idx / BQ, nq = idx - kr * BQ;
            st4(b + kr * BN + nq * 4, rb[i]);
        }
    };

    const int nk = (ke - kb + BK - 1) / BK;
    load(kb);
    store(0);
    __syncthreads();
    for (int t = 0; t < nk; ++t) {
        const int buf = t & 1;
        if (t + 1 < nk) load(kb + (t + 1) * BK);
        const float* a = As + buf * BK * AS + ty * TM;
        const float* b = Bs + buf * BK * BN + tx * TN;
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float av[TM], bv[TN];
#pragma unroll
            for (int i = 0; i < TM; i += 2) {
                const float2 q = *reinterpret_cast<const float2*>(a + kk * AS + i);
                av[i] = q.x;
                av[i + 1] = q.y;
            }
#pragma unroll
            for (int j = 0; j < TN; j += 2) {
                const float2 q = *reinterpret_cast<const float2*>(b + kk * BN + j);
                bv[j] = q.x;
                bv[j + 1] = q.y;
            }
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        if (t + 1 < nk) store(buf ^ 1);
        __syncthreads();
    }

    if (st.splits > 1) {
        float* part = st.ws + (size_t)split * st.m * st.n;
#pragma unroll
        for (int i = 0; i < TM; ++i) {
            const int m = m0 + ty * TM + i;
            if (m >= st.m) continue;
#pragma unroll
            for (int j = 0; j < TN; j += 2) {
                const int n = n0 + tx * TN + j;
                if (n < st.n) __stcg(reinterpret_cast<float2*>(part + (size_t)m * st.n + n), make_float2(acc[i][j], acc[i][j + 1]));
            }
        }
        __threadfence();
        __syncthreads();
        if (tid == 0) {
            const unsigned int old = atomicAdd(counters + tmn, 1u);
            s_last = old == (unsigned int)(st.splits - 1);
            if (s_last) counters[tmn] = 0;  // ready for the next split-K stage (ordered by the grid barrier)
        }
        __syncthreads();
        if (!s_last) return;
        __threadfence();
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = 0.f;
#pragma unroll 4
        for (int s = 0; s < st.splits; ++s) {
            const float* p = st.ws + (size_t)s * st.m * st.n;
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const int m = m0 + ty * TM + i;
                if (m >= st.m) continue;
#pragma unroll
                for (int j = 0; j < TN; j += 2) {
                    const int n = n0 + tx * TN + j;
                    if (n < st.n) {
                        const float2 q = __ldcg(reinterpret_cast<const float2*>(p + (size_t)m * st.n + n));
                        acc[i][j] += q.x;
                        acc[i][j + 1] += q.y;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int m = m0 + ty * TM + i;
        if (m >= st.m) continue;
#pragma unroll
        for (int j = 0; j < TN; j += 2) {
            const int n = n0 + tx * TN + j;
            if (n >= st.n) continue;
            const float2 bb = __ldg(reinterpret_cast<const float2*>(st.b + n));
            float v0 = acc[i][j] + bb.x, v1 = acc[i][j + 1] + bb.y;
            if (st.act) {
                v0 = relu6f(v0);
                v1 = relu6f(v1);
            }
            const size_t o = (size_t)m * st.n + n;
            if (st.has_res) {
                const float2 r = *reinterpret_cast<const float2*>(st.res + o);
                v0 += r.x;
                v1 += r.y;
            }
            *reinterpret_cast<float2*>(st.out + o) = make_float2(v0, v1);
        }
    }
}

template <int BM, int BN, int TM, int TN, int BK, bool DW>
__device__ void stage_gemm(const Stage& st, float* smem, unsigned int* counters) {
    const int items = st.tiles_m * st.tiles_n * st.splits;
    for (int it = blockIdx.x; it < items; it += gridDim.x) gemm_item<BM, BN, TM, TN, BK, DW>(st, it, smem, counters);
}

template <bool DW>
__device__ void stage_gemm_any(const Stage& st, float* smem, unsigned int* counters) {
    switch (st.tile) {
        case 0: stage_gemm<64, 64, 4, 4, 16, DW>(st, smem, counters); break;
        case 1: stage_gemm<32, 32, 2, 2, 32, DW>(st, smem, counters); break;
        case 2: stage_gemm<32, 64, 2, 4, 32, DW>(st, smem, counters); break;
        default: stage_gemm<64, 32, 4, 2, 32, DW>(st, smem, counters); break;
    }
}

// -- global average pool: (nb, h, wd, c) -> (nb, c), 4 channels per thread -------------------------------
__device__ void stage_pool(const Stage& st) {
    const int c4 = st.c >> 2;
    const int hw = st.h * st.wd;
    const int total = st.nb * c4;
    const float inv = 1.f / (float)hw;
    for (int it = blockIdx.x * NT + threadIdx.x; it < total; it += gridDim.x * NT) {
        const int k = (it % c4) * 4;
        const int img = it / c4;
        const float* x = st.in + (size_t)img * hw * st.c + k;
        float4 s = make_float4(0.f, 0.f, 0.f, 0.f);
        for (int p = 0; p < hw; ++p) s = add4(s, ld4(x + (size_t)p * st.c));
        st4(st.out + (size_t)img * st.c + k, make_float4(s.x * inv, s.y * inv, s.z * inv, s.w * inv));
    }
}

// -- classifier: out (nb, n) = x (nb, k) @ W^T + b, W (n, k); one warp per output feature --------------
__device__ void stage_linear(const Stage& st) {
    const int lane = threadIdx.x & 31;
    const int warps = gridDim.x * (NT / 32);
    const int k4 = st.k >> 2;
    for (int o = blockIdx.x * (NT / 32) + (threadIdx.x >> 5); o < st.n; o += warps) {
        const float* wr = st.w + (size_t)o * st.k;
        const float bo = __ldg(st.b + o);
        for (int img = 0; img < st.nb; ++img) {
            const float* x = st.in + (size_t)img * st.k;
            float s = 0.f;
            for (int q = lane; q < k4; q += 32) {
                const float4 a = ld4(x + q * 4), w = ldg4(wr + q * 4);
                s = fmaf(a.x, w.x, s);
                s = fmaf(a.y, w.y, s);
                s = fmaf(a.z, w.z, s);
                s = fmaf(a.w, w.w, s);
            }
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
            if (lane == 0) st.out[(size_t)img * st.n + o] = s + bo;
        }
    }
}

constexpr int smax(int a, int b) { return a > b ? a : b; }
constexpr int SMEM_FLOATS = smax(smax(TileSmem<64, 64, 16>::FLOATS, TileSmem<32, 32, 32>::FLOATS),
                                 smax(TileSmem<32, 64, 32>::FLOATS, TileSmem<64, 32, 32>::FLOATS));

// sync[0]: the grid barrier's counter; sync[1 ...]: split-K arrival counters (zero between stages).
// record != 0: per stage and block, stamps[(s * blocks + b) * 2 + 0] = clock64 cycles from the stage's
// start to the end of this block's work, [.. + 1] = to the end of the grid barrier; after the stages,
// stamps[nstages * blocks * 2 + 0..3] = block 0's globaltimer (ns) and clock64 at start and end.
extern "C" __global__ void __launch_bounds__(NT, 2)
    net_persistent(const Stage* stages, int nstages, unsigned int* sync, long long* stamps, int record) {
    __shared__ __align__(16) float smem[SMEM_FLOATS];
    __shared__ __align__(16) Stage st;
    long long g0 = 0, c0 = 0;
    if (record && blockIdx.x == 0 && threadIdx.x == 0) {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g0));
        c0 = clock64();
    }
    for (int s = 0; s < nstages; ++s) {
        const long long t0 = record ? clock64() : 0;
        if (threadIdx.x < (int)(sizeof(Stage) / 4))
            reinterpret_cast<int*>(&st)[threadIdx.x] = __ldg(reinterpret_cast<const int*>(stages + s) + threadIdx.x);
        __syncthreads();
        switch (st.kind) {
            case K_STEM: stage_stem(st); break;
            case K_DW: stage_dw(st); break;
            case K_PW: stage_gemm_any<false>(st, smem, sync + 1); break;
            case K_DWPW: stage_gemm_any<true>(st, smem, sync + 1); break;
            case K_POOL: stage_pool(st); break;
            case K_LINEAR: stage_linear(st); break;
            default: break;
        }
        long long* rec = stamps + ((size_t)s * gridDim.x + blockIdx.x) * 2;
        if (record) {
            __syncthreads();
            if (threadIdx.x == 0) rec[0] = clock64() - t0;
        }
        if (st.sync)
            grid_barrier(sync);
        else
            __syncthreads();  // st is rewritten next
        if (record && threadIdx.x == 0) rec[1] = clock64() - t0;
    }
    if (record && blockIdx.x == 0 && threadIdx.x == 0) {
        long long g1;
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g1));
        long long* tail = stamps + (size_t)nstages * gridDim.x * 2;
        tail[0] = g0;
        tail[1] = g1;
        tail[2] = c0;
        tail[3] = clock64();
    }
}
