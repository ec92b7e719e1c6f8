"""Our own CUDA kernels (kernels/*.cu), compiled with nvcc for the device's own sm_XX, loaded through
CuPy RawModule, launched on the backend's stream. No PyTorch.

Layout: NHWC inside the backend (results/NOTES.md, "Layout decision"). ``to_device`` uploads an
NCHW batch and transposes it on the GPU; ``to_host`` transposes back; both are inside ``run`` and so
inside every timed end-to-end region. A 4-D device array of this backend is always NHWC
(N, H, W, C); a 2-D one is (N, F).

Kernel versions: one per op family (impls/_custom_kernels.py), pinned by the option
``kernels="gemm=v2,pool=v1"`` or the environment variable MBV2_KERNELS (the option wins); the
defaults are the fastest correct versions measured. ``info()`` reports what ran, including any
shape that a version could not take and went to the version named there (e.g. depthwise v3 needs
C % 4 == 0).

GEMM tiles: a cost model (``choose_gemm_tile``), and by default an autotuner at plan time for the
GEMMs of >= ``TUNE_MIN_FLOP`` (every tile shape, v3 and v4 kernels, plus gemm v8's cp.async tiles under v8, the
default; timed on the real buffers behind a launch-latency cover; ``autotune=False`` or MBV2_AUTOTUNE=0 turns it
off, MBV2_TUNE_MIN_FLOP sets the smallest problem it times). ``kernels="fuse=v2"`` runs each depthwise conv
inside the following pointwise GEMM (one dwpw kernel per pair; not the default, see results/NOTES.md).

``run(x)`` walks a launch plan made once per batch size: every buffer allocated up front (reused
across layers by liveness), every kernel's grid, block and arguments fixed; ``graph=True`` captures
that plan into a CUDA graph and replays it. ``debug=True`` (or MBV2_DEBUG=1) synchronises and
checks after every launch, naming the kernel that failed.
"""

from __future__ import annotations

import ctypes
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mbv2 import nvtx
from mbv2.errors import BackendUnavailable, CudaError, InputError
from mbv2.gpu import gpu_status
from mbv2.layers import Conv2d, Linear
from mbv2.network import NETWORK_INPUT, Network
from mbv2.timing import spin

from . import _custom_kernels as K
from ._custom_block0 import Block0Mixin
from ._custom_fp16 import HalfMixin
from ._custom_persistent import CooperativeKernel
from .base import Backend

KERNEL_VERSIONS = K.KERNEL_VERSIONS
DEFAULT_VERSIONS = K.DEFAULT_VERSIONS
GEMV_MAX_BATCH = 8  # linear.cu GEMV_MAX_BATCH
STEM_DIRECT_MAX_SMEM = 48 * 1024


# The kernels need sm_90: thread-block clusters (kernels/conv.cu, block0.cu, cblock.cu), programmatic dependent launch
# and bulk copies (cblock.cu, built for sm_90a). They compile for sm_90, sm_100 and sm_120 (checked with nvcc 13.0) and
# were measured on the H100 and H200 only; below 9.0 kernels/conv.cu, block0.cu and cblock.cu do not compile.
MIN_COMPUTE_CAPABILITY = (9, 0)


def compute_capability_issue(name: str, major: int, minor: int) -> str:
    """Why the custom backend cannot run on a GPU of compute capability major.minor ("" where it can)."""
    if (major, minor) >= MIN_COMPUTE_CAPABILITY:
        return ""
    want = ".".join(map(str, MIN_COMPUTE_CAPABILITY))
    return (
        f"needs compute capability {want} or later (Hopper: H100, H200, GH200; kernels/conv.cu, block0.cu and "
        f"cblock.cu use thread-block clusters, programmatic dependent launch and bulk copies), and GPU 0 ({name}) is "
        f"{major}.{minor}; the cudnn, torch, ort and numpy backends run on it"
    )


def available() -> tuple[bool, str]:
    ok, reason = gpu_status()
    if not ok:
        return False, reason
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        major, minor = int(props["major"]), int(props["minor"])
    except Exception as exc:
        return False, f"cannot query GPU 0's compute capability ({exc.__class__.__name__}: {exc})"
    why = compute_capability_issue(reason, major, minor)
    if why:
        return False, why
    if K.find_nvcc() is None:
        try:
            from cupy.cuda import nvrtc  # noqa: F401
        except Exception as exc:
            return False, f"neither nvcc nor NVRTC is usable to compile kernels/*.cu ({exc})"
    return True, ""


def create(**options: Any) -> CustomBackend:
    return CustomBackend(**options)


def kernel_versions() -> dict[str, tuple[str, ...]]:
    """Families and their versions, for benchmark helpers that iterate v1 -> vN."""
    return dict(KERNEL_VERSIONS)


# -- host-side choices that need no GPU ------------------------------------------------------------
def choose_gemm_tile(m: int, n: int, k: int, batch: int, tiles: tuple, sms: int) -> tuple[int, int, int, int]:
    """Tile shape of the register-blocked GEMM for an (M, N, K) x batch problem.

    Cost model: the busiest SM runs ceil(blocks / SMs) blocks, each costing BM*BN FMAs per k plus
    (TM + TN) shared-memory loads per TM*TN FMAs. Big tiles win when there are many blocks (more
    reuse), small tiles when a big tile would leave SMs idle (batch 1, 7x7 layers) or waste a
    partial tile (N = 16, 24, 32).
    """
    best, best_cost = tiles[0], math.inf
    for tile in tiles:
        bm, bn, tm, tn = tile
        blocks = math.ceil(m / bm) * math.ceil(n / bn) * batch
        per_sm = math.ceil(blocks / sms)
        cost = per_sm * bm * bn * (1.0 + (tm + tn) / (tm * tn))
        if cost < best_cost:
            best, best_cost = tile, cost
    return best


def choose_dwpw_tile(m: int, n: int, k: int, tiles: tuple, sms: int) -> tuple[int, int, int, int]:
    """Tile of the fused depthwise + pointwise kernel (fuse v2): the GEMM cost model of
    ``choose_gemm_tile`` plus the depthwise prologue, redone by every column tile: per row and k,
    9 FMAs and 9 float4 window loads (counted as ~18 FMA-equivalents)."""
    best, best_cost = tiles[0], math.inf
    for tile in tiles:
        bm, bn, tm, tn = tile
        blocks = math.ceil(m / bm) * math.ceil(n / bn)
        per_sm = math.ceil(blocks / sms)
        cost = per_sm * (bm * bn * (1.0 + (tm + tn) / (tm * tn)) + 18.0 * bm)
        if cost < best_cost:
            best, best_cost = tile, cost
    return best


def exdwpw6_configs(
    h: int, w: int, cin: int, ce: int, cout: int, ho: int, wo: int, stride: int, wide: bool = False, v14: bool = False,
    v39: bool = False,
) -> list[tuple[int, int, int]]:  # fmt: skip
    """Every (CH, TR, CL) the fuse v6 block kernel (kernels/cblock.cu) can run a block with: CH expanded channels per
    block and clusters of CL blocks, a compiled build (K.EXDWPW6_CH with CL = 8; with ``wide``, fuse v13, also
    K.EXDWPW6_WIDE; with ``v14`` also K.EXDWPW6_V14; with ``v39`` also K.EXDWPW6_V39, whose builds run at 512 threads
    only) dividing CE into whole clusters, TR = ceil(Ho / tiles) for each tile count (balanced row tiles), shared
    memory within the per-block limit."""
    builds = [(ch, 8) for ch in K.EXDWPW6_CH] + (list(K.EXDWPW6_WIDE) if wide else [])
    builds += list(K.EXDWPW6_V14) if v14 else []
    builds += list(K.EXDWPW6_V39) if v39 else []
    out = []
    for ch, cl in builds:
        if ce % (cl * ch):
            continue
        for tr in sorted({math.ceil(ho / t) for t in range(1, ho + 1)}, reverse=True):
            if K.exdwpw6_smem(h, w, cin, cout, wo, stride, tr, ch) <= K.EXDWPW6_MAX_SMEM:
                out.append((ch, tr, cl))
    return out


