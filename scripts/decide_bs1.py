"""Session 34: which batch-1 configuration the full bench should run, decided from a merged 2 x 4 A/B
(scripts/combo_device.sh: MBV2_STAGE unset / async x fuse v42 / v45 / v46 / v46 trig=), by the rules written before
the measurement (results/NOTES.md "Session 33"):

- a fuse version replaces v42 if its median is at least MIN_SPEC_US below v42's in the same arm and its instances'
  range lies apart (entirely below v42's);
- MBV2_STAGE=async replaces sync if, on the chosen version, its median is at least MIN_STAGE_US below sync's and its
  range lies apart.

Only a whole version can be benched: a spec with options other than picks= (e.g. ``trig=``, a subset of the twins)
is reported but never chosen. Prints the table, then last one line of environment assignments for the bench (e.g.
``MBV2_STAGE=async MBV2_KERNELS=fuse=v46``), or ``none`` when the base (v42) with sync staging stays. Session 37: BASE
names another base version (scripts/staged_device.sh: v46, against v47), under the same rules. Session 45: the
environment's DECIDE_MIN_SPEC_US (us, finite, >0) replaces MIN_SPEC_US for one call, a rule written down before the call
(results/NOTES.md "Session 45": fuse v53 below v51 with the ranges apart in two earlier A/Bs, 0.46 and 0.38 us).

    [DECIDE_MIN_SPEC_US=0.3] python3 scripts/decide_bs1.py AB.json [BASE]
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
from pathlib import Path

MIN_SPEC_US = 0.5
MIN_STAGE_US = 1.0
BASE = "v42"


def cells(rows: list[dict]) -> dict[tuple[str, str], list[float]]:
    """(stage, spec) -> device ms of each instance; the stage from the row (e2e_ab.py's "stage"), the spec without
    its picks= option (the same picks file in every spec)."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        spec = ",".join(p for p in str(r.get("kernels", "")).split(",") if not p.startswith("picks="))
        out.setdefault((r.get("stage") or "sync", spec), []).append(float(r["device_ms"]))
    return out


def version(spec: str) -> str | None:
    """'fuse=v46' -> 'v46'; None for a spec that is not a whole fuse version (other families or options)."""
    m = re.fullmatch(r"fuse=(v\d+)", spec)
    return m.group(1) if m else None


def beats(a: list[float], b: list[float], min_us: float) -> bool:
    """a's median at least min_us below b's, and every instance of a below every instance of b."""
    return statistics.median(b) - statistics.median(a) >= min_us / 1e3 and max(a) < min(b)


def decide(rows: list[dict], base_version: str = BASE, min_spec_us: float = MIN_SPEC_US) -> tuple[list[str], str]:
    """(the table's lines, the bench's environment line or 'none'), against ``base_version`` (default v42): a version
    wins by at least ``min_spec_us`` (default MIN_SPEC_US) with its range apart."""
    c = cells(rows)
    lines = [
        f"{stage:>5} {spec:24s} {len(v)} instances, median {statistics.median(v):.4f} ms, "
        f"range {min(v):.4f}-{max(v):.4f}"
        for (stage, spec), v in sorted(c.items())
    ]
    base = c.get(("sync", f"fuse={base_version}"))
    if not base:
        raise SystemExit(f"decide_bs1: no instances of fuse={base_version} with sync staging")
    best = base_version
    for (stage, spec), v in sorted(c.items(), key=lambda kv: statistics.median(kv[1])):
        ver = version(spec)
        if stage == "sync" and ver and ver != base_version and beats(v, base, min_spec_us):
            best = ver
            break
    env = [] if best == base_version else [f"MBV2_KERNELS=fuse={best}"]
    sync_v, async_v = c.get(("sync", f"fuse={best}")), c.get(("async", f"fuse={best}"))
    if sync_v and async_v and beats(async_v, sync_v, MIN_STAGE_US):
        env.insert(0, "MBV2_STAGE=async")
    if min_spec_us != MIN_SPEC_US:
        lines.append(f"rule: a version wins by >= {min_spec_us:g} us (not {MIN_SPEC_US:g}) with its range apart")
    lines.append(f"chosen: fuse {best}, staging {'async' if env and env[0].startswith('MBV2_STAGE') else 'sync'}")
    return lines, " ".join(env) or "none"


def min_spec_from_env() -> float:
    """DECIDE_MIN_SPEC_US (us, a finite number > 0) if set, else MIN_SPEC_US; anything else is refused."""
    raw = os.environ.get("DECIDE_MIN_SPEC_US", "").strip()
    if not raw:
        return MIN_SPEC_US
    try:
        v = float(raw)
    except ValueError:
        v = float("nan")
    if not 0 < v < math.inf:  # session 46: inf (nothing could win) is refused too
        raise SystemExit(f"decide_bs1: DECIDE_MIN_SPEC_US must be a finite number of us > 0, not {raw!r}")
    return v


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3) or (len(argv) == 3 and version(f"fuse={argv[2]}") is None):
        raise SystemExit(__doc__)
    lines, env = decide(json.loads(Path(argv[1]).read_text()), *argv[2:], min_spec_us=min_spec_from_env())
    print("\n".join(lines + [env]))


if __name__ == "__main__":
    main(sys.argv)
