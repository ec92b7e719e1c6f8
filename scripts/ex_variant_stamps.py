"""Session 23: exdwpw6's expansion phase under code-generation variants, per launch of the batch-1 plan, in isolation.

    python3 scripts/ex_variant_stamps.py --batch 1 --fuse v30 --rounds 3 --json out.json

For each exdwpw6 launch of the --fuse plan (the tuner's picks), the stamped twin of its fixed build
(scripts/cblock_sweep.py stamp_run: thread 0 of every block writes clock64 at the phase boundaries) is compiled and
launched with:
  plan      the plan's own modes;
  e         v17's tiles (EC 0) moved to ex_tiles_ec with EC 1 (the same KS; skewed k slices);
  full      ex_tiles_ec with its k loop fully unrolled (-DEXDWPW6_EX_FULL; default unroll 2);
  ep2 / ep8 ex_tiles_ec with 2 / 8 pixels per lane tile (-DEXDWPW6_EX_EP; default 4), each also with full;
  pad8 / pad16  ex_tiles_ec's pixel slots per channel group padded to a multiple of 8 / 16 (-DEXDWPW6_EX_PAD), each
            also with full;
  ks<K>     the other k splits of the block (EC as the plan's, at least 1), with and without full, and pad8full;
  ec<E>     the other channel groups per lane (the plan's KS), plain and pad8full;
  v32p      fuse v32's padded mode (ex_ks + 64, K.ex_pack(.., pad=True)): pad8 through the kernel argument, also full.
With --set snake (session 24), instead: the plan, snake<G> (the units in boustrophedon order, -DEXDWPW6_EX_SNAKE=G
with G = 1 / 2 / 4 channel groups per run; kernels/cblock.cu ex_unit), e (ex_tiles_ec with EC 1 where the
plan runs v17's tiles; esnake2), snake2full, and the other k splits (EC 0 and the plan's) with snake2. With --set
proj: the plan, pj1 / pj2 (proj_tiles' units in that order, -DEXDWPW6_PJ_SNAKE=G), and the other projection tile
height (proj_cols 2 <-> 3, the same sums) plain and with pj2. With --set push (session 25): the plan, and push
(-DEXDWPW6_PUSH=1: each projection tile result stored into the shared memory of the block that sums it, so the cluster
reduce reads local partials) and bulk (red_pf 2, fuse v37's mode: each block's slice moved by one bulk copy per pair
of blocks, on the receiver's mbarrier instead of the cluster barrier). Printed: the expansion, projection, cluster
barrier and cluster reduce phases.
Every variant but the other k splits sums the same products in the same order as the plan's launch: its output
must be bitwise equal (checked; a mismatch is an error); the other k splits within rel L2 1e-5 of it. Printed per
launch: the expansion and projection phases (median over blocks, then the median over --rounds interleaved rounds)
and the kernel's span, per variant. kernels/cblock.cu "session 23's measuring builds".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cupy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from scripts.cblock_sweep import stamp_run  # noqa: E402

FULL = ("-DEXDWPW6_EX_FULL",)
PAD8, PAD16 = ("-DEXDWPW6_EX_PAD=8",), ("-DEXDWPW6_EX_PAD=16",)


def variants(base: str, modes: tuple[int, ...], cin: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """(label, modes, extra defines) of one launch (module docstring)."""
    ch = K.exdwpw6_build_of(base)[0]
    pc, ex_ks, rpf, ds = modes
    ks, ec = K.ex_unpack(ex_ks)
    out = [("plan", modes, ())]
    if ks == 0:
        return out  # the pixel-lane expansion: no tiles to vary
    e = max(ec, 1)
    me = (pc, K.ex_pack(ks, e), rpf, ds)
    if ec == 0:
        out.append(("e", me, ()))
    out += [("full", me, FULL), ("ep2", me, ("-DEXDWPW6_EX_EP=2",)), ("ep2full", me, ("-DEXDWPW6_EX_EP=2", *FULL))]
    if e == 1:  # EP 8 with EC >= 2 spills (ptxas)
        out += [("ep8", me, ("-DEXDWPW6_EX_EP=8",)), ("ep8full", me, ("-DEXDWPW6_EX_EP=8", *FULL))]
    out += [("pad8", me, PAD8), ("pad8full", me, (*PAD8, *FULL))]
    out += [("pad16", me, PAD16), ("pad16full", me, (*PAD16, *FULL))]
    mp = (pc, K.ex_pack(ks, e, True), rpf, ds)  # fuse v32's padded mode (ex_ks + 64): pad8's code through the mode
    out += [("v32p", mp, ()), ("v32pfull", mp, FULL)]
    for k2 in K.ex_ks_modes(cin):
        m2 = (pc, K.ex_pack(k2, e), rpf, ds)
        if k2 > 0 and k2 != ks and K.ex_mode_fits(m2[1], ch):
            out += [(f"ks{k2}", m2, ()), (f"ks{k2}full", m2, FULL), (f"ks{k2}pad8full", m2, (*PAD8, *FULL))]
    for e2 in K.EX_EC_CANDIDATES:
        m2 = (pc, K.ex_pack(ks, e2), rpf, ds)
        if e2 != e and K.ex_mode_fits(m2[1], ch):
            out += [(f"ec{e2}", m2, ()), (f"ec{e2}pad8full", m2, (*PAD8, *FULL))]
    return out


def snake_variants(base: str, modes: tuple[int, ...], cin: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Session 24's set (--set snake): the units in boustrophedon order (-DEXDWPW6_EX_SNAKE=G, G channel groups per
    slot run), on the plan's modes and on ex_tiles_ec's, with and without full unroll, and on the other k splits."""
    ch = K.exdwpw6_build_of(base)[0]
    pc, ex_ks, rpf, ds = modes
    ks, ec = K.ex_unpack(ex_ks)
    out = [("plan", modes, ())]
    if ks == 0:
        return out
    e = max(ec, 1)
    me = (pc, K.ex_pack(ks, e), rpf, ds)
    out += [(f"snake{g}", modes, (f"-DEXDWPW6_EX_SNAKE={g}",)) for g in (1, 2, 4)]
    if ec == 0:
        out += [("e", me, ()), ("esnake2", me, ("-DEXDWPW6_EX_SNAKE=2",))]
    out += [("snake2full", me, ("-DEXDWPW6_EX_SNAKE=2", *FULL))]
    for k2 in K.ex_ks_modes(cin):
        for e2 in (0, e):
            m2 = (pc, K.ex_pack(k2, e2), rpf, ds)
            if k2 > 0 and k2 != ks and K.ex_mode_fits(m2[1], ch):
                out.append((f"ks{k2}" + (f"e{e2}" if e2 else "") + "snake2", m2, ("-DEXDWPW6_EX_SNAKE=2",)))
    return out


