"""Session 41: can the FP64 tensor cores (DMMA, sm_90) run exdwpw6's expansion phase faster than its FFMAs? Any sm_90
GPU with nvcc; results/NOTES.md "Session 41" cites its output.

    python3 scripts/dmma_probe.py [--json out.json]

Why: session 40 found the batch-1 plan's expansion phase (14x14 64 -> 384 block, 24 channels per block: 56 staged
pixels x 64 inputs x 24 channels = 86k FMA) bound by FFMA issue on the 2 busiest of 4 schedulers (~2040 cycles, the
work spread evenly at the FFMA peak would take ~670). One DMMA.16x8x16 does 2048 FMAs in one instruction, in float64:
fp32 inputs and weights are exact in float64 and so are their products, the sums are float64, and the result is
rounded to fp32 once (at least as accurate as an fp32 FFMA chain; no TF32 anywhere). Two parts:

  rate     DMMA throughput: float64 FMAs per cycle per SM by shape (8x8x4, 16x8x4, 16x8x8, 16x8x16), warps per
           scheduler W and independent accumulators per warp A (registers only: the same A / B registers every DMMA),
           one block per SM; rate_fresh: 16x8x16 with A / B alternating between two register sets; rate_lds: each
           16x8x16's fragments loaded from shared memory (8 LDS.64 + 2 LDS.128). Every rate kernel does
           RATE_FMA_PER_LANE FMAs per lane (rate_plan)
  phase    the expansion phase as DMMA tiles (M = pixels, padded 56 -> 64; N = 24 channels; K = 64), one 512-thread
           block per SM, timed as scripts/ex_phase_probe.py times the plan's (clock64 between block barriers, second
           pass, median over blocks), its output checked against NumPy float64:
             d16_w12      12 warps, one 16 x 8 output tile each, 4 chained 16x8x16 DMMAs; inputs already float64 in
                          shared memory ([pixel][k], rows 68 doubles apart: conflict-free fragment loads)
             d16_w12_cvt  the same, plus the float32 -> float64 pass over the staged inputs inside the timed phase
             d16_w4       4 warps, one 16-pixel row of tiles each (3 tiles, 12 DMMAs)
             d8_w12       12 warps, 8 chained 16x8x8 DMMAs
             d4_w12       12 warps, 16 chained 16x8x4 DMMAs
             d16_w12_f32a 12 warps, the A fragments converted from the float32 staged rows at each k step (no pass)
           Weights float64 in fragment order (a host-side layout, as the block kernel's weights are uploaded once).
           Epilogue as the plan's: + bias, ReLU6, rounded to fp32 into Es (rows CH + 4 floats apart).
           Then GPHASES (gphase: warps = m-tile group x n-tile group x k slice, B in a conflict-free order, the k
           slices' partials summed through shared memory) and HPHASES (hphase: the plan's FFMA tiles on some channels
           beside DMMA tiles on the others, both pipes at once); their comments in SRC say more.

Compare the phase's cycles with scripts/ex_phase_probe.py's "plan" (the FFMA phase, 2037 cycles on the H100).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402

IP, CIN, CH = 56, 64, 24  # the plan's 14x14 c24x16 expansion: staged pixels, inputs, channels per block
XS, CS = CIN + 4, CH + 4  # fp32 staged row stride and Es row stride, as exdwpw6_body's
XDS = CIN + 4  # float64 row stride: rows 8 words apart mod 32, so a half warp's 16 fragment loads hit 32 banks
MP = 64  # pixels padded to 4 tiles of 16

SRC = r"""
#include "cblock.cu"
#define MMA_F64_16816(d, a, b) asm volatile( \
    "mma.sync.aligned.m16n8k16.row.col.f64.f64.f64.f64 {%%0,%%1,%%2,%%3}, {%%4,%%5,%%6,%%7,%%8,%%9,%%10,%%11}, " \
    "{%%12,%%13,%%14,%%15}, {%%0,%%1,%%2,%%3};\n" \
    : "+d"(d[0]), "+d"(d[1]), "+d"(d[2]), "+d"(d[3]) \
    : "d"(a[0]), "d"(a[1]), "d"(a[2]), "d"(a[3]), "d"(a[4]), "d"(a[5]), "d"(a[6]), "d"(a[7]), \
      "d"(b[0]), "d"(b[1]), "d"(b[2]), "d"(b[3]))
#define MMA_F64_1688(d, a, b) asm volatile( \
    "mma.sync.aligned.m16n8k8.row.col.f64.f64.f64.f64 {%%0,%%1,%%2,%%3}, {%%4,%%5,%%6,%%7}, {%%8,%%9}, " \
    "{%%0,%%1,%%2,%%3};\n" \
    : "+d"(d[0]), "+d"(d[1]), "+d"(d[2]), "+d"(d[3]) : "d"(a[0]), "d"(a[1]), "d"(a[2]), "d"(a[3]), "d"(b[0]), "d"(b[1]))
