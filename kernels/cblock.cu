// cblock.cu -- fuse v6: a whole MobileNetV2 bottleneck block (expansion 1x1 -> depthwise 3x3 -> projection 1x1
// (+ residual)) as ONE kernel for small batches, any input width: the expanded channels are spread over the blocks
// of thread-block clusters and the projection's partial sums are reduced on chip.
//
// Why (results/NOTES.md, "fuse v6"): at batch 1 the 14x14 / 7x7 blocks run as 4-5 dependent launches each
// (expansion GEMM, depthwise, projection GEMM + its split-K reduce) of ~1.1 us launch cost plus an L2 latency chain
// each; a per-spatial-tile block kernel (fuse v5) has far too few tiles there to fill 132 SMs (a 7x7 map is one
// tile). Splitting the EXPANDED channels instead gives every block a slice of all three convs:
//
//   grid (8 * NG, ST, N), cluster (8, 1, 1), 256 threads. Block x = g * 8 + rank owns expanded channels
//   [x * CH, x * CH + CH) (CE = 8 * NG * CH); blockIdx.y = output-row tile [y * TR, y * TR + TR); blockIdx.z = image.
//   1. cp.async: the tile's input rows (halo included, clipped to the image; rows padded to CIN + 4 floats: no bank
//      conflicts), the block's expansion weight columns, depthwise taps, projection weight rows, biases.
//   2. expansion of the staged pixels for the CH channels -> Es (ex_ks = 0: lane = pixel, warp-uniform 4-channel
//      group, weight reads are broadcasts; fuse v17, ex_ks = 1 / 2 / 4 / 8: lane tiles of 4 pixels x 4 channels, the
//      k range split over ex_ks lanes and reduced by an xor butterfly; fuse v30 / v32 / v33 / v34's fixed builds:
//      tiles of 1 - 3 channel groups per lane, padded, unrolled, the units in boustrophedon order: ex_tiles_ec,
//      ex_unit); out-of-image pixels are not stored, the depthwise skips them (zero padding).
//   3. depthwise 3x3 + bias (+ ReLU6) of the tile's output pixels for the CH channels -> Ds (dw_segs = 0: lane =
//      pixel; fuse v20, dw_segs = 1: lane = segment of 4 outputs of a row, taps in registers; the same sums).
//   4. projection PARTIAL over the block's CH channels for every output channel -> Ps (aliases the input rows):
//      lane = pixel with warp-uniform 4-output groups (proj_cols = 0), (fuse v16, proj_cols = 1) lane = output
//      channel with its CH weights in registers and each pixel's row a broadcast, or (fuse v17 / v19, proj_cols =
//      2 / 3) lane tiles of 4 / 2 pixels x 4 outputs; the same sums in the same order.
//   5. cluster barrier; rank r sums slice r of the tile's outputs over the 8 blocks' Ps through distributed shared
//      memory (ld.shared::cluster, fixed order 0..7; fuse v18, red_pf = 1: the peers' partials requested 8 at a time
//      and the epilogue's bias / residual before the barrier).
//   6. NG == 1: + bias (+ ReLU6) (+ residual) -> Y. NG > 1: the cluster sum goes to the workspace; the last of the NG
//      clusters to arrive at (image, tile, rank) (an atomic counter, reset by that block) adds the NG cluster sums in
//      the fixed order 0..NG-1, then the epilogue. Fixed summation order everywhere: runs are bit-identical.
//   7. cluster barrier before exit (peers may still read this block's Ps).
// Builds: CH = 8, 12, 16 (exdwpw6_c<CH>); fuse v13 adds CH = 24, 40 and clusters of CL = 16 instead of 8
// (exdwpw6_c<CH>x16, CH = 12, 20, 24, 36: everything above with 16 for 8); fuse v14 clusters of 4, 6 and 12
// (exdwpw6_c<CH>x<CL>, for the 144-wide 56x56 blocks); fuse v15 v13's builds at 512 threads (exdwpw6_..._t512).
// Needs CIN, CE, COUT % 4 == 0, 16-byte aligned arrays, CE % (CL * CH) == 0; the counters (N * ST * CL ints) zero
// before the first launch (every launch leaves them zero).
// Shared memory (floats; the host's K.exdwpw6_smem is the same formula):
//   R0 = max(IPmax * (CIN + 4), TR * Wo * (COUT + 4)) | Es IPmax * CS | Ds TR * Wo * CS | We CIN * CH | Wp CH * COUT |
//   Wd 9 * CH | be CH | bd CH, with IPmax = min(H, (TR - 1) * S + 3) * W and CS = CH + 4 if CH % 8 == 0 else CH;
//   fuse v30's expansion modes (ex_ks = KS + 16 * EC, EC >= 1, KS > 1) add (KS - 1) * EX_WSK floats after We.

#include <cuda_runtime.h>

#ifndef PDL_TRIGGER_EARLY
// session 31's measuring option (MBV2_PDL_TRIGGER=early, impls/_custom_kernels.py pdl_trigger_defines): 1 = this
// file's PDL kernels trigger their dependents (griddepcontrol.launch_dependents) once their input is staged, not
// after their last stores, so that the next launch is scheduled while this one computes. It still waits for this
// grid to finish (griddepcontrol.wait) before it reads anything this grid writes.
#define PDL_TRIGGER_EARLY 0
#endif
#ifndef PDL_TRIGGER_AT_EXIT
// fuse v46's exit twin of an exdwpw6 build (impls/_custom_kernels.py PDL_TRIGGER_EXIT_DEFINES; session 33): 1 = no
// griddepcontrol.launch_dependents at all, so the dependents are triggered as this grid's blocks exit (after the NG > 1
// last sums), not after the last partial stores. For the launch before pwpool_c8 by PDL: pwpool_c8's clusters then
// find the SMs this grid leaves, instead of taking them while its last sums still run (fuse v29's loss).
#define PDL_TRIGGER_AT_EXIT 0
#endif
#if PDL_TRIGGER_EARLY && PDL_TRIGGER_AT_EXIT
#error "PDL_TRIGGER_EARLY and PDL_TRIGGER_AT_EXIT: one trigger place at most"
#endif

namespace cblock {

__device__ __forceinline__ unsigned smem_u32(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(void* s, const void* g) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(s)), "l"(g));
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
__device__ __forceinline__ unsigned cluster_rank() {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}
__device__ __forceinline__ void cluster_arrive() { asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory"); }
// signals "done with the peers' shared memory" only: no data published, so no release (a release arrive costs a
// MEMBAR.ALL.GPU in the SASS)
__device__ __forceinline__ void cluster_arrive_relaxed() {
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory"); }
__device__ __forceinline__ float4 ld_dsmem4(const float* p, unsigned rank) {
    unsigned ra;
    float4 v;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(smem_u32(p)), "r"(rank));
    asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "r"(ra)
                 : "memory");
    return v;
}
// a float4 into block `rank`'s shared memory at this block's offset of p (session 25's EXDWPW6_PUSH)
__device__ __forceinline__ void st_dsmem4(float* p, unsigned rank, float4 v) {
    unsigned ra;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(smem_u32(p)), "r"(rank));
    asm volatile("st.shared::cluster.v4.f32 [%0], {%1, %2, %3, %4};\n" ::"r"(ra), "f"(v.x), "f"(v.y), "f"(v.z),
                 "f"(v.w)
                 : "memory");
}
// the input rows reach every block of the cluster by ONE bulk copy per pixel row (multicast), completing on an
// mbarrier at the same shared-memory offset in each block (sm_90a: the host builds this file for the arch-specific
// target, impls/_custom_kernels.py ARCH_SPECIFIC_FILES)
__device__ __forceinline__ void mbar_init(unsigned addr, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(addr), "r"(count) : "memory");
}
__device__ __forceinline__ void fence_mbar_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ __forceinline__ void mbar_expect_tx(unsigned addr, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(addr), "r"(bytes) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(unsigned addr, unsigned parity) {
    unsigned ok;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(ok)
        : "r"(addr), "r"(parity)
        : "memory");
    return ok != 0;
}
__device__ __forceinline__ void bulk_multicast(void* dst, const void* src, unsigned bytes, unsigned mbar,
                                               unsigned short mask) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1], %2, [%3], "
        "%4;\n" ::"r"(smem_u32(dst)),
        "l"(src), "r"(bytes), "r"(mbar), "h"(mask)
        : "memory");
}
// fuse v37's bulk-copy reduce: ``bytes`` of this block's shared memory at src to block `rank`'s at dst's offset (one
// bulk copy), completing on that block's mbarrier at the offset of ``mbar`` (this block's address of its own)
__device__ __forceinline__ void bulk_to_peer(const void* dst, const void* src, unsigned bytes, unsigned mbar,
                                             unsigned rank) {
    unsigned rd, rb;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(rd) : "r"(smem_u32(dst)), "r"(rank));
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(rb) : "r"(mbar), "r"(rank));
    asm volatile("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                     rd),
                 "r"(smem_u32(src)), "r"(bytes), "r"(rb)
                 : "memory");
}
// this thread's generic-proxy shared-memory writes, visible to later bulk copies (the async proxy)
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ float relu6(float v) { return fminf(fmaxf(v, 0.f), 6.f); }
__device__ __forceinline__ float4 relu6(float4 v) { return make_float4(relu6(v.x), relu6(v.y), relu6(v.z), relu6(v.w)); }
__device__ __forceinline__ void fma4(float4& a, float s, const float4& w) {
    a.x = fmaf(s, w.x, a.x);
    a.y = fmaf(s, w.y, a.y);
    a.z = fmaf(s, w.z, a.z);
    a.w = fmaf(s, w.w, a.w);
}
__device__ __forceinline__ void add4(float4& a, const float4& b) {
    a.x += b.x;
    a.y += b.y;
    a.z += b.z;
    a.w += b.w;
}

constexpr int NT = 256;

// pwpool_c8 / linear_c8: a warp's 8 columns (broadcast weight rows wr + k * 64) for the rows x0 (and x1 where TWO)
// over kn k (kn % 4 == 0): a0[c] (a1[c]) += x0[k] (x1[k]) * wr[k * 64 + c], k in order
template <bool TWO>
__device__ __forceinline__ void rows2x8_dot(const float* x0, const float* x1, const float* wr, int kn,
                                            float (&a0)[8], float (&a1)[8]) {
#pragma unroll 2
    for (int k = 0; k < kn; k += 4) {
        const float4 u = *reinterpret_cast<const float4*>(x0 + k);
        const float4 v = TWO ? *reinterpret_cast<const float4*>(x1 + k) : u;
        const float us[4] = {u.x, u.y, u.z, u.w}, vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float4 wa = *reinterpret_cast<const float4*>(wr + (k + j) * 64);
            const float4 wb = *reinterpret_cast<const float4*>(wr + (k + j) * 64 + 4);
            const float w8[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
            for (int c = 0; c < 8; ++c) {
                a0[c] = fmaf(us[j], w8[c], a0[c]);
                if (TWO) a1[c] = fmaf(vs[j], w8[c], a1[c]);
            }
        }
    }
}

constexpr int MAXG = 8;  // cluster sums loaded at once by the last-arriving block

// exdwpw6's hand-off across clusters (section 6) and pwpool_fc_c8's (phase C): after this block's stores, whether it
// is the last of `arrivals` blocks to arrive at counter *ct (the same answer in every thread). Cooperative groups'
// grid-sync pattern: the block's stores, a block barrier, then ONE thread fences and signals; the last arriver resets
// the counter (ready for the next launch / graph replay) and fences before the block barrier that releases its readers.
// CBLOCK_TICKET_ACQ_REL (session 49; 1 unless defined, MBV2_TICKET=sc builds 0): the ticket as one acquire-release
// atomic at GPU scope (SASS: one MEMBAR.ALL.GPU before the atomic, an L1 invalidate after) instead of __threadfence()
// before it and after the last arriver's reset (two MEMBAR.SC.GPU on the last arriver's path; -0.3 us per 7x7 launch
// at batch 1 on an H100). The release orders this block's partial stores before its arrival; the last arriver's
// acquire orders every earlier arrival's stores before its reads. The reset needs no fence: the next launch reads the
// counter only after this grid has completed.
#ifndef CBLOCK_TICKET_ACQ_REL
#define CBLOCK_TICKET_ACQ_REL 1
#endif
__device__ __forceinline__ bool last_to_arrive(int* ct, int arrivals) {
    __shared__ int last_flag;
    __syncthreads();
    if (threadIdx.x == 0) {
#if CBLOCK_TICKET_ACQ_REL
        int prev;
        asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;\n" : "=r"(prev) : "l"(ct) : "memory");
        last_flag = prev == arrivals - 1;
        if (last_flag) *ct = 0;  // every block has arrived: ready for the next launch
#else
        __threadfence();
        const int prev = atomicAdd(ct, 1);
        last_flag = prev == arrivals - 1;
        if (last_flag) {
            *ct = 0;  // every block has arrived: ready for the next launch
            __threadfence();
        }
#endif
    }
    __syncthreads();
    return last_flag;
}

// STAMP builds (exdwpw6_c<CH>_stamp, scripts/cblock_sweep.py --stamps): thread 0 of every block writes clock64() at
// the phase boundaries and %globaltimer at entry / exit to stamps[block * 12 + k] (a measuring tool, never planned).
__device__ __forceinline__ unsigned long long globaltimer() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