def exdwpw6_cost(nb: int, h: int, w: int, cin: int, ce: int, cout: int, ho: int, wo: int, stride: int, sms: int,
                 cfg: tuple[int, int, int]) -> float:  # fmt: skip
    """Estimated cycles of the fuse v6 block kernel with cfg = (CH, TR, CL): waves x the busiest block's chain of
    staging (L2 -> shared at ~8 B / clk / block + ~1500 cycles latency: fitted to the H100 sweep, where the 8 x NG
    blocks of a row tile all read the same input rows), expansion, depthwise and projection (issue cycles of 2 warps
    per scheduler: per 4-k step 16 FMAs + 5 shared loads), the cluster reduce (8 DSMEM loads per float4 of the slice)
    and, with several clusters per tile, the global hand-off (~2500 cycles)."""
    ch, tr, cl = cfg
    rows = min(h, (tr - 1) * stride + 3)
    ng = ce // (cl * ch)
    st = math.ceil(ho / tr)
    blocks = cl * ng * st * nb
    smem = K.exdwpw6_smem(h, w, cin, cout, wo, stride, tr, ch)
    per_sm = max(1, min(2, (228 * 1024) // (smem + 1024)))
    waves = math.ceil(blocks / (sms * per_sm))
    stage = 1500 + 4 * (rows * w * cin + cin * ch + ch * cout) / 8
    exp = math.ceil(math.ceil(rows * w / 32) * (ch // 4) / 8) * (cin // 4) * 21
    dw = math.ceil(math.ceil(tr * wo / 32) * (ch // 4) / 8) * 60
    proj = math.ceil(math.ceil(tr * wo / 32) * (cout // 4) / 8) * ((ch // 4) * 21 + 6)
    red = 600 + math.ceil(tr * wo * cout / 4 / cl / 256) * cl * 40 + (2500 + 40 * ng if ng > 1 else 0)
    return waves * (stage + 2 * (exp + dw + proj) + red)


def choose_exdwpw6(nb: int, h: int, w: int, cin: int, ce: int, cout: int, ho: int, wo: int, stride: int,
                   sms: int, per_sm: int = 1, wide: bool = False,
                   v14: bool = False) -> tuple[int, int, int] | None:  # fmt: skip
    """(CH, TR, CL) of the fuse v6 block kernel with the least estimated cost (exdwpw6_cost) among those of at most
    ``per_sm`` blocks per SM (measured on H100 at batch 1 in session 5: the fastest configuration of every network
    block had 96-128 blocks; on the H200 in session 11, after the multicast staging, 224-240 blocks on the stride-1
    14x14 / 28x28 blocks: fuse v9 passes 2), None if none fits."""
    cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, stride, wide, v14)
    cfgs = exdwpw6_one_wave(cfgs, nb, ce, ho, sms, per_sm)
    if not cfgs:
        return None
    return min(cfgs, key=lambda c: exdwpw6_cost(nb, h, w, cin, ce, cout, ho, wo, stride, sms, c))


def exdwpw6_one_wave(cfgs: list, nb: int, ce: int, ho: int, sms: int, per_sm: int) -> list:
    """The configurations whose grid runs in one wave of ``per_sm`` blocks per SM, or all of them if none does."""
    return [c for c in cfgs if nb * (ce // c[0]) * math.ceil(ho / c[1]) <= per_sm * sms] or cfgs


def _exdwpw6_flop(shape: tuple, ce: int, cout: int, ho: int, wo: int) -> float:
    """FLOP of a bottleneck block on an NHWC input of ``shape``: expansion + depthwise 3x3 + projection."""
    nb, h, w, cin = shape
    return 2.0 * nb * (h * w * cin * ce + ho * wo * ce * (9 + cout))


def split_k(blocks: int, k: int, sms: int) -> int:
    """How many K splits (gemm v5) for a GEMM of ``blocks`` output tiles: enough for ~4 blocks per SM
    when the tiles alone leave SMs idle, at least 32 k per split, only for K >= 128; 1 = no split.
    The count is trimmed so that no split is empty (chunks are whole 8-wide k-steps)."""
    if blocks >= sms or k < 128:
        return 1
    s = min(max(1, (4 * sms) // blocks), k // 32, 32)
    if s < 2:
        return 1
    chunk = math.ceil(math.ceil(k / s) / 8) * 8
    return max(1, math.ceil(k / chunk))


def plan_buffers(sizes: list[int], last_use: list[int]) -> list[int]:
    """Assign each op's output (in order) to a buffer slot; a slot is reused once its tensor is dead.

    ``sizes[i]``: elements of op i's output; ``last_use[i]``: index of the last op reading it.
    Returns slot per op; slot sizes are the max over their tenants (see ``slot_sizes``).
    """
    slot_of: list[int] = []
    slot_free_after: list[int] = []  # op index after which the slot's current tenant is dead
    for i, _ in enumerate(sizes):
        free = [s for s, t in enumerate(slot_free_after) if t < i]
        # prefer the free slot whose current size is closest to ours (keeps big slots for big tensors)
        if free:
            s = min(free, key=lambda s: abs(_slot_size(slot_of, sizes, s) - sizes[i]))
        else:
            s = len(slot_free_after)
            slot_free_after.append(-1)
        slot_of.append(s)
        slot_free_after[s] = max(last_use[i], i)
    return slot_of


def _slot_size(slot_of: list[int], sizes: list[int], s: int) -> int:
    return max((sizes[i] for i, t in enumerate(slot_of) if t == s), default=0)


def slot_sizes(slot_of: list[int], sizes: list[int]) -> list[int]:
    return [_slot_size(slot_of, sizes, s) for s in range(max(slot_of) + 1)] if slot_of else []


# -- launches ------------------------------------------------------------------------------------------
# the driver API's cuLaunchKernelEx structures (CUDA 12+ ABI): programmatic dependent launch (Launch.pdl) and
# scripts/pdl_probe.py
class AccessPolicyWindow(ctypes.Structure):  # CUaccessPolicyWindow
    _fields_ = [
        ("base_ptr", ctypes.c_void_p),
        ("num_bytes", ctypes.c_size_t),
        ("hitRatio", ctypes.c_float),
        ("hitProp", ctypes.c_int),
        ("missProp", ctypes.c_int),
    ]


class LaunchAttrValue(ctypes.Union):
    _fields_ = [("pad", ctypes.c_char * 64), ("i", ctypes.c_int), ("window", AccessPolicyWindow)]


class LaunchAttr(ctypes.Structure):
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4), ("value", LaunchAttrValue)]


class LaunchConfig(ctypes.Structure):
    _fields_ = [
        ("gridDimX", ctypes.c_uint),
        ("gridDimY", ctypes.c_uint),
        ("gridDimZ", ctypes.c_uint),
        ("blockDimX", ctypes.c_uint),
        ("blockDimY", ctypes.c_uint),
        ("blockDimZ", ctypes.c_uint),
        ("sharedMemBytes", ctypes.c_uint),
        ("hStream", ctypes.c_void_p),
        ("attrs", ctypes.POINTER(LaunchAttr)),
        ("numAttrs", ctypes.c_uint),
    ]


PROGRAMMATIC_STREAM_SERIALIZATION = 6  # CUlaunchAttributeID
ACCESS_POLICY_WINDOW = 1  # CUlaunchAttributeID (session 40: MBV2_L2_PERSIST)
ACCESS_PROPERTY_STREAMING, ACCESS_PROPERTY_PERSISTING = 1, 2  # CUaccessProperty
LIMIT_PERSISTING_L2_CACHE_SIZE = 0x06  # cudaLimit
NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14  # CUfunction_attribute (cuda.h)


def launch_attrs(window: tuple[int, int, float] | None) -> tuple[Any, int]:
    """cuLaunchKernelEx's attribute array for a programmatic dependent launch, and its length: the PDL attribute, then
    (MBV2_L2_PERSIST) an access-policy window (base pointer, bytes, hit ratio; hits persisting, misses streaming)."""
    attrs = (LaunchAttr * 2)()
    attrs[0].id = PROGRAMMATIC_STREAM_SERIALIZATION
    attrs[0].value.i = 1
    if window is None:
        return attrs, 1
    ptr, nbytes, ratio = window
    attrs[1].id = ACCESS_POLICY_WINDOW
    props = (ACCESS_PROPERTY_PERSISTING, ACCESS_PROPERTY_STREAMING)  # hits, misses
    attrs[1].value.window = AccessPolicyWindow(ptr, nbytes, ratio, *props)
    return attrs, 2


def _driver_fn(name: str, argtypes: list | None = None) -> Any:
    """A CUDA driver entry point (libcuda, returning a CUresult), or None where it cannot be loaded."""
    try:
        fn = getattr(ctypes.CDLL("libcuda.so.1"), name)
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    if argtypes is not None:
        fn.argtypes = argtypes
    return fn


def _driver_launch_ex() -> Any:
    """cuLaunchKernelEx of the CUDA driver (CUDA >= 12.0), or None where it cannot be loaded."""
    return _driver_fn("cuLaunchKernelEx")


def _ctype_arg(a: Any) -> Any:
    if isinstance(a, np.int32):
        return ctypes.c_int(int(a))
    if isinstance(a, np.int64):
        return ctypes.c_longlong(int(a))
    return ctypes.c_uint64(a.data.ptr)  # a device array


@dataclass
class Launch:
    name: str
    kernel: Any
    grid: tuple[int, ...]
    block: tuple[int, ...]
    args: tuple
    smem: int = 0
    coop: bool = False  # cooperative launch (net v2, fuse v10: a grid barrier needs co-residency)
    pdl: bool = False  # programmatic dependent launch (cuLaunchKernelEx; the kernel calls griddepcontrol.wait)

    def __post_init__(self) -> None:
        # CuPy's RawKernel.__call__ takes the cooperative flag from its constructor only: a cooperative launch goes
        # through CooperativeKernel (cuLaunchCooperativeKernel on the CUfunction), which sets it on every call
        if self.coop and not isinstance(self.kernel, CooperativeKernel):
            raise TypeError(f"cooperative launch of {self.name}: the kernel must be a CooperativeKernel")


@dataclass
class Plan:
    batch: int
    stage_in: Any  # (N, C, H, W) upload target
    out: Any  # the network's output (N, classes)
    launches: list[Launch]
    op_ranges: list[tuple[str, int, int]]  # (label, first launch, end) for NVTX ranges
    buffers: list[Any] = field(default_factory=list)
    sync: list[Any] = field(default_factory=list)  # fuse v43: flags, counters, the forward's number (never poisoned)
    graph: Any = None
    host_in: Any = None  # page-locked host staging (async H2D / D2H in run())
    host_out: Any = None


def _load_module(cupy: Any, b: K.Built) -> Any:
    """A built kernel file as a CuPy module: its cubin, or without nvcc its source through NVRTC."""
    if b.path is not None:
        return cupy.RawModule(path=str(b.path))
    return cupy.RawModule(code=b.source, options=("-std=c++17",))


def _pinned(shape: tuple[int, ...]) -> np.ndarray:
    """A page-locked float32 host array (plain NumPy where CuPy cannot give one)."""
    try:
        import cupyx

        return cupyx.empty_pinned(shape, np.float32)
    except Exception:
        return np.empty(shape, np.float32)


def _i32(v: int) -> np.int32:
    return np.int32(v)


def _i64(v: int) -> np.int64:
    return np.int64(v)


_MODULE_CACHE: dict[str, tuple[dict[str, Any], str]] = {}
# The process-wide measuring options per device key of _MODULE_CACHE, as the first backend of this process ran with
# them: MBV2_CARVEOUT (K.carveout_option; None: the driver's default) is an attribute of the loaded functions, and
# MBV2_PDL_TRIGGER (K.pdl_trigger_option), MBV2_STAGE (K.stage_option) and MBV2_TICKET (K.ticket_option) say how
# their files were compiled. Every backend of the process shares those functions (_MODULE_CACHE, and the fixed builds
# loaded by name into it), so a backend with another value would change the first one's kernels too: it is refused.
_PROCESS_OPTIONS: dict[str, dict[str, Any]] = {}


def load_tune_picks(src: str | dict[str, str]) -> dict[str, str]:
    """An autotuner picks mapping (repr(key) -> repr(pick), as ``CustomBackend.tuned`` and run.json's ``tuned``) from
    a mapping, or a JSON file holding one (or {"tuned": mapping}). A pytest-benchmark run.json holds one per benchmark:
    `python -m mbv2 picks run.json --bench NAME` writes the one wanted. Anything else: an InputError."""
    import json
    from pathlib import Path

    what = "tune_picks"
    if isinstance(src, str):
        what = f"tune_picks file {src}"
        try:
            data: Any = json.loads(Path(src).read_text())
        except FileNotFoundError:
            raise InputError(f"{what}: no such file") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{what}: not readable JSON ({exc})") from None
    else:
        data = src
    if isinstance(data, dict) and "benchmarks" in data:
        raise InputError(
            f"{what} is a pytest-benchmark run with one set of picks per benchmark: write the one wanted with "
            "`python -m mbv2 picks RUN_JSON --bench NAME --out picks.json` and pass that"
        )
    if isinstance(data, dict) and isinstance(data.get("tuned"), dict):
        data = data["tuned"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InputError(f"{what}: expected a JSON object of repr(key) -> repr(pick) strings (CustomBackend.tuned)")
    return dict(data)


class CustomBackend(Block0Mixin, HalfMixin, Backend):
    name = "custom"
    dtypes = ("fp32", "fp16")  # fp16: kernels/half.cu through impls/_custom_fp16.py (tensor cores)
    TUNE_REPEATS = 5
    TUNE_ROUNDS = 3
    TUNE_HIDE_LAUNCH = True  # a spin kernel before each timed window (_tuned); False: the windows as before
    TUNE_SPIN_US_PER_LAUNCH = 12.0  # the cover's first length per launch in a window (the host path is ~5-8 us)
    TUNE_SPIN_MAX_US = 20_000.0
    # autotune problems of at least this many FLOP: 0 = every problem, batch 1 too (1e8, i.e. batch >= ~8, until
    # session 14: with the launch-latency cover, tuning batch 1 - 4 measured faster; results/NOTES.md)
    TUNE_MIN_FLOP = 0.0
    # plan_tune (session 18; off by default, plan_tune=True / MBV2_PLAN_TUNE=1): at batch <= PLAN_TUNE_MAX_BATCH, after
    # the plan is built, each tuned launch's near alternatives (per tuner stage the candidates within PLAN_TUNE_WITHIN
    # of the best isolated time, at most PLAN_TUNE_ALTS of them) are timed in place: a CUDA graph of the whole plan
    # each, PLAN_TUNE_ROUNDS interleaved rounds of PLAN_TUNE_REPLAYS replays, the best round counts (_plan_tune).
    # Measured no gain (H200, session 18: batch 1 0.1451 ms on vs 0.1444 off, 3 instances each): the whole-plan time
    # moves 0.3-0.7 us between graph instances and buffer sets of one plan (scripts/instance_spread.py, H100), as
    # much as the gains it looks for (results/NOTES.md "plan_tune measured")
    PLAN_TUNE_MAX_BATCH = 8
    PLAN_TUNE_WITHIN = 0.10
    PLAN_TUNE_ALTS = 2
    PLAN_TUNE_ROUNDS = 5
    PLAN_TUNE_REPLAYS = 10

    def __init__(
        self,
        dtype: str = "fp32",
        kernels: str | dict[str, str] | None = None,
        graph: bool = False,
        debug: bool | None = None,
        batch: int | list[int] | None = None,
        autotune: bool | None = None,
        pdl: bool | None = None,
        plan_tune: bool | None = None,
        tune_picks: str | dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(dtype=dtype, **options)
        spec = kernels if kernels is not None else os.environ.get(K.ENV_VAR, "")
        self.versions = K.parse_versions(spec)
        # fuse v6+: the largest batch whose plan runs the <= 28x28 bottleneck blocks as exdwpw6 kernels (per backend,
        # so that an A/B can change it for one instance: scripts/e2e_ab.py block6max=)
        self.exdwpw6_max_batch = K.exdwpw6_max_batch(self.versions["fuse"])
        self.graph = bool(graph)
        self.debug = bool(int(os.environ.get("MBV2_DEBUG", "0") or 0)) if debug is None else bool(debug)
        self.preplan = [batch] if isinstance(batch, int) else list(batch or [])
        self.force_tile: tuple[int, int, int, int] | None = None  # benchmarks: pin the GEMM tile
        # tests / benchmarks: pin fuse v6's (CH, TR, CL) (v15: or (CH, TR, CL, NT); v16: (CH, TR, CL, NT, proj_cols))
        self.force_block6: tuple[int, ...] | None = None
        self.force_exgdw: int | str | None = None  # tests: pin a fuse v7 build (K.EXGDW_VARIANTS) or "pair"
        self.force_block8: str | None = None  # tests: pin a fuse v8 build (K.exdwpw8_builds), "block" (v5) or "pair"
        self.force_pwpool: str | None = None  # tests: pin a fuse v9 head kernel ("pwpool" / "pwpool_c8")
        self.force_tile5: tuple[int, int] | None = None  # tests: pin any compiled exdwpw5 tile (TH, TW)
        # autotune: time every GEMM / dwpw tile shape once per problem at plan time (see _tuned)
        env_tune = bool(int(os.environ.get("MBV2_AUTOTUNE", "1") or 0))
        self.autotune = env_tune if autotune is None else bool(autotune)
        # MBV2_TUNE_MIN_FLOP: the smallest problem (FLOP) the autotuner times, over the class default
        env_flop = os.environ.get("MBV2_TUNE_MIN_FLOP", "").strip()
        if env_flop:
            try:
                self.TUNE_MIN_FLOP = float(env_flop)
            except ValueError:
                raise InputError(f"MBV2_TUNE_MIN_FLOP={env_flop!r}: expected a number of FLOP, e.g. 0 or 1e8") from None
            if not self.TUNE_MIN_FLOP >= 0:
                raise InputError(f"MBV2_TUNE_MIN_FLOP={env_flop!r}: expected a number >= 0")
        # plan_tune: the tuned launches' near alternatives timed inside the whole plan (_plan_tune; off by default,
        # MBV2_PLAN_TUNE=1 or plan_tune=True turns it on; it needs the autotuner)
        env_pt = os.environ.get("MBV2_PLAN_TUNE", "0").strip() or "0"
        if env_pt not in ("0", "1"):
            raise InputError(f"MBV2_PLAN_TUNE={env_pt!r}: expected 0 or 1")
        self.plan_tune = (env_pt == "1") if plan_tune is None else bool(plan_tune)
        self.flag_extra = K.flag_extra_defines()  # session 30's measuring variants of the flag twins (MBV2_FLAG_EXTRA)
        # MBV2_CARVEOUT (session 31): the shared-memory carveout of every kernel this backend fetches (_fn); None: the
        # driver's default. One value per process (_PROCESS_OPTIONS), as MBV2_PDL_TRIGGER's
        self.carveout = K.carveout_option()
        self.pdl_trigger = K.pdl_trigger_option()  # MBV2_PDL_TRIGGER (session 31): "end" or "early"; one per process
        self.stage = K.stage_option()  # MBV2_STAGE (session 33): "sync" or "async"; one per process
        self.l2_persist = K.l2_persist_option()  # MBV2_L2_PERSIST (session 40): "off" or "head"; one per process
        self.l2_set_aside = 0  # bytes of the L2 set aside for persisting lines (MBV2_L2_PERSIST=head)
        self.b0split = K.b0split_option()  # MBV2_B0SPLIT (session 38): "0" or "1"; one per process
        self.ticket = K.ticket_option()  # MBV2_TICKET (session 49): "acq_rel" or "sc"; one per process
        # fuse v45: the plan positions whose launches run on their early-trigger twins (_trigger_twins; None: every
        # launch that has one). Session 33: so that the hand-offs that gain can be kept alone (scripts/trigger_mask.py
        # picks them from prefix times; scripts/e2e_ab.py trig=)
        self.trigger_launches: frozenset[int] | None = None
        # fuse v47: the plan positions whose exdwpw5 launches run on their staged twins (_trigger_twins; None: those of
        # K.EXDWPW5_ASYNC_BUILDS). Session 37: to time each launch's staging alone (scripts/e2e_ab.py stage=)
        self.stage_launches: frozenset[int] | None = None
        self._carved: set[str] = set()
        # tune_picks / MBV2_TUNE_PICKS: an earlier run's autotuner picks (``tuned``: repr(key) -> repr(pick); a JSON
        # file of them, e.g. from `python -m mbv2 picks run.json`), replayed instead of timed where a key matches
        picks = tune_picks if tune_picks is not None else (os.environ.get("MBV2_TUNE_PICKS", "").strip() or None)
        self.tune_picks_source = picks if isinstance(picks, str) else ("mapping" if picks is not None else "")
        self._picks: dict[str, str] = load_tune_picks(picks) if picks is not None else {}
        self.tune_replayed: list[str] = []  # the keys whose pick came from tune_picks
        self.tune_timed: list[str] = []  # the keys the autotuner timed (no recorded pick)
        self._tune_cache: dict[tuple, tuple[int, int, int, int]] = {}
        self._tune_times: dict[tuple, list[tuple[float, Any]]] = {}  # key -> (best round ms, candidate), fastest first
        # id(first launch) -> (the tuned launches, tuner key, build, their pick, alternatives): what _plan_tune may swap
        self._alts: dict[int, tuple[tuple[Launch, ...], tuple, Any, Any, list]] = {}
        self.plan_tuned: dict[int, list[dict[str, Any]]] = {}  # batch -> the launches _plan_tune changed
        self._planning = False  # inside plan()'s fp32 per-layer path: the tuned launches' alternatives are kept
        self.tuned: dict[str, str] = {}
        self._cp: Any = None
        self.stream: Any = None
        self._fns: dict[str, Any] = {}
        self._nonportable: set[str] = set()  # kernels opted in to clusters of more than 8 blocks
        self._params: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._plans: dict[int, Plan] = {}
        self._fallbacks: set[str] = set()
        self._capturing = False
        self._ws: Any = None
        self._cnt: Any = None
        self._bar10: Any = None  # fuse v10: the grid barrier counter of exdwpw10 (uint32, any start value)
        # programmatic dependent launch of the kernels written for it (fuse v6's exdwpw6, fuse v28's exdwpw5):
        # pdl=True / MBV2_PDL=1 on every fuse version, pdl=False / MBV2_PDL=0 never, unset as the fuse version says
        # (v27: exdwpw6, v28: exdwpw5 too), where the driver has cuLaunchKernelEx and the GPU is sm_90+. Measured
        # 13-26 us SLOWER at batch 1 on the H100 in session 5 (results/NOTES.md, fuse v6), 10 us faster on the H200
        # in session 21 (fuse v27)
        env_pdl = os.environ.get("MBV2_PDL", "").strip()
        self.pdl_option: bool | None = bool(pdl) if pdl is not None else (bool(int(env_pdl)) if env_pdl else None)
        self.pdl = False
        self._launch_ex: Any = None
        self.arch = ""
        self.compiler = ""
        self.sms = 132

    # -- lifecycle ---------------------------------------------------------------------------------
    def _ensure_device(self) -> None:
        if self._cp is not None:
            return
        ok, reason = available()
        if not ok:
            raise BackendUnavailable(f"backend 'custom' is not available: {reason}")
        import cupy

        self._cp = cupy
        dev = cupy.cuda.Device()
        self.arch = str(dev.compute_capability)
        self.sms = int(dev.attributes["MultiProcessorCount"])
        self.stream = cupy.cuda.Stream(non_blocking=False)
        if int(self.arch) >= 90:  # cuLaunchKernelEx: the pdl option, linear v5's GEMV
            self._launch_ex = _driver_launch_ex()
        self.pdl = bool(self.pdl_option) and self._launch_ex is not None
        if self.l2_persist == "head":  # a limit of the process's context: set once, before any capture
            most = int(cupy.cuda.runtime.getDeviceProperties(dev.id).get("persistingL2CacheMaxSize", 0))
            if most <= 0:
                raise InputError(f"{K.L2_PERSIST_ENV}=head: this GPU sets aside no L2 for persisting accesses")
            self.l2_set_aside = min(most, K.L2_PERSIST_BYTES)
            cupy.cuda.runtime.deviceSetLimit(LIMIT_PERSISTING_L2_CACHE_SIZE, self.l2_set_aside)
        key = f"{dev.id}:{self.arch}"
        if key not in _MODULE_CACHE:
            built = K.build_all(self.arch)
            fns: dict[str, Any] = {}
            compiler = ""
            for name, b in built.items():
                mod = _load_module(cupy, b)
                if b.path is not None:
                    compiler = f"nvcc {' '.join(K.NVCC_FLAGS)} -arch=sm_{self.arch}"
                    specific = [f"{n}.cu: sm_{K.file_arch(n, self.arch)}" for n in K.ARCH_SPECIFIC_FILES]
                    if any(K.file_arch(n, self.arch) != self.arch for n in K.ARCH_SPECIFIC_FILES):
                        compiler += f" ({', '.join(specific)})"
                else:
                    compiler = "nvrtc (CuPy, nvcc not found)"
                for fam in KERNEL_VERSIONS:
                    for ver in KERNEL_VERSIONS[fam]:
                        for file, kname in K.kernels_of(fam, ver):
                            if file == name and kname not in fns:
                                fns[kname] = mod.get_function(kname)
                if name == "layout":
                    fns["transpose_batched"] = mod.get_function("transpose_batched")
                    fns["nchw_to_nhwc_smallc"] = mod.get_function("nchw_to_nhwc_smallc")
                if name == "half":
                    for kname in K.HALF_HELPERS:
                        fns[kname] = mod.get_function(kname)
            _MODULE_CACHE[key] = (fns, compiler)
        self._fns, self.compiler = _MODULE_CACHE[key]
        mine = {K.CARVEOUT_ENV: self.carveout, K.PDL_TRIGGER_ENV: self.pdl_trigger, K.STAGE_ENV: self.stage}
        mine[K.L2_PERSIST_ENV] = self.l2_persist
        mine[K.TICKET_ENV] = self.ticket  # (kernels/cblock.cu's builds: the whole file and the fixed ones, by name)
        first = _PROCESS_OPTIONS.setdefault(key, mine)
        for env, value in mine.items():
            if first[env] != value:
                now, before = ("unset" if v is None else v for v in (value, first[env]))
                raise InputError(
                    f"{env}={now}: this process already runs the custom kernels with {env}={before}; the option"
                    " changes the loaded kernels, which every backend of a process shares. Use one process per value"
                )

    def prepare(self, net: Network) -> None:
        super().prepare(net)
        self._ensure_device()
        self._plans.clear()
        for layer in net.layers:
            if isinstance(layer, (Conv2d, Linear)):
                self._layer_params(layer)
        for b in self.preplan:
            self.plan(b)

    def close(self) -> None:
        self._plans.clear()
        self._params.clear()
        self._ws = None

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "kernel_versions": dict(self.versions),
            "layout": "NHWC",
            "graph": self.graph,
            "arch": f"sm_{self.arch}" if self.arch else "",
            "compiler": self.compiler,
            "fallbacks": sorted(self._fallbacks),
            "autotune": self.autotune,
            "tune_min_flop": self.TUNE_MIN_FLOP,
            "tune_hide_launch": self.TUNE_HIDE_LAUNCH,
            "pdl": self.pdl_option if self.pdl_option is not None else "by fuse version",
            "pdl_launches": sorted(
                {K.generic_of(la.name) for p in self._plans.values() for la in p.launches if la.pdl}
            ),
            "plan_tune": self.plan_tune,
            "carveout": self.carveout if self.carveout is not None else "driver default",
            "pdl_trigger": self.pdl_trigger,
            "stage": self.stage,
            **({"l2_persist": self.l2_persist, "l2_set_aside": self.l2_set_aside} if self.l2_persist != "off" else {}),
            **({"b0split": self.b0split} if self.b0split != "0" else {}),
            **({"ticket": self.ticket} if self.ticket != "acq_rel" else {}),
            **({"trigger_launches": sorted(self.trigger_launches)} if self.trigger_launches is not None else {}),
            **({"stage_launches": sorted(self.stage_launches)} if self.stage_launches is not None else {}),
            **({"flag_extra": list(self.flag_extra)} if self.flag_extra else {}),
            "plan_tuned": {str(b): ch for b, ch in sorted(self.plan_tuned.items())},
            "tune_picks": {
                "source": self.tune_picks_source,
                "recorded": len(self._picks),
                "replayed": len(self.tune_replayed),
                "timed": len(self.tune_timed),
            },
        }

    # -- weights -------------------------------------------------------------------------------------
    def _layer_params(self, layer: Conv2d | Linear) -> dict[str, Any]:
        if self.dtype == "fp16":
            return self._h_params(layer)
        hit = self._params.get(id(layer))
        if hit is not None and hit[0] is layer:
            return hit[1]
        cp = self._cp
        p: dict[str, Any] = {"bias": cp.asarray(np.ascontiguousarray(layer.bias, np.float32))}
        w = np.asarray(layer.weight, np.float32)
        if isinstance(layer, Linear):
            if w.shape != (layer.out_features, layer.in_features):
                raise InputError(f"Linear weight shape {w.shape}, expected {(layer.out_features, layer.in_features)}")
            p["w"] = cp.asarray(np.ascontiguousarray(w))  # (OUT, IN) for the GEMV
            p["wt"] = cp.asarray(np.ascontiguousarray(w.T))  # (IN, OUT) for the GEMM
        else:
            cout, cin, k, g = layer.out_channels, layer.in_channels, layer.kernel, layer.groups
            if w.shape != (cout, cin // g, k, k):
                raise InputError(f"Conv2d weight shape {w.shape}, expected {(cout, cin // g, k, k)}")
            if layer.is_pointwise:
                p["kind"] = "pointwise"
                p["wt"] = cp.asarray(np.ascontiguousarray(w.reshape(cout, cin).T))  # (Cin, Cout)
                p["w"] = cp.asarray(np.ascontiguousarray(w.reshape(cout, cin)))  # (Cout, Cin): NCHW GEMM
            elif layer.is_depthwise:
                if k != 3:
                    raise InputError(f"depthwise conv with kernel {k}: only 3x3 is implemented")
                p["kind"] = "depthwise"
                p["w"] = cp.asarray(np.ascontiguousarray(w.reshape(cout, 9).T))  # (9, C)
            elif g == 1:
                p["kind"] = "stem"
                kk = k * k * cin
                kp = (kk + 3) // 4 * 4
                wk = np.zeros((kp, cout), np.float32)
                wk[:kk] = w.transpose(2, 3, 1, 0).reshape(kk, cout)  # rows ordered (ky, kx, ci)
                p["wt"] = cp.asarray(wk)
                p["kp"] = kp
            else:
                raise InputError(f"grouped conv with groups={g} (not depthwise) is not implemented")
        self._params[id(layer)] = (layer, p)
        return p

    # -- checks --------------------------------------------------------------------------------------
    def _check_dev(self, a: Any, what: str, ndim: int | None = None) -> None:
        cp = self._cp
        if not isinstance(a, cp.ndarray):
            if isinstance(a, np.ndarray):
                raise InputError(f"{what}: got a host NumPy array; pass a device array from backend.to_device()")
            raise InputError(f"{what}: expected a CuPy device array, got {type(a).__name__}")
        if a.dtype != cp.float32:
            raise InputError(f"{what}: dtype {a.dtype}, expected float32")
        if not a.flags.c_contiguous:
            raise InputError(f"{what}: array is not C-contiguous (shape {a.shape}, strides {a.strides})")
        if ndim is not None and a.ndim != ndim:
            layout = {4: "NHWC (N, H, W, C)", 2: "(N, F)"}.get(ndim, f"rank {ndim}")
            raise InputError(f"{what}: shape {a.shape} has rank {a.ndim}, expected {layout}")
        if a.size == 0:
            raise InputError(f"{what}: empty array {a.shape}")

    def _check_out(self, out: Any, shape: tuple[int, ...], what: str) -> None:
        self._check_dev(out, what)
        if tuple(out.shape) != tuple(shape):
            raise InputError(f"{what}: shape {tuple(out.shape)}, expected {tuple(shape)}")

    def _chain_out(
        self, what: str, x: Any, layers: tuple[tuple[str, Conv2d], ...], residual: Any, out: Any, half: bool = False
    ) -> Any:
        """The fused-op entry check: ``layers`` ((kind, conv) with kind "pointwise" / "depthwise", in order)
        must chain on the NHWC ``x``; the residual (if any) and ``out`` (if given) must have the chain's output
        shape; returns ``out`` or a new output array (float16 with ``half``)."""
        nb, h, w, c = x.shape
        ok = True
        for kind, lay in layers:
            ok = ok and lay.in_channels == c and (lay.is_pointwise if kind == "pointwise" else lay.is_depthwise)
            (h, w), c = lay.out_hw(h, w), lay.out_channels
        if not ok:
            chain = " then ".join(f"{kind} {lay.in_channels}->{lay.out_channels}" for kind, lay in layers)
            raise InputError(f"{what}: {chain} on NHWC {tuple(x.shape)} do not chain")
        oshape = (nb, h, w, c)
        check = self._h_check_out if half else self._check_out
        if residual is not None:
            check(residual, oshape, f"{what} residual")
        if out is None:
            return self._h_empty(oshape) if half else self._empty(oshape)
        check(out, oshape, f"{what} out")
        return out

    def _empty(self, shape: tuple[int, ...]) -> Any:
        with self.stream:
            out = self._cp.empty(shape, self._cp.float32)
            if self.debug:
                out.fill(np.nan)
        return out

    @staticmethod
    def _aligned(*arrays: Any) -> bool:
        return all(a.data.ptr % 16 == 0 for a in arrays)

    # -- launch builders (no launch, no allocation) ---------------------------------------------------
    def _fn(self, name: str) -> Any:
        """A loaded kernel by name; with MBV2_CARVEOUT set, given that shared-memory carveout first (once per name)."""
        fn = self._fns[name]
        if self.carveout is not None and name not in self._carved:
            try:
                fn.preferred_shared_memory_carveout = self.carveout
            except Exception as exc:  # CuPy raises the driver's error (CUDADriverError)
                raise CudaError(f"{name}: setting the shared-memory carveout to {self.carveout}%: {exc}") from exc
            self._carved.add(name)
        return fn

    def _workspace(self, n: int) -> Any:
        """Split-K partial sums: one buffer shared by every GEMM (they run in order on one stream).
        Grows at plan / op-call time only; launch lists keep the arrays they were built with alive."""
        if self._ws is None or self._ws.size < n:
            old = 0 if self._ws is None else self._ws.size
            with self.stream:
                self._ws = self._cp.empty((max(n, 2 * old),), self._cp.float32)
        return self._ws

    def _gemm(
        self,
        a: Any,
        b: Any,
        c: Any,
        bias: Any,
        r: Any,
        m: int,
        n: int,
        k: int,
        *,
        batch: int = 1,
        sa: int = 0,
        sb: int = 0,
        sc: int = 0,
        bias_mode: int = 1,
        act: bool = False,
        version: str | None = None,
    ) -> list[Launch]:
        ver = version or self.versions["gemm"]
        has_res = r is not None
        tail = (_i32(bias_mode), _i32(int(act)), _i32(int(has_res)))
        args = (a, b, c, bias, r if has_res else c, _i32(m), _i32(n), _i32(k), _i64(sa), _i64(sb), _i64(sc), *tail)
        if batch > 65535:
            raise InputError(f"GEMM batch {batch} exceeds the grid limit 65535")
        if ver in ("v1", "v2"):
            tiles = math.ceil(m / 16) * math.ceil(n / 16)
            return [Launch(f"gemm_{ver}", self._fn(f"gemm_{ver}"), (tiles, batch), (16, 16), args)]
        arrays = [a, b, c] + ([r] if has_res else [])
        cw = K.GEMM_SMALLK.get(k, 0)
        if ver == "v6" and batch == 1 and bias_mode == 1 and cw and n % cw == 0 and n // cw <= 256:
            if self._aligned(*arrays) and self.force_tile is None:
                name = f"gemm_smallk_k{k}_c{cw}"
                rpb = 256 // (n // cw)
                grid = (max(1, min(math.ceil(m / rpb), self.sms * 4)),)
                sargs = (a, b, c, bias, r if has_res else c, _i32(m), _i32(n), _i32(int(act)), _i32(int(has_res)))
                return [Launch(name, self._fn(name), grid, (256,), sargs)]
        vec = k % 4 == 0 and n % 4 == 0 and sa % 4 == 0 and sb % 4 == 0 and sc % 4 == 0 and self._aligned(*arrays)
        tiles_avail = K.GEMM_TILES_VEC if vec else K.GEMM_TILES_SCALAR

        tensor_cores = ver == "v7" and vec  # 3xTF32 tiles need the float4 path (else v5's scalar kernels)
        # v8 tiles: float4 path with a 16-byte aligned bias (float4 epilogue); else v5's kernels
        simt8 = K.gemm_simt_tiles(ver) if vec and bias is not None and self._aligned(bias) else ()

        def build(tile: tuple[int, ...], base: str | None = None) -> list[Launch]:
            bm, bn, tm, tn = tile[:4]  # (+ KS for a k-sliced v8 build)
            base = base or ("v4" if ver in K.GEMM_SPLITK_VERSIONS else ver)
            smem = 0
            if base == "v7":  # tile = (BM, BN, warp tile WM, WN), 32 threads per warp
                name, nt = K.gemm_tile_kernel("v7", tile, False), (bm // tm) * (bn // tn) * 32
            elif base == "v8":  # dynamic shared memory: the cp.async ring
                name, nt, smem = K.gemm_tile_kernel("v8", tile, False), K.gemm_simt_threads(tile), K.gemm_v8_smem(tile)
            else:
                name, nt = K.gemm_tile_kernel(base, tile, vec), (bm // tm) * (bn // tn)
            blocks = math.ceil(m / bm) * math.ceil(n / bn)
            splits = split_k(blocks, k, self.sms) if ver in K.GEMM_SPLITK_VERSIONS and batch == 1 else 1
            fn = self._dyn_smem(self._fn(name), smem)
            if splits == 1:
                return [Launch(name, fn, (blocks, batch), (nt,), args, smem=smem)]
            ws = self._workspace(splits * m * n)
            gargs = (a, b, ws, bias, ws, _i32(m), _i32(n), _i32(k), _i64(0), _i64(0), _i64(0), *tail)
            rargs = (ws, c, bias, r if has_res else c, _i32(m), _i32(n), _i32(splits), *tail)
            rgrid = max(1, min(math.ceil(m * n / 256), self.sms * 8))
            return [
                Launch(name, fn, (blocks, 1, splits), (nt,), gargs, smem=smem),
                Launch("gemm_splitk_reduce", self._fn("gemm_splitk_reduce"), (rgrid,), (256,), rargs),
            ]

        if tensor_cores and self.force_tile in K.GEMM_TILES_TC:
            return build(self.force_tile, "v7")  # type: ignore[arg-type]
        if self.force_tile in simt8:
            return build(self.force_tile, "v8")  # type: ignore[arg-type]
        if self.force_tile in tiles_avail:
            return build(self.force_tile)  # type: ignore[arg-type]
        if self.autotune and ver not in ("v1", "v2") and 2.0 * m * n * k * batch >= self.TUNE_MIN_FLOP:
            key = ("gemm", ver, vec, m, n, k, batch, bias_mode, bool(act), has_res)
            # v5 / v6 / v7 also try the v3 kernels (no double buffer: faster on K <= 24, results/NOTES.md);
            # v7 adds its tensor-core tiles (the SIMT ones stay candidates: equal on memory-bound layers)
            bases = ("v4", "v3") if ver in K.GEMM_SPLITK_VERSIONS else (ver,)
            cands = [(t, b) for b in bases for t in tiles_avail]
            if simt8:  # v8 / v9 add their tiles; the model stays v5's
                cands = [(t, "v8") for t in simt8] + cands
            if tensor_cores:
                cands = [(t, "v7") for t in K.GEMM_TILES_TC] + cands
                model = (choose_gemm_tile(m, n, k, batch, K.GEMM_TILES_TC, self.sms), "v7")
            else:
                model = (choose_gemm_tile(m, n, k, batch, tiles_avail, self.sms), bases[0])
            return self._tuned(key, cands, lambda c: build(*c), model)
        if tensor_cores:
            return build(choose_gemm_tile(m, n, k, batch, K.GEMM_TILES_TC, self.sms), "v7")
        return build(choose_gemm_tile(m, n, k, batch, tiles_avail, self.sms))

    def _stream_capturing(self) -> bool:
        if self._capturing:
            return True
        try:
            return bool(self.stream.is_capturing())
        except Exception:  # no such query (older CuPy, the CPU stand-in): only our own captures count
            return False

    def _tuned(self, key: tuple, tiles: Any, build: Any, model: Any) -> list[Launch]:
        """Autotune (on by default; autotune=False / MBV2_AUTOTUNE=0 turns it off): time every
        candidate (tile shape, and for gemm v5 the v3 / v4 kernel) for this problem (CUDA events on the
        backend's stream, on the real buffers, TUNE_ROUNDS interleaved rounds of TUNE_REPEATS calls, each
        window behind a spin-kernel cover so it times the device, not the host's launches; at plan time:
        outside every timed region), keep the fastest; cached per (kernel, shape, batch, flags) for the
        backend's lifetime. The callers time problems of >= TUNE_MIN_FLOP (default 0: every problem; with
        the cover, tuning batch 1 - 8 measured faster, session 14) and use the cost model below it."""
        tile = self._tune_cache.get(key)
        if tile is None and self._stream_capturing():  # no timing inside a capture: the cost model's pick
            return build(model)
        if tile is None and repr(key) in self._picks:  # tune_picks: the recorded pick, untimed
            tile = self._recorded_pick(key, list(tiles))
            self._tune_cache[key] = tile
            self.tuned[repr(key)] = repr(tile)
            self.tune_replayed.append(repr(key))
        if tile is None:
            self.tune_timed.append(repr(key))
            cp = self._cp
            cands = list(tiles)
            builds = [build(cand) for cand in cands]  # (nested tuning, e.g. a pair's GEMM, happens here)
            best = [math.inf] * len(cands)
            with self.stream:
                for launches in builds:
                    for launch in launches:  # warm-up (and first-launch module load)
                        self._launch(launch)
            # TUNE_ROUNDS interleaved rounds, each candidate's best round counts: one round alone mis-picked (fuse v7
            # at batch 64 took a pair 40% slower than its exgdw kernel; results/NOTES.md "fuse v7")
            # TUNE_HIDE_LAUNCH: mbv2.timing.spin (a one-thread kernel) before each window covers the host's launch
            # time, so the window's launches run back to back and it measures device time. Its length starts at
            # TUNE_SPIN_US_PER_LAUNCH per launch of the window and grows to 2x the host's enqueue time of any
            # window that took longer than 0.8x the cover (a window the GPU may have waited in; its candidate's
            # later rounds are covered, and the best round counts).
            spin_us = [20.0 + self.TUNE_SPIN_US_PER_LAUNCH * self.TUNE_REPEATS * len(ls) for ls in builds]
            for _ in range(self.TUNE_ROUNDS):
                for i, launches in enumerate(builds):
                    with self.stream:
                        e0, e1 = cp.cuda.Event(), cp.cuda.Event()
                        if self.TUNE_HIDE_LAUNCH:
                            spin(spin_us[i], self.stream)
                        t0 = time.perf_counter()
                        e0.record(self.stream)
                        for _ in range(self.TUNE_REPEATS):
                            for launch in launches:
                                self._launch(launch)
                        e1.record(self.stream)
                        host_us = (time.perf_counter() - t0) * 1e6
                        e1.synchronize()
                    if host_us > 0.8 * spin_us[i]:
                        spin_us[i] = min(self.TUNE_SPIN_MAX_US, 2.0 * host_us)
                    best[i] = min(best[i], cp.cuda.get_elapsed_time(e0, e1))
            tile = cands[min(range(len(cands)), key=best.__getitem__)]
            self._tune_cache[key] = tile
            self._tune_times[key] = sorted(zip(best, cands), key=lambda tc: tc[0])
            self.tuned[repr(key)] = repr(tile)
        launches = build(tile)
        self._register_alts(launches, key, build, tile, self._near(key, tile))
        return launches

    def _recorded_pick(self, key: tuple, cands: list) -> Any:
        """tune_picks' pick for ``key``: the candidate whose repr it is. A recorded pick that is not among this
        build's candidates means the picks came from other code or options: an InputError, not a silent retune."""
        want = self._picks[repr(key)]
        for c in cands:
            if repr(c) == want:
                return c
        raise InputError(
            f"tune_picks ({self.tune_picks_source}): the recorded pick {want} for {key!r} is not among this "
            f"backend's {len(cands)} candidates (first {[repr(c) for c in cands[:4]]}); the picks come from other "
            "code, kernel versions or options. Record them again, or drop tune_picks / MBV2_TUNE_PICKS."
        )

    def _near(self, key: tuple, best: Any) -> list:
        """The tuner's other candidates for ``key`` within PLAN_TUNE_WITHIN of the fastest isolated time (at most
        PLAN_TUNE_ALTS, fastest first): the alternatives _plan_tune times inside the plan."""
        times = self._tune_times.get(key, [])
        if not times:
            return []
        limit = times[0][0] * (1.0 + self.PLAN_TUNE_WITHIN)
        return [c for t, c in times if c != best and t <= limit][: self.PLAN_TUNE_ALTS]

    def _register_alts(self, launches: list[Launch], key: tuple, build: Any, pick: Any, alts: list) -> None:
        """Remember a tuned launch list (built from ``pick``) and its alternatives for _plan_tune (replacing an earlier
        entry for the same launch); the entry keeps the launches alive, so their ids stay theirs."""
        if self._planning and launches and not self._stream_capturing():  # (an op call's launches are not kept)
            if alts:
                self._alts[id(launches[0])] = (tuple(launches), key, build, pick, list(alts))
            else:
                self._alts.pop(id(launches[0]), None)

    @staticmethod
    def _fusable(dw: Conv2d, pw: Conv2d) -> bool:
        """Shapes that fuse v2 (dwpw kernels) takes: 3x3 depthwise of stride 1 or 2 feeding a pointwise
        conv, channel counts multiples of 4 (float4 staging)."""
        return (
            dw.is_depthwise
            and dw.kernel == 3
            and dw.stride in (1, 2)
            and pw.is_pointwise
            and pw.in_channels == dw.out_channels
            and dw.out_channels % 4 == 0
            and pw.out_channels % 4 == 0
        )

    def _dwpw_launches(
        self, x: Any, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any
    ) -> list[Launch] | None:
        """fuse v2: one dwpw kernel (+ the split-K reduce) for depthwise(x) -> ReLU6 -> pointwise;
        None when the shapes or alignment do not allow it (the caller runs the two layers)."""
        if not self._fusable(dw, pw):
            return None
        pd, pp = self._layer_params(dw), self._layer_params(pw)
        has_res = res is not None
        arrays = [x, out, pd["w"], pd["bias"], pp["wt"], pp["bias"]] + ([res] if has_res else [])
        if not self._aligned(*arrays):
            return None
        nb, h, w, c = x.shape
        ho, wo = dw.out_hw(h, w)
        m, n, k = nb * ho * wo, pw.out_channels, c
        tiles = K.GEMM_TILES_VEC
        tail = (_i32(int(dw_act)), _i32(int(act)), _i32(int(has_res)))
        geo = (_i32(m), _i32(n), _i32(k), _i32(h), _i32(w), _i32(ho), _i32(wo), _i32(dw.pad))
        r = res if has_res else out

        def build(tile: tuple[int, int, int, int]) -> list[Launch]:
            bm, bn, tm, tn = tile
            name = K.dwpw_kernel(dw.stride, tile)
            nt = (bm // tm) * (bn // tn)
            blocks = math.ceil(m / bm) * math.ceil(n / bn)
            gver = self.versions["gemm"]  # the split-K versions but v7 (its dwpw pairs never split)
            splits = split_k(blocks, k, self.sms) if gver in K.GEMM_SPLITK_VERSIONS and gver != "v7" else 1
            if splits == 1:
                args = (x, pd["w"], pd["bias"], pp["wt"], out, pp["bias"], r, *geo, *tail)
                return [Launch(name, self._fn(name), (blocks, 1), (nt,), args)]
            ws = self._workspace(splits * m * n)
            gargs = (x, pd["w"], pd["bias"], pp["wt"], ws, pp["bias"], ws, *geo, tail[0], _i32(0), _i32(0))
            rtail = (_i32(1), _i32(int(act)), _i32(int(has_res)))
            rargs = (ws, out, pp["bias"], r, _i32(m), _i32(n), _i32(splits), *rtail)
            rgrid = max(1, min(math.ceil(m * n / 256), self.sms * 8))
            return [
                Launch(name, self._fn(name), (blocks, 1, splits), (nt,), gargs),
                Launch("gemm_splitk_reduce", self._fn("gemm_splitk_reduce"), (rgrid,), (256,), rargs),
            ]

        if self.force_tile in tiles:
            return build(self.force_tile)  # type: ignore[arg-type]
        if self.autotune and 2.0 * m * n * k >= self.TUNE_MIN_FLOP:
            key = ("dwpw", dw.stride, m, n, k, h, w, bool(dw_act), bool(act), has_res, self.versions["gemm"])
            return self._tuned(key, tiles, build, choose_dwpw_tile(m, n, k, tiles, self.sms))
        return build(choose_dwpw_tile(m, n, k, tiles, self.sms))

    @classmethod
    def small_cin_blocks(cls, net: Network) -> list[tuple[Any, Any, Any]]:
        """The network's (expansion, depthwise, projection) fused ops that fuse v3+ can take as one block (the
        expansion on a small CIN feeding a 3x3 depthwise conv, then a pointwise projection of its output): the blocks
        the exdwpw5 / exdwpw8 timing scripts walk."""
        out = []
        for op in net.fused:
            if op.kind != "conv" or op.index + 2 >= len(net.fused):
                continue
            dw, pw = net.fused[op.index + 1], net.fused[op.index + 2]
            if cls._exdw_fusable(op.layer, dw.layer) and pw.layer.is_pointwise and pw.input == dw.index:
                out.append((op, dw, pw))
        return out

    @staticmethod
    def _exdw_fusable(ex: Conv2d, dw: Conv2d) -> bool:
        """fuse v3 takes an expansion 1x1 conv on CIN in EXDW_CIN channels (the memory-bound ones) feeding
        a 3x3 stride-1/2 depthwise conv."""
        return (
            ex.is_pointwise
            and ex.in_channels in K.EXDW_CIN
            and dw.is_depthwise
            and dw.kernel == 3
            and dw.stride in (1, 2)
            and dw.in_channels == ex.out_channels
        )

    def _exdw_launch(self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, out: Any) -> Launch | None:
        """depthwise(ReLU6(expand(x))) as one kernel (fuse v3 / v4), or None where it does not apply."""
        nb, h, w, cin = x.shape
        if not (self._exdw_fusable(ex, dw) and cin == ex.in_channels and nb <= 65535 and self._aligned(x, out)):
            return None
        pe, pd = self._layer_params(ex), self._layer_params(dw)
        ho, wo = dw.out_hw(h, w)
        ce = ex.out_channels
        th, tw = (8, 8) if dw.stride == 1 else (4, 8)
        grid = (math.ceil(ho / th) * math.ceil(wo / tw), math.ceil(ce / 32), nb)
        prefix = "exdw" if self.versions["fuse"] == "v3" else "exdw4"  # v5's pair path is v4's
        name = f"{prefix}_s{dw.stride}_c{cin}"
        args = (x, pe["wt"], pe["bias"], pd["w"], pd["bias"], out, _i32(h), _i32(w), _i32(ce), _i32(ho), _i32(wo))
        args += (_i32(dw.pad), _i32(int(ex_act)), _i32(int(dw_act)))
        return Launch(name, self._fn(name), grid, (256,), args)

    @staticmethod
    def _exgdw_fusable(ex: Conv2d, dw: Conv2d, h: int, w: int) -> bool:
        """fuse v7 takes an expansion 1x1 conv that exdw does not (CIN not in EXDW_CIN) feeding a 3x3 stride-1/2
        depthwise conv on a map of at most EXGDW_ROWS pixels, channel counts multiples of 4 (float4 copies)."""
        return (
            ex.is_pointwise
            and ex.in_channels not in K.EXDW_CIN
            and ex.in_channels % 4 == 0
            and ex.out_channels % 4 == 0
            and dw.is_depthwise
            and dw.kernel == 3
            and dw.stride in (1, 2)
            and dw.in_channels == ex.out_channels
            and h * w <= K.EXGDW_ROWS
        )

    def _exgdw_launch(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, out: Any, variant: int | str
    ) -> Launch | None:
        """fuse v7: depthwise(ReLU6(expand(x))) as the expansion GEMM with the depthwise conv in its epilogue
        (kernels/gemm.cu exgdw, build ``variant`` of K.EXGDW_VARIANTS), or None where it does not apply."""
        nb, h, w, cin = x.shape
        if not (self._exgdw_fusable(ex, dw, h, w) and cin == ex.in_channels and variant in K.EXGDW_VARIANTS):
            return None
        pe, pd = self._layer_params(ex), self._layer_params(dw)
        if not self._aligned(x, out, pe["wt"], pe["bias"], pd["w"], pd["bias"]):
            return None
        ho, wo = dw.out_hw(h, w)
        ce = ex.out_channels
        imgs = K.EXGDW_ROWS // (h * w)
        blocks = math.ceil(nb / imgs) * math.ceil(ce / K.EXGDW_VARIANTS[variant][0])
        if blocks >= 2**31:
            raise InputError(f"fuse v7: {blocks} blocks exceed the grid limit")
        name, smem = K.exgdw_kernel(dw.stride, variant), K.exgdw_smem(variant)
        args = (x, pe["wt"], pe["bias"], pd["w"], pd["bias"], out, _i32(nb), _i32(h), _i32(w), _i32(cin), _i32(ce))
        args += (_i32(ho), _i32(wo), _i32(dw.pad), _i32(imgs), _i32(int(ex_act)), _i32(int(dw_act)))
        return Launch(name, self._dyn_smem(self._fn(name), smem), (blocks,), (K.EXGDW_THREADS,), args, smem=smem)

    def _exgdw_launches(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, out: Any, mid: Any, scratch: Any = None
    ) -> list[Launch] | None:
        """fuse v7 in a plan and in expand_depthwise: an exgdw build (K.EXGDW_VARIANTS) or the two layers' own kernels
        through ``mid`` (the expansion's buffer), whichever is fastest (autotuned like the GEMM tiles; at small
        batch and inside captures the model: BN = 64 where that fills the SMs, else 32). ``force_exgdw`` pins one
        (a key of K.EXGDW_VARIANTS or "pair"). None: no exgdw kernel applies (shapes, alignment)."""
        nb, h, w, cin = x.shape
        cands = {v: self._exgdw_launch(x, ex, ex_act, dw, dw_act, out, v) for v in K.EXGDW_VARIANTS}
        if any(v is None for v in cands.values()):
            return None

        def build(c: Any) -> list[Launch]:
            if c == "pair":
                return self._conv_launches(x, ex, ex_act, None, mid, scratch) + self._conv_launches(
                    mid, dw, dw_act, None, out, scratch
                )
            return [cands[c]]  # type: ignore[list-item]

        if self.force_exgdw is not None:
            if self.force_exgdw not in (*K.EXGDW_VARIANTS, "pair"):
                raise InputError(f"force_exgdw={self.force_exgdw!r}: one of {tuple(K.EXGDW_VARIANTS)} or 'pair'")
            return build(self.force_exgdw)
        model = 64 if cands[64].grid[0] >= self.sms else 32  # type: ignore[union-attr]
        if self.autotune and 2.0 * nb * h * w * cin * ex.out_channels >= self.TUNE_MIN_FLOP:
            key = ("exgdw", tuple(x.shape), ex.out_channels, dw.stride, bool(ex_act), bool(dw_act))
            return self._tuned(key, (*K.EXGDW_VARIANTS, "pair"), build, model)
        return build(model)

    def _exdwpw_args(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any
    ) -> tuple | None:
        """The kernel arguments of a whole-block kernel (exdwpw5 / exdwpw8: the same signature), or None where the
        block is not one they take (shapes, batch, alignment)."""
        nb, h, w, cin = x.shape
        if not (
            self._exdw_fusable(ex, dw)
            and pw.is_pointwise
            and pw.in_channels == dw.out_channels
            and cin == ex.in_channels
            and ex.out_channels % 4 == 0
            and nb <= 65535
            and self._aligned(*((x, out) if res is None else (x, out, res)))
        ):
            return None
        ho, wo = dw.out_hw(h, w)
        pe, pd, pp = self._layer_params(ex), self._layer_params(dw), self._layer_params(pw)
        args = (x, pe["wt"], pe["bias"], pd["w"], pd["bias"], pp["wt"], pp["bias"], out if res is None else res, out)
        args += (_i32(h), _i32(w), _i32(ex.out_channels), _i32(ho), _i32(wo), _i32(dw.pad))
        return args + (_i32(int(ex_act)), _i32(int(dw_act)), _i32(int(act)), _i32(int(res is not None)))

    def _exdwpw_launch(
        self,
        x: Any,
        ex: Conv2d,
        ex_act: bool,
        dw: Conv2d,
        dw_act: bool,
        pw: Conv2d,
        act: bool,
        res: Any,
        out: Any,
        min_blocks: int = 0,
    ) -> Launch | None:
        """project(ReLU6(depthwise(ReLU6(expand(x))))) (+ res): the whole bottleneck block as one kernel
        (fuse v5, kernels/conv.cu exdwpw5), or None where no compiled instance applies. ``min_blocks``: prefer the
        tile whose grid falls least short of it (K.exdwpw5_tile; fuse v9 plans pass the SM count); with fuse v11, at
        batch <= K.EXDWPW5_BIG_CHUNK_MAX_BATCH, the tile's larger-chunk build (K.EXDWPW5_BIG_CHUNK) where its grid
        fits; with fuse v25, at batch <= K.EXDWPW5_SPLIT_MAX_BATCH, the tile's cluster build (K.EXDWPW5_SPLIT: KS
        blocks per tile) where KS x its grid fits the build's blocks per SM (fuse v26: the 98-tile blocks too, at up to
        2 per SM; K.exdwpw5_splits); fuse v50 - v52, at the same batches: the build that takes such a cluster
        build's place on another tiling (K.exdwpw5_retile: v50 both launches' builds, v51 / v52 one each)."""
        nb, h, w, cin = x.shape
        ho, wo = dw.out_hw(h, w)
        small = K.exdwpw5_small_tiles(self.versions["fuse"])
        tile = K.exdwpw5_tile(dw.stride, cin, pw.out_channels, ho, wo, nb, min_blocks, small)
        if self.force_tile5 is not None:
            if (dw.stride, cin, pw.out_channels, *self.force_tile5) not in K.EXDWPW5_COMPILED:
                raise InputError(f"force_tile5={self.force_tile5!r}: no exdwpw5 instance for this block shape")
            tile = tuple(self.force_tile5)
        args = None if tile is None else self._exdwpw_args(x, ex, ex_act, dw, dw_act, pw, act, res, out)
        if tile is None or args is None:
            return None
        th, tw = tile
        name = K.exdwpw5_kernel(dw.stride, cin, pw.out_channels, tile)
        grid = (math.ceil(ho / th) * math.ceil(wo / tw), nb)
        v11 = min_blocks and K.fuse_level(self.versions["fuse"]) >= 11 and nb <= K.EXDWPW5_BIG_CHUNK_MAX_BATCH
        small_nb = bool(min_blocks) and nb <= K.EXDWPW5_SPLIT_MAX_BATCH
        big = K.EXDWPW5_BIG_CHUNK.get(name) if v11 else None
        split = K.exdwpw5_splits(self.versions["fuse"]).get(name) if small_nb else None
        if split is not None and split[1] * grid[0] * nb <= split[2] * self.sms:  # fuse v25 / v26: KS blocks per tile
            name += split[0]
            grid = (split[1] * grid[0], nb)
        elif big is not None and grid[0] * nb <= big[1] * self.sms:  # fuse v11: larger chunks on a grid that fits
            name += big[0]
        new = K.exdwpw5_retile(self.versions["fuse"]).get(name) if small_nb else None
        if new is not None:  # fuse v50 - v52: the build on another tiling (its tile, KS, blocks per SM) where it fits
            cfg = K.exdwpw5_configs()[new]
            blocks = cfg[10] * math.ceil(ho / cfg[3]) * math.ceil(wo / cfg[4])
            if blocks * nb <= cfg[9] * self.sms:
                name, grid = new, (blocks, nb)
            else:
                fuse = self.versions["fuse"]
                self._fallbacks.add(f"fuse {fuse} -> v48 ({new}: {blocks * nb} blocks > {cfg[9]} per SM)")
        smem = K.exdwpw5_smem(name)
        # fuse v28: the plan's exdwpw5 launches by programmatic dependent launch at small batches
        planned = bool(min_blocks) and nb <= K.EXDWPW5_PDL_MAX_BATCH
        pdl = planned and self._pdl_by_version(K.exdwpw5_pdl(self.versions["fuse"]), "fuse v28 -> v27")
        return Launch(name, self._dyn_smem(self._fn(name), smem), grid, (256,), args, smem=smem, pdl=pdl)

    def _exdwpw8_launch(
        self,
        x: Any,
        ex: Conv2d,
        ex_act: bool,
        dw: Conv2d,
        dw_act: bool,
        pw: Conv2d,
        act: bool,
        res: Any,
        out: Any,
        name: str,
    ) -> Launch | None:
        """The whole bottleneck block as the fuse v8 kernel ``name`` (kernels/conv.cu exdwpw8, one of
        K.exdwpw8_builds for this shape), or None where it does not apply (shapes, alignment)."""
        nb, h, w, cin = x.shape
        if name not in K.exdwpw8_builds(dw.stride, cin, pw.out_channels):
            return None
        args = self._exdwpw_args(x, ex, ex_act, dw, dw_act, pw, act, res, out)
        if args is None:
            return None
        ho, wo = dw.out_hw(h, w)
        cfg = K.exdwpw8_configs()[name]
        grid = (math.ceil(ho / cfg["TH"]) * math.ceil(wo / cfg["TW"]), nb)
        smem = K.exdwpw8_smem(name)
        return Launch(name, self._dyn_smem(self._fn(name), smem), grid, (256,), args, smem=smem)

    def _counters(self, n: int) -> Any:
        """Arrival counters of the fuse v6 block kernel (int32, zero; every launch leaves them zero again): one buffer
        shared by every launch (they run in order on one stream), grown at plan / op-call time only."""
        if self._cnt is None or self._cnt.size < n:
            old = 0 if self._cnt is None else self._cnt.size
            with self.stream:
                self._cnt = self._cp.zeros((max(n, 2 * old),), self._cp.int32)
        return self._cnt

    @staticmethod
    def _block6_shapes(ex: Conv2d, dw: Conv2d, pw: Conv2d) -> bool:
        """Blocks the fuse v6 kernel takes: 1x1 expansion -> 3x3 depthwise (stride 1 / 2, pad 1) -> 1x1 projection,
        channel counts multiples of 4 (float4 staging)."""
        return (
            ex.is_pointwise
            and dw.is_depthwise
            and dw.kernel == 3
            and dw.stride in (1, 2)
            and dw.pad == 1
            and dw.in_channels == ex.out_channels
            and pw.is_pointwise
            and pw.in_channels == dw.out_channels
            and ex.in_channels % 4 == 0
            and ex.out_channels % 4 == 0
            and pw.out_channels % 4 == 0
        )

    def _exdwpw6_launch(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any
    ) -> Launch | None:
        """project(ReLU6(depthwise(ReLU6(expand(x))))) (+ res) as one fuse v6 kernel (kernels/cblock.cu exdwpw6):
        (CH, TR, CL) pinned by ``force_block6``, else with fuse v13 the fastest of the one-wave configurations
        (autotuned, the wider builds included; v15: at 512 threads too; then v16 / v17 / v19 time the projection
        mappings and v17 the expansion's k splits for the picked configuration), else the cost model's; None where
        the shapes, the alignment or shared memory rule it out."""
        nb, h, w, cin = x.shape
        if not (self._block6_shapes(ex, dw, pw) and cin == ex.in_channels and nb <= 65535):
            return None
        ho, wo = dw.out_hw(h, w)
        ce, cout, s = ex.out_channels, pw.out_channels, dw.stride
        wide = K.wide_clusters(self.versions["fuse"])  # fuse v13: the wider builds too, and the tuner picks
        v14 = K.v14_clusters(self.versions["fuse"])  # fuse v14: clusters of 4 / 6 / 12 too (tuner candidates)
        v39 = K.ng1_builds(self.versions["fuse"])  # fuse v39: CE 960 with one cluster per row tile (512 threads)
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide, v14, v39)
        per_sm = K.exdwpw6_per_sm(self.versions["fuse"])
        t512 = K.t512_builds(self.versions["fuse"])  # fuse v15: each configuration at 512 threads too
        cfg = pinned = self._pinned6(cfgs, cin)
        if cfg is None:  # the cost model weighs v14's builds only where no earlier one applies (CE 144): unmeasured
            cfg = choose_exdwpw6(nb, h, w, cin, ce, cout, ho, wo, s, self.sms, per_sm, wide) or (
                choose_exdwpw6(nb, h, w, cin, ce, cout, ho, wo, s, self.sms, per_sm, wide, v14) if v14 else None
            )
        arrays = (x, out) if res is None else (x, out, res)
        if cfg is None or not self._aligned(*arrays):
            return None
        if wide and pinned is None and self.autotune and _exdwpw6_flop(x.shape, ce, cout, ho, wo) >= self.TUNE_MIN_FLOP:
            # fuse v13: every configuration of one wave timed on this GPU (session 15's sweep on the H200: the cost
            # model's picks were ~1 us per block slower than the fastest, 12.6 us over the 13 blocks at batch 1)
            at256 = [c for c in cfgs if K.exdwpw6_threads_ok(c[0], c[2], 256)]  # (fuse v39's builds: 512 only)
            one_wave = exdwpw6_one_wave(at256, nb, ce, ho, self.sms, per_sm)
            if t512:  # v15: one block of 512 threads per SM
                one_wave += [(*c, 512) for c in exdwpw6_one_wave(cfgs, nb, ce, ho, self.sms, 1)]
            if K.ng1_first(self.versions["fuse"]) and nb <= K.NG1_MAX_BATCH:
                # fuse v40: only the configurations with one cluster per row tile, where any runs in one wave
                one_wave = [c for c in one_wave if ce == c[0] * c[2]] or one_wave
            key = ("exdwpw6", tuple(x.shape), ce, cout, s, res is not None, ex_act, dw_act, act)

            def build(c: tuple[int, ...]) -> list[Launch]:
                return [self._exdwpw6_build(x, ex, ex_act, dw, dw_act, pw, act, res, out, c)]

            def fixed(cs: list[tuple[int, ...]]) -> list[Launch]:  # fuse v30: on fixed builds, compiled together
                gen = [self._exdwpw6_build(x, ex, ex_act, dw, dw_act, pw, act, res, out, c, generic=True) for c in cs]
                return self._specialise_exdwpw6(gen)

            def build_fixed(c: tuple[int, ...]) -> list[Launch]:
                return fixed([c])

            def prebuild(skey: tuple, cs: list[tuple[int, ...]]) -> None:
                # fuse v30: the fixed builds of a stage's candidates compiled together (in parallel) before it is timed
                # (not where tune_picks recorded the stage's pick: only that one is built)
                untimed = self._tune_cache.get(skey) is None and repr(skey) not in self._picks
                if untimed and not self._stream_capturing():
                    fixed(cs)

            launch = self._tuned(key, one_wave, build, cfg)[0]
            best = self._tune_cache.get(key)
            fuse = self.versions["fuse"]
            if K.proj_cols(fuse) and best is not None:
                # fuse v16, second stage: the picked configuration with each projection mapping, timed (session 16:
                # by columns faster on the COUT 160 / 320 blocks at batch 1, slower on COUT <= 96; at batch 3 ahead);
                # fuse v17: the lane tiles (2) too
                b4 = (*best, 256) if len(best) == 3 else tuple(best)
                rule = self._proj_rule(cout)
                pcs = K.proj_modes(fuse)  # v17: + the 4-pixel lane tiles (2); v19: + the 2-pixel ones (3)
                launch = self._tuned((*key, "proj_cols"), [(*b4, p) for p in pcs], build, (*b4, rule))[0]
                b5 = self._tune_cache.get((*key, "proj_cols"))
                if K.ex_tiles(fuse) and b5 is not None:
                    # fuse v17, third stage: the expansion's mappings for the picked configuration, timed; fuse v30:
                    # with the tiles of EC channel groups per lane too (ex_ec_modes), every candidate on its fixed
                    # build (as the plan runs it)
                    cands = [(*b5, k) for k in K.ex_v17_modes(cin, fuse)]  # fuse v34: in boustrophedon order
                    wide_ex = K.ex_wide(fuse)
                    stage_build = build_fixed if wide_ex else build
                    if wide_ex:
                        ch_, tr_ = b5[0], b5[1]
                        smax = K.EXDWPW6_MAX_SMEM
                        fits = [
                            k
                            # fuse v32: the padded tiles; v33: unrolled; v34: in boustrophedon order
                            for k in K.ex_version_ec_modes(cin, ch_, fuse)
                            if K.exdwpw6_smem(h, w, cin, cout, wo, s, tr_, ch_, k) <= smax
                        ]
                        cands += [(*b5, k) for k in fits]
                        prebuild((*key, "ex_ks"), cands)
                    launch = self._tuned((*key, "ex_ks"), cands, stage_build, (*b5, K.ex_ks_rule(cin)))[0]
                    b6 = self._tune_cache.get((*key, "ex_ks"))
                    stages = [(key, best, 4), ((*key, "proj_cols"), b5, 5), ((*key, "ex_ks"), b6, 6)]
                    if K.dw_seg_stage(fuse) and b6 is not None:
                        # fuse v21, fourth stage: the depthwise by pixel lanes (0) or by row segments (1), timed
                        dcands = [(*b6, 0), (*b6, 1)]
                        if wide_ex:
                            prebuild((*key, "dw_segs"), dcands)
                        launch = self._tuned((*key, "dw_segs"), dcands, stage_build, (*b6, 1))[0]
                        stages.append(((*key, "dw_segs"), self._tune_cache.get((*key, "dw_segs")), 7))
                    b7 = stages[-1][1]
                    if wide_ex and K.proj_order(fuse) and b7 is not None and len(b7) == 7 and b7[4] in (2, 3):
                        # fuse v36, last stage: the final pick with each lane-tile projection, plain (2 / 3) and in
                        # the lane-pair order (4 / 5), on fixed builds (session 25's stamps: the order and the tile
                        # height that win differ per block, and the projection stage picked on generic builds)
                        ocands = [(*b7[:4], p, *b7[5:]) for p in K.PROJ_ORDER_MODES]
                        prebuild((*key, "proj_order"), ocands)
                        launch = self._tuned((*key, "proj_order"), ocands, stage_build, b7)[0]
                        stages.append(((*key, "proj_order"), self._tune_cache.get((*key, "proj_order")), 7))
                    b8 = stages[-1][1]

                    def fits8(c: tuple[int, ...]) -> bool:  # fuse v37: (CH, TR, CL, NT, pc, ks, ds, red_pf) fits
                        return K.exdwpw6_launch_smem(h, w, cin, cout, wo, s, c[1], c[0], c[5], c[2], c[7]) <= (
                            K.EXDWPW6_MAX_SMEM)  # fmt: skip

                    if wide_ex and K.bulk_reduce(fuse) and b8 is not None and len(b8) == 7:
                        # fuse v37, last stage: the final pick with red_pf 1 (the pulls after the cluster barrier) and
                        # 2 (the bulk copies on mbarriers, where its receive buffer fits), on fixed builds
                        rcands = [c for c in ((*b8, 1), (*b8, 2)) if fits8(c)]
                        prebuild((*key, "reduce"), rcands)
                        launch = self._tuned((*key, "reduce"), rcands, stage_build, (*b8, 1))[0]
                        stages.append(((*key, "reduce"), self._tune_cache.get((*key, "reduce")), 8))
                    fkey, bf, _ = stages[-1]
                    if bf is not None and all(b is not None for _, b, _ in stages):
                        # plan_tune: every stage's near alternatives with the later stages' picks kept
                        alts = []
                        for skey, sbest, n in stages:
                            for c in self._near(skey, sbest):
                                alts.append((*(c if len(c) > 3 else (*c, 256)), *bf[n:]))
                        # (an earlier stage's alternative build keeps the later picks: fuse v30's EC must divide
                        # its channel groups too, e.g. CH 20 takes no EC 2)
                        alts = [c for c in alts if len(c) < 6 or K.ex_mode_fits(c[5], c[0])]
                        if K.bulk_reduce(fuse) and len(bf) > 7:  # (fuse v37: the receive buffer must fit too)
                            alts = [c for c in alts if len(c) < 8 or c[7] != 2 or fits8(c)]
                        alts = [c for i, c in enumerate(alts) if c != bf and c not in alts[:i]]
                        self._register_alts([launch], fkey, stage_build, bf, alts)
            return launch
        return self._exdwpw6_build(x, ex, ex_act, dw, dw_act, pw, act, res, out, cfg)

    def _proj_rule(self, cout: int) -> int:
        """exdwpw6's untimed projection mapping (kernel argument proj_cols): fuse v17 the lane tiles (2), v16 the
        columns (1) on COUT >= PROJ_COLS_MIN_COUT, else (and before v16) the pixel lanes (0)."""
        fuse = self.versions["fuse"]
        if K.ex_tiles(fuse):
            return 2
        return int(K.proj_cols(fuse) and cout >= K.PROJ_COLS_MIN_COUT)

    def _pinned6(self, cfgs: list[tuple[int, int, int]], cin: int) -> tuple[int, ...] | None:
        """``force_block6`` where it names one of ``cfgs`` = (CH, TR, CL), with fuse v15 and later optionally the
        thread count NT (256 / 512), with fuse v16 then proj_cols (K.proj_modes: 0 / 1; v17 2; v19 3) and with fuse
        v17 then ex_ks (0, or 1 / 2 / 4 / 8 dividing cin into float4 slices), and with fuse v21 then dw_segs (0 / 1),
        with fuse v37 then red_pf (1 / 2); else None."""
        c = self.force_block6
        if c is None or tuple(c[:3]) not in cfgs or len(c) > 8:
            return None
        fuse = self.versions["fuse"]
        if len(c) > 3 and c[3] not in ((256, 512) if K.t512_builds(fuse) else ()):
            return None
        if not K.exdwpw6_threads_ok(c[0], c[2], c[3] if len(c) > 3 else 256):  # fuse v39's builds: 512 only
            return None
        pcs = K.proj_modes(fuse) + (K.PROJ_FIXED_ONLY if K.proj_order(fuse) else ())  # fuse v36: 4 / 5 too
        if len(c) > 4 and not (K.proj_cols(fuse) and c[4] in pcs):
            return None
        ex_modes = K.ex_v17_modes(cin, fuse) + K.ex_version_ec_modes(cin, c[0], fuse)
        if len(c) > 5 and not (K.ex_tiles(fuse) and c[5] in ex_modes):
            return None
        if len(c) > 6 and not (K.dw_seg_stage(fuse) and c[6] in (0, 1)):
            return None
        if len(c) > 7 and not (K.bulk_reduce(fuse) and c[7] in (1, 2)):  # fuse v37: red_pf 1 or the bulk copies
            return None
        return c

    def _exdwpw6_build(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any,
        cfg: tuple[int, int, int], generic: bool = False,
    ) -> Launch:  # fmt: skip
        """The exdwpw6 launch of configuration cfg = (CH, TR, CL), (CH, TR, CL, NT) (fuse v15: NT 256 or 512 threads)
        or (CH, TR, CL, NT, proj_cols) (fuse v16: 1 = the projection by output columns), then ex_ks (fuse v17; v30:
        K.ex_pack(KS, EC)), dw_segs (fuse v21) and red_pf (fuse v37: 2 = the bulk-copy reduce, its receive buffer added
        to the shared memory) (shapes, alignment and shared memory checked by the caller).
        fuse v30's expansion modes run only on fixed builds: their launch comes specialised, unless ``generic`` (the
        caller specialises a list of them at once)."""
        nb, h, w, cin = x.shape
        ho, wo = dw.out_hw(h, w)
        ce, cout, s = ex.out_channels, pw.out_channels, dw.stride
        ch, tr, cl = cfg[:3]
        nt = cfg[3] if len(cfg) > 3 else 256
        # fuse v16: the projection mapping where cfg says so, else (untimed) _proj_rule's; fuse v17: the expansion's
        # k slices where cfg says so, else ex_ks_rule's (before v17: 0, the pixel-lane expansion)
        pc = cfg[4] if len(cfg) > 4 else self._proj_rule(cout)
        ks = cfg[5] if len(cfg) > 5 else (K.ex_ks_rule(cin) if K.ex_tiles(self.versions["fuse"]) else 0)
        st, ng = math.ceil(ho / tr), ce // (cl * ch)
        pe, pd, pp = self._layer_params(ex), self._layer_params(dw), self._layer_params(pw)
        ws = self._workspace(nb * st * ng * tr * wo * cout) if ng > 1 else out  # unused with one cluster per tile
        cnt = self._counters(nb * st * cl)
        name = K.exdwpw6_kernel(ch, cl, nt)
        fuse = self.versions["fuse"]
        rpf = cfg[7] if len(cfg) > 7 else int(K.red_prefetch(fuse))  # fuse v37: the tuner's last stage (2: bulk)
        smem = K.exdwpw6_launch_smem(h, w, cin, cout, wo, s, tr, ch, ks, cl, rpf)
        if smem > K.EXDWPW6_MAX_SMEM:  # a pinned configuration the tuner would not pick (fuse v37: red_pf 2's buffer)
            extra = K.exdwpw6_bulkred_bytes(tr, wo, cout, cl) if rpf == 2 else 0
            raise ValueError(
                f"exdwpw6 configuration {tuple(cfg)} of block {cin}->{ce}->{cout} at {h}x{w} stride {s} needs {smem} "
                f"bytes of shared memory ({extra} of them red_pf 2's receive buffer); the limit is "
                f"{K.EXDWPW6_MAX_SMEM}"
            )
        args = (x, pe["wt"], pe["bias"], pd["w"], pd["bias"], pp["wt"], pp["bias"], out if res is None else res, out)
        args += (ws, cnt, _i32(h), _i32(w), _i32(cin), _i32(ce), _i32(cout), _i32(ho), _i32(wo), _i32(s), _i32(tr))
        args += (_i32(int(ex_act)), _i32(int(dw_act)), _i32(int(act)), _i32(int(res is not None)))
        ds = cfg[6] if len(cfg) > 6 else int(K.dw_segments(fuse))  # fuse v21: the tuner's fourth stage where timed
        args += (_i32(pc), _i32(ks), _i32(rpf), _i32(ds))
        fn = self._exdwpw6_fn(name, smem)
        pdl = self._pdl_by_version(K.exdwpw6_pdl(fuse), "fuse v27 -> v26")
        la = Launch(name, fn, (cl * ng, st, nb), (nt,), args, smem=smem, pdl=pdl)
        if (ks >= 16 or pc in K.PROJ_FIXED_ONLY or rpf == 2) and not generic:  # fuse v30's expansion modes, v36's
            # ordered projection tiles and v37's bulk-copy reduce exist only on fixed builds (``generic``: the caller
            # specialises)
            return self._specialise_exdwpw6([la])[0]
        return la

    def _exdwpw10_launch(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any
    ) -> Launch | None:
        """project(ReLU6(depthwise(ReLU6(expand(x))))) (+ res) as one fuse v10 kernel (kernels/cblock.cu exdwpw10):
        a cooperative launch of at most the resident blocks; (CH, TR) as fuse v9's exdwpw6 would run the block (or
        ``force_block6``); None where the shapes (COUT % 16), the alignment or shared memory rule it out."""
        nb, h, w, cin = x.shape
        if not (self._block6_shapes(ex, dw, pw) and cin == ex.in_channels and pw.out_channels % K.EXDWPW10_PN == 0):
            return None
        ho, wo = dw.out_hw(h, w)
        ce, cout, s = ex.out_channels, pw.out_channels, dw.stride
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s)  # clusters of 8 only: exdwpw10 reuses CH and TR
        cfg = self.force_block6 if self.force_block6 in cfgs else choose_exdwpw6(nb, h, w, cin, ce, cout, ho, wo, s,
                                                                                  self.sms, 2)  # fmt: skip
        arrays = (x, out) if res is None else (x, out, res)
        if cfg is None or not self._aligned(*arrays):
            return None
        ch, tr, _ = cfg
        smem = K.exdwpw10_smem(h, w, cin, ce, wo, s, tr, ch)
        if smem > K.EXDWPW6_MAX_SMEM:
            return None
        name = K.exdwpw10_kernel(ch)
        fn = CooperativeKernel(self._dyn_smem(self._fn(name), smem))  # a cooperative launch: Launch.__post_init__
        drv = getattr(self._cp.cuda, "driver", None)
        if hasattr(drv, "occupancyMaxActiveBlocksPerMultiprocessor"):
            occ = int(drv.occupancyMaxActiveBlocksPerMultiprocessor(fn.ptr, 256, smem))
        else:  # (CPU tests: the fake CuPy has no occupancy query) the kernel's __launch_bounds__(256, 2)
            occ = max(1, min(2, (228 * 1024) // (smem + 1024)))
        if occ < 1:
            return None
        items_a = nb * math.ceil(ho / tr) * (ce // ch)
        items_b = math.ceil(nb * ho * wo / K.EXDWPW10_PM) * (cout // K.EXDWPW10_PN)
        grid = min(max(items_a, items_b), self.sms * occ)  # cooperative: every block resident (the grid barrier)
        if self._bar10 is None:
            with self.stream:
                self._bar10 = self._cp.zeros((1,), self._cp.uint32)
        pe, pd, pp = self._layer_params(ex), self._layer_params(dw), self._layer_params(pw)
        d = self._workspace(nb * ho * wo * ce)  # the depthwise output between the two phases
        args = (x, pe["wt"], pe["bias"], pd["w"], pd["bias"], pp["wt"], pp["bias"], out if res is None else res, out)
        args += (d, self._bar10, _i32(nb), _i32(h), _i32(w), _i32(cin), _i32(ce), _i32(cout), _i32(ho), _i32(wo))
        args += (_i32(s), _i32(tr), _i32(int(ex_act)), _i32(int(dw_act)), _i32(int(act)), _i32(int(res is not None)))
        return Launch(name, fn, (grid,), (256,), args, smem=smem, coop=True)

    def _allow_nonportable_cluster(self, name: str, fn: Any) -> None:
        """Opt a kernel compiled for clusters of more than 8 blocks (fuse v13's exdwpw6_c<CH>x16) in to the
        non-portable cluster size (cuFuncSetAttribute, once per function); a clear error where the driver refuses."""
        if name in self._nonportable:
            return
        set_attr = _driver_fn("cuFuncSetAttribute", [ctypes.c_void_p, ctypes.c_int, ctypes.c_int])
        if set_attr is None:
            raise CudaError(f"{name}: cuFuncSetAttribute could not be loaded from libcuda (clusters of 16 need it)")
        err = set_attr(ctypes.c_void_p(fn.kernel.ptr), NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1)
        if err != 0:
            raise CudaError(f"{name}: cuFuncSetAttribute(NON_PORTABLE_CLUSTER_SIZE_ALLOWED): CUresult {err}")
        self._nonportable.add(name)

    def _exdwpw6_fn(self, name: str, smem: int) -> Any:
        """A loaded exdwpw6 build (generic, fixed or any twin of one) ready to launch: opted in to ``smem`` bytes of
        dynamic shared memory and, where its generic build's clusters have more than 8 blocks, to the non-portable
        cluster size."""
        fn = self._dyn_smem(self._fn(name), smem)
        if K.exdwpw6_build_of(K.generic_of(name))[1] > 8:
            self._allow_nonportable_cluster(name, fn)
        return fn

    def _build_and_load(self, items: list, build: Any) -> None:
        """Compile ``build(item, nvcc)`` for every item at once (fixed builds and their twins: ~1 s each, cached on
        disk; 8 in parallel) and keep each built kernel with this device's functions, by its name."""
        if not items:
            return
        nvcc = K.find_nvcc()
        with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
            built = list(pool.map(lambda item: build(item, nvcc), items))
        for b in built:
            self._fns[b.name] = _load_module(self._cp, b).get_function(b.name)

    @staticmethod
    def _dyn_smem(fn: Any, smem: int) -> Any:
        """Opt a kernel in to more than 48 KB of dynamic shared memory (once per function)."""
        if smem > 48 * 1024 and getattr(fn, "max_dynamic_shared_size_bytes", 0) < smem:
            fn.max_dynamic_shared_size_bytes = smem
        return fn

    def _block_launches(
        self, x: Any, ex: Any, dw: Any, pw: Conv2d, act: bool, res: Any, mid: Any, out: Any, scratch: Any
    ) -> list[Launch] | None:
        """fuse v5 in a plan: the block kernel or the exdw4 pair + the projection GEMM through ``mid``
        (the depthwise op's own buffer), whichever is faster (autotuned like the GEMM tiles; the model
        below decides at batch 1 and inside captures: the block kernel has one block per spatial tile
        and loops over every expanded channel, so it needs enough tiles: >= SMs / 3 blocks). None: the pair path
        does not apply either (unaligned). fuse v6 and later at small batch on maps <= EXDWPW6_MAX_MAP: exdwpw6; fuse
        v14 on the larger maps: exdwpw6 timed against that path (_exdwpw6_or)."""
        nb, h, w, cin = x.shape
        small = nb <= self.exdwpw6_max_batch
        if K.fuse_level(self.versions["fuse"]) >= 6 and small and h * w <= K.EXDWPW6_MAX_MAP:
            if K.two_phase(self.versions["fuse"]):  # fuse v10: the two-phase cooperative kernel first
                block10 = self._exdwpw10_launch(x, ex.layer, ex.act, dw.layer, dw.act, pw, act, res, out)
                if block10 is not None:
                    return [block10]
                self._fallbacks.add("fuse v10 -> v9 (no exdwpw10 configuration: COUT % 16, shared memory, alignment)")
            block6 = self._exdwpw6_launch(x, ex.layer, ex.act, dw.layer, dw.act, pw, act, res, out)
            if block6 is not None:
                return [block6]
            self._fallbacks.add("fuse v6 -> v5 (no exdwpw6 configuration: CE % 32, shared memory or alignment)")
        v5 = self._block_launches_v5(x, ex, dw, pw, act, res, mid, out, scratch)
        if K.v14_clusters(self.versions["fuse"]) and small:  # the larger maps: exdwpw6 against v5's path, timed
            return self._exdwpw6_or(x, ex.layer, ex.act, dw.layer, dw.act, pw, act, res, out, v5)
        return v5

    def _exdwpw6_or(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any,
        v5: list[Launch] | None,
    ) -> list[Launch] | None:  # fmt: skip
        """fuse v14 on the maps above EXDWPW6_MAX_MAP (the three 56x56 blocks: the stride-2 one reads the 112x112
        map) at batch <= exdwpw6_max_batch: the autotuner times every one-wave exdwpw6 configuration (v14's clusters
        of 4 / 6 / 12 take CE 144 with one cluster per row tile) against ``v5``, the launches of v5's path for the
        block (tuned already). v5's path where nothing is timed (tuner off, inside a capture, below TUNE_MIN_FLOP):
        the exdwpw6 kernels on these maps are measured by the tuner only; ``force_block6`` pins a configuration."""
        nb, h, w, cin = x.shape
        arrays = (x, out) if res is None else (x, out, res)
        if not (self._block6_shapes(ex, dw, pw) and cin == ex.in_channels and self._aligned(*arrays)):
            return v5
        ho, wo = dw.out_hw(h, w)
        ce, cout, s = ex.out_channels, pw.out_channels, dw.stride
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True, v14=True)

        def build(c: Any) -> list[Launch] | None:
            return v5 if c == "v5" else [self._exdwpw6_build(x, ex, ex_act, dw, dw_act, pw, act, res, out, c)]

        if self.force_block6 in cfgs:
            return build(self.force_block6)
        cands = exdwpw6_one_wave(cfgs, nb, ce, ho, self.sms, K.exdwpw6_per_sm(self.versions["fuse"]))
        if not cands or not self.autotune or _exdwpw6_flop(x.shape, ce, cout, ho, wo) < self.TUNE_MIN_FLOP:
            return v5
        if v5 is None:  # no v5 path for this block: the exdwpw6 configurations alone, the cost model's where untimed
            model = min(cands, key=lambda c: exdwpw6_cost(nb, h, w, cin, ce, cout, ho, wo, s, self.sms, c))
            return self._tuned(("exdwpw6", tuple(x.shape), ce, cout, s, res is not None, ex_act, dw_act, act),
                               cands, build, model)  # fmt: skip
        key = ("exdwpw6|v5", tuple(x.shape), ce, cout, s, res is not None, ex_act, dw_act, act)
        return self._tuned(key, [*cands, "v5"], build, "v5")

    def _block_launches_v5(
        self, x: Any, ex: Any, dw: Any, pw: Conv2d, act: bool, res: Any, mid: Any, out: Any, scratch: Any
    ) -> list[Launch] | None:
        """fuse v5 - v13's path for a block _block_launches does not run as exdwpw6: the exdwpw5 / exdwpw8 block
        kernels or the exdw4 pair + projection GEMM, autotuned (None where none applies)."""
        nb, h, w, cin = x.shape
        min_blocks = self.sms if K.fuse_level(self.versions["fuse"]) >= 9 else 0  # fuse v9: small tiles, small batch
        block = self._exdwpw_launch(x, ex.layer, ex.act, dw.layer, dw.act, pw, act, res, out, min_blocks)
        pair = self._exdw_launch(x, ex.layer, ex.act, dw.layer, dw.act, mid)
        if pair is None:
            return None
        b8: dict[str, Launch] = {}  # fuse v8: the exdwpw8 builds for this block shape
        if K.fuse_level(self.versions["fuse"]) >= 8:
            for name in K.exdwpw8_builds(dw.layer.stride, cin, pw.out_channels, tuned=True):
                launch = self._exdwpw8_launch(x, ex.layer, ex.act, dw.layer, dw.act, pw, act, res, out, name)
                if launch is not None:
                    b8[name] = launch
            if not b8:
                self._fallbacks.add("fuse v8 -> v5 (no exdwpw8 build for this block shape; kernels/conv.cu)")

        def build(path: str) -> list[Launch]:
            if path in b8:
                return [b8[path]]
            if path == "block" and block is not None:
                return [block]
            return [pair, *self._conv_launches(mid, pw, act, res, out, scratch)]

        f8 = self.force_block8
        if f8 is not None and b8:
            if f8 in K.exdwpw8_configs() and f8 not in b8:  # an experimental build
                forced = self._exdwpw8_launch(x, ex.layer, ex.act, dw.layer, dw.act, pw, act, res, out, f8)
                if forced is not None:
                    b8[f8] = forced
            if f8 not in (*b8, "block", "pair"):
                raise InputError(f"force_block8={f8!r}: one of {(*b8, 'block', 'pair')}")
            return build(f8)
        if block is None and not b8:
            self._fallbacks.add("fuse v5 -> v4 (no exdwpw5 instance for this block shape; kernels/conv.cu)")
            return build("pair")
        # measured on H100 at batch 1 (results/NOTES.md "fuse v5"): the block kernel wins with 49 and 98 blocks
        # (11-16 us vs 14-16 for the pair), loses with 8-28 (17-22 us vs 13-15)
        big = block if block is not None else next(iter(b8.values()))
        model = "block" if big.grid[0] * big.grid[1] >= self.sms // 3 else "pair"
        if model == "block":
            model = self._exdwpw8_model(b8) or ("block" if block is not None else next(iter(b8)))
        flop = 2.0 * nb * h * w * cin * ex.layer.out_channels
        if self.autotune and flop >= self.TUNE_MIN_FLOP:
            key = ("exdwpw5", tuple(x.shape), ex.layer.out_channels, dw.layer.stride, pw.out_channels, res is not None)
            cands = (*b8, *(("block",) if block is not None else ()), "pair")
            return self._tuned((*key, tuple(b8)), cands, build, model)
        return build(model)

    def _exdwpw8_model(self, b8: dict[str, Launch]) -> str | None:
        """fuse v8 without the tuner (small batches, inside captures): the first of this shape's builds in
        K.EXDWPW8_TUNED (best first) whose grid fills the SMs at 2 blocks each, else None (exdwpw5)."""
        for name, launch in b8.items():
            if launch.grid[0] * launch.grid[1] >= 2 * self.sms:
                return name
        return None

    def bottleneck(
        self,
        x: Any,
        ex: Conv2d,
        dw: Conv2d,
        pw: Conv2d,
        ex_act: bool = True,
        dw_act: bool = True,
        act: bool = False,
        residual: Any = None,
        out: Any = None,
    ) -> Any:
        """project(ReLU6(depthwise(ReLU6(expand(x))))) (+ residual) as one op: with fuse=v10 the two-phase cooperative
        kernel (kernels/cblock.cu exdwpw10, any batch) where it applies, else with fuse=v8 an exdwpw8 build
        (``force_block8`` or the shape's first; kernels/conv.cu) where one is compiled and ``force_block6`` is unset,
        else with fuse=v6 and later the cluster block kernel (kernels/cblock.cu exdwpw6, any batch, any CIN), else
        (or where it does not apply) the fuse v5 block kernel (kernels/conv.cu exdwpw5) whatever the versions (this op
        exists to run and test them), else the three layers' own kernels through temporaries (recorded in the
        fallbacks)."""
        self._ensure_device()
        if self.dtype == "fp16":  # hfuse v4's hexdwpw4 block kernel (impls/_custom_fp16.py)
            return self._h_bottleneck(x, ex, dw, pw, ex_act, dw_act, act, residual, out)
        self._check_dev(x, "bottleneck input", ndim=4)
        chain = (("pointwise", ex), ("depthwise", dw), ("pointwise", pw))
        out = self._chain_out("bottleneck", x, chain, residual, out)
        nb, h, w, _ = x.shape
        ho, wo = dw.out_hw(h, w)
        v6 = K.fuse_level(self.versions["fuse"]) >= 6
        launch = None
        if K.two_phase(self.versions["fuse"]):  # at any batch: this op exists to run and test the kernels
            launch = self._exdwpw10_launch(x, ex, ex_act, dw, dw_act, pw, act, residual, out)
            if launch is None:
                self._fallbacks.add("fuse v10 -> v8 (no exdwpw10 configuration: COUT % 16, shared memory, alignment)")
        pin6 = self.force_block6 is not None  # a pinned exdwpw6 configuration runs exdwpw6 (fuse v13's tests)
        if launch is None and not pin6 and K.fuse_level(self.versions["fuse"]) >= 8:  # force_block8's, else the first
            names = K.exdwpw8_builds(dw.stride, ex.in_channels, pw.out_channels)
            name = self.force_block8 if self.force_block8 in names else (names[0] if names else None)
            if name is not None:
                launch = self._exdwpw8_launch(x, ex, ex_act, dw, dw_act, pw, act, residual, out, name)
            if launch is None:
                self._fallbacks.add("fuse v8 -> v6 (no exdwpw8 build for this block shape, or unaligned)")
        if v6 and launch is None:  # at any batch: this op exists to run and test the kernels
            launch = self._exdwpw6_launch(x, ex, ex_act, dw, dw_act, pw, act, residual, out)
            if launch is None:
                self._fallbacks.add("fuse v6 -> v5 (no exdwpw6 configuration: CE % 32, shared memory or alignment)")
        if launch is None:
            launch = self._exdwpw_launch(x, ex, ex_act, dw, dw_act, pw, act, residual, out)
        if launch is None:
            self._fallbacks.add("fuse v5 -> v1 (no exdwpw5 instance for this block shape, or unaligned)")
            mid = self._empty((nb, h, w, ex.out_channels))
            mid2 = self._empty((nb, ho, wo, dw.out_channels))
            self.launch_all(self._conv_launches(x, ex, ex_act, None, mid))
            self.launch_all(self._conv_launches(mid, dw, dw_act, None, mid2))
            self.launch_all(self._conv_launches(mid2, pw, act, residual, out))
            self.stream.synchronize()  # mid, mid2 are freed on return
            return out
        self.launch_all([launch])
        return out

    def expand_depthwise(
        self, x: Any, ex: Conv2d, dw: Conv2d, ex_act: bool = True, dw_act: bool = True, out: Any = None
    ) -> Any:
        """depthwise(ReLU6(expand(x))) as one op: the exdw kernel with fuse=v3 and later (where the shapes allow:
        CIN in EXDW_CIN), with fuse=v7 the exgdw kernel for the other shapes it takes (maps of <= EXGDW_ROWS pixels),
        else the two layers' own kernels through a temporary; fp16 mode: the hexdw kernel with hfuse=v2."""
        self._ensure_device()
        if self.dtype == "fp16":  # hfuse v2 (impls/_custom_fp16.py)
            return self._h_expand_depthwise(x, ex, dw, ex_act, dw_act, out)
        self._check_dev(x, "expand_depthwise input", ndim=4)
        out = self._chain_out("expand_depthwise", x, (("pointwise", ex), ("depthwise", dw)), None, out)
        nb, h, w, _ = x.shape
        if K.fuse_level(self.versions["fuse"]) >= 7 and self._exgdw_fusable(ex, dw, h, w):
            mid = self._empty((nb, h, w, ex.out_channels))  # the unfused path's expansion output ("pair")
            launches = self._exgdw_launches(x, ex, ex_act, dw, dw_act, out, mid)
            if launches is not None:
                self.launch_all(launches)
                self.stream.synchronize()  # mid is freed on return
                return out
            self._fallbacks.add("fuse v7 -> v1 (exgdw needs 16-byte aligned arrays)")
        fuse = K.fuse_level(self.versions["fuse"]) >= 3
        launch = self._exdw_launch(x, ex, ex_act, dw, dw_act, out) if fuse else None
        if launch is None:
            if fuse:
                self._fallbacks.add("fuse v3/v4 -> v1 (needs CIN in EXDW_CIN, a 3x3 s1/s2 depthwise, aligned)")
            return self._two_convs(x, ex, ex_act, dw, dw_act, None, out)
        self.launch_all([launch])
        return out

    def dw_pointwise(
        self,
        x: Any,
        dw: Conv2d,
        pw: Conv2d,
        dw_act: bool = True,
        act: bool = False,
        residual: Any = None,
        out: Any = None,
    ) -> Any:
        """pointwise(ReLU6(depthwise(x))) (+ residual) as one op: the fused dwpw kernel with fuse=v2
        (where the shapes allow), else the two layers' own kernels through a temporary."""
        self._ensure_device()
        if self.dtype == "fp16":
            raise InputError("dw_pointwise (fuse v2) is fp32 only; in fp16 mode run conv2d twice")
        self._check_dev(x, "dw_pointwise input", ndim=4)
        out = self._chain_out("dw_pointwise", x, (("depthwise", dw), ("pointwise", pw)), residual, out)
        launches = self._dwpw_launches(x, dw, dw_act, pw, act, residual, out) if self.versions["fuse"] == "v2" else None
        if launches is None:
            if self.versions["fuse"] == "v2":
                self._fallbacks.add("fuse v2 -> v1 (needs a 3x3 s1/s2 depthwise, C and Cout % 4 == 0, aligned)")
            return self._two_convs(x, dw, dw_act, pw, act, residual, out)
        self.launch_all(launches)
        return out

    def _two_convs(self, x: Any, first: Conv2d, act1: bool, second: Conv2d, act2: bool, residual: Any, out: Any) -> Any:
        """A fused pair's unfused path: each layer's own kernel through a temporary NHWC tensor."""
        nb, h, w, _ = x.shape
        ho, wo = first.out_hw(h, w)
        mid = self._empty((nb, ho, wo, first.out_channels))
        self.launch_all(self._conv_launches(x, first, act1, None, mid))
        self.launch_all(self._conv_launches(mid, second, act2, residual, out))
        self.stream.synchronize()  # mid is freed on return
        return out

    def _conv_launches(self, x: Any, layer: Conv2d, act: bool, res: Any, out: Any, scratch: Any = None) -> list[Launch]:
        p = self._layer_params(layer)
        nb, h, w, cin = x.shape
        ho, wo = layer.out_hw(h, w)
        cout = layer.out_channels
        has_res = res is not None
        rr = res if has_res else out
        if p["kind"] == "pointwise":
            return self._gemm(x, p["wt"], out, p["bias"], res, nb * h * w, cout, cin, act=act)
        if p["kind"] == "depthwise":
            return [self._dw_launch(x, p, layer, act, rr, has_res, out, nb, h, w, cin, ho, wo)]
        # stem: a groups=1 conv that is not pointwise
        k, s, pad = layer.kernel, layer.stride, layer.pad
        kk = k * k * cin
        path = self._stem_path(layer, cin)
        if path == "v3" and not self._aligned(x, out, p["wt"], p["bias"], rr):
            self._fallbacks.add("stem v3 -> v2 (unaligned arrays)")
            path = "v2"
        flags = (_i32(int(act)), _i32(int(has_res)))
        if path == "v3":
            total = nb * ho * wo * (cout // 8)
            args = (
                x,
                p["wt"],
                p["bias"],
                rr,
                out,
                _i32(nb),
                _i32(h),
                _i32(w),
                _i32(ho),
                _i32(wo),
                _i32(cout),
                _i32(s),
                _i32(pad),
                *flags,
            )
            grid = (math.ceil(total / 256),)
            return [Launch("conv3x3c3_nhwc", self._fn("conv3x3c3_nhwc"), grid, (256,), args, smem=27 * cout * 4)]
        if path == "v2":
            total = nb * ho * wo * ((cout + 3) // 4)
            args = (
                x,
                p["wt"],
                p["bias"],
                rr,
                out,
                _i32(nb),
                _i32(h),
                _i32(w),
                _i32(cin),
                _i32(ho),
                _i32(wo),
                _i32(cout),
                _i32(k),
                _i32(s),
                _i32(pad),
                *flags,
            )
            grid = (math.ceil(total / 256),)
            return [Launch("conv_direct_nhwc", self._fn("conv_direct_nhwc"), grid, (256,), args, smem=kk * cout * 4)]
        kp = p["kp"]
        if scratch is None or scratch.size < nb * ho * wo * kp:
            raise AssertionError("stem v1 needs an im2col scratch buffer of N*Ho*Wo*Kp floats")
        total = nb * ho * wo * kp
        grid = (min(math.ceil(total / 256), self.sms * 32),)
        args = (
            x,
            scratch,
            _i32(nb),
            _i32(h),
            _i32(w),
            _i32(cin),
            _i32(ho),
            _i32(wo),
            _i32(k),
            _i32(s),
            _i32(pad),
            _i32(kp),
        )
        return [
            Launch("im2col_nhwc", self._fn("im2col_nhwc"), grid, (256,), args),
            *self._gemm(scratch, p["wt"], out, p["bias"], res, nb * ho * wo, cout, kp, act=act),
        ]

    def _stem_path(self, layer: Conv2d, cin: int) -> str:
        """Which stem kernel takes this conv: the pinned version, or the next one down that can."""
        ver = self.versions["stem"]
        kk = layer.kernel * layer.kernel * cin
        cout = layer.out_channels
        fits = kk * cout * 4 <= STEM_DIRECT_MAX_SMEM
        if ver == "v3":
            if cin == 3 and layer.kernel == 3 and cout % 8 == 0 and fits:
                return "v3"
            self._fallbacks.add("stem v3 -> v2 (needs Cin = 3, 3x3, Cout % 8 == 0)")
            ver = "v2"
        if ver == "v2":
            if fits:
                return "v2"
            self._fallbacks.add(f"stem v2 -> v1 (weights of {kk}x{cout} exceed 48 KB of shared memory)")
        return "v1"

    def _needs_scratch(self, layer: Conv2d, x_shape: tuple[int, ...]) -> int:
        p = self._layer_params(layer)
        if p["kind"] != "stem":
            return 0
        nb, h, w, cin = x_shape
        ho, wo = layer.out_hw(h, w)
        return 0 if self._stem_path(layer, cin) != "v1" else nb * ho * wo * p["kp"]

    def _dw_launch(self, x, p, layer, act, rr, has_res, out, nb, h, w, c, ho, wo) -> Launch:
        ver = self.versions["depthwise"]
        s, pad = layer.stride, layer.pad
        if ver in ("v2", "v3") and s not in (1, 2):
            self._fallbacks.add(f"depthwise {ver} -> v1 (stride {s})")
            ver = "v1"
        if ver == "v3" and not (c % 4 == 0 and self._aligned(x, out, p["w"], p["bias"], rr)):
            self._fallbacks.add("depthwise v3 -> v2 (C % 4 != 0)")
            ver = "v2"
        flags = (_i32(int(act)), _i32(int(has_res)))
        if ver == "v1":
            total = nb * ho * wo * c
            args = (
                x,
                p["w"],
                p["bias"],
                rr,
                out,
                _i32(nb),
                _i32(h),
                _i32(w),
                _i32(c),
                _i32(ho),
                _i32(wo),
                _i32(s),
                _i32(pad),
                *flags,
            )
            return Launch("dwconv3_v1", self._fn("dwconv3_v1"), (math.ceil(total / 256),), (256,), args)
        args = (
            x,
            p["w"],
            p["bias"],
            rr,
            out,
            _i32(nb),
            _i32(h),
            _i32(w),
            _i32(c),
            _i32(ho),
            _i32(wo),
            _i32(pad),
            *flags,
        )
        if ver == "v2":
            name = f"dwconv3_v2_s{s}"
            grid = (math.ceil(wo / 8), math.ceil(ho / 8), nb * math.ceil(c / 32))
            if grid[1] > 65535 or grid[2] > 65535:
                raise InputError(f"depthwise v2 grid {grid} exceeds the CUDA limit 65535 in y/z")
            return Launch(name, self._fn(name), grid, (32, 8), args)
        tw = 4 if s == 1 else 2
        name = f"dwconv3_v3_s{s}"
        if nb * ho * math.ceil(wo / tw) * (c // 4) < self.sms * 256:  # too few threads: one output each
            tw, name = 1, name + "_tw1"
        total = nb * ho * math.ceil(wo / tw) * (c // 4)
        return Launch(name, self._fn(name), (math.ceil(total / 256),), (256,), args)

    def _pool_launch(self, x: Any, out: Any) -> Launch:
        nb, h, w, c = x.shape
        hw = h * w
        ver = self.versions["pool"]
        args = (x, out, _i32(hw), _i32(c))
        if nb > 65535:
            raise InputError(f"batch {nb} exceeds the grid limit 65535")
        if ver == "v1":
            threads = min(256, max(32, math.ceil(hw / 32) * 32))
            return Launch("pool_v1", self._fn("pool_v1"), (c, nb), (threads,), args)
        if ver == "v2":
            return Launch("pool_v2", self._fn("pool_v2"), (math.ceil(c / 128), nb), (128,), args)
        return Launch("pool_v3", self._fn("pool_v3"), (math.ceil(c / 32), nb), (32, 8), args)

    def _pwpool_launch(self, x: Any, layer: Conv2d, act: bool, out: Any) -> Launch | None:
        """fuse v9: mean over the pixels of (ReLU6 of) the pointwise conv ``layer`` of the NHWC ``x`` into ``out``
        (N, COUT) as one kernel: pwpool_c8 (kernels/cblock.cu: clusters of 8 split K) where COUT % 64 == 0, else
        pwpool (kernels/pool.cu; ``force_pwpool`` pins one); None where neither applies (more than PWPOOL_MAX_HW
        pixels, K % 4 or COUT % PWPOOL_CO, shared memory, unaligned arrays). fuse v54, at batch <=
        PWPOOL_C10_MAX_BATCH: pwpool_c10 (80 channels per cluster) in pwpool_c8's (or pwpool's) place where it applies,
        else that kernel with a fallback note (_pwpool_c10_refusal)."""
        nb, h, w, cin = x.shape
        hw, cout = h * w, layer.out_channels
        if not (layer.is_pointwise and cin == layer.in_channels and 1 <= hw <= K.PWPOOL_MAX_HW and cin % 4 == 0):
            return None
        if cout % K.PWPOOL_CO or nb > 65535:
            return None
        force = self.force_pwpool
        if force not in (None, "pwpool", "pwpool_c8"):
            raise InputError(f"force_pwpool={force!r}: 'pwpool' or 'pwpool_c8'")
        c8 = cout % 64 == 0 and K.pwpool_c8_smem(hw, cin) <= K.PWPOOL_MAX_SMEM
        name = force or ("pwpool_c8" if c8 else "pwpool")
        if name == "pwpool_c8" and not c8:
            return None
        fuse = self.versions["fuse"]
        if force is None and K.pwpool_c10(fuse) and nb <= K.PWPOOL_C10_MAX_BATCH:  # (in place of pwpool_c8 or pwpool)
            why = self._pwpool_c10_refusal(hw, cin, cout, nb)
            if why:
                self._fallbacks.add(f"fuse {fuse} -> v51 ({name} where pwpool_c10 {why})")
            else:
                name = "pwpool_c10"
        smem = {"pwpool_c8": K.pwpool_c8_smem, "pwpool_c10": K.pwpool_c10_smem}.get(name, K.pwpool_smem)(hw, cin)
        if smem > K.PWPOOL_MAX_SMEM:
            return None
        p = self._layer_params(layer)
        if not self._aligned(x, p["wt"]):
            return None
        args = (x, p["wt"], p["bias"], out, _i32(hw), _i32(cin), _i32(cout), _i32(int(act)))
        fn = self._dyn_smem(self._fn(name), smem)
        grid = {"pwpool_c8": (8 * (cout // 64), nb), "pwpool_c10": (8 * (cout // 80), nb)}.get(
            name, (cout // K.PWPOOL_CO, nb)
        )
        # fuse v12: pwpool_c8 by programmatic dependent launch (its weights requested before its wait)
        pdl = (
            name == "pwpool_c8"
            and K.pwpool_pdl(self.versions["fuse"])
            and nb <= K.PWPOOL_PDL_MAX_BATCH
            and self._pdl_launchable("fuse v12 -> v11" if self.versions["fuse"] == "v12" else "fuse v29 -> v28")
        )
        return Launch(name, fn, grid, (256,), args, smem=smem, pdl=pdl)

    def _pwpool_c10_refusal(self, hw: int, cin: int, cout: int, nb: int) -> str:
        """fuse v54: why pwpool_c10 cannot take pwpool_c8's (or pwpool's) place on this head ("" where it can)."""
        if cout % 80:
            return f"needs COUT % 80 == 0 (COUT {cout})"
        if 8 * (cout // 80) * nb > self.sms:
            return f"needs its {8 * (cout // 80) * nb} blocks <= 1 per SM ({self.sms} SMs)"
        if K.pwpool_c10_smem(hw, cin) > K.PWPOOL_MAX_SMEM:
            return f"needs {K.pwpool_c10_smem(hw, cin)} bytes of shared memory (> {K.PWPOOL_MAX_SMEM})"
        return ""

    def _pwpool_fc_launch(
        self, x: Any, layer: Conv2d, act: bool, pooled: Any, lin: Linear, out: Any
    ) -> tuple[Launch | None, str]:
        """fuse v31: pwpool_c8's head (the pointwise conv ``layer`` (+ ReLU6) of the NHWC ``x`` and the global average
        pool into ``pooled`` (N, COUT)) and the classifier ``lin`` after it (into ``out`` (N, OUT)) as one
        pwpool_fc_c8 kernel (kernels/cblock.cu): (the launch, "") or, where it does not apply, (None, why). The head's
        conditions are _pwpool_launch's: the fused launch extends its pwpool_c8 launch."""
        if self.force_pwpool not in (None, "pwpool_c8"):
            return None, f"force_pwpool={self.force_pwpool!r}"
        head = self._pwpool_launch(x, layer, act, pooled)
        if head is None or head.name != "pwpool_c8":
            return None, "pwpool_c8 does not apply to the head (pixels, CIN % 4, COUT % 64, shared memory, alignment)"
        nb, h, w, cin = x.shape
        hw, cout = h * w, layer.out_channels
        fin, fout = lin.in_features, lin.out_features
        if fin != cout or fout % 4:
            return None, f"pwpool_fc_c8 needs the classifier's IN == COUT and OUT % 4 == 0 (IN {fin}, OUT {fout})"
        smem = K.pwpool_fc_c8_smem(hw, cin, fout)
        if smem > K.PWPOOL_MAX_SMEM:
            return None, f"pwpool_fc_c8 needs {smem} bytes of shared memory (> {K.PWPOOL_MAX_SMEM})"
        pl = self._layer_params(lin)
        ws = self._workspace(nb * (cout // 64) * fout)  # the clusters' partial logits
        cnt = self._counters(nb * 8)  # a ticket per (image, rank)
        if not self._aligned(pl["wt"], ws):
            return None, "pwpool_fc_c8 needs 16-byte aligned arrays"
        # pwpool_c8's (X, Wt, bias, Y, HW, K, COUT, act) with the classifier's in between and OUT before act
        args = (*head.args[:4], pl["wt"], pl["bias"], out, ws, cnt, *head.args[4:7], _i32(fout), head.args[7])
        name = K.head_fc_kernel(self.versions["fuse"])  # (fuse v55: pwpool_fc_c8e, the same arguments)
        fn = self._dyn_smem(self._fn(name), smem)
        return Launch(name, fn, head.grid, head.block, args, smem=smem), ""

    def _linear_launches(self, x: Any, layer: Linear, out: Any) -> list[Launch]:
        p = self._layer_params(layer)
        nb = x.shape[0]
        fin, fout = layer.in_features, layer.out_features
        ver = self.versions["linear"]
        if ver == "v4" and GEMV_MAX_BATCH < nb <= K.LINEAR_C8_MAX_BATCH:
            launch = self._linear_c8_launch(x, p, out)
            if launch is not None:
                return [launch]
            self._fallbacks.add("linear v4 -> GEMM (linear_c8 needs IN % 4, OUT % 8, aligned arrays, shared memory)")
        if ver in ("v2", "v3", "v4", "v5", "v6") and nb <= GEMV_MAX_BATCH and self._aligned(x, p["w"]):
            args = (x, p["w"], p["bias"], out, _i32(nb), _i32(fin), _i32(fout))
            name, pdl, smem = "linear_gemv", False, 0
            if ver in ("v3", "v4", "v5", "v6"):  # v3 reads float4 rows: IN % 4 == 0
                if fin % 4 == 0:
                    name = "linear_gemv_v3"
                else:
                    self._fallbacks.add(f"linear {ver} -> v2 (IN % 4 != 0)")
            if ver in ("v5", "v6") and name == "linear_gemv_v3" and nb <= K.LINEAR_PDL_MAX_BATCH:  # by PDL
                if self._pdl_launchable(f"linear {ver} -> v3"):
                    name, pdl = "linear_gemv_v5", True
                    if ver == "v6":  # v5 + x staged once per block (dynamic shared memory)
                        if nb * fin * 4 <= K.LINEAR_V6_MAX_SMEM:
                            name, smem = "linear_gemv_v6", nb * fin * 4
                        else:
                            self._fallbacks.add(f"linear v6 -> v5 (x needs {nb * fin * 4} bytes of shared memory)")
            grid = (math.ceil(fout * 32 / 256),)
            return [Launch(name, self._fn(name), grid, (256,), args, pdl=pdl, smem=smem)]
        return self._gemm(x, p["wt"], out, p["bias"], None, nb, fout, fin)

    def _pdl_by_version(self, on: bool, fallback: str) -> bool:
        """Whether a kernel written for programmatic dependent launch goes that way: as the pdl option says where it
        is set (True: where launchable), else where the fuse version says so (``on``) and it is launchable (else
        ``fallback`` goes to info()["fallbacks"])."""
        if self.pdl_option is not None:
            return self.pdl
        return on and self._pdl_launchable(fallback)

    def _pdl_launchable(self, fallback: str) -> bool:
        """Whether a version that launches by programmatic dependent launch can (sm_90+ and the driver's
        cuLaunchKernelEx); where not, ``fallback`` ("<family> <version> -> <version>") goes to info()["fallbacks"] and
        the caller launches the same kernel plainly."""
        if self._launch_ex is None:
            self._fallbacks.add(f"{fallback} (no programmatic dependent launch: needs sm_90+ and cuLaunchKernelEx)")
        return self._launch_ex is not None

    def _linear_c8_launch(self, x: Any, p: dict[str, Any], out: Any) -> Launch | None:
        """linear v4: y = x @ W^T + b as one linear_c8 kernel (kernels/cblock.cu: clusters of 8 blocks split K, each
        cluster 64 rows x 64 columns); None where it does not apply (IN % 4, OUT % 8, alignment, shared memory)."""
        nb, fin = x.shape
        fout = p["wt"].shape[1]
        smem = K.linear_c8_smem(fin)
        if fin % 4 or fout % 8 or smem > K.PWPOOL_MAX_SMEM or nb > 65535 * 64:
            return None
        if not self._aligned(x, p["wt"], p["bias"], out):
            return None
        args = (x, p["wt"], p["bias"], out, _i32(nb), _i32(fin), _i32(fout))
        grid = (8 * math.ceil(fout / 64), math.ceil(nb / 64))
        return Launch("linear_c8", self._dyn_smem(self._fn("linear_c8"), smem), grid, (512,), args, smem=smem)

    def _add_launch(self, a: Any, b: Any, out: Any) -> Launch:
        n = a.size
        if self.versions["add"] == "v2" and self._aligned(a, b, out):
            name, work = "add_v2", math.ceil(n / 4)
        else:
            name, work = "add_v1", n
        grid = max(1, min(math.ceil(work / 256), self.sms * 16))
        return Launch(name, self._fn(name), (grid,), (256,), (a, b, out, _i64(n)))

    def _transpose_launch(self, src: Any, dst: Any, nb: int, rows: int, cols: int) -> Launch:
        if rows <= 4:  # NCHW -> NHWC of the few-channel network input: one thread per pixel (layout.cu)
            pixels = nb * cols
            grid = (max(1, min(math.ceil(pixels / 256), self.sms * 16)),)
            args = (src, dst, _i32(rows), _i64(cols), _i64(pixels))
            return Launch("nchw_to_nhwc_smallc", self._fn("nchw_to_nhwc_smallc"), grid, (256,), args)
        if nb > 65535:
            raise InputError(f"batch {nb} exceeds the grid limit 65535")
        grid = (math.ceil(cols / 32), math.ceil(rows / 32), nb)
        return Launch(
            "transpose_batched", self._fn("transpose_batched"), grid, (32, 8), (src, dst, _i32(rows), _i32(cols))
        )

    # -- launching -----------------------------------------------------------------------------------
    def _launch(self, launch: Launch) -> None:
        cp = self._cp
        try:
            if launch.pdl:
                self._launch_pdl(launch)
            else:  # (a cooperative launch's kernel is a CooperativeKernel: Launch.__post_init__)
                launch.kernel(launch.grid, launch.block, launch.args, shared_mem=launch.smem)
        except (cp.cuda.driver.CUDADriverError, cp.cuda.runtime.CUDARuntimeError) as exc:
            raise CudaError(f"launch of {launch.name} grid={launch.grid} block={launch.block}: {exc}") from exc
        if self.debug and not self._capturing:
            try:
                self.stream.synchronize()
            except (cp.cuda.driver.CUDADriverError, cp.cuda.runtime.CUDARuntimeError) as exc:
                raise CudaError(f"{launch.name} grid={launch.grid} block={launch.block} failed: {exc}") from exc

    def _launch_pdl(self, launch: Launch) -> None:
        """cuLaunchKernelEx with PROGRAMMATIC_STREAM_SERIALIZATION on the backend's stream (captured into CUDA graphs
        like any launch): the kernel may begin while the previous one finishes; it waits in griddepcontrol.wait."""
        attrs, n = launch_attrs(self._persist_window(launch))
        g = tuple(launch.grid) + (1,) * (3 - len(launch.grid))
        b = tuple(launch.block) + (1,) * (3 - len(launch.block))
        cfg = LaunchConfig(*g, *b, launch.smem, self.stream.ptr, attrs, n)
        vals = [_ctype_arg(a) for a in launch.args]
        params = (ctypes.c_void_p * len(vals))(*[ctypes.addressof(v) for v in vals])
        err = self._launch_ex(ctypes.byref(cfg), ctypes.c_void_p(launch.kernel.kernel.ptr), params, None)
        if err != 0:
            where = f"{launch.name} grid={launch.grid} block={launch.block}"
            raise CudaError(f"cuLaunchKernelEx of {where}: CUresult {err}")

    def _persist_window(self, launch: Launch) -> tuple[int, int, float] | None:
        """MBV2_L2_PERSIST=head (session 40): the access-policy window of a launch of K.L2_PERSIST_HEAD, over its
        weight array (argument 1), the hit ratio what the set-aside holds of it; None otherwise."""
        if self.l2_persist != "head" or K.generic_of(launch.name) not in K.L2_PERSIST_HEAD:
            return None
        w = launch.args[1]
        ratio = min(1.0, self.l2_set_aside / w.nbytes) if w.nbytes else 1.0
        return int(w.data.ptr), int(w.nbytes), ratio

    def launch_all(self, launches: list[Launch]) -> None:
        with self.stream:
            for launch in launches:
                self._launch(launch)

    # -- data movement -------------------------------------------------------------------------------
    def to_device(self, x: np.ndarray) -> Any:
        self._ensure_device()
        if not isinstance(x, np.ndarray):
            raise InputError(f"to_device: expected a NumPy array, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise InputError(f"to_device: dtype {x.dtype}, expected float32")
        if x.ndim not in (2, 4):
            raise InputError(f"to_device: shape {x.shape}; expected (N, C, H, W) or (N, F)")
        if self.dtype == "fp16":
            return self._h_to_device(x)
        cp = self._cp
        with self.stream:
            xd = cp.asarray(np.ascontiguousarray(x))
            if x.ndim == 2:
                return xd
            n, c, h, w = x.shape
            y = cp.empty((n, h, w, c), cp.float32)
            self._launch(self._transpose_launch(xd, y, n, c, h * w))
        return y

    def to_host(self, y: Any) -> np.ndarray:
        self._ensure_device()
        if self.dtype == "fp16" and not (isinstance(y, self._cp.ndarray) and y.dtype == np.float32):
            return self._h_to_host(y)
        self._check_dev(y, "to_host")
        cp = self._cp
        with self.stream:
            if y.ndim == 4:
                n, h, w, c = y.shape
                t = cp.empty((n, c, h, w), cp.float32)
                self._launch(self._transpose_launch(y, t, n, h * w, c))
                y = t
            out = y.get()
        self.stream.synchronize()
        return out

    def synchronize(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()

    # -- the ops -------------------------------------------------------------------------------------
    @staticmethod
    def _conv_out_shape(x_shape: tuple[int, ...], layer: Conv2d) -> tuple[int, int, int, int]:
        """NHWC output shape of ``layer`` on an NHWC input (any dtype); a clear error if they do not fit."""
        nb, h, w, c = x_shape
        if c != layer.in_channels:
            raise InputError(
                f"conv2d input: NHWC shape {tuple(x_shape)} has {c} channels, the layer expects {layer.in_channels}"
            )
        ho, wo = layer.out_hw(h, w)
        if ho < 1 or wo < 1:
            raise InputError(
                f"conv2d input: spatial size {h}x{w} is too small for the {layer.kernel}x{layer.kernel} conv"
            )
        return (nb, ho, wo, layer.out_channels)

    def conv2d(self, x: Any, layer: Conv2d, act: bool = False, residual: Any = None, out: Any = None) -> Any:
        self._ensure_device()
        if not isinstance(layer, Conv2d):
            raise InputError(f"conv2d: layer must be a Conv2d, got {type(layer).__name__}")
        if self.dtype == "fp16":
            return self._h_conv2d(x, layer, act, residual, out)
        self._check_dev(x, "conv2d input", ndim=4)
        oshape = self._conv_out_shape(x.shape, layer)
        if residual is not None:
            self._check_out(residual, oshape, "conv2d residual")
        self._layer_params(layer)  # weight shape checks before any launch
        if out is None:
            out = self._empty(oshape)
        else:
            self._check_out(out, oshape, "conv2d out")
        need = self._needs_scratch(layer, x.shape)
        scratch = self._empty((need,)) if need else None
        self.launch_all(self._conv_launches(x, layer, act, residual, out, scratch))
        return out

    def add(self, a: Any, b: Any, out: Any = None) -> Any:
        self._ensure_device()
        if self.dtype == "fp16":
            return self._h_add(a, b, out)
        self._check_dev(a, "add a")
        self._check_dev(b, "add b")
        if a.shape != b.shape:
            raise InputError(f"add: shapes {a.shape} and {b.shape} differ")
        if out is None:
            out = self._empty(a.shape)
        else:
            self._check_out(out, a.shape, "add out")
        self.launch_all([self._add_launch(a, b, out)])
        return out

    def global_avg_pool(self, x: Any, out: Any = None) -> Any:
        self._ensure_device()
        if self.dtype == "fp16":
            return self._h_global_avg_pool(x, out)
        self._check_dev(x, "global_avg_pool input", ndim=4)
        oshape = (x.shape[0], x.shape[3])
        if out is None:
            out = self._empty(oshape)
        else:
            self._check_out(out, oshape, "global_avg_pool out")
        self.launch_all([self._pool_launch(x, out)])
        return out

    def pointwise_pool(self, x: Any, layer: Conv2d, act: bool = True, out: Any = None) -> Any:
        """global_avg_pool(ReLU6(pointwise(x))) (ReLU6 with ``act``) as one op, (N, COUT): with fuse=v9 one kernel
        where it applies (maps of <= PWPOOL_MAX_HW pixels, CIN % 4 == 0, COUT % PWPOOL_CO == 0, aligned: pwpool_c8
        where COUT % 64 == 0, else pwpool; _pwpool_launch), else the conv and the pool kernels through a temporary;
        fp16 mode: its conv and pool ops."""
        self._ensure_device()
        if not isinstance(layer, Conv2d) or not layer.is_pointwise:
            raise InputError(f"pointwise_pool: layer must be a pointwise Conv2d, got {layer!r}")
        if self.dtype == "fp16":
            return self.global_avg_pool(self.conv2d(x, layer, act=act), out)
        self._check_dev(x, "pointwise_pool input", ndim=4)
        mshape = self._conv_out_shape(x.shape, layer)
        oshape = (x.shape[0], layer.out_channels)
        self._layer_params(layer)
        if out is None:
            out = self._empty(oshape)
        else:
            self._check_out(out, oshape, "pointwise_pool out")
        v9 = K.fuse_level(self.versions["fuse"]) >= 9
        launch = self._pwpool_launch(x, layer, act, out) if v9 else None
        if launch is not None:
            self.launch_all([launch])
            return out
        if v9:
            self._fallbacks.add("fuse v9 -> v1 (pwpool needs <= 64 pixels, CIN % 4, COUT % 8, aligned arrays)")
        mid = self._empty(mshape)
        need = self._needs_scratch(layer, x.shape)
        scratch = self._empty((need,)) if need else None
        self.launch_all(self._conv_launches(x, layer, act, None, mid, scratch))
        self.launch_all([self._pool_launch(mid, out)])
        self.stream.synchronize()  # mid is freed on return
        return out

    def linear(self, x: Any, layer: Linear, out: Any = None) -> Any:
        self._ensure_device()
        if not isinstance(layer, Linear):
            raise InputError(f"linear: layer must be a Linear, got {type(layer).__name__}")
        if self.dtype == "fp16":
            return self._h_linear(x, layer, out)
        self._check_dev(x, "linear input", ndim=2)
        if x.shape[1] != layer.in_features:
            raise InputError(f"linear input: shape {x.shape}, the layer expects {layer.in_features} features")
        self._layer_params(layer)
        oshape = (x.shape[0], layer.out_features)
        if out is None:
            out = self._empty(oshape)
        else:
            self._check_out(out, oshape, "linear out")
        self.launch_all(self._linear_launches(x, layer, out))
        return out

    # -- whole network -------------------------------------------------------------------------------
    @staticmethod
    def _fuse_pairs(fused: list, last_use: list[int], fusable: Any) -> dict[int, Any]:
        """Consecutive (op, next op) pairs that run as one kernel: op is a conv without residual whose only
        reader is the next op, a conv that does not take op as its residual, and ``fusable(op, nxt)``.
        Returns {next op index: op}. op's input must stay live until the next op (the fused kernel reads
        it there, so the next op's output must not reuse its buffer): ``last_use`` is updated in place."""
        pairs: dict[int, Any] = {}
        for op, nxt in zip(fused, fused[1:]):
            if (
                op.kind == "conv"
                and nxt.kind == "conv"
                and op.residual is None
                and nxt.input == op.index
                and last_use[op.index] == nxt.index
                and nxt.residual != op.index
                and fusable(op, nxt)
            ):
                pairs[nxt.index] = op
                if op.input != NETWORK_INPUT:
                    last_use[op.input] = max(last_use[op.input], nxt.index)
        return pairs

    @staticmethod
    def _fuse_blocks(fused: list, last_use: list[int], fuse_ex: dict[int, Any]) -> dict[int, tuple[Any, Any]]:
        """Whole bottleneck blocks (fp32 fuse v5, fp16 hfuse v4): each fused (expansion, depthwise) pair of
        ``fuse_ex`` whose only reader is the next op, a pointwise conv (the projection; its residual, if any, the
        block input). Returns {projection op index: (expansion op, depthwise op)}; the expansion's input stays live
        until the projection (the block kernel reads it there): ``last_use`` is updated in place."""
        blocks: dict[int, tuple[Any, Any]] = {}
        for dwi, exop in fuse_ex.items():
            dwop = fused[dwi]
            pwop = fused[dwi + 1] if dwi + 1 < len(fused) else None
            if (
                pwop is not None
                and pwop.kind == "conv"
                and pwop.layer.is_pointwise
                and pwop.input == dwop.index
                and last_use[dwop.index] == pwop.index
                and pwop.residual in (None, exop.input)
            ):
                blocks[pwop.index] = (exop, dwop)
                if exop.input != NETWORK_INPUT:
                    last_use[exop.input] = max(last_use[exop.input], pwop.index)
        return blocks

    def plan(self, batch: int) -> Plan:
        """Allocate every buffer and fix every launch for one batch size (once; cached)."""
        if self.net is None:
            raise RuntimeError("backend 'custom': call prepare(net) before plan()/run()")
        if batch in self._plans:
            return self._plans[batch]
        self._planning = True  # the tuned launches' alternatives are kept for _plan_tune while the plan is built
        try:
            return self._plan(batch)
        finally:
            self._planning = False
            self._alts.clear()

    def _plan(self, batch: int) -> Plan:
        self._ensure_device()
        if self.dtype == "fp16":
            self._plans[batch] = self._h_plan(batch)
            return self._plans[batch]
        if self.versions["net"] == "v2":  # the whole network as one persistent kernel (impls/_custom_persistent.py)
            from ._custom_persistent import persistent_plan

            self._plans[batch] = persistent_plan(self, batch)
            return self._plans[batch]
        cp = self._cp
        net = self.net
        c, h, w = net.input_shape
        fused = net.fused
        last_use = [-1] * len(fused)
        for op in fused:
            for src in (op.input, op.residual):
                if src is not None and src != NETWORK_INPUT:
                    last_use[src] = op.index
        last_use[-1] = len(fused)  # the output stays
        # fuse v2: a depthwise conv (+ ReLU6) runs inside the next op's kernel, a pointwise conv (dwpw);
        # fuse v3 / v4: an expansion 1x1 conv (+ ReLU6) runs inside the next op's kernel, a 3x3 depthwise
        # conv without residual (exdw, kernels/conv.cu)
        fuse_pw: dict[int, Any] = {}  # pointwise op index -> the depthwise op fused into it
        fuse_ex: dict[int, Any] = {}  # depthwise op index -> the expansion op fused into it
        if self.versions["fuse"] == "v2":
            fuse_pw = self._fuse_pairs(fused, last_use, lambda op, nxt: self._fusable(op.layer, nxt.layer))
        elif K.fuse_level(self.versions["fuse"]) >= 3:
            fuse_ex = self._fuse_pairs(
                fused, last_use, lambda op, nxt: nxt.residual is None and self._exdw_fusable(op.layer, nxt.layer)
            )
        # fuse v5: an (expansion, depthwise) pair whose only reader is a pointwise conv (the projection; its
        # residual, if any, the block input) runs with it as one block kernel (exdwpw5) or, where faster, as
        # the exdw4 pair + the projection GEMM: decided at the projection op (_block_launches)
        fuse_blk: dict[int, tuple[Any, Any]] = {}  # projection op index -> (expansion op, depthwise op)
        if K.fuse_level(self.versions["fuse"]) >= 5:
            fuse_blk = self._fuse_blocks(fused, last_use, fuse_ex)
        # fuse v6 at small batch: every other bottleneck block (expansion CIN not in EXDW_CIN) too, as one exdwpw6
        # kernel where it applies (_block_launches), else its three layers' own kernels
        if K.fuse_level(self.versions["fuse"]) >= 6 and batch <= self.exdwpw6_max_batch:
            big = self._fuse_pairs(
                fused,
                last_use,
                lambda op, nxt: (
                    nxt.residual is None
                    and not self._exdw_fusable(op.layer, nxt.layer)
                    and nxt.index + 1 < len(fused)
                    and fused[nxt.index + 1].kind == "conv"
                    and self._block6_shapes(op.layer, nxt.layer, fused[nxt.index + 1].layer)
                ),
            )
            blk6 = self._fuse_blocks(fused, last_use, big)
            fuse_blk.update(blk6)
            fuse_ex.update({dwop.index: exop for exop, dwop in blk6.values()})
        # fuse v7 above batch 1: the (expansion, depthwise) pairs no kernel above takes whose map has at most
        # EXGDW_ROWS pixels (the 14x14 / 7x7 blocks) as one exgdw kernel (_exgdw_launches); the projection stays a GEMM
        fuse_g: dict[int, Any] = {}  # depthwise op index -> the expansion op fused into its exgdw kernel
        if K.fuse_level(self.versions["fuse"]) >= 7:
            taken = set(fuse_ex) | {ex.index for ex in fuse_ex.values()}
            fuse_g = self._fuse_pairs(
                fused,
                last_use,
                lambda op, nxt: (
                    op.index not in taken
                    and nxt.index not in taken
                    and nxt.residual is None
                    and self._exgdw_fusable(op.layer, nxt.layer, op.layer.out_shape[1], op.layer.out_shape[2])
                ),
            )
        fused_dw = {dw.index for dw in fuse_pw.values()}
        fused_ex = {ex.index for ex in fuse_ex.values()} | {ex.index for ex in fuse_g.values()}
        blk_dw = {dwop.index for _, dwop in fuse_blk.values()}
        # fuse v9 at batch <= PWPOOL_MAX_BATCH: a pointwise conv (no residual) whose only reader is the global average
        # pool after it runs inside the pool's pwpool kernel (_pwpool_launch; where it does not apply, the two kernels)
        fuse_pp: dict[int, Any] = {}  # pool op index -> the pointwise conv op fused into its pwpool kernel
        if K.fuse_level(self.versions["fuse"]) >= 9 and batch <= K.PWPOOL_MAX_BATCH:
            taken = set(fuse_pw) | set(fuse_blk) | set(fuse_ex) | set(fuse_g) | fused_ex | fused_dw | blk_dw
            for op, nxt in zip(fused, fused[1:]):
                if (
                    nxt.kind == "pool"
                    and op.kind == "conv"
                    and op.layer.is_pointwise
                    and op.residual is None
                    and nxt.input == op.index
                    and last_use[op.index] == nxt.index
                    and op.index not in taken
                ):
                    fuse_pp[nxt.index] = op
                    if op.input != NETWORK_INPUT:  # read by the pool's kernel: its buffer stays until then
                        last_use[op.input] = max(last_use[op.input], nxt.index)
        fused_pp = {op.index for op in fuse_pp.values()}
        # fuse v31 at the same batches: a classifier whose only input is such a pool's output runs inside the pool's
        # kernel too (pwpool_fc_c8, decided at the pool op by _pwpool_fc_launch; where it does not apply, v30's two
        # kernels and a recorded fallback). The fused kernel's last blocks write the logits while other images' blocks
        # may still read the conv's input: that buffer stays until the classifier.
        fuse_fc: dict[int, Any] = {}  # pool op index -> the linear op fused into its pwpool_fc_c8 kernel
        if K.head_fc(self.versions["fuse"]):
            for op, nxt in zip(fused, fused[1:]):
                if (
                    op.index in fuse_pp
                    and nxt.kind == "linear"
                    and nxt.input == op.index
                    and last_use[op.index] == nxt.index
                ):
                    fuse_fc[op.index] = nxt
                    cin_op = fuse_pp[op.index].input
                    if cin_op != NETWORK_INPUT:
                        last_use[cin_op] = max(last_use[cin_op], nxt.index)
        fused_fc: set[int] = set()  # the linear ops planned inside their pool's pwpool_fc_c8 launch

        def out_shape(op) -> tuple[int, ...]:
            s = op.layer.out_shape
            return (batch, s[1], s[2], s[0]) if len(s) == 3 else (batch, *s)

        shapes = [out_shape(op) for op in fused]
        sizes = [int(np.prod(s)) for s in shapes]
        slot_of = plan_buffers(sizes, last_use)
        with self.stream:
            stage_in = cp.empty((batch, c, h, w), cp.float32)
            x0 = cp.empty((batch, h, w, c), cp.float32)
            slots = [cp.empty((n,), cp.float32) for n in slot_sizes(slot_of, sizes)]
            outs: dict[int, Any] = {NETWORK_INPUT: x0}
            blk0 = self._block0_plan(fused, stage_in)  # block0 v2/v3: the first 3 convs as 1 kernel (_custom_block0)
            launches = [] if blk0 else [self._transpose_launch(stage_in, x0, batch, c, h * w)]
            ranges = [] if blk0 else [("input NCHW->NHWC", 0, 1)]
            scratch_need = 0
            for op in fused:
                if op.kind == "conv":
                    in_shape = x0.shape if op.input == NETWORK_INPUT else shapes[op.input]
                    scratch_need = max(scratch_need, self._needs_scratch(op.layer, in_shape))  # type: ignore[arg-type]
            scratch = cp.empty((max(scratch_need, 1),), cp.float32)
            for op in fused:
                y = slots[slot_of[op.index]][: sizes[op.index]].reshape(shapes[op.index])
                a = outs[op.input]
                first = len(launches)
                if op.index in blk0:  # block0 v2/v3: no launch at the stem / depthwise, one kernel at the projection
                    launches += blk0[op.index](y)
                elif op.index in fused_dw or op.index in fused_ex or op.index in blk_dw or op.index in fused_pp:
                    pass  # runs inside the next op's dwpw (fuse v2) / exdw (v3) / block (v5) / pwpool (v9) kernel
                elif op.index in fused_fc:
                    pass  # the classifier ran inside the previous op's pwpool_fc_c8 kernel (fuse v31)
                elif op.kind == "conv" and op.index in fuse_blk:
                    exop, dwop = fuse_blk[op.index]
                    res = outs[op.residual] if op.residual is not None else None
                    mid = outs[dwop.index]
                    bl = self._block_launches(outs[exop.input], exop, dwop, op.layer, op.act, res, mid, y, scratch)
                    if bl is None:  # no block kernel applies (unaligned, or no exdw4 pair): the three layers' own
                        self._fallbacks.add("fuse v5/v6 -> v1 (no block kernel applies: unaligned arrays or shape)")
                        bl = self._conv_launches(
                            outs[exop.input], exop.layer, exop.act, None, outs[exop.index], scratch
                        )
                        bl += self._conv_launches(outs[exop.index], dwop.layer, dwop.act, None, mid, scratch)
                        bl += self._conv_launches(mid, op.layer, op.act, res, y, scratch)  # type: ignore[arg-type]
                    launches += bl
                elif op.kind == "conv" and op.index in fuse_g:
                    exop = fuse_g[op.index]
                    ex_in, ex_out = outs[exop.input], outs[exop.index]
                    gl = self._exgdw_launches(ex_in, exop.layer, exop.act, op.layer, op.act, y, ex_out, scratch)
                    if gl is None:  # unaligned: the two layers' own kernels
                        self._fallbacks.add("fuse v7 -> v1 (unaligned arrays)")
                        gl = self._conv_launches(ex_in, exop.layer, exop.act, None, ex_out, scratch)
                        gl += self._conv_launches(ex_out, op.layer, op.act, None, y, scratch)
                    launches += gl
                elif op.kind == "conv" and op.index in fuse_ex:
                    exop = fuse_ex[op.index]
                    ex_in = outs[exop.input]
                    launch = self._exdw_launch(ex_in, exop.layer, exop.act, op.layer, op.act, y)
                    if launch is None:  # unaligned: the two layers' own kernels
                        self._fallbacks.add("fuse v3/v4 -> v1 (unaligned arrays)")
                        launches += self._conv_launches(ex_in, exop.layer, exop.act, None, outs[exop.index], scratch)
                        launches += self._conv_launches(a, op.layer, op.act, None, y, scratch)  # type: ignore[arg-type]
                    else:
                        launches.append(launch)
                elif op.kind == "conv" and op.index in fuse_pw:
                    dwop = fuse_pw[op.index]
                    res = outs[op.residual] if op.residual is not None else None
                    fl = self._dwpw_launches(outs[dwop.input], dwop.layer, dwop.act, op.layer, op.act, res, y)
                    if fl is None:  # unaligned: the two layers' own kernels
                        self._fallbacks.add("fuse v2 -> v1 (unaligned arrays)")
                        fl = self._conv_launches(outs[dwop.input], dwop.layer, dwop.act, None, outs[dwop.index])
                        fl += self._conv_launches(a, op.layer, op.act, res, y, scratch)  # type: ignore[arg-type]
                    launches += fl
                elif op.kind == "conv":
                    res = outs[op.residual] if op.residual is not None else None
                    launches += self._conv_launches(a, op.layer, op.act, res, y, scratch)  # type: ignore[arg-type]
                elif op.kind == "add":
                    launches.append(self._add_launch(a, outs[op.residual], y))  # type: ignore[index]
                elif op.kind == "pool" and op.index in fuse_pp:
                    cop = fuse_pp[op.index]
                    launch = None
                    lop = fuse_fc.get(op.index)
                    if lop is not None:  # fuse v31 / v38: the classifier in the same kernel, into the linear op buffer
                        ly = slots[slot_of[lop.index]][: sizes[lop.index]].reshape(shapes[lop.index])
                        launch, why = self._pwpool_fc_launch(outs[cop.input], cop.layer, cop.act, y, lop.layer, ly)
                        if launch is None:
                            fuse = self.versions["fuse"]
                            self._fallbacks.add(f"fuse {fuse} -> {K.head_fc_base(fuse)} ({why})")
                        else:
                            fused_fc.add(lop.index)
                    if launch is None:
                        launch = self._pwpool_launch(outs[cop.input], cop.layer, cop.act, y)
                    if launch is None:  # the conv's own kernels into its buffer, then the pool
                        self._fallbacks.add("fuse v9 -> v1 (pwpool needs <= 64 pixels, CIN % 4, COUT % 8, aligned)")
                        launches += self._conv_launches(outs[cop.input], cop.layer, cop.act, None, a, scratch)
                        launches.append(self._pool_launch(a, y))
                    else:
                        launches.append(launch)
                elif op.kind == "pool":
                    launches.append(self._pool_launch(a, y))
                elif op.kind == "linear":
                    launches += self._linear_launches(a, op.layer, y)  # type: ignore[arg-type]
                else:  # pragma: no cover
                    raise AssertionError(op.kind)
                ranges.append((f"{self.name}/{op.covers[0]}:{op.label}", first, len(launches)))
                outs[op.index] = y
            final = outs[fused[-1].index]
            if final.ndim == 4:  # a network ending in a feature map: hand it back as NCHW
                nb_, hh, ww, cc = final.shape
                t = cp.empty((nb_, cc, hh, ww), cp.float32)
                launches.append(self._transpose_launch(final, t, nb_, hh * ww, cc))
                final = t
        if self.plan_tune and self.autotune and batch <= self.PLAN_TUNE_MAX_BATCH:
            stage_in.fill(0.5)  # defined inputs for the timed replays (the poison / run that follows overwrite it)
            launches, ranges = self._plan_tune(batch, launches, ranges)
        if K.spec_modes(self.versions["fuse"]):  # fuse v22: each exdwpw6 launch on its own fixed-mode build
            launches = self._specialise_exdwpw6(launches)
        if K.fixed_shapes(self.versions["fuse"]):  # fuse v24: the exdwpw5 and block0 launches on fixed-shape builds
            launches = self._specialise_fixed(launches)
        if K.pwpool_exit(self.versions["fuse"]) and batch <= K.PWPOOL_PDL_MAX_BATCH:  # fuse v46: the head by PDL
            launches = self._pwpool_exit(launches)
        if K.trigger_early(self.versions["fuse"]) and batch <= K.TRIGGER_MAX_BATCH:  # fuse v45: early-trigger twins
            launches = self._trigger_twins(launches)  # (not on v46's exit twin: it has none)
        if K.block0_fuse(self.versions["fuse"]) and batch <= K.TRIGGER_MAX_BATCH:  # fuse v49: block0 in exdwpw5 #1
            launches, ranges = self._block0_fuse(launches, ranges)
        fresh: list[Any] = []
        sync: list[Any] = []
        if K.flag_handoff(self.versions["fuse"]) and batch <= self.exdwpw6_max_batch:
            launches, fresh, sync = self._flag_handoff(launches, batch)
        plan = Plan(
            batch=batch,
            stage_in=stage_in,
            out=final,
            launches=launches,
            op_ranges=ranges,
            buffers=[x0, scratch, *slots, *fresh],
            sync=sync,
        )
        plan.host_in, plan.host_out = _pinned(stage_in.shape), _pinned(final.shape)
        if self.graph:
            from mbv2.timing import CudaGraph

            self._capturing = True
            try:
                plan.graph = CudaGraph(lambda: self._enqueue_eager(plan), self.stream)
            finally:
                self._capturing = False
        self._plans[batch] = plan
        return plan

    def _specialise_exdwpw6(self, launches: list[Launch]) -> list[Launch]:
        """fuse v22: each exdwpw6 launch (the tuner's pick, on a generic build) on the build of the same name with its
        modes (arguments 24 - 27: proj_cols, ex_ks, red_pf, dw_segs) fixed at compile time, fuse v23 also its shape and
        flags (arguments 11 - 23); the same arguments, so the same sums. The builds are compiled on first use
        (K.build_exdwpw6_spec, ~1 s each, in parallel; cached on disk) and kept with this device's kernels."""
        shapes = K.spec_shapes(self.versions["fuse"])  # fuse v23: the shape and flags (arguments 11 - 23) too

        def key_of(la: Launch) -> tuple:
            modes = tuple(int(a) for a in la.args[24:28])
            return (la.name, modes, tuple(int(a) for a in la.args[11:24]) if shapes else None)

        def generic_build(la: Launch) -> bool:  # (not the stamped twins, nor a launch on a fixed build already: v30)
            return (
                la.name.startswith("exdwpw6")
                and la.name in self._fns
                and not la.name.endswith("_stamp")
                and K.exdwpw6_spec_parse(la.name)[1] is None
            )

        generic = [la for la in launches if generic_build(la)]
        wanted = {key_of(la) for la in generic}
        missing = sorted((k for k in wanted if K.exdwpw6_spec_name(*k) not in self._fns), key=repr)
        self._build_and_load(missing, lambda k, nvcc: K.build_exdwpw6_spec(k[0], k[1], self.arch, nvcc, k[2]))
        out = []
        for la in launches:
            if generic_build(la):
                spec = K.exdwpw6_spec_name(*key_of(la))
                la = replace(la, name=spec, kernel=self._exdwpw6_fn(spec, la.smem))
            out.append(la)
        return out

    def _flag_handoff(self, launches: list[Launch], batch: int) -> tuple[list[Launch], list[Any], list[Any]]:
        """fuse v43: the runs of consecutive exdwpw6 launches hand off through per-tile flags (impls/_custom_flags.py
        plan_flags): each launch of a run on its fixed build's flag twin, the last exdwpw5 launch before the first run
        on its epoch twin (both compiled on first use, in parallel; cached on disk). fuse v44: the exdwpw5 launches
        join the runs (K.flag_upstream), on their fixed builds' flag twins, and block0 v4 advances the number where it
        runs (its epoch twins are in kernels/block0.cu's own build). (launches, the fresh buffers to poison with the
        plan's, the flag arrays / counters / forward-number word); where it does not apply, the launches as they are
        and a recorded fallback."""
        from . import _custom_flags as F

        fuse = self.versions["fuse"]
        upstream = K.flag_upstream(fuse)
        at = F.epoch_launch(launches, upstream)
        if isinstance(at, str):
            self._fallbacks.add(f"fuse {fuse} -> v42 at batch {batch} (no flag hand-off: {at})")
            return launches, [], []
        names = [la.name for la in launches]
        runs = sorted({names[i] for lo, hi in F.handoff_runs(names, upstream) for i in range(lo, hi)})
        # (a launch in a run without a twin, e.g. on a generic build: plan_flags says why, before it asks for its twin)
        runs = [n for n in runs if K.twin_parse(n + K.FLAG_SUFFIX)[1] is not None]
        todo = [(n, True) for n in runs if n + K.FLAG_SUFFIX not in self._fns]
        todo += [] if names[at] + K.EPOCH_SUFFIX in self._fns else [(names[at], False)]

        def build(item: tuple[str, bool], nvcc: str | None) -> K.Built:
            name, flags = item
            if flags and name.startswith("exdwpw6"):
                base, modes, shape = K.exdwpw6_spec_parse(name)
                twin6 = {"extra": self.flag_extra, "flags": True}
                return K.build_exdwpw6_spec(base, modes, self.arch, nvcc, shape, **twin6)  # type: ignore[arg-type]
            gen, shape = K.fixed_parse(name)
            twin = {"flags": True} if flags else {"epoch": True}
            return K.build_fixed(gen, shape, self.arch, nvcc, **twin)  # type: ignore[arg-type]

        self._build_and_load(todo, build)

        def flag_fn(la: Launch) -> Any:
            if la.name.startswith("exdwpw5"):
                return self._dyn_smem(self._fn(la.name + K.FLAG_SUFFIX), la.smem)
            return self._exdwpw6_fn(la.name + K.FLAG_SUFFIX, la.smem)

        def epoch_fn(la: Launch) -> Any:
            return self._dyn_smem(self._fn(la.name + K.EPOCH_SUFFIX), la.smem)

        with self.stream:
            got = F.plan_flags(launches, self._cp, flag_fn, epoch_fn, upstream)
        if isinstance(got, str):
            self._fallbacks.add(f"fuse {fuse} -> v42 at batch {batch} (no flag hand-off: {got})")
            return launches, [], []
        return got.launches, got.fresh, got.sync

    def _trigger_twins(self, launches: list[Launch]) -> list[Launch]:
        """fuse v45: each block0 v4, exdwpw5 (fixed build) and exdwpw6 (fixed modes and shape) launch on its
        early-trigger twin (K.trigger_twin_kind): the same build compiled with PDL_TRIGGER_EARLY, so that it triggers
        its dependents right after its input staging; the same arguments and sums. The exdwpw5 / exdwpw6 twins are
        fixed builds compiled on first use (~1 s each, in parallel; cached on disk); block0's are kernels/block0.cu's
        own early build (K.build_file_twin), each of its kernels kept as <name>TRIGGER_SUFFIX. With trigger_launches
        only the launches at those positions (each must have a twin: InputError otherwise).
        fuse v47: the exdwpw5 launches of K.EXDWPW5_ASYNC_BUILDS (with stage_launches: those at its positions, each an
        exdwpw5 fixed launch among the picked ones) on their staged twins instead (K.STAGE_SUFFIX: the early-trigger
        twin with cp.async staging; more shared memory, the same arguments and sums). fuse v48: the other exdwpw5
        launches of K.EXDWPW5_PATCH_BUILDS on their patch twins (K.PATCH_SUFFIX: the input patch by cp.async only)."""
        picked = range(len(launches)) if self.trigger_launches is None else sorted(self.trigger_launches)
        if self.trigger_launches is not None:
            bad = [
                f"{i} ({launches[i].name if i < len(launches) else f'the plan has {len(launches)} launches'})"
                for i in picked
                if i >= len(launches) or K.trigger_twin_kind(launches[i].name) is None
            ]
            if bad:
                raise InputError(f"trigger_launches: no early-trigger twin at position {', '.join(bad)}")
        at = {i: K.trigger_twin_kind(launches[i].name) for i in picked}
        at.update(self._stage_kinds(launches, at))  # fuse v47 / v48
        suffix = {"staged": K.STAGE_SUFFIX, "patch": K.PATCH_SUFFIX}
        kinds = {launches[i].name: k for i, k in at.items() if k not in suffix}
        todo_twin = sorted(
            {
                (launches[i].name, k)
                for i, k in at.items()
                if k in suffix and launches[i].name + suffix[k] not in self._fns
            }
        )
        todo = sorted(
            n for n, k in kinds.items() if k in ("exdwpw6", "fixed") and n + K.TRIGGER_SUFFIX not in self._fns
        )

        def build(name: str, nvcc: str | None) -> K.Built:
            if kinds[name] == "exdwpw6":
                base, modes, shape = K.exdwpw6_spec_parse(name)
                return K.build_exdwpw6_spec(base, modes, self.arch, nvcc, shape, early=True)  # type: ignore[arg-type]
            gen, shape = K.fixed_parse(name)
            return K.build_fixed(gen, shape, self.arch, nvcc, early=True)  # type: ignore[arg-type]

        self._build_and_load(todo, build)
        self._build_and_load(
            todo_twin,
            lambda nk, nvcc: K.build_fixed(*K.fixed_parse(nk[0]), self.arch, nvcc, **{nk[1]: True}),  # type: ignore[arg-type]
        )
        zero = sorted(n for n, k in kinds.items() if k == "block0" and n + K.TRIGGER_SUFFIX not in self._fns)
        if zero:
            module = _load_module(self._cp, K.build_file_twin("block0", self.arch, K.find_nvcc()))
            for n in zero:
                self._fns[n + K.TRIGGER_SUFFIX] = module.get_function(n)
        out = []
        for i, la in enumerate(launches):
            kind = at.get(i)
            if kind in suffix:  # fuse v47 / v48
                twin, smem = la.name + suffix[kind], K.exdwpw5_smem(K.fixed_parse(la.name)[0], staged=kind == "staged")
                la = replace(la, name=twin, kernel=self._dyn_smem(self._fn(twin), smem), smem=smem)
            elif kind is not None:
                twin = la.name + K.TRIGGER_SUFFIX
                fn = self._exdwpw6_fn(twin, la.smem) if kind == "exdwpw6" else self._dyn_smem(self._fn(twin), la.smem)
                la = replace(la, name=twin, kernel=fn)
            out.append(la)
        return out

    def _stage_kinds(self, launches: list[Launch], at: dict[int, str | None]) -> dict[int, str]:
        """fuse v47 / v48: among ``at`` (the early-trigger twins' positions and kinds), the exdwpw5 fixed launches that
        run on a staging twin instead, and which ("staged" or "patch": K.stage_twin_kind of their build); with
        stage_launches, "staged" at exactly those positions (each an exdwpw5 fixed launch among ``at``: InputError
        otherwise). Before v47 none (stage_launches set there: InputError)."""
        fuse = self.versions["fuse"]
        if not K.stage_twins(fuse):
            if self.stage_launches:
                raise InputError(f"stage_launches: fuse {fuse} has no staged twins (fuse v47 and later)")
            return {}
        out = {}
        for i, k in at.items():
            twin = K.stage_twin_kind(fuse, K.generic_of(launches[i].name)) if k == "fixed" else None
            if twin is not None and (self.stage_launches is None or twin != "staged"):
                out[i] = twin
        if self.stage_launches is None:
            return out
        bad = [
            f"{i} ({launches[i].name if i < len(launches) else f'the plan has {len(launches)} launches'})"
            for i in sorted(self.stage_launches)
            if at.get(i) != "fixed" or not launches[i].name.startswith("exdwpw5")
        ]
        if bad:
            raise InputError(
                f"stage_launches: no staged twin at position {', '.join(bad)} (wanted an exdwpw5 fixed launch on an"
                " early-trigger twin)"
            )
        return out | {i: "staged" for i in self.stage_launches}

    def _block0_fuse(
        self, launches: list[Launch], ranges: list[tuple[str, int, int]]
    ) -> tuple[list[Launch], list[tuple[str, int, int]]]:
        """fuse v49: where the plan starts with block0 v4 (K.B0FUSE_BLOCK0, or its early-trigger twin) and then an
        exdwpw5 fixed launch of K.B0FUSE_BUILDS that reads what it writes, the two become one launch on that build's
        b0fuse twin (K.B0FUSE_SUFFIX: the staged twin that computes block0's output on each block's input patch, the
        same sums term by term; its arguments are the exdwpw5 launch's, then block0's inputs, weights, image size and
        activations). block0's op range becomes empty and the later ones move down by one; block0's output buffer
        is no longer written (nothing else reads it). Where the plan does not start that way, it stays v48's and
        info()["fallbacks"] says why."""
        fuse = self.versions["fuse"]
        why = None
        if len(launches) < 2 or K.twin_parse(launches[0].name)[0] != K.B0FUSE_BLOCK0:
            why = f"the plan does not start with {K.B0FUSE_BLOCK0}"
        else:
            b0, ex = launches[0], launches[1]
            base, suffix = K.twin_parse(ex.name)
            generic, shape = K.fixed_parse(base)
            if shape is None or generic not in K.B0FUSE_BUILDS or suffix != K.STAGE_SUFFIX:
                why = f"the launch after block0 is {ex.name}, not the staged twin of one of {sorted(K.B0FUSE_BUILDS)}"
            elif ex.args[0].data.ptr != b0.args[7].data.ptr or tuple(ex.args[9:11]) != tuple(b0.args[10:12]):
                why = f"{ex.name} does not read block0's output"
        if why is not None:
            self._fallbacks.add(f"fuse {fuse} -> v48 ({why})")
            return launches, ranges
        twin = base + K.B0FUSE_SUFFIX
        if twin not in self._fns:
            self._build_and_load(
                [twin],
                lambda _, nvcc: K.build_fixed(generic, shape, self.arch, nvcc, b0fuse=True),  # type: ignore[arg-type]
            )
        smem = K.exdwpw5_b0_smem(generic)
        args = (*ex.args, *b0.args[:7], b0.args[8], b0.args[9], *b0.args[12:15])
        fused = replace(ex, name=twin, kernel=self._dyn_smem(self._fn(twin), smem), args=args, smem=smem, pdl=b0.pdl)
        shifted = [(label, lo - (lo >= 1), hi - (hi >= 1)) for label, lo, hi in ranges]
        return [fused, *launches[2:]], shifted

    def _pwpool_exit(self, launches: list[Launch]) -> list[Launch]:
        """fuse v46: pwpool_c8 by programmatic dependent launch, the exdwpw6 launch before it on its exit twin (the same
        build with no explicit trigger, K.EXIT_SUFFIX: pwpool_c8 is scheduled as that grid's blocks exit, after their
        last sums, where v29's came while they ran; the same arguments and sums). That position may not be among
        trigger_launches (InputError). Where the head is not pwpool_c8 after an exdwpw6 fixed build, or PDL cannot
        launch, the plan stays v45's and info()["fallbacks"] says why. fuse v53 / v54 / v55: the head's pwpool_fc_c8 /
        pwpool_c10 / pwpool_fc_c8e in pwpool_c8's place (K.EXIT_HEADS: their weights staged before their
        griddepcontrol.wait)."""
        fuse = self.versions["fuse"]
        at = next((i for i, la in enumerate(launches) if K.generic_of(la.name) in K.EXIT_HEADS), 0)
        base = K.twin_parse(launches[at - 1].name)[0] if at else ""
        build, modes, shape = K.exdwpw6_spec_parse(base) if at else ("", None, None)
        if shape is None:
            self._fallbacks.add(f"fuse {fuse} -> v45 (the head is not pwpool_c8 after an exdwpw6 fixed build)")
            return launches
        if self.trigger_launches is not None and at - 1 in self.trigger_launches:
            raise InputError(f"trigger_launches: position {at - 1} runs on fuse {fuse}'s exit twin ({base})")
        if not self._pdl_launchable(f"fuse {fuse} -> v45"):
            return launches
        twin = base + K.EXIT_SUFFIX
        if twin not in self._fns:
            self._build_and_load(
                [twin], lambda _, nvcc: K.build_exdwpw6_spec(build, modes, self.arch, nvcc, shape, at_exit=True)
            )
        prev = launches[at - 1]
        fn = self._exdwpw6_fn(twin, prev.smem)
        return [*launches[: at - 1], replace(prev, name=twin, kernel=fn), replace(launches[at], pdl=True),
                *launches[at + 1 :]]  # fmt: skip

    def _specialise_fixed(self, launches: list[Launch]) -> list[Launch]:
        """fuse v24: each exdwpw5 and block0 v3 launch (K.fixed_kind) on the build of the same name with its shape
        (the kernel arguments K.FIXED_KINDS names) fixed at compile time; the same arguments, so the same sums. The
        builds are compiled on first use (K.build_fixed, ~1 s each, in parallel; cached on disk) and kept with this
        device's kernels."""

        def key_of(la: Launch) -> tuple[str, tuple[int, ...]]:
            _, _, first, names, _ = K.FIXED_KINDS[K.fixed_kind(la.name)]  # type: ignore[index]
            return la.name, tuple(int(a) for a in la.args[first : first + len(names)])

        todo = [la for la in launches if la.name in self._fns and K.fixed_kind(la.name) is not None]
        missing = sorted({key_of(la) for la in todo if K.fixed_name(*key_of(la)) not in self._fns})
        self._build_and_load(missing, lambda k, nvcc: K.build_fixed(k[0], k[1], self.arch, nvcc))
        fixed = {id(la) for la in todo}
        out = []
        for la in launches:
            if id(la) in fixed:
                spec = K.fixed_name(*key_of(la))
                la = replace(la, name=spec, kernel=self._dyn_smem(self._fn(spec), la.smem))
            out.append(la)
        return out

    def _plan_tune(
        self, batch: int, launches: list[Launch], ranges: list[tuple[str, int, int]]
    ) -> tuple[list[Launch], list[tuple[str, int, int]]]:
        """plan_tune: one greedy pass in plan order over the tuned launches with alternatives (_register_alts). At
        each, the plan as it stands with the current pick and with each alternative in its place is timed as a whole
        (_time_sequences); the fastest stays, and the tuner's cache and ``tuned`` follow it. Returns the launches and
        the op ranges (shifted where an alternative has another launch count); ``plan_tuned[batch]`` lists the
        changes (op, tuner key, old and new pick, the whole plan's ms with each). Ops of one shape share a tuner key;
        in the plan each keeps its own pick, and the cache holds the last one's."""
        changes: list[dict[str, Any]] = []
        tried = 0
        i = 0
        while i < len(launches):
            entry = self._alts.get(id(launches[i]))
            n = len(entry[0]) if entry is not None else 0
            if entry is None or any(a is not b for a, b in zip(entry[0], launches[i : i + n])) or i + n > len(launches):
                i += 1
                continue
            cur, key, build, pick, alts = entry
            options = [list(cur)] + [list(build(a)) for a in alts]
            times = self._time_sequences([launches[:i] + o + launches[i + n :] for o in options])
            j = min(range(len(options)), key=times.__getitem__)  # ties keep the current pick
            tried += 1
            if j > 0:
                m = len(options[j])
                label = next((lb for lb, lo, hi in ranges if lo <= i < hi), "?")
                launches = launches[:i] + options[j] + launches[i + n :]
                d = m - n
                ranges = [(lb, lo + d if lo > i else lo, hi + d if hi > i else hi) for lb, lo, hi in ranges]
                self._tune_cache[key] = alts[j - 1]
                self.tuned[repr(key)] = repr(alts[j - 1])
                changes.append(
                    {"op": label, "key": repr(key), "isolated_pick": repr(pick), "plan_pick": repr(alts[j - 1]),
                     "plan_ms": [times[0], times[j]]}
                )  # fmt: skip
                n = m
            i += n
        self.plan_tuned[batch] = changes
        return launches, ranges

    def _time_sequences(self, seqs: list[list[Launch]]) -> list[float]:
        """Device ms of each launch sequence run as one CUDA graph: PLAN_TUNE_ROUNDS interleaved rounds, each a
        window of PLAN_TUNE_REPLAYS replays behind a spin-kernel cover (as in _tuned); the best round counts."""
        from mbv2.timing import CudaGraph

        cp = self._cp
        graphs = []
        self._capturing = True
        try:
            for seq in seqs:
                graphs.append(CudaGraph(lambda seq=seq: self._enqueue_launches(seq), self.stream))
        finally:
            self._capturing = False
        best = [math.inf] * len(graphs)
        for _ in range(self.PLAN_TUNE_ROUNDS):
            for k, g in enumerate(graphs):
                with self.stream:
                    e0, e1 = cp.cuda.Event(), cp.cuda.Event()
                    spin(30.0, self.stream)
                    e0.record(self.stream)
                    for _ in range(self.PLAN_TUNE_REPLAYS):
                        g.replay()
                    e1.record(self.stream)
                    e1.synchronize()
                best[k] = min(best[k], cp.cuda.get_elapsed_time(e0, e1) / self.PLAN_TUNE_REPLAYS)
        return best

    def _enqueue_launches(self, launches: list[Launch]) -> None:
        with self.stream:
            for launch in launches:
                self._launch(launch)

    def _enqueue_eager(self, plan: Plan, ranges: bool = False) -> None:
        with self.stream:
            if ranges:
                for label, lo, hi in plan.op_ranges:
                    with nvtx.annotate(label):
                        for launch in plan.launches[lo:hi]:
                            self._launch(launch)
            else:
                for launch in plan.launches:
                    self._launch(launch)

    def enqueue(self, batch: int) -> Any:
        """Queue one inference on the stream from the staged input (no copies, no sync): for timing."""
        plan = self.plan(batch)
        if plan.graph is not None:
            plan.graph.replay()
        else:
            self._enqueue_eager(plan)
        return plan.out

    def poison(self, batch: int) -> None:
        """Fill every planned buffer (and the output) with NaN: an unwritten element then fails a test."""
        plan = self.plan(batch)
        with self.stream:
            for buf in [*plan.buffers, plan.out]:
                buf.fill(np.nan)

    def run(self, x: np.ndarray) -> np.ndarray:
        self.check_input(x)
        batch = x.shape[0]
        plan = self.plan(batch)
        with nvtx.annotate(f"{self.name}/e2e/bs{batch}"):
            np.copyto(plan.host_in, x)
            with self.stream:
                plan.stage_in.set(plan.host_in)
                if plan.graph is not None:
                    plan.graph.replay()
                else:
                    self._enqueue_eager(plan, ranges=True)
                plan.out.get(out=plan.host_out)
            self.stream.synchronize()
        return plan.host_out.copy()