#define MMA_F64_1684(d, a, b) asm volatile( \
    "mma.sync.aligned.m16n8k4.row.col.f64.f64.f64.f64 {%%0,%%1,%%2,%%3}, {%%4,%%5}, {%%6}, {%%0,%%1,%%2,%%3};\n" \
    : "+d"(d[0]), "+d"(d[1]), "+d"(d[2]), "+d"(d[3]) : "d"(a[0]), "d"(a[1]), "d"(b[0]))
#define MMA_F64_884(d, a, b) asm volatile( \
    "mma.sync.aligned.m8n8k4.row.col.f64.f64.f64.f64 {%%0,%%1}, {%%2}, {%%3}, {%%0,%%1};\n" \
    : "+d"(d[0]), "+d"(d[1]) : "d"(a[0]), "d"(b[0]))

// ---- rate: SHAPE 0 8x8x4, 1 16x8x4, 2 16x8x8, 3 16x8x16; NA independent accumulators per warp ----
// a rate kernel's end: a block barrier, the loop's cycles (thread 0), the accumulators' sum kept
template <int NA>
__device__ __forceinline__ void rate_end(long long t0, const double (&d)[NA][4], double* out, long long* cyc) {
    __syncthreads();
    const long long t1 = clock64();
    double s = 0.0;
#pragma unroll
    for (int n = 0; n < NA; ++n) s += d[n][0] + d[n][1] + d[n][2] + d[n][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
    if (threadIdx.x == 0) cyc[blockIdx.x] = t1 - t0;
}
template <int SHAPE, int NA>
__device__ void rate(double* out, long long* cyc, int K) {
    constexpr int NAV = SHAPE == 3 ? 8 : (SHAPE == 2 ? 4 : (SHAPE == 1 ? 2 : 1));
    constexpr int NBV = SHAPE == 3 ? 4 : (SHAPE == 2 ? 2 : 1);
    double a[NAV], b[NBV], d[NA][4];
#pragma unroll
    for (int i = 0; i < NAV; ++i) a[i] = 1.0 + 1e-3 * (threadIdx.x + i);
#pragma unroll
    for (int i = 0; i < NBV; ++i) b[i] = 1.0 - 1e-3 * (threadIdx.x + i);
#pragma unroll
    for (int n = 0; n < NA; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) d[n][i] = 0.0;
    __syncthreads();
    const long long t0 = clock64();
#pragma unroll 1
    for (int k = 0; k < K; ++k) {
#pragma unroll
        for (int n = 0; n < NA; ++n) {
            if constexpr (SHAPE == 3) MMA_F64_16816(d[n], a, b);
            else if constexpr (SHAPE == 2) MMA_F64_1688(d[n], a, b);
            else if constexpr (SHAPE == 1) MMA_F64_1684(d[n], a, b);
            else MMA_F64_884(d[n], a, b);
        }
    }
    rate_end<NA>(t0, d, out, cyc);
}
#define RATE(SHAPE, NA) \
    extern "C" __global__ void __launch_bounds__(512, 1) rate_s##SHAPE##_a##NA(double* out, long long* cyc, int K) { \
        rate<SHAPE, NA>(out, cyc, K); \
    }
// RF: the A / B operands alternate between two register sets (no two DMMAs in a row read the same registers)
template <int NA>
__device__ void rate_fresh(double* out, long long* cyc, int K) {
    double a[2][8], b[2][4], d[NA][4];
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int i = 0; i < 8; ++i) a[j][i] = 1.0 + 1e-3 * (threadIdx.x + i + j);
#pragma unroll
        for (int i = 0; i < 4; ++i) b[j][i] = 1.0 - 1e-3 * (threadIdx.x + i + j);
    }
#pragma unroll
    for (int n = 0; n < NA; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) d[n][i] = 0.0;
    __syncthreads();
    const long long t0 = clock64();
#pragma unroll 1
    for (int k = 0; k < K; k += 2) {
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
            for (int n = 0; n < NA; ++n) MMA_F64_16816(d[n], a[(n + j) & 1], b[(n + j + 1) & 1]);
    }
    rate_end<NA>(t0, d, out, cyc);
}
// LDS: every DMMA.16x8x16's A (8 LDS.64, rows 68 doubles apart) and B (2 LDS.128) from shared memory at moving offsets
template <int NA>
__device__ void rate_lds(double* out, long long* cyc, int K) {
    __shared__ __align__(16) double sa[64 * 68];
    __shared__ __align__(16) double sb[4 * 2 * 32 * 2];
    for (int i = threadIdx.x; i < 64 * 68; i += blockDim.x) sa[i] = 1.0 + 1e-6 * i;
    for (int i = threadIdx.x; i < 4 * 2 * 32 * 2; i += blockDim.x) sb[i] = 1.0 - 1e-6 * i;
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, w = (threadIdx.x >> 5) & 3;
    double d[NA][4];
#pragma unroll
    for (int n = 0; n < NA; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) d[n][i] = 0.0;
    __syncthreads();
    const long long t0 = clock64();
#pragma unroll 1
    for (int k = 0; k < K; k += NA) {
#pragma unroll
        for (int n = 0; n < NA; ++n) {
            const int s = (k + n) & 3;
            double a[8], b[4];
#pragma unroll
            for (int i = 0; i < 8; ++i) a[i] = sa[(w * 16 + g + 8 * (i & 1)) * 68 + s * 16 + t + 4 * (i >> 1)];
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const double2 v = *reinterpret_cast<const double2*>(sb + ((s * 2 + h) * 32 + lane) * 2);
                b[2 * h] = v.x;
                b[2 * h + 1] = v.y;
            }
            MMA_F64_16816(d[n], a, b);
        }
    }
    rate_end<NA>(t0, d, out, cyc);
}
#define RATE2(NAME, FN, NA) \
    extern "C" __global__ void __launch_bounds__(512, 1) NAME(double* out, long long* cyc, int K) { \
        FN<NA>(out, cyc, K); \
    }

