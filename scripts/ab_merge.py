"""One A/B whose arms ran in separate processes (a process-wide option: MBV2_CARVEOUT, MBV2_PDL_TRIGGER), merged:
the rows of each process's scripts/e2e_ab.py JSON, tagged with the process's number and arm, into one JSON, and each
arm's median and range printed, per kernel spec where the rows name one (session 31; scripts/device_lib.sh ab_arms;
session 33: scripts/trigger_device.sh's two A/B steps, arms "all" and "mask").

    python3 scripts/ab_merge.py OUT.json ARM=FILE [ARM=FILE ...]     (in the order the processes ran)
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def merge(pairs: list[str]) -> tuple[list[dict], list[str]]:
    """(the rows, tagged; what is missing: a process that wrote no JSON, e.g. cut off by its timeout)."""
    rows, missing = [], []
    for k, pair in enumerate(pairs):
        arm, sep, path = pair.partition("=")
        if not sep or not path:
            raise SystemExit(f"ab_merge: {pair!r} is not ARM=FILE")
        if not Path(path).exists():
            missing.append(f"process {k + 1} ({arm}) wrote no {path}")
            continue
        for row in json.loads(Path(path).read_text()):
            rows.append({**row, "process": k + 1, "arm": arm})
    return rows, missing


def summary(rows: list[dict]) -> list[str]:
    """Per arm and kernel spec (a process may time several specs: e2e_ab.py's "kernels"), in the order first seen."""
    by: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        by.setdefault((r["arm"], r.get("kernels", "")), []).append(r["device_ms"])
    return [
        f"arm {arm:>8}{' ' + spec if spec else ''}: {len(v)} instances, median {statistics.median(v):.4f} ms, "
        f"range {min(v):.4f}-{max(v):.4f}"
        for (arm, spec), v in by.items()
    ]


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    rows, missing = merge(argv[2:])
    Path(argv[1]).write_text(json.dumps(rows, indent=1))
    print("\n".join(summary(rows) + [f"ab_merge: {m}" for m in missing]))
    if missing:
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv)
