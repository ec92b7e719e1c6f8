"""The batch-1 plan with its exdwpw6 launches handing off through per-tile flags, against the plan as it is (session 28;
a measuring tool, never planned; results/NOTES.md "Session 28"). Any sm_90+ GPU with nvcc or NVRTC.

    python3 scripts/flag_handoff_ab.py [--kernels SPEC] [--picks FILE] [--rounds 5] [--json out.json]

The plan (default kernels or --kernels, tuned or with --picks replayed) is built at batch 1. Each run of consecutive
exdwpw6 launches (13 at batch 1) is rebuilt on the same fixed builds compiled with -DEXDWPW6_FLAGS=1
(kernels/cblock.cu): the first still waits for the kernel before it (griddepcontrol.wait); each later one polls the
flags of the row tiles of its producer that its input rows lie in, and every launch publishes its own tiles' flags
after its stores. Without a grid-wide wait a launch may run while its producer still reads its inputs, so every
flag launch writes a fresh output buffer, workspace and counters (the plan's ping-pong buffers would be overwritten
under a reader), and the launch after the run reads the last fresh output. A one-thread kernel advances the forward
number first; both sequences carry it, and the launch after it is launched plainly in both (so that every flag kernel
starts after it has finished). The same arithmetic: the logits must be bit-identical to the plan's, checked after
the outputs are poisoned with NaN before each checked replay. Then both graphs are timed in interleaved rounds
(CUDA-event medians of replays).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402

EPOCH_SRC = r"""extern "C" __global__ void flag_epoch_next(unsigned* e) { *e += 1u; }"""

# exdwpw6 kernel arguments (kernels/cblock.cu EXDWPW6_PARAMS)
A_X, A_R, A_Y, A_WS, A_CNT, A_TR, A_RES = 0, 7, 8, 9, 10, 19, 23
N_ARGS = 28


def exdwpw6_runs(names: list[str]) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of two or more consecutive exdwpw6 launches."""
    runs, lo = [], None
    for i, name in enumerate([*names, ""]):
        if name.startswith("exdwpw6"):
            lo = i if lo is None else lo
        else:
            if lo is not None and i - lo >= 2:
                runs.append((lo, i))
            lo = None
    return runs