// ---- phase ----
constexpr int IP = %(IP)d, CIN = %(CIN)d, CH = %(CH)d, XS = %(XS)d, CS = %(CS)d, XDS = %(XDS)d, MP = %(MP)d;
constexpr int NT = 512, MT = MP / 16, NTL = CH / 8;

__device__ __forceinline__ float relu6f(float v) { return fminf(fmaxf(v, 0.f), 6.f); }

// the float32 staged rows -> float64 rows (padding pixels zero); all threads
__device__ __forceinline__ void to_f64(const float* Xs, double* Xd, int tid) {
    for (int i = tid; i < MP * CIN; i += NT) {
        const int p = i / CIN, k = i - p * CIN;
        Xd[p * XDS + k] = p < IP ? (double)Xs[p * XS + k] : 0.0;
    }
}

// one 16 x 8 output tile (pixels m0.., channels n0..) over k in [0, CIN) with DMMA of depth KD (16, 8 or 4);
// Wf: the weights in fragment order [n-tile][k-step][lane][KD / 4] doubles. F32A: A from the float32 rows
template <int KD, bool F32A>
__device__ __forceinline__ void tile(const float* Xs, const double* Xd, const double* Wf, int mt, int nt,
                                     double (&d)[4], int lane) {
    constexpr int NV = KD / 2, NB = KD / 4, KSTEPS = CIN / KD;
    const int g = lane >> 2, t = lane & 3;
    const int r0 = min(mt * 16 + g, MP - 1), r1 = r0 + 8;
#pragma unroll
    for (int s = 0; s < KSTEPS; ++s) {
        double a[NV], b[NB];
#pragma unroll
        for (int i = 0; i < NV; ++i) {
            const int r = (i & 1) ? r1 : r0, k = s * KD + t + 4 * (i >> 1);
            if constexpr (F32A) a[i] = r < IP ? (double)Xs[r * XS + k] : 0.0;
            else a[i] = Xd[r * XDS + k];
        }
        const double* wb = Wf + ((size_t)(nt * KSTEPS + s) * 32 + lane) * NB;
#pragma unroll
        for (int i = 0; i < NB; ++i) b[i] = wb[i];
        if constexpr (KD == 16) MMA_F64_16816(d, a, b);
        else if constexpr (KD == 8) MMA_F64_1688(d, a, b);
        else MMA_F64_1684(d, a, b);
    }
}

// a timed pass's end: a block barrier, then thread 0 records the pass's cycles (the first and the last pass kept)
__device__ __forceinline__ void pass_end(long long t0, long long* cyc, int pass) {
    __syncthreads();
    const long long t1 = clock64();
    if (threadIdx.x == 0) cyc[2 * blockIdx.x + min(pass, 1)] = t1 - t0;
}
// block 0's Es (rows CS floats apart) to E [IP][CH]
__device__ __forceinline__ void write_e(const float* Es, float* E) {
    if (blockIdx.x == 0)
        for (int i = threadIdx.x; i < IP * CH; i += NT) E[i] = Es[(i / CH) * CS + i %% CH];
}
// d (fragment of tile (mt, nt)) + bias, ReLU6, to fp32 into Es
__device__ __forceinline__ void store_tile(const double (&d)[4], const double* bd, float* Es, int mt, int nt,
                                           int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int r = mt * 16 + g + 8 * (i >> 1), c = nt * 8 + 2 * t + (i & 1);
        if (r < IP) Es[r * CS + c] = relu6f((float)(d[i] + bd[c]));
    }
}

// one tile computed and stored (tile, then store_tile)
template <int KD, bool F32A>
__device__ __forceinline__ void tile_out(const float* Xs, const double* Xd, const double* Wf, const double* bd,
                                         float* Es, int mt, int nt, int lane) {
    double d[4] = {0.0, 0.0, 0.0, 0.0};
    tile<KD, F32A>(Xs, Xd, Wf, mt, nt, d, lane);
    store_tile(d, bd, Es, mt, nt, lane);
}

