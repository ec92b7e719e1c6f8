// block0.cu -- family "block0": MobileNetV2's first three convs as one kernel (fp32).
//
// The network starts: input NCHW (3 channels) -> stem conv 3x3 s2 p1 3->C1 + ReLU6 -> depthwise 3x3 s1 p1
// C1 + ReLU6 -> pointwise C1->C3 (bias, no activation). Host: impls/_custom_block0.py.
//   v1  today's kernels: nchw_to_nhwc_smallc (layout.cu) -> conv3x3c3_nhwc (stem v3) -> dwconv3_v3_s1
//       (depthwise v3) -> the pointwise GEMM (gemm v5). The two C1 x 112 x 112 tensors (1.6 MB per image
//       each at C1 = 32) are written and read once each, the input is transposed through HBM.
//   v2  block0_v2_c<C1>_p<C3>: one kernel reading the NCHW input directly. Block = 14 x 14 output pixels
//       of one image, 256 threads:
//         0. the 33 x 33 x 3 input patch (stem tile + halo) into shared memory, columns split by parity
//            (even / odd) so that a run of 8 stride-2 stem pixels reads its taps as float4;
//            stem weights (27, C1) and projection weights (C1, C3) into shared memory;
//         then per chunk of CC stem channels (the projection accumulates over chunks in registers):
//         1. stem on the 16 x 16 stem tile (the 14 x 14 outputs + 1-pixel halo, recomputed by the
//            neighbouring blocks: 256 / 196 = 1.31x), thread = 8 pixels x 2 channels (432 FMAs from 45
//            LDS of input and 27 LDS.64 of weights), + bias, ReLU6; stem pixels outside the map are 0
//            (the depthwise conv's zero padding, not ReLU6(bias));
//         2. depthwise 3x3 from there, thread = 7 pixels x 2 channels, weights in registers, + bias,
//            ReLU6, kept in registers over a barrier and written over the stem tile (aliased);
//         3. projection partial sums, thread = 4 pixels x 4 output channels (16 LDS.128 of data +
//            16 LDS.128 of weights per 256 FMAs);
//         epilogue: + bias (+ ReLU6 if asked), float4 NHWC stores of the C3 channels.
//       Moves input + output only: (3 + C3 / 4) x 4 bytes per output pixel x ~1.3 of input halo,
//       ~1.4 MB per image at 224 instead of ~8 MB, and 3 launches fewer.
//       Expected (written before the device run): batch 256 ~1.15 ms (v1, incl. transpose) -> ~0.35 ms,
//       compute-bound (~1900 FMAs per output pixel incl. the halo recompute: ~0.21 ms at 100% FMA issue).
//       Instantiated for the (C1, C3) of widths 0.35-0.5 (16, 8), 0.75 (24, 16), 1.0 (32, 16), 1.4 (48, 24).
//       Shared memory: 14.3 KB input patch + 16 KB stem / depthwise tile + weights (<= 9.8 KB): < 48 KB static.
//       MEASURED (H100, CUDA-event medians, first three ops of MobileNetV2-1.0, batch 1 / 64 / 256): v1 19.0 /
//       345.4 / 1294 us, v2 10.8 / 178.7 / 684.5 us (-47% at 256; 15.6 TFLOP/s useful, 525 GB/s). SASS: the chunk
//       loop is 71% FFMA, but the input staging before it (64-bit index arithmetic per element, 13 rows per
//       thread) was ~1000 of the ~3100 instructions a thread issues, and 4 barriers per chunk.
//   v3  v2 with (a) separate stem and depthwise tiles (48.7 KB static at C1 = 32): 2 barriers per chunk instead
//       of 4, the depthwise result goes straight to shared memory, and a chunk's projection overlaps the next
//       chunk's stem (no barrier between them); (b) the input patch staged by rows (warp w: rows w, w + 8, ..,
//       lane = column) with 32-bit offsets: ~650 static instructions before the chunk loop instead of ~1000;
//       (c) 80 registers, 3 blocks per SM (24 warps) where ptxas fits them without spills (not C1 = 48);
//       block0_v3_c32_p16_occ2 = the same at 2 blocks per SM, for the timing comparison. 48 channels use
//       chunks of 8 (smem). Expected: 10-25% under v2 at batch 64 / 256 (fewer issued instructions, barriers).
//       MEASURED (H100, same harness, batch 1 / 64 / 256): v3 8.2 / 129.5 / 486.8 us (22.0 TFLOP/s useful at
//       256; -29% vs v2, -62% vs v1), occ2 build 8.2 / 134.5 / 507.2 us: 3 blocks per SM win. The default.
//       Seen in its SASS afterwards: the epilogue's float4 stores came out as 4 scalar STG each (32-bit offset
//       form); v2's are STG.128. Not changed after the measurement (next step: index the float4 array).
//   hblock0 v2 (fp16 mode's family "hblock0", impls/_custom_hblock0.py): v3's body templated on the output type,
//       the C3 channels stored as half NHWC (fp32 weights and math, nothing rounded before the output); the fp32
//       builds' PTX is unchanged. Replaces hstem v3 + hdepthwise v3 + hgemm v4 (fp16 plan, 3 launches).
//       Expected: ~8 / ~128 / ~480 us vs v1's ~12 / ~145 / ~570 at batch 1 / 64 / 256 (-16% at 256).
//       MEASURED (H100, CUDA-event medians, batch 1 / 64 / 256): v1 14.8 / 154.4 / 564.2 us, hblock0 v2 8.1 / 126.2 /
//       472.5 us (22.6 TFLOP/s useful at 256; -16%); e2e fp16 graph 0.2109 -> 0.2160 / 0.9884 -> 0.9638 /
//       3.3032 -> 3.2135 ms. The fp16 default.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace block0 {
constexpr int T = 14;            // output tile (rows = cols)
constexpr int ST = T + 2;        // stem tile incl. the depthwise halo
constexpr int IP = 2 * ST + 1;   // input patch rows / cols (stride 2, 3x3)
constexpr int XE = 20;           // row stride of the even input columns (17 used; float4-aligned)
constexpr int XO = 16;           // row stride of the odd input columns (16 used)
constexpr int NT = 256;          // threads per block
constexpr int NPQ = T * T / 4;   // pixel quads of the projection phase

