"""The memory fences and cluster / block synchronisation in the SASS of a plan's kernels (session 49; results/NOTES.md
"Session 49"). scripts/handoff_probe.py measured a release at cluster scope as a GPU-scope memory barrier
(MEMBAR.ALL.GPU, ~0.4 - 0.6 us each on an H100); this counts such instructions in every kernel the plan launches.

    python3 scripts/sass_fences.py --cache $MBV2_CACHE/kernels --ncu results/h100/session49/call1/ncu_v51.csv.gz

It disassembles every cubin of the build cache with cuobjdump (once, in parallel), indexes its functions, and prints
one row per kernel of the ncu pass (in launch order). Each row gives the static count of each instruction of
interest. An instruction inside a loop runs more than once, so a static count is a lower bound on what runs.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# the opcodes counted, in the table's column order: memory barriers, error barriers, the async-proxy fence, the
# cluster barrier's halves, block barriers, and mbarrier operations (SYNCS.*: arrive, try-wait, exchange)
COLUMNS = ("MEMBAR.ALL.GPU", "MEMBAR.ALL.CTA", "MEMBAR.SC", "FENCE.VIEW.ASYNC", "UCGABAR_ARV", "UCGABAR_WAIT",
           "BAR.SYNC", "SYNCS")  # fmt: skip
_FUNC = re.compile(r"^\s*Function : (\S+)\s*$")
_INST = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)")


def column_of(opcode: str) -> str | None:
    """The column an opcode is counted in, or None. MEMBAR.SC.* (sequentially consistent) and any other MEMBAR
    scope than CTA / GPU count as MEMBAR.SC; every SYNCS.* as SYNCS; BAR.SYNC with its variants
    (BAR.SYNC.DEFER_BLOCKING) as BAR.SYNC."""
    if opcode.startswith("MEMBAR."):
        return opcode if opcode in ("MEMBAR.ALL.GPU", "MEMBAR.ALL.CTA") else "MEMBAR.SC"
    if opcode.startswith("FENCE.VIEW.ASYNC"):
        return "FENCE.VIEW.ASYNC"
    if opcode.startswith("SYNCS."):
        return "SYNCS"
    if opcode.startswith("BAR.SYNC"):
        return "BAR.SYNC"
    return opcode if opcode in ("UCGABAR_ARV", "UCGABAR_WAIT") else None


def count(sass: str) -> dict[str, Counter]:
    """{function name: Counter of COLUMNS} of one cuobjdump -sass listing."""
    out: dict[str, Counter] = {}
    cur: Counter | None = None
    for line in sass.splitlines():
        m = _FUNC.match(line)
        if m:
            cur = out.setdefault(m[1], Counter())
            continue
        m = _INST.search(line)
        if m and cur is not None:
            col = column_of(m[1])
            if col is not None:
                cur[col] += 1
    return out


def ncu_kernels(path: Path) -> list[str]:
    """The kernel names of an ncu --csv --page raw file (gzipped or not), in launch order."""
    raw = gzip.open(path, "rt") if path.suffix == ".gz" else open(path)  # noqa: SIM115 (closed below)
    with raw:
        rows = list(csv.reader(io.StringIO("".join(ln for ln in raw if ln.startswith('"')))))
    if not rows or "Kernel Name" not in rows[0]:
        raise SystemExit(f"{path}: no ncu raw-page header with 'Kernel Name'")
    i = rows[0].index("Kernel Name")
    return [r[i] for r in rows[2:] if len(r) > i]  # rows[1] holds the units


def disassemble(cubins: list[Path], cuobjdump: str, jobs: int) -> dict[str, Counter]:
    """Every function of every cubin: {name: counts} (a name in several cubins: the first one's, same build)."""

    def one(p: Path) -> dict[str, Counter]:
        r = subprocess.run([cuobjdump, "-sass", str(p)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"cuobjdump -sass {p}: rc {r.returncode}: {r.stderr.strip()[:300]}")
        return count(r.stdout)

    index: dict[str, Counter] = {}
    with ThreadPoolExecutor(jobs) as ex:
        for funcs in ex.map(one, cubins):
            for name, c in funcs.items():
                index.setdefault(name, c)
    return index


def table(names: list[str], index: dict[str, Counter]) -> str:
    """A markdown table: one row per launch (its static counts), then the sums."""
    lines = ["| # | kernel | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    total: Counter = Counter()
    for i, name in enumerate(names):
        if name not in index:
            raise SystemExit(f"kernel {name} is in no cubin of the cache (was the cache built for this plan?)")
        c = index[name]
        total.update(c)
        lines.append(f"| {i} | {name} | " + " | ".join(str(c[k]) for k in COLUMNS) + " |")
    lines.append("| all | | " + " | ".join(str(total[k]) for k in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="the build cache's kernels folder (*.cubin)")
    ap.add_argument("--ncu", required=True, help="an ncu --csv --page raw file of the plan (its kernel names)")
    ap.add_argument("--cuobjdump", default="", help="default: on PATH, else /usr/local/cuda*/bin")
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args()
    tool = (
        args.cuobjdump
        or shutil.which("cuobjdump")
        or next((str(p) for p in sorted(Path("/usr/local").glob("cuda*/bin/cuobjdump"))), "")
    )
    if not tool:
        raise SystemExit("cuobjdump not found (PATH, /usr/local/cuda*/bin): pass --cuobjdump")
    cubins = sorted(Path(args.cache).glob("*.cubin"))
    if not cubins:
        raise SystemExit(f"{args.cache}: no cubins")
    names = ncu_kernels(Path(args.ncu))
    print(f"{len(cubins)} cubins, {len(names)} kernels, {tool}", file=sys.stderr, flush=True)
    print(table(names, disassemble(cubins, tool, args.jobs)))


if __name__ == "__main__":
    main()