def producer_tiles(iy0: int, iy1: int, tr: int) -> range:
    """The producer's row tiles (of ``tr`` rows) that input rows [iy0, iy1) lie in (kernels/cblock.cu flags_wait)."""
    return range(iy0 // tr, (iy1 - 1) // tr + 1)


def input_rows(oy0: int, tr_rows: int, stride: int, h: int) -> tuple[int, int]:
    """Input rows [iy0, iy1) of an output tile of ``tr_rows`` rows from row oy0 (3x3, pad 1; exdwpw6_body step 1)."""
    return max(0, oy0 * stride - 1), min(h, (oy0 + tr_rows - 1) * stride + 2)


def _ptr(a: Any) -> int | None:
    return a.data.ptr if hasattr(a, "data") and hasattr(a.data, "ptr") else None


def flag_launches(be: Any, launches: list, epoch: Any, cp: Any) -> tuple[list, list, list[dict[str, Any]]]:
    """(the launch list with its exdwpw6 runs on flag builds, the fresh buffers to poison, a row per rebuilt launch)."""
    nvcc = K.find_nvcc()
    fns: dict[str, Any] = {}
    out, fresh, rows = list(launches), [], []
    remap: dict[int, Any] = {}
    for lo, hi in exdwpw6_runs([la.name for la in launches]):
        prev = None  # (flags, TR, CL) of the launch before in the run
        for i in range(lo, hi):
            la = launches[i]
            base, modes, shape = K.exdwpw6_spec_parse(la.name)
            if modes is None or shape is None or len(la.args) != N_ARGS:
                raise SystemExit(f"launch {i} {la.name}: not a fixed exdwpw6 build (fuse v23 or later plans them)")
            if la.name not in fns:
                built = K.build_exdwpw6_spec(base, modes, be.arch, nvcc, shape, extra=K.EXDWPW6_FLAG_DEFINES)
                fn = be._dyn_smem(_load(be, built).get_function(built.name), la.smem)
                if K.exdwpw6_build_of(base)[1] > 8:
                    be._allow_nonportable_cluster(la.name + "+flags", fn)
                fns[la.name] = fn
            a = list(la.args)
            x, r, y, ws = a[A_X], a[A_R], a[A_Y], a[A_WS]
            has_res = int(a[A_RES]) == 1
            if has_res and _ptr(r) != _ptr(x):
                raise SystemExit(f"launch {i} {la.name}: the residual is not the input tensor")
            y_new = cp.empty_like(y)
            a[A_X] = remap.get(_ptr(x), x)
            a[A_R] = a[A_X] if has_res else y_new
            a[A_Y] = y_new
            a[A_WS] = y_new if _ptr(ws) == _ptr(y) else cp.empty_like(ws)  # NG > 1: its own workspace
            a[A_CNT] = cp.zeros_like(a[A_CNT])  # its own arrival counters (every launch leaves them zero)
            cl = K.exdwpw6_build_of(base)[1]
            st, nb = la.grid[1], la.grid[2]
            flags = cp.zeros(nb * st * cl, cp.uint32)
            fin, ptr_, pcl = (np.int64(0), 1, 1) if prev is None else prev
            a += [fin, flags, epoch, np.int32(ptr_), np.int32(pcl)]
            remap[_ptr(y)] = y_new
            fresh += [y_new] + ([a[A_WS]] if a[A_WS] is not y_new else [])
            out[i] = replace(la, kernel=fns[la.name], args=tuple(a))
            rows.append({"launch": i, "name": la.name, "waits_on": "grid" if prev is None else f"flags of {i - 1}",
                         "tiles": st, "cluster": cl})  # fmt: skip
            prev = (flags, int(a[A_TR]), cl)
        if hi < len(launches):  # the launch after the run reads the run's last output: its fresh buffer
            nxt = launches[hi]
            old = _ptr(launches[hi - 1].args[A_Y])
            if _ptr(nxt.args[0]) != old:
                raise SystemExit(f"launch {hi} {nxt.name}: its input (argument 0) is not the run's last output")
            out[hi] = replace(nxt, args=(remap[old], *nxt.args[1:]))  # (an output there stays: nothing reads it)
    return out, fresh, rows


def _load(be: Any, built: Any) -> Any:
    from impls.custom import _load_module

    return _load_module(be._cp, built)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", default="", help="a kernel spec ('' = the defaults)")
    ap.add_argument("--picks", default=None, help="tune_picks: an earlier run's autotuner picks to replay (a file)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    import cupy as cp

    from impls.custom import CustomBackend, Launch
    from mbv2.model import default_network
    from mbv2.network import random_input
    from mbv2.timing import CudaGraph, cuda_event_timing

    net = default_network()
    be = CustomBackend(graph=True, kernels=args.kernels, tune_picks=args.picks)
    be.prepare(net)
    plan = be.plan(1)
    x = random_input(net, 1, seed=1)
    ref = be.run(x)  # the plan's own graph; stage_in keeps x for the graphs below
    epoch = cp.zeros(1, cp.uint32)
    efn = cp.RawModule(code=EPOCH_SRC).get_function("flag_epoch_next")
    first = Launch("flag_epoch_next", efn, (1,), (1,), (epoch,))
    base = [first, replace(plan.launches[0], pdl=False), *plan.launches[1:]]
    flagged, fresh, rows = flag_launches(be, base, epoch, cp)
    if not rows:
        raise SystemExit("the plan has no run of two or more exdwpw6 launches (fuse v6 or later, batch <= 3)")
    for r in rows:
        print(f"flag launch {r['launch']:2d} {r['name'][:60]:60s} waits on {r['waits_on']}")
    graphs = {name: CudaGraph(lambda seq=seq: be._enqueue_launches(seq), be.stream)
              for name, seq in (("plan", base), ("flags", flagged))}  # fmt: skip

    def checked(name: str, replays: int) -> bool:
        ok = True
        for _ in range(replays):
            with be.stream:
                for buf in [plan.out, *fresh]:
                    buf.fill(np.nan)
                graphs[name].replay()
            be.stream.synchronize()
            got = cp.asnumpy(plan.out)
            ok = ok and bool(np.array_equal(got.view(np.uint32), np.asarray(ref, np.float32).view(np.uint32)))
        return ok

    correct = {name: checked(name, 3) for name in graphs}
    print(f"bit-identical to the plan's logits over 3 poisoned replays: {correct}")
    times: dict[str, list[float]] = {name: [] for name in graphs}
    for rd in range(args.rounds):
        for name, g in graphs.items():
            t = cuda_event_timing(lambda i, g=g: g.replay(), warmup=3, repeats=args.repeats, stream=be.stream)
            times[name].append(t.median_ms * 1e3)
        print(f"round {rd}: " + "  ".join(f"{n} {v[-1]:.2f} us" for n, v in times.items()), flush=True)
    med = {n: statistics.median(v) for n, v in times.items()}
    gpu = cp.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    print(f"flag hand-off {gpu} batch 1 kernels {args.kernels or 'default'}: plan {med['plan']:.2f} us, flags "
          f"{med['flags']:.2f} us ({med['flags'] - med['plan']:+.2f} us over {len(rows)} launches)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu, "kernels": args.kernels or "default", "picks": args.picks,
                                               "launches": rows, "rounds_us": times, "median_us": med,
                                               "correct": correct}, indent=1))  # fmt: skip
    if not all(correct.values()):
        raise SystemExit("flag hand-off: the logits differ from the plan's (a launch read before its inputs landed)")


if __name__ == "__main__":
    main()
