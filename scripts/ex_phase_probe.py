"""Session 40: what bounds exdwpw6's expansion phase at batch 1. Any sm_90 GPU with nvcc; results/NOTES.md "Session
40" cites its output.

    python3 scripts/ex_phase_probe.py [--json out.json]

The phase of the batch-1 plan's 14x14 64 -> 384 -> 64 block kernel (exdwpw6_c24x16_t512, ex_ks 402: lane tiles of
4 pixels x 4 channels, the k range split over 2 lanes, unrolled, in boustrophedon order): 56 staged pixels x 64 inputs
-> 24 channels per block, 512 threads, one block per SM. Each probe kernel stages random inputs and weights into
shared memory as the block kernel lays them out, then times the phase twice with clock64 between block barriers (the
second pass: instructions cached), every block of a 132-block grid; printed: the median over blocks in cycles and us.
Variants:

    plan       cblock::ex_tiles_ec itself (kernels/cblock.cu included, the plan build's spec defines): the phase as
               planned; its output is checked against NumPy float64 (rel L2)
    plan_ks4   the same with the k range split over 4 lanes (twice the lanes, half the chain each)
    copy       the probe's copy of that loop, unchanged (the control: it must read as plan)
    x_reg      the copy with each lane's input float4s loaded once, before the k loop (no input loads in the loop)
    w_reg      the copy with the weight float4s loaded once (no weight loads in the loop)
    regs       both: the loop's FFMAs, shuffles and stores alone
    loads      the loop's loads with one FADD per loaded value in place of the 64 FFMAs per k step
    regs_noshfl  regs without the butterfly over the k slices (timing only; session 40's copy without it spilled)
    plan_e<EC>ks<KS>   ex_tiles_ec with lane tiles of 4 pixels x 4 * EC channels, the k range over KS lanes (wider
               tiles issue FFMAs faster: scripts/ffma_rate_probe.py)
    wide_ks<KS>  the sized lead: lane tiles of 8 pixels x 8 channels, the k range over KS lanes, the partial sums
               through shared memory instead of a butterfly (a new order of the sums: checked against float64);
               _pad: the partials' rows CH + 4 floats apart (Es's stride) instead of CH

What each variant takes off the plan's time is what its loads (or its FFMA issue) cost on the critical path.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402

PLAN_BUILD = "exdwpw6_c24x16_t512"
PLAN_MODES = (5, 402, 2, 0)
PLAN_SHAPE = (14, 14, 64, 384, 64, 14, 14, 1, 2, 1, 1, 0, 1)
IP, CIN, CH, KS = 56, 64, 24, 2
XS, CS, WSK = CIN + 4, CH + 4, 8  # row strides as exdwpw6_body's, the k slices' weight skew (EX_WSK)

PROBE = r"""
#include "cblock.cu"
namespace probe_ns {  // (its names hide cblock's: the using-directive places those in the global namespace)
using namespace cblock;
constexpr int IP = %(IP)d, CIN = %(CIN)d, CH = %(CH)d, XS = %(XS)d, CS = %(CS)d, NT = 512, EP = 4, CG = CH / 4;

// the probe's copy of ex_tiles_ec<1, CH, NT, 1, true, 2> (k range over KS lanes), with V's changes: V & 1 the input
// float4s loaded once before the k loop, V & 2 the weight float4s loaded once, V == 4 one FADD per loaded value in
// place of the FFMAs, V & 8 no butterfly over the k slices (the sums are then wrong: timing only)
template <int V, int KS>
__device__ __forceinline__ void ex_copy(const float* Xs, const float* Wes, const float* bes, float* Es, int tid) {
    constexpr int NW = NT / 32, UW = 32 / KS, KL = CIN / KS, PG = (IP + EP - 1) / EP, U = PG * CG;
    constexpr int wsk = KS > 1 ? EX_WSK : 0;
    const int lane = tid & 31, warp = tid >> 5, j = lane / UW, v = lane - j * UW;
    for (int u0 = warp * UW; u0 < U; u0 += NW * UW) {
        const int u = min(u0 + v, U - 1);
        int cgg, pg;
        ex_unit<2>(u, PG, CG, cgg, pg);
        const float* xr = Xs + j * KL;
        int pix[EP];
#pragma unroll
        for (int i = 0; i < EP; ++i) pix[i] = min(pg + i * PG, IP - 1);
        const float* wr = Wes + (size_t)j * (KL * CH + wsk) + cgg * 4;
        float4 acc[EP];
        const float4 b0 = j == 0 ? *reinterpret_cast<const float4*>(bes + cgg * 4) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int i = 0; i < EP; ++i) acc[i] = b0;
        float4 xk[EP], wk[4];
#pragma unroll
        for (int i = 0; i < EP; ++i) xk[i] = *reinterpret_cast<const float4*>(xr + pix[i] * XS);
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) wk[kk] = *reinterpret_cast<const float4*>(wr + kk * CH);
#pragma unroll
        for (int k = 0; k < KL; k += 4) {
            float4 xv[EP];
#pragma unroll
            for (int i = 0; i < EP; ++i)
                xv[i] = (V & 1) ? xk[i] : *reinterpret_cast<const float4*>(xr + pix[i] * XS + k);
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                const float4 w = (V & 2) ? wk[kk] : *reinterpret_cast<const float4*>(wr + (k + kk) * CH);
#pragma unroll
                for (int i = 0; i < EP; ++i) {
                    const float x = f4c(xv[i], kk);
                    if constexpr (V == 4) {
                        acc[i].x += x;
                        if (i == 0) acc[0].y += w.x + w.w;
                    } else {
                        fma4(acc[i], x, w);
                    }
                }
            }
        }
        for (int m = UW; m < ((V & 8) ? UW : 32); m *= 2) {  // (V & 8: no butterfly)
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
                if (p < IP) *reinterpret_cast<float4*>(Es + p * CS + cgg * 4) = relu6(acc[i]);
            }
        }
    }
}