__device__ __forceinline__ float relu6(float v, int act) { return act ? fminf(fmaxf(v, 0.0f), 6.0f) : v; }

// the epilogue's 4-channel store: float4 (fp32 builds, as before) or 4 halves as one 8-byte store (hblock0)
__device__ __forceinline__ void store4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
__device__ __forceinline__ void store4(__half* p, float4 v) {
    const __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
    uint2 u;
    u.x = *reinterpret_cast<const unsigned*>(&lo);
    u.y = *reinterpret_cast<const unsigned*>(&hi);
    *reinterpret_cast<uint2*>(p) = u;
}
}  // namespace block0

// X: (N, 3, H, W) NCHW; Ws: (>= 27, C1) stem weights, rows (ky, kx, ci); bs: (C1); Wd: (9, C1); bd: (C1);
// Wp: (C1, C3) = W^T; bp: (C3); Y: (N, Ho, Wo, C3) NHWC with Ho x Wo the stem / depthwise map
// (Ho = (H - 1) / 2 + 1). grid = (ceil(Ho / 14) * ceil(Wo / 14), N), block = 256.
template <int C1, int C3, int CC>
__device__ __forceinline__ void block0_v2_body(const float* __restrict__ X, const float* __restrict__ Ws,
                                               const float* __restrict__ bs, const float* __restrict__ Wd,
                                               const float* __restrict__ bd, const float* __restrict__ Wp,
                                               const float* __restrict__ bp, float* __restrict__ Y, int H, int W,
                                               int Ho, int Wo, int act_s, int act_d, int act_p) {
    using namespace block0;
    constexpr int CP = CC / 2;          // channel pairs per chunk
    constexpr int NSTEM = CP * ST * 2;  // stem items: (pair, stem row, half row of 8 pixels)
    constexpr int NDW = CP * T * 2;     // depthwise items: (pair, output row, half row of 7 pixels)
    constexpr int G3 = C3 / 4;
    constexpr int NPW = NPQ * G3;       // projection items: (pixel quad, 4 output channels)
    constexpr int IPW = (NPW + NT - 1) / NT;
    constexpr int NX = 3 * IP * IP;
    constexpr int IX = (NX + NT - 1) / NT;
    static_assert(C1 % CC == 0 && CC % 4 == 0 && C3 % 4 == 0, "channel chunks");
    static_assert(NSTEM <= NT && NDW <= NT, "one stem / depthwise item per thread");
    __shared__ __align__(16) float Xe[3][IP][XE];
    __shared__ __align__(16) float Xo[3][IP][XO];
    __shared__ __align__(16) float SD[ST * ST * CC];  // stem tile (ST x ST x CC), then the depthwise tile
    __shared__ __align__(16) float Wst[27 * C1];
    __shared__ __align__(16) float Wps[C1 * C3];

    const int tid = threadIdx.x;
    const int tiles_w = (Wo + T - 1) / T;
    const int th0 = (blockIdx.x / tiles_w) * T, tw0 = (blockIdx.x % tiles_w) * T;
    const int n = blockIdx.y;
    const int ih0 = 2 * th0 - 3, iw0 = 2 * tw0 - 3;  // input row / col of patch (0, 0)
    const float* Xn = X + (long long)n * 3 * H * W;

    {  // 0. input patch (zeros outside the image: the stem's padding) and weights
        float v[IX];
#pragma unroll
        for (int k = 0; k < IX; ++k) {
            const int e = tid + k * NT;
            v[k] = 0.0f;
            if (e < NX) {
                const int ci = e / (IP * IP), rem = e % (IP * IP), ir = rem / IP, ic = rem % IP;
                const int gh = ih0 + ir, gw = iw0 + ic;
                if (gh >= 0 && gh < H && gw >= 0 && gw < W) v[k] = __ldg(Xn + ((long long)ci * H + gh) * W + gw);
            }
        }
        for (int e = tid; e < 27 * C1; e += NT) Wst[e] = __ldg(Ws + e);
        for (int e = tid; e < C1 * C3; e += NT) Wps[e] = __ldg(Wp + e);
#pragma unroll
        for (int k = 0; k < IX; ++k) {
            const int e = tid + k * NT;
            if (e < NX) {
                const int ci = e / (IP * IP), rem = e % (IP * IP), ir = rem / IP, ic = rem % IP;
                if (ic & 1)
                    Xo[ci][ir][ic >> 1] = v[k];
                else
                    Xe[ci][ir][ic >> 1] = v[k];
            }
        }
    }
    __syncthreads();

    float acc[IPW][4][4];  // projection partial sums: (item, pixel, output channel)
#pragma unroll
    for (int k = 0; k < IPW; ++k)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[k][i][q] = 0.0f;

#pragma unroll 1
    for (int c0 = 0; c0 < C1; c0 += CC) {
        // 1. stem: thread = 8 stem pixels (one half row) x 2 channels
        if (tid < NSTEM) {
            const int cp = tid % CP, rest = tid / CP, sr = rest >> 1, x0 = (rest & 1) * 8;
            const int c = c0 + 2 * cp;
            const float2 b = __ldg(reinterpret_cast<const float2*>(bs + c));
            float a0[8], a1[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                a0[j] = b.x;
                a1[j] = b.y;
            }
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int ir = 2 * sr + ky;
#pragma unroll
                for (int ci = 0; ci < 3; ++ci) {
                    const float4 e0 = *reinterpret_cast<const float4*>(&Xe[ci][ir][x0]);
                    const float4 e1 = *reinterpret_cast<const float4*>(&Xe[ci][ir][x0 + 4]);
                    const float4 o0 = *reinterpret_cast<const float4*>(&Xo[ci][ir][x0]);
                    const float4 o1 = *reinterpret_cast<const float4*>(&Xo[ci][ir][x0 + 4]);
                    const float ev[9] = {e0.x, e0.y, e0.z, e0.w, e1.x, e1.y, e1.z, e1.w, Xe[ci][ir][x0 + 8]};
                    const float ov[8] = {o0.x, o0.y, o0.z, o0.w, o1.x, o1.y, o1.z, o1.w};
                    const float2 w0 = *reinterpret_cast<const float2*>(&Wst[((ky * 3 + 0) * 3 + ci) * C1 + c]);
                    const float2 w1 = *reinterpret_cast<const float2*>(&Wst[((ky * 3 + 1) * 3 + ci) * C1 + c]);
                    const float2 w2 = *reinterpret_cast<const float2*>(&Wst[((ky * 3 + 2) * 3 + ci) * C1 + c]);
#pragma unroll
                    for (int j = 0; j < 8; ++j) {
                        a0[j] = fmaf(ev[j], w0.x, a0[j]);
                        a1[j] = fmaf(ev[j], w0.y, a1[j]);
                        a0[j] = fmaf(ov[j], w1.x, a0[j]);
                        a1[j] = fmaf(ov[j], w1.y, a1[j]);
                        a0[j] = fmaf(ev[j + 1], w2.x, a0[j]);
                        a1[j] = fmaf(ev[j + 1], w2.y, a1[j]);
                    }
                }
            }
            const int gr = th0 - 1 + sr;
            const bool row_in = gr >= 0 && gr < Ho;
            float* sp = SD + (sr * ST + x0) * CC + 2 * cp;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const int gc = tw0 - 1 + x0 + j;
                const bool inside = row_in && gc >= 0 && gc < Wo;
                *reinterpret_cast<float2*>(sp + j * CC) =
                    inside ? make_float2(relu6(a0[j], act_s), relu6(a1[j], act_s)) : make_float2(0.0f, 0.0f);
            }
        }
        __syncthreads();

        // 2. depthwise 3x3 s1: thread = 7 output pixels (one half row) x 2 channels
        float d0[7], d1[7];
        int dpix = 0, dch = 0;
        if (tid < NDW) {
            const int cp = tid % CP, rest = tid / CP, orow = rest >> 1, ox0 = (rest & 1) * 7;
            const int c = c0 + 2 * cp;
            float2 wv[9];
#pragma unroll
            for (int t = 0; t < 9; ++t) wv[t] = __ldg(reinterpret_cast<const float2*>(Wd + t * C1 + c));
            const float2 b = __ldg(reinterpret_cast<const float2*>(bd + c));
#pragma unroll
            for (int j = 0; j < 7; ++j) {
                d0[j] = b.x;
                d1[j] = b.y;
            }
#pragma unroll
            for (int dy = 0; dy < 3; ++dy) {
                const float* row = SD + ((orow + dy) * ST + ox0) * CC + 2 * cp;
#pragma unroll
                for (int q = 0; q < 9; ++q) {
                    const float2 s = *reinterpret_cast<const float2*>(row + q * CC);
#pragma unroll
                    for (int dx = 0; dx < 3; ++dx) {
                        const int j = q - dx;
                        if (j >= 0 && j < 7) {
                            d0[j] = fmaf(s.x, wv[dy * 3 + dx].x, d0[j]);
                            d1[j] = fmaf(s.y, wv[dy * 3 + dx].y, d1[j]);
                        }
                    }
                }
            }
            dpix = orow * T + ox0;
            dch = 2 * cp;
        }
        __syncthreads();  // every stem value read: the depthwise tile goes over it
        if (tid < NDW) {
#pragma unroll
            for (int j = 0; j < 7; ++j)
                *reinterpret_cast<float2*>(SD + (dpix + j) * CC + dch) =
                    make_float2(relu6(d0[j], act_d), relu6(d1[j], act_d));
        }
        __syncthreads();

        // 3. projection partial sums over this chunk: item = (pixel quad pq: pixels pq + 49 i, 4 outputs)
