// conv.cu -- convolutions other than the pointwise GEMM, NHWC activations.
//
// Activations are NHWC (N, H, W, C); every kernel writes y = epi(conv(x) + bias) with epi = ReLU6
// when act, then + R (same shape as y) when has_res.
//
// Families and versions (host: impls/custom.py):
//   1x1 stride-1 convs need no kernel here: NHWC x is already the (N*H*W, Cin) GEMM operand (gemm.cu).
//   "stem" (any groups=1 conv that is not pointwise: the first 3x3 stride-2 conv on 3 channels)
//     v1  im2col_nhwc -> GEMM with bias + ReLU6 in the GEMM epilogue (the baseline). K = k*k*Cin is
//         padded to a multiple of 4 with zero columns so the GEMM can take its float4 path.
//     v2  direct: weights (k*k*Cin, Cout) in shared memory, one thread per (output pixel, 4 output
//         channels), no im2col buffer: saves writing + re-reading 27 floats per output pixel.
//         Measured on H100, batch 64: 280 us, the same as v1 (runtime k / Cin loops, scalar stores).
//     v3  the 3x3, 3-channel case specialised: the 27 inputs of a pixel loaded once into registers,
//         fully unrolled, 8 output channels per thread read as float4 broadcasts from shared memory
//         and written as two float4 (Cout % 8 == 0, else v2). Expected: memory-bound, ~60-80 us.
//         Measured: 120 us at batch 64 (1.2 TB/s), 6.1 us at batch 1 (v1 280 / 11.1, v2 280 / 8.4).
//   "depthwise" (groups = C, 3x3, any stride / pad), weights stored (9, C):
//     v1  direct, one thread per output element, inputs from global memory (L1 does the reuse).
//     v2  shared-memory tiling: a block stages an input tile (TH*s+2) x (TW*s+2) x 32 channels once
//         and computes TH x TW outputs for its 32 channels; threads x = channel (coalesced).
//     v3  register-blocked float4: one thread = 4 channels x TW outputs along W, the 3 x
//         ((TW-1)*s+3) input window streamed through registers (no shared memory, no sync);
//         needs C % 4 == 0 (the host uses v2 otherwise and says so in info()). When the strips would
//         give fewer than ~2 threads per SM lane (small maps at batch 1) the host launches the
//         one-output-per-thread instance (_tw1) instead.
//   Measured on H100, all 17 depthwise convs of the network, batch 1 / 64 (results/NOTES.md):
//   v1 0.082 / 1.99 ms, v2 0.085 / 0.97 ms, v3 0.071 / 0.66 ms (2.9 TB/s on 96x112x112 stride 2).

#include <cuda_runtime.h>

#ifndef PDL_TRIGGER_EARLY
// session 31's measuring option (MBV2_PDL_TRIGGER=early, impls/_custom_kernels.py pdl_trigger_defines): 1 = this
// file's PDL kernels trigger their dependents (griddepcontrol.launch_dependents) once their input is staged, not
// after their last stores, so that the next launch is scheduled while this one computes. It still waits for this
// grid to finish (griddepcontrol.wait) before it reads anything this grid writes.
#define PDL_TRIGGER_EARLY 0
#endif

__device__ __forceinline__ float conv_epilogue(float v, int act) {
    return act ? fminf(fmaxf(v, 0.0f), 6.0f) : v;
}

// fuse v24: this file compiled with -DEXDWPW5_SPEC_ONLY holds ONE exdwpw5 build (end of file), so everything before
// the exdwpw5 section and after its kernel macro is left out
#ifndef EXDWPW5_SPEC_ONLY
// ---------------------------------------------------------------------------------------------
// stem v1: im2col for NHWC. cols[(n*Ho + ho)*Wo + wo][(ky*k + kx)*Cin + ci], row length Kp >= k*k*Cin
// (the extra columns are zero).
extern "C" __global__ void im2col_nhwc(const float* __restrict__ x, float* __restrict__ cols,
                                       int N, int H, int W, int Cin, int Ho, int Wo,
                                       int k, int stride, int pad, int Kp) {
    const long long total = (long long)N * Ho * Wo * Kp;
    const int K = k * k * Cin;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int col = (int)(idx % Kp);
        const long long row = idx / Kp;
        float v = 0.0f;
        if (col < K) {
            const int ci = col % Cin;
            const int kk = col / Cin;
            const int kx = kk % k, ky = kk / k;
            const int wo = (int)(row % Wo);
            const long long t = row / Wo;
            const int ho = (int)(t % Ho);
            const int n = (int)(t / Ho);
            const int hi = ho * stride - pad + ky, wi = wo * stride - pad + kx;
            if (hi >= 0 && hi < H && wi >= 0 && wi < W) v = x[(((long long)n * H + hi) * W + wi) * Cin + ci];
        }
        cols[idx] = v;
    }
}