// the sized lead (session 40): lane tiles of 8 pixels x 8 channels, the k range over KS lanes, the KS partial sums
// through shared memory Pt [KS][IP][CH] (no butterfly), then summed in slice order after the bias by one thread per
// output float4, + ReLU6. The weights here without the k slices' skew (Wes [CIN][CH])
template <int KS, int PSTR = CH>
__device__ __forceinline__ void ex_wide(const float* Xs, const float* Wes, const float* bes, float* Es, float* Pt,
                                        int tid) {
    constexpr int TP = 8, TC = 8, PG = (IP + TP - 1) / TP, U = PG * (CH / TC), KL = CIN / KS;  // (PSTR: Pt's row)
    static_assert(CH %% TC == 0 && CIN %% (4 * KS) == 0 && U * KS <= NT, "wide tiles");
    if (tid < U * KS) {
        const int u = tid %% U, j = tid / U, pg = u %% PG, cg = u / PG;
        int pix[TP];
#pragma unroll
        for (int i = 0; i < TP; ++i) pix[i] = min(pg + i * PG, IP - 1);
        float acc[TP][TC];
#pragma unroll
        for (int i = 0; i < TP; ++i)
#pragma unroll
            for (int c = 0; c < TC; ++c) acc[i][c] = 0.0f;
#pragma unroll
        for (int k = j * KL; k < j * KL + KL; k += 4) {
            float4 xv[TP];
#pragma unroll
            for (int i = 0; i < TP; ++i) xv[i] = *reinterpret_cast<const float4*>(Xs + pix[i] * XS + k);
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                const float4 w0 = *reinterpret_cast<const float4*>(Wes + (k + kk) * CH + cg * TC);
                const float4 w1 = *reinterpret_cast<const float4*>(Wes + (k + kk) * CH + cg * TC + 4);
                const float w[TC] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
                for (int i = 0; i < TP; ++i) {
                    const float x = f4c(xv[i], kk);
#pragma unroll
                    for (int c = 0; c < TC; ++c) acc[i][c] = fmaf(x, w[c], acc[i][c]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < TP; ++i) {
            const int p = pg + i * PG;
            if (p < IP) {
                float* d = Pt + (j * IP + p) * PSTR + cg * TC;
                *reinterpret_cast<float4*>(d) = make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
                *reinterpret_cast<float4*>(d + 4) = make_float4(acc[i][4], acc[i][5], acc[i][6], acc[i][7]);
            }
        }
    }
    __syncthreads();
    for (int o = tid; o < IP * CH / 4; o += NT) {  // output float4 o: pixel o / (CH / 4), channels 4 (o %% (CH / 4))
        const int p = o / (CH / 4), c4 = o - p * (CH / 4);
        float4 s = *reinterpret_cast<const float4*>(bes + c4 * 4);
#pragma unroll
        for (int j = 0; j < KS; ++j) add4(s, *reinterpret_cast<const float4*>(Pt + (j * IP + p) * PSTR + c4 * 4));
        *reinterpret_cast<float4*>(Es + p * CS + c4 * 4) = relu6(s);
    }
}

// V: -1 the plan's ex_tiles_ec, 0 - 4 ex_copy<V>; KS the k split. X [IP][CIN], W [CIN][CH], b [CH] in global memory;
// block 0 writes its Es to E [IP][CH]; cyc[2 * block + pass] the pass's cycles
template <int V, int KS, int EC = 1>
__device__ void probe(const float* X, const float* W, const float* b, float* E, long long* cyc) {
    extern __shared__ __align__(16) float sm[];
    constexpr bool WIDE = V == 16 || V == 17;  // ex_wide<KS>: weights unskewed, the partials after Es (17: padded)
    constexpr int wsk = (KS > 1 && !WIDE) ? EX_WSK : 0, KL = CIN / KS;
    float* Xs = sm;
    float* Wes = Xs + IP * XS;
    float* bes = Wes + CIN * CH + (KS - 1) * wsk;
    float* Es = bes + CH;
    float* Pt = Es + IP * CS;  // (ex_wide only: [KS][IP][CH])
    const int tid = threadIdx.x;
    for (int i = tid; i < IP * CIN; i += NT) Xs[(i / CIN) * XS + i %% CIN] = X[i];
    for (int i = tid; i < CIN * CH; i += NT) Wes[i + (i / CH / KL) * wsk] = W[i];
    if (tid < CH) bes[tid] = b[tid];
    for (int pass = 0; pass < 2; ++pass) {
        __syncthreads();
        const long long t0 = clock64();
        if constexpr (V < 0) ex_tiles_ec<EC, CH, NT, 1, true, 2>(Xs, Wes, bes, Es, IP, XS, CIN, KS, 1, tid);
        else if constexpr (V == 16) ex_wide<KS>(Xs, Wes, bes, Es, Pt, tid);
        else if constexpr (V == 17) ex_wide<KS, CS>(Xs, Wes, bes, Es, Pt, tid);
        else ex_copy<V, KS>(Xs, Wes, bes, Es, tid);
        __syncthreads();
        const long long t1 = clock64();
        if (tid == 0) cyc[2 * blockIdx.x + pass] = t1 - t0;
    }
    if (blockIdx.x == 0)
        for (int i = tid; i < IP * CH; i += NT) E[i] = Es[(i / CH) * CS + i %% CH];
}
}  // namespace probe_ns
#define PROBE_KERNEL_EC(NAME, V, KS, EC)                                                          \
    extern "C" __global__ void __launch_bounds__(512, 1)                                          \
    NAME(const float* X, const float* W, const float* b, float* E, long long* cyc) {              \
        probe_ns::probe<V, KS, EC>(X, W, b, E, cyc);                                              \
    }
#define PROBE_KERNEL(NAME, V, KS) PROBE_KERNEL_EC(NAME, V, KS, 1)
PROBE_KERNEL(plan, -1, 2)
PROBE_KERNEL(plan_ks4, -1, 4)
PROBE_KERNEL(copy, 0, 2)
PROBE_KERNEL(x_reg, 1, 2)
PROBE_KERNEL(w_reg, 2, 2)
PROBE_KERNEL(regs, 3, 2)
PROBE_KERNEL(loads, 4, 2)
PROBE_KERNEL(regs_noshfl, 11, 2)
PROBE_KERNEL_EC(plan_e2ks2, -1, 2, 2)
PROBE_KERNEL_EC(plan_e2ks4, -1, 4, 2)
PROBE_KERNEL_EC(plan_e3ks4, -1, 4, 3)
PROBE_KERNEL_EC(plan_e3ks8, -1, 8, 3)
PROBE_KERNEL(wide_ks8, 16, 8)
PROBE_KERNEL(wide_ks16, 16, 16)
PROBE_KERNEL(wide_ks8_pad, 17, 8)
PROBE_KERNEL(wide_ks4_pad, 17, 4)
"""
CHECKED = ("plan", "plan_ks4", "copy", "plan_e2ks2", "plan_e2ks4", "plan_e3ks4", "plan_e3ks8", "wide_ks8")
CHECKED += ("wide_ks16", "wide_ks8_pad", "wide_ks4_pad")
VARIANTS = ("plan", "plan_ks4", "copy", "x_reg", "w_reg", "regs", "loads", "regs_noshfl")
VARIANTS += ("plan_e2ks2", "plan_e2ks4", "plan_e3ks4", "plan_e3ks8", "wide_ks8", "wide_ks16", "wide_ks8_pad")
VARIANTS += ("wide_ks4_pad",)


def nvcc_cblock(nvcc: str, source: str, out: Path, stem: str) -> tuple[Path, str]:
    """``source`` (which includes kernels/cblock.cu) compiled into ``out``/``stem``.cubin for sm_90a, cblock.cu reduced
    to the plan's one exdwpw6 build by its spec defines: the cubin and ptxas's report (-v: registers and spills)."""
    src = out / f"{stem}.cu"
    src.write_text(source)
    cubin = out / f"{stem}.cubin"
    defines = K.exdwpw6_spec_defines(PLAN_BUILD, PLAN_MODES, PLAN_SHAPE)
    cmd = [nvcc, *K.NVCC_FLAGS, "-arch=sm_90a", "-cubin", "-Xptxas", "-v", f"-I{K.KERNEL_DIR}", *defines, "-o",
           str(cubin), str(src)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nvcc failed:\n{proc.stderr}")
    return cubin, proc.stderr


def build(nvcc: str, out: Path) -> tuple[Path, str]:
    """The probe compiled into ``out``: the cubin and ptxas's report (-v: registers and spills per kernel)."""
    cubin, report = nvcc_cblock(nvcc, PROBE % {"IP": IP, "CIN": CIN, "CH": CH, "XS": XS, "CS": CS}, out,
                                "ex_phase_probe")  # fmt: skip
    for line in report.splitlines():  # registers and spills of the probe kernels
        if any(f"'{v}'" in line for v in VARIANTS) or ("Used" in line and "registers" in line) or "spill" in line:
            print("  ptxas:", line.strip())
    return cubin, report


def main() -> None:
    import cupy

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    nvcc = K.find_nvcc()
    if nvcc is None:
        raise SystemExit("nvcc not found")
    keep = tempfile.TemporaryDirectory()  # (CuPy loads the module at its first get_function: the cubin stays)
    mod = cupy.RawModule(path=str(build(nvcc, Path(keep.name))[0]))
    props = cupy.cuda.runtime.getDeviceProperties(0)
    sms, ghz = int(props["multiProcessorCount"]), int(props["clockRate"]) / 1e6
    rng = np.random.default_rng(40)
    x = rng.standard_normal((IP, CIN), dtype=np.float32)
    w = (rng.standard_normal((CIN, CH), dtype=np.float32) / 8).astype(np.float32)
    b = rng.standard_normal(CH, dtype=np.float32)
    ref = np.clip(x.astype(np.float64) @ w.astype(np.float64) + b, 0.0, 6.0)
    xd, wd, bd = (cupy.asarray(a) for a in (x, w, b))
    smem = 120 * 1024  # one block per SM, as the block kernel's shared memory gives
    rows = []
    for v in VARIANTS:
        fn = mod.get_function(v)
        fn.max_dynamic_shared_size_bytes = smem
        e = cupy.full((IP, CH), np.nan, cupy.float32)
        cyc = cupy.zeros((sms, 2), cupy.int64)
        for _ in range(3):
            fn((sms,), (512,), (xd, wd, bd, e, cyc), shared_mem=smem)
        cupy.cuda.runtime.deviceSynchronize()
        c = cyc.get()
        first, second = float(np.median(c[:, 0])), float(np.median(c[:, 1]))
        err = float(np.linalg.norm(e.get() - ref) / np.linalg.norm(ref))
        row = {"variant": v, "cycles_first": first, "cycles": second, "us": second / ghz / 1e3, "rel_l2": err}
        rows.append(row)
        check = f"rel L2 {err:.1e}" if v in CHECKED else "(timing only)"
        print(f"{v:9s} {second:7.0f} cycles = {row['us']:.2f} us at {ghz:.2f} GHz (first pass {first:.0f}); {check}",
              flush=True)  # fmt: skip
        if v in CHECKED and not err < 1e-5:
            raise SystemExit(f"{v}: the phase's output is off (rel L2 {err:.2e} against float64)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    keep.cleanup()


if __name__ == "__main__":
    main()
