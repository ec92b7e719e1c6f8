"""What the benchmarks share: which backends and batches run, backend instances, the cases, the
measurement of one figure, and the extra_info every result carries.

Every backend is reached through the registry (impls.names / available / create), so a backend
that lands later appears in the tables without a change here. CPU backends have no CUDA events:
their device_ms is the host median, and extra_info says so (timer="host").
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import impls
from mbv2.errors import BackendUnavailable
from mbv2.layers import Conv2d, Linear
from mbv2.network import FusedOp, Network

DEFAULT_BATCHES = (1, 64)
FULL_BATCHES = (1, 8, 64, 256)
E2E_BATCHES = (1, 8, 64, 256)
INPUT_SEED = 20261124  # the same input for every backend in one run
CPU_BACKENDS = ("numpy", "ort")
BYTES = {"fp32": 4, "tf32": 4, "fp16": 2}

# CPU backends stay cheap: NumPy at batch 64 of the big layers takes seconds per call.
CPU_OP_BATCHES = {"numpy": (1,), "ort": (1, 64)}
CPU_OP_BATCHES_FULL = {"numpy": (1, 8), "ort": (1, 8, 64)}
CPU_E2E_BATCHES = (1, 8, 64)


# -- selection -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackendStatus:
    name: str
    ok: bool
    reason: str


def backend_statuses(config: Any) -> list[BackendStatus]:
    """Every registered backend (or the --backends subset) with its availability here."""
    wanted = [b.strip() for b in (config.getoption("--backends") or "").split(",") if b.strip()]
    known = impls.names()
    unknown = [b for b in wanted if b not in known]
    if unknown:
        import pytest

        raise pytest.UsageError(f"--backends: unknown backend(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out = []
    for name in wanted or known:
        ok, reason = impls.available(name)
        out.append(BackendStatus(name, ok, reason))
    return out


def unavailable_param(st: BackendStatus) -> Any:
    """One skipped parameter per unavailable backend, so the run says which were skipped and why."""
    import pytest

    return pytest.param(
        None,
        id=f"{st.name}-unavailable",
        marks=pytest.mark.skip(reason=f"backend {st.name} not available: {st.reason}"),
    )


def statuses(config: Any) -> list[BackendStatus]:
    """backend_statuses, computed once per pytest session (cached on the config)."""
    cached = getattr(config, "_mbv2_statuses", None)
    if cached is None:
        cached = backend_statuses(config)
        config._mbv2_statuses = cached
    return cached


def is_cpu_backend(name: str, backend: Any = None) -> bool:
    """numpy always; ort unless it runs the CUDA execution provider (still host-timed: ORT syncs)."""
    if name == "numpy":
        return True
    if name == "ort":
        return True
    flag = getattr(backend, "on_gpu", None) if backend is not None else None
    return flag is False


def dtypes_for(config: Any, name: str) -> list[str]:
    opt = (config.getoption("--dtypes") or "fp32").strip()
    try:
        supported = _backend_dtypes(name)
    except Exception:
        supported = ["fp32"]
    if opt == "all":
        return [d for d in ("fp32", "tf32", "fp16") if d in supported]
    want = [d.strip() for d in opt.split(",") if d.strip()]
    return [d for d in want if d in supported]


def _backend_dtypes(name: str) -> list[str]:
    mod = impls._module(name)
    for attr in dir(mod):
        obj = getattr(mod, attr)
        if isinstance(obj, type) and getattr(obj, "name", None) == name and hasattr(obj, "dtypes"):
            return list(obj.dtypes)
    return ["fp32"]


def kernel_versions(name: str) -> dict[str, list[str]]:
    """The custom backend's kernel versions per family (KERNEL_VERSIONS), {} when it has none."""
    try:
        mod = impls._module(name)
    except Exception:
        return {}
    kv = getattr(mod, "KERNEL_VERSIONS", None)
    if not isinstance(kv, dict):
        return {}
    return {str(f): [str(v) for v in (vs if isinstance(vs, (list, tuple)) else [vs])] for f, vs in kv.items()}


def version_option(name: str) -> str:
    """The keyword the backend takes to pin kernel versions: its module's KERNEL_VERSION_OPTION, else the
    first of kernels / kernel_versions / versions its constructor accepts."""
    import inspect

    try:
        mod = impls._module(name)
    except Exception:
        return "kernel_versions"
    opt = getattr(mod, "KERNEL_VERSION_OPTION", None)
    if opt:
        return str(opt)
    for attr in dir(mod):
        cls = getattr(mod, attr)
        if isinstance(cls, type) and getattr(cls, "name", None) == name:
            params = inspect.signature(cls.__init__).parameters
            for cand in ("kernels", "kernel_versions", "versions"):
                if cand in params:
                    return cand
    return "kernel_versions"