#pragma unroll
        for (int k = 0; k < IPW; ++k) {
            const int it = tid + k * NT;
            if (it < NPW) {
                const int og = it % G3, pq = it / G3;
#pragma unroll
                for (int kk = 0; kk < CC; kk += 4) {
                    const float4 w0 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 0) * C3 + og * 4]);
                    const float4 w1 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 1) * C3 + og * 4]);
                    const float4 w2 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 2) * C3 + og * 4]);
                    const float4 w3 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 3) * C3 + og * 4]);
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const float4 dv = *reinterpret_cast<const float4*>(SD + (pq + NPQ * i) * CC + kk);
                        float* a = acc[k][i];
                        a[0] = fmaf(dv.x, w0.x, fmaf(dv.y, w1.x, fmaf(dv.z, w2.x, fmaf(dv.w, w3.x, a[0]))));
                        a[1] = fmaf(dv.x, w0.y, fmaf(dv.y, w1.y, fmaf(dv.z, w2.y, fmaf(dv.w, w3.y, a[1]))));
                        a[2] = fmaf(dv.x, w0.z, fmaf(dv.y, w1.z, fmaf(dv.z, w2.z, fmaf(dv.w, w3.z, a[2]))));
                        a[3] = fmaf(dv.x, w0.w, fmaf(dv.y, w1.w, fmaf(dv.z, w2.w, fmaf(dv.w, w3.w, a[3]))));
                    }
                }
            }
        }
        __syncthreads();  // the next chunk's stem overwrites the depthwise tile
    }

    // epilogue: + bias, activation, float4 NHWC stores
