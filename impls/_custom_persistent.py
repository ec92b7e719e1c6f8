"""net v2: the whole network as one persistent kernel (kernels/persistent.cu: net_persistent).

``persistent_plan(backend, batch)`` turns the backend's fused op list (``Network.fused``) into a table
of stages in device memory (kind, shapes, pointers to the backend's already-uploaded weights and to
planned activation buffers) and a plan of ONE launch: a cooperative launch of SMs x resident blocks
that walks the table with a grid barrier after every stage. CustomBackend.plan() calls it when
``kernels="net=v2"``; graph mode captures that single launch like any other plan.

Stage kinds and what they take (anything else raises InputError naming the op):
    stem    the first op: Conv2d 3x3, 3 input channels, groups 1, Cout % 8 == 0, on the network input
            (reads the NCHW staging buffer directly: the input transpose is fused in)
    dw      depthwise 3x3, stride 1 or 2, C % 4 == 0 (+ ReLU6)
    pw      pointwise conv as a GEMM (Cin, Cout % 4 == 0) + bias (+ ReLU6) (+ residual); split-K with
            the last-arriving block reducing the partials in split order (deterministic)
    dwpw    a depthwise conv whose only reader is the next pointwise conv, computed inside that GEMM's
            A-tile load (option ``fuse``, on by default): one stage and one barrier per pair
    pool    global average pool (C % 4 == 0)
    linear  classifier GEMV, warp per output feature (in_features % 4 == 0)

Options (``backend.persistent_options``, a dict, read at plan time): ``fuse`` (bool, default True),
``blocks_per_sm`` (default 2, capped by the occupancy the driver reports), ``tile`` / ``splits``
(force one GEMM tile variant / split count on every GEMM stage, for experiments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mbv2.errors import BackendUnavailable, InputError
from mbv2.layers import Conv2d, Linear
from mbv2.network import NETWORK_INPUT

NT = 256  # threads per block (kernels/persistent.cu: NT)
KERNEL = "net_persistent"
KIND = {"nop": 0, "stem": 1, "dw": 2, "pw": 3, "dwpw": 4, "pool": 5, "linear": 6}
# GEMM tile variants of kernels/persistent.cu (stage_gemm_any): id -> (BM, BN, TM, TN, BK)
TILES = {0: (64, 64, 4, 4, 16), 1: (32, 32, 2, 2, 32), 2: (32, 64, 2, 4, 32), 3: (64, 32, 4, 2, 32)}

_INTS = (
    "kind act dwact has_res nb h wd c ho wo n stride pad m k tile tiles_m tiles_n splits kchunk items sync pad0 pad1"
).split()
_PTRS = "inp out res w b dw_w dw_b ws".split()
STAGE_DTYPE = np.dtype([(f, np.int32) for f in _INTS] + [(f, np.uint64) for f in _PTRS])
assert STAGE_DTYPE.itemsize == 160  # struct Stage in kernels/persistent.cu


@dataclass
class GemmChoice:
    tile: int
    tiles_m: int
    tiles_n: int
    splits: int
    kchunk: int

    @property
    def items(self) -> int:
        return self.tiles_m * self.tiles_n * self.splits


def gemm_cost(m: int, n: int, k: int, tile: int, splits: int, blocks: int, dw: bool) -> tuple[float, GemmChoice]:
    """Rough cycles of one GEMM stage on ``blocks`` resident blocks: rounds of work items x (fixed
    latency + k-steps x (latency-bound step, + the depthwise window loads when fused) + the split-K
    reduce of the last-arriving block, which reads every split's partial tile). Constants fitted to
    the per-stage clock64 breakdown of the first H100 run (results/NOTES.md)."""
    bm, bn, _, _, bk = TILES[tile]
    tiles_m, tiles_n = math.ceil(m / bm), math.ceil(n / bn)
    kchunk = math.ceil(math.ceil(k / splits) / bk) * bk
    splits = math.ceil(k / kchunk)
    choice = GemmChoice(tile, tiles_m, tiles_n, splits, kchunk)
    rounds = math.ceil(choice.items / blocks)
    nk = kchunk // bk
    step = (2200.0 if bm * bn <= 2048 else 3500.0) + (1500.0 if dw else 0.0)
    per_item = 2500.0 + nk * step + (1500.0 + 250.0 * splits if splits > 1 else 0.0)
    return rounds * per_item, choice


def choose_gemm(m: int, n: int, k: int, blocks: int, dw: bool, options: dict[str, Any]) -> GemmChoice:
    tiles = [options["tile"]] if "tile" in options else list(TILES)
    best: tuple[float, GemmChoice] | None = None
    for tile in tiles:
        bk = TILES[tile][4]
        split_opts = [options["splits"]] if "splits" in options else range(1, min(64, math.ceil(k / bk)) + 1)
        for s in split_opts:
            cost = gemm_cost(m, n, k, tile, max(1, min(s, math.ceil(k / bk))), blocks, dw)
            if best is None or cost[0] < best[0]:
                best = cost
    assert best is not None
    return best[1]


class CooperativeKernel:
    """The kernel's CUfunction (CuPy: RawKernel.kernel, a cupy.cuda.function.Function) launched with
    cuLaunchCooperativeKernel: the launch fails instead of deadlocking when the grid cannot be resident."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.func = getattr(raw, "kernel", raw)
        self.ptr = int(getattr(self.func, "ptr", 0))

    def __call__(self, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0, **_: Any) -> None:
        self.func(grid, block, args, shared_mem=shared_mem, enable_cooperative_groups=True)


def occupancy(be: Any, fn: CooperativeKernel) -> int:
    """Resident blocks of NT threads per SM the driver reports for the kernel (its static shared memory)."""
    drv = be._cp.cuda.driver
    if not hasattr(drv, "occupancyMaxActiveBlocksPerMultiprocessor"):
        raise BackendUnavailable("net v2 needs cuOccupancyMaxActiveBlocksPerMultiprocessor (CuPy driver API)")
    return int(drv.occupancyMaxActiveBlocksPerMultiprocessor(fn.ptr, NT, 0))


@dataclass
class PersistentInfo:
    """What the plan's one launch runs, for tests, timing and the per-stage breakdown."""

    table: np.ndarray  # STAGE_DTYPE rows, as uploaded
    labels: list[str]  # one per stage
    grid: int
    stamps: Any  # device int64 buffer written when record != 0
    record_launch: Any  # the same launch with record = 1
    choices: list[str] = field(default_factory=list)


def _ptr(a: Any) -> int:
    return int(a.data.ptr) if a is not None else 0


def _unsupported(op: Any, why: str) -> InputError:
    return InputError(f"net v2 (persistent kernel) does not support fused op {op.index} ({op.label}): {why}")


def _stage(**kw: Any) -> np.ndarray:
    row = np.zeros((), STAGE_DTYPE)
    for key, v in kw.items():
        row[key] = _ptr(v) if key in _PTRS else int(v)
    return row


def build_stages(be: Any, batch: int, grid: int, options: dict[str, Any]) -> dict[str, Any]:
    """Validate the network, plan the buffers and make the stage table (host rows; nothing launched)."""
    from .custom import plan_buffers, slot_sizes

    cp = be._cp
    net = be.net
    fused = net.fused
    c_in, h_in, w_in = net.input_shape
    if not fused or fused[0].kind != "conv" or fused[0].input != NETWORK_INPUT:
        raise InputError("net v2 (persistent kernel): the network must start with a conv on its input")
    stem = fused[0].layer
    assert isinstance(stem, Conv2d)
    if not (stem.groups == 1 and stem.kernel == 3 and stem.in_channels == 3 and stem.out_channels % 8 == 0):
        raise _unsupported(fused[0], "the stem must be a 3x3 conv, 3 input channels, groups 1, Cout % 8 == 0")
    if fused[-1].kind != "linear":
        raise InputError("net v2 (persistent kernel): the network must end in a Linear classifier")
    last_use = [-1] * len(fused)
    for op in fused:
        for src in (op.input, op.residual):
            if src is not None and src != NETWORK_INPUT:
                last_use[src] = op.index
    last_use[-1] = len(fused)
    fuse_into: dict[int, Any] = {}  # pointwise op index -> the depthwise op computed inside it
    if options.get("fuse", True):
        for op, nxt in zip(fused, fused[1:]):
            lay, nl = op.layer, nxt.layer
            if (
                op.kind == "conv"
                and nxt.kind == "conv"
                and isinstance(lay, Conv2d)
                and isinstance(nl, Conv2d)
                and lay.is_depthwise
                and nl.is_pointwise
                and op.residual is None
                and nxt.input == op.index
                and last_use[op.index] == nxt.index
                and nxt.residual != op.index
            ):
                fuse_into[nxt.index] = op
                if op.input != NETWORK_INPUT:
                    last_use[op.input] = max(last_use[op.input], nxt.index)
                last_use[op.index] = op.index  # never written
    fused_dw = {dw.index for dw in fuse_into.values()}

    def out_shape(op) -> tuple[int, ...]:
        s = op.layer.out_shape
        return (batch, s[1], s[2], s[0]) if len(s) == 3 else (batch, *s)

    shapes = [out_shape(op) for op in fused]
    sizes = [1 if op.index in fused_dw else int(np.prod(s)) for op, s in zip(fused, shapes)]
    slot_of = plan_buffers(sizes, last_use)
    with be.stream:
        stage_in = cp.empty((batch, c_in, h_in, w_in), cp.float32)
        slots = [cp.empty((n,), cp.float32) for n in slot_sizes(slot_of, sizes)]
    outs: dict[int, Any] = {}
    rows: list[np.ndarray] = []
    labels: list[str] = []
    choices: list[str] = []
    ws_need, counters_need = 1, 1
    pending_ws: list[int] = []  # rows that need the split-K workspace pointer

    def shape_in(idx: int) -> tuple[int, ...]:
        return (batch, h_in, w_in, c_in) if idx == NETWORK_INPUT else shapes[idx]

    for op in fused:
        y = slots[slot_of[op.index]][: sizes[op.index]].reshape(shapes[op.index]) if op.index not in fused_dw else None
        outs[op.index] = y
        if op.index in fused_dw:
            continue
        res = outs[op.residual] if op.residual is not None else None
        lay = op.layer
        label = (
            f"{op.index}:{lay.describe(net.layers)}"
            + ("+ReLU6" if op.act else "")
            + ("+res" if res is not None else "")
        )
        if op.index == 0:
            p = be._layer_params(stem)
            _, ho, wo, cout = shapes[0]
            row = _stage(
                kind=KIND["stem"], act=op.act, has_res=res is not None, nb=batch, h=h_in, wd=w_in, c=3, ho=ho, wo=wo,
                n=cout, stride=stem.stride, pad=stem.pad, items=batch * ho * wo * (cout // 8),
                inp=stage_in, out=y, res=res, w=p["wt"], b=p["bias"],
            )  # fmt: skip
        elif op.kind == "conv":
            assert isinstance(lay, Conv2d)
            p = be._layer_params(lay)
            nb, hh, ww, cin = shape_in(op.input)
            _, ho, wo, cout = shapes[op.index]
            if lay.is_depthwise:
                if not (lay.kernel == 3 and lay.stride in (1, 2) and cin % 4 == 0):
                    raise _unsupported(op, f"depthwise needs 3x3, stride 1/2, C % 4 == 0 (C={cin})")
                row = _stage(
                    kind=KIND["dw"], act=op.act, has_res=res is not None, nb=nb, h=hh, wd=ww, c=cin, ho=ho, wo=wo,
                    n=cout, stride=lay.stride, pad=lay.pad, items=nb * ho * wo * (cin // 4),
                    inp=outs[op.input], out=y, res=res, w=p["w"], b=p["bias"],
                )  # fmt: skip
            elif lay.is_pointwise:
                if cin % 4 or cout % 4:
                    raise _unsupported(op, f"pointwise needs Cin % 4 == 0 and Cout % 4 == 0 ({cin}->{cout})")
                m = nb * ho * wo
                dwop = fuse_into.get(op.index)
                if dwop is not None:
                    dl = dwop.layer
                    pd = be._layer_params(dl)
                    dnb, dh, dw_, dc = shape_in(dwop.input)
                    if not (dl.kernel == 3 and dl.stride in (1, 2) and dc % 4 == 0):
                        raise _unsupported(dwop, f"depthwise needs 3x3, stride 1/2, C % 4 == 0 (C={dc})")
                    ch = choose_gemm(m, cout, cin, grid, True, options)
                    row = _stage(
                        kind=KIND["dwpw"], act=op.act, dwact=dwop.act, has_res=res is not None, nb=nb, h=dh, wd=dw_,
                        c=dc, ho=ho, wo=wo, n=cout, stride=dl.stride, pad=dl.pad, m=m, k=cin, tile=ch.tile,
                        tiles_m=ch.tiles_m, tiles_n=ch.tiles_n, splits=ch.splits, kchunk=ch.kchunk, items=ch.items,
                        inp=outs[dwop.input], out=y, res=res, w=p["wt"], b=p["bias"], dw_w=pd["w"], dw_b=pd["bias"],
                    )  # fmt: skip
                    label = f"{dwop.index}+{label}"
                else:
                    ch = choose_gemm(m, cout, cin, grid, False, options)
                    row = _stage(
                        kind=KIND["pw"], act=op.act, has_res=res is not None, nb=nb, h=ho, wd=wo, c=cin, ho=ho, wo=wo,
                        n=cout, m=m, k=cin, tile=ch.tile, tiles_m=ch.tiles_m, tiles_n=ch.tiles_n, splits=ch.splits,
                        kchunk=ch.kchunk, items=ch.items, inp=outs[op.input], out=y, res=res, w=p["wt"], b=p["bias"],
                    )  # fmt: skip
                if ch.splits > 1:
                    ws_need = max(ws_need, ch.splits * m * cout)
                    counters_need = max(counters_need, ch.tiles_m * ch.tiles_n)
                    pending_ws.append(len(rows))
                bm, bn = TILES[ch.tile][:2]
                choices.append(f"{label}: tile {bm}x{bn} x{ch.tiles_m * ch.tiles_n} splits {ch.splits} ({ch.kchunk} k)")
            else:
                raise _unsupported(op, "only the stem, depthwise 3x3 and pointwise convs are implemented")
        elif op.kind == "pool":
            nb, hh, ww, cc = shape_in(op.input)
            if cc % 4:
                raise _unsupported(op, f"pool needs C % 4 == 0 (C={cc})")
            row = _stage(
                kind=KIND["pool"], nb=nb, h=hh, wd=ww, c=cc, n=cc, items=nb * cc // 4, inp=outs[op.input], out=y
            )
        elif op.kind == "linear":
            assert isinstance(lay, Linear)
            p = be._layer_params(lay)
            if lay.in_features % 4:
                raise _unsupported(op, f"linear needs in_features % 4 == 0 ({lay.in_features})")
            if len(shape_in(op.input)) != 2:
                raise _unsupported(op, "linear input must be (N, F)")
            row = _stage(
                kind=KIND["linear"], nb=batch, k=lay.in_features, n=lay.out_features, items=lay.out_features,
                inp=outs[op.input], out=y, w=p["w"], b=p["bias"],
            )  # fmt: skip
        else:
            raise _unsupported(op, f"op kind {op.kind!r} (an unfused ResidualAdd?) is not implemented")
        row["sync"] = 1
        rows.append(row)
        labels.append(label)
    rows[-1]["sync"] = 0  # nothing after the classifier
    with be.stream:
        ws = cp.empty((ws_need,), cp.float32)
        sync = cp.zeros((1 + counters_need,), np.uint32)
    for i in pending_ws:
        rows[i]["ws"] = _ptr(ws)
    table = np.stack(rows)
    return dict(
        table=table,
        labels=labels,
        choices=choices,
        stage_in=stage_in,
        out=outs[fused[-1].index],
        slots=slots,
        ws=ws,
        sync=sync,
    )


def _grid(be: Any, fn: Any, options: dict[str, Any]) -> int:
    occ = occupancy(be, fn)
    if occ < 1:
        raise BackendUnavailable(f"{KERNEL}: the driver reports {occ} resident blocks of {NT} threads per SM")
    return be.sms * max(1, min(int(options.get("blocks_per_sm", 2)), occ))


def persistent_plan(be: Any, batch: int) -> Any:
    """The Plan of one cooperative launch for ``batch`` (graph-captured when the backend is in graph mode)."""
    from .custom import Launch, Plan, _i32, _pinned

    if be.dtype != "fp32":
        raise InputError(f"net v2 (persistent kernel) is fp32 only, not {be.dtype}")
    options = dict(getattr(be, "persistent_options", None) or {})
    cp = be._cp
    fn = CooperativeKernel(be._fn(KERNEL))
    grid = _grid(be, fn, options)
    built = build_stages(be, batch, grid, options)
    table = built["table"]
    n = len(table)
    with be.stream:
        table_dev = cp.asarray(table.view(np.uint8).reshape(-1))
        stamps = cp.zeros((n * grid * 2 + 4,), np.int64)
    args = (table_dev, _i32(n), built["sync"], stamps)
    launch = Launch(KERNEL, fn, (grid,), (NT,), (*args, _i32(0)), coop=True)
    record = Launch(KERNEL, fn, (grid,), (NT,), (*args, _i32(1)), coop=True)
    plan = Plan(
        batch=batch,
        stage_in=built["stage_in"],
        out=built["out"],
        launches=[launch],
        op_ranges=[(f"{be.name}/net v2 persistent ({n} stages)", 0, 1)],
        buffers=[*built["slots"], built["ws"]],
    )
    plan.host_in, plan.host_out = _pinned(plan.stage_in.shape), _pinned(plan.out.shape)
    plan.persistent = PersistentInfo(table, built["labels"], grid, stamps, record, built["choices"])  # type: ignore[attr-defined]
    plan.keep = (table_dev, built["sync"])  # type: ignore[attr-defined]
    if be.graph:
        from mbv2.timing import CudaGraph

        be._capturing = True
        try:
            plan.graph = CudaGraph(lambda: be._enqueue_eager(plan), be.stream)
        except Exception as exc:
            raise BackendUnavailable(
                f"graph mode with net v2: capturing the cooperative launch of {KERNEL} failed ({exc}); "
                "use graph=False (eager runs the same single launch)"
            ) from exc
        finally:
            be._capturing = False
    return plan


def barrier_launch(be: Any, stages: int, blocks_per_sm: int) -> Any:
    """A launch of net_persistent over ``stages`` empty stages, each followed by the grid barrier:
    its time / stages is the barrier's cost (scripts/custom_persistent_time.py)."""
    from .custom import Launch, _i32

    cp = be._cp
    fn = CooperativeKernel(be._fn(KERNEL))
    grid = _grid(be, fn, {"blocks_per_sm": blocks_per_sm})
    rows = [_stage(kind=KIND["nop"], sync=1) for _ in range(max(stages, 1))]  # 0 stages: launch cost alone
    with be.stream:
        table_dev = cp.asarray(np.stack(rows).view(np.uint8).reshape(-1))
        sync = cp.zeros((2,), np.uint32)
        stamps = cp.zeros((1,), np.int64)
    return Launch(KERNEL, fn, (grid,), (NT,), (table_dev, _i32(stages), sync, stamps, _i32(0)), coop=True)


def stage_breakdown(be: Any, plan: Any) -> dict[str, Any]:
    """Run the plan's launch once with clock64 stamps and return per-stage figures (us): the slowest
    block's work, block 0's work + barrier, and the total from globaltimer. Not for timing runs."""
    info: PersistentInfo = plan.persistent
    with be.stream:
        be._launch(info.record_launch)
    be.stream.synchronize()
    st = info.stamps.get()
    n, g = len(info.labels), info.grid
    per = st[: n * g * 2].reshape(n, g, 2)
    g0, g1, c0, c1 = (int(v) for v in st[n * g * 2 : n * g * 2 + 4])
    ns_per_cycle = (g1 - g0) / max(1, c1 - c0)
    rows = []
    for i, label in enumerate(info.labels):
        rows.append(
            {
                "stage": label,
                "work_max_us": float(per[i, :, 0].max() * ns_per_cycle / 1e3),
                "work_median_us": float(np.median(per[i, :, 0]) * ns_per_cycle / 1e3),
                "stage_us": float(per[i, 0, 1] * ns_per_cycle / 1e3),
                "items": int(info.table[i]["items"]),
            }
        )
    return {"total_us": (g1 - g0) / 1e3, "ghz": 1.0 / ns_per_cycle if ns_per_cycle else 0.0, "stages": rows}
