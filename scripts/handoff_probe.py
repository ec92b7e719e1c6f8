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
    wait_early  wait_end with the trigger right after the wait (session 31): the next launch is scheduled while
                this one works, as kernels/*.cu's PDL_TRIGGER_EARLY does in the plan
    flag_end    PDL without griddepcontrol.wait: after its stores each block adds 1 to its tile's counter
                (red.release.gpu); a block of the next launch spins (ld.acquire.gpu) until the counters of the tiles it
                reads reach CPT x the replay count. Trigger at the end, as wait_end.
    flag_start  flag_end triggered at the start: the next launch's blocks take free SMs as early as they can
    persist     no launches between the steps: ONE cooperative launch whose blocks run the L steps in turn, handing
                off through flag_end's counters (a persistent network with per-tile hand-offs instead of net v2's
                grid barriers); its figure is per step

Each variant's chain output is checked bit for bit against the host (integer sums): a hand-off that lets a block
read before its producers' stores are visible fails the check.

Session 49: `--cluster N` launches every step in clusters of N blocks (the launch attribute; N > 8 opts the kernels in
to the non-portable size), as the plan's exdwpw6 launches run in clusters of 8 and 16. `--cluster-sync [MODE]`
compiles the kernels with a cluster barrier after each block's stores (arrive.release, or with `relaxed`
arrive.relaxed as kernels/cblock.cu's exits; then wait.acquire), where a kernel whose shared memory its cluster peers
read must hold its blocks before they exit. `release_before`: the same release barrier before the work instead, when
none of the block's memory operations is outstanding (what a release costs by itself); `fence_before`: there a
fence.acq_rel.cluster and a relaxed arrive instead; `relaxed_before`: a relaxed arrive alone (no ordering: the barrier's
own cost); `push`: there a cluster exchange without a release (each block st.async's words into its peers' shared
memory on their mbarriers and waits on its own, the words checked); `push4`: the same with 4 words per st.async;
`bulk`: the words written to the block's own shared memory, then one bulk copy per peer onto the same mbarriers;
`mbar_release`: the words stored remotely (st.shared::cluster), then one release arrive (cluster scope) on each peer's
mbarrier and an acquire wait on the block's own. `ticket_sc` / `ticket_ar` (no cluster needed): at that place the
cross-cluster ticket of kernels/cblock.cu's last_to_arrive on the tile's counter (the CPT blocks of a tile arrive;
the last resets it), as it is (__threadfence, atomicAdd, the last one's reset and __threadfence) or with one
atom.acq_rel.gpu instead.
`persist` (a cooperative launch) takes none.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SRC = r"""
// MODE 0 plain, 1 wait_end, 2 flag_end, 3 flag_start, 4 persist (a step inside the persistent kernel), 5 wait_early
// (session 31: the grid-wide wait, the trigger right after it instead of at the end).
// x: T tiles x E uint32 of the previous launch; y: this launch's.
#ifndef CLUSTER_SYNC
#define CLUSTER_SYNC 0
#endif
// the exchanges on mbarriers (PUSH_MODES): CLUSTER_SYNC 5 / 7 / 8 / 9 run push_exchange's KIND 0 / 1 / 2 / 3
#if CLUSTER_SYNC == 5
#define PUSH_KIND 0
#elif CLUSTER_SYNC >= 7 && CLUSTER_SYNC <= 9
#define PUSH_KIND (CLUSTER_SYNC - 6)
#endif
// the parity-0 wait on an mbarrier with the given semantics ("" or ".acquire.cluster"), into a 0 / 1 register
#define TRY_WAIT_PARITY0(SEM) \
    "{ .reg .pred p; mbarrier.try_wait.parity" SEM ".shared::cta.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }\n"
// session 49, CLUSTER_SYNC 5 (push): the exchange of a cluster reduce without a release fence. Every block sends
// Q = NT / (CL - 1) words to each of its CL - 1 peers by st.async into the peer's shared memory, each completing its
// bytes on the peer's mbarrier (initialised at entry, before a relaxed cluster arrive that the sender waits for before
// its first st.async); a block waits on its own mbarrier for the CL - 1 peers' words, then checks them.
#define PUSH_RECV_OFF (64 * 1024)  // bytes into the dynamic shared memory: the receive buffer (<= 4 KB)
#define PUSH_SRC_OFF (80 * 1024)  // bulk: the words to send (<= 4 KB)
#define PUSH_BAR_OFF (100 * 1024)  // and the mbarrier
__device__ __forceinline__ unsigned cl_rank() {
    unsigned r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
    return r;
}
__device__ __forceinline__ unsigned cl_size() {
    unsigned n;
    asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
    return n;
}
__device__ __forceinline__ void push_init(unsigned bar, unsigned count) {  // at entry, every thread (one initialises)
    if (threadIdx.x == 0) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
}
// the exchange; returns false where a received word is not the one its sender sent. KIND 0: one st.async of a word per
// thread (push); 1: of 4 words (push4); 2: the words written to this block's shared memory, then one bulk copy per
// peer (cp.async.bulk shared::cta -> shared::cluster, after fence.proxy.async) (bulk); 3: one remote st.shared::cluster
// of a word per thread, a block barrier, then one thread's mbarrier.arrive.release.cluster on each peer's mbarrier
// (initialised for CL - 1 arrivals), the receiver's wait acquire.cluster (mbar_release). Sender r's word w for peer
// p is r * 65536 + k + w * (CL - 1), k = (p - r - 1) mod CL; it lands in p's receive buffer at r * Q + w.
template <int KIND>
__device__ __forceinline__ bool push_exchange(unsigned bar, unsigned recv, unsigned src) {
    const unsigned tid = threadIdx.x, NT = blockDim.x, CL = cl_size(), r = cl_rank();
    const unsigned Q = KIND == 0 ? NT / (CL - 1u) : 4u * (NT / 4u / (CL - 1u));  // words per peer
    if (KIND != 3 && tid == 0)
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(4u * Q * (CL - 1u))
                     : "memory");
    if (KIND == 2) {
        for (unsigned i = tid; i < Q * (CL - 1u); i += NT) {
            const unsigned k = i / Q, w = i % Q;
            const unsigned v = r * 65536u + k + w * (CL - 1u);
            asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(src + 4u * i), "r"(v) : "memory");
        }
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the writes, visible to the bulk copies
        __syncthreads();
    }
    asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");  // every peer's mbarrier initialised
    if (KIND == 2) {
        if (tid == 0)
            for (unsigned k = 0; k + 1u < CL; ++k) {
                const unsigned peer = (r + 1u + k) % CL;
                unsigned ra, rb;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(recv + 4u * r * Q), "r"(peer));
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(rb) : "r"(bar), "r"(peer));
                asm volatile("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes"
                             " [%0], [%1], %2, [%3];\n" ::"r"(ra), "r"(src + 4u * k * Q), "r"(4u * Q), "r"(rb)
                             : "memory");
            }
    } else if (KIND == 3) {
        if (tid < Q * (CL - 1u)) {
            const unsigned k = tid % (CL - 1u), w = tid / (CL - 1u), peer = (r + 1u + k) % CL;
            unsigned ra;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(recv + 4u * (r * Q + w)), "r"(peer));
            const unsigned v = r * 65536u + k + w * (CL - 1u);
            asm volatile("st.shared::cluster.u32 [%0], %1;\n" ::"r"(ra), "r"(v) : "memory");
        }
        __syncthreads();  // every thread's stores before thread 0's release (cumulative through the block barrier)
        if (tid == 0)
            for (unsigned k = 0; k + 1u < CL; ++k) {
                unsigned rb;
                asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(rb) : "r"(bar), "r"((r + 1u + k) % CL));
                asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(rb) : "memory");
            }
    } else {
        const unsigned VW = KIND == 1 ? 4u : 1u;
        if (tid < Q / VW * (CL - 1u)) {
            const unsigned k = tid % (CL - 1u), w = tid / (CL - 1u) * VW, peer = (r + 1u + k) % CL;
            const unsigned v0 = r * 65536u + k + w * (CL - 1u);
            unsigned ra, rb;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(ra) : "r"(recv + 4u * (r * Q + w)), "r"(peer));
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(rb) : "r"(bar), "r"(peer));
            if (KIND == 1)
                asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.u32"
                             " [%0], {%1, %2, %3, %4}, [%5];\n" ::"r"(ra), "r"(v0), "r"(v0 + (CL - 1u)),
                             "r"(v0 + 2u * (CL - 1u)), "r"(v0 + 3u * (CL - 1u)), "r"(rb)
                             : "memory");
            else
                asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.u32 [%0], %1, [%2];\n" ::"r"(ra),
                             "r"(v0), "r"(rb) : "memory");
        }
    }
    unsigned done = 0;
    while (!done)
        if (KIND == 3)
            asm volatile(TRY_WAIT_PARITY0(".acquire.cluster") : "=r"(done) : "r"(bar) : "memory");
        else
            asm volatile(TRY_WAIT_PARITY0("") : "=r"(done) : "r"(bar) : "memory");
    if (KIND == 2 && tid == 0) {  // this block's copies have read their source before it may exit
        asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
        asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
    }
    bool ok = true;
    if (tid < CL * Q) {
        const unsigned s = tid / Q, w = tid % Q;
        if (s != r) {
            unsigned v;
            asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(recv + 4u * tid) : "memory");
            ok = v == s * 65536u + ((r + CL - s - 1u) % CL + w * (CL - 1u));
        }
    }
    return ok;
}

template <int MODE>
__device__ __forceinline__ void tile_step(const unsigned* x, unsigned* y, const float* __restrict__ wts, int pf4,
                                          const unsigned* cnt_in, unsigned* cnt_out, const unsigned* epoch, int T,
                                          int CPT, int E, int iters, float a, float b) {
    extern __shared__ float4 ws[];
    const int tid = threadIdx.x, t = blockIdx.x / CPT, c = blockIdx.x % CPT;
    constexpr bool GRID_WAIT = MODE == 1 || MODE == 5, FLAGS = MODE >= 2 && MODE <= 4;
    if (MODE == 3) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#ifdef PUSH_KIND
    const unsigned push_base = (unsigned)__cvta_generic_to_shared(ws);
    if (MODE != 4) push_init(push_base + PUSH_BAR_OFF, PUSH_KIND == 3 ? cl_size() - 1u : 1u);
#endif
    // 1. the weights: nothing a previous launch writes
    for (int i = tid; i < pf4; i += blockDim.x) {
        const unsigned s = (unsigned)__cvta_generic_to_shared(ws + i);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(wts + 4 * i) : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    // 2. the hand-off
    if (GRID_WAIT) asm volatile("griddepcontrol.wait;\n" ::: "memory");
    if (FLAGS && cnt_in != nullptr) {
        if (tid < 3) {
            const int tt = min(T - 1, max(0, t - 1 + tid));
            const unsigned want = (unsigned)CPT * __ldcg(epoch);
            unsigned* err = const_cast<unsigned*>(epoch) + 1;  // set once a wait gave up: later waits skip theirs
            unsigned v, polls = 0;
            do {
                asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(cnt_in + tt) : "memory");
                if (++polls > (1u << 20) || __ldcg(err) != 0u) {  // ~1 s: a broken hand-off, not a slow one
                    atomicExch(err, 1u);
                    break;
                }
            } while ((int)(v - want) < 0);
        }
        __syncthreads();
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    __syncthreads();
    if (MODE == 5) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#if CLUSTER_SYNC == 3 || CLUSTER_SYNC == 4 || CLUSTER_SYNC == 6
    if (MODE != 4) {  // session 49: a cluster barrier with no memory operation of this block outstanding: release (3),
        // a cluster-scope fence and a relaxed arrive (4), or relaxed alone (6: no ordering, the barrier's own cost)
#if CLUSTER_SYNC == 3
        asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#else
        if (CLUSTER_SYNC == 4) asm volatile("fence.acq_rel.cluster;\n" ::: "memory");
        asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
        asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
    }
#elif CLUSTER_SYNC == 10 || CLUSTER_SYNC == 11
    if (MODE != 4) {  // session 49: the cross-cluster ticket of kernels/cblock.cu's last_to_arrive on this tile's
        // counter (CPT arrivals): 10 as it is (fence.sc, atomic, and the last arriver's reset and fence.sc), 11 with
        // one acquire-release atomic instead (the reset a plain store)
        __shared__ int last_flag;
        if (tid == 0) {
            int* ct = reinterpret_cast<int*>(cnt_out) + t;
#if CLUSTER_SYNC == 10
            __threadfence();
            const int prev = atomicAdd(ct, 1);
            last_flag = prev == CPT - 1;
            if (last_flag) {
                *ct = 0;
                __threadfence();
            }
#else
            int prev;
            asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;\n" : "=r"(prev) : "l"(ct) : "memory");
            last_flag = prev == CPT - 1;
            if (last_flag) *ct = 0;
#endif
        }
        __syncthreads();
        if (last_flag && tid == 0 && *reinterpret_cast<volatile int*>(cnt_out + t) != 0)
            atomicExch(const_cast<unsigned*>(epoch) + 1, 1u);  // the reset not seen by its own block: a failure
    }
#elif defined(PUSH_KIND)
    if (MODE != 4 && !push_exchange<PUSH_KIND>(
                         push_base + PUSH_BAR_OFF, push_base + PUSH_RECV_OFF, push_base + PUSH_SRC_OFF))
        atomicExch(const_cast<unsigned*>(epoch) + 1, 1u);  // a wrong word fails the chain's check
#endif
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
    if (FLAGS) {
        __syncthreads();
        if (tid == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;\n" ::"l"(cnt_out + t) : "memory");
    }
#if CLUSTER_SYNC == 1 || CLUSTER_SYNC == 2
    if (MODE != 4) {  // session 49: the exit barrier of a kernel whose cluster peers read its shared memory
#if CLUSTER_SYNC == 2
        asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");  // as kernels/cblock.cu's exits
#else
        asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#endif
        asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
    }
#endif
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
STEP(step_wait_early, 5)

// persist: the L steps in one launch (cooperative: every block resident); step k reads X[k], writes X[k + 1], counts
// on cnt[k] and stages weight slice k % 4, as the k-th launch of the other variants does
extern "C" __global__ void __launch_bounds__(512, 1)
step_persist(unsigned* X, const float* wts, int pf4, unsigned* cnt, const unsigned* epoch, int T, int CPT, int E,
             int iters, float a, float b, int L) {
    for (int k = 0; k < L; ++k) {
        tile_step<4>(X + (size_t)k * T * E, X + (size_t)(k + 1) * T * E, wts + (size_t)(k % 4) * pf4 * 4, pf4,
                     k > 0 ? cnt + (size_t)(k - 1) * T : nullptr, cnt + (size_t)k * T, epoch, T, CPT, E, iters, a, b);
        __syncthreads();  // the next step's weights land where this step's were read
    }
}

extern "C" __global__ void epoch_next(unsigned* epoch) { *epoch += 1u; }
"""

VARIANTS = ("plain", "wait_end", "wait_early", "flag_end", "flag_start", "persist")
COOPERATIVE = 2  # CUlaunchAttributeID CU_LAUNCH_ATTRIBUTE_COOPERATIVE (cuda.h)
SYNC_MODES = (  # --cluster-sync (session 49): -DCLUSTER_SYNC = 1 + the index
    "release", "relaxed", "release_before", "fence_before", "push", "relaxed_before", "push4", "bulk", "mbar_release",
    "ticket_sc", "ticket_ar",
)  # fmt: skip
TICKET_MODES = ("ticket_sc", "ticket_ar")  # on the tile's counter: not with the flag variants, which count on it
PUSH_MODES = ("push", "push4", "bulk", "mbar_release")  # the exchanges on mbarriers
PUSH_RECV, PUSH_SMEM = 64 * 1024, 100 * 1024 + 8  # push: SRC's PUSH_RECV_OFF, and PUSH_BAR_OFF + its mbarrier
CLUSTER_DIMENSION = 4  # CUlaunchAttributeID CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: value {x, y, z} (cuda.h)
NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14  # CUfunction_attribute (cuda.h)


def reference(x0: np.ndarray, chain: int) -> np.ndarray:
    x = x0.copy()
    T = x.shape[0]
    for _ in range(chain):
        left = x[np.maximum(np.arange(T) - 1, 0)]
        right = x[np.minimum(np.arange(T) + 1, T - 1)]
        x = left + x + right + np.uint32(1)
    return x


class Probe:
    """The compiled kernels, a stream, the weight slices and the replay count; `run` times one variant's chain."""

    def __init__(self, args: argparse.Namespace) -> None:
        import cupy  # here, so that the host tests can import this file without CuPy

        from impls.custom import PROGRAMMATIC_STREAM_SERIALIZATION, LaunchAttr, LaunchConfig
        from mbv2.timing import cuda_event_timing

        self.cupy, self.args, self.timing = cupy, args, cuda_event_timing
        self.pdl_attr, self.LaunchAttr, self.LaunchConfig = PROGRAMMATIC_STREAM_SERIALIZATION, LaunchAttr, LaunchConfig
        self.libcuda = ctypes.CDLL("libcuda.so.1")
        sync = {"": 0, **{m: i + 1 for i, m in enumerate(SYNC_MODES)}}[args.cluster_sync]
        sync = (f"-DCLUSTER_SYNC={sync}",) if sync else ()
        opts = ("-std=c++17", *sync)
        mod = cupy.RawModule(code=SRC, options=opts)
        self.fns = {v: mod.get_function(f"step_{v}") for v in VARIANTS}
        for f in self.fns.values():
            f.max_dynamic_shared_size_bytes = args.smem
        if args.cluster > 8:  # clusters of more than 8 blocks: the non-portable size, per function
            set_attr = self.libcuda.cuFuncSetAttribute
            for v, f in self.fns.items():
                err = set_attr(ctypes.c_void_p(f.kernel.ptr), NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)
                if err != 0:
                    raise RuntimeError(f"step_{v}: cuFuncSetAttribute (non-portable cluster size): CUresult {err}")
        self.f_epoch = mod.get_function("epoch_next")
        self.stream = cupy.cuda.Stream(non_blocking=True)
        props = cupy.cuda.runtime.getDeviceProperties(0)
        self.gpu = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
        self.sms = int(props["multiProcessorCount"])
        self.wts = cupy.asarray(np.random.default_rng(0).random(args.pf, dtype=np.float32))  # 4 slices of PF bytes
        self.epoch = cupy.zeros(2, cupy.uint32)  # the replay count, and a flag set by a wait that gave up
        self.pf4 = args.pf // 16

    @staticmethod
    def _ptr(a: Any, off: int = 0) -> ctypes.c_uint64:
        return ctypes.c_uint64(a.data.ptr + off * a.itemsize)

    def _launch(self, var: str, grid: int, vals: list, attr_id: int | None, keep: list) -> None:
        attrs, n = self.launch_attrs(self.LaunchAttr, attr_id, 1 if var == "persist" else self.args.cluster)
        cfg = self.LaunchConfig(grid, 1, 1, 512, 1, 1, self.args.smem, self.stream.ptr, attrs, n)
        keep.append((attrs, cfg, vals))
        params = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(v) for v in vals])
        err = self.libcuda.cuLaunchKernelEx(ctypes.byref(cfg), ctypes.c_void_p(self.fns[var].kernel.ptr), params, None)
        if err != 0:
            raise RuntimeError(f"cuLaunchKernelEx ({var}): CUresult {err}")

    @staticmethod
    def launch_attrs(attr_type: Any, attr_id: int | None, cluster: int) -> tuple[Any, int]:
        """cuLaunchKernelEx's attribute array and how many of its entries count: ``attr_id`` (PDL or cooperative)
        with value 1 where given, then the cluster dimension (cluster x 1 x 1) where ``cluster`` > 1."""
        n = int(attr_id is not None) + int(cluster > 1)
        attrs = (attr_type * max(n, 1))()
        i = 0
        if attr_id is not None:
            attrs[0].id, attrs[0].value.i, i = attr_id, 1, 1
        if cluster > 1:
            attrs[i].id = CLUSTER_DIMENSION
            (ctypes.c_uint * 3).from_buffer(attrs[i].value)[:] = [cluster, 1, 1]
        return attrs, n

    def _chain(self, var: str, X: Any, C: Any, T: int, CPT: int, iters: int, keep: list) -> None:
        L, E, G, p = self.args.chain, self.args.elems, T * CPT, self._ptr
        tail = [ctypes.c_int(T), ctypes.c_int(CPT), ctypes.c_int(E), ctypes.c_int(iters), ctypes.c_float(0.999),
                ctypes.c_float(1e-3)]  # fmt: skip
        if var == "persist":
            vals = [p(X), p(self.wts), ctypes.c_int(self.pf4), p(C), p(self.epoch), *tail, ctypes.c_int(L)]
            self._launch(var, G, vals, COOPERATIVE, keep)
            return
        for k in range(L):
            # the first launch follows the plain epoch node; the others by PDL, but in `plain`
            pdl = self.pdl_attr if var != "plain" and k > 0 else None
            vals = [p(X, k * T * E), p(X, (k + 1) * T * E), p(self.wts, (k % 4) * self.pf4 * 4),
                    ctypes.c_int(self.pf4), ctypes.c_uint64(0) if k == 0 else p(C, (k - 1) * T), p(C, k * T),
                    p(self.epoch), *tail]  # fmt: skip
            self._launch(var, G, vals, pdl, keep)

    def run(self, var: str, x0: np.ndarray, ref: np.ndarray, CPT: int, iters: int) -> tuple[float, bool]:
        """(device us per launch or step, the chain's output equal to the host's and no wait gave up)."""
        cupy, L, T = self.cupy, self.args.chain, x0.shape[0]
        X = cupy.zeros((L + 1, *x0.shape), cupy.uint32)  # X[k]: launch k's input, X[k + 1] its output
        X[0] = cupy.asarray(x0)
        C = cupy.zeros((L, T), cupy.uint32)  # C[k]: launch k's tile counters
        keep: list = []
        with self.stream:
            self.epoch.fill(0)  # the flag variants count CPT per tile per replay against the replay count
            self.stream.begin_capture()
            self.f_epoch((1,), (1,), (self.epoch,))
            self._chain(var, X, C, T, CPT, iters, keep)
            g = self.stream.end_capture()
            t = self.timing(lambda i: g.launch(self.stream), warmup=5, repeats=self.args.repeats, stream=self.stream)
            X[1:].fill(0)  # poisoned: a step that reads before its producers' stores land reads zeros
            g.launch(self.stream)
        self.stream.synchronize()
        gave_up = int(self.epoch[1].get()) != 0
        if gave_up:
            print(f"{var}: a block's wait gave up after 2^20 polls (a counter never reached its target)", flush=True)
        return t.median_ms * 1e3 / L, bool(np.array_equal(cupy.asnumpy(X[L]), ref)) and not gave_up


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chain", type=int, default=32, help="launches per graph (L)")
    ap.add_argument("--shapes", default="7x16,3x40,14x8", help="T x CPT, comma-separated (batch 1: 7 tiles x 16)")
    ap.add_argument("--iters", default="0,400,1600", help="FMA chain lengths per thread (the kernel's own work)")
    ap.add_argument("--pf", type=int, default=24 * 1024, help="weight bytes each block stages (PF)")
    ap.add_argument("--smem", type=int, default=120 * 1024, help="dynamic shared memory per block (1 block per SM)")
    ap.add_argument("--elems", type=int, default=8000, help="uint32 per tile (E; a multiple of every CPT)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, a subset of the default")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--cluster", type=int, default=1, help="blocks per cluster of every launch (1: no clusters)")
    ap.add_argument("--cluster-sync", nargs="?", const="release", default="", choices=SYNC_MODES,
                    help="the cluster synchronisation of every launch (module docstring); bare: release")  # fmt: skip
    ap.add_argument("--json", default="")
    return ap


def main() -> None:
    args = parser().parse_args()
    if args.pf > args.smem:
        raise SystemExit(f"--pf {args.pf} exceeds --smem {args.smem}")
    if not 1 <= args.cluster <= 16:
        raise SystemExit(f"--cluster {args.cluster}: 1 to 16 blocks (16 is the most an sm_90 cluster holds)")
    if args.cluster_sync in TICKET_MODES and any(v.strip().startswith("flag") for v in args.variants.split(",")):
        raise SystemExit(f"--cluster-sync {args.cluster_sync} counts on the tile counters the flag variants use")
    if args.cluster_sync in PUSH_MODES and (args.cluster < 2 or args.smem < PUSH_SMEM or args.pf > PUSH_RECV):
        need = f"--cluster >= 2, --smem >= {PUSH_SMEM} and --pf <= {PUSH_RECV}"
        raise SystemExit(f"--cluster-sync {args.cluster_sync} needs {need}")
    pr = Probe(args)
    sync = f" + cluster sync ({args.cluster_sync})" if args.cluster_sync else ""
    print(f"handoff probe on {pr.gpu} ({pr.sms} SMs): chain {args.chain}, PF {args.pf} B, smem {args.smem} B, "
          f"E {args.elems}, cluster {args.cluster}{sync}", flush=True)  # fmt: skip
    shapes = []
    for shape in args.shapes.split(","):
        T, CPT = (int(v) for v in shape.lower().split("x"))
        if args.elems % CPT:
            raise SystemExit(f"--elems {args.elems} is not a multiple of CPT {CPT}")
        if (T * CPT) % args.cluster:
            raise SystemExit(f"shape {shape}: a grid of {T * CPT} blocks is not a multiple of --cluster {args.cluster}")
        x0 = np.random.default_rng(T * 100 + CPT).integers(0, 1 << 20, (T, args.elems), dtype=np.uint32)
        shapes.append((T, CPT, x0, reference(x0, args.chain)))
    rows: list[dict[str, Any]] = []
    # the launch variants first, the persistent kernel last (a cooperative launch the driver refuses in a capture
    # then costs only its own rows); the JSON is rewritten after every row, so a cut-off call keeps what ran
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown or not chosen:
        raise SystemExit(f"--variants {args.variants!r}: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    order = [v for v in VARIANTS if v != "persist" and v in chosen], [v for v in ("persist",) if v in chosen]
    for variants in order:
        for T, CPT, x0, ref in shapes:
            G = T * CPT
            for iters in [int(v) for v in args.iters.split(",")]:
                for var in variants:
                    if var == "persist" and G > pr.sms:
                        print(f"{T:3d}x{CPT:<3d} grid {G:4d} persist skipped: {G} blocks > {pr.sms} SMs", flush=True)
                        continue
                    if var == "persist" and (args.cluster > 1 or args.cluster_sync):
                        print(f"{T:3d}x{CPT:<3d} grid {G:4d} persist skipped: a cooperative launch, no clusters",
                              flush=True)  # fmt: skip
                        continue
                    per, ok = pr.run(var, x0, ref, CPT, iters)
                    rows.append({"gpu": pr.gpu, "tiles": T, "blocks_per_tile": CPT, "grid": G, "iters": iters,
                                 "variant": var, "us_per_launch": per, "chain": args.chain, "pf_bytes": args.pf,
                                 "smem": args.smem, "elems": args.elems, "cluster": args.cluster,
                                 "cluster_sync": args.cluster_sync, "correct": ok})  # fmt: skip
                    unit = "step" if var == "persist" else "launch"
                    print(f"{T:3d}x{CPT:<3d} grid {G:4d} iters {iters:5d} {var:11s} {per:7.3f} us per {unit} "
                          f"correct={ok}", flush=True)  # fmt: skip
                    if args.json:
                        Path(args.json).write_text(json.dumps(rows, indent=1))
    if not all(r["correct"] for r in rows):
        raise SystemExit("handoff probe: a chain's output differs from the host's (a hand-off read too early)")


if __name__ == "__main__":
    main()
