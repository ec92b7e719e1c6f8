"""Summarise ncu's source page (SASS, CSV) of one kernel by phase: the instructions between two block / cluster
barriers, with their share of the warp-state samples, the largest stall reasons and the executed instruction mix.

    ncu -i rep.ncu-rep --page source --csv --print-source sass > source_sass.csv   (scripts/ncu_source_device.sh)
    python3 scripts/ncu_source_phases.py source_sass.csv [--kernel 0] [--loads]

A phase starts at a BAR.SYNC / BAR.ARV / BAR.RED / UCGABAR_* instruction, so a barrier's own samples (warps waiting at
it) count in the phase after it. --loads: every shared-memory load / store of the phase after the first block
barrier (exdwpw6: the expansion) with its wavefronts per executed instruction against ncu's ideal.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter

BARRIER = re.compile(r"\bBAR\.(SYNC|ARV|RED)|UCGABAR")


def kernels(path: str) -> list[dict]:
    """The CSV's kernels: {'name', 'header', 'rows'} (ncu prints a "Kernel Name" line, then a header, then rows)."""
    out, cur, header = [], None, None
    with open(path, newline="") as f:
        for r in csv.reader(f):
            if not r:
                continue
            if r[0] == "Kernel Name":
                cur = {"name": r[1], "rows": []}
                out.append(cur)
            elif r[0] == "Address":
                header = r
                if cur is not None:
                    cur["header"] = r
            elif cur is not None:
                cur.setdefault("header", header)
                cur["rows"].append(r)
    return out


def _num(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return 0.0


def phases(k: dict) -> list[dict]:
    """The kernel's rows split at barriers: per phase the rows, samples, stall samples by reason, executed ops."""
    h = {name: i for i, name in enumerate(k["header"])}
    stalls = [c for c in k["header"] if c.startswith("stall_") and "(Not" not in c]
    out: list[dict] = []
    for r in k["rows"]:
        src = r[h["Source"]].strip()
        if not out or BARRIER.search(src):
            out.append({"start": r[0], "first": src, "rows": [], "samples": 0.0, "stalls": Counter(), "ops": Counter()})
        p = out[-1]
        p["rows"].append(r)
        p["samples"] += _num(r[h["Warp Stall Sampling (All Samples)"]])
        words = src.split()
        op = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "?")
        p["ops"][op.split(".")[0]] += _num(r[h["Instructions Executed"]])
        for c in stalls:
            p["stalls"][c[6:]] += _num(r[h[c]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--kernel", type=int, default=0, help="which kernel of the CSV (default: the first)")
    ap.add_argument("--loads", action="store_true")
    args = ap.parse_args()
    k = kernels(args.csv)[args.kernel]
    ps = phases(k)
    total = sum(p["samples"] for p in ps) or 1.0
    print(f"{k['name']}: {total:.0f} warp-state samples")
    for p in ps:
        if p["samples"] < 0.01 * total:
            continue
        print(f"{p['start']} {len(p['rows']):4d} instructions, {100 * p['samples'] / total:5.1f}% of the samples; "
              f"starts at: {p['first'][:40]}")  # fmt: skip
        print("    stalls (% of all samples): "
              + ", ".join(f"{a} {100 * b / total:.1f}" for a, b in p["stalls"].most_common(6)))  # fmt: skip
        print("    executed: " + ", ".join(f"{a} {b:.0f}" for a, b in p["ops"].most_common(8)))
    if args.loads:
        h = {name: i for i, name in enumerate(k["header"])}
        first = next(i for i, p in enumerate(ps) if "BAR.SYNC" in p["first"])
        print(f"shared-memory accesses of the phase at {ps[first]['start']} (wavefronts per executed instruction):")
        for r in ps[first]["rows"]:
            src, n = r[h["Source"]].strip(), _num(r[h["Instructions Executed"]])
            if n and re.search(r"\b(LDS|STS)", src):
                wf, ideal = _num(r[h["L1 Wavefronts Shared"]]) / n, _num(r[h["L1 Wavefronts Shared Ideal"]]) / n
                print(f"    {r[0][-6:]} {src[:44]:44s} executed {n:8.0f}  wavefronts {wf:.2f} (ideal {ideal:.2f})")


if __name__ == "__main__":
    main()