// V: 0 d16_w12, 1 d16_w12_cvt, 2 d16_w4, 3 d8_w12, 4 d4_w12, 5 d16_w12_f32a. KD the DMMA depth (Wf's order)
template <int V, int KD>
__device__ void phase(const float* X, const double* Wfg, const double* b, float* E, long long* cyc, int passes) {
    extern __shared__ __align__(16) double smd[];
    double* Xd = smd;                          // [MP][XDS]
    double* Wf = Xd + MP * XDS;                // [NTL][CIN / KD][32][KD / 4]
    double* bd = Wf + CIN * CH;                // [CH]
    float* Xs = reinterpret_cast<float*>(bd + CH);  // [IP][XS]
    float* Es = Xs + IP * XS;                  // [IP][CS]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int i = tid; i < IP * CIN; i += NT) Xs[(i / CIN) * XS + i %% CIN] = X[i];
    for (int i = tid; i < CIN * CH; i += NT) Wf[i] = Wfg[i];
    if (tid < CH) bd[tid] = b[tid];
    __syncthreads();
    if constexpr (V != 1) to_f64(Xs, Xd, tid);  // (V 1 converts inside the timed phase)
    for (int pass = 0; pass < passes; ++pass) {
        __syncthreads();
        const long long t0 = clock64();
        if constexpr (V == 1) {
            to_f64(Xs, Xd, tid);
            __syncthreads();
        }
        if constexpr (V == 2) {
            if (warp < MT) {
                double d[NTL][4];
#pragma unroll
                for (int n = 0; n < NTL; ++n)
#pragma unroll
                    for (int i = 0; i < 4; ++i) d[n][i] = 0.0;
                // k-step major: the 3 tiles' DMMAs of one k step are independent
                const int g = lane >> 2, t = lane & 3, r0 = warp * 16 + g, r1 = r0 + 8;
#pragma unroll
                for (int s = 0; s < CIN / 16; ++s) {
                    double a[8];
#pragma unroll
                    for (int i = 0; i < 8; ++i) a[i] = Xd[((i & 1) ? r1 : r0) * XDS + s * 16 + t + 4 * (i >> 1)];
#pragma unroll
                    for (int n = 0; n < NTL; ++n) {
                        double bb[4];
                        const double* wb = Wf + ((size_t)(n * (CIN / 16) + s) * 32 + lane) * 4;
#pragma unroll
                        for (int i = 0; i < 4; ++i) bb[i] = wb[i];
                        MMA_F64_16816(d[n], a, bb);
                    }
                }
#pragma unroll
                for (int n = 0; n < NTL; ++n) store_tile(d[n], bd, Es, warp, n, lane);
            }
        } else {
            if (warp < MT * NTL) {
                const int mt = warp / NTL;
                tile_out<KD, V == 5>(Xs, Xd, Wf, bd, Es, mt, warp - mt * NTL, lane);
            }
        }
        pass_end(t0, cyc, pass);
    }
    write_e(Es, E);
}
#define PHASE(NAME, V, KD) \
    extern "C" __global__ void __launch_bounds__(512, 1) \
    NAME(const float* X, const double* Wf, const double* b, float* E, long long* cyc, int passes) { \
        phase<V, KD>(X, Wf, b, E, cyc, passes); \
    }