# which kernel family runs an op, when the backend module does not say (the custom backend's families)
def _default_family(op: FusedOp) -> str:
    lay = op.layer
    if op.kind == "conv":
        if lay.groups > 1:
            return "depthwise"
        return "gemm" if lay.kernel == 1 else "stem"
    return op.kind


def family_of(name: str, op: FusedOp) -> str | None:
    """Which kernel family runs this op: the module's kernel_family(op) when it has one, else by kind
    (pointwise conv -> gemm, 3x3 conv -> stem, depthwise, pool, linear, add) when that family exists."""
    try:
        mod = impls._module(name)
    except Exception:
        return None
    fn = getattr(mod, "kernel_family", None) or getattr(mod, "family_of", None)
    if callable(fn):
        try:
            return fn(op)
        except Exception:
            return None
    fam = _default_family(op)
    return fam if fam in kernel_versions(name) else None


# -- cases ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpCase:
    backend: str
    batch: int
    dtype: str
    op_index: int  # fused index of the first op of this distinct configuration
    key: tuple
    options: tuple = ()  # sorted (name, value) pairs for impls.create
    version_label: str = ""

    @property
    def group(self) -> str:
        return f"op {self.backend} {self.dtype} bs{self.batch}" + (
            f" {self.version_label}" if self.version_label else ""
        )

    @property
    def id(self) -> str:
        k = self.key
        if k[0] == "conv":
            _, cin, cout, kk, s, _p, g, h, _w, act, res = k
            kind = "dw" if g > 1 else ("pw" if kk == 1 else "conv")
            tag = f"{kind}{kk}x{kk}s{s}-{cin}x{cout}-{h}" + ("-relu6" if act else "") + ("-res" if res else "")
        else:
            tag = "-".join(str(v) for v in k)
        v = f"-{self.version_label}" if self.version_label else ""
        return f"{self.backend}-{self.dtype}-bs{self.batch}-op{self.op_index:02d}-{tag}{v}"


@dataclass(frozen=True)
class E2ECase:
    backend: str
    batch: int
    dtype: str
    mode: str  # eager | graph | compile | compile-graph
    scenario: str = ""  # "" | single-stream | offline

    @property
    def graph(self) -> bool:
        return self.mode in ("graph", "compile-graph")

    @property
    def options(self) -> dict[str, Any]:
        o: dict[str, Any] = {}
        if self.graph:
            o["graph"] = True
        if self.mode.startswith("compile"):
            o["compile"] = True
        return o

    @property
    def group(self) -> str:
        s = f" {self.scenario}" if self.scenario else ""
        return f"e2e{s} {self.backend} {self.dtype} {self.mode} bs{self.batch}"

    @property
    def id(self) -> str:
        s = f"{self.scenario}-" if self.scenario else ""
        return f"{s}{self.backend}-{self.dtype}-{self.mode}-bs{self.batch}"


def op_batches(config: Any, name: str) -> tuple[int, ...]:
    full = bool(config.getoption("--full"))
    if name in CPU_BACKENDS:
        return (CPU_OP_BATCHES_FULL if full else CPU_OP_BATCHES)[name]
    return FULL_BATCHES if full else DEFAULT_BATCHES


def e2e_batches(config: Any, name: str) -> tuple[int, ...]:
    if name in CPU_BACKENDS and not config.getoption("--full"):
        return CPU_E2E_BATCHES
    return E2E_BATCHES


def e2e_modes(config: Any, name: str) -> list[str]:
    if name in CPU_BACKENDS:
        return ["eager"]
    modes = ["eager", "graph"]
    if name == "torch" and config.getoption("--compile"):
        modes += ["compile", "compile-graph"]
    return modes


