"""The flag hand-off between consecutive exdwpw6 launches (fuse v43; session 28's measuring builds,
kernels/cblock.cu EXDWPW6_FLAGS and kernels/conv.cu EXDWPW5_EPOCH; results/NOTES.md "Session 28" / "Session 29").

Every exdwpw6 launch of the plan waits in griddepcontrol.wait for the whole previous grid to finish and its memory to
be flushed. A block needs only the producer's row tiles that its input rows (with the 3x3 halo) lie in. So in a run of
two or more consecutive exdwpw6 launches, every launch after the first polls (ld.acquire.gpu) the flags of those
producer tiles until they hold this forward's number, and every launch of the run publishes its own (image, tile,
rank) flags after its stores (st.release.gpu). The first of a run still waits for the grid before it.

- The forward's number: one word that the last exdwpw5 launch before the first run advances (its epoch twin, one more
  argument). That launch has finished before the run's first launch passes its griddepcontrol.wait, and every later
  launch of the run starts only after the first has passed it. Flags left by an earlier or partial run of the plan
  (prefix graphs, a cut-off replay) never hold the current number, so nothing is reset between forwards.
- Without a grid-wide wait a launch may run while its producer still reads its own input and sums its partials: so
  every flag launch writes its own output buffer (and split-K workspace and arrival counters), where the plan reused
  ping-pong buffers, and the launch after the run reads the run's last output.
- The builds are the plan's fixed builds compiled with the flags (K.build_exdwpw6_spec(flags=True)): the same
  arithmetic, so the same logits, bit for bit.

fuse v44 (``upstream``) hands off the same way between the exdwpw5 launches before the exdwpw6 ones too: a run is then
two or more consecutive exdwpw5 / exdwpw6 launches. The launch before the first run advances the forward's number
where it is a block0 v4 launch (its epoch twin, kernels/block0.cu: batch 1); otherwise the first run's first launch,
where it is an exdwpw5 one, is left out of the run and advances it (an epoch twin cannot publish flags under the
number it is advancing: its other blocks may read the word before or after). The exdwpw5 flag twins (kernels/conv.cu
EXDWPW5_FLAGS, K.build_fixed(flags=True)) publish one flag per block; a band of TH output rows holds ceil(Wo / TW) x
KS flags in order, so a consumer of either kind polls it as one row tile of TH rows with that many flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import _custom_kernels as K

# exdwpw6 kernel arguments (kernels/cblock.cu EXDWPW6_PARAMS): input, residual, output, workspace, counters, the
# producer's tile rows (TR), has_res; the flag twins take five more (fin, fout, fep, ptr_, pcl)
A_X, A_R, A_Y, A_WS, A_CNT, A_TR, A_RES = 0, 7, 8, 9, 10, 19, 23
N_ARGS = 28
N_FLAG_ARGS = N_ARGS + 5
# exdwpw5 kernel arguments (kernels/conv.cu EXDWPW5_KERNEL: input, residual and output at the same places, has_res
# last): its epoch twin takes one more (ep), its flag twin (fuse v44) five more
A5_RES = 18
N_EXDWPW5_ARGS = 19
N_EXDWPW5_FLAG_ARGS = N_EXDWPW5_ARGS + 5
N_BLOCK0_ARGS = 15  # block0 v4 (kernels/block0.cu BLOCK0_V4_KERNEL); its epoch twin (fuse v44) takes one more (ep)


def handoff_runs(names: list[str], upstream: bool = False) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of two or more consecutive exdwpw6 launches; ``upstream`` (fuse v44): of exdwpw5 /
    exdwpw6 launches, the first run's first launch left out where it is an exdwpw5 one and the launch before it is
    not a block0 v4 one (it then advances the number)."""
    kinds = ("exdwpw6", "exdwpw5") if upstream else ("exdwpw6",)
    runs: list[tuple[int, int]] = []
    lo = None
    for i, name in enumerate([*names, ""]):
        if name.startswith(kinds):
            lo = i if lo is None else lo
            continue
        if lo is not None:
            block0 = lo > 0 and names[lo - 1] in K.BLOCK0_V4_BUILDS
            if upstream and not runs and names[lo].startswith("exdwpw5") and not block0:
                lo += 1
            if i - lo >= 2:
                runs.append((lo, i))
        lo = None
    return runs