// ---------------------------------------------------------------------------------------------
// stem v2: direct conv, weights w[(ky*k + kx)*Cin + ci][co] staged in dynamic shared memory.
// Thread = (output pixel p, output channels 4*g .. 4*g+3); g fastest, so a warp writes contiguous y.
extern "C" __global__ void __launch_bounds__(256)
conv_direct_nhwc(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                 const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int Cin,
                 int Ho, int Wo, int Cout, int k, int stride, int pad, int act, int has_res) {
    extern __shared__ float ws[];
    const int nw = k * k * Cin * Cout;
    for (int i = threadIdx.x; i < nw; i += blockDim.x) ws[i] = w[i];
    __syncthreads();
    const int G = (Cout + 3) / 4;
    const long long total = (long long)N * Ho * Wo * G;
    const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int g = (int)(idx % G);
    const long long p = idx / G;
    const int wo = (int)(p % Wo);
    const long long t = p / Wo;
    const int ho = (int)(t % Ho);
    const int n = (int)(t / Ho);
    const int co = g * 4;
    float acc[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[j] = (co + j < Cout) ? bias[co + j] : 0.0f;
    for (int ky = 0; ky < k; ++ky) {
        const int hi = ho * stride - pad + ky;
        if (hi < 0 || hi >= H) continue;
        for (int kx = 0; kx < k; ++kx) {
            const int wi = wo * stride - pad + kx;
            if (wi < 0 || wi >= W) continue;
            const float* xp = x + (((long long)n * H + hi) * W + wi) * Cin;
            const float* wp = ws + ((ky * k + kx) * Cin) * Cout + co;
            for (int ci = 0; ci < Cin; ++ci) {
                const float xv = __ldg(xp + ci);
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    if (co + j < Cout) acc[j] = fmaf(xv, wp[ci * Cout + j], acc[j]);
            }
        }
    }
    float* yp = y + p * Cout + co;
    const float* rp = has_res ? R + p * Cout + co : nullptr;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        if (co + j < Cout) {
            float v = conv_epilogue(acc[j], act);
            if (has_res) v += rp[j];
            yp[j] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// depthwise v1: one thread per output element
extern "C" __global__ void dwconv3_v1(const float* __restrict__ x, const float* __restrict__ w,
                                      const float* __restrict__ bias, const float* __restrict__ R,
                                      float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                                      int stride, int pad, int act, int has_res) {
    const long long total = (long long)N * Ho * Wo * C;
    const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int c = (int)(idx % C);
    const long long p = idx / C;
    const int wo = (int)(p % Wo);
    const long long t = p / Wo;
    const int ho = (int)(t % Ho);
    const int n = (int)(t / Ho);
    float acc = bias[c];
    for (int ky = 0; ky < 3; ++ky) {
        const int hi = ho * stride - pad + ky;
        if (hi < 0 || hi >= H) continue;
        for (int kx = 0; kx < 3; ++kx) {
            const int wi = wo * stride - pad + kx;
            if (wi < 0 || wi >= W) continue;
            acc = fmaf(x[(((long long)n * H + hi) * W + wi) * C + c], w[(ky * 3 + kx) * C + c], acc);
        }
    }
    float v = conv_epilogue(acc, act);
    if (has_res) v += R[idx];
    y[idx] = v;
}

// ---------------------------------------------------------------------------------------------
// depthwise v2: shared-memory tiles. Block (32, TH): threadIdx.x = channel within a 32-channel slice,
// threadIdx.y = output row of the tile; each thread computes TW outputs along W.
// grid = (ceil(Wo/TW), ceil(Ho/TH), N * ceil(C/32)).
template <int TH, int TW, int S>
__device__ __forceinline__ void dwconv3_v2_body(const float* __restrict__ x, const float* __restrict__ w,
                                                const float* __restrict__ bias, const float* __restrict__ R,
                                                float* __restrict__ y, int N, int H, int W, int C, int Ho,
                                                int Wo, int pad, int act, int has_res) {
    constexpr int IH = (TH - 1) * S + 3, IW = (TW - 1) * S + 3;
    __shared__ float tile[IH][IW][32];
    const int cs = (C + 31) / 32;
    const int n = blockIdx.z / cs;
    const int c0 = (blockIdx.z % cs) * 32;
    const int ho0 = blockIdx.y * TH, wo0 = blockIdx.x * TW;
    const int hi0 = ho0 * S - pad, wi0 = wo0 * S - pad;
    const int lane = threadIdx.x, ty = threadIdx.y;
    const int c = c0 + lane;
    for (int i = ty; i < IH * IW; i += TH) {
        const int r = i / IW, q = i % IW;
        const int hi = hi0 + r, wi = wi0 + q;
        float v = 0.0f;
        if (c < C && hi >= 0 && hi < H && wi >= 0 && wi < W) v = x[(((long long)n * H + hi) * W + wi) * C + c];
        tile[r][q][lane] = v;
    }
    __syncthreads();
    if (c >= C) return;
    const int ho = ho0 + ty;
    if (ho >= Ho) return;
    float wr[9];
#pragma unroll
    for (int i = 0; i < 9; ++i) wr[i] = w[i * C + c];
    const float b = bias[c];
#pragma unroll
    for (int j = 0; j < TW; ++j) {
        const int wo = wo0 + j;
        if (wo >= Wo) break;
        float acc = b;
#pragma unroll
        for (int ky = 0; ky < 3; ++ky)
#pragma unroll
            for (int kx = 0; kx < 3; ++kx) acc = fmaf(tile[ty * S + ky][j * S + kx][lane], wr[ky * 3 + kx], acc);
        const long long o = (((long long)n * Ho + ho) * Wo + wo) * C + c;
        float v = conv_epilogue(acc, act);
        if (has_res) v += R[o];
        y[o] = v;
    }
}

extern "C" __global__ void __launch_bounds__(256)
dwconv3_v2_s1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
              const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
              int pad, int act, int has_res) {
    dwconv3_v2_body<8, 8, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
dwconv3_v2_s2(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
              const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
              int pad, int act, int has_res) {
    dwconv3_v2_body<8, 8, 2>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// depthwise v3: float4 channels, TW outputs per thread along W; C % 4 == 0.
// Thread index: channel group fastest (coalesced), then the W strip, then (n, ho).
template <int TW, int S>
__device__ __forceinline__ void dwconv3_v3_body(const float* __restrict__ x, const float* __restrict__ w,
                                                const float* __restrict__ bias, const float* __restrict__ R,
                                                float* __restrict__ y, int N, int H, int W, int C, int Ho,
                                                int Wo, int pad, int act, int has_res) {
    constexpr int IW = (TW - 1) * S + 3;
    const int C4 = C / 4;
    const int strips = (Wo + TW - 1) / TW;
    const long long total = (long long)N * Ho * strips * C4;
    const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int g = (int)(idx % C4);
    long long t = idx / C4;
    const int s = (int)(t % strips);
    t /= strips;
    const int ho = (int)(t % Ho);
    const int n = (int)(t / Ho);
    const int wo0 = s * TW;
    const int wi0 = wo0 * S - pad;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const float4* w4 = reinterpret_cast<const float4*>(w);
    const float4 b = reinterpret_cast<const float4*>(bias)[g];
    float4 acc[TW];
#pragma unroll
    for (int j = 0; j < TW; ++j) acc[j] = b;
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        const int hi = ho * S - pad + ky;
        if (hi < 0 || hi >= H) continue;
        const float4 wk0 = __ldg(w4 + (ky * 3 + 0) * C4 + g);
        const float4 wk1 = __ldg(w4 + (ky * 3 + 1) * C4 + g);
        const float4 wk2 = __ldg(w4 + (ky * 3 + 2) * C4 + g);
        const long long rowbase = ((long long)n * H + hi) * W;
#pragma unroll
        for (int q = 0; q < IW; ++q) {
            const int wi = wi0 + q;
            float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
            if (wi >= 0 && wi < W) v = __ldg(x4 + (rowbase + wi) * C4 + g);
            // input column q feeds output j through tap kx = q - j*S (0 <= kx < 3)
#pragma unroll
            for (int j = 0; j < TW; ++j) {
                const int kx = q - j * S;
                if (kx >= 0 && kx < 3) {
                    const float4 wk = kx == 0 ? wk0 : (kx == 1 ? wk1 : wk2);
                    acc[j].x = fmaf(v.x, wk.x, acc[j].x);
                    acc[j].y = fmaf(v.y, wk.y, acc[j].y);
                    acc[j].z = fmaf(v.z, wk.z, acc[j].z);
                    acc[j].w = fmaf(v.w, wk.w, acc[j].w);
                }
            }
        }
    }
#pragma unroll
    for (int j = 0; j < TW; ++j) {
        const int wo = wo0 + j;
        if (wo >= Wo) break;
        const long long o = ((((long long)n * Ho + ho) * Wo + wo) * C4 + g);
        float4 v = acc[j];
        v.x = conv_epilogue(v.x, act);
        v.y = conv_epilogue(v.y, act);
        v.z = conv_epilogue(v.z, act);
        v.w = conv_epilogue(v.w, act);
        if (has_res) {
            const float4 r = reinterpret_cast<const float4*>(R)[o];
            v.x += r.x; v.y += r.y; v.z += r.z; v.w += r.w;
        }
        reinterpret_cast<float4*>(y)[o] = v;
    }
}

extern "C" __global__ void __launch_bounds__(256)
dwconv3_v3_s1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
              const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
              int pad, int act, int has_res) {
    dwconv3_v3_body<4, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
dwconv3_v3_s2(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
              const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
              int pad, int act, int has_res) {
    dwconv3_v3_body<2, 2>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

// ---------------------------------------------------------------------------------------------
// stem v3: 3x3 conv on 3 input channels, any stride / pad, Cout % 8 == 0; weights (27, Cout) in
// dynamic shared memory. Thread = (output pixel, 8 output channels), channel group fastest.
extern "C" __global__ void __launch_bounds__(256)
conv3x3c3_nhwc(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
               const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int Ho, int Wo,
               int Cout, int stride, int pad, int act, int has_res) {
    extern __shared__ __align__(16) float wsm[];
    for (int i = threadIdx.x; i < 27 * Cout; i += blockDim.x) wsm[i] = w[i];
    __syncthreads();
    const int G = Cout / 8;
    const long long total = (long long)N * Ho * Wo * G;
    const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (idx >= total) return;
    const int g = (int)(idx % G);
    const long long p = idx / G;
    const int wo = (int)(p % Wo);
    const long long t = p / Wo;
    const int ho = (int)(t % Ho);
    const int n = (int)(t / Ho);
    float in[27];
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        const int hi = ho * stride - pad + ky;
#pragma unroll
        for (int kx = 0; kx < 3; ++kx) {
            const int wi = wo * stride - pad + kx;
            const bool ok = hi >= 0 && hi < H && wi >= 0 && wi < W;
            const float* xp = x + (((long long)n * H + (ok ? hi : 0)) * W + (ok ? wi : 0)) * 3;
#pragma unroll
            for (int ci = 0; ci < 3; ++ci) in[(ky * 3 + kx) * 3 + ci] = ok ? __ldg(xp + ci) : 0.0f;
        }
    }
    const int co = g * 8;
    const float4 b0 = __ldg(reinterpret_cast<const float4*>(bias + co));
    const float4 b1 = __ldg(reinterpret_cast<const float4*>(bias + co + 4));
    float acc[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
    for (int r = 0; r < 27; ++r) {
        const float4 w0 = *reinterpret_cast<const float4*>(wsm + r * Cout + co);
        const float4 w1 = *reinterpret_cast<const float4*>(wsm + r * Cout + co + 4);
        acc[0] = fmaf(in[r], w0.x, acc[0]);
        acc[1] = fmaf(in[r], w0.y, acc[1]);
        acc[2] = fmaf(in[r], w0.z, acc[2]);
        acc[3] = fmaf(in[r], w0.w, acc[3]);
        acc[4] = fmaf(in[r], w1.x, acc[4]);
        acc[5] = fmaf(in[r], w1.y, acc[5]);
        acc[6] = fmaf(in[r], w1.z, acc[6]);
        acc[7] = fmaf(in[r], w1.w, acc[7]);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[j] = conv_epilogue(acc[j], act);
    float4 o0 = make_float4(acc[0], acc[1], acc[2], acc[3]);
    float4 o1 = make_float4(acc[4], acc[5], acc[6], acc[7]);
    const long long off = p * Cout + co;
    if (has_res) {
        const float4 r0 = __ldg(reinterpret_cast<const float4*>(R + off));
        const float4 r1 = __ldg(reinterpret_cast<const float4*>(R + off + 4));
        o0.x += r0.x; o0.y += r0.y; o0.z += r0.z; o0.w += r0.w;
        o1.x += r1.x; o1.y += r1.y; o1.z += r1.z; o1.w += r1.w;
    }
    *reinterpret_cast<float4*>(y + off) = o0;
    *reinterpret_cast<float4*>(y + off + 4) = o1;
}

// depthwise v3 with one output per thread (TW = 1): 4x the threads of dwconv3_v3_s1 / 2x of _s2, for
// the small maps of batch 1 where the register-blocked version leaves most SMs idle.
extern "C" __global__ void __launch_bounds__(256)
dwconv3_v3_s1_tw1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                  const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                  int pad, int act, int has_res) {
    dwconv3_v3_body<1, 1>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

extern "C" __global__ void __launch_bounds__(256)
dwconv3_v3_s2_tw1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                  const float* __restrict__ R, float* __restrict__ y, int N, int H, int W, int C, int Ho, int Wo,
                  int pad, int act, int has_res) {
    dwconv3_v3_body<1, 2>(x, w, bias, R, y, N, H, W, C, Ho, Wo, pad, act, has_res);
}

// Family "fuse" v3 (host: impls/custom.py; v1 = no fusion, v2 = dwpw in gemm.cu): the expansion 1x1
// conv (+ bias, ReLU6) computed inside the depthwise 3x3 conv (+ bias, ReLU6) that reads it, so the 6x
// expanded tensor is never written to or read from device memory (MobileNetV2's largest tensors).
// Block = TH x TW output pixels x 32 expanded channels (lane = channel) of one image:
//   1. stage the input patch ((TH-1)*S+3) x ((TW-1)*S+3) x CIN in shared memory (float4, zeros outside),
//   2. each thread keeps its channel's CIN expansion weights in registers and computes the expanded
//      patch (halo included) into shared memory; pixels outside the image are the depthwise conv's zero
//      padding (0, not ReLU6(bias)),
//   3. the depthwise 3x3 from shared memory, coalesced 128-byte stores per warp.
// Only for the memory-bound expansions (CIN = 8, 16, 24, 32: the 112x112 .. 28x28 blocks), where the
// halo recompute (1.13x at stride 2, 1.56x at stride 1) costs less than the round trip it saves; the
// host fuses nothing else. Needs 16-byte aligned x. X: (n, H, W, CIN); We: (CIN, Ce) = W^T; be, bd: (Ce);
// Wd: (9, Ce); Y: (n, Ho, Wo, Ce). Expected (batch 64): the 6 small-K expand + depthwise pairs
// ~0.8 -> ~0.35 ms, e2e 2.64 -> ~2.2 ms; batch 1: 6 launches fewer.
// MEASURED (H100, e2e graph): batch 1 0.277 -> 0.261 ms (won), batch 64 2.621 -> 2.736 ms, batch 256
// 9.43 -> 9.95 ms (LOST): the expansion phase is not register-blocked (one FMA per 1/4 broadcast LDS,
// 1.2-1.6x halo recompute) and the three barrier-separated phases expose the staging latency.
template <int S, int CIN, int TH, int TW>
__device__ __forceinline__ void exdw_body(const float* __restrict__ X, const float* __restrict__ We,
                                          const float* __restrict__ be, const float* __restrict__ Wd,
                                          const float* __restrict__ bd, float* __restrict__ Y, int H, int W,
                                          int Ce, int Ho, int Wo, int pad, int act_e, int act_d) {
    constexpr int IH = (TH - 1) * S + 3, IW = (TW - 1) * S + 3, NP = IH * IW;
    static_assert(CIN % 4 == 0, "float4 staging");
    __shared__ __align__(16) float Xs[NP][CIN];
    __shared__ float Es[NP][32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int tiles_w = (Wo + TW - 1) / TW;
    const int th0 = (blockIdx.x / tiles_w) * TH, tw0 = (blockIdx.x % tiles_w) * TW;
    const int ih0 = th0 * S - pad, iw0 = tw0 * S - pad;
    const int n = blockIdx.z;
    const int c = blockIdx.y * 32 + lane;
    const bool cok = c < Ce;
    const float* Xn = X + (long long)n * H * W * CIN;

    for (int e = tid; e < NP * (CIN / 4); e += blockDim.x) {
        const int p = e / (CIN / 4), k4 = (e % (CIN / 4)) * 4;
        const int ih = ih0 + p / IW, iw = iw0 + p % IW;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = *reinterpret_cast<const float4*>(Xn + ((long long)ih * W + iw) * CIN + k4);
        *reinterpret_cast<float4*>(&Xs[p][k4]) = v;
    }
    float w[CIN];
#pragma unroll
    for (int k = 0; k < CIN; ++k) w[k] = cok ? We[(long long)k * Ce + c] : 0.0f;
    const float bias_e = cok ? be[c] : 0.0f;
    __syncthreads();

    for (int p = warp; p < NP; p += blockDim.x / 32) {
        const int ih = ih0 + p / IW, iw = iw0 + p % IW;
        float acc = bias_e;
#pragma unroll
        for (int k = 0; k < CIN; k += 4) {
            const float4 xv = *reinterpret_cast<const float4*>(&Xs[p][k]);  // broadcast
            acc = fmaf(xv.x, w[k], acc);
            acc = fmaf(xv.y, w[k + 1], acc);
            acc = fmaf(xv.z, w[k + 2], acc);
            acc = fmaf(xv.w, w[k + 3], acc);
        }
        if (act_e) acc = fminf(fmaxf(acc, 0.0f), 6.0f);
        Es[p][lane] = (ih >= 0 && ih < H && iw >= 0 && iw < W) ? acc : 0.0f;
    }
    float wd[9];
#pragma unroll
    for (int t = 0; t < 9; ++t) wd[t] = cok ? Wd[(long long)t * Ce + c] : 0.0f;
    const float bias_d = cok ? bd[c] : 0.0f;
    __syncthreads();

    if (!cok) return;
    for (int q = warp; q < TH * TW; q += blockDim.x / 32) {
        const int oh = q / TW, ow = q % TW;
        const int goh = th0 + oh, gow = tw0 + ow;
        if (goh >= Ho || gow >= Wo) continue;
        float acc = bias_d;
#pragma unroll
        for (int dy = 0; dy < 3; ++dy)
#pragma unroll
            for (int dx = 0; dx < 3; ++dx) acc = fmaf(Es[(oh * S + dy) * IW + ow * S + dx][lane], wd[dy * 3 + dx], acc);
        if (act_d) acc = fminf(fmaxf(acc, 0.0f), 6.0f);
        Y[(((long long)n * Ho + goh) * Wo + gow) * Ce + c] = acc;
    }
}

// grid = (ceil(Ho / TH) * ceil(Wo / TW), ceil(Ce / 32), n), block = 256
#define EXDW_KERNEL(NAME, S, CIN, TH, TW)                                                                  \
    extern "C" __global__ void __launch_bounds__(256)                                                     \
    NAME(const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,         \
         const float* __restrict__ Wd, const float* __restrict__ bd, float* __restrict__ Y, int H, int W,  \
         int Ce, int Ho, int Wo, int pad, int act_e, int act_d) {                                          \
        exdw_body<S, CIN, TH, TW>(X, We, be, Wd, bd, Y, H, W, Ce, Ho, Wo, pad, act_e, act_d);             \
    }

EXDW_KERNEL(exdw_s1_c8, 1, 8, 8, 8)
EXDW_KERNEL(exdw_s1_c16, 1, 16, 8, 8)
EXDW_KERNEL(exdw_s1_c24, 1, 24, 8, 8)
EXDW_KERNEL(exdw_s1_c32, 1, 32, 8, 8)
EXDW_KERNEL(exdw_s2_c8, 2, 8, 4, 8)
EXDW_KERNEL(exdw_s2_c16, 2, 16, 4, 8)
EXDW_KERNEL(exdw_s2_c24, 2, 24, 4, 8)
EXDW_KERNEL(exdw_s2_c32, 2, 32, 4, 8)

// Family "fuse" v4: fuse v3 register-blocked. The expansion is a small GEMM (M = patch pixels, N = 32
// channels, K = CIN) done with each thread computing PP pixels x 4 channels from float4 shared-memory
// loads (16 PP FMAs per PP + 4 LDS.128 instead of 4 FMAs per LDS), expansion weights staged in shared
// memory; the depthwise phase reads the expanded patch as float4 (4 channels per thread) and stores
// float4 when Ce % 4 == 0. Same contract and grid as v3. Expected: the expansion phase 3-4x faster,
// making the fused pair faster than the two kernels at batch 64 (the v3 loss).
// MEASURED (H100, all 6 pairs, batch 1 / 64 / 256): v1 (two kernels) 0.057 / 0.836 / 3.139 ms, v3
// 0.044 / 0.935 / 3.617, v4 0.039 / 0.806 / 3.099 (default); stride-1 pairs still lose at batch 64+.
template <int S, int CIN, int TH, int TW>
__device__ __forceinline__ void exdw4_body(const float* __restrict__ X, const float* __restrict__ We,
                                           const float* __restrict__ be, const float* __restrict__ Wd,
                                           const float* __restrict__ bd, float* __restrict__ Y, int H, int W,
                                           int Ce, int Ho, int Wo, int pad, int act_e, int act_d) {
    constexpr int IH = (TH - 1) * S + 3, IW = (TW - 1) * S + 3, NP = IH * IW;
    constexpr int CC = 32, CG = CC / 4, NTH = 256, PL = NTH / CG, PP = (NP + PL - 1) / PL;
    static_assert(CIN % 4 == 0, "float4 staging");
    __shared__ __align__(16) float Xs[NP][CIN];
    __shared__ __align__(16) float Ws[CIN][CC];
    __shared__ __align__(16) float Es[NP][CC];
    const int tid = threadIdx.x, cg = tid % CG, pl = tid / CG;
    const int tiles_w = (Wo + TW - 1) / TW;
    const int th0 = (blockIdx.x / tiles_w) * TH, tw0 = (blockIdx.x % tiles_w) * TW;
    const int ih0 = th0 * S - pad, iw0 = tw0 * S - pad;
    const int n = blockIdx.z, c0 = blockIdx.y * CC, cq = c0 + cg * 4;
    const float* Xn = X + (long long)n * H * W * CIN;

    for (int e = tid; e < NP * (CIN / 4); e += NTH) {
        const int p = e / (CIN / 4), k4 = (e % (CIN / 4)) * 4;
        const int ih = ih0 + p / IW, iw = iw0 + p % IW;
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = *reinterpret_cast<const float4*>(Xn + ((long long)ih * W + iw) * CIN + k4);
        *reinterpret_cast<float4*>(&Xs[p][k4]) = v;
    }
    for (int e = tid; e < CIN * CC; e += NTH) {
        const int k = e / CC, j = e % CC;
        Ws[k][j] = c0 + j < Ce ? We[(long long)k * Ce + c0 + j] : 0.0f;
    }
    float bias4[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) bias4[q] = cq + q < Ce ? be[cq + q] : 0.0f;
    __syncthreads();

    float acc[PP][4];
#pragma unroll
    for (int i = 0; i < PP; ++i)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[i][q] = bias4[q];
#pragma unroll
    for (int k = 0; k < CIN; k += 4) {
        const float4 w0 = *reinterpret_cast<const float4*>(&Ws[k][cg * 4]);
        const float4 w1 = *reinterpret_cast<const float4*>(&Ws[k + 1][cg * 4]);
        const float4 w2 = *reinterpret_cast<const float4*>(&Ws[k + 2][cg * 4]);
        const float4 w3 = *reinterpret_cast<const float4*>(&Ws[k + 3][cg * 4]);
#pragma unroll
        for (int i = 0; i < PP; ++i) {
            const int p = min(pl + i * PL, NP - 1);  // clamped: out-of-range rows are computed, not stored
            const float4 xv = *reinterpret_cast<const float4*>(&Xs[p][k]);
            acc[i][0] = fmaf(xv.x, w0.x, fmaf(xv.y, w1.x, fmaf(xv.z, w2.x, fmaf(xv.w, w3.x, acc[i][0]))));
            acc[i][1] = fmaf(xv.x, w0.y, fmaf(xv.y, w1.y, fmaf(xv.z, w2.y, fmaf(xv.w, w3.y, acc[i][1]))));
            acc[i][2] = fmaf(xv.x, w0.z, fmaf(xv.y, w1.z, fmaf(xv.z, w2.z, fmaf(xv.w, w3.z, acc[i][2]))));
            acc[i][3] = fmaf(xv.x, w0.w, fmaf(xv.y, w1.w, fmaf(xv.z, w2.w, fmaf(xv.w, w3.w, acc[i][3]))));
        }
    }
#pragma unroll
    for (int i = 0; i < PP; ++i) {
        const int p = pl + i * PL;
        if (p >= NP) continue;
        const int ih = ih0 + p / IW, iw = iw0 + p % IW;
        const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
        float4 v;
        v.x = inside ? (act_e ? fminf(fmaxf(acc[i][0], 0.0f), 6.0f) : acc[i][0]) : 0.0f;
        v.y = inside ? (act_e ? fminf(fmaxf(acc[i][1], 0.0f), 6.0f) : acc[i][1]) : 0.0f;
        v.z = inside ? (act_e ? fminf(fmaxf(acc[i][2], 0.0f), 6.0f) : acc[i][2]) : 0.0f;
        v.w = inside ? (act_e ? fminf(fmaxf(acc[i][3], 0.0f), 6.0f) : acc[i][3]) : 0.0f;
        *reinterpret_cast<float4*>(&Es[p][cg * 4]) = v;
    }
    float wd[9][4], bd4[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        bd4[q] = cq + q < Ce ? bd[cq + q] : 0.0f;
#pragma unroll
        for (int t = 0; t < 9; ++t) wd[t][q] = cq + q < Ce ? Wd[(long long)t * Ce + cq + q] : 0.0f;
    }
    __syncthreads();

    if (cq >= Ce) return;
    const bool vec = (Ce % 4) == 0;
    for (int o = pl; o < TH * TW; o += PL) {
        const int oh = o / TW, ow = o % TW;
        const int goh = th0 + oh, gow = tw0 + ow;
        if (goh >= Ho || gow >= Wo) continue;
        float r[4] = {bd4[0], bd4[1], bd4[2], bd4[3]};
#pragma unroll
        for (int dy = 0; dy < 3; ++dy)
#pragma unroll
            for (int dx = 0; dx < 3; ++dx) {
                const float4 e4 = *reinterpret_cast<const float4*>(&Es[(oh * S + dy) * IW + ow * S + dx][cg * 4]);
                const int t = dy * 3 + dx;
                r[0] = fmaf(e4.x, wd[t][0], r[0]);
                r[1] = fmaf(e4.y, wd[t][1], r[1]);
                r[2] = fmaf(e4.z, wd[t][2], r[2]);
                r[3] = fmaf(e4.w, wd[t][3], r[3]);
            }
        if (act_d) {
#pragma unroll
            for (int q = 0; q < 4; ++q) r[q] = fminf(fmaxf(r[q], 0.0f), 6.0f);
        }
        float* yp = Y + (((long long)n * Ho + goh) * Wo + gow) * Ce + cq;
        if (vec) {
            *reinterpret_cast<float4*>(yp) = make_float4(r[0], r[1], r[2], r[3]);
        } else {
#pragma unroll
            for (int q = 0; q < 4; ++q)
                if (cq + q < Ce) yp[q] = r[q];
        }
    }
}

#define EXDW4_KERNEL(NAME, S, CIN, TH, TW)                                                                 \
    extern "C" __global__ void __launch_bounds__(256)                                                     \
    NAME(const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,         \
         const float* __restrict__ Wd, const float* __restrict__ bd, float* __restrict__ Y, int H, int W,  \
         int Ce, int Ho, int Wo, int pad, int act_e, int act_d) {                                          \
        exdw4_body<S, CIN, TH, TW>(X, We, be, Wd, bd, Y, H, W, Ce, Ho, Wo, pad, act_e, act_d);            \
    }

EXDW4_KERNEL(exdw4_s1_c8, 1, 8, 8, 8)
EXDW4_KERNEL(exdw4_s1_c16, 1, 16, 8, 8)
EXDW4_KERNEL(exdw4_s1_c24, 1, 24, 8, 8)
EXDW4_KERNEL(exdw4_s1_c32, 1, 32, 8, 8)
EXDW4_KERNEL(exdw4_s2_c8, 2, 8, 4, 8)
EXDW4_KERNEL(exdw4_s2_c16, 2, 16, 4, 8)
EXDW4_KERNEL(exdw4_s2_c24, 2, 24, 4, 8)
EXDW4_KERNEL(exdw4_s2_c32, 2, 32, 4, 8)

#endif  // EXDWPW5_SPEC_ONLY (the kernels before exdwpw5)

// Family "fuse" v5: the whole small-CIN bottleneck block in one kernel: expansion 1x1 (+ ReLU6) ->
// depthwise 3x3 s1/s2 (+ ReLU6) -> projection 1x1 (+ bias, + residual), the expanded AND the depthwise
// tensors staying in shared memory. fuse v4 (exdw4) still wrote the depthwise output (Ce channels at the
// output resolution, 6x the block's output) to device memory and the projection GEMM read it back.
// Block = TH x TW output pixels of one image, ALL expanded channels in chunks of CC (the input patch is
// staged once, not once per chunk as in exdw4); per chunk, two barriers:
//   E: Es[NP][CC] = ReLU6(Xs[NP][CIN] . We[:, chunk] + be), 0 outside the image (register-blocked: PP pixels
//      x 4 channels per thread, weights as float4 from global / L1);
//   D: Ds[P][CC] = ReLU6(depthwise 3x3 of Es + bd) (DP vertically adjacent outputs x 4 channels per item);
//   P: acc[P][COUT] += Ds[P][chunk] . Wp[chunk, :] (PPX pixels x 4 output channels per thread, in
//      registers across chunks).
// Epilogue: + bp (+ R, the residual), float4 stores of the COUT-channel output only. Needs Ce % 4 == 0,
// 16-byte aligned arrays. X: (n, H, W, CIN); We: (CIN, Ce); Wd: (9, Ce); Wp: (Ce, COUT); R, Y: (n, Ho, Wo, COUT).
// Expected (H100, batch 256, written before the first device run): the 6 small-CIN blocks of MobileNetV2-1.0
// from ~3.1 ms (exdw4 pairs) + ~0.9 ms (their projection GEMMs) to ~2.5-3.0 ms in all: the issue count per
// block (~35k warp instructions for 24->144->24 @56 8x8) puts it at ~0.5-0.7 ms for that block vs 1.07 now;
// batch 1: 6 launches fewer, but only Ho*Wo/(TH*TW) blocks per image (49 at 56x56): may lose, autotuned.
// MEASURED (H100, the 6 blocks, batch 1 / 64 / 256): v4 pair + GEMM 0.087 / 1.059 / 3.961 ms, first build (CC 32,
// DP 1, 2 blocks/SM) 0.148 / 1.048 / 4.021, tuned builds below 1.020 / 3.742; e2e batch 256 8.22 -> 7.94 ms with
// the per-block autotune (default). Bound by the L1/shared-memory pipe (ncu: L1/TEX 79-89%, issue 53%, DRAM 6%).
#ifndef STAGE_ASYNC
// session 33's measuring option (MBV2_STAGE=async, impls/_custom_kernels.py stage_option): 1 = exdwpw5 takes no L2
// round trip in a row that it can avoid (exdwpw5_body, EXDWPW5_ASYNC):
//   - its input patch by cp.async (every 16-byte piece requested at once, zero-filled outside the map) instead of a
//     loop whose __ldcg each waits for the store before it (at batch 1 a thread runs 2 - 3 of them, right after
//     griddepcontrol.wait);
//   - in the builds that stage their weights (WS bit 0): each chunk's expansion and depthwise biases and depthwise
//     weights staged with its 1x1 weights (by cp.async into the same double buffer, exdwpw5_stage_o) and the
//     projection's bias once, before the wait, instead of __ldg at the start of the expansion, the depthwise phase
//     and the epilogue (one L2 round trip each, after a barrier);
//   - the residual, where it is this kernel's input (R == X, stride 1), from the staged patch.
// The same values, so the same sums. Not in the flag twins (fuse v44: X after the polls). Shared memory:
// K.exdwpw5_smem adds the buffers in a process with MBV2_STAGE=async. 2 (fuse v48's patch twin, session 37) = the
// patch (and the residual from it) by cp.async only, the biases and depthwise weights by __ldg as with 0: nvcc 13.0
// gives exdwpw5_s2_c24_o32_t4x4_cc72_k2 (fixed, batch 1) 152 registers with 0 and 2, 90 with 1.
#define STAGE_ASYNC 0
#endif

// cp.async (sm_80+) of 16 bytes, zero-filled when !valid (gmem is then not read)
__device__ __forceinline__ void exdwpw5_cp16(float* smem, const float* gmem, bool valid) {
    const unsigned sa = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sa), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void exdwpw5_cp_wait() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// exdwpw5 (WS = 1): chunk c0's expansion (CIN x CC) and projection (CC x COUT) weights into shared memory by
// cp.async, zero beyond Ce
template <int CIN, int COUT, int CC>
__device__ __forceinline__ void exdwpw5_stage_w(float* Wes, float* Wps, const float* __restrict__ We,
                                                const float* __restrict__ Wp, int Ce, int c0, int tid) {
    constexpr int WE_N = CIN * CC, WP_N = CC * COUT;
    for (int e = tid; e < (WE_N + WP_N) / 4; e += 256) {
        if (e < WE_N / 4) {
            const int k = e / (CC / 4), j = (e % (CC / 4)) * 4;
            const bool ok = c0 + j < Ce;
            exdwpw5_cp16(&Wes[k * CC + j], ok ? We + (long long)k * Ce + c0 + j : We, ok);
        } else {
            const int f = e - WE_N / 4, r = f / (COUT / 4), j = (f % (COUT / 4)) * 4;
            const bool ok = c0 + r < Ce;
            exdwpw5_cp16(&Wps[r * COUT + j], ok ? Wp + (long long)(c0 + r) * COUT + j : Wp, ok);
        }
    }
}

// fuse v44's flag twins (impls/_custom_flags.py, K.build_fixed(flags=True), the fixed build's name + "_hf"):
// -DEXDWPW5_FLAGS=1 on a fixed build. As kernels/cblock.cu EXDWPW6_FLAGS (fuse v43), the kernel takes five more
// arguments (fin, fout, fep, ptr_, pcl) and hands off through per-tile flags instead of the grid-wide
// griddepcontrol.wait: fin == nullptr waits as before; otherwise the block polls (ld.acquire.gpu) the flags of the
// producer's row tiles that its input patch's rows lie in (producer tiles of ptr_ rows, pcl flags each) until each
// holds this forward's number (*fep). Every block then stores that number into its own flag, fout[n * gridDim.x +
// blockIdx.x], after its Y stores (st.release.gpu, after a block barrier): a band of TH output rows holds
// ceil(Wo / TW) * KS flags in order, so a consumer sees it as one row tile of ptr_ = TH rows and pcl = that many
// flags. The residual is the input tensor, read from the rows the patch covers, so the same flags cover it. X and R
// are read through L2 (ld.cg, the generic proxy): the block barrier after the acquires orders them.
#ifndef EXDWPW5_FLAGS
#define EXDWPW5_FLAGS 0
#endif
#if EXDWPW5_FLAGS && !defined(EXDWPW5_SPEC_ONLY)
#error "EXDWPW5_FLAGS: fixed builds only (EXDWPW5_SPEC_ONLY)"
#endif
#if EXDWPW5_FLAGS && defined(EXDWPW5_EPOCH) && EXDWPW5_EPOCH
#error "EXDWPW5_FLAGS and EXDWPW5_EPOCH: one twin or the other"
#endif
#if STAGE_ASYNC && !EXDWPW5_FLAGS
constexpr bool EXDWPW5_ASYNC = true;  // (STAGE_ASYNC above)
#else
constexpr bool EXDWPW5_ASYNC = false;
#endif
#if STAGE_ASYNC == 2
#define EXDWPW5_ASYNC_WEIGHTS 0  // (fuse v48's patch twin: the patch only)
#else
#define EXDWPW5_ASYNC_WEIGHTS 1
#endif

// EXDWPW5_ASYNC with staged weights: chunk c0's expansion bias, depthwise weights (9 rows) and depthwise bias into
// Wos [11][CC] (row 0 be, rows 1 - 9 Wd, row 10 bd) by cp.async, zero beyond Ce
template <int CC>
__device__ __forceinline__ void exdwpw5_stage_o(float* Wos, const float* __restrict__ be, const float* __restrict__ Wd,
                                                const float* __restrict__ bd, int Ce, int c0, int tid) {
    constexpr int G = CC / 4;
    for (int e = tid; e < 11 * G; e += 256) {
        const int r = e / G, j = (e % G) * 4;
        const bool ok = c0 + j < Ce;
        const float* src = r == 0 ? be + c0 + j : r == 10 ? bd + c0 + j : Wd + (long long)(r - 1) * Ce + c0 + j;
        exdwpw5_cp16(&Wos[r * CC + j], ok ? src : be, ok);
    }
}
#if EXDWPW5_FLAGS
#define EXDWPW5_BODY_FLAG_PARAMS \
    , const unsigned *fin = nullptr, unsigned *fout = nullptr, const unsigned *fep = nullptr, int ptr_ = 1, int pcl = 1
// the flags of producer tiles [iy0 / ptr_, (iy1 - 1) / ptr_] of image n hold this forward's number (the same poll as
// kernels/cblock.cu flags_wait, without its async-proxy fence: this kernel reads its input by ld.cg), then a barrier
__device__ __forceinline__ void exdwpw5_flags_wait(const unsigned* fin, const unsigned* fep, int n, int H, int iy0,
                                                   int iy1, int ptr_, int pcl, int tid) {
    const int sp0 = iy0 / ptr_, sp1 = (iy1 - 1) / ptr_, stp = (H + ptr_ - 1) / ptr_;
    const int count = (sp1 - sp0 + 1) * pcl;
    for (int i = tid; i < count; i += 256) {
        const unsigned* f = fin + ((size_t)n * stp + sp0 + i / pcl) * pcl + i % pcl;
        const unsigned e = __ldcg(fep);
        unsigned v, polls = 0;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(f) : "memory");
            if (++polls == (1u << 24)) __trap();  // seconds: a broken hand-off, not a slow one
        } while (v != e);
    }
    __syncthreads();
}
#else
#define EXDWPW5_BODY_FLAG_PARAMS  // (the other builds keep exdwpw5_body's signature, and so their code)
#endif

// fuse v49 (session 38; fixed builds only: -DEXDWPW5_B0FUSE=1 on the staged twin, K.build_fixed(b0fuse=True), the name
// + "_tb"): the network's first block (block0 v4: stem conv 3x3 s2 3 -> 32 + ReLU6, depthwise 3x3 32 + ReLU6,
// projection 32 -> 16) computed inside the first exdwpw5 launch, into the input patch Xs, instead of read from the
// tensor block0 wrote: one launch fewer at batch 1 and no 16 x 112 x 112 round trip through L2. Each block computes
// block0's output on its own IH x IW patch (halo recomputed; the stem on its (IH + 2) x (IW + 2) tile), the two blocks
// of a cluster the same patch. The sums are block0 v4's, term by term (stem: bias, then for ky, ci, kx ascending;
// depthwise: bias, then dy, dx ascending; projection: the partial sums of channels 0 - 15 and 16 - 31 as block0 v4's
// two cluster ranks form them, added rank 0 + rank 1, then the bias), so Xs holds exactly what block0 stores. The
// kernel takes 12 more arguments: block0's X0 (N, 3, H0, W0) NCHW, Ws0 (27, 32) rows (ky, kx, ci), bs0, Wd0 (9, 32),
// bd0, Wp0 (32, 16), bp0, H0, W0, act_s0, act_d0, act_p0 (block0 v4's, impls/_custom_block0.py). Shared memory:
// exdwpw5_smem(staged), 16-byte aligned, + 4 * (r1_floats + WB_N) (K.exdwpw5_b0_smem): R1 (the image patch, then the
// depthwise tile) and the block0 weights; the stem tile goes in Es (unused until the chunk loop).
#ifndef EXDWPW5_B0FUSE
#define EXDWPW5_B0FUSE 0
#endif
// session 38's measuring option (MBV2_B0SPLIT=1, impls/_custom_kernels.py b0split_option): the two blocks of a
// cluster split the patch instead of both computing all of it: rank 0 its first (IH + 1) / 2 rows, rank 1 the rest
// (each with the stem rows and image rows those need), and each stores its rows into both blocks' Xs (distributed
// shared memory, then a cluster barrier). The same sums per element. Only the b0fuse twin reads it.
#ifndef EXDWPW5_B0SPLIT
#define EXDWPW5_B0SPLIT 0
#endif
#if EXDWPW5_B0FUSE && (!defined(EXDWPW5_SPEC_ONLY) || EXDWPW5_FLAGS || STAGE_ASYNC != 1)
#error "EXDWPW5_B0FUSE: the staged twin of a fixed build only (EXDWPW5_SPEC_ONLY, STAGE_ASYNC 1, no flags)"
#endif
#if EXDWPW5_B0FUSE
#define EXDWPW5_B0_PARAMS                                                                                          \
    , const float *__restrict__ X0, const float *__restrict__ Ws0, const float *__restrict__ bs0,                 \
        const float *__restrict__ Wd0, const float *__restrict__ bd0, const float *__restrict__ Wp0,              \
        const float *__restrict__ bp0, int H0, int W0, int act_s0, int act_d0, int act_p0
#define EXDWPW5_B0_ARGS , X0, Ws0, bs0, Wd0, bd0, Wp0, bp0, H0, W0, act_s0, act_d0, act_p0
#else
#define EXDWPW5_B0_PARAMS
#define EXDWPW5_B0_ARGS
#endif
#if EXDWPW5_B0FUSE  // (the other builds: nothing unused)
namespace exdwpw5_b0 {
constexpr int C1 = 32, C3 = 16;                                                // block0 v4 c32_p16
constexpr int WS_O = 0, BS_O = 27 * C1, WD_O = BS_O + C1, BD_O = WD_O + 9 * C1;  // the weights' offsets in Wb
constexpr int WP_O = BD_O + C1, BP_O = WP_O + C1 * C3, WB_N = BP_O + C3;
__device__ __forceinline__ float relu6(float v, int act) { return act ? fminf(fmaxf(v, 0.0f), 6.0f) : v; }
// R1's floats for an IH x IW patch: the image patch (3 x (2 IH + 5) x (2 IW + 5)) or the depthwise tile (IH IW x 32)
template <int IH, int IW>
__host__ __device__ constexpr int r1_floats() {
    return 3 * (2 * IH + 5) * (2 * IW + 5) > IH * IW * C1 ? 3 * (2 * IH + 5) * (2 * IW + 5) : IH * IW * C1;
}
// block0's weights into Wb (before griddepcontrol.wait: they are constants)
__device__ __forceinline__ void stage_weights(float* Wb, const float* __restrict__ Ws0, const float* __restrict__ bs0,
                                              const float* __restrict__ Wd0, const float* __restrict__ bd0,
                                              const float* __restrict__ Wp0, const float* __restrict__ bp0, int tid) {
    for (int e = tid; e < WB_N; e += 256) {
        const float v = e < BS_O   ? __ldg(Ws0 + e)
                        : e < WD_O ? __ldg(bs0 + e - BS_O)
                        : e < BD_O ? __ldg(Wd0 + e - WD_O)
                        : e < WP_O ? __ldg(bd0 + e - BD_O)
                        : e < BP_O ? __ldg(Wp0 + e - WP_O)
                                   : __ldg(bp0 + e - BP_O);
        Wb[e] = v;
    }
}
// a[j] = fma(x[j], w[j], a[j]) for the 8 channels c0 .. c0 + 7 (x in two float4, w 16-byte aligned in shared memory)
__device__ __forceinline__ void fma8(float* a, float4 x0, float4 x1, const float* w) {
    const float4 w0 = *reinterpret_cast<const float4*>(w), w1 = *reinterpret_cast<const float4*>(w + 4);
    a[0] = fmaf(x0.x, w0.x, a[0]);
    a[1] = fmaf(x0.y, w0.y, a[1]);
    a[2] = fmaf(x0.z, w0.z, a[2]);
    a[3] = fmaf(x0.w, w0.w, a[3]);
    a[4] = fmaf(x1.x, w1.x, a[4]);
    a[5] = fmaf(x1.y, w1.y, a[5]);
    a[6] = fmaf(x1.z, w1.z, a[6]);
    a[7] = fmaf(x1.w, w1.w, a[7]);
}
// block0's output on the patch rows ih0 .. ih0 + IH - 1, columns iw0 .. iw0 + IW - 1 of the H x W map (0 outside it, as
// the staging loop's zero fill) into Xs (row stride XSTR); St: the stem tile ((IH + 2) (IW + 2) x 32, in Es), R1: the
// image patch then the depthwise tile. The caller's barrier after it makes Xs whole (SPLIT: after its cluster barrier).
template <int IH, int IW, int XSTR, bool SPLIT>
__device__ __forceinline__ void patch(float* Xs, float* St, float* R1, const float* Wb, const float* __restrict__ X0n,
                                      int ih0, int iw0, int H, int W, int H0, int W0, int act_s, int act_d,
                                      int act_p, int tid, int rank) {
    constexpr int SH = IH + 2, SW = IW + 2, IR = 2 * SH + 1, IC = 2 * SW + 1;
    // this block's patch rows [pr0, pr1): all of them, or (SPLIT) its rank's half; then its stem rows [pr0, pr1 + 2)
    // and image rows [2 pr0, 2 pr1 + 5) (of the tile's 0 .. SH - 1 and 0 .. IR - 1)
    constexpr int R0 = (IH + 1) / 2, RMAX = SPLIT ? (R0 > IH - R0 ? R0 : IH - R0) : IH;
    constexpr int NIT = (3 * (2 * RMAX + 5) * IC + 255) / 256;
    const int pr0 = SPLIT && rank ? R0 : 0, pr1 = SPLIT && !rank ? R0 : IH;
    const int ir0 = 2 * pr0, nir = 2 * (pr1 - pr0) + 5, ni = 3 * nir * IC;
    if constexpr (SPLIT)  // (matched by the wait before the first store into the peer's Xs: the peer has started)
        asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
    // 1. the image patch (rows 2 ih0 - 3 .., columns 2 iw0 - 3 ..; 0 outside the image): all loads, then the stores
    {
        const int gy0 = 2 * ih0 - 3, gx0 = 2 * iw0 - 3;
        float v[NIT];
#pragma unroll
        for (int k = 0; k < NIT; ++k) {
            const int e = tid + 256 * k;
            const int ci = e / (nir * IC), r = ir0 + (e / IC) % nir, c = e % IC;
            const int gy = gy0 + r, gx = gx0 + c;
            v[k] = e < ni && gy >= 0 && gy < H0 && gx >= 0 && gx < W0 ? __ldg(X0n + ((long long)ci * H0 + gy) * W0 + gx)
                                                                      : 0.0f;
        }
#pragma unroll
        for (int k = 0; k < NIT; ++k) {
            const int e = tid + 256 * k;
            if (e < ni) R1[((e / (nir * IC)) * IR + ir0 + (e / IC) % nir) * IC + e % IC] = v[k];
        }
    }
    __syncthreads();
    // 2. stem: item = (stem pixel, 8 channels); the stem map's pixels outside it are 0 (the depthwise zero padding)
    for (int it = tid; it < (pr1 - pr0 + 2) * SW * 4; it += 256) {
        const int g = it % 4, sp = pr0 * SW + it / 4, sr = sp / SW, sc = sp % SW, c0 = 8 * g;
        float a[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) a[j] = Wb[BS_O + c0 + j];
#pragma unroll
        for (int ky = 0; ky < 3; ++ky)
#pragma unroll
            for (int ci = 0; ci < 3; ++ci) {
                const float* xr = R1 + (ci * IR + 2 * sr + ky) * IC + 2 * sc;
#pragma unroll
                for (int kx = 0; kx < 3; ++kx) {
                    const float4 xv = make_float4(xr[kx], xr[kx], xr[kx], xr[kx]);
                    fma8(a, xv, xv, &Wb[WS_O + ((ky * 3 + kx) * 3 + ci) * C1 + c0]);
                }
            }
        const int gy = ih0 - 1 + sr, gx = iw0 - 1 + sc;
        const bool inside = gy >= 0 && gy < H && gx >= 0 && gx < W;
#pragma unroll
        for (int j = 0; j < 8; ++j) a[j] = inside ? relu6(a[j], act_s) : 0.0f;
        *reinterpret_cast<float4*>(&St[sp * C1 + c0]) = make_float4(a[0], a[1], a[2], a[3]);
        *reinterpret_cast<float4*>(&St[sp * C1 + c0 + 4]) = make_float4(a[4], a[5], a[6], a[7]);
    }
    __syncthreads();
    // 3. depthwise 3x3 s1: item = (patch pixel, 8 channels), into R1 (the image patch is dead)
    for (int it = tid; it < (pr1 - pr0) * IW * 4; it += 256) {
        const int g = it % 4, p = pr0 * IW + it / 4, pr = p / IW, pc = p % IW, c0 = 8 * g;
        float d[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) d[j] = Wb[BD_O + c0 + j];
#pragma unroll
        for (int dy = 0; dy < 3; ++dy)
#pragma unroll
            for (int dx = 0; dx < 3; ++dx) {
                const float* sv = St + ((pr + dy) * SW + pc + dx) * C1 + c0;
                fma8(d, *reinterpret_cast<const float4*>(sv), *reinterpret_cast<const float4*>(sv + 4),
                     &Wb[WD_O + (dy * 3 + dx) * C1 + c0]);
            }
        *reinterpret_cast<float4*>(&R1[p * C1 + c0]) =
            make_float4(relu6(d[0], act_d), relu6(d[1], act_d), relu6(d[2], act_d), relu6(d[3], act_d));
        *reinterpret_cast<float4*>(&R1[p * C1 + c0 + 4]) =
            make_float4(relu6(d[4], act_d), relu6(d[5], act_d), relu6(d[6], act_d), relu6(d[7], act_d));
    }
    __syncthreads();
    if constexpr (SPLIT) asm volatile("barrier.cluster.wait.aligned;\n" ::: "memory");
    // 4. projection: item = (patch pixel, 4 outputs); block0 v4's two partial sums (channels 0 - 15, 16 - 31), each
    // in its fma order, added as its cluster reduce adds them, then the bias (SPLIT: into both blocks' Xs)
    for (int it = tid; it < (pr1 - pr0) * IW * (C3 / 4); it += 256) {
        const int og = it % (C3 / 4), p = pr0 * IW + it / (C3 / 4);
        float part[2][4];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float* a = part[r];
            a[0] = a[1] = a[2] = a[3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < 16; kk += 4) {
                const int k = 16 * r + kk;
                const float4 w0 = *reinterpret_cast<const float4*>(&Wb[WP_O + (k + 0) * C3 + og * 4]);
                const float4 w1 = *reinterpret_cast<const float4*>(&Wb[WP_O + (k + 1) * C3 + og * 4]);
                const float4 w2 = *reinterpret_cast<const float4*>(&Wb[WP_O + (k + 2) * C3 + og * 4]);
                const float4 w3 = *reinterpret_cast<const float4*>(&Wb[WP_O + (k + 3) * C3 + og * 4]);
                const float4 dv = *reinterpret_cast<const float4*>(&R1[p * C1 + k]);
                a[0] = fmaf(dv.x, w0.x, fmaf(dv.y, w1.x, fmaf(dv.z, w2.x, fmaf(dv.w, w3.x, a[0]))));
                a[1] = fmaf(dv.x, w0.y, fmaf(dv.y, w1.y, fmaf(dv.z, w2.y, fmaf(dv.w, w3.y, a[1]))));
                a[2] = fmaf(dv.x, w0.z, fmaf(dv.y, w1.z, fmaf(dv.z, w2.z, fmaf(dv.w, w3.z, a[2]))));
                a[3] = fmaf(dv.x, w0.w, fmaf(dv.y, w1.w, fmaf(dv.z, w2.w, fmaf(dv.w, w3.w, a[3]))));
            }
        }
        const int gy = ih0 + p / IW, gx = iw0 + p % IW;
        const bool inside = gy >= 0 && gy < H && gx >= 0 && gx < W;
        const float4 b = *reinterpret_cast<const float4*>(&Wb[BP_O + og * 4]);
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (inside)
            v = make_float4(relu6((part[0][0] + part[1][0]) + b.x, act_p), relu6((part[0][1] + part[1][1]) + b.y, act_p),
                            relu6((part[0][2] + part[1][2]) + b.z, act_p), relu6((part[0][3] + part[1][3]) + b.w, act_p));
        float* const dst = &Xs[p * XSTR + og * 4];
        *reinterpret_cast<float4*>(dst) = v;
        if constexpr (SPLIT) {
            unsigned ra;
            const unsigned la = static_cast<unsigned>(__cvta_generic_to_shared(dst));
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(la), "r"(rank ^ 1));
            asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(ra), "f"(v.x), "f"(v.y), "f"(v.z),
                         "f"(v.w)
                         : "memory");
        }
    }
    if constexpr (SPLIT) {  // both halves in both blocks' Xs (the body's barrier after the staging follows)
        asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
        asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
    }
}
}  // namespace exdwpw5_b0
#endif