// exdwpw6's depthwise phase, fuse v20 (dw_segs): lane = (4-channel group cg, output row, segment of DW_SEG output
// columns) with cg's 9 taps in registers; each input row of the segment (DW_SEG - 1) * S + 3 float4s is read once
// for the DW_SEG outputs (stride 1: 6 loads for 12 taps' worth, the pixel-lane mapping 12 + 12 weight broadcasts).
// Each output sums bias + taps in the order dy, dx with the out-of-image taps skipped: bit-identical to it.
constexpr int DW_SEG = 4;
template <int S, int CH, int NT>
__device__ __forceinline__ void dw_rows(const float* Es, const float* wds, const float* bds, float* Ds, int H, int W,
                                        int Wo, int TRt, int oy0, int iy0, int act_d, int tid) {
    constexpr int NC = (DW_SEG - 1) * S + 3;  // input columns of one segment row
    constexpr int CG = CH / 4, CS = (CH % 8 == 0) ? CH + 4 : CH;
    const int NSEG = (Wo + DW_SEG - 1) / DW_SEG, U = CG * TRt * NSEG;
    for (int u = tid; u < U; u += NT) {
        const int cg = u % CG, r = u / CG, seg = r % NSEG, ry = r / NSEG;
        const int oy = oy0 + ry, ox0 = seg * DW_SEG, ix0 = ox0 * S - 1;
        float4 w[9];
#pragma unroll
        for (int t = 0; t < 9; ++t) w[t] = *reinterpret_cast<const float4*>(wds + t * CH + cg * 4);
        float4 acc[DW_SEG];
        const float4 b = *reinterpret_cast<const float4*>(bds + cg * 4);
#pragma unroll
        for (int i = 0; i < DW_SEG; ++i) acc[i] = b;
#pragma unroll
        for (int dy = 0; dy < 3; ++dy) {
            const int iy = oy * S - 1 + dy;
            if (iy < 0 || iy >= H) continue;
            const float* er = Es + (size_t)(iy - iy0) * W * CS + cg * 4;
            float4 e[NC];
#pragma unroll
            for (int c = 0; c < NC; ++c) {
                const int ix = ix0 + c;
                e[c] = (ix >= 0 && ix < W) ? *reinterpret_cast<const float4*>(er + ix * CS)
                                           : make_float4(0.f, 0.f, 0.f, 0.f);
            }
#pragma unroll
            for (int i = 0; i < DW_SEG; ++i) {
#pragma unroll
                for (int dx = 0; dx < 3; ++dx) {
                    const int ix = ix0 + i * S + dx;
                    if (ix < 0 || ix >= W) continue;
                    const float4 ev = e[i * S + dx], wv = w[dy * 3 + dx];
                    acc[i].x = fmaf(ev.x, wv.x, acc[i].x);
                    acc[i].y = fmaf(ev.y, wv.y, acc[i].y);
                    acc[i].z = fmaf(ev.z, wv.z, acc[i].z);
                    acc[i].w = fmaf(ev.w, wv.w, acc[i].w);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < DW_SEG; ++i) {
            const int ox = ox0 + i;
            float4* d = reinterpret_cast<float4*>(Ds + (size_t)(ry * Wo + ox) * CS + cg * 4);
            if (ox < Wo) *d = act_d ? relu6(acc[i]) : acc[i];
        }
    }
}

// fuse v30: exdwpw6's expansion in lane tiles of EP = 4 pixels x 4 * EC channels (EC 1 / 2 / 3 channel groups per
// lane; kernel argument ex_ks = KS + 16 * EC). v17's tiles (ex_ks = KS < 16) load 4 weight float4s and 4 input float4s
// per 64 FMAs; with EC groups each input float4 feeds 4 * EC channels: 4 + 4 * EC loads per 64 * EC FMAs. And the k
// slices of the weights are skewed: slice j's rows start WSK = 8 floats further per slice (the host reserves
// (KS - 1) * WSK floats), so the KS slices' broadcasts of one k step fall in different bank groups (unskewed,
// KL * CH is a multiple of 32 floats on every planned block: the KS slices' reads of a warp hit one group, KS
// wavefronts per load). Unit (cgg, pg) covers pixels pg, pg + PG, .. and channel groups cgg * EC .. + EC; the k range
// split over KS lanes as in v17 (slice 0 from the bias, then k in order, an xor butterfly): each output sums like
// v17's tiles with the same KS, bit-identical to them. Host: CG % EC == 0, CIN % (4 * KS) == 0.
constexpr int EX_WSK = 8;
// session 23's measuring builds (scripts/ex_variant_stamps.py; never planned): -DEXDWPW6_EX_FULL unrolls the
// expansion's k loop fully (fixed-shape builds, where KL is a constant; default: unroll 2), -DEXDWPW6_EX_EP=2 / 8 sets
// ex_tiles_ec's pixels per lane tile (default 4). Same sums in the same order: bit-identical.
#ifdef EXDWPW6_EX_FULL
#define EX_K_UNROLL _Pragma("unroll")
constexpr bool EX_FULL_DEFAULT = true;
#else
#define EX_K_UNROLL _Pragma("unroll 2")
constexpr bool EX_FULL_DEFAULT = false;
#endif
#ifndef EXDWPW6_EX_EP
#define EXDWPW6_EX_EP 4
#endif
// -DEXDWPW6_EX_PAD=8 / 16: ex_tiles_ec's pixel slots per channel group padded to a multiple of PAD (the extra slots
// repeat the last real one, never stored), so 8 consecutive lanes never wrap from one channel group's slots to the
// next's (ncu, session 23: pixels pg and pg + 8 of the two groups hit one bank group; 5.6 wavefronts per input LDS.128
// instead of 4)
#ifndef EXDWPW6_EX_PAD
#define EXDWPW6_EX_PAD 1
#endif
constexpr int EX_PAD_V32 = 8;  // fuse v32's padded tiles (ex_ks + 64; impls/_custom_kernels.py EX_PAD)
// session 24: -DEXDWPW6_EX_SNAKE=G orders the expansion tiles' units (both v17's and ex_tiles_ec's) in groups of G
// channel groups, pixel slot major inside a group, every odd group's slots in reverse (a boustrophedon). Unit order
// u -> (cgg, pg) with G = 0 (the default): cgg = u / PG, pg = u % PG, so a quarter warp that wraps from one group's
// last slots to the next's first reads pixels like {12, 13, 0, .., 5}, p and p + 8 in one bank group (ncu, session 23:
// 5.6 wavefronts per input LDS.128 instead of 4). Reversed, any run of consecutive units reads a contiguous range of
// slots: 8 lanes read at most 8 consecutive pixels (distinct bank groups when XS / 4 is odd) or the same one
// (a broadcast). G = 2 puts 2 channel groups on each pixel slot in consecutive lanes (a half warp reads 8 pixels x 2
// weight columns). The same units, the same sums: bit-identical; the number of units and warps is unchanged.
// fuse v34 (ex_ks + 256, fixed builds): the order with G = EX_SNAKE_V34 (impls/_custom_kernels.py EX_SNAKE).
#ifndef EXDWPW6_EX_SNAKE
#define EXDWPW6_EX_SNAKE 0
#endif
constexpr int EX_SNAKE_V34 = 2;
template <int G>
__device__ __forceinline__ void ex_unit(int u, int PG, int NG, int& cg, int& pg) {
    if constexpr (G == 0) {
        cg = u / PG;
        pg = u - cg * PG;
    } else {
        const int g = u / (G * PG), r = u - g * (G * PG);
        const int gs = min(G, NG - g * G);  // the last group may hold fewer channel groups
        const int q = r / gs;
        cg = g * G + (r - q * gs);
        pg = (g & 1) ? PG - 1 - q : q;
    }
}
__device__ __forceinline__ float f4c(const float4& v, int k) {
    return k == 0 ? v.x : (k == 1 ? v.y : (k == 2 ? v.z : v.w));
}
template <int EC, int CH, int NT, int PAD = EXDWPW6_EX_PAD, bool FULL = EX_FULL_DEFAULT, int SNAKE = EXDWPW6_EX_SNAKE>
__device__ __forceinline__ void ex_tiles_ec(const float* Xs, const float* Wes, const float* bes, float* Es, int IP,
                                            int XS, int CIN, int ks, int act_e, int tid) {
    constexpr int EP = EXDWPW6_EX_EP, NW = NT / 32, CG = CH / 4, CS = (CH % 8 == 0) ? CH + 4 : CH;
    static_assert(CG % EC == 0, "EC must divide the block's channel groups");
    constexpr int CGE = CG / EC;
    const int lane = tid & 31, warp = tid >> 5;
    const int UW = 32 / ks, KL = CIN / ks;
    const int PG = (IP + EP - 1) / EP, PGP = (PG + PAD - 1) / PAD * PAD, U = PGP * CGE;
    const int j = lane / UW, v = lane - j * UW;
    const int wsk = ks > 1 ? EX_WSK : 0;
    for (int u0 = warp * UW; u0 < U; u0 += NW * UW) {  // warp-uniform: every lane reaches the shuffles
        const int u = min(u0 + v, U - 1);
        int cgg, pgp;
        ex_unit<SNAKE>(u, PGP, CGE, cgg, pgp);
        const int pg = min(pgp, PG - 1);
        const float* xr = Xs + j * KL;
        int pix[EP];
#pragma unroll
        for (int i = 0; i < EP; ++i) pix[i] = min(pg + i * PG, IP - 1);
        const float* wr = Wes + (size_t)j * (KL * CH + wsk) + cgg * EC * 4;
        float4 acc[EP][EC];
#pragma unroll
        for (int e = 0; e < EC; ++e) {
            const float4 b0 = j == 0 ? *reinterpret_cast<const float4*>(bes + (cgg * EC + e) * 4)
                                     : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int i = 0; i < EP; ++i) acc[i][e] = b0;
        }
        const auto kstep = [&](int k) {  // k .. k + 3, in order
            float4 xv[EP];
#pragma unroll
            for (int i = 0; i < EP; ++i) xv[i] = *reinterpret_cast<const float4*>(xr + pix[i] * XS + k);
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                float4 w[EC];
#pragma unroll
                for (int e = 0; e < EC; ++e) w[e] = *reinterpret_cast<const float4*>(wr + (k + kk) * CH + e * 4);
#pragma unroll
                for (int i = 0; i < EP; ++i) {
                    const float x = f4c(xv[i], kk);
#pragma unroll
                    for (int e = 0; e < EC; ++e) fma4(acc[i][e], x, w[e]);
                }
            }
        };
        if constexpr (FULL) {  // fixed-shape builds only: KL is a constant there
#pragma unroll
            for (int k = 0; k < KL; k += 4) kstep(k);
        } else {
#pragma unroll 2
            for (int k = 0; k < KL; k += 4) kstep(k);
        }
        for (int m = UW; m < 32; m *= 2) {
#pragma unroll
            for (int i = 0; i < EP; ++i)
#pragma unroll
                for (int e = 0; e < EC; ++e) {
                    acc[i][e].x += __shfl_xor_sync(0xffffffffu, acc[i][e].x, m);
                    acc[i][e].y += __shfl_xor_sync(0xffffffffu, acc[i][e].y, m);
                    acc[i][e].z += __shfl_xor_sync(0xffffffffu, acc[i][e].z, m);
                    acc[i][e].w += __shfl_xor_sync(0xffffffffu, acc[i][e].w, m);
                }
        }
        if (j == 0 && u0 + v < U && pgp < PG) {
#pragma unroll
            for (int i = 0; i < EP; ++i) {
                const int p = pg + i * PG;
                if (p < IP) {
#pragma unroll
                    for (int e = 0; e < EC; ++e)
                        *reinterpret_cast<float4*>(Es + p * CS + (cgg * EC + e) * 4) =
                            act_e ? relu6(acc[i][e]) : acc[i][e];
                }
            }
        }
    }
}

// exdwpw6's projection partial in lane tiles of EP pixels x 4 output channels (fuse v17: EP 4, 8 LDS.128 per 64
// FMAs; proj_cols 1: 2 per 8, 0: 5 per 16; fuse v19: EP 2). Unit (o4, qg) covers pixels qg, qg + QG, .. (QG = ceil(TP
// / EP); 8 consecutive lanes read 8 consecutive Ds rows, conflict-free). Same products and order over c as proj_cols
// 0: bit-identical to it.
// session 24's measuring build (never planned): -DEXDWPW6_PJ_SNAKE=G orders proj_tiles' units (o4, qg) as ex_unit
// orders the expansion's (G output groups per pixel-slot run, odd runs reversed): with G = 2, lanes n and n ^ 1 read one
// Ds row (an LDS.128 pair-uniform: 2 wavefronts instead of 4) and lanes n and n ^ 2 one weight column. Bit-identical.
#ifndef EXDWPW6_PJ_SNAKE
#define EXDWPW6_PJ_SNAKE 0
#endif
#ifndef EXDWPW6_PUSH  // session 25's measuring build (exdwpw6_body, step 4): the projection pushed to its summing block
#define EXDWPW6_PUSH 0
#endif
// fuse v37 (fixed builds only): red_pf 2 = the cluster reduce by bulk copies on mbarriers (exdwpw6_body, steps 4 /
// 5; with red_pf 1's prefetch)
#if defined(EXDWPW6_FIX_MODES) && EXDWPW6_RPF == 2
#define EXDWPW6_BULK_ON 1
#else
#define EXDWPW6_BULK_ON 0
#endif
static_assert(!(EXDWPW6_PUSH && EXDWPW6_BULK_ON), "EXDWPW6_PUSH and the bulk-copy reduce: one or the other");
// fuse v43's flag twins (session 28's measuring build; impls/_custom_flags.py, K.build_exdwpw6_spec(flags=True), the
// fixed build's name + "_hf"): -DEXDWPW6_FLAGS=1 on a fixed build. The kernel takes five more arguments (fin, fout,
// fep, ptr_, pcl) and hands off through per-tile flags instead of the grid-wide griddepcontrol.wait: fin == nullptr
// waits as before; otherwise the block polls (ld.acquire.gpu) the flags of the producer's row tiles that its input rows
// lie in (producer tiles of ptr_ rows, pcl flags each) until each holds this forward's number (*fep). Every block that
// stores a slice of Y then stores that number into its (image, tile, rank) flag of fout (st.release.gpu, after a block
// barrier): CL flags per tile either way (NG == 1: each block of the cluster; NG > 1: the last to arrive at each rank).
// The residual is the input tensor, so the same flags cover it.
#ifndef EXDWPW6_FLAGS
#define EXDWPW6_FLAGS 0
#endif
#if EXDWPW6_FLAGS && !defined(EXDWPW6_SPEC_ONLY)
#error "EXDWPW6_FLAGS: fixed builds only (EXDWPW6_SPEC_ONLY)"
#endif
#if EXDWPW6_FLAGS && defined(EXDWPW6_STAMP_NAME)
#error "EXDWPW6_FLAGS: no stamped twin"
#endif
#if EXDWPW6_FLAGS
#define EXDWPW6_BODY_FLAG_PARAMS \
    , const unsigned *fin = nullptr, unsigned *fout = nullptr, const unsigned *fep = nullptr, int ptr_ = 1, int pcl = 1