def producer_tiles(iy0: int, iy1: int, tr: int) -> range:
    """The producer's row tiles (of ``tr`` rows) that input rows [iy0, iy1) lie in (kernels/cblock.cu flags_wait)."""
    return range(iy0 // tr, (iy1 - 1) // tr + 1)


def input_rows(oy0: int, tr_rows: int, stride: int, h: int) -> tuple[int, int]:
    """Input rows [iy0, iy1) of an output tile of ``tr_rows`` rows from row oy0 (3x3, pad 1; exdwpw6_body step 1;
    exdwpw5_body's patch, whose rows are TH's even in a last, partial band)."""
    return max(0, oy0 * stride - 1), min(h, (oy0 + tr_rows - 1) * stride + 2)


def exdwpw5_tiling(la: Any) -> tuple[int, int]:
    """(TH, flags per band of TH output rows = ceil(Wo / TW) x KS) of an exdwpw5 launch on a fixed build."""
    gen, shape = K.fixed_parse(la.name)
    if shape is None or K.fixed_kind(gen) != "exdwpw5":
        raise ValueError(f"{la.name}: not a fixed exdwpw5 build (fuse v24 or later plans them)")
    cfg = K.exdwpw5_configs()[gen]
    th, tw, ks = cfg[3], cfg[4], cfg[10]
    ho, wo = shape[3], shape[4]
    per_band, bands = -(-wo // tw) * ks, -(-ho // th)
    if la.grid[0] != bands * per_band:
        raise ValueError(f"{la.name}: grid {la.grid} is not {bands} bands x {per_band} blocks")
    return th, per_band


def _ptr(a: Any) -> int | None:
    return a.data.ptr if hasattr(a, "data") and hasattr(a.data, "ptr") else None


@dataclass
class Rewired:
    """flag_rewire's result: the launch list, the fresh float buffers (poisoned with the plan's), the flag arrays,
    counters and forward-number word (kept alive with the plan, never poisoned), and a row per flag launch."""

    launches: list
    fresh: list = field(default_factory=list)
    sync: list = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def flag_rewire(launches: list, epoch: Any, cp: Any, flag_fn: Callable[[Any], Any], upstream: bool = False) -> Rewired:
    """The launch list with every run (handoff_runs) on its flag twins: ``flag_fn(launch)`` gives the twin's kernel;
    ``epoch`` is the forward-number word (a uint32 device array of one); ``cp`` allocates (empty_like, zeros_like,
    zeros, uint32). Raises ValueError where a run is not what the rewiring assumes (not fixed builds, a residual that
    is not the input, a launch after the run that does not read the run's output as its first argument)."""
    out = Rewired(list(launches))
    remap: dict[int | None, Any] = {}
    for lo, hi in handoff_runs([la.name for la in launches], upstream):
        prev = None  # (flags, rows per tile, flags per tile) of the launch before in the run
        for i in range(lo, hi):
            la = launches[i]
            six = la.name.startswith("exdwpw6")
            n_args, a_res = (N_ARGS, A_RES) if six else (N_EXDWPW5_ARGS, A5_RES)
            if six:
                base, modes, shape = K.exdwpw6_spec_parse(la.name)
                if modes is None or shape is None:
                    raise ValueError(f"launch {i} {la.name}: not a fixed exdwpw6 build (fuse v23 or later plans them)")
            else:
                try:
                    th, per_band = exdwpw5_tiling(la)
                except ValueError as e:
                    raise ValueError(f"launch {i} {e}") from None
            if len(la.args) != n_args:
                raise ValueError(f"launch {i} {la.name}: {len(la.args)} arguments, not {n_args}")
            a = list(la.args)
            x, r, y = a[A_X], a[A_R], a[A_Y]
            has_res = int(a[a_res]) == 1
            if has_res and _ptr(r) != _ptr(x):
                raise ValueError(f"launch {i} {la.name}: the residual is not the input tensor")
            y_new = cp.empty_like(y)
            a[A_X] = remap.get(_ptr(x), x)
            a[A_R] = a[A_X] if has_res else y_new
            a[A_Y] = y_new
            out.fresh.append(y_new)
            if six:
                ws = a[A_WS]
                a[A_WS] = y_new if _ptr(ws) == _ptr(y) else cp.empty_like(ws)  # NG > 1: its own workspace
                a[A_CNT] = cp.zeros_like(a[A_CNT])  # its own arrival counters (every launch leaves them zero)
                out.fresh += [] if a[A_WS] is y_new else [a[A_WS]]
                out.sync.append(a[A_CNT])
                cl = K.exdwpw6_build_of(base)[1]
                st, nb = la.grid[1], la.grid[2]
                flags = cp.zeros(nb * st * cl, cp.uint32)
                mine, tiles = (int(a[A_TR]), cl), st
            else:
                flags = cp.zeros(la.grid[0] * la.grid[1], cp.uint32)  # one per block: fout[n * gridDim.x + block]
                mine, tiles, cl = (th, per_band), la.grid[0], per_band
            fin, ptr_, pcl = (np.int64(0), 1, 1) if prev is None else prev
            a += [fin, flags, epoch, np.int32(ptr_), np.int32(pcl)]
            remap[_ptr(y)] = y_new
            out.sync.append(flags)
            out.launches[i] = replace(la, name=la.name + K.FLAG_SUFFIX, kernel=flag_fn(la), args=tuple(a))
            out.rows.append({"launch": i, "name": la.name, "waits_on": "grid" if prev is None else f"flags of {i - 1}",
                             "tiles": tiles, "cluster": cl})  # fmt: skip
            prev = (flags, *mine)
        if hi < len(launches):  # the launch after the run reads the run's last output: its fresh buffer
            nxt = launches[hi]
            old = _ptr(launches[hi - 1].args[A_Y])
            if _ptr(nxt.args[0]) != old:
                raise ValueError(f"launch {hi} {nxt.name}: its input (argument 0) is not the run's last output")
            out.launches[hi] = replace(
                nxt, args=(remap[old], *nxt.args[1:])
            )  # (an output there stays: nothing reads it)
    out.sync.append(epoch)
    return out


def epoch_launch(launches: list, upstream: bool = False) -> int | str:
    """The index of the launch that advances the forward's number: the last exdwpw5 launch on a fixed build before the
    first run (handoff_runs), or with ``upstream`` a block0 v4 launch right before it; or why there is none (a
    string)."""
    runs = handoff_runs([la.name for la in launches], upstream)
    if not runs:
        return "no run of two or more exdwpw6 launches" + (" (or exdwpw5 / exdwpw6 ones)" if upstream else "")
    if upstream and runs[0][0] > 0 and launches[runs[0][0] - 1].name in K.BLOCK0_V4_BUILDS:
        la = launches[runs[0][0] - 1]
        if len(la.args) != N_BLOCK0_ARGS:
            return f"launch {runs[0][0] - 1} {la.name}: {len(la.args)} arguments, not block0's"
        return runs[0][0] - 1
    for i in range(runs[0][0] - 1, -1, -1):
        gen, shape = K.fixed_parse(launches[i].name)
        if shape is not None and K.fixed_kind(gen) == "exdwpw5":
            if len(launches[i].args) != N_EXDWPW5_ARGS:
                return f"launch {i} {launches[i].name}: {len(launches[i].args)} arguments, not exdwpw5's"
            return i
    return "no exdwpw5 launch on a fixed build before the first run of exdwpw6 launches"


def plan_flags(
    launches: list,
    cp: Any,
    flag_fn: Callable[[Any], Any],
    epoch_fn: Callable[[Any], Any],
    upstream: bool = False,
) -> Rewired | str:
    """fuse v43: the plan's launches with the flag hand-off (flag_rewire) and the epoch launch (epoch_launch) on its
    epoch twin (``epoch_fn(launch)``: the twin's kernel) with the forward-number word as its last argument; or why
    it does not apply (a string: the plan then runs as v42's). ``upstream``: fuse v44's runs (handoff_runs)."""
    at = epoch_launch(launches, upstream)
    if isinstance(at, str):
        return at
    epoch = cp.zeros(1, cp.uint32)
    try:
        out = flag_rewire(launches, epoch, cp, flag_fn, upstream)
    except ValueError as e:
        return str(e)
    la = out.launches[at]
    out.launches[at] = replace(la, name=la.name + K.EPOCH_SUFFIX, kernel=epoch_fn(la), args=(*la.args, epoch))
    return out


def lone(launch: Any) -> Any:
    """A plan launch to be timed on its own (scripts/plan_launch_times.py): a flag twin with no producer flags, so that
    it waits for the grid before it (griddepcontrol.wait, a no-op in a plain launch) instead of polling flags that no
    producer may set in a lone run (a wait that never ends traps); any other launch as it is."""
    n = {N_FLAG_ARGS: N_ARGS, N_EXDWPW5_FLAG_ARGS: N_EXDWPW5_ARGS}.get(len(launch.args))
    if not launch.name.endswith(K.FLAG_SUFFIX) or n is None:
        return launch
    return replace(launch, args=(*launch.args[:n], np.int64(0), *launch.args[n + 1 :]))