template <int S, int CIN, int COUT, int TH, int TW, int CC, int DP, int PT, int WS, int KS = 1>
__device__ __forceinline__ void exdwpw5_body(const float* __restrict__ X, const float* __restrict__ We,
                                             const float* __restrict__ be, const float* __restrict__ Wd,
                                             const float* __restrict__ bd, const float* __restrict__ Wp,
                                             const float* __restrict__ bp, const float* __restrict__ R,
                                             float* __restrict__ Y, int H, int W, int Ce, int Ho, int Wo, int pad,
                                             int act_e, int act_d, int act_p,
                                             int has_res EXDWPW5_BODY_FLAG_PARAMS EXDWPW5_B0_PARAMS) {
#ifdef EXDWPW5_FIX_SHAPE
    // fuse v24's builds (EXDWPW5_SPEC_ONLY, end of file): the block's shape and flags as compile-time constants (the
    // chunk loop's trip count and the tile indexing become constants); the host passes the same values
    H = EXDWPW5_H, W = EXDWPW5_W, Ce = EXDWPW5_CE, Ho = EXDWPW5_HO, Wo = EXDWPW5_WO, pad = EXDWPW5_PAD;
    act_e = EXDWPW5_ACTE, act_d = EXDWPW5_ACTD, act_p = EXDWPW5_ACTP, has_res = EXDWPW5_RES;
#endif
    constexpr int IH = (TH - 1) * S + 3, IW = (TW - 1) * S + 3, NP = IH * IW, P = TH * TW;
    constexpr int CG = CC / 4, NTH = 256, PL = NTH / CG, PP = (NP + PL - 1) / PL;
    constexpr int DSTR = CC + 4;  // padded depthwise rows: the projection's per-pixel float4 reads hit distinct banks
    // projection: NCG x NPL threads, PPX pixels x 4 outputs each (PT = 0: spread over all 256 threads, else PT
    // pixels per thread on fewer threads: fewer loads per FMA)
    constexpr int NCG = COUT / 4, NPL = PT == 0 ? NTH / NCG : (P + PT - 1) / PT, PPX = (P + NPL - 1) / NPL;
    static_assert(NCG * NPL <= NTH, "projection threads");
    constexpr int NSTRIP = (TH + DP - 1) / DP;  // depthwise items: DP vertically adjacent outputs x 4 channels
    static_assert(CIN % 4 == 0 && COUT % 4 == 0 && CC % 4 == 0, "float4 paths");
    static_assert(S == 1 || DP == 1, "stride 2: one depthwise output per item");
    // dynamic shared memory: Xs | Es | Ds | (WS: two buffers of the chunk's expansion and projection weights,
    // staged by cp.async during the previous chunk's depthwise phase instead of float4 __ldg in the inner loops:
    // ncu showed the weight loads as 65% of the L1 wavefronts of the first build)
    constexpr int WE_N = CIN * CC, WP_N = CC * COUT;
    // WS bit 0: weights staged in shared memory (above); bit 1 (session 4): the input patch's pixel rows padded by
    // 4 floats where CIN % 32 is 0 or 16, so that the expansion's float4 reads of 3-4 consecutive pixels (one per
    // group of CC/4 lanes) fall on distinct banks (unpadded: 2-way conflicts at CIN = 16, 3-4-way at CIN = 32)
    constexpr bool WST = (WS & 1) != 0;
    constexpr int XSTR = (WS & 2) && (CIN % 32 == 0 || CIN % 32 == 16) ? CIN + 4 : CIN;
    extern __shared__ __align__(16) float smem5[];
    float* const Xs = smem5;
    float* const Es = Xs + NP * XSTR;
    float* const Ds = Es + NP * CC;
    float* const Wes = Ds + P * DSTR;
    float* const Wps = Wes + 2 * WE_N;
    // EXDWPW5_ASYNC with staged weights (SA): Wos [2][11 * CC] (exdwpw5_stage_o, double-buffered as the weights), then
    // Bps [COUT], the projection's bias
    constexpr bool SA = EXDWPW5_ASYNC && WST && EXDWPW5_ASYNC_WEIGHTS;
    constexpr int WO_N = 11 * CC;
    float* const Wos = Wps + 2 * WP_N;
    float* const Bps = Wos + 2 * WO_N;
    const int tid = threadIdx.x, cg = tid % CG, pl = tid / CG;
    const bool ed_act = pl < PL;  // CG * PL <= 256 threads take part in the expansion and depthwise phases
    const int og = tid % NCG, opl = tid / NCG;
    const bool oact = opl < NPL;
    const int tiles_w = (Wo + TW - 1) / TW;
    // fuse v25 (KS > 1): a cluster of KS blocks per tile (along x); rank r runs the chunks c0 = r * CC, (r + KS) * CC,
    // .. and the projection's partial sums meet through distributed shared memory after the chunk loop
    const unsigned tile = blockIdx.x / KS;           // unsigned, as the KS = 1 builds always divided blockIdx.x
    const int rank = KS > 1 ? blockIdx.x % KS : 0;  // = %cluster_ctarank
    const int th0 = (tile / tiles_w) * TH, tw0 = (tile % tiles_w) * TW;
    const int ih0 = th0 * S - pad, iw0 = tw0 * S - pad;
    const int n = blockIdx.y;
    const float* Xn = X + (long long)n * H * W * CIN;

    if (WST) exdwpw5_stage_w<CIN, COUT, CC>(Wes, Wps, We, Wp, Ce, rank * CC, tid);
    if constexpr (SA) {
        exdwpw5_stage_o<CC>(Wos, be, Wd, bd, Ce, rank * CC, tid);
        for (int e = tid; e < COUT / 4; e += NTH) exdwpw5_cp16(&Bps[4 * e], bp + 4 * e, true);
    }
#if EXDWPW5_B0FUSE
    static_assert(S == 2 && CIN == exdwpw5_b0::C3 && SA, "fuse v49: the staged twin of a stride-2 block after block0");
    static_assert(NP * CC >= (IH + 2) * (IW + 2) * exdwpw5_b0::C1, "fuse v49: the stem tile fits in Es");
    float* const R1 = Bps + (COUT + 3) / 4 * 4;  // (16-byte aligned)
    float* const Wb = R1 + exdwpw5_b0::r1_floats<IH, IW>();
    exdwpw5_b0::stage_weights(Wb, Ws0, bs0, Wd0, bd0, Wp0, bp0, tid);
#endif
    // fuse v28: the host may launch this kernel by programmatic dependent launch (at batch <= EXDWPW5_PDL_MAX_BATCH),
    // so it may start before the previous kernel has finished: nothing that kernel writes (X, R) is read, and nothing
    // is written, before griddepcontrol.wait (a no-op in a plain launch); the weights above are requested first. X and
    // R are read through L2 (.cg), not the read-only path (.nc assumes the data never changes while the kernel runs)
#if EXDWPW5_FLAGS
    if (fin == nullptr) asm volatile("griddepcontrol.wait;\n" ::: "memory");
    else exdwpw5_flags_wait(fin, fep, n, H, max(ih0, 0), min(ih0 + IH, H), ptr_, pcl, tid);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
#if EXDWPW5_B0FUSE
    (void)Xn;         // (X: block0's output, not read)
    __syncthreads();  // (Wb)
    static_assert(!EXDWPW5_B0SPLIT || KS == 2, "MBV2_B0SPLIT: the two blocks of a cluster split the patch");
    exdwpw5_b0::patch<IH, IW, XSTR, EXDWPW5_B0SPLIT != 0>(Xs, Es, R1, Wb, X0 + (long long)n * 3 * H0 * W0, ih0, iw0,
                                                          H, W, H0, W0, act_s0, act_d0, act_p0, tid, rank);
#else
    for (int e = tid; e < NP * (CIN / 4); e += NTH) {
        const int p = e / (CIN / 4), k4 = (e % (CIN / 4)) * 4;
        const int ih = ih0 + p / IW, iw = iw0 + p % IW;
        if constexpr (EXDWPW5_ASYNC) {  // (cp.async, waited for below)
            const bool in = ih >= 0 && ih < H && iw >= 0 && iw < W;
            exdwpw5_cp16(&Xs[p * XSTR + k4], in ? Xn + ((long long)ih * W + iw) * CIN + k4 : Xn, in);
            continue;
        }
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
            v = __ldcg(reinterpret_cast<const float4*>(Xn + ((long long)ih * W + iw) * CIN + k4));
        *reinterpret_cast<float4*>(&Xs[p * XSTR + k4]) = v;
    }
#endif
    float pacc[PPX][4];
#pragma unroll
    for (int i = 0; i < PPX; ++i)
#pragma unroll
        for (int q = 0; q < 4; ++q) pacc[i][q] = 0.0f;
    if (WST || EXDWPW5_ASYNC) exdwpw5_cp_wait();
    __syncthreads();
#if PDL_TRIGGER_EARLY && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");  // (PDL_TRIGGER_EARLY: after the staging)
#endif

    for (int c0 = rank * CC, buf = 0; c0 < Ce; c0 += KS * CC, buf ^= 1) {
        const float* const we_s = Wes + buf * WE_N;
        const float* const wp_s = Wps + buf * WP_N;
        const float* const wo_s = Wos + buf * WO_N;  // (SA)
        const int cq = c0 + cg * 4;
        const bool cok = ed_act && cq < Ce;  // Ce % 4 == 0: the whole float4 group is in range
        const float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
        // E: expansion of the patch (halo included) into Es
        if (ed_act) {
            float acc[PP][4];
            const float4 b4 = SA    ? *reinterpret_cast<const float4*>(&wo_s[cg * 4])
                              : cok ? __ldg(reinterpret_cast<const float4*>(be + cq))
                                    : z;
#pragma unroll
            for (int i = 0; i < PP; ++i) {
                acc[i][0] = b4.x;
                acc[i][1] = b4.y;
                acc[i][2] = b4.z;
                acc[i][3] = b4.w;
            }
#pragma unroll
            for (int k = 0; k < CIN; k += 4) {
                float4 w0, w1, w2, w3;
                if (WST) {
                    w0 = *reinterpret_cast<const float4*>(&we_s[k * CC + cg * 4]);
                    w1 = *reinterpret_cast<const float4*>(&we_s[(k + 1) * CC + cg * 4]);
                    w2 = *reinterpret_cast<const float4*>(&we_s[(k + 2) * CC + cg * 4]);
                    w3 = *reinterpret_cast<const float4*>(&we_s[(k + 3) * CC + cg * 4]);
                } else {
                    w0 = cok ? __ldg(reinterpret_cast<const float4*>(We + (long long)k * Ce + cq)) : z;
                    w1 = cok ? __ldg(reinterpret_cast<const float4*>(We + (long long)(k + 1) * Ce + cq)) : z;
                    w2 = cok ? __ldg(reinterpret_cast<const float4*>(We + (long long)(k + 2) * Ce + cq)) : z;
                    w3 = cok ? __ldg(reinterpret_cast<const float4*>(We + (long long)(k + 3) * Ce + cq)) : z;
                }
#pragma unroll
                for (int i = 0; i < PP; ++i) {
                    const int p = min(pl + i * PL, NP - 1);  // clamped: out-of-range rows are computed, not stored
                    const float4 xv = *reinterpret_cast<const float4*>(&Xs[p * XSTR + k]);
                    acc[i][0] = fmaf(xv.x, w0.x, fmaf(xv.y, w1.x, fmaf(xv.z, w2.x, fmaf(xv.w, w3.x, acc[i][0]))));
                    acc[i][1] = fmaf(xv.x, w0.y, fmaf(xv.y, w1.y, fmaf(xv.z, w2.y, fmaf(xv.w, w3.y, acc[i][1]))));
                    acc[i][2] = fmaf(xv.x, w0.z, fmaf(xv.y, w1.z, fmaf(xv.z, w2.z, fmaf(xv.w, w3.z, acc[i][2]))));
                    acc[i][3] = fmaf(xv.x, w0.w, fmaf(xv.y, w1.w, fmaf(xv.z, w2.w, fmaf(xv.w, w3.w, acc[i][3]))));
                }
            }
#pragma unroll
            for (int i = 0; i < PP; ++i) {
                const int p = pl + i * PL;
                if (p >= NP) continue;
                const int ih = ih0 + p / IW, iw = iw0 + p % IW;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                float4 v;
                v.x = inside ? (act_e ? fminf(fmaxf(acc[i][0], 0.0f), 6.0f) : acc[i][0]) : 0.0f;
                v.y = inside ? (act_e ? fminf(fmaxf(acc[i][1], 0.0f), 6.0f) : acc[i][1]) : 0.0f;
                v.z = inside ? (act_e ? fminf(fmaxf(acc[i][2], 0.0f), 6.0f) : acc[i][2]) : 0.0f;
                v.w = inside ? (act_e ? fminf(fmaxf(acc[i][3], 0.0f), 6.0f) : acc[i][3]) : 0.0f;
                *reinterpret_cast<float4*>(&Es[p * CC + cg * 4]) = v;
            }
        }
        __syncthreads();
        if (WST && c0 + KS * CC < Ce) {  // the other buffer's readers (E, D, P of the last chunk) are done
            exdwpw5_stage_w<CIN, COUT, CC>(Wes + (buf ^ 1) * WE_N, Wps + (buf ^ 1) * WP_N, We, Wp, Ce, c0 + KS * CC,
                                           tid);
            if constexpr (SA) exdwpw5_stage_o<CC>(Wos + (buf ^ 1) * WO_N, be, Wd, bd, Ce, c0 + KS * CC, tid);
        }
        // D: depthwise 3x3 from Es into Ds; an item = DP vertically adjacent outputs of one column x 4 channels
        // (stride 1: (DP + 2) x 3 window loads instead of 9 DP)
        if (ed_act) {
            float4 wd[9];
#pragma unroll
            for (int t = 0; t < 9; ++t)
                wd[t] = SA    ? *reinterpret_cast<const float4*>(&wo_s[(1 + t) * CC + cg * 4])
                        : cok ? __ldg(reinterpret_cast<const float4*>(Wd + (long long)t * Ce + cq))
                              : z;
            const float4 b4 = SA    ? *reinterpret_cast<const float4*>(&wo_s[10 * CC + cg * 4])
                              : cok ? __ldg(reinterpret_cast<const float4*>(bd + cq))
                                    : z;
            for (int it = pl; it < NSTRIP * TW; it += PL) {
                const int oh = (it / TW) * DP, ow = it % TW;
                float4 r[DP];
#pragma unroll
                for (int j = 0; j < DP; ++j) r[j] = b4;
#pragma unroll
                for (int row = 0; row < (DP - 1) * S + 3; ++row) {
                    const int pr = min(oh * S + row, IH - 1);  // rows past the patch feed only outputs past the tile
#pragma unroll
                    for (int dx = 0; dx < 3; ++dx) {
                        const float4 e4 = *reinterpret_cast<const float4*>(&Es[(pr * IW + ow * S + dx) * CC + cg * 4]);
#pragma unroll
                        for (int j = 0; j < DP; ++j) {
                            const int dy = row - j * S;
                            if (dy < 0 || dy > 2) continue;
                            const float4 w4 = wd[dy * 3 + dx];
                            r[j].x = fmaf(e4.x, w4.x, r[j].x);
                            r[j].y = fmaf(e4.y, w4.y, r[j].y);
                            r[j].z = fmaf(e4.z, w4.z, r[j].z);
                            r[j].w = fmaf(e4.w, w4.w, r[j].w);
                        }
                    }
                }
#pragma unroll
                for (int j = 0; j < DP; ++j) {
                    if (oh + j >= TH) continue;
                    if (act_d) {
                        r[j].x = fminf(fmaxf(r[j].x, 0.0f), 6.0f);
                        r[j].y = fminf(fmaxf(r[j].y, 0.0f), 6.0f);
                        r[j].z = fminf(fmaxf(r[j].z, 0.0f), 6.0f);
                        r[j].w = fminf(fmaxf(r[j].w, 0.0f), 6.0f);
                    }
                    *reinterpret_cast<float4*>(&Ds[((oh + j) * TW + ow) * DSTR + cg * 4]) = r[j];
                }
            }
        }
        if (WST) exdwpw5_cp_wait();
        __syncthreads();
        // P: projection of this chunk, accumulated in registers (no barrier after it: the next chunk's E
        // writes Es, last read before the barrier above; its D writes Ds after the next barrier)
        if (oact) {
#pragma unroll
            for (int k = 0; k < CC; k += 4) {
                if (c0 + k >= Ce) break;  // Ce % 4 == 0: rows c0+k .. c0+k+3 all in range
                float4 w0, w1, w2, w3;
                if (WST) {
                    w0 = *reinterpret_cast<const float4*>(&wp_s[k * COUT + og * 4]);
                    w1 = *reinterpret_cast<const float4*>(&wp_s[(k + 1) * COUT + og * 4]);
                    w2 = *reinterpret_cast<const float4*>(&wp_s[(k + 2) * COUT + og * 4]);
                    w3 = *reinterpret_cast<const float4*>(&wp_s[(k + 3) * COUT + og * 4]);
                } else {
                    w0 = __ldg(reinterpret_cast<const float4*>(Wp + (long long)(c0 + k) * COUT + og * 4));
                    w1 = __ldg(reinterpret_cast<const float4*>(Wp + (long long)(c0 + k + 1) * COUT + og * 4));
                    w2 = __ldg(reinterpret_cast<const float4*>(Wp + (long long)(c0 + k + 2) * COUT + og * 4));
                    w3 = __ldg(reinterpret_cast<const float4*>(Wp + (long long)(c0 + k + 3) * COUT + og * 4));
                }
#pragma unroll
                for (int i = 0; i < PPX; ++i) {
                    const int px = min(opl + i * NPL, P - 1);
                    const float4 d = *reinterpret_cast<const float4*>(&Ds[px * DSTR + k]);
                    pacc[i][0] = fmaf(d.x, w0.x, fmaf(d.y, w1.x, fmaf(d.z, w2.x, fmaf(d.w, w3.x, pacc[i][0]))));
                    pacc[i][1] = fmaf(d.x, w0.y, fmaf(d.y, w1.y, fmaf(d.z, w2.y, fmaf(d.w, w3.y, pacc[i][1]))));
                    pacc[i][2] = fmaf(d.x, w0.z, fmaf(d.y, w1.z, fmaf(d.z, w2.z, fmaf(d.w, w3.z, pacc[i][2]))));
                    pacc[i][3] = fmaf(d.x, w0.w, fmaf(d.y, w1.w, fmaf(d.z, w2.w, fmaf(d.w, w3.w, pacc[i][3]))));
                }
            }
        }
    }
    // fuse v28: the next kernel (launched by PDL) may be scheduled from here on; it waits for this grid to finish
    // before it reads what this one writes
#if !PDL_TRIGGER_EARLY && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
    if constexpr (KS > 1) {
        // fuse v25: output pixel px belongs to rank px * KS / P. Each block puts its partial sums of the other ranks'
        // pixels into Es (read last by the last chunk's depthwise phase, before the last barrier; the projection
        // reads Ds and the weights only), then after the cluster barrier each owner adds the KS partials in rank
        // order 0..KS-1 (the same order in every block: the sums do not depend on which block owns the pixel)
        static_assert(NP * CC >= P * COUT, "the partial sums fit in Es");
        if (oact)
#pragma unroll
            for (int i = 0; i < PPX; ++i) {
                const int px = opl + i * NPL;
                if (px < P && px * KS / P != rank)
                    *reinterpret_cast<float4*>(&Es[px * COUT + og * 4]) =
                        make_float4(pacc[i][0], pacc[i][1], pacc[i][2], pacc[i][3]);
            }
        asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
        asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
        if (oact)
#pragma unroll
            for (int i = 0; i < PPX; ++i) {
                const int px = opl + i * NPL;
                if (px >= P || px * KS / P != rank) continue;
                float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
                for (int q = 0; q < KS; ++q) {
                    float4 v;
                    if (q == rank) {
                        v = make_float4(pacc[i][0], pacc[i][1], pacc[i][2], pacc[i][3]);
                    } else {
                        unsigned ra;
                        const unsigned la = static_cast<unsigned>(__cvta_generic_to_shared(&Es[px * COUT + og * 4]));
                        asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(la), "r"(q));
                        asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                                     : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                                     : "r"(ra)
                                     : "memory");
                    }
                    if (q == 0) {
                        sum = v;
                    } else {
                        sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
                    }
                }
                pacc[i][0] = sum.x, pacc[i][1] = sum.y, pacc[i][2] = sum.z, pacc[i][3] = sum.w;
            }
        // done with the peers' partial sums (no data published: relaxed); the matching wait ends the kernel
        asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
    }
    // fuse v44's flag twins: every thread goes on to the block barrier before the flag (its stores skipped)
    constexpr bool FLAGGED = EXDWPW5_FLAGS != 0;
    if (!FLAGGED && !oact) {  // fuse v25: the final wait not .aligned (the threads of a warp may reach it on two paths)
        if constexpr (KS > 1) asm volatile("barrier.cluster.wait;\n" ::: "memory");
        return;
    }
    const float4 b4 =
        SA ? *reinterpret_cast<const float4*>(&Bps[og * 4]) : __ldg(reinterpret_cast<const float4*>(bp + og * 4));
    // EXDWPW5_ASYNC: the residual from the staged patch where it is this kernel's input at the same pixel (stride 1,
    // COUT == CIN): the patch holds output pixel (row, column) of the tile at patch pixel (row + pad, column + pad)
    const bool res_s = EXDWPW5_ASYNC && S == 1 && CIN == COUT && R == X;