#else
#define EXDWPW6_BODY_FLAG_PARAMS  // (the other builds keep exdwpw6_body's signature, and so their code)
#endif
#if EXDWPW6_FLAGS
// Session 30's measuring variants of the flag twins (H200: v43 measured 13 us SLOWER than v42 at batch 1; which part
// costs it?), set by K.flag_extra_defines (MBV2_FLAG_EXTRA), never by a plan: EXDWPW6_FLAG_POLL 0 = every flag polled
// by its own thread with ld.acquire.gpu (v43), 1 = the same with ld.relaxed.gpu and one fence.acq_rel.gpu after, 2 =
// thread 0 polls them all in turn (relaxed, __nanosleep on a miss) and then fences; EXDWPW6_FLAG_TRIGGER 1 = the
// trigger (griddepcontrol.launch_dependents) before the flag store (NG == 1; NG > 1 triggers before it already);
// EXDWPW6_FLAG_GRIDWAIT 1 = every launch waits for the grid before it (griddepcontrol.wait) and still publishes its
// flags: the cost of the publication and the fresh buffers without any poll
#ifndef EXDWPW6_FLAG_POLL
#define EXDWPW6_FLAG_POLL 0
#endif
#ifndef EXDWPW6_FLAG_TRIGGER
#define EXDWPW6_FLAG_TRIGGER 0
#endif
#ifndef EXDWPW6_FLAG_GRIDWAIT
#define EXDWPW6_FLAG_GRIDWAIT 0
#endif
// the flags of producer tiles [iy0 / ptr_, (iy1 - 1) / ptr_] of image n hold this forward's number; then a block
// barrier, and the async proxy (the input rows' bulk copies) ordered after the acquires
__device__ __forceinline__ void flags_wait(const unsigned* fin, const unsigned* fep, int n, int H, int iy0, int iy1,
                                           int ptr_, int pcl, int tid, int nt) {
    const int sp0 = iy0 / ptr_, sp1 = (iy1 - 1) / ptr_, stp = (H + ptr_ - 1) / ptr_;
    const int count = (sp1 - sp0 + 1) * pcl;
    const int first = EXDWPW6_FLAG_POLL == 2 ? (tid == 0 ? 0 : count) : tid;  // (2: thread 0 alone, in turn)
    const int step = EXDWPW6_FLAG_POLL == 2 ? 1 : nt;
    for (int i = first; i < count; i += step) {
        const unsigned* f = fin + ((size_t)n * stp + sp0 + i / pcl) * pcl + i % pcl;
        const unsigned e = __ldcg(fep);
        unsigned v, polls = 0;
        do {
            if (EXDWPW6_FLAG_POLL == 0)
                asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(f) : "memory");
            else
                asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(f) : "memory");
            if (++polls == (1u << 24)) __trap();  // seconds: a broken hand-off, not a slow one
            if (EXDWPW6_FLAG_POLL == 2 && v != e) __nanosleep(64);
        } while (v != e);
        if (EXDWPW6_FLAG_POLL != 0) asm volatile("fence.acq_rel.gpu;\n" ::: "memory");
    }
    __syncthreads();
    asm volatile("fence.proxy.async.global;\n" ::: "memory");
}
// every thread's Y stores before it, then thread 0 publishes this forward's number in flag f
__device__ __forceinline__ void flag_set(unsigned* f, const unsigned* fep) {
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned e = __ldcg(fep);
        asm volatile("st.release.gpu.global.u32 [%0], %1;\n" ::"l"(f), "r"(e) : "memory");
    }
}
#endif
// fuse v36 (proj_cols 4 / 5, fixed builds only): 2 / 3's tiles in that order with G = EX_SNAKE_V34, timed per block.
// ``store(q, o4, v)`` writes a tile's result (the partial of pixel q, outputs 4 o4 .. 4 o4 + 3).
template <int EP, int CH, int NT, int PJG = EXDWPW6_PJ_SNAKE, class Store>
__device__ __forceinline__ void proj_tiles(const float* Ds, const float* Wps, int TP, int COUT, int CS, int tid,
                                           Store store) {
    const int O4 = COUT / 4, QG = (TP + EP - 1) / EP, U = QG * O4;
    for (int u = tid; u < U; u += NT) {
        int o4, qg;
        ex_unit<PJG>(u, QG, O4, o4, qg);
        int pix[EP];
#pragma unroll
        for (int i = 0; i < EP; ++i) pix[i] = min(qg + i * QG, TP - 1);
        const float* wr = Wps + o4 * 4;
        float4 acc[EP];
#pragma unroll
        for (int i = 0; i < EP; ++i) acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int c = 0; c < CH; c += 4) {
            const float4 w0 = *reinterpret_cast<const float4*>(wr + (c + 0) * COUT);
            const float4 w1 = *reinterpret_cast<const float4*>(wr + (c + 1) * COUT);
            const float4 w2 = *reinterpret_cast<const float4*>(wr + (c + 2) * COUT);
            const float4 w3 = *reinterpret_cast<const float4*>(wr + (c + 3) * COUT);
#pragma unroll
            for (int i = 0; i < EP; ++i) {
                const float4 d = *reinterpret_cast<const float4*>(Ds + pix[i] * CS + c);
                fma4(acc[i], d.x, w0);
                fma4(acc[i], d.y, w1);
                fma4(acc[i], d.z, w2);
                fma4(acc[i], d.w, w3);
            }
        }
#pragma unroll
        for (int i = 0; i < EP; ++i) {
            const int q = qg + i * QG;
            if (q < TP) store(q, o4, acc[i]);
        }
    }
}

