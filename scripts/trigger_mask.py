"""Which of fuse v45's early-trigger twins gain, from the prefix times of v42 and v45 on the same picks (session 33;
results/NOTES.md "Session 33"). Host only: it reads two scripts/plan_prefix_times.py JSONs.

    python3 scripts/trigger_mask.py prefix_v42.json prefix_v45.json [--keep-below 0.0] [--quiet] [--proper]

A twin at plan position k triggers launch k + 1 early. Its effect (the gain of scheduling k + 1 while k computes, and
what k + 1's early blocks and weight requests cost k) lands in launch k + 1's marginal time: the prefix through k ends
with k and holds no dependent. So the effect of twin k is taken as v45's marginal time of k + 1 minus v42's (a twin
with no launch after it: 0). Printed: per twin, that effect (median of the round medians' differences) and its range
over the rounds; the sum over all twins and over those kept; and, last, the positions whose effect is below
--keep-below us, joined as scripts/e2e_ab.py's trig= option reads them (K.trigger_set_format; an empty line: none, or
with --proper also all of them).
The two runs must be the same plan but for the twins (v45's names are v42's, some with K.TRIGGER_SUFFIX).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402


def _marginals(rows: list[dict]) -> list[list[float]]:
    """Each launch's marginal time per round (the rounds' prefix times differenced)."""
    out, prev = [], None
    for r in rows:
        cur = r["rounds_us"]
        out.append([c - p for c, p in zip(cur, prev)] if prev is not None else list(cur))
        prev = cur
    return out


def effects(base: dict, twins: dict) -> list[dict]:
    """Per twin position k of ``twins``: {launch, name, effect_us, lo_us, hi_us}; SystemExit if the plans differ."""
    b, t = base["rows"], twins["rows"]
    if len(b) != len(t):
        raise SystemExit(f"trigger_mask: {len(b)} launches against {len(t)}: not the same plan")
    for rb, rt in zip(b, t):
        if rt["name"] not in (rb["name"], rb["name"] + K.TRIGGER_SUFFIX):
            raise SystemExit(f"trigger_mask: launch {rb['launch']} is {rb['name']} against {rt['name']}")
    mb, mt = _marginals(b), _marginals(t)
    out = []
    for k, (rb, rt) in enumerate(zip(b, t)):
        if rt["name"] == rb["name"]:
            continue
        if k + 1 == len(t):
            d = [0.0]
            eff = 0.0
        else:
            d = [x - y for x, y in zip(mt[k + 1], mb[k + 1])]
            eff = t[k + 1]["marginal_us"] - b[k + 1]["marginal_us"]
        out.append({"launch": k, "name": rt["name"], "effect_us": eff, "lo_us": min(d), "hi_us": max(d)})
    return out


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="plan_prefix_times.py JSON of v42 (no twins)")
    ap.add_argument("twins", help="plan_prefix_times.py JSON of v45 on the same picks")
    ap.add_argument("--keep-below", type=float, default=0.0, help="keep a twin whose effect is below this (us)")
    ap.add_argument("--quiet", action="store_true", help="print only the positions kept")
    ap.add_argument(
        "--proper",
        action="store_true",
        help="an empty last line unless the twins kept are some but not all (what an A/B against v45 needs)",
    )
    args = ap.parse_args(argv)
    base, twins = (json.loads(Path(p).read_text()) for p in (args.base, args.twins))
    rows = effects(base, twins)
    keep = {r["launch"] for r in rows if r["effect_us"] < args.keep_below}
    mask = K.trigger_set_format(keep) if keep and (len(keep) < len(rows) or not args.proper) else ""
    if not args.quiet:
        print(f"trigger_mask: {len(rows)} twins; plan graphs {base['plan_graph_us']:.2f} (base) "
              f"{twins['plan_graph_us']:.2f} (twins) us")  # fmt: skip
        for r in rows:
            mark = "keep" if r["launch"] in keep else "drop"
            print(f"twin {r['launch']:3d} {r['name'][:40]:40s} next launch {r['effect_us']:+6.2f} us "
                  f"(rounds {r['lo_us']:+.2f} .. {r['hi_us']:+.2f})  {mark}")  # fmt: skip
        total = sum(r["effect_us"] for r in rows)
        kept = sum(r["effect_us"] for r in rows if r["launch"] in keep)
        print(f"trigger_mask: sum of effects {total:+.2f} us over all twins, {kept:+.2f} us over the {len(keep)} kept")
    print(mask)
    return mask


if __name__ == "__main__":
    main()