#pragma unroll
    for (int i = 0; i < PPX; ++i) {
        const int px = opl + i * NPL;
        if ((FLAGGED && !oact) || px >= P || (KS > 1 && px * KS / P != rank)) continue;
        const int goh = th0 + px / TW, gow = tw0 + px % TW;
        if (goh >= Ho || gow >= Wo) continue;
        const long long off = (((long long)n * Ho + goh) * Wo + gow) * COUT + og * 4;
        float4 r = make_float4(pacc[i][0] + b4.x, pacc[i][1] + b4.y, pacc[i][2] + b4.z, pacc[i][3] + b4.w);
        if (act_p) {
            r.x = fminf(fmaxf(r.x, 0.0f), 6.0f);
            r.y = fminf(fmaxf(r.y, 0.0f), 6.0f);
            r.z = fminf(fmaxf(r.z, 0.0f), 6.0f);
            r.w = fminf(fmaxf(r.w, 0.0f), 6.0f);
        }
        if (has_res) {
            const float4 rv =  // fuse v28: R through L2 (see the wait above)
                res_s ? *reinterpret_cast<const float4*>(&Xs[((px / TW + pad) * IW + px % TW + pad) * XSTR + og * 4])
                      : __ldcg(reinterpret_cast<const float4*>(R + off));
            r.x += rv.x;
            r.y += rv.y;
            r.z += rv.z;
            r.w += rv.w;
        }
        *reinterpret_cast<float4*>(Y + off) = r;
    }