template <int CH, int CL = 8, bool STAMP = false, int NTB = 256>
__device__ __forceinline__ void exdwpw6_body(const float* __restrict__ X, const float* __restrict__ We,
                                             const float* __restrict__ be, const float* __restrict__ Wd,
                                             const float* __restrict__ bd, const float* __restrict__ Wp,
                                             const float* __restrict__ bp, const float* R, float* Y, float* ws,
                                             int* cnt, int H, int W, int CIN, int CE, int COUT, int Ho, int Wo, int S,
                                             int TR, int act_e, int act_d, int act_p, int has_res, int proj_cols,
                                             int ex_ks, int red_pf, int dw_segs,
                                             unsigned long long* stamps = nullptr EXDWPW6_BODY_FLAG_PARAMS) {
    static_assert(CH % 4 == 0, "CH must be a multiple of 4");
#ifdef EXDWPW6_FIX_MODES
    // fuse v22's builds (EXDWPW6_SPEC_ONLY, end of file) and scripts/exdwpw6_specialize.py's measuring build: the four
    // mode arguments as compile-time constants, so each kernel holds one path of each phase (about half the code;
    // session 18 on the H100: 8.7 - 10.6 us less at batch 1 with the modes fixed). The host passes the same values.
    proj_cols = EXDWPW6_PC, ex_ks = EXDWPW6_KS, red_pf = EXDWPW6_RPF, dw_segs = EXDWPW6_DS;
#endif
#ifdef EXDWPW6_FIX_SHAPE
    // fuse v23's builds: the block's shape and flags as compile-time constants too (divisions by them become
    // multiplications and shifts, loops with known trip counts unroll); the host passes the same values
    H = EXDWPW6_H, W = EXDWPW6_W, CIN = EXDWPW6_CIN, CE = EXDWPW6_CE, COUT = EXDWPW6_COUT, Ho = EXDWPW6_HO;
    Wo = EXDWPW6_WO, S = EXDWPW6_S, TR = EXDWPW6_TR, act_e = EXDWPW6_ACTE, act_d = EXDWPW6_ACTD;
    act_p = EXDWPW6_ACTP, has_res = EXDWPW6_RES;
#endif
    constexpr int NT = NTB;  // threads per block: 256 (2 blocks per SM), fuse v15's _t512 builds 512 (1 per SM)
    static_assert(CL >= 2 && CL <= 16, "clusters of 2 - 8 (portable) or 9 - 16 blocks (non-portable: the host opts in)");
    constexpr int CG = CH / 4;                        // 4-channel groups
    constexpr int CS = (CH % 8 == 0) ? CH + 4 : CH;   // Es / Ds row stride (bank conflicts)
    extern __shared__ __align__(16) float sm[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned rank = cluster_rank();
    const int NG = gridDim.x / CL, g = blockIdx.x / CL;
    const int c0 = blockIdx.x * CH;
    const int s = blockIdx.y, ST = gridDim.y, n = blockIdx.z;
    const int oy0 = s * TR, TRt = min(TR, Ho - oy0), TP = TRt * Wo;
    const int iy0 = max(0, oy0 * S - 1), iy1 = min(H, (oy0 + TRt - 1) * S + 2);
    const int IP = (iy1 - iy0) * W;
    const int XS = CIN + 4, PS = COUT + 4, O4 = COUT / 4;
    const int IPmax = min(H, (TR - 1) * S + 3) * W;
    const int r0 = max(IPmax * XS, TR * Wo * PS);
    float* Xs = sm;  // [IP][XS]; later Ps [TP][PS]
    float* Es = sm + r0;
    float* Ds = Es + IPmax * CS;
    // fuse v30 (ex_ks >= 16): ex_ks = KS + 16 * EC, the expansion in tiles of EC channel groups per lane with the k
    // slices' weight rows skewed by EX_WSK floats each (ex_tiles_ec); below 16, v17's tiles (or 0, the pixel lanes)
    // (fixed-mode builds only: in the generic ones EXE is 0 and this folds away; the host times v30's modes on
    // fixed builds)
#ifdef EXDWPW6_FIX_MODES
    // fuse v32: + 64, the padded tiles (each channel group's pixel slots a multiple of EX_PAD_V32)
    // fuse v33: + 128, the k loop fully unrolled (the shape is fixed too: KL is a constant)
    constexpr int EXE = (EXDWPW6_KS >> 4) & 3, EXK = EXDWPW6_KS & 15, EXP = (EXDWPW6_KS >> 6) & 1;
    // fuse v34: + 256, the units in boustrophedon order (ex_unit; v17's tiles too)
    constexpr bool EXF = (EXDWPW6_KS >> 7) & 1;
    constexpr int EXZ = (EXDWPW6_KS >> 8) & 1 ? EX_SNAKE_V34 : EXDWPW6_EX_SNAKE;
    constexpr int wsk = (EXE > 0 && EXK > 1) ? EX_WSK : 0;
    static_assert(EXE <= 3 && (EXE == 0 || EXK > 0), "ex_ks: KS + 16 * EC with EC 1 - 3");
    static_assert(EXDWPW6_KS < 512 && ((EXP == 0 && !EXF) || EXE > 0), "ex_ks: + 64 / + 128 only with EC 1 - 3");
    static_assert(EXDWPW6_KS < 256 || EXK > 0, "ex_ks: + 256 only with KS >= 1");
    static_assert(EXDWPW6_PC >= 0 && EXDWPW6_PC <= 5, "proj_cols: 0 - 3, fuse v36's 4 / 5");
    static_assert(EXDWPW6_RPF >= 0 && EXDWPW6_RPF <= 2, "red_pf: 0 / 1, fuse v37's 2 (the bulk-copy reduce)");
#else
    constexpr int EXE = 0, EXK = 1, EXP = 0, wsk = 0, EXZ = EXDWPW6_EX_SNAKE;
    constexpr bool EXF = false;
    (void)EX_WSK;
    (void)EXP;
    (void)EXF;
    (void)EX_SNAKE_V34;
#endif
    const int ekl = EXK > 0 ? CIN / EXK : CIN;
    float* Wes = Ds + TR * Wo * CS;                // [CIN][CH] (fuse v30: slice j's rows wsk * j floats further)
    float* Wps = Wes + CIN * CH + (EXK - 1) * wsk;  // [CH][COUT]
    float* wds = Wps + CH * COUT;    // [9][CH]
    float* bes = wds + 9 * CH;
    float* bds = bes + CH;
    (void)CE;
    unsigned long long* st_row =
        stamps + ((size_t)(blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * 12;
#define CBLOCK_STAMP(k)                                   \
    do {                                                  \
        if constexpr (STAMP) {                            \
            if (tid == 0) st_row[k] = clock64();          \
        }                                                 \
    } while (0)
    if constexpr (STAMP) {
        if (tid == 0) st_row[10] = globaltimer();
    }
    CBLOCK_STAMP(0);
    __shared__ __align__(8) unsigned long long xbar;
#if EXDWPW6_BULK_ON
    // the slice this block sums: output pixels [q0, q1) of the tile (ceil(TP / CL) each), from each of the CL blocks
    // by one bulk copy of those Ps rows, into Rv [CL senders][cpp][PS] after the layout (K.exdwpw6_bulkred_bytes),
    // counted on rbar (its expected bytes set at once: a copy may land before or after)
    __shared__ __align__(8) unsigned long long rbar;
    const int cpp = (TP + CL - 1) / CL;
    const int q0 = min(TP, (int)rank * cpp), q1 = min(TP, q0 + cpp);
#endif
    if (tid == 0) {
        mbar_init(smem_u32(&xbar), 1);
#if EXDWPW6_BULK_ON
        mbar_init(smem_u32(&rbar), 1);
        if (q1 > q0) mbar_expect_tx(smem_u32(&rbar), (unsigned)(CL * (q1 - q0) * PS * 4));
#endif
        fence_mbar_init();
    }
    cluster_arrive_relaxed();  // waited for before the first multicast (step 1)

    // 1. staging. Programmatic dependent launch (the host launches exdwpw6 with PDL where the driver allows): this
    // kernel may start before the previous one has finished, so it reads nothing a previous kernel wrote before
    // griddepcontrol.wait (a no-op without PDL): the weights are requested first, then the wait, then the input rows.
    // Nothing is written to global memory before the wait either.
    {
#pragma unroll 1
        for (int i = tid; i < CIN * CG; i += NT) {
            const int k = i / CG, q = i - k * CG;
            cp_async16(Wes + k * CH + (k / ekl) * wsk + q * 4, We + (size_t)k * CE + c0 + q * 4);
        }
        const float* wpg = Wp + (size_t)c0 * COUT;
#pragma unroll 1
        for (int i = tid; i < CH * O4; i += NT) cp_async16(Wps + i * 4, wpg + (size_t)i * 4);
#pragma unroll 1
        for (int i = tid; i < 9 * CG; i += NT) {
            const int t = i / CG, q = i - t * CG;
            cp_async16(wds + t * CH + q * 4, Wd + (size_t)t * CE + c0 + q * 4);
        }
        if (tid < CG) cp_async16(bes + tid * 4, be + c0 + tid * 4);
        else if (tid < 2 * CG) cp_async16(bds + (tid - CG) * 4, bd + c0 + (tid - CG) * 4);
#if EXDWPW6_FLAGS
        if (fin == nullptr || EXDWPW6_FLAG_GRIDWAIT) asm volatile("griddepcontrol.wait;\n" ::: "memory");
        else flags_wait(fin, fep, n, H, iy0, iy1, ptr_, pcl, tid, NT);
#else
        asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
        const float* xg = X + ((size_t)n * H + iy0) * W * CIN;
        // the input rows: block `rank` fetches pixel rows rank, rank + CL, ... once for the whole cluster (the CL
        // blocks of a tile need the same rows); every block's mbarrier counts the bytes landing in its own shared
        // memory
        const unsigned bar = smem_u32(&xbar);
        cluster_wait();  // every block's mbarrier is initialised (arrive after the init, at the top)
        if (tid == 0) mbar_expect_tx(bar, (unsigned)(IP * CIN * 4));
#pragma unroll 1
        for (int p = (int)rank + CL * tid; p < IP; p += CL * NT)
            bulk_multicast(Xs + p * XS, xg + (size_t)p * CIN, (unsigned)(CIN * 4), bar,
                           (unsigned short)((1u << CL) - 1));  // every block of the cluster
        cp_async_wait_all();
        while (!mbar_try_wait(bar, 0)) {
        }
        __syncthreads();
    }
#if PDL_TRIGGER_EARLY && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");  // (PDL_TRIGGER_EARLY: after the staging)
#endif
    CBLOCK_STAMP(1);

    // 2. expansion of the staged pixels
    if constexpr (EXE > 0) {
        // fuse v30: tiles of EC = EXE channel groups per lane (the host runs only EC dividing CG)
        ex_tiles_ec<EXE, CH, NT, EXP ? EX_PAD_V32 : EXDWPW6_EX_PAD, EXF || EX_FULL_DEFAULT, EXZ>(
            Xs, Wes, bes, Es, IP, XS, CIN, EXK, act_e, tid);
        __syncthreads();
    } else if (ex_ks > 0) {
        // fuse v17: lane tiles of EP pixels x 4 channels (the same pixel slots and channel group as the pixel-lane
        // mapping below: EP x 4 accumulators per lane, so each loaded input float4 feeds 4 channels and each weight
        // float4 EP pixels: 8 LDS.128 per 64 FMAs instead of 5 per 16; shared-memory returns, not FMAs, bound this
        // phase). A unit (channel group cg, pixel slot pg) covers pixels pg, pg + PG, .. (PG = ceil(IP / EP): 8
        // consecutive lanes read 8 consecutive pixel rows, conflict-free like the pixel-lane mapping), and ex_ks
        // (1, 2, 4, 8) lanes of a warp split its k range: lane = slice j * UW + unit v; slice j sums k in
        // [j * KL, j * KL + KL) in order (slice 0 from the bias), then an xor butterfly over the slices (the same
        // bits in every lane: a + b == b + a) and slice 0 stores. ex_ks 1 sums like the pixel-lane mapping (the bias,
        // then k in order): bit-identical to it. Host: CIN % (4 * ex_ks) == 0.
        constexpr int EP = 4;
        constexpr int NW = NT / 32;
        const int eks = ex_ks & 15;  // (fuse v34's fixed builds: + 256, the order; EXZ)
        const int UW = 32 / eks, KL = CIN / eks;
        const int PG = (IP + EP - 1) / EP, U = PG * CG;
        const int j = lane / UW, v = lane - j * UW;
        for (int u0 = warp * UW; u0 < U; u0 += NW * UW) {  // warp-uniform: every lane reaches the shuffles
            const int u = min(u0 + v, U - 1);
            int cg, pg;
            ex_unit<EXZ>(u, PG, CG, cg, pg);
            const float* xr = Xs + j * KL;
            int pix[EP];
#pragma unroll
            for (int i = 0; i < EP; ++i) pix[i] = min(pg + i * PG, IP - 1);
            const float* wr = Wes + (size_t)j * KL * CH + cg * 4;
            float4 acc[EP];
            const float4 b0 = j == 0 ? *reinterpret_cast<const float4*>(bes + cg * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
            for (int i = 0; i < EP; ++i) acc[i] = b0;
            EX_K_UNROLL
            for (int k = 0; k < KL; k += 4) {
                const float4 w0 = *reinterpret_cast<const float4*>(wr + (k + 0) * CH);
                const float4 w1 = *reinterpret_cast<const float4*>(wr + (k + 1) * CH);
                const float4 w2 = *reinterpret_cast<const float4*>(wr + (k + 2) * CH);
                const float4 w3 = *reinterpret_cast<const float4*>(wr + (k + 3) * CH);
#pragma unroll
                for (int i = 0; i < EP; ++i) {
                    const float4 xv = *reinterpret_cast<const float4*>(xr + pix[i] * XS + k);
                    fma4(acc[i], xv.x, w0);
                    fma4(acc[i], xv.y, w1);
                    fma4(acc[i], xv.z, w2);
                    fma4(acc[i], xv.w, w3);
                }
            }
            for (int m = UW; m < 32; m *= 2) {
#pragma unroll
                for (int i = 0; i < EP; ++i) {
                    acc[i].x += __shfl_xor_sync(0xffffffffu, acc[i].x, m);
                    acc[i].y += __shfl_xor_sync(0xffffffffu, acc[i].y, m);
                    acc[i].z += __shfl_xor_sync(0xffffffffu, acc[i].z, m);
                    acc[i].w += __shfl_xor_sync(0xffffffffu, acc[i].w, m);
                }
            }
            if (j == 0 && u0 + v < U) {
#pragma unroll
                for (int i = 0; i < EP; ++i) {
                    const int p = pg + i * PG;
                    if (p < IP) *reinterpret_cast<float4*>(Es + p * CS + cg * 4) = act_e ? relu6(acc[i]) : acc[i];
                }
            }
        }
        __syncthreads();
    } else {
        // lane = pixel, warp-uniform 4-channel group
        const int slabs = (IP + 31) / 32;
        for (int it = warp; it < slabs * CG; it += NT / 32) {
            const int slab = it / CG, cg = it - slab * CG;
            const int p = slab * 32 + lane;
            if (p < IP) {
                float4 acc = *reinterpret_cast<const float4*>(bes + cg * 4);
                const float* xr = Xs + p * XS;
                const float* wr = Wes + cg * 4;
#pragma unroll 4
                for (int k = 0; k < CIN; k += 4) {
                    const float4 xv = *reinterpret_cast<const float4*>(xr + k);
                    fma4(acc, xv.x, *reinterpret_cast<const float4*>(wr + (k + 0) * CH));
                    fma4(acc, xv.y, *reinterpret_cast<const float4*>(wr + (k + 1) * CH));
                    fma4(acc, xv.z, *reinterpret_cast<const float4*>(wr + (k + 2) * CH));
                    fma4(acc, xv.w, *reinterpret_cast<const float4*>(wr + (k + 3) * CH));
                }
                if (act_e) acc = relu6(acc);
                *reinterpret_cast<float4*>(Es + p * CS + cg * 4) = acc;
            }
        }
        __syncthreads();
    }
    CBLOCK_STAMP(2);

    // 3. depthwise 3x3 (zero padding: taps outside the image skipped) + bias (+ ReLU6)
    if (dw_segs) {
        if (S == 1) dw_rows<1, CH, NT>(Es, wds, bds, Ds, H, W, Wo, TRt, oy0, iy0, act_d, tid);
        else dw_rows<2, CH, NT>(Es, wds, bds, Ds, H, W, Wo, TRt, oy0, iy0, act_d, tid);
        __syncthreads();
    } else {
        // lane = output pixel, warp-uniform 4-channel group
        const int slabs = (TP + 31) / 32;
        for (int it = warp; it < slabs * CG; it += NT / 32) {
            const int slab = it / CG, cg = it - slab * CG;
            const int q = slab * 32 + lane;
            if (q < TP) {
                const int oy = oy0 + q / Wo, ox = q % Wo;
                float4 acc = *reinterpret_cast<const float4*>(bds + cg * 4);
#pragma unroll
                for (int dy = 0; dy < 3; ++dy) {
                    const int iy = oy * S - 1 + dy;
                    if (iy < 0 || iy >= H) continue;
#pragma unroll
                    for (int dx = 0; dx < 3; ++dx) {
                        const int ix = ox * S - 1 + dx;
                        if (ix < 0 || ix >= W) continue;
                        const float4 e = *reinterpret_cast<const float4*>(Es + ((iy - iy0) * W + ix) * CS + cg * 4);
                        const float4 w = *reinterpret_cast<const float4*>(wds + (dy * 3 + dx) * CH + cg * 4);
                        acc.x = fmaf(e.x, w.x, acc.x);
                        acc.y = fmaf(e.y, w.y, acc.y);
                        acc.z = fmaf(e.z, w.z, acc.z);
                        acc.w = fmaf(e.w, w.w, acc.w);
                    }
                }
                if (act_d) acc = relu6(acc);
                *reinterpret_cast<float4*>(Ds + q * CS + cg * 4) = acc;
            }
        }
        __syncthreads();
    }
    CBLOCK_STAMP(3);

    // 4. projection partial over this block's CH channels (Ps aliases the staged input rows: free after step 2)
    float* Ps = Xs;
#if EXDWPW6_PUSH || EXDWPW6_BULK_ON
    float* Rv = bds + CH;  // the receive buffer after the layout (session 25's measuring builds)
#endif
#if EXDWPW6_PUSH
    // session 25's measuring build (-DEXDWPW6_PUSH=1, lane tiles only; never planned): each tile result goes straight
    // to the block that sums its unit (j = q * O4 + o4: block j / chunk), into that block's receive buffer Rv (after
    // the layout: [CL senders][chunk] float4, the host adds K.exdwpw6_push_bytes), so step 5 reads CL local float4s
    // per unit instead of CL remote ones (one DSMEM round trip each); the same sums in the same order (bit-identical)
    static_assert(EXDWPW6_PC >= 2, "EXDWPW6_PUSH: the lane-tile projections only");
    const int chunk = (TP * O4 + CL - 1) / CL;
    auto pstore = [&](int q, int o4, float4 v) {
        const int j = q * O4 + o4, ow = j / chunk;
        st_dsmem4(Rv + ((int)rank * chunk + j - ow * chunk) * 4, (unsigned)ow, v);
    };
#else
    auto pstore = [&](int q, int o4, float4 v) { *reinterpret_cast<float4*>(Ps + q * PS + o4 * 4) = v; };
#endif
    if (proj_cols >= 2) {
        // fuse v17 (proj_cols 2): lane tiles of 4 pixels x 4 output channels; fuse v19 (3): of 2 pixels, twice the
        // tiles (the 4-pixel tiles leave warps idle where TP / 4 x COUT / 4 < NT: ncu barrier stalls at batch 1)
#ifdef EXDWPW6_FIX_MODES
        // fuse v36 (fixed builds only; proj_cols is a constant here): 4 / 5 = 2 / 3's tiles in the lane-pair order
        if (proj_cols == 4) proj_tiles<4, CH, NT, EX_SNAKE_V34>(Ds, Wps, TP, COUT, CS, tid, pstore);
        else if (proj_cols == 5) proj_tiles<2, CH, NT, EX_SNAKE_V34>(Ds, Wps, TP, COUT, CS, tid, pstore);
        else
#endif
        if (proj_cols == 2) proj_tiles<4, CH, NT>(Ds, Wps, TP, COUT, CS, tid, pstore);
        else proj_tiles<2, CH, NT>(Ds, Wps, TP, COUT, CS, tid, pstore);
    } else if (proj_cols) {
        // fuse v16: lane = output channel o of a 32-wide column group g with its CH weights in registers; each warp
        // walks pixels chunk, chunk + P, ... (two at a time: two independent chains), every Ds row a warp-wide
        // broadcast. Per 4 channels of one pixel: 1 shared-memory wavefront for 128 FMAs (the pixel-lane mapping below
        // needs 2 per 16 FMAs per lane). Same products, same order over c: bit-identical to it.
        constexpr int NW = NT / 32;
        const int G = (COUT + 31) / 32, P = max(1, NW / G);
        for (int u = warp; u < G * P; u += NW) {
            const int g = u % G, chunk = u / G;
            const int o = g * 32 + lane;
            const bool on = o < COUT;
            float w[CH];
#pragma unroll
            for (int c = 0; c < CH; ++c) w[c] = on ? Wps[c * COUT + o] : 0.f;
            int q = chunk;
            for (; q + P < TP; q += 2 * P) {
                const float* d0 = Ds + q * CS;
                const float* d1 = d0 + P * CS;
                float a0 = 0.f, a1 = 0.f;
#pragma unroll
                for (int c = 0; c < CH; c += 4) {
                    const float4 x0 = *reinterpret_cast<const float4*>(d0 + c);
                    const float4 x1 = *reinterpret_cast<const float4*>(d1 + c);
                    a0 = fmaf(x0.x, w[c], a0);
                    a1 = fmaf(x1.x, w[c], a1);
                    a0 = fmaf(x0.y, w[c + 1], a0);
                    a1 = fmaf(x1.y, w[c + 1], a1);
                    a0 = fmaf(x0.z, w[c + 2], a0);
                    a1 = fmaf(x1.z, w[c + 2], a1);
                    a0 = fmaf(x0.w, w[c + 3], a0);
                    a1 = fmaf(x1.w, w[c + 3], a1);
                }
                if (on) {
                    Ps[q * PS + o] = a0;
                    Ps[(q + P) * PS + o] = a1;
                }
            }
            if (q < TP) {
                const float* d0 = Ds + q * CS;
                float a0 = 0.f;
#pragma unroll
                for (int c = 0; c < CH; c += 4) {
                    const float4 x0 = *reinterpret_cast<const float4*>(d0 + c);
                    a0 = fmaf(x0.x, w[c], a0);
                    a0 = fmaf(x0.y, w[c + 1], a0);
                    a0 = fmaf(x0.z, w[c + 2], a0);
                    a0 = fmaf(x0.w, w[c + 3], a0);
                }
                if (on) Ps[q * PS + o] = a0;
            }
        }
    } else {
        const int slabs = (TP + 31) / 32;
        for (int it = warp; it < slabs * O4; it += NT / 32) {
            const int slab = it / O4, o4 = it - slab * O4;
            const int q = slab * 32 + lane;
            if (q < TP) {
                float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
                const float* dr = Ds + q * CS;
                const float* wr = Wps + o4 * 4;
#pragma unroll
                for (int c = 0; c < CH; c += 4) {
                    const float4 d = *reinterpret_cast<const float4*>(dr + c);
                    fma4(acc, d.x, *reinterpret_cast<const float4*>(wr + (c + 0) * COUT));
                    fma4(acc, d.y, *reinterpret_cast<const float4*>(wr + (c + 1) * COUT));
                    fma4(acc, d.z, *reinterpret_cast<const float4*>(wr + (c + 2) * COUT));
                    fma4(acc, d.w, *reinterpret_cast<const float4*>(wr + (c + 3) * COUT));
                }
                *reinterpret_cast<float4*>(Ps + q * PS + o4 * 4) = acc;
            }
        }
    }

    // 5. the cluster's sum of slice `rank` (float4 units j = q * O4 + o4 of the tile) through distributed smem
    const int E4 = TP * O4;
#if EXDWPW6_PUSH
    const int lo = min(E4, (int)rank * chunk), hi = min(E4, lo + chunk);  // the units pushed here
#elif EXDWPW6_BULK_ON
    const int lo = q0 * O4, hi = q1 * O4;  // the units of pixels [q0, q1)
#else
    const int lo = (int)(((long long)rank * E4) / CL), hi = (int)(((long long)(rank + 1) * E4) / CL);
#endif
    const size_t obase = ((size_t)n * Ho + oy0) * Wo * COUT;  // the tile's output rows are contiguous
    const size_t wstile = (size_t)TR * Wo * COUT;             // workspace floats per (image, tile, cluster)
    float* wsb = ws + ((size_t)n * ST + s) * NG * wstile;
    // fuse v18 (red_pf): the epilogue's bias and residual of this thread's first unit requested before the cluster
    // barrier (R is a previous kernel's output: read after step 1's griddepcontrol.wait), so their L2 latency
    // overlaps the barrier; and the peers' partials below requested 8 at a time before they are added (the same
    // order: bit-identical)
    float4 bpf = make_float4(0.f, 0.f, 0.f, 0.f), rpf = bpf;
    if (red_pf && NG == 1 && lo + tid < hi) {
        const int j = lo + tid;
        bpf = *reinterpret_cast<const float4*>(bp + (j % O4) * 4);
        if (has_res) rpf = *reinterpret_cast<const float4*>(R + obase + (size_t)j * 4);
    }
#if EXDWPW6_BULK_ON
    // every thread's Ps stores visible to the async proxy, then thread r < CL sends block r its slice's rows
    fence_proxy_async_smem();
    __syncthreads();
    if (tid < CL) {
        const int a = min(TP, tid * cpp), b = min(TP, a + cpp);
        if (b > a) bulk_to_peer(Rv + (int)rank * cpp * PS, Ps + a * PS, (unsigned)((b - a) * PS * 4), smem_u32(&rbar), tid);
    }
#endif
    if constexpr (STAMP) __syncthreads();
    CBLOCK_STAMP(4);
#if EXDWPW6_BULK_ON
    if (q1 > q0) {  // the CL copies of this block's slice have landed (no cluster barrier: nothing else is shared)
        while (!mbar_try_wait(smem_u32(&rbar), 0)) {
        }
    }
#else
    cluster_arrive();
    cluster_wait();
#endif
    CBLOCK_STAMP(5);
    for (int j = lo + tid; j < hi; j += NT) {
        const int q = j / O4, o4 = j - q * O4;
        float4 v;
#if EXDWPW6_BULK_ON
        {  // the CL senders' rows of pixel q, local, added in the same order as the pulls below
            const float* src = Rv + (q - q0) * PS + o4 * 4;
            v = *reinterpret_cast<const float4*>(src);
#pragma unroll
            for (int b = 1; b < CL; ++b) add4(v, *reinterpret_cast<const float4*>(src + b * cpp * PS));
        }
#elif EXDWPW6_PUSH
        {  // the CL partials pushed here in step 4, local, added in the same order as the pulls below
            const float* src = Rv + (j - lo) * 4;
            v = *reinterpret_cast<const float4*>(src);
#pragma unroll
            for (int b = 1; b < CL; ++b) add4(v, *reinterpret_cast<const float4*>(src + b * chunk * 4));
        }
#else
        const float* src = Ps + q * PS + o4 * 4;
        if (red_pf) {
            constexpr int GB = CL < 8 ? CL : 8;
#pragma unroll
            for (int b0 = 0; b0 < CL; b0 += GB) {
                float4 part[GB];
#pragma unroll
                for (int b = 0; b < GB; ++b)
                    if (b0 + b < CL) part[b] = ld_dsmem4(src, (unsigned)(b0 + b));
#pragma unroll
                for (int b = 0; b < GB; ++b) {
                    if (b0 + b == 0) v = part[0];
                    else if (b0 + b < CL) add4(v, part[b]);
                }
            }
        } else {
            v = ld_dsmem4(src, 0);
#pragma unroll
            for (unsigned b = 1; b < CL; ++b) add4(v, ld_dsmem4(src, b));
        }
#endif
        if (NG == 1) {
            const bool first = red_pf && j == lo + tid;  // the prefetched unit
            add4(v, first ? bpf : *reinterpret_cast<const float4*>(bp + o4 * 4));
            if (act_p) v = relu6(v);
            if (has_res) add4(v, first ? rpf : *reinterpret_cast<const float4*>(R + obase + (size_t)j * 4));
            *reinterpret_cast<float4*>(Y + obase + (size_t)j * 4) = v;
        } else {
            *reinterpret_cast<float4*>(wsb + g * wstile + (size_t)j * 4) = v;
        }
    }
#if EXDWPW6_FLAGS
    if (EXDWPW6_FLAG_TRIGGER) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    if (NG == 1 && fout != nullptr) flag_set(fout + ((size_t)n * ST + s) * CL + rank, fep);
#endif
    if constexpr (STAMP) __syncthreads();
    CBLOCK_STAMP(6);
    cluster_arrive_relaxed();  // this block no longer reads its peers' shared memory
    // PDL: the next kernel may be scheduled from here on (triggered at the start, it measured 26 us slower e2e at
    // batch 1: its early blocks took SM slots and L2 bandwidth from this kernel's staging)
#if !PDL_TRIGGER_EARLY && !PDL_TRIGGER_AT_EXIT
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif

    // 6. across the NG clusters of this (image, tile): the last to arrive at slice `rank` adds them in order
    if (NG > 1) {
        const bool last = last_to_arrive(cnt + ((size_t)n * ST + s) * CL + rank, NG);
        CBLOCK_STAMP(7);
        if (last) {
            for (int j = lo + tid; j < hi; j += NT) {
                const int o4 = j % O4;
                // the cluster sums requested MAXG at a time (one L2 latency per MAXG, not per cluster), added in order
                float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
                for (int g0 = 0; g0 < NG; g0 += MAXG) {
                    float4 part[MAXG];
#pragma unroll
                    for (int gg = 0; gg < MAXG; ++gg)
                        if (g0 + gg < NG)
                            part[gg] = __ldcg(reinterpret_cast<const float4*>(wsb + (g0 + gg) * wstile + (size_t)j * 4));
#pragma unroll
                    for (int gg = 0; gg < MAXG; ++gg)
                        if (g0 + gg < NG) {
                            if (g0 + gg == 0) v = part[0];
                            else add4(v, part[gg]);
                        }
                }
                add4(v, *reinterpret_cast<const float4*>(bp + o4 * 4));
                if (act_p) v = relu6(v);
                if (has_res) add4(v, *reinterpret_cast<const float4*>(R + obase + (size_t)j * 4));
                *reinterpret_cast<float4*>(Y + obase + (size_t)j * 4) = v;
            }
#if EXDWPW6_FLAGS
            if (fout != nullptr) flag_set(fout + ((size_t)n * ST + s) * CL + rank, fep);  // (`last` is block-uniform)
#endif
        }
    }
    if constexpr (STAMP) __syncthreads();
    CBLOCK_STAMP(8);
    cluster_wait();
    CBLOCK_STAMP(9);
    if constexpr (STAMP) {
        if (tid == 0) st_row[11] = globaltimer();
    }
#undef CBLOCK_STAMP
}

}  // namespace cblock

// the exdwpw6 kernels' parameters (the stamped builds add one pointer)
#define EXDWPW6_PARAMS                                                                                              \
    const float *__restrict__ X, const float *__restrict__ We, const float *__restrict__ be,                        \
        const float *__restrict__ Wd, const float *__restrict__ bd, const float *__restrict__ Wp,                   \
        const float *__restrict__ bp, const float *R, float *Y, float *ws, int *cnt, int H, int W, int CIN, int CE, \
        int COUT, int Ho, int Wo, int S, int TR, int act_e, int act_d, int act_p, int has_res, int proj_cols,     \
        int ex_ks, int red_pf, int dw_segs
// the flag hand-off's five more (EXDWPW6_FLAGS measuring builds only)
#if EXDWPW6_FLAGS
#define EXDWPW6_FLAG_PARAMS , const unsigned *fin, unsigned *fout, const unsigned *fep, int ptr_, int pcl
#define EXDWPW6_FLAG_ARGS , nullptr, fin, fout, fep, ptr_, pcl
#else
#define EXDWPW6_FLAG_PARAMS
#define EXDWPW6_FLAG_ARGS
#endif
#define EXDWPW6_ARGS \
    X, We, be, Wd, bd, Wp, bp, R, Y, ws, cnt, H, W, CIN, CE, COUT, Ho, Wo, S, TR, act_e, act_d, act_p, has_res, proj_cols, \
        ex_ks, red_pf, dw_segs

// each build and its stamped twin (NAME_stamp: the same kernel + one pointer, 12 stamps per block; a measuring tool,
// scripts/cblock_sweep.py --stamps, never planned), NT threads per block: 256 (2 blocks per SM) or, fuse v15's _t512
// builds, 512 (1 per SM: twice the warps over the same items of each phase)
#define EXDWPW6_PLAIN(NAME, CH, CL, NT)                                                                             \
    extern "C" __global__ void __cluster_dims__(CL, 1, 1)                                                          \
        __launch_bounds__(NT, 512 / NT) NAME(EXDWPW6_PARAMS EXDWPW6_FLAG_PARAMS) {                                  \
        cblock::exdwpw6_body<CH, CL, false, NT>(EXDWPW6_ARGS EXDWPW6_FLAG_ARGS);                                    \
    }
#define EXDWPW6_KERNEL(NAME, CH, CL, NT)                                                                            \
    EXDWPW6_PLAIN(NAME, CH, CL, NT)                                                                                 \
    extern "C" __global__ void __cluster_dims__(CL, 1, 1) __launch_bounds__(NT, 512 / NT)                          \
        NAME##_stamp(EXDWPW6_PARAMS, unsigned long long* stamps) {                                                  \
        cblock::exdwpw6_body<CH, CL, true, NT>(EXDWPW6_ARGS, stamps);                                               \
    }

// fuse v22 / v24: with -DEXDWPW6_SPEC_ONLY or -DPWPOOL_SPEC_ONLY this file holds one fixed build (below) and none of
// the generic kernels
#if defined(EXDWPW6_SPEC_ONLY) || defined(PWPOOL_SPEC_ONLY)
#define CBLOCK_SPEC_ONLY
#endif

// fuse v22: this file compiled with -DEXDWPW6_SPEC_ONLY holds ONE exdwpw6 build, EXDWPW6_SPEC_NAME (EXDWPW6_SPEC_CH /
// _CL / _NT), with its modes fixed (-DEXDWPW6_FIX_MODES -DEXDWPW6_PC=.. _KS _RPF _DS; fuse v23 also the shape,
// -DEXDWPW6_FIX_SHAPE -DEXDWPW6_H=.. _W _CIN _CE _COUT _HO _WO _S _TR _ACTE _ACTD _ACTP _RES); the other kernels are
// left out (impls/_custom_kernels.py build_exdwpw6_spec)
#ifdef EXDWPW6_SPEC_ONLY
#ifndef EXDWPW6_FIX_MODES
#error "EXDWPW6_SPEC_ONLY needs EXDWPW6_FIX_MODES and the modes"
#endif
EXDWPW6_PLAIN(EXDWPW6_SPEC_NAME, EXDWPW6_SPEC_CH, EXDWPW6_SPEC_CL, EXDWPW6_SPEC_NT)
#ifdef EXDWPW6_STAMP_NAME
// a measuring build (scripts/cblock_sweep.py --stamps --plan, never planned): the fixed build's stamped twin
extern "C" __global__ void __cluster_dims__(EXDWPW6_SPEC_CL, 1, 1)
    __launch_bounds__(EXDWPW6_SPEC_NT, 512 / EXDWPW6_SPEC_NT) EXDWPW6_STAMP_NAME(EXDWPW6_PARAMS,
                                                                              unsigned long long* stamps) {
    cblock::exdwpw6_body<EXDWPW6_SPEC_CH, EXDWPW6_SPEC_CL, true, EXDWPW6_SPEC_NT>(EXDWPW6_ARGS, stamps);
}
#endif
#endif
#ifndef CBLOCK_SPEC_ONLY

EXDWPW6_KERNEL(exdwpw6_c8, 8, 8, 256)
EXDWPW6_KERNEL(exdwpw6_c12, 12, 8, 256)
EXDWPW6_KERNEL(exdwpw6_c16, 16, 8, 256)
// fuse v13's wider builds (K.EXDWPW6_WIDE): fewer clusters per row tile (NG), so less or no global hand-off. c24 / c40:
// 24 / 40 channels per block, clusters of 8 (c24: CE 192 NG = 1; c40: CE 960 NG = 3). c<CH>x16: clusters of 16,
// non-portable (the host sets CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED before the first launch): c12x16
// CE 192 NG = 1, 384 NG = 2, 576 NG = 3, 960 NG = 5; c24x16 CE 384 NG = 1; c20x16 CE 960 NG = 3; c36x16 CE 576 NG = 1
EXDWPW6_KERNEL(exdwpw6_c24, 24, 8, 256)
EXDWPW6_KERNEL(exdwpw6_c40, 40, 8, 256)
EXDWPW6_KERNEL(exdwpw6_c12x16, 12, 16, 256)
EXDWPW6_KERNEL(exdwpw6_c20x16, 20, 16, 256)
EXDWPW6_KERNEL(exdwpw6_c24x16, 24, 16, 256)
EXDWPW6_KERNEL(exdwpw6_c36x16, 36, 16, 256)
// fuse v14's builds (K.EXDWPW6_V14) for the 56x56 blocks: CE 144 is no multiple of 8 x 4, so clusters of 4, 6 and 12
// (12: non-portable) take it with NG = 1 (c36x4, c24x6, c12x12); CE 96 (the stride-2 block on the 112x112 map) with
// NG = 1 at 24 / 16 / 8 channels per block (c24x4, c16x6, c8x12; c12 already does at 12). On the other blocks they
// are more tuner candidates (e.g. CE 576: c12x12, c24x6, c36x4 NG = 4; CE 960: c24x4, c16x6, c8x12 NG = 10)
EXDWPW6_KERNEL(exdwpw6_c12x12, 12, 12, 256)
EXDWPW6_KERNEL(exdwpw6_c24x6, 24, 6, 256)
EXDWPW6_KERNEL(exdwpw6_c36x4, 36, 4, 256)
EXDWPW6_KERNEL(exdwpw6_c24x4, 24, 4, 256)
EXDWPW6_KERNEL(exdwpw6_c16x6, 16, 6, 256)
EXDWPW6_KERNEL(exdwpw6_c8x12, 8, 12, 256)
// fuse v15 (K.EXDWPW6_T512): v13's builds at 512 threads
EXDWPW6_KERNEL(exdwpw6_c8_t512, 8, 8, 512)
EXDWPW6_KERNEL(exdwpw6_c12_t512, 12, 8, 512)
EXDWPW6_KERNEL(exdwpw6_c16_t512, 16, 8, 512)
EXDWPW6_KERNEL(exdwpw6_c24_t512, 24, 8, 512)
EXDWPW6_KERNEL(exdwpw6_c40_t512, 40, 8, 512)
EXDWPW6_KERNEL(exdwpw6_c12x16_t512, 12, 16, 512)
EXDWPW6_KERNEL(exdwpw6_c20x16_t512, 20, 16, 512)
EXDWPW6_KERNEL(exdwpw6_c24x16_t512, 24, 16, 512)
EXDWPW6_KERNEL(exdwpw6_c36x16_t512, 36, 16, 512)
// fuse v39 (K.EXDWPW6_V39): CE 960 with one cluster of 16 per row tile, 60 channels per block, 512 threads only
EXDWPW6_KERNEL(exdwpw6_c60x16_t512, 60, 16, 512)

#endif  // CBLOCK_SPEC_ONLY (the generic exdwpw6 builds)

// fuse v24: with -DPWPOOL_SPEC_ONLY this file holds only pwpool_c8 as PWPOOL_SPEC_NAME with its shape fixed
// (-DPWPOOL_FIX_SHAPE -DPWPOOL_HW=.. _K _COUT _ACT; impls/_custom_kernels.py fixed_defines); fuse v31: with
// -DPWPOOL_SPEC_CFG_FC=1 too, only pwpool_fc_c8 as PWPOOL_SPEC_NAME (its shape adds -DPWPOOL_OUT=..); fuse v54: with
// -DPWPOOL_SPEC_CFG_C10=1, only pwpool_c10 as PWPOOL_SPEC_NAME (pwpool_c8's shape); fuse v55: with
// -DPWPOOL_SPEC_CFG_FC=2, only pwpool_fc_c8e as PWPOOL_SPEC_NAME (pwpool_fc_c8's shape)
#if !defined(CBLOCK_SPEC_ONLY) || defined(PWPOOL_SPEC_ONLY)
#ifdef PWPOOL_SPEC_ONLY
#ifndef PWPOOL_FIX_SHAPE
#error "PWPOOL_SPEC_ONLY needs PWPOOL_FIX_SHAPE and the shape"
#endif
#if defined(PWPOOL_SPEC_CFG_FC) && PWPOOL_SPEC_CFG_FC == 2
#define PWPOOL_FC_C8E_NAME PWPOOL_SPEC_NAME
#elif defined(PWPOOL_SPEC_CFG_FC)
#define PWPOOL_FC_C8_NAME PWPOOL_SPEC_NAME
#elif defined(PWPOOL_SPEC_CFG_C10)
#define PWPOOL_C10_NAME PWPOOL_SPEC_NAME
#else
#define PWPOOL_C8_NAME PWPOOL_SPEC_NAME
#endif
#else
#define PWPOOL_C8_NAME pwpool_c8
#define PWPOOL_FC_C8_NAME pwpool_fc_c8
#define PWPOOL_FC_C8E_NAME pwpool_fc_c8e
#define PWPOOL_C10_NAME pwpool_c10
#endif
// pwpool_c8 (fuse v9, beside kernels/pool.cu pwpool): the head's pointwise conv (+ bias, ReLU6) and the global average
// pool as one kernel on thread-block clusters of 8 that split K. pwpool (one block per 8 channels, all of K) stages the
// whole input map in every block: 160 blocks x 62.7 KB per image at 320 -> 1280 on 7x7, 11.7 MB of L2 -> SM traffic
// (measured 10.1 us at batch 1, 39 us at batch 8 on the H200). Here a cluster owns 64 output channels and block `rank`
// the k slice [rank * KW, rank * KW + KW) (KW = 4 * ceil(K / 32)): it stages only that slice of the input rows and
// of the 64 weight columns (1/8 of the map per block, 20 clusters per image: 1.25 MB), warp w computes channels
// [w * 8, w * 8 + 8) for pixels lane and lane + 32 over the slice, the partial map goes to shared memory, and after
// the cluster barrier block `rank` sums channels [rank * 8, rank * 8 + 8) of the 8 blocks' partials through
// distributed shared memory (fixed order 0..7), + bias, ReLU6, then the pixels in a fixed order / HW: bit-identical
// runs. grid (8 * COUT / 64, N), cluster (8, 1, 1), 256 threads. Needs HW <= 64, K % 4 == 0, COUT % 64 == 0, 16-byte
// aligned X / W. Dynamic shared memory (floats, K.pwpool_c8_smem): HW * (KW + 4) + KW * 64 + 64 * 68.
//
// pwpool_fc_c8 (fuse v31): pwpool_c8 + the classifier L = pool @ Wl + bl (Wl = W^T, (COUT, OUT)) in the same kernel,
// instead of linear v5's GEMV as a second launch (2.8 us of the batch-1 graph on the H200, session 21):
//   A. pwpool_c8 as above; block `rank` ends with the means of the cluster's channels [rank * 8, rank * 8 + 8).
//   B. each block pushes its 8 means into pv of every block of the cluster (st.shared::cluster; the second cluster
//      barrier, a release one here, publishes them), then block `rank` computes the cluster's partial logits of the
//      columns [rank * OC, rank * OC + OC) (OC = 4 * ceil(OUT / 32): 128 at OUT 1000) over its 64 channels: warp w
//      the channels [w * 8, w * 8 + 8) in order, the 8 warps' partials added in order -> ws[n][cluster][columns].
//      Its slice of Wl (64 rows x OC, 32 KB) is requested by cp.async right after the input rows, in a cp.async
//      group of its own that phase A does not wait for: it arrives during phase A.
//   C. per (image, rank) a ticket counter (exdwpw6's hand-off, section 6): the last of the COUT / 64 clusters to
//      arrive resets it to 0 (ready for the next launch / graph replay) and adds the clusters' partials in cluster
//      order 0..COUT/64-1 (FC_MAXG requested at a time), + bl -> L. Fixed order everywhere: bit-identical runs.
//   It does not trigger its dependents (pwpool_c8 does so at entry, for the GEMV): in a plan nothing follows it but
//   the next replay's first kernel, launched plainly. It reads nothing the previous kernel writes before its
//   griddepcontrol.wait (a no-op in a plain launch, as fuse v31 launches it).
//   Needs pwpool_c8's conditions and OUT % 4 == 0, 16-byte aligned Wl, ws of N * COUT / 64 * OUT floats, cnt of N * 8
//   ints, zero before the first launch (every launch leaves them zero). Dynamic shared memory (floats,
//   K.pwpool_fc_c8_smem): pwpool_c8's + 64 * OC (the Wl slice) + 64 (pv) + 8 * OC (the warps' partials).
namespace cblock {

__device__ __forceinline__ void st_dsmem(float* p, unsigned rank, float v) {
    unsigned ra;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(smem_u32(p)), "r"(rank));
    asm volatile("st.shared::cluster.f32 [%0], %1;\n" ::"r"(ra), "f"(v) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
// pwpool_c10 (fuse v54): 8-byte copies (its weight columns in padded warp groups) and 8-byte peer loads
__device__ __forceinline__ void cp_async8(void* s, const void* g) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(smem_u32(s)), "l"(g));
}
__device__ __forceinline__ float2 ld_dsmem2(const float* p, unsigned rank) {
    unsigned ra;
    float2 v;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(smem_u32(p)), "r"(rank));
    asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(ra) : "memory");
    return v;
}
// pwpool_c10: rows2x8_dot with a warp's 10 columns at wr + k * 96 (16-byte aligned: float4, float4, float2)
__device__ __forceinline__ void rows2x10_dot(const float* x0, const float* x1, const float* wr, int kn,
                                             float (&a0)[10], float (&a1)[10]) {
#pragma unroll 2
    for (int k = 0; k < kn; k += 4) {
        const float4 u = *reinterpret_cast<const float4*>(x0 + k);
        const float4 v = *reinterpret_cast<const float4*>(x1 + k);
        const float us[4] = {u.x, u.y, u.z, u.w}, vs[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float* w = wr + (k + j) * 96;
            const float4 wa = *reinterpret_cast<const float4*>(w);
            const float4 wb = *reinterpret_cast<const float4*>(w + 4);
            const float2 wc = *reinterpret_cast<const float2*>(w + 8);
            const float w10[10] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w, wc.x, wc.y};
#pragma unroll
            for (int c = 0; c < 10; ++c) {
                a0[c] = fmaf(us[j], w10[c], a0[c]);
                a1[c] = fmaf(vs[j], w10[c], a1[c]);
            }
        }
    }
}