// the general form (call 2): warp w = (m-tile group, n-tile group, k slice): MW m-tiles x NW n-tiles of 16 x 8 over
// the k slice [ks * CIN / KS, ..) in DMMA.16x8x<KD> steps; A from the float32 rows converted at each step (F32A) or
// from the float64 rows; B in the split fragment order (KD 16: [n-tile][k-step][half][lane][2], each half one
// conflict-free LDS.128; KD 8: [n-tile][k-step][lane][2]). KS > 1: slices 1.. store their float64 partial tiles
// (fragment order), one block barrier, slice 0 adds them in slice order, then the epilogue. NOLD: every k step reuses
// the first step's fragments (timing only: the DMMAs without their loads)
template <int MW, int NW, int KS, int KD, bool F32A, bool NOLD = false>
__device__ void gphase(const float* X, const double* Wfg, const double* b, float* E, long long* cyc, int passes) {
    constexpr int NV = KD / 2, NB = KD / 4, KL = CIN / KS, KSTEPS = CIN / KD, SL = KL / KD;
    constexpr int MG = MT / MW, NG = NTL / NW, NWARPS = MG * NG * KS;
    static_assert(MT %% MW == 0 && NTL %% NW == 0 && CIN %% (KS * KD) == 0 && NWARPS <= NT / 32, "gphase shape");
    extern __shared__ __align__(16) double smd[];
    double* Xd = smd;
    double* Wf = Xd + MP * XDS;
    double* bd = Wf + CIN * CH;
    double* Pp = bd + CH;                                  // [KS - 1][MT][NTL][32][4] partial tiles
    float* Xs = reinterpret_cast<float*>(Pp + (KS - 1) * MT * NTL * 128);
    float* Es = Xs + IP * XS;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    for (int i = tid; i < IP * CIN; i += NT) Xs[(i / CIN) * XS + i %% CIN] = X[i];
    for (int i = tid; i < CIN * CH; i += NT) Wf[i] = Wfg[i];
    if (tid < CH) bd[tid] = b[tid];
    __syncthreads();
    if constexpr (!F32A) to_f64(Xs, Xd, tid);
    const int ks = warp %% KS, rest = warp / KS, ng = rest %% NG, mg = rest / NG;
    for (int pass = 0; pass < passes; ++pass) {
        __syncthreads();
        const long long t0 = clock64();
        double d[MW][NW][4];
        if (warp < NWARPS) {
#pragma unroll
            for (int m = 0; m < MW; ++m)
#pragma unroll
                for (int n = 0; n < NW; ++n)
#pragma unroll
                    for (int i = 0; i < 4; ++i) d[m][n][i] = 0.0;
            double a[MW][NV], bb[NW][NB];
#pragma unroll
            for (int s = 0; s < SL; ++s) {
                const int k0 = ks * KL + s * KD, st = k0 / KD;
                if (!NOLD || s == 0) {
#pragma unroll
                    for (int m = 0; m < MW; ++m) {
                        const int r0 = (mg * MW + m) * 16 + g;
#pragma unroll
                        for (int i = 0; i < NV; ++i) {
                            const int r = r0 + 8 * (i & 1), k = k0 + t + 4 * (i >> 1);
                            if constexpr (F32A) a[m][i] = r < IP ? (double)Xs[r * XS + k] : 0.0;
                            else a[m][i] = Xd[r * XDS + k];
                        }
                    }
#pragma unroll
                    for (int n = 0; n < NW; ++n) {
                        const int nt = ng * NW + n;
#pragma unroll
                        for (int h = 0; h < NB / 2; ++h) {
                            const double2 v = *reinterpret_cast<const double2*>(
                                Wf + (((size_t)(nt * KSTEPS + st) * (NB / 2) + h) * 32 + lane) * 2);
                            bb[n][2 * h] = v.x;
                            bb[n][2 * h + 1] = v.y;
                        }
                    }
                }
#pragma unroll
                for (int m = 0; m < MW; ++m)
#pragma unroll
                    for (int n = 0; n < NW; ++n) {
                        if constexpr (KD == 16) MMA_F64_16816(d[m][n], a[m], bb[n]);
                        else MMA_F64_1688(d[m][n], a[m], bb[n]);
                    }
            }
            if (KS > 1 && ks > 0) {
#pragma unroll
                for (int m = 0; m < MW; ++m)
#pragma unroll
                    for (int n = 0; n < NW; ++n) {
                        double* pp = Pp + ((((ks - 1) * MT + mg * MW + m) * NTL + ng * NW + n) * 32 + lane) * 4;
                        *reinterpret_cast<double2*>(pp) = make_double2(d[m][n][0], d[m][n][1]);
                        *reinterpret_cast<double2*>(pp + 2) = make_double2(d[m][n][2], d[m][n][3]);
                    }
            }
        }
        if constexpr (KS > 1) __syncthreads();
        if (warp < NWARPS && ks == 0) {
#pragma unroll
            for (int m = 0; m < MW; ++m)
#pragma unroll
                for (int n = 0; n < NW; ++n) {
                    const int mt = mg * MW + m, nt = ng * NW + n;
#pragma unroll
                    for (int j = 1; j < KS; ++j) {
                        const double* pp = Pp + ((((j - 1) * MT + mt) * NTL + nt) * 32 + lane) * 4;
                        const double2 u = *reinterpret_cast<const double2*>(pp);
                        const double2 v = *reinterpret_cast<const double2*>(pp + 2);
                        d[m][n][0] += u.x;
                        d[m][n][1] += u.y;
                        d[m][n][2] += v.x;
                        d[m][n][3] += v.y;
                    }
                    store_tile(d[m][n], bd, Es, mt, nt, lane);
                }
        }
        pass_end(t0, cyc, pass);
    }
    write_e(Es, E);
}
#define GPHASE(NAME, MW, NW, KS, KD, F32A, NOLD) \
    extern "C" __global__ void __launch_bounds__(512, 1) \
    NAME(const float* X, const double* Wf, const double* b, float* E, long long* cyc, int passes) { \
        gphase<MW, NW, KS, KD, F32A, NOLD>(X, Wf, b, E, cyc, passes); \
    }