#if EXDWPW5_FLAGS
    __syncthreads();  // every thread's Y stores, then thread 0 publishes this forward's number in the block's flag
    if (fout != nullptr && tid == 0) {
        const unsigned e = __ldcg(fep);
        asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(fout + (size_t)n * gridDim.x + blockIdx.x), "r"(e)
                     : "memory");
    }
#endif
    // fuse v25: no block leaves while a peer may still read its partial sums
    if constexpr (KS > 1) asm volatile("barrier.cluster.wait;\n" ::: "memory");
}

// fuse v43 (fixed builds only: -DEXDWPW5_EPOCH=1 on a fixed build, K.build_fixed(epoch=True), the name + "_ep"): the
// kernel takes one more argument, ep, the word holding the forward's number of the flag hand-off between the exdwpw6
// launches that follow (kernels/cblock.cu EXDWPW6_FLAGS). Block (0, 0)'s thread 0 advances it on entry. Its readers
// are later kernels of the same forward only, the first of which waits for this grid to finish
// (griddepcontrol.wait), so the store may come before this kernel's own wait; the kernel before this one never
// touches the word. Every other build keeps its signature and code.
#if defined(EXDWPW5_EPOCH) && EXDWPW5_EPOCH
#ifndef EXDWPW5_SPEC_ONLY
#error "EXDWPW5_EPOCH: fixed builds only (EXDWPW5_SPEC_ONLY)"
#endif
#define EXDWPW5_EPOCH_PARAM , unsigned* __restrict__ ep
#define EXDWPW5_EPOCH_STEP \
    if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0 && threadIdx.x == 0) *ep += 1u;