constexpr int FC_MAXG = 24;  // pwpool_fc_c8's last block: the clusters' partials requested FC_MAXG at a time

// fuse v55's pwpool_fc_c8e: the classifier slice Ls by bulk copies (one per row) onto an mbarrier of this block
__device__ __forceinline__ void bulk_g2s(void* dst, const void* src, unsigned bytes, unsigned mbar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(smem_u32(dst)),
        "l"(src), "r"(bytes), "r"(mbar)
        : "memory");
}

// the body of pwpool_c8 (FC false; Wl, bl, L, ws, cnt and OUT unused) and of fuse v31's pwpool_fc_c8 (FC true); LE
// (fuse v55's pwpool_fc_c8e, FC only): the classifier slice Ls requested before griddepcontrol.wait, by bulk copies
// onto an mbarrier that phase B waits on, instead of a cp.async group after the input rows (the same values, so the
// same sums)
template <bool FC, bool LE = false>
__device__ __forceinline__ void pwpool_c8_body(const float* __restrict__ X, const float* __restrict__ Wt,
                                               const float* __restrict__ bias, float* __restrict__ Y,
                                               const float* __restrict__ Wl, const float* __restrict__ bl,
                                               float* __restrict__ L, float* __restrict__ ws, int* __restrict__ cnt,
                                               int HW, int K, int COUT, int OUT, int act) {
    static_assert(FC || !LE, "LE: the fused head's classifier slice");
    constexpr int PS = 64 + 4;  // partial-map row stride (floats)
    extern __shared__ __align__(16) float sm[];
    __shared__ float q[64][9];
    __shared__ __align__(8) unsigned long long ls_bar;  // LE: Ls's bulk copies complete on it
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned rank = cluster_rank();
    const int cb = (blockIdx.x >> 3) * 64, n = blockIdx.y;  // the cluster's first output channel
    const int KW = 4 * ((K + 31) / 32);
    const int kb = min(K, (int)rank * KW), ke = min(K, kb + KW), kw4 = (ke - kb) / 4;
    const int XS = KW + 4;
    // PDL: the classifier after this kernel (linear v5's GEMV, launched with programmatic dependent launch) may start
    // now and request its weights while this kernel runs; it reads this kernel's output only after its
    // griddepcontrol.wait (a no-op here where the next kernel is launched plainly)
    if constexpr (!FC) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    float* Xs = sm;              // [HW][XS]: the k slice of this image's input rows
    float* Ws = Xs + HW * XS;    // [KW][64]: the k slice of the cluster's 64 weight columns
    float* Ps = Ws + KW * 64;    // [64][PS]: this block's partial map
    const float* xg = X + (size_t)n * HW * K + kb;
#pragma unroll 1
    for (int i = tid; i < (ke - kb) * 16; i += NT) {  // 16 float4 per k row
        const int k = i >> 4, j = i & 15;
        cp_async16(Ws + k * 64 + j * 4, Wt + (size_t)(kb + k) * COUT + cb + j * 4);
    }
    if constexpr (FC) cp_async_commit();
    // fuse v31: the classifier's rows of the cluster's 64 channels, columns [ob, ob + 4 * oc4) -> Ls [64][OC], a
    // cp.async group after the input rows' (phase A waits for all groups but this one); LE: requested here already
    const int OC = 4 * ((OUT + 31) / 32), OC4 = OC / 4;
    const int ob = min(OUT, (int)rank * OC), oc4 = (min(OUT, ob + OC) - ob) / 4;
    float* Ls = Ps + 64 * PS;  // [64][OC]
    float* pv = Ls + 64 * OC;  // [64]: the cluster's pooled channels
    float* rs = pv + 64;       // [8][OC]: the warps' partial logits
    if constexpr (LE) {  // one bulk copy per row of 16 * oc4 bytes (16-byte aligned: OUT % 4 == 0, OC % 4 == 0)
        const unsigned bar = smem_u32(&ls_bar);
        if (tid == 0) {
            mbar_init(bar, 1);
            fence_mbar_init();
            mbar_expect_tx(bar, 64u * 16u * (unsigned)oc4);  // (this block's one arrival; oc4 0: complete now)
        }
        __syncthreads();
        if (tid < 64 && oc4 > 0) bulk_g2s(Ls + tid * OC, Wl + (size_t)(cb + tid) * OUT + ob, 16u * oc4, bar);
    }
    // fuse v12 launches this kernel by PDL at batch 1: the weights above are requested while the previous kernel
    // still runs; its output X is read only after this wait (a no-op in a plain launch)
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#pragma unroll 1
    for (int i = tid; i < HW * kw4; i += NT) {
        const int p = i / kw4, j = i - p * kw4;
        cp_async16(Xs + p * XS + j * 4, xg + (size_t)p * K + j * 4);
    }
    if constexpr (FC && !LE) {
        cp_async_commit();
        const float* lg = Wl + (size_t)cb * OUT + ob;
#pragma unroll 1
        for (int i = tid; i < 64 * OC4; i += NT) {
            const int c = i / OC4, j = i - c * OC4;
            if (j < oc4) cp_async16(Ls + c * OC + j * 4, lg + (size_t)c * OUT + j * 4);
        }
        cp_async_commit();
        cp_async_wait_1();
    } else {
        cp_async_wait_all();
    }
    __syncthreads();
    float a0[8], a1[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) a0[c] = a1[c] = 0.0f;
    const float* x0 = Xs + min(lane, HW - 1) * XS;  // lanes past HW read a valid row; their sums are never used
    const float* x1 = Xs + min(lane + 32, HW - 1) * XS;
    rows2x8_dot<true>(x0, x1, Ws + warp * 8, ke - kb, a0, a1);
    float* pr = Ps + warp * 8;
    *reinterpret_cast<float4*>(pr + lane * PS) = make_float4(a0[0], a0[1], a0[2], a0[3]);
    *reinterpret_cast<float4*>(pr + lane * PS + 4) = make_float4(a0[4], a0[5], a0[6], a0[7]);
    *reinterpret_cast<float4*>(pr + (lane + 32) * PS) = make_float4(a1[0], a1[1], a1[2], a1[3]);
    *reinterpret_cast<float4*>(pr + (lane + 32) * PS + 4) = make_float4(a1[4], a1[5], a1[6], a1[7]);
    cluster_arrive();
    cluster_wait();
    // block `rank`: channels [rank * 8, rank * 8 + 8) of the cluster, summed over the 8 blocks in order
    if (tid < 2 * HW) {
        const int p = tid >> 1, h = tid & 1;
        const float* src = Ps + p * PS + rank * 8 + h * 4;
        float4 parts[8];
#pragma unroll
        for (unsigned b = 0; b < 8; ++b) parts[b] = ld_dsmem4(src, b);
        float4 s = parts[0];
#pragma unroll
        for (int b = 1; b < 8; ++b) add4(s, parts[b]);
        add4(s, *reinterpret_cast<const float4*>(bias + cb + rank * 8 + h * 4));
        if (act) s = relu6(s);
        q[p][h * 4 + 0] = s.x;
        q[p][h * 4 + 1] = s.y;
        q[p][h * 4 + 2] = s.z;
        q[p][h * 4 + 3] = s.w;
    }
    if constexpr (!FC) cluster_arrive_relaxed();  // this block no longer reads its peers' shared memory
    __syncthreads();
    if (tid < 32) {  // lane = g * 8 + c: channel c, pixels g, g + 4, ...; then the 4 groups in a fixed shuffle tree
        const int c = tid & 7, g = tid >> 3;
        float t = 0.0f;
#pragma unroll 4
        for (int p = g; p < HW; p += 4) t += q[p][c];
        t += __shfl_xor_sync(0xffffffffu, t, 8);
        t += __shfl_xor_sync(0xffffffffu, t, 16);
        if constexpr (FC) {
            // every lane of channel c holds the same sum (the xor tree adds the same pairs): lane g * 8 + c pushes
            // the mean into pv[rank * 8 + c] of blocks g and g + 4
            const float m = t / (float)HW;
            st_dsmem(pv + rank * 8 + c, (unsigned)g, m);
            st_dsmem(pv + rank * 8 + c, (unsigned)g + 4, m);
            if (tid < 8) Y[(size_t)n * COUT + cb + rank * 8 + tid] = m;
        } else {
            if (tid < 8) Y[(size_t)n * COUT + cb + rank * 8 + tid] = t / (float)HW;
        }
    }
    if constexpr (!FC) {
        cluster_wait();
    } else {
        // B. every block's means pushed (release) and its peers' partial maps read; after this wait no block touches
        // another's shared memory again (no barrier before exit). This thread's Ls copies done before its arrive (LE:
        // the block's bulk copies complete on ls_bar, waited for by every thread that reads Ls).
        if constexpr (LE) {
            while (!mbar_try_wait(smem_u32(&ls_bar), 0)) {
            }
        } else {
            cp_async_wait_all();
        }
        cluster_arrive();
        cluster_wait();
        const float4* L4 = reinterpret_cast<const float4*>(Ls);
        float4* r4 = reinterpret_cast<float4*>(rs);
        for (int j = lane; j < oc4; j += 32) {  // warp w: channels [w * 8, w * 8 + 8) in order
            float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
            for (int c = 0; c < 8; ++c) fma4(a, pv[warp * 8 + c], L4[(warp * 8 + c) * OC4 + j]);
            r4[warp * OC4 + j] = a;
        }
        __syncthreads();
        const int ncl = COUT / 64, cl = blockIdx.x >> 3;
        float* wsn = ws + (size_t)n * ncl * OUT;  // [ncl][OUT]: this image's cluster partials
        for (int j = tid; j < oc4; j += NT) {  // the 8 warps' partials in order
            float4 s = r4[j];
#pragma unroll
            for (int w = 1; w < 8; ++w) add4(s, r4[w * OC4 + j]);
            *reinterpret_cast<float4*>(wsn + (size_t)cl * OUT + ob + j * 4) = s;
        }
        // C. the last of the ncl clusters to arrive at (image, rank) adds their partials in order (exdwpw6's hand-off)
        if (last_to_arrive(cnt + n * 8 + rank, ncl)) {
            for (int o = ob + tid; o < ob + 4 * oc4; o += NT) {
                const float b = bl[o];
                float v = 0.0f;
                for (int g0 = 0; g0 < ncl; g0 += FC_MAXG) {
                    float part[FC_MAXG];
#pragma unroll
                    for (int gg = 0; gg < FC_MAXG; ++gg)
                        if (g0 + gg < ncl) part[gg] = __ldcg(wsn + (size_t)(g0 + gg) * OUT + o);
#pragma unroll
                    for (int gg = 0; gg < FC_MAXG; ++gg)
                        if (g0 + gg < ncl) v += part[gg];
                }
                L[(size_t)n * OUT + o] = v + b;
            }
        }
    }
}