// call 3, the hybrid: the FFMA tiles of the plan (4 pixels x 4 channels per lane, the k range over 2 lanes, snake
// order 2, as ex_tiles_ec) on channels [0, 4 FCG) by warps 0.. (one per scheduler for FCG 4: 56 units, 3.5 warps),
// beside DMMA.16x8x8 tiles (A converted from the float32 rows) on channels [4 FCG, CH) by the last 4 warps, one per
// scheduler (m-tile = warp - 12): the two pipes at once, each scheduler one warp of each. FF / DM: run that part
// (a part alone is timing only)
constexpr int HKS = 2, HWSK = 8;
template <int FCG, bool FF, bool DM>
__device__ void hphase(const float* X, const float* Wg, const double* Wfg, const double* b, float* E, long long* cyc,
                       int passes) {
    constexpr int KL = CIN / HKS, UW = 32 / HKS, PG = (IP + 3) / 4, U = PG * FCG;
    extern __shared__ __align__(16) double smd[];
    double* Wf = smd;                                        // [NTL][CIN / 8][32][2]
    double* bd = Wf + CIN * CH;                              // [CH]
    float* Xs = reinterpret_cast<float*>(bd + CH);           // [IP][XS]
    float* Wes = Xs + IP * XS;                               // [CIN][CH], slice 1's rows HWSK floats further
    float* bes = Wes + CIN * CH + HWSK;                      // [CH]
    float* Es = bes + CH;                                    // [IP][CS]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int i = tid; i < IP * CIN; i += NT) Xs[(i / CIN) * XS + i %% CIN] = X[i];
    for (int i = tid; i < CIN * CH; i += NT) {
        Wes[i + (i / CH / KL) * HWSK] = Wg[i];
        Wf[i] = Wfg[i];
    }
    if (tid < CH) {
        bd[tid] = b[tid];
        bes[tid] = (float)b[tid];
    }
    for (int pass = 0; pass < passes; ++pass) {
        __syncthreads();
        const long long t0 = clock64();
        if (FF && warp * UW < U) {
            const int u0 = warp * UW, j = lane / UW, v = lane - j * UW;
            const int u = min(u0 + v, U - 1);
            int cgg, pg;
            cblock::ex_unit<2>(u, PG, FCG, cgg, pg);
            const float* xr = Xs + j * KL;
            int pix[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) pix[i] = min(pg + i * PG, IP - 1);
            const float* wr = Wes + j * (KL * CH + HWSK) + cgg * 4;
            float4 acc[4];
            const float4 b0 =
                j == 0 ? *reinterpret_cast<const float4*>(bes + cgg * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[i] = b0;
#pragma unroll
            for (int k = 0; k < KL; k += 4) {
                float4 xv[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) xv[i] = *reinterpret_cast<const float4*>(xr + pix[i] * XS + k);
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    const float4 w = *reinterpret_cast<const float4*>(wr + (k + kk) * CH);
#pragma unroll
                    for (int i = 0; i < 4; ++i) cblock::fma4(acc[i], cblock::f4c(xv[i], kk), w);
                }
            }
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                acc[i].x += __shfl_xor_sync(0xffffffffu, acc[i].x, 16);
                acc[i].y += __shfl_xor_sync(0xffffffffu, acc[i].y, 16);
                acc[i].z += __shfl_xor_sync(0xffffffffu, acc[i].z, 16);
                acc[i].w += __shfl_xor_sync(0xffffffffu, acc[i].w, 16);
            }
            if (j == 0 && u0 + v < U) {
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const int q = pg + i * PG;
                    if (q < IP) *reinterpret_cast<float4*>(Es + q * CS + cgg * 4) = cblock::relu6(acc[i]);
                }
            }
        }
        if (DM && warp >= NT / 32 - MT) {
            const int mt = warp - (NT / 32 - MT);
#pragma unroll
            for (int nt = FCG / 2; nt < NTL; ++nt) tile_out<8, true>(Xs, nullptr, Wf, bd, Es, mt, nt, lane);
        }
        pass_end(t0, cyc, pass);
    }
    write_e(Es, E);
}
#define HPHASE(NAME, FCG, FF, DM) \
    extern "C" __global__ void __launch_bounds__(512, 1) \
    NAME(const float* X, const float* W, const double* Wf, const double* b, float* E, long long* cyc, int passes) { \
        hphase<FCG, FF, DM>(X, W, Wf, b, E, cyc, passes); \
    }