#pragma unroll
    for (int k = 0; k < IPW; ++k) {
        const int it = tid + k * NT;
        if (it >= NPW) continue;
        const int og = it % G3, pq = it / G3;
        const float4 b = __ldg(reinterpret_cast<const float4*>(bp + og * 4));
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int p = pq + NPQ * i;
            const int goh = th0 + p / T, gow = tw0 + p % T;
            if (goh >= Ho || gow >= Wo) continue;
            const float4 v = make_float4(relu6(acc[k][i][0] + b.x, act_p), relu6(acc[k][i][1] + b.y, act_p),
                                         relu6(acc[k][i][2] + b.z, act_p), relu6(acc[k][i][3] + b.w, act_p));
            *reinterpret_cast<float4*>(Y + (((long long)n * Ho + goh) * Wo + gow) * C3 + og * 4) = v;
        }
    }
}

#define BLOCK0_V2_KERNEL(NAME, C1, C3, CC)                                                                   \
    extern "C" __global__ void __launch_bounds__(256, 2)                                                    \
    NAME(const float* __restrict__ X, const float* __restrict__ Ws, const float* __restrict__ bs,           \
         const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,           \
         const float* __restrict__ bp, float* __restrict__ Y, int H, int W, int Ho, int Wo, int act_s,       \
         int act_d, int act_p) {                                                                             \
        block0_v2_body<C1, C3, CC>(X, Ws, bs, Wd, bd, Wp, bp, Y, H, W, Ho, Wo, act_s, act_d, act_p);        \
    }