def proj_variants(base: str, modes: tuple[int, ...], cin: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Session 24's projection set (--set proj): proj_tiles' units in the lane-pair order (-DEXDWPW6_PJ_SNAKE=G, G 1 /
    2), on the plan's projection mapping and on the other tile height (proj_cols 2 <-> 3: 4 / 2 pixels per tile, the
    same sums); on fuse v36's ordered tiles (proj_cols 4 / 5) the other three of K.PROJ_ORDER_MODES."""
    pc, ex_ks, rpf, ds = modes
    out = [("plan", modes, ())]
    if pc < 2:
        return out  # the pixel-lane or column projection: no tiles to order
    if pc in K.PROJ_FIXED_ONLY:  # fuse v36's plan, ordered already: the other lane-tile modes (plain / ordered)
        return out + [(f"pc{p}", (p, ex_ks, rpf, ds), ()) for p in K.PROJ_ORDER_MODES if p != pc]
    out += [(f"pj{g}", modes, (f"-DEXDWPW6_PJ_SNAKE={g}",)) for g in (1, 2)]
    mo = (5 - pc, ex_ks, rpf, ds)
    out += [(f"pc{5 - pc}", mo, ()), (f"pc{5 - pc}pj2", mo, ("-DEXDWPW6_PJ_SNAKE=2",))]
    return out


def push_variants(base: str, modes: tuple[int, ...], cin: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Session 25's reduction set (--set push): the plan; push, each lane-tile result stored into the block that sums
    it (-DEXDWPW6_PUSH=1); bulk, each block's slice of the partials moved to its summing block by one bulk copy per
    (sender, receiver) on the receiver's mbarrier, no cluster barrier before the reduce (fuse v37's red_pf 2). Both
    reduce from local shared memory in the plan's order (bit-identical)."""
    pc, ex_ks, rpf, ds = modes
    out = [("plan", modes, ())]
    if pc >= 2 and rpf != 2:  # the lane-tile projections only, on the pulls' reduce
        out.append(("push", modes, (PUSH,)))
    return out + [(f"red_pf{r}" if r < 2 else "bulk", (pc, ex_ks, r, ds), ()) for r in (1, 2) if r != rpf]


PUSH = "-DEXDWPW6_PUSH=1"