"""
SHAPES = {0: ("8x8x4", 256), 1: ("16x8x4", 512), 2: ("16x8x8", 1024), 3: ("16x8x16", 2048)}
ACCS = (1, 2, 4)
WARPS_PER_SCHEDULER = (1, 2, 4)
# the phase kernels (their template arguments; build() instantiates each from these tables): name -> DMMA depth KD,
# V = the position (phase<V, KD>)
PHASES = {"d16_w12": 16, "d16_w12_cvt": 16, "d16_w4": 16, "d8_w12": 8, "d4_w12": 4, "d16_w12_f32a": 16}
# call 2's general form (split B order): (MW, NW, KS, KD, F32A, NOLD), each named g<MW><NW><KS>_d<KD>[_f32a][_nold]
_G = [(1, 1, 1, 16, 0, 0), (1, 1, 1, 16, 0, 1), (1, 1, 1, 16, 1, 0), (1, 3, 1, 16, 1, 0), (1, 3, 2, 16, 1, 0)]
_G += [(1, 3, 4, 16, 1, 0), (2, 3, 2, 16, 1, 0), (2, 3, 4, 16, 1, 0), (2, 1, 2, 16, 1, 0), (1, 1, 1, 8, 1, 0)]
_G += [(1, 3, 2, 8, 1, 0), (1, 3, 4, 16, 0, 0), (2, 3, 4, 16, 0, 0)]
GPHASES = {
    f"g{mw}{nw}{ks}_d{kd}" + "_f32a" * f32a + "_nold" * nold: (mw, nw, ks, kd, bool(f32a), bool(nold))
    for mw, nw, ks, kd, f32a, nold in _G
}
RATES2 = ("rate_fresh_a2", "rate_fresh_a4", "rate_lds_a2")
# call 3's hybrids: name -> (FFMA channel groups FCG, FFMA part, DMMA part); a part alone is timing only
HPHASES = {"hyb_f16_d8": (4, True, True), "hyb_f16": (4, True, False), "hyb_d8": (4, False, True),
           "hyb_f8_d16": (2, True, True)}  # fmt: skip
RATE_FMA_PER_LANE = 1 << 16  # float64 FMAs per lane per rate kernel (rate_plan: its K)


def fragment_weights(w: np.ndarray, kd: int, split: bool = False) -> np.ndarray:
    """W [CIN][CH] in the B-fragment order of DMMA 16x8x<kd> (CuTe's SM90 / SM80 F64 layouts: lane = 4 * n + t holds
    W[k0 + t + 4 i][n0 + n], i < kd / 4): [n-tile][k-step][lane][kd / 4] float64; ``split``: [n-tile][k-step][half]
    [lane][kd / 8] (each half of a lane's fragment 16 contiguous bytes next to its neighbours': conflict-free LDS.128).
    """
    cin, ch = w.shape
    nb, ks = kd // 4, cin // kd
    out = np.empty((ch // 8, ks, 32, nb), np.float64)
    for nt in range(ch // 8):
        for s in range(ks):
            for lane in range(32):
                g, t = lane >> 2, lane & 3
                for i in range(nb):
                    out[nt, s, lane, i] = w[s * kd + t + 4 * i, nt * 8 + g]
    if split and nb > 2:
        out = out.reshape(ch // 8, ks, 32, nb // 2, 2).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(out).reshape(-1)


def rate_kernels() -> list[tuple[str, str, int]]:
    """(kernel, label, accumulators per warp) of every rate kernel, in the order printed."""
    out = [(f"rate_s{s}_a{a}", f"{shape} A{a}", a) for s, (shape, _) in SHAPES.items() for a in ACCS]
    return out + [(name, name, int(name[-1])) for name in RATES2]


def rate_plan(name: str) -> tuple[int, int]:
    """(K, float64 FMAs per warp per unit of K) of a rate kernel, so that each lane does RATE_FMA_PER_LANE FMAs.
    rate_s<S>_a<A>: K loop steps of A DMMAs of the shape; rate_fresh_a<A>: K / 2 steps of 2 A DMMAs.16x8x16, i.e.
    A per unit of K; rate_lds_a<A>: K / A steps of A DMMAs.16x8x16, one per unit of K."""
    a = int(name[-1])
    if name.startswith("rate_s"):
        fma = SHAPES[int(name[len("rate_s")])][1]
        return RATE_FMA_PER_LANE * 32 // (fma * a), fma * a
    k = RATE_FMA_PER_LANE * 32 // (2048 * a) // 4 * 4
    if name.startswith("rate_fresh"):
        return k, 2048 * a
    if name.startswith("rate_lds"):
        return k * a, 2048
    raise ValueError(f"not a rate kernel: {name}")


def phase_smem(ks: int = 1) -> int:
    """Dynamic shared memory of a phase kernel (gphase with k split ``ks``: its partial tiles too)."""
    return 8 * (MP * XDS + CIN * CH + CH + (ks - 1) * (MP // 16) * (CH // 8) * 128) + 4 * (IP * XS + IP * CS)


def build(nvcc: str, out: Path) -> tuple[Path, str]:
    """The probe compiled into ``out``: the cubin and ptxas's report (-v: registers and spills per kernel)."""
    from ex_phase_probe import nvcc_cblock  # (cblock.cu as that probe builds it: the plan's one exdwpw6 build)

    source = SRC % {"IP": IP, "CIN": CIN, "CH": CH, "XS": XS, "CS": CS, "XDS": XDS, "MP": MP}
    return nvcc_cblock(nvcc, source + instantiations(), out, "dmma_probe")