BLOCK0_V2_KERNEL(block0_v2_c32_p16, 32, 16, 16)
BLOCK0_V2_KERNEL(block0_v2_c16_p8, 16, 8, 16)
BLOCK0_V2_KERNEL(block0_v2_c24_p16, 24, 16, 8)
BLOCK0_V2_KERNEL(block0_v2_c48_p24, 48, 24, 16)

// v3: v2 with separate stem / depthwise tiles (2 barriers per chunk instead of 4; a chunk's projection overlaps
// the next chunk's stem) and the input patch staged one warp per row (less index arithmetic)
template <int C1, int C3, int CC, typename TO = float>
__device__ __forceinline__ void block0_v3_body(const float* __restrict__ X, const float* __restrict__ Ws,
                                               const float* __restrict__ bs, const float* __restrict__ Wd,
                                               const float* __restrict__ bd, const float* __restrict__ Wp,
                                               const float* __restrict__ bp, TO* __restrict__ Y, int H, int W,
                                               int Ho, int Wo, int act_s, int act_d, int act_p) {
    using namespace block0;
    constexpr int CP = CC / 2;          // channel pairs per chunk
    constexpr int NSTEM = CP * ST * 2;  // stem items: (pair, stem row, half row of 8 pixels)
    constexpr int NDW = CP * T * 2;     // depthwise items: (pair, output row, half row of 7 pixels)
    constexpr int G3 = C3 / 4;
    constexpr int NPW = NPQ * G3;       // projection items: (pixel quad, 4 output channels)
    constexpr int IPW = (NPW + NT - 1) / NT;
    static_assert(C1 % CC == 0 && CC % 4 == 0 && C3 % 4 == 0, "channel chunks");
    static_assert(NSTEM <= NT && NDW <= NT, "one stem / depthwise item per thread");
    __shared__ __align__(16) float Xe[3][IP][XE];
    __shared__ __align__(16) float Xo[3][IP][XO];
    __shared__ __align__(16) float Ss[ST * ST * CC];  // stem tile (ST x ST x CC)
    __shared__ __align__(16) float Ds[T * T * CC];    // depthwise tile (T x T x CC)
    __shared__ __align__(16) float Wst[27 * C1];
    __shared__ __align__(16) float Wps[C1 * C3];

    const int tid = threadIdx.x;
    const int tiles_w = (Wo + T - 1) / T;
    const int th0 = (blockIdx.x / tiles_w) * T, tw0 = (blockIdx.x % tiles_w) * T;
    const int n = blockIdx.y;
    const int ih0 = 2 * th0 - 3, iw0 = 2 * tw0 - 3;  // input row / col of patch (0, 0)
    const float* Xn = X + (long long)n * 3 * H * W;

    {  // 0. input patch: warp w loads rows w, w + 8, ... of each channel (lane = column 0..31; column 32 by
        // threads 0..98, one row each), then the weights; 32-bit offsets inside the image (3 * H * W < 2^31)
        constexpr int RJ = (IP + 7) / 8;
        static_assert(NT == 256 && 3 * IP <= NT, "8 warps; one thread per row for column 32");
        const int lane = tid & 31, warp = tid >> 5;
        const int gw = iw0 + lane;
        const bool col_ok = (unsigned)gw < (unsigned)W;
        float v[3][RJ];
#pragma unroll
        for (int ci = 0; ci < 3; ++ci)
#pragma unroll
            for (int j = 0; j < RJ; ++j) {
                const int ir = warp + 8 * j, gh = ih0 + ir;
                const bool ok = col_ok && ir < IP && (unsigned)gh < (unsigned)H;
                v[ci][j] = ok ? __ldg(Xn + (ci * H + gh) * W + gw) : 0.0f;
            }
        float v32 = 0.0f;
        const int ci32 = tid / IP, ir32 = tid - ci32 * IP, gh32 = ih0 + ir32, gw32 = iw0 + 32;
        if (tid < 3 * IP && (unsigned)gh32 < (unsigned)H && (unsigned)gw32 < (unsigned)W)
            v32 = __ldg(Xn + (ci32 * H + gh32) * W + gw32);
        for (int e = tid; e < 27 * C1; e += NT) Wst[e] = __ldg(Ws + e);
        for (int e = tid; e < C1 * C3; e += NT) Wps[e] = __ldg(Wp + e);
        float* srow = (lane & 1) ? &Xo[0][0][lane >> 1] : &Xe[0][0][lane >> 1];
        const int sstride = (lane & 1) ? XO : XE;
#pragma unroll
        for (int ci = 0; ci < 3; ++ci)
#pragma unroll
            for (int j = 0; j < RJ; ++j) {
                const int ir = warp + 8 * j;
                if (ir < IP) srow[(ci * IP + ir) * sstride] = v[ci][j];
            }
        if (tid < 3 * IP) Xe[ci32][ir32][16] = v32;
    }
    __syncthreads();

    float acc[IPW][4][4];  // projection partial sums: (item, pixel, output channel)
#pragma unroll
    for (int k = 0; k < IPW; ++k)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int q = 0; q < 4; ++q) acc[k][i][q] = 0.0f;