#else
#define EXDWPW5_EPOCH_PARAM
#define EXDWPW5_EPOCH_STEP
#endif
// fuse v44: the flag twin's five more arguments (above)
#if EXDWPW5_FLAGS
#define EXDWPW5_FLAG_PARAMS , const unsigned *fin, unsigned *fout, const unsigned *fep, int ptr_, int pcl
#define EXDWPW5_FLAG_ARGS , fin, fout, fep, ptr_, pcl
#else
#define EXDWPW5_FLAG_PARAMS
#define EXDWPW5_FLAG_ARGS
#endif
// grid = (ceil(Ho / TH) * ceil(Wo / TW), n), block = 256; CC expanded channels per chunk, DP depthwise outputs
// per item, PT projection pixels per thread (0: all threads), WS weights staged in shared memory, MINB blocks per
// SM (__launch_bounds__); dynamic shared memory: 4 * (NP*XSTR + NP*CC + TH*TW*(CC+4) + (WS&1)*2*(CIN*CC + CC*COUT))
// bytes, XSTR = CIN + 4 where WS & 2 and CIN % 32 is 0 or 16, else CIN
#define EXDWPW5_KERNEL(NAME, S, CIN, COUT, TH, TW, CC, DP, PT, WS, MINB)                                       \
    extern "C" __global__ void __launch_bounds__(256, MINB) NAME(                                             \
        const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,               \
        const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,              \
        const float* __restrict__ bp, const float* __restrict__ R, float* __restrict__ Y, int H, int W, int Ce, \
        int Ho, int Wo, int pad, int act_e, int act_d, int act_p,                                        \
        int has_res EXDWPW5_EPOCH_PARAM EXDWPW5_FLAG_PARAMS EXDWPW5_B0_PARAMS) {                                                \
        EXDWPW5_EPOCH_STEP                                                                                    \
        exdwpw5_body<S, CIN, COUT, TH, TW, CC, DP, PT, WS>(X, We, be, Wd, bd, Wp, bp, R, Y, H, W, Ce, Ho, Wo,  \
                                                       pad, act_e, act_d, act_p, has_res EXDWPW5_FLAG_ARGS EXDWPW5_B0_ARGS);  \
    }
// fuse v25: the same on a cluster of KS blocks per tile (grid = KS x tiles along x) that split the chunks of expanded
// channels; the projection's partial sums are added through distributed shared memory (exdwpw5_body's KS)
#define EXDWPW5_KERNEL_CL(NAME, S, CIN, COUT, TH, TW, CC, DP, PT, WS, MINB, KS)                               \
    extern "C" __global__ void __cluster_dims__(KS, 1, 1) __launch_bounds__(256, MINB) NAME(                  \
        const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,               \
        const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,              \
        const float* __restrict__ bp, const float* __restrict__ R, float* __restrict__ Y, int H, int W, int Ce, \
        int Ho, int Wo, int pad, int act_e, int act_d, int act_p,                                        \
        int has_res EXDWPW5_EPOCH_PARAM EXDWPW5_FLAG_PARAMS EXDWPW5_B0_PARAMS) {                                                \
        EXDWPW5_EPOCH_STEP                                                                                    \
        exdwpw5_body<S, CIN, COUT, TH, TW, CC, DP, PT, WS, KS>(X, We, be, Wd, bd, Wp, bp, R, Y, H, W, Ce, Ho,  \
                                                           Wo, pad, act_e, act_d, act_p, has_res EXDWPW5_FLAG_ARGS EXDWPW5_B0_ARGS); \
    }

// fuse v24: with -DEXDWPW5_SPEC_ONLY this file holds only EXDWPW5_SPEC_NAME, a generic build's configuration
// (-DEXDWPW5_SPEC_CFG_S=.. _CIN _COUT _TH _TW _CC _DP _PT _WS _MINB) with its shape fixed (-DEXDWPW5_FIX_SHAPE
// -DEXDWPW5_H=.. _W _CE _HO _WO _PAD _ACTE _ACTD _ACTP _RES; impls/_custom_kernels.py fixed_defines)
#ifdef EXDWPW5_SPEC_ONLY
#ifndef EXDWPW5_FIX_SHAPE
#error "EXDWPW5_SPEC_ONLY needs EXDWPW5_FIX_SHAPE and the shape"
#endif
#if EXDWPW5_SPEC_CFG_KS > 1
EXDWPW5_KERNEL_CL(EXDWPW5_SPEC_NAME, EXDWPW5_SPEC_CFG_S, EXDWPW5_SPEC_CFG_CIN, EXDWPW5_SPEC_CFG_COUT,
                  EXDWPW5_SPEC_CFG_TH, EXDWPW5_SPEC_CFG_TW, EXDWPW5_SPEC_CFG_CC, EXDWPW5_SPEC_CFG_DP,
                  EXDWPW5_SPEC_CFG_PT, EXDWPW5_SPEC_CFG_WS, EXDWPW5_SPEC_CFG_MINB, EXDWPW5_SPEC_CFG_KS)