def instantiations() -> str:
    """The kernels of the tables above (SHAPES x ACCS, RATES2, PHASES, GPHASES, HPHASES), as SRC's macros."""
    cpp = lambda v: str(v).lower()  # noqa: E731 (True -> true)
    lines = [f"RATE({s}, {a})" for s in SHAPES for a in ACCS]
    lines += [f"RATE2({name}, {name[: name.rindex('_')]}, {name[-1]})" for name in RATES2]
    lines += [f"PHASE({name}, {v}, {kd})" for v, (name, kd) in enumerate(PHASES.items())]
    lines += [f"GPHASE({name}, {', '.join(cpp(x) for x in g)})" for name, g in GPHASES.items()]
    lines += [f"HPHASE({name}, {', '.join(cpp(x) for x in h)})" for name, h in HPHASES.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    import cupy
    from ffma_rate_probe import block_cycles

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    ap.add_argument("--passes", type=int, default=2, help="timed passes per phase kernel (the last one is printed)")
    ap.add_argument("--only", default="", help="comma-separated kernel names (default: all)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    nvcc = K.find_nvcc()
    if nvcc is None:
        raise SystemExit("nvcc not found")
    keep = tempfile.TemporaryDirectory()  # (CuPy loads the module at its first get_function: the cubin stays)
    cubin, report = build(nvcc, Path(keep.name))
    for line in report.splitlines():
        if "registers" in line or "spill" in line and "0 bytes spill" not in line:
            print("  ptxas:", line.strip())
    mod = cupy.RawModule(path=str(cubin))
    props = cupy.cuda.runtime.getDeviceProperties(0)
    sms, ghz = int(props["multiProcessorCount"]), int(props["clockRate"]) / 1e6
    result: dict = {"gpu": props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                    "sms": sms, "ghz": ghz, "rate": [], "phase": []}  # fmt: skip
    print(f"{result['gpu']}, {sms} SMs, {ghz:.2f} GHz", flush=True)

    def rate_row(name: str, label: str, k: int, fma_per_step: int, acc: int) -> None:
        """One rate kernel at each W: float64 FMAs per cycle per SM (``fma_per_step`` per warp and loop step)."""
        fn, line = mod.get_function(name), []
        for w in WARPS_PER_SCHEDULER:
            c = block_cycles(fn, sms, w, k, cupy.float64)
            per_sm = 4 * w * k * fma_per_step / c
            result["rate"].append({"shape": label, "acc": acc, "warps_per_scheduler": w, "cycles": c,
                                   "dfma_per_cycle_sm": per_sm})  # fmt: skip
            line.append(f"W{w} {per_sm:6.1f}")
        print(f"rate {label:16s}: float64 FMA per cycle per SM " + ", ".join(line), flush=True)

    for name, label, acc in rate_kernels():
        if not only or name in only:
            rate_row(name, label, *rate_plan(name), acc)
    # phase
    rng = np.random.default_rng(41)
    x = rng.standard_normal((IP, CIN), dtype=np.float32)
    w = (rng.standard_normal((CIN, CH), dtype=np.float32) / 8).astype(np.float32)
    b = rng.standard_normal(CH, dtype=np.float32)
    ref = np.clip(x.astype(np.float64) @ w.astype(np.float64) + b, 0.0, 6.0)
    xd, bd = cupy.asarray(x), cupy.asarray(b.astype(np.float64))

    def run_phase(name: str, weights: tuple, smem: int, timing_only: bool) -> None:
        """One phase kernel on every SM: the median over blocks of its first and last timed pass, its output (block
        0's) against float64 unless ``timing_only``."""
        fn = mod.get_function(name)
        fn.max_dynamic_shared_size_bytes = smem
        e = cupy.full((IP, CH), np.nan, cupy.float32)
        cyc = cupy.zeros((sms, 2), cupy.int64)
        for _ in range(3):
            fn((sms,), (512,), (xd, *weights, bd, e, cyc, np.int32(args.passes)), shared_mem=smem)
        cupy.cuda.runtime.deviceSynchronize()
        c = cyc.get()
        first, second = float(np.median(c[:, 0])), float(np.median(c[:, 1]))
        err = float(np.linalg.norm(e.get().astype(np.float64) - ref) / np.linalg.norm(ref))
        row = {"variant": name, "cycles_first": first, "cycles": second, "us": second / ghz / 1e3, "rel_l2": err}
        result["phase"].append(row)
        check = "(timing only)" if timing_only else f"rel L2 {err:.1e}"
        print(f"phase {name:14s} {second:6.0f} cycles = {row['us']:.2f} us (first pass {first:.0f}); {check}",
              flush=True)  # fmt: skip
        if not timing_only and not err < 1e-5:
            raise SystemExit(f"{name}: the phase's output is off (rel L2 {err:.2e} against float64)")

    w64 = w.astype(np.float64)
    smem_min = 120 * 1024  # one block per SM, as the block kernel's shared memory gives
    for name, (_fcg, ff, dm) in HPHASES.items():  # the hybrids: FFMA tiles beside DMMA tiles
        if not only or name in only:
            run_phase(name, (cupy.asarray(w), cupy.asarray(fragment_weights(w64, 8))), smem_min, not (ff and dm))
    runs = [(name, kd, False, 1, False) for name, kd in PHASES.items()]
    runs += [(name, g[3], True, g[2], g[5]) for name, g in GPHASES.items()]
    for name, kd, split, ks, timing_only in runs:
        if not only or name in only:
            wf = cupy.asarray(fragment_weights(w64, kd, split))
            run_phase(name, (wf,), max(phase_smem(ks), smem_min), timing_only)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    keep.cleanup()


if __name__ == "__main__":
    main()