#pragma unroll 1
    for (int c0 = 0; c0 < C1; c0 += CC) {
        // 1. stem: thread = 8 stem pixels (one half row) x 2 channels
        if (tid < NSTEM) {
            const int cp = tid % CP, rest = tid / CP, sr = rest >> 1, x0 = (rest & 1) * 8;
            const int c = c0 + 2 * cp;
            const float2 b = __ldg(reinterpret_cast<const float2*>(bs + c));
            float a0[8], a1[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                a0[j] = b.x;
                a1[j] = b.y;
            }
#pragma unroll
            for (int ky = 0; ky < 3; ++ky) {
                const int ir = 2 * sr + ky;
#pragma unroll
                for (int ci = 0; ci < 3; ++ci) {
                    const float4 e0 = *reinterpret_cast<const float4*>(&Xe[ci][ir][x0]);
                    const float4 e1 = *reinterpret_cast<const float4*>(&Xe[ci][ir][x0 + 4]);
                    const float4 o0 = *reinterpret_cast<const float4*>(&Xo[ci][ir][x0]);
                    const float4 o1 = *reinterpret_cast<const float4*>(&Xo[ci][ir][x0 + 4]);
                    const float ev[9] = {e0.x, e0.y, e0.z, e0.w, e1.x, e1.y, e1.z, e1.w, Xe[ci][ir][x0 + 8]};
                    const float ov[8] = {o0.x, o0.y, o0.z, o0.w, o1.x, o1.y, o1.z, o1.w};
                    const float2 w0 = *reinterpret_cast<const float2*>(&Wst[((ky * 3 + 0) * 3 + ci) * C1 + c]);
                    const float2 w1 = *reinterpret_cast<const float2*>(&Wst[((ky * 3 + 1) * 3 + ci) * C1 + c]);
                    const float2 w2 = *reinterpret_cast<const float2*>(&Wst[((ky * 3 + 2) * 3 + ci) * C1 + c]);
#pragma unroll
                    for (int j = 0; j < 8; ++j) {
                        a0[j] = fmaf(ev[j], w0.x, a0[j]);
                        a1[j] = fmaf(ev[j], w0.y, a1[j]);
                        a0[j] = fmaf(ov[j], w1.x, a0[j]);
                        a1[j] = fmaf(ov[j], w1.y, a1[j]);
                        a0[j] = fmaf(ev[j + 1], w2.x, a0[j]);
                        a1[j] = fmaf(ev[j + 1], w2.y, a1[j]);
                    }
                }
            }
            const int gr = th0 - 1 + sr;
            const bool row_in = gr >= 0 && gr < Ho;
            float* sp = Ss + (sr * ST + x0) * CC + 2 * cp;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                const int gc = tw0 - 1 + x0 + j;
                const bool inside = row_in && gc >= 0 && gc < Wo;
                *reinterpret_cast<float2*>(sp + j * CC) =
                    inside ? make_float2(relu6(a0[j], act_s), relu6(a1[j], act_s)) : make_float2(0.0f, 0.0f);
            }
        }
        __syncthreads();

        // 2. depthwise 3x3 s1: thread = 7 output pixels (one half row) x 2 channels, straight into Ds
        if (tid < NDW) {
            const int cp = tid % CP, rest = tid / CP, orow = rest >> 1, ox0 = (rest & 1) * 7;
            const int c = c0 + 2 * cp;
            float2 wv[9];
#pragma unroll
            for (int t = 0; t < 9; ++t) wv[t] = __ldg(reinterpret_cast<const float2*>(Wd + t * C1 + c));
            const float2 b = __ldg(reinterpret_cast<const float2*>(bd + c));
            float d0[7], d1[7];
#pragma unroll
            for (int j = 0; j < 7; ++j) {
                d0[j] = b.x;
                d1[j] = b.y;
            }
#pragma unroll
            for (int dy = 0; dy < 3; ++dy) {
                const float* row = Ss + ((orow + dy) * ST + ox0) * CC + 2 * cp;
#pragma unroll
                for (int q = 0; q < 9; ++q) {
                    const float2 s = *reinterpret_cast<const float2*>(row + q * CC);
#pragma unroll
                    for (int dx = 0; dx < 3; ++dx) {
                        const int j = q - dx;
                        if (j >= 0 && j < 7) {
                            d0[j] = fmaf(s.x, wv[dy * 3 + dx].x, d0[j]);
                            d1[j] = fmaf(s.y, wv[dy * 3 + dx].y, d1[j]);
                        }
                    }
                }
            }
            float* dp = Ds + (orow * T + ox0) * CC + 2 * cp;
#pragma unroll
            for (int j = 0; j < 7; ++j)
                *reinterpret_cast<float2*>(dp + j * CC) = make_float2(relu6(d0[j], act_d), relu6(d1[j], act_d));
        }
        __syncthreads();  // Ds complete; the previous chunk's projection has read Ds before the stem barrier

        // 3. projection partial sums over this chunk: item = (pixel quad pq: pixels pq + 49 i, 4 outputs)