#else
EXDWPW5_KERNEL(EXDWPW5_SPEC_NAME, EXDWPW5_SPEC_CFG_S, EXDWPW5_SPEC_CFG_CIN, EXDWPW5_SPEC_CFG_COUT, EXDWPW5_SPEC_CFG_TH,
               EXDWPW5_SPEC_CFG_TW, EXDWPW5_SPEC_CFG_CC, EXDWPW5_SPEC_CFG_DP, EXDWPW5_SPEC_CFG_PT, EXDWPW5_SPEC_CFG_WS,
               EXDWPW5_SPEC_CFG_MINB)
#endif
#else

// the six small-CIN blocks of MobileNetV2-1.0 (impls/_custom_kernels.py: EXDWPW5_INSTANCES; the host reads each
// build's configuration from these lines for its shared-memory size), each with the fastest configuration measured
// (scripts/exdwpw5_variants.py, results/NOTES.md "fuse v5")
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8, 2, 16, 24, 4, 8, 32, 1, 2, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8, 1, 24, 24, 8, 8, 48, 2, 4, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x8, 2, 24, 32, 4, 8, 32, 1, 2, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7, 1, 32, 32, 7, 7, 48, 2, 4, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t8x8, 1, 32, 32, 8, 8, 48, 2, 4, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8, 2, 32, 64, 4, 8, 32, 1, 4, 3, 2)
// fuse v9 (session 11): smaller tiles for the two 56x56 blocks, picked where the larger tile leaves SMs idle (batch 1
// - 4: 49 / 28 blocks of t8x8 / t4x8 against 132 SMs; K.exdwpw5_tile's min_blocks)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t4x8, 1, 24, 24, 4, 8, 48, 2, 2, 3, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x4, 2, 24, 32, 4, 4, 48, 1, 1, 3, 3)
// experiments (scripts/exdwpw5_variants.py): the first build (_r1: 32-channel chunks, one depthwise output per
// item, projection over all threads, weights by __ldg, 2 blocks per SM) and the same with only the weight staging
// off (_w0); the other steps measured are in results/NOTES.md "fuse v5"
// fuse v11 (session 12; scripts/exdwpw5_variants.py --fuse v9 at batch 1 / 2): the three blocks v9 runs on small
// tiles at batch 1 with fewer, larger chunks of expanded channels (_ccN: CC = N; CC = Ce: one chunk, so one weight
// staging and two barriers per block instead of per chunk; WS = 3 keeps the weights in shared memory, WS = 2 reads
// them by __ldg). v11 runs _cc48, _cc72 (24->144->24) and _cc144 (24->144->32), K.EXDWPW5_BIG_CHUNK; the others lost.
// Smaller tiles (t4x4, t2x4, t2x2) were slower (results/NOTES.md "Session 12")
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_cc48, 2, 16, 24, 4, 8, 48, 1, 2, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_cc96, 2, 16, 24, 4, 8, 96, 1, 2, 0, 1)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t4x8_cc72, 1, 24, 24, 4, 8, 72, 2, 2, 3, 1)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t4x8_cc144, 1, 24, 24, 4, 8, 144, 2, 2, 2, 1)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x4_cc72, 2, 24, 32, 4, 4, 72, 1, 1, 3, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x4_cc144, 2, 24, 32, 4, 4, 144, 1, 1, 3, 1)
// fuse v25 (session 20; K.EXDWPW5_SPLIT): the 56 -> 28 block at batch 1 (49 tiles: 49 blocks on 132 SMs) on clusters of
// 2, one 72-channel chunk per block (98 blocks); the projection's partial sums added through distributed shared memory
EXDWPW5_KERNEL_CL(exdwpw5_s2_c24_o32_t4x4_cc72_k2, 2, 24, 32, 4, 4, 72, 1, 1, 3, 1, 2)
// fuse v26 (session 21; K.EXDWPW5_SPLIT_V26): the same for the two 98-tile blocks at batch 1 (112 -> 56 and 56 -> 56,
// one 48- / 72-channel chunk per block): 196 blocks, two per SM where they do not fit one each (MINB 2)
EXDWPW5_KERNEL_CL(exdwpw5_s2_c16_o24_t4x8_cc48_k2, 2, 16, 24, 4, 8, 48, 1, 2, 1, 2, 2)
EXDWPW5_KERNEL_CL(exdwpw5_s1_c24_o24_t4x8_cc72_k2, 1, 24, 24, 4, 8, 72, 2, 2, 3, 2, 2)
// fuse v50 (session 42; K.EXDWPW5_RETILE): the two 98-tile blocks at batch 1 as 64 tiles of 7x7 on clusters of 2, one
// block per SM (128 blocks; the 196-block grids put two blocks on 64 SMs and one on 68): the fastest of 19 tilings in
// scripts/exdwpw5_tile_probe.py's PDL chains on the H100 (session 42: -0.48 / -1.10 us per launch; the same tiles on
// clusters of 4 at two blocks per SM +3.2 / +4.3 us)
EXDWPW5_KERNEL_CL(exdwpw5_s2_c16_o24_t7x7_cc48_k2, 2, 16, 24, 7, 7, 48, 1, 2, 1, 1, 2)
EXDWPW5_KERNEL_CL(exdwpw5_s1_c24_o24_t7x7_cc72_k2, 1, 24, 24, 7, 7, 72, 2, 2, 3, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8_r1, 1, 24, 24, 8, 8, 32, 1, 0, 0, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8_w0, 1, 24, 24, 8, 8, 48, 2, 4, 0, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_r1, 1, 32, 32, 7, 7, 32, 1, 0, 0, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_w0, 1, 32, 32, 7, 7, 48, 2, 4, 0, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_r1, 2, 16, 24, 4, 8, 32, 1, 0, 0, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_w0, 2, 16, 24, 4, 8, 32, 1, 4, 0, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x8_r1, 2, 24, 32, 4, 8, 32, 1, 0, 0, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x8_w0, 2, 24, 32, 4, 8, 32, 1, 4, 0, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8_r1, 2, 32, 64, 4, 8, 32, 1, 0, 0, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8_w0, 2, 32, 64, 4, 8, 32, 1, 4, 0, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8_b2, 1, 24, 24, 8, 8, 48, 2, 4, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8_p8b2, 1, 24, 24, 8, 8, 48, 2, 8, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_b2, 1, 32, 32, 7, 7, 48, 2, 4, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_p8b2, 1, 32, 32, 7, 7, 48, 2, 8, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_b2, 2, 16, 24, 4, 8, 32, 1, 4, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x8_b2, 2, 24, 32, 4, 8, 32, 1, 4, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8_p8, 2, 32, 64, 4, 8, 32, 1, 8, 1, 2)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x8_c48, 2, 24, 32, 4, 8, 48, 1, 4, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8_b3w, 2, 32, 64, 4, 8, 32, 1, 4, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8_d1, 1, 24, 24, 8, 8, 48, 1, 4, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_d1, 1, 32, 32, 7, 7, 48, 1, 4, 1, 3)
// session 4: the CIN = 32 defaults before the padded input rows (_x0, WS = 1), and the padded rows at CIN = 16 (_xp:
// measured 927 vs 920 us at batch 256, so that default stays unpadded; CIN = 24 has no conflicts to remove)
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_xp, 2, 16, 24, 4, 8, 32, 1, 4, 3, 3)
// session 4: 2 projection pixels per thread (PT = 2: 2-4x the projection threads of PT = 4, shorter serial
// projection tail per chunk, twice the weight loads per FMA; PT = 4 and PT = 0 were measured in session 3): faster
// on the two stride-2 blocks with few projection threads (now their defaults, the PT = 4 builds kept as _p4),
// slower on the others (_p2 builds kept); results/NOTES.md "fuse v5, session 4"
EXDWPW5_KERNEL(exdwpw5_s2_c16_o24_t4x8_p4, 2, 16, 24, 4, 8, 32, 1, 4, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c24_o24_t8x8_p2, 1, 24, 24, 8, 8, 48, 2, 2, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c24_o32_t4x8_p4, 2, 24, 32, 4, 8, 32, 1, 4, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_p2, 1, 32, 32, 7, 7, 48, 2, 2, 3, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8_p2, 2, 32, 64, 4, 8, 32, 1, 2, 3, 2)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t7x7_x0, 1, 32, 32, 7, 7, 48, 2, 4, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s1_c32_o32_t8x8_x0, 1, 32, 32, 8, 8, 48, 2, 4, 1, 3)
EXDWPW5_KERNEL(exdwpw5_s2_c32_o64_t4x8_x0, 2, 32, 64, 4, 8, 32, 1, 4, 1, 2)

// Family "fuse" v8 (session 7): exdwpw5's block (expansion 1x1 -> depthwise 3x3 -> projection 1x1 (+ residual),
// the expanded and depthwise tensors in shared memory) with larger per-thread register tiles in every phase, for
// fewer shared-memory loads per FMA. ncu of exdwpw5 at batch 256 (results/NOTES.md, session 6): L1 / shared pipe 81%,
// issue-active 60%; its phases load one float from shared memory per 1.5-2.2 FMA (a warp's LDS.128 costs 4
// wavefronts, broadcast or not: the L1 pipe's 128 B/clk is 32 floats per clock against 128 FMA per clock per SM), its
// tiles small because 768 threads per SM share each chunk's work. exdwpw8 runs 2 blocks of 256 threads per SM
// (<= 128 registers, <= 113 KB of shared memory each) on larger spatial tiles:
//   E: Es[NP][CC] = ReLU6(Xs . We[:, chunk] + be): EM pixels x EN channels per thread (EM * EN / (EM + EN) FMA
//      per float loaded: 6 x 8 -> 3.4; exdwpw5 5 x 4 -> 2.2);
//   D: Ds[P][CC] = ReLU6(depthwise(Es) + bd): an item = DH x DW outputs x 4 channels over a sliding window of
//      (DH - 1) S + 3 rows x (DW - 1) S + 3 columns (stride 1, 4 x 2: 3.0 FMA per float; exdwpw5 2 x 1: 1.5);
//   P: acc += Ds[:, chunk] . Wp[chunk, :]: PM pixels x PN outputs per thread over 1 / KS of the chunk's channels
//      (split-K across KS thread groups; the partials stay in registers across chunks and are reduced once, in a
//      fixed order, through shared memory at the end).
// Weights are staged per chunk by cp.async into two buffers (as exdwpw5 WS = 1), the columns of each thread's EN
// (PN) channels interleaved so that a quarter warp's float4 reads of consecutive groups are conflict-free; input
// pixel rows padded to CIN + 4 floats (8 consecutive rows on distinct banks). Same arguments as exdwpw5.
// Expected (H100, written before the first device run): shared-memory floats loaded per output pixel 35-45% fewer
// than exdwpw5's default builds, fewer halo pixels (8 x 14 tile: 1.43 expanded pixels per output vs 1.56 at 8 x 8);
// if the L1 pipe stays the limit, the six blocks from 2.94 to ~2.1-2.3 ms at batch 256 (e2e 6.45 -> ~5.7 ms).
template <int CIN, int COUT, int CC, int ECG, int EN, int PCG, int PN>
__device__ __forceinline__ void exdwpw8_stage_w(float* Wes, float* Wps, const float* __restrict__ We,
                                                const float* __restrict__ Wp, int Ce, int c0, int tid) {
    // Wes[k][(q * ECG + g) * 4 + j] = We[k][c0 + g * EN + q * 4 + j]; Wps[r][(q * PCG + g) * 4 + j] likewise
    constexpr int WE4 = CIN * CC / 4, WP4 = CC * COUT / 4;
    for (int e = tid; e < WE4 + WP4; e += 256) {
        if (e < WE4) {
            const int k = e / (CC / 4), f = e % (CC / 4), q = f / ECG, g = f % ECG;
            const int col = c0 + g * EN + q * 4;
            const bool ok = col < Ce;
            exdwpw5_cp16(&Wes[k * CC + f * 4], ok ? We + (long long)k * Ce + col : We, ok);
        } else {
            const int e2 = e - WE4, r = e2 / (COUT / 4), f = e2 % (COUT / 4), q = f / PCG, g = f % PCG;
            const bool ok = c0 + r < Ce;
            exdwpw5_cp16(&Wps[r * COUT + f * 4], ok ? Wp + (long long)(c0 + r) * COUT + g * PN + q * 4 : Wp, ok);
        }
    }
}