def ks_of(la) -> int:
    """The k split (KS) of a planned exdwpw6 launch's fixed build."""
    return K.exdwpw6_spec_parse(la.name)[1][1] & 15


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--fuse", default="v30")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default="")
    ap.add_argument(
        "--set", default="s23", choices=("s23", "snake", "proj", "push"), help="session 23's variants, or 24 / 25's"
    )
    args = ap.parse_args()
    vary = {"s23": variants, "snake": snake_variants, "proj": proj_variants, "push": push_variants}[args.set]
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    if K.flag_handoff(args.fuse):  # fuse v43: its plan's exdwpw6 launches are flag twins (no stamped builds)
        raise SystemExit(f"fuse {args.fuse}: stamp the plan of v42 (the same builds, without the flag hand-off)")
    be = CustomBackend(kernels=f"fuse={args.fuse}")
    be.prepare(default_network())
    plan = be.plan(args.batch)
    labels = {lo: label for label, lo, _ in plan.op_ranges}
    nvcc = K.find_nvcc()
    if nvcc is None:
        raise SystemExit("nvcc not found: the variants are fixed builds compiled here")
    todo = []  # (plan index, launch, label, modes, extra, spec name)
    for i, la in enumerate(plan.launches):
        base, modes, shape = K.exdwpw6_spec_parse(la.name)
        if not la.name.startswith("exdwpw6") or modes is None or shape is None:
            continue
        for label, m, extra in vary(base, modes, shape[2]):
            todo.append((i, la, label, m, extra, base, shape))

    def build(t):
        i, la, label, m, extra, base, shape = t
        return K.build_exdwpw6_spec(base, m, be.arch, nvcc, shape, stamp=True, extra=extra)

    print(f"{gpu}: {len(todo)} stamped builds over {len({t[0] for t in todo})} launches, compiling", flush=True)
    with ThreadPoolExecutor(16) as ex:
        builts = list(ex.map(build, todo))
    res: dict[tuple[int, str], list[dict]] = {}
    ref: dict[int, np.ndarray] = {}
    for r in range(args.rounds):
        for (i, la, label, m, _extra, base, shape), built in zip(todo, builts):
            spec = K.exdwpw6_spec_name(base, m, shape)
            h, w, cin, _, cout, _, wo, s, tr = shape[:9]
            ch, cl, _ = K.exdwpw6_build_of(base)
            smem = K.exdwpw6_launch_smem(h, w, cin, cout, wo, s, tr, ch, m[1], cl, m[2])  # the variant's modes
            if PUSH in _extra:  # the push's receive buffer after the layout
                smem += K.exdwpw6_push_bytes(tr, wo, cout, cl)
            lv = dataclasses.replace(la, name=spec, smem=smem)
            y = la.args[8]
            y.fill(np.nan)
            out = stamp_run(be, lv, built=built)
            got = y.get()
            if label == "plan":
                ref[i] = got
            elif m[1] & 15 != ks_of(la):
                # another k split sums in another order: within fp32 rounding of the plan's output
                err = float(np.linalg.norm(got - ref[i]) / np.linalg.norm(ref[i]))
                if not err < 1e-5:
                    raise SystemExit(f"launch {i} ({la.name}) variant {label}: rel L2 {err:.2e} from the plan's launch")
            elif not np.array_equal(got, ref[i], equal_nan=False):
                raise SystemExit(f"launch {i} ({la.name}) variant {label}: output differs from the plan's launch")
            res.setdefault((i, label), []).append(out)
        print(f"[round {r + 1} done]", flush=True)
        if args.json:  # what the rounds so far measured (the last round's file is the whole run)
            Path(args.json).write_text(json.dumps(summary(res, plan, gpu, args.batch, labels, False), indent=1))
    rows = summary(res, plan, gpu, args.batch, labels, True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def summary(res: dict, plan, gpu: str, batch: int, labels: dict, show: bool) -> list[dict]:
    """Per launch and variant: the expansion phase and the span (medians over the rounds), printed where ``show``."""
    rows = []
    for i in sorted({j for j, _ in res}):
        la = plan.launches[i]
        if show:
            print(f"launch {i} {labels.get(i, '?')} {la.name} grid {la.grid}")
        for (j, label), outs in res.items():
            if j != i:
                continue
            ex_us = float(np.median([o["expand"][0] for o in outs]))
            pj_us = float(np.median([o["project"][0] for o in outs]))
            span = float(np.median([o["span_us"] for o in outs]))
            bar, red = (float(np.median([o[k][0] for o in outs])) for k in ("cluster barrier", "cluster reduce"))
            if show:
                print(f"    {label:12s} expand {ex_us:.3f} us   project {pj_us:.3f} us   barrier {bar:.3f} us   "
                      f"reduce {red:.3f} us   span {span:.2f} us", flush=True)  # fmt: skip
            rows.append({"gpu": gpu, "batch": batch, "launch": i, "name": la.name, "variant": label,
                         "expand_us": ex_us, "project_us": pj_us, "span_us": span, "rounds": outs})  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