// fuse v54's pwpool_c10: pwpool_c8 with 80 output channels per cluster of 8 (COUT / 80 clusters: 16 at COUT 1280,
// 128 blocks, one per SM on 132 SMs, where pwpool_c8's 160 put two on some SMs). The same k slices (KW) per rank; warp
// w computes channels [w * 10, w * 10 + 10) of the cluster for pixels lane and lane + 32 (rows2x10_dot: the weight
// columns staged in warp groups of 12 floats, 96 per k row, by 8-byte cp.async); block `rank` sums channels
// [rank * 10, rank * 10 + 10) of the 8 blocks' partials in order 0..7 (float2 peer loads), + bias, ReLU6, then each
// channel's pixels in 4 interleaved groups (p = g, g + 4, ..) added as (t0 + t1) + (t2 + t3): pwpool_c8's sums and
// order channel by channel, so the same bits. Needs HW <= 64, K % 4 == 0, COUT % 80 == 0, 16-byte aligned X / Wt,
// 8-byte aligned bias. Dynamic shared memory (floats, K.pwpool_c10_smem): HW * (KW + 4) + KW * 96 + 64 * 84.
__device__ __forceinline__ void pwpool_c10_body(const float* __restrict__ X, const float* __restrict__ Wt,
                                                const float* __restrict__ bias, float* __restrict__ Y, int HW, int K,
                                                int COUT, int act) {
    constexpr int CPC = 80, CPW = 10, WG = 12, WR = 8 * WG, PS = CPC + 4;
    extern __shared__ __align__(16) float sm[];
    __shared__ float q[64][CPW + 1];
    __shared__ float tq[4][CPW];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const unsigned rank = cluster_rank();
    const int cb = (blockIdx.x >> 3) * CPC, n = blockIdx.y;  // the cluster's first output channel
    const int KW = 4 * ((K + 31) / 32);
    const int kb = min(K, (int)rank * KW), ke = min(K, kb + KW), kw4 = (ke - kb) / 4;
    const int XS = KW + 4;
    // PDL: the classifier GEMV after this kernel may start now (pwpool_c8's trigger at entry)
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    float* Xs = sm;            // [HW][XS]: the k slice of this image's input rows
    float* Ws = Xs + HW * XS;  // [KW][WR]: the k slice of the cluster's 80 weight columns, warp w's 10 at w * WG
    float* Ps = Ws + KW * WR;  // [64][PS]: this block's partial map
    const float* xg = X + (size_t)n * HW * K + kb;
#pragma unroll 1
    for (int i = tid; i < (ke - kb) * (CPC / 2); i += NT) {  // 40 float2 per k row
        const int k = i / (CPC / 2), c = 2 * (i - k * (CPC / 2));
        cp_async8(Ws + k * WR + (c / CPW) * WG + c % CPW, Wt + (size_t)(kb + k) * COUT + cb + c);
    }
    // by PDL: the weights above are requested while the previous kernel still runs; X only after this wait
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#pragma unroll 1
    for (int i = tid; i < HW * kw4; i += NT) {
        const int p = i / kw4, j = i - p * kw4;
        cp_async16(Xs + p * XS + j * 4, xg + (size_t)p * K + j * 4);
    }
    cp_async_wait_all();
    __syncthreads();
    float a0[CPW], a1[CPW];
#pragma unroll
    for (int c = 0; c < CPW; ++c) a0[c] = a1[c] = 0.0f;
    const float* x0 = Xs + min(lane, HW - 1) * XS;  // lanes past HW read a valid row; their sums are never used
    const float* x1 = Xs + min(lane + 32, HW - 1) * XS;
    rows2x10_dot(x0, x1, Ws + warp * WG, ke - kb, a0, a1);
    float* pr = Ps + warp * CPW;
#pragma unroll
    for (int c = 0; c < CPW; c += 2) {
        *reinterpret_cast<float2*>(pr + lane * PS + c) = make_float2(a0[c], a0[c + 1]);
        *reinterpret_cast<float2*>(pr + (lane + 32) * PS + c) = make_float2(a1[c], a1[c + 1]);
    }
    cluster_arrive();
    cluster_wait();
    // block `rank`: channels [rank * 10, rank * 10 + 10) of the cluster, summed over the 8 blocks in order
#pragma unroll 1
    for (int i = tid; i < (CPW / 2) * HW; i += NT) {
        const int p = i / (CPW / 2), h = i - p * (CPW / 2);
        const float* src = Ps + p * PS + rank * CPW + h * 2;
        float2 parts[8];
#pragma unroll
        for (unsigned b = 0; b < 8; ++b) parts[b] = ld_dsmem2(src, b);
        float2 s = parts[0];
#pragma unroll
        for (int b = 1; b < 8; ++b) s.x += parts[b].x, s.y += parts[b].y;
        const float2 bb = *reinterpret_cast<const float2*>(bias + cb + rank * CPW + h * 2);
        s.x += bb.x, s.y += bb.y;
        if (act) s.x = relu6(s.x), s.y = relu6(s.y);
        q[p][h * 2] = s.x;
        q[p][h * 2 + 1] = s.y;
    }
    cluster_arrive_relaxed();  // this block no longer reads its peers' shared memory
    __syncthreads();
    if (tid < 4 * CPW) {  // channel c, pixels g, g + 4, ..: pwpool_c8's groups
        const int g = tid / CPW, c = tid - g * CPW;
        float t = 0.0f;
#pragma unroll 4
        for (int p = g; p < HW; p += 4) t += q[p][c];
        tq[g][c] = t;
    }
    __syncthreads();
    if (tid < CPW)
        Y[(size_t)n * COUT + cb + rank * CPW + tid] = ((tq[0][tid] + tq[1][tid]) + (tq[2][tid] + tq[3][tid])) / (float)HW;
    cluster_wait();
}

}  // namespace cblock