# -- backend instances ---------------------------------------------------------------------------
class BackendPool:
    """Prepared backends, one per (name, dtype, options), created once per session and closed at the end."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self._pool: dict[tuple, Any] = {}
        self._failed: dict[tuple, str] = {}

    def get(self, name: str, dtype: str = "fp32", **options: Any) -> Any:
        key = (name, dtype, tuple(sorted(options.items())))
        if key in self._failed:
            raise BackendUnavailable(self._failed[key])
        if key not in self._pool:
            if len(self._pool) >= 6:  # bound device memory: drop the oldest
                old_key = next(iter(self._pool))
                self._pool.pop(old_key).close()
            try:
                be = impls.create(name, dtype=dtype, **options)
                be.prepare(self.net)
            except BackendUnavailable as exc:
                self._failed[key] = str(exc)
                raise
            self._pool[key] = be
        return self._pool[key]

    def close(self) -> None:
        for be in self._pool.values():
            try:
                be.close()
            except Exception:
                pass
        self._pool.clear()


# -- figures -------------------------------------------------------------------------------------
def op_call(backend: Any, op: FusedOp) -> Any:
    """``(x, r) -> y``: one fused op on ``backend``'s device arrays (r is the residual, or the add's second input)."""
    if op.kind == "conv":
        return lambda x, r: backend.conv2d(x, op.layer, act=op.act, residual=r)
    if op.kind == "add":
        return lambda x, r: backend.add(x, r)
    if op.kind == "pool":
        return lambda x, r: backend.global_avg_pool(x)
    if op.kind == "linear":
        return lambda x, r: backend.linear(x, op.layer)
    raise AssertionError(op.kind)


def op_inputs(op: FusedOp, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *op.in_shape), dtype=np.float32)
    r = None
    if op.residual is not None:
        r = rng.standard_normal((batch, *op.out_shape), dtype=np.float32)
    return x, r


def op_work(op: FusedOp, batch: int, dtype: str) -> dict[str, Any]:
    """FLOPs and the minimum bytes an op must move (read input, weights, residual; write output)."""
    lay = op.layer
    b = BYTES[dtype]
    n_in = batch * math.prod(op.in_shape)
    n_out = batch * math.prod(op.out_shape)
    n_w = 0
    if isinstance(lay, (Conv2d, Linear)):
        n_w = int(lay.weight.size + lay.bias.size)
        flops = lay.flops() * batch
        if op.act:
            flops += n_out
        if op.residual is not None:
            flops += n_out
    elif op.kind == "pool":
        flops = n_in
    else:  # add
        flops = n_out
    n_res = n_out if (op.residual is not None or op.kind == "add") else 0
    return {"flops": int(flops), "bytes": int((n_in + n_out + n_res + n_w) * b)}


def op_extra(net: Network, op: FusedOp, ops: list[int], batch: int, dtype: str) -> dict[str, Any]:
    lay = op.layer
    covers = sorted({c for i in ops for c in net.fused[i].covers})
    d: dict[str, Any] = {
        "op": op.label,
        "op_kind": op.kind,
        "describe": op.describe(net.layers),
        "fused_ops": list(ops),
        "layers": covers,
        "first_layer": op.covers[0],
        "count_in_network": len(ops),
        "in_shape": [batch, *op.in_shape],
        "out_shape": [batch, *op.out_shape],
        **op_work(op, batch, dtype),
    }
    if isinstance(lay, Conv2d):
        d.update(
            kernel=lay.kernel,
            stride=lay.stride,
            pad=lay.pad,
            groups=lay.groups,
            in_channels=lay.in_channels,
            out_channels=lay.out_channels,
            act=bool(op.act),
            residual=op.residual is not None,
            weight_shape=list(lay.weight.shape),
        )
    elif isinstance(lay, Linear):
        d.update(in_features=lay.in_features, out_features=lay.out_features, weight_shape=list(lay.weight.shape))
    return d


def rates(d: dict[str, Any]) -> None:
    """Achieved GFLOP/s and GB/s from flops/bytes and device_ms (in place)."""
    ms = d.get("device_ms")
    if ms and ms > 0:
        d["gflops"] = d["flops"] / ms / 1e6
        d["gbps"] = d["bytes"] / ms / 1e6
        d["intensity"] = d["flops"] / d["bytes"] if d["bytes"] else None
    else:
        d["gflops"] = d["gbps"] = None


def backend_extra(backend: Any) -> dict[str, Any]:
    """backend.info(), with kernel version / cuDNN algorithm pulled up to fixed keys for the report."""
    try:
        info = dict(backend.info())
    except Exception as exc:
        info = {"info_error": f"{exc.__class__.__name__}: {exc}"}
    out: dict[str, Any] = {"backend_info": _jsonable(info)}
    for k in ("kernel_version", "kernel_versions", "versions"):
        if k in info:
            out["kernel_version"] = _jsonable(info[k])
            break
    for k in ("algorithm", "algorithms", "algo", "cudnn_algo"):
        if k in info:
            out["algorithm"] = _jsonable(info[k])
            break
    return out


def op_choice(backend: Any, op: FusedOp, batch: int, name: str) -> dict[str, Any]:
    """What the backend chose for this op: its op_info(op) when it has one; the kernel family's version
    (custom); the algorithm its network plan at this batch chose for this op (cudnn)."""
    fn = getattr(backend, "op_info", None)
    if callable(fn):
        try:
            return {"op_choice": _jsonable(fn(op))}
        except Exception:
            pass
    out: dict[str, Any] = {}
    try:
        info = backend.info()
    except Exception:
        return out
    versions = info.get("kernel_versions")
    fam = family_of(name, op)
    if isinstance(versions, dict) and fam in versions:
        out["kernel_family"] = fam
        out["kernel_version"] = f"{fam}={versions[fam]}"
    algos = info.get("algorithms")
    if isinstance(algos, dict):
        for entry in algos.get(str(batch)) or []:
            if isinstance(entry, dict) and entry.get("op") == op.index:
                out["algorithm"] = _jsonable({k: v for k, v in entry.items() if k not in ("describe",)})
                out["algorithm_source"] = f"the backend's network plan at batch {batch}"
                break
    return out


def launched_kernels(backend: Any, fn: Any) -> list[str] | None:
    """Names of the kernels that one call of ``fn()`` launches through ``backend.launch_all`` (the custom backend,
    after its autotuner has settled: the launches that were timed), so that a per-operator figure can be traced to
    the kernel behind it. None for a backend with no ``launch_all``. The backend is left as it was."""
    orig = getattr(backend, "launch_all", None)
    if not callable(orig):
        return None
    own = "launch_all" in vars(backend)  # an instance attribute (a test's wrapper) to put back, not delete
    names: list[str] = []

    def recording(launches: Any) -> Any:
        names.extend(str(getattr(lc, "name", "?")) for lc in launches)
        return orig(launches)

    backend.launch_all = recording
    try:
        fn()
        backend.synchronize()
    finally:
        if own:
            backend.launch_all = orig
        else:
            del backend.launch_all
    return names


def plan_kernels(backend: Any, batch: int) -> dict[str, Any]:
    """The kernels of a backend's whole-network plan at this batch, in launch order, and its autotuner's picks
    (the custom backend: ``plan(batch).launches``, ``tuned``), so that an end-to-end figure can be traced to the
    launches behind it. {} for backends without a launch plan (cuDNN, torch, the CPU backends)."""
    plans = getattr(backend, "_plans", None)
    if not isinstance(plans, dict) or batch not in plans:
        return {}
    launches = getattr(plans[batch], "launches", None)
    if launches is None:
        return {}
    out: dict[str, Any] = {"launches": len(launches), "kernels": [str(getattr(lc, "name", "?")) for lc in launches]}
    tuned = getattr(backend, "tuned", None)
    if isinstance(tuned, dict):
        out["tuned"] = {str(k): str(v) for k, v in tuned.items()}
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


@dataclass
class Rotation:
    """Input buffer sets on the device, rotated per call so that calls do not hit a warm L2."""

    sets: list[tuple[Any, Any]] = field(default_factory=list)
    counter: Any = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self.sets)

    def __call__(self, i: int) -> tuple[Any, Any]:
        return self.sets[i % len(self.sets)]

    def next(self) -> tuple[Any, Any]:
        return self(next(self.counter))


def gpu_inner(batch: int) -> int:
    """Calls per CUDA-event sample: more for the microsecond-scale small batches."""
    return 20 if batch <= 1 else 10 if batch <= 8 else 4 if batch <= 64 else 2


# -- a short CPU run, for the harness's own tests ---------------------------------------------------
SMOKE_FILTER = (
    "(test_op and (op11 or op20 or op52 or op53) and bs1) or "
    "(test_e2e and bs1) or (test_single_stream and ort) or (test_offline and ort)"
)
_SMOKE: dict[tuple, tuple[str, Any]] = {}


def smoke_run(out_dir: str, extra_args: tuple[str, ...] = (), k: str = SMOKE_FILTER) -> tuple[str, Any]:
    """Run ``pytest bench/`` in a subprocess on numpy + ort with a filter (small layers, batch 1);
    returns (path of the JSON, CompletedProcess). Cached per arguments within one process."""
    import os
    import subprocess
    import sys

    key = (tuple(extra_args), k)
    if key in _SMOKE and os.path.exists(_SMOKE[key][0]):
        return _SMOKE[key]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(out_dir, "run.json")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        os.path.join(root, "bench"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--backends",
        "numpy,ort",
        "-k",
        k,
        f"--benchmark-json={out}",
        *extra_args,
    ]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)
    _SMOKE[key] = (out, proc)
    return out, proc