template <int S, int CIN, int COUT, int TH, int TW, int CC, int EM, int EN, int DH, int DW, int PM, int PN, int KS>
__device__ __forceinline__ void exdwpw8_body(const float* __restrict__ X, const float* __restrict__ We,
                                             const float* __restrict__ be, const float* __restrict__ Wd,
                                             const float* __restrict__ bd, const float* __restrict__ Wp,
                                             const float* __restrict__ bp, const float* __restrict__ R,
                                             float* __restrict__ Y, int H, int W, int Ce, int Ho, int Wo, int pad,
                                             int act_e, int act_d, int act_p, int has_res) {
    constexpr int NTH = 256;
    constexpr int IH = (TH - 1) * S + 3, IW = (TW - 1) * S + 3, NP = IH * IW, P = TH * TW;
    constexpr int XSTR = CIN + 4, DSTR = CC + 4;
    constexpr int ECG = CC / EN, EPL = (NP + EM - 1) / EM;                           // E: channel groups x pixel lanes
    constexpr int DCG = CC / 4, NSW = TW / DW, NIT = (TH / DH) * NSW * DCG;           // D: items
    constexpr int PCG = COUT / PN, PPL = P / PM, KC = CC / KS, PTH = PCG * PPL * KS;  // P: groups x lanes x K-splits
    constexpr int DR = (DH - 1) * S + 3, DC = (DW - 1) * S + 3;                       // D: window rows x columns
    static_assert(CIN % 4 == 0 && COUT % 4 == 0 && CC % 4 == 0 && EN % 4 == 0 && PN % 4 == 0, "float4 paths");
    static_assert(CC % EN == 0 && COUT % PN == 0 && P % PM == 0 && TH % DH == 0 && TW % DW == 0, "whole tiles");
    static_assert(ECG * EPL <= NTH && NIT <= NTH && PTH <= NTH && KC % 4 == 0, "one item per thread and phase");
    static_assert((KS - 1) * P * COUT <= NP * CC + P * DSTR, "the split-K partials fit in Es | Ds");
    constexpr int WE_N = CIN * CC, WP_N = CC * COUT;
    extern __shared__ __align__(16) float smem8[];
    float* const Xs = smem8;
    float* const Es = Xs + NP * XSTR;
    float* const Ds = Es + NP * CC;
    float* const Wes = Ds + P * DSTR;
    float* const Wps = Wes + 2 * WE_N;
    const int tid = threadIdx.x;
    const int tiles_w = (Wo + TW - 1) / TW;
    const int th0 = (blockIdx.x / tiles_w) * TH, tw0 = (blockIdx.x % tiles_w) * TW;
    const int ih0 = th0 * S - pad, iw0 = tw0 * S - pad;
    const int n = blockIdx.y;
    const float* Xn = X + (long long)n * H * W * CIN;
    // phase roles
    const int eg = tid % ECG, epl = tid / ECG;
    const bool e_on = epl < EPL;
    const int dg = tid % DCG, dit = tid / DCG;
    const bool d_on = tid < NIT;
    const int doh = (dit / NSW) * DH, dow = (dit % NSW) * DW;
    const int pg = tid % PCG, ppl = (tid / PCG) % PPL, pks = tid / (PCG * PPL);
    const bool p_on = tid < PTH;

    exdwpw8_stage_w<CIN, COUT, CC, ECG, EN, PCG, PN>(Wes, Wps, We, Wp, Ce, 0, tid);
    for (int e = tid; e < NP * (CIN / 4); e += NTH) {
        const int p = e / (CIN / 4), k4 = (e % (CIN / 4)) * 4;
        const int ih = ih0 + p / IW, iw = iw0 + p % IW;
        const bool ok = ih >= 0 && ih < H && iw >= 0 && iw < W;
        exdwpw5_cp16(&Xs[p * XSTR + k4], ok ? Xn + ((long long)ih * W + iw) * CIN + k4 : Xn, ok);
    }
    float pacc[PM][PN];
#pragma unroll
    for (int i = 0; i < PM; ++i)
#pragma unroll
        for (int j = 0; j < PN; ++j) pacc[i][j] = 0.0f;
    exdwpw5_cp_wait();
    __syncthreads();

    for (int c0 = 0, buf = 0; c0 < Ce; c0 += CC, buf ^= 1) {
        const float* const we_s = Wes + buf * WE_N;
        const float* const wp_s = Wps + buf * WP_N;
        // E: the patch's expansion (halo included) into Es, 0 outside the image
        if (e_on) {
            float acc[EM][EN];
#pragma unroll
            for (int j = 0; j < EN; ++j) {
                const int c = c0 + eg * EN + j;
                const float b = c < Ce ? __ldg(be + c) : 0.0f;
#pragma unroll
                for (int i = 0; i < EM; ++i) acc[i][j] = b;
            }
#pragma unroll
            for (int k = 0; k < CIN; k += 4) {
                float4 xv[EM];
#pragma unroll
                for (int i = 0; i < EM; ++i) {
                    const int p = min(epl + i * EPL, NP - 1);  // clamped: out-of-range rows are computed, not stored
                    xv[i] = *reinterpret_cast<const float4*>(&Xs[p * XSTR + k]);
                }
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    float w[EN];
#pragma unroll
                    for (int q = 0; q < EN / 4; ++q) {
                        const float4 w4 = *reinterpret_cast<const float4*>(&we_s[(k + kk) * CC + (q * ECG + eg) * 4]);
                        w[q * 4 + 0] = w4.x;
                        w[q * 4 + 1] = w4.y;
                        w[q * 4 + 2] = w4.z;
                        w[q * 4 + 3] = w4.w;
                    }
#pragma unroll
                    for (int i = 0; i < EM; ++i) {
                        const float xs = kk == 0 ? xv[i].x : kk == 1 ? xv[i].y : kk == 2 ? xv[i].z : xv[i].w;
#pragma unroll
                        for (int j = 0; j < EN; ++j) acc[i][j] = fmaf(xs, w[j], acc[i][j]);
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < EM; ++i) {
                const int p = epl + i * EPL;
                if (p >= NP) continue;
                const int ih = ih0 + p / IW, iw = iw0 + p % IW;
                const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
#pragma unroll
                for (int q = 0; q < EN / 4; ++q) {
                    float v[4];
#pragma unroll
                    for (int j = 0; j < 4; ++j) {
                        const float a = acc[i][q * 4 + j];
                        v[j] = inside ? (act_e ? fminf(fmaxf(a, 0.0f), 6.0f) : a) : 0.0f;
                    }
                    *reinterpret_cast<float4*>(&Es[p * CC + eg * EN + q * 4]) = make_float4(v[0], v[1], v[2], v[3]);
                }
            }
        }
        __syncthreads();
        if (c0 + CC < Ce)  // the other buffer's readers (E and P of the previous chunk) are done
            exdwpw8_stage_w<CIN, COUT, CC, ECG, EN, PCG, PN>(Wes + (buf ^ 1) * WE_N, Wps + (buf ^ 1) * WP_N, We, Wp,
                                                             Ce, c0 + CC, tid);
        // D: depthwise 3x3 from Es into Ds, DH x DW outputs x 4 channels per item over a sliding window
        if (d_on) {
            const int cq = c0 + dg * 4;
            const bool cok = cq < Ce;  // Ce % 4 == 0
            const float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
            float4 wd[9];
#pragma unroll
            for (int t = 0; t < 9; ++t) wd[t] = cok ? __ldg(reinterpret_cast<const float4*>(Wd + (long long)t * Ce + cq)) : z;
            const float4 b4 = cok ? __ldg(reinterpret_cast<const float4*>(bd + cq)) : z;
            float4 r[DH][DW];
#pragma unroll
            for (int a = 0; a < DH; ++a)
#pragma unroll
                for (int b = 0; b < DW; ++b) r[a][b] = b4;
#pragma unroll
            for (int row = 0; row < DR; ++row) {
                const int pr = doh * S + row;  // < IH: TH % DH == 0
#pragma unroll
                for (int col = 0; col < DC; ++col) {
                    const float4 e4 = *reinterpret_cast<const float4*>(&Es[(pr * IW + dow * S + col) * CC + dg * 4]);
#pragma unroll
                    for (int a = 0; a < DH; ++a) {
                        const int dy = row - a * S;
                        if (dy < 0 || dy > 2) continue;
#pragma unroll
                        for (int b = 0; b < DW; ++b) {
                            const int dx = col - b * S;
                            if (dx < 0 || dx > 2) continue;
                            const float4 w4 = wd[dy * 3 + dx];
                            r[a][b].x = fmaf(e4.x, w4.x, r[a][b].x);
                            r[a][b].y = fmaf(e4.y, w4.y, r[a][b].y);
                            r[a][b].z = fmaf(e4.z, w4.z, r[a][b].z);
                            r[a][b].w = fmaf(e4.w, w4.w, r[a][b].w);
                        }
                    }
                }
            }
#pragma unroll
            for (int a = 0; a < DH; ++a)
#pragma unroll
                for (int b = 0; b < DW; ++b) {
                    float4 v = r[a][b];
                    if (act_d) {
                        v.x = fminf(fmaxf(v.x, 0.0f), 6.0f);
                        v.y = fminf(fmaxf(v.y, 0.0f), 6.0f);
                        v.z = fminf(fmaxf(v.z, 0.0f), 6.0f);
                        v.w = fminf(fmaxf(v.w, 0.0f), 6.0f);
                    }
                    *reinterpret_cast<float4*>(&Ds[((doh + a) * TW + dow + b) * DSTR + dg * 4]) = v;
                }
        }
        exdwpw5_cp_wait();
        __syncthreads();
        // P: this chunk's projection over the thread's K-split, accumulated in registers (no barrier after it: the
        // next chunk's E writes Es, last read before the barrier above; its D writes Ds after the next barrier)
        if (p_on) {
#pragma unroll
            for (int k = pks * KC; k < (pks + 1) * KC; k += 4) {
                if (c0 + k >= Ce) break;  // Ce % 4 == 0: rows c0+k .. c0+k+3 all in range
                float4 dv[PM];
#pragma unroll
                for (int i = 0; i < PM; ++i) dv[i] = *reinterpret_cast<const float4*>(&Ds[(ppl + i * PPL) * DSTR + k]);
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    float w[PN];
#pragma unroll
                    for (int q = 0; q < PN / 4; ++q) {
                        const float4 w4 = *reinterpret_cast<const float4*>(&wp_s[(k + kk) * COUT + (q * PCG + pg) * 4]);
                        w[q * 4 + 0] = w4.x;
                        w[q * 4 + 1] = w4.y;
                        w[q * 4 + 2] = w4.z;
                        w[q * 4 + 3] = w4.w;
                    }
#pragma unroll
                    for (int i = 0; i < PM; ++i) {
                        const float d = kk == 0 ? dv[i].x : kk == 1 ? dv[i].y : kk == 2 ? dv[i].z : dv[i].w;
#pragma unroll
                        for (int j = 0; j < PN; ++j) pacc[i][j] = fmaf(d, w[j], pacc[i][j]);
                    }
                }
            }
        }
    }
    // split-K reduction in a fixed order (K-split 0 + 1 + ... + KS-1) through Es (last read before the barrier
    // that preceded the last projection) and, where the partials need more room, Ds (read by that projection)
    if (KS > 1) {
        float* const Red = Es;
        if ((KS - 1) * P * COUT > NP * CC) __syncthreads();
        if (p_on && pks > 0) {
#pragma unroll
            for (int i = 0; i < PM; ++i)
#pragma unroll
                for (int q = 0; q < PN / 4; ++q)
                    *reinterpret_cast<float4*>(&Red[((pks - 1) * P + ppl + i * PPL) * COUT + pg * PN + q * 4]) =
                        make_float4(pacc[i][q * 4], pacc[i][q * 4 + 1], pacc[i][q * 4 + 2], pacc[i][q * 4 + 3]);
        }
        __syncthreads();
        if (p_on && pks == 0) {
#pragma unroll
            for (int s = 0; s < KS - 1; ++s)
#pragma unroll
                for (int i = 0; i < PM; ++i)
#pragma unroll
                    for (int q = 0; q < PN / 4; ++q) {
                        const float4 v = *reinterpret_cast<const float4*>(&Red[(s * P + ppl + i * PPL) * COUT + pg * PN + q * 4]);
                        pacc[i][q * 4] += v.x;
                        pacc[i][q * 4 + 1] += v.y;
                        pacc[i][q * 4 + 2] += v.z;
                        pacc[i][q * 4 + 3] += v.w;
                    }
        }
    }
    if (!p_on || pks != 0) return;
#pragma unroll
    for (int i = 0; i < PM; ++i) {
        const int px = ppl + i * PPL;
        const int goh = th0 + px / TW, gow = tw0 + px % TW;
        if (goh >= Ho || gow >= Wo) continue;
#pragma unroll
        for (int q = 0; q < PN / 4; ++q) {
            const int c = pg * PN + q * 4;
            const long long off = (((long long)n * Ho + goh) * Wo + gow) * COUT + c;
            const float4 b4 = __ldg(reinterpret_cast<const float4*>(bp + c));
            float4 v = make_float4(pacc[i][q * 4] + b4.x, pacc[i][q * 4 + 1] + b4.y, pacc[i][q * 4 + 2] + b4.z,
                                   pacc[i][q * 4 + 3] + b4.w);
            if (act_p) {
                v.x = fminf(fmaxf(v.x, 0.0f), 6.0f);
                v.y = fminf(fmaxf(v.y, 0.0f), 6.0f);
                v.z = fminf(fmaxf(v.z, 0.0f), 6.0f);
                v.w = fminf(fmaxf(v.w, 0.0f), 6.0f);
            }
            if (has_res) {
                const float4 rv = *reinterpret_cast<const float4*>(R + off);
                v.x += rv.x;
                v.y += rv.y;
                v.z += rv.z;
                v.w += rv.w;
            }
            *reinterpret_cast<float4*>(Y + off) = v;
        }
    }
}

// grid = (ceil(Ho / TH) * ceil(Wo / TW), n), block = 256, MINB blocks per SM (__launch_bounds__); dynamic shared
// memory: 4 * (NP * (CIN + 4) + NP * CC + TH * TW * (CC + 4) + 2 * (CIN * CC + CC * COUT)) bytes
#define EXDWPW8_KERNEL(NAME, S, CIN, COUT, TH, TW, CC, EM, EN, DH, DW, PM, PN, KS, MINB)                       \
    extern "C" __global__ void __launch_bounds__(256, MINB) NAME(                                             \
        const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,               \
        const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,              \
        const float* __restrict__ bp, const float* __restrict__ R, float* __restrict__ Y, int H, int W, int Ce, \
        int Ho, int Wo, int pad, int act_e, int act_d, int act_p, int has_res) {                              \
        exdwpw8_body<S, CIN, COUT, TH, TW, CC, EM, EN, DH, DW, PM, PN, KS>(                                    \
            X, We, be, Wd, bd, Wp, bp, R, Y, H, W, Ce, Ho, Wo, pad, act_e, act_d, act_p, has_res);             \
    }

// builds (impls/_custom_kernels.py reads these lines: exdwpw8_configs); S CIN COUT TH TW CC EM EN DH DW PM PN KS MINB;
// the tuner picks among a block's builds, exdwpw5 and the pair (scripts/exdwpw8_time.py)
EXDWPW8_KERNEL(exdwpw8_s1_c24_o24_a, 1, 24, 24, 8, 14, 48, 5, 8, 4, 2, 4, 8, 3, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c24_o24_b, 1, 24, 24, 8, 14, 48, 4, 8, 4, 2, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c24_o24_c, 1, 24, 24, 8, 14, 48, 5, 8, 4, 2, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c16_o24_a, 2, 16, 24, 8, 8, 48, 5, 12, 2, 2, 4, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c16_o24_b, 2, 16, 24, 8, 8, 32, 5, 8, 2, 2, 4, 8, 4, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c24_o32_a, 2, 24, 32, 7, 7, 48, 6, 8, 7, 1, 7, 4, 4, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c24_o32_b, 2, 24, 32, 7, 7, 48, 4, 12, 7, 1, 7, 4, 4, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c32_o32_a, 1, 32, 32, 7, 14, 48, 6, 8, 7, 1, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c32_o32_b, 1, 32, 32, 7, 14, 48, 4, 8, 7, 1, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c32_o64_a, 2, 32, 64, 7, 7, 32, 5, 8, 7, 1, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c32_o64_b, 2, 32, 64, 7, 7, 32, 4, 8, 7, 1, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c16_o24_c, 2, 16, 24, 8, 8, 48, 7, 8, 2, 2, 4, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c16_o24_d, 2, 16, 24, 8, 8, 48, 4, 16, 2, 2, 4, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c24_o24_d, 1, 24, 24, 8, 14, 48, 4, 8, 4, 2, 4, 8, 3, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c24_o24_e, 1, 24, 24, 8, 14, 48, 8, 4, 4, 2, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c24_o24_f, 1, 24, 24, 8, 28, 24, 4, 8, 4, 2, 7, 4, 1, 2)
EXDWPW8_KERNEL(exdwpw8_s1_c32_o32_c, 1, 32, 32, 7, 14, 32, 3, 8, 7, 1, 7, 4, 2, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c24_o32_c, 2, 24, 32, 7, 7, 48, 4, 16, 7, 1, 7, 4, 4, 2)
EXDWPW8_KERNEL(exdwpw8_s2_c32_o64_c, 2, 32, 64, 7, 7, 32, 8, 4, 7, 1, 7, 4, 2, 2)
#endif  // EXDWPW5_SPEC_ONLY (the generic builds and everything after them)