#ifdef PWPOOL_C8_NAME
extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(256)
    PWPOOL_C8_NAME(const float* __restrict__ X, const float* __restrict__ Wt, const float* __restrict__ bias,
                   float* __restrict__ Y, int HW, int K, int COUT, int act) {
#ifdef PWPOOL_FIX_SHAPE
    // fuse v24's build: the map size, the channel counts and the activation as compile-time constants (the k slice
    // and its loops' trip counts become constants); the host passes the same values
    HW = PWPOOL_HW, K = PWPOOL_K, COUT = PWPOOL_COUT, act = PWPOOL_ACT;
#endif
    cblock::pwpool_c8_body<false>(X, Wt, bias, Y, nullptr, nullptr, nullptr, nullptr, nullptr, HW, K, COUT, 0, act);
}
#endif  // PWPOOL_C8_NAME

#ifdef PWPOOL_FC_C8_NAME
extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(256)
    PWPOOL_FC_C8_NAME(const float* __restrict__ X, const float* __restrict__ Wt, const float* __restrict__ bias,
                      float* __restrict__ Y, const float* __restrict__ Wl, const float* __restrict__ bl,
                      float* __restrict__ L, float* __restrict__ ws, int* __restrict__ cnt, int HW, int K, int COUT,
                      int OUT, int act) {
#ifdef PWPOOL_FIX_SHAPE
    // fuse v31's build: as fuse v24's pwpool_c8 build, and the classifier's width
    HW = PWPOOL_HW, K = PWPOOL_K, COUT = PWPOOL_COUT, OUT = PWPOOL_OUT, act = PWPOOL_ACT;
#endif
    cblock::pwpool_c8_body<true>(X, Wt, bias, Y, Wl, bl, L, ws, cnt, HW, K, COUT, OUT, act);
}
#endif  // PWPOOL_FC_C8_NAME

#ifdef PWPOOL_FC_C8E_NAME
// fuse v55: pwpool_fc_c8 with its classifier slice requested before griddepcontrol.wait (LE)
extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(256)
    PWPOOL_FC_C8E_NAME(const float* __restrict__ X, const float* __restrict__ Wt, const float* __restrict__ bias,
                       float* __restrict__ Y, const float* __restrict__ Wl, const float* __restrict__ bl,
                       float* __restrict__ L, float* __restrict__ ws, int* __restrict__ cnt, int HW, int K, int COUT,
                       int OUT, int act) {
#ifdef PWPOOL_FIX_SHAPE
    HW = PWPOOL_HW, K = PWPOOL_K, COUT = PWPOOL_COUT, OUT = PWPOOL_OUT, act = PWPOOL_ACT;
#endif
    cblock::pwpool_c8_body<true, true>(X, Wt, bias, Y, Wl, bl, L, ws, cnt, HW, K, COUT, OUT, act);
}
#endif  // PWPOOL_FC_C8E_NAME

#ifdef PWPOOL_C10_NAME
extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(256)
    PWPOOL_C10_NAME(const float* __restrict__ X, const float* __restrict__ Wt, const float* __restrict__ bias,
                    float* __restrict__ Y, int HW, int K, int COUT, int act) {
#ifdef PWPOOL_FIX_SHAPE
    HW = PWPOOL_HW, K = PWPOOL_K, COUT = PWPOOL_COUT, act = PWPOOL_ACT;  // fuse v54's build: as pwpool_c8's
#endif
    cblock::pwpool_c10_body(X, Wt, bias, Y, HW, K, COUT, act);
}
#endif  // PWPOOL_C10_NAME

#endif  // pwpool_c8, pwpool_fc_c8, pwpool_c10

#ifndef CBLOCK_SPEC_ONLY
// linear_c8 (linear v4, beside kernels/linear.cu): the classifier y = x @ W^T + b above the GEMV's batches (N > 8)
// as ONE kernel: pwpool_c8's scheme with the batch rows in place of the pixels and no pool. Before it the batch-64
// classifier was a split-K GEMM + its reduce kernel, 2 launches at 64 x 1000 x 1280 (H200, alone: 12.9 + ... = 15.0
// us together, scripts/linear_time.py; the GEMM tiles cannot fill 132 SMs with 1000 columns, hence split-K). Here a
// cluster of 8 blocks owns 64 output columns [cb, cb + 64) of 64 batch rows [rb, rb + 64) and block `rank` the k slice
// [rank * KW, rank * KW + KW) (KW = 4 * ceil(K / 32)), split in two halves over the block's two warp groups; warp
// (h, w) computes columns [w * 8, w * 8 + 8) for rows lane and lane + 32 (lane only where the tile has <= 32 rows)
// over half h, the two partial tiles go to shared memory, and after the cluster barrier block `rank` sums columns
// [rank * 8, rank * 8 + 8) of the 16 partials through distributed shared memory (fixed order: block 0..7, half 0..1),
// + bias: bit-identical runs, no workspace, no second launch. grid (8 * ceil(COUT / 64), ceil(N / 64)), cluster (8, 1,
// 1), 512 threads. Needs K % 4 == 0, COUT % 8 == 0 (the last cluster's columns past COUT are zero weights, never
// stored), 16-byte aligned X / Wt / bias / Y. Wt is W^T, (K, COUT). Dynamic shared memory (floats, K.linear_c8_smem):
// 64 * (KW + 4) + KW * 64 + 2 * 64 * 68 (> 114 KB at K = 1280: one block per SM, so the 16 clusters of batch 64 take
// 128 SMs).
// MEASURED SLOWER than the GEMM path at every batch (H200, session 13, scripts/linear_time.py, us alone, GEMM path /
// this): batch 16 12.2 / 14.1, 64 14.9 / 20.6, 256 28.0 / 52.7. ncu at batch 64: at most 15 clusters of 8 fit at
// once with one block per SM (so the 16th runs in a second wave), 0.7 eligible warps per scheduler. The first form
// (256 threads, one partial per block, two blocks per SM possible: 17.2 us) had IPC 1.7 and blocks placed two per SM
// on some SMs and none on others. The x fragment loads (one row per lane: 4 shared-memory wavefronts each) against 16
// FMAs per k make it a poor micro-kernel next to the GEMM's 8x16 register tiles. Kept as linear v4, not the default.