#pragma unroll
        for (int k = 0; k < IPW; ++k) {
            const int it = tid + k * NT;
            if (it < NPW) {
                const int og = it % G3, pq = it / G3;
#pragma unroll
                for (int kk = 0; kk < CC; kk += 4) {
                    const float4 w0 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 0) * C3 + og * 4]);
                    const float4 w1 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 1) * C3 + og * 4]);
                    const float4 w2 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 2) * C3 + og * 4]);
                    const float4 w3 = *reinterpret_cast<const float4*>(&Wps[(c0 + kk + 3) * C3 + og * 4]);
#pragma unroll
                    for (int i = 0; i < 4; ++i) {
                        const float4 dv = *reinterpret_cast<const float4*>(Ds + (pq + NPQ * i) * CC + kk);
                        float* a = acc[k][i];
                        a[0] = fmaf(dv.x, w0.x, fmaf(dv.y, w1.x, fmaf(dv.z, w2.x, fmaf(dv.w, w3.x, a[0]))));
                        a[1] = fmaf(dv.x, w0.y, fmaf(dv.y, w1.y, fmaf(dv.z, w2.y, fmaf(dv.w, w3.y, a[1]))));
                        a[2] = fmaf(dv.x, w0.z, fmaf(dv.y, w1.z, fmaf(dv.z, w2.z, fmaf(dv.w, w3.z, a[2]))));
                        a[3] = fmaf(dv.x, w0.w, fmaf(dv.y, w1.w, fmaf(dv.z, w2.w, fmaf(dv.w, w3.w, a[3]))));
                    }
                }
            }
        }
        // no barrier: the next chunk's stem writes Ss, which nobody reads any more; its depthwise phase, which
        // overwrites Ds, comes after the next stem barrier, which every thread reaches after this projection
    }

    // epilogue: + bias, activation, float4 NHWC stores (32-bit offsets inside the image); half: 8-byte stores
    TO* Yn = Y + (long long)n * Ho * Wo * C3;