extern "C" __global__ void __cluster_dims__(8, 1, 1) __launch_bounds__(512)
    linear_c8(const float* __restrict__ X, const float* __restrict__ Wt, const float* __restrict__ bias,
              float* __restrict__ Y, int N, int K, int COUT) {
    using namespace cblock;
    constexpr int PS = 64 + 4;  // partial-tile row stride (floats)
    constexpr int NT2 = 512;
    extern __shared__ __align__(16) float sm[];
    const int tid = threadIdx.x, lane = tid & 31, warp = (tid >> 5) & 7, half = tid >> 8;
    const unsigned rank = cluster_rank();
    const int cb = (blockIdx.x >> 3) * 64, rb = blockIdx.y * 64;  // the cluster's first column and first row
    const int rows = min(64, N - rb), c4 = min(64, COUT - cb) / 4;
    const int KW = 4 * ((K + 31) / 32);
    const int kb = min(K, (int)rank * KW), ke = min(K, kb + KW), kw4 = (ke - kb) / 4;
    const int XS = KW + 4;
    float* Xs = sm;              // [64][XS]: the k slice of the tile's input rows
    float* Ws = Xs + 64 * XS;    // [KW][64]: the k slice of the cluster's 64 weight columns
    float* Ps = Ws + KW * 64;    // [2][64][PS]: this block's two partial tiles (k halves)
    const float* xg = X + (size_t)rb * K + kb;
#pragma unroll 1
    for (int i = tid; i < rows * kw4; i += NT2) {
        const int p = i / kw4, j = i - p * kw4;
        cp_async16(Xs + p * XS + j * 4, xg + (size_t)p * K + j * 4);
    }
#pragma unroll 1
    for (int i = tid; i < (ke - kb) * 16; i += NT2) {  // 16 float4 per k row; zeros past COUT
        const int k = i >> 4, j = i & 15;
        if (j < c4)
            cp_async16(Ws + k * 64 + j * 4, Wt + (size_t)(kb + k) * COUT + cb + j * 4);
        else
            *reinterpret_cast<float4*>(Ws + k * 64 + j * 4) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    cp_async_wait_all();
    __syncthreads();
    float a0[8], a1[8];
#pragma unroll
    for (int c = 0; c < 8; ++c) a0[c] = a1[c] = 0.0f;
    const int ksplit = 4 * (((ke - kb) / 4 + 1) / 2);  // half 0: [0, ksplit), half 1: [ksplit, ke - kb)
    const int k0 = half ? ksplit : 0, kn = half ? (ke - kb) - ksplit : ksplit;
    const float* x0 = Xs + min(lane, rows - 1) * XS + k0;  // lanes past the tile's rows read a staged row; never stored
    const float* x1 = Xs + min(lane + 32, rows - 1) * XS + k0;
    const float* wr = Ws + k0 * 64 + warp * 8;
    if (rows > 32)
        rows2x8_dot<true>(x0, x1, wr, kn, a0, a1);
    else
        rows2x8_dot<false>(x0, x1, wr, kn, a0, a1);
    float* pr = Ps + half * 64 * PS + warp * 8;
    *reinterpret_cast<float4*>(pr + lane * PS) = make_float4(a0[0], a0[1], a0[2], a0[3]);
    *reinterpret_cast<float4*>(pr + lane * PS + 4) = make_float4(a0[4], a0[5], a0[6], a0[7]);
    *reinterpret_cast<float4*>(pr + (lane + 32) * PS) = make_float4(a1[0], a1[1], a1[2], a1[3]);
    *reinterpret_cast<float4*>(pr + (lane + 32) * PS + 4) = make_float4(a1[4], a1[5], a1[6], a1[7]);
    cluster_arrive();
    cluster_wait();
    // block `rank`: columns [rank * 8, rank * 8 + 8) of the cluster (where < COUT), summed over the 8 blocks x 2
    // halves in order
    if ((int)rank * 2 < c4 && tid < 2 * rows) {
        const int p = tid >> 1, h = tid & 1, col = rank * 8 + h * 4;
        const float* src = Ps + p * PS + col;
        float4 parts[16];
#pragma unroll
        for (unsigned b = 0; b < 8; ++b) {
            parts[2 * b] = ld_dsmem4(src, b);
            parts[2 * b + 1] = ld_dsmem4(src + 64 * PS, b);
        }
        float4 s = parts[0];
#pragma unroll
        for (int b = 1; b < 16; ++b) add4(s, parts[b]);
        add4(s, *reinterpret_cast<const float4*>(bias + cb + col));
        *reinterpret_cast<float4*>(Y + (size_t)(rb + p) * COUT + cb + col) = s;
    }
    cluster_arrive_relaxed();  // this block no longer reads its peers' shared memory
    cluster_wait();            // and its peers no longer read its own
}
#endif  // CBLOCK_SPEC_ONLY (linear_c8)

// ---------------------------------------------------------------------------------------------------------------------
// fuse v10 (exdwpw10_c<CH>; session 11, prepared and compiled, NOT yet run on a GPU): a whole bottleneck block as ONE
// cooperative kernel in two phases separated by a grid barrier, with no partial sums. exdwpw6 splits the expanded
// channels over the blocks, so each block holds a partial of the whole projection output, and reducing those partials
// (cluster barrier + DSMEM reduce + global hand-off + the last cluster's sum) measured 51 us of the batch-1 plan's 146
// us of exdwpw6 on the H200 (results/NOTES.md "Batch 1 after session 11"). Here:
//   phase A (items = (image, row tile, channel group), grid-stride): exdwpw6's staging (cp.async, no multicast: no
//     clusters), expansion and depthwise for CH expanded channels of TR output rows; the depthwise output goes to
//     D (N, Ho, Wo, CE) in global memory (L2);
//   grid barrier (the flip-bit counter of kernels/persistent.cu; the host launches cooperatively, so every block is
//     resident);
//   phase B (items = (PM output pixels) x (PN output channels) tiles of the projection GEMM M = N * Ho * Wo, K = CE):
//     the tile's D rows and weight columns by cp.async, warp w sums the k slice [w * KS, w * KS + KS), lane = (pixel
//     lane / 4, 4 channels lane % 4), the 8 warps' float4 partials added in warp order, + bias (+ ReLU6) (+ residual).
// Fixed summation order: runs are bit-identical. Needs CIN, CE % 4 == 0, COUT % PN == 0, CE % CH == 0, 16-byte aligned
// arrays, D of N * Ho * Wo * CE floats, bar one uint32 (any value: the barrier needs no reset).
// Dynamic shared memory (floats, K.exdwpw10_smem): max(phase A: IPmax * (CIN + 4) + (IPmax + TR * Wo) * CS + CIN * CH +
// 11 * CH, phase B: PM * (CE + 4) + CE * PN + 8 * 32 * 4).
namespace cblock {

constexpr int PB_PM = 8, PB_PN = 16;  // phase B tile: 8 pixels x 16 output channels (32 lanes x float4)

// as kernels/persistent.cu grid_barrier: block 0 adds 0x80000000 - (blocks - 1), the others 1; the counter's top bit
// flips when every block has arrived (no reset, reusable from any start value). A copy, not a shared header: each
// kernel file is one self-contained source (the build's cache key hashes the file alone; NVRTC gets no include path)
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

template <int CH>
__device__ __forceinline__ void exdwpw10_body(const float* __restrict__ X, const float* __restrict__ We,
                                              const float* __restrict__ be, const float* __restrict__ Wd,
                                              const float* __restrict__ bd, const float* __restrict__ Wp,
                                              const float* __restrict__ bp, const float* R, float* Y, float* D,
                                              unsigned int* bar, int NB, int H, int W, int CIN, int CE, int COUT,
                                              int Ho, int Wo, int S, int TR, int act_e, int act_d, int act_p,
                                              int has_res) {
    static_assert(CH % 4 == 0, "CH must be a multiple of 4");
    constexpr int CG = CH / 4;
    constexpr int CS = (CH % 8 == 0) ? CH + 4 : CH;
    extern __shared__ __align__(16) float sm[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int ST = (Ho + TR - 1) / TR, NGB = CE / CH;
    const int XS = CIN + 4;
    const int IPmax = min(H, (TR - 1) * S + 3) * W;
    float* Xs = sm;  // phase A: [IP][XS] | Es [IP][CS] | Ds [TP][CS] | We cols [CIN][CH] | taps [9][CH] | be | bd
    float* Es = Xs + IPmax * XS;
    float* Ds = Es + IPmax * CS;
    float* Wes = Ds + TR * Wo * CS;
    float* wds = Wes + CIN * CH;
    float* bes = wds + 9 * CH;
    float* bds = bes + CH;

    // -- phase A: expansion + depthwise of (image, row tile, channel group) items -> D
    const int itemsA = NB * ST * NGB;
    for (int item = blockIdx.x; item < itemsA; item += gridDim.x) {
        const int g = item % NGB, s = (item / NGB) % ST, n = item / (NGB * ST);
        const int c0 = g * CH;
        const int oy0 = s * TR, TRt = min(TR, Ho - oy0), TP = TRt * Wo;
        const int iy0 = max(0, oy0 * S - 1), iy1 = min(H, (oy0 + TRt - 1) * S + 2);
        const int IP = (iy1 - iy0) * W;
        __syncthreads();  // the previous item's readers of shared memory are done
#pragma unroll 1
        for (int i = tid; i < CIN * CG; i += NT) {
            const int k = i / CG, q = i - k * CG;
            cp_async16(Wes + k * CH + q * 4, We + (size_t)k * CE + c0 + q * 4);
        }
#pragma unroll 1
        for (int i = tid; i < 9 * CG; i += NT) {
            const int t = i / CG, q = i - t * CG;
            cp_async16(wds + t * CH + q * 4, Wd + (size_t)t * CE + c0 + q * 4);
        }
        if (tid < CG) cp_async16(bes + tid * 4, be + c0 + tid * 4);
        else if (tid < 2 * CG) cp_async16(bds + (tid - CG) * 4, bd + c0 + (tid - CG) * 4);
        const float* xg = X + ((size_t)n * H + iy0) * W * CIN;
        const int C4 = CIN / 4;
#pragma unroll 1
        for (int i = tid; i < IP * C4; i += NT) {
            const int p = i / C4, q = i - p * C4;
            cp_async16(Xs + p * XS + q * 4, xg + (size_t)p * CIN + q * 4);
        }
        cp_async_wait_all();
        __syncthreads();
        // the expansion and depthwise loops below are exdwpw6's steps 2 and 3. Factoring both kernels onto one
        // __forceinline__ helper changed exdwpw6's generated code (its cubin and PTX differ), so the merge waits for a
        // GPU to re-test exdwpw6 (session 11 review)
        {  // expansion of the staged pixels (lane = pixel, warp-uniform 4-channel group), as exdwpw6
            const int slabs = (IP + 31) / 32;
            for (int it = warp; it < slabs * CG; it += NT / 32) {
                const int slab = it / CG, cg = it - slab * CG;
                const int p = slab * 32 + lane;
                if (p < IP) {
                    float4 acc = *reinterpret_cast<const float4*>(bes + cg * 4);
                    const float* xr = Xs + p * XS;
                    const float* wr = Wes + cg * 4;
#pragma unroll 4
                    for (int k = 0; k < CIN; k += 4) {
                        const float4 xv = *reinterpret_cast<const float4*>(xr + k);
                        fma4(acc, xv.x, *reinterpret_cast<const float4*>(wr + (k + 0) * CH));
                        fma4(acc, xv.y, *reinterpret_cast<const float4*>(wr + (k + 1) * CH));
                        fma4(acc, xv.z, *reinterpret_cast<const float4*>(wr + (k + 2) * CH));
                        fma4(acc, xv.w, *reinterpret_cast<const float4*>(wr + (k + 3) * CH));
                    }
                    if (act_e) acc = relu6(acc);
                    *reinterpret_cast<float4*>(Es + p * CS + cg * 4) = acc;
                }
            }
            __syncthreads();
        }
        {  // depthwise 3x3 (zero padding) + bias (+ ReLU6), as exdwpw6
            const int slabs = (TP + 31) / 32;
            for (int it = warp; it < slabs * CG; it += NT / 32) {
                const int slab = it / CG, cg = it - slab * CG;
                const int q = slab * 32 + lane;
                if (q < TP) {
                    const int oy = oy0 + q / Wo, ox = q % Wo;
                    float4 acc = *reinterpret_cast<const float4*>(bds + cg * 4);
#pragma unroll
                    for (int dy = 0; dy < 3; ++dy) {
                        const int iy = oy * S - 1 + dy;
                        if (iy < 0 || iy >= H) continue;
#pragma unroll
                        for (int dx = 0; dx < 3; ++dx) {
                            const int ix = ox * S - 1 + dx;
                            if (ix < 0 || ix >= W) continue;
                            const float4 e = *reinterpret_cast<const float4*>(Es + ((iy - iy0) * W + ix) * CS + cg * 4);
                            const float4 w = *reinterpret_cast<const float4*>(wds + (dy * 3 + dx) * CH + cg * 4);
                            acc.x = fmaf(e.x, w.x, acc.x);
                            acc.y = fmaf(e.y, w.y, acc.y);
                            acc.z = fmaf(e.z, w.z, acc.z);
                            acc.w = fmaf(e.w, w.w, acc.w);
                        }
                    }
                    if (act_d) acc = relu6(acc);
                    *reinterpret_cast<float4*>(Ds + q * CS + cg * 4) = acc;
                }
            }
            __syncthreads();
        }
        // the tile's depthwise output -> D (N, Ho, Wo, CE): the tile's output rows are contiguous pixels
        float* dg = D + ((size_t)n * Ho * Wo + (size_t)oy0 * Wo) * CE + c0;
#pragma unroll 1
        for (int i = tid; i < TP * CG; i += NT) {
            const int q = i / CG, cg = i - q * CG;
            *reinterpret_cast<float4*>(dg + (size_t)q * CE + cg * 4) = *reinterpret_cast<const float4*>(Ds + q * CS + cg * 4);
        }
    }

    __threadfence();  // D visible GPU-wide before the barrier's release (every thread wrote some of it)
    grid_barrier(bar);

    // -- phase B: the projection GEMM (M = NB * Ho * Wo pixels, K = CE) in PB_PM x PB_PN output tiles
    const int M = NB * Ho * Wo, MT = (M + PB_PM - 1) / PB_PM, OT = COUT / PB_PN;
    const int DS = CE + 4;
    float* Dt = sm;                    // [PB_PM][DS]
    float* Wt = Dt + PB_PM * DS;       // [CE][PB_PN]
    float* red = Wt + CE * PB_PN;      // [8 warps][32 lanes][4]
    const int KS = 4 * ((CE + 31) / 32);
    const int kb = min(CE, warp * KS), ke = min(CE, kb + KS);
    const int pm = lane >> 2, o4 = lane & 3;
    for (int item = blockIdx.x; item < MT * OT; item += gridDim.x) {
        const int ot = item % OT, mt = item / OT;
        const int m0 = mt * PB_PM, o0 = ot * PB_PN, PMt = min(PB_PM, M - m0);
        __syncthreads();  // the previous item's (or phase A's) readers of shared memory are done
        const int E4 = CE / 4;
#pragma unroll 1
        for (int i = tid; i < PMt * E4; i += NT) {
            const int p = i / E4, q = i - p * E4;
            cp_async16(Dt + p * DS + q * 4, D + (size_t)(m0 + p) * CE + q * 4);
        }
#pragma unroll 1
        for (int i = tid; i < CE * (PB_PN / 4); i += NT) {
            const int k = i / (PB_PN / 4), q = i - k * (PB_PN / 4);
            cp_async16(Wt + k * PB_PN + q * 4, Wp + (size_t)k * COUT + o0 + q * 4);
        }
        cp_async_wait_all();
        __syncthreads();
        float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
        const float* dr = Dt + min(pm, PMt - 1) * DS;  // pixels past the tile read a valid row; never stored
        const float* wr = Wt + o4 * 4;
#pragma unroll 2
        for (int k = kb; k < ke; k += 4) {
            const float4 d = *reinterpret_cast<const float4*>(dr + k);
            fma4(acc, d.x, *reinterpret_cast<const float4*>(wr + (k + 0) * PB_PN));
            fma4(acc, d.y, *reinterpret_cast<const float4*>(wr + (k + 1) * PB_PN));
            fma4(acc, d.z, *reinterpret_cast<const float4*>(wr + (k + 2) * PB_PN));
            fma4(acc, d.w, *reinterpret_cast<const float4*>(wr + (k + 3) * PB_PN));
        }
        *reinterpret_cast<float4*>(red + (warp * 32 + lane) * 4) = acc;
        __syncthreads();
        if (tid < 32 && pm < PMt) {
            float4 v = *reinterpret_cast<const float4*>(red + tid * 4);
#pragma unroll
            for (int w = 1; w < NT / 32; ++w) add4(v, *reinterpret_cast<const float4*>(red + (w * 32 + tid) * 4));
            add4(v, *reinterpret_cast<const float4*>(bp + o0 + o4 * 4));
            if (act_p) v = relu6(v);
            const size_t off = (size_t)(m0 + pm) * COUT + o0 + o4 * 4;
            if (has_res) add4(v, *reinterpret_cast<const float4*>(R + off));
            *reinterpret_cast<float4*>(Y + off) = v;
        }
    }
}

}  // namespace cblock

#define EXDWPW10_KERNEL(NAME, CH)                                                                                   \
    extern "C" __global__ void __launch_bounds__(256, 2)                                                           \
        NAME(const float* __restrict__ X, const float* __restrict__ We, const float* __restrict__ be,               \
             const float* __restrict__ Wd, const float* __restrict__ bd, const float* __restrict__ Wp,              \
             const float* __restrict__ bp, const float* R, float* Y, float* D, unsigned int* bar, int NB, int H,    \
             int W, int CIN, int CE, int COUT, int Ho, int Wo, int S, int TR, int act_e, int act_d, int act_p,      \
             int has_res) {                                                                                         \
        cblock::exdwpw10_body<CH>(X, We, be, Wd, bd, Wp, bp, R, Y, D, bar, NB, H, W, CIN, CE, COUT, Ho, Wo, S, TR, \
                                  act_e, act_d, act_p, has_res);                                                    \
    }

#ifndef CBLOCK_SPEC_ONLY
EXDWPW10_KERNEL(exdwpw10_c8, 8)
EXDWPW10_KERNEL(exdwpw10_c12, 12)
EXDWPW10_KERNEL(exdwpw10_c16, 16)
#endif