#pragma unroll
    for (int k = 0; k < IPW; ++k) {
        const int it = tid + k * NT;
        if (it >= NPW) continue;
        const int og = it % G3, pq = it / G3;
        const float4 b = __ldg(reinterpret_cast<const float4*>(bp + og * 4));
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int p = pq + NPQ * i;
            const int goh = th0 + p / T, gow = tw0 + p % T;
            if (goh >= Ho || gow >= Wo) continue;
            const float4 v = make_float4(relu6(acc[k][i][0] + b.x, act_p), relu6(acc[k][i][1] + b.y, act_p),
                                         relu6(acc[k][i][2] + b.z, act_p), relu6(acc[k][i][3] + b.w, act_p));
            store4(Yn + (goh * Wo + gow) * C3 + og * 4, v);
        }
    }
}

#define BLOCK0_V3_KERNEL(NAME, C1, C3, CC, MINB)                                                             \
    extern "C" __global__ void __launch_bounds__(256, MINB)                                                 \
    NAME(const float* __restrict__ X, const float* __restrict__ Ws, const float* __restrict__ bs,           \
         const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,           \
         const float* __restrict__ bp, float* __restrict__ Y, int H, int W, int Ho, int Wo, int act_s,       \
         int act_d, int act_p) {                                                                             \
        block0_v3_body<C1, C3, CC>(X, Ws, bs, Wd, bd, Wp, bp, Y, H, W, Ho, Wo, act_s, act_d, act_p);        \
    }

// 3 blocks per SM (<= 80 registers, no spills) where ptxas fits them; the 48-channel one spills at 80 registers.
// block0_v3_c32_p16_occ2: the same at 2 blocks per SM (95 registers), for the timing comparison.
BLOCK0_V3_KERNEL(block0_v3_c32_p16, 32, 16, 16, 3)
BLOCK0_V3_KERNEL(block0_v3_c32_p16_occ2, 32, 16, 16, 2)
BLOCK0_V3_KERNEL(block0_v3_c16_p8, 16, 8, 16, 3)
BLOCK0_V3_KERNEL(block0_v3_c24_p16, 24, 16, 8, 3)
BLOCK0_V3_KERNEL(block0_v3_c48_p24, 48, 24, 8, 2)

// hblock0 v2 (fp16 mode, impls/_custom_hblock0.py): block0_v3's body with the C3-channel output stored as half
// NHWC (fp32 weights and math, nothing rounded to half before the output). Same launch bounds as the fp32 builds.
#define HBLOCK0_V2_KERNEL(NAME, C1, C3, CC, MINB)                                                            \
    extern "C" __global__ void __launch_bounds__(256, MINB)                                                 \
    NAME(const float* __restrict__ X, const float* __restrict__ Ws, const float* __restrict__ bs,           \
         const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,           \
         const float* __restrict__ bp, __half* __restrict__ Y, int H, int W, int Ho, int Wo, int act_s,      \
         int act_d, int act_p) {                                                                             \
        block0_v3_body<C1, C3, CC, __half>(X, Ws, bs, Wd, bd, Wp, bp, Y, H, W, Ho, Wo, act_s, act_d, act_p); \
    }

HBLOCK0_V2_KERNEL(hblock0_v2_c32_p16, 32, 16, 16, 3)
HBLOCK0_V2_KERNEL(hblock0_v2_c16_p8, 16, 8, 16, 3)
HBLOCK0_V2_KERNEL(hblock0_v2_c24_p16, 24, 16, 8, 3)
HBLOCK0_V2_KERNEL(hblock0_v2_c48_p24, 48, 24, 8, 2)
