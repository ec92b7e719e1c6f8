"""The README's result tables quote the committed runs: every figure in them equals results/<gpu>/run.json's
end-to-end device time (test_e2e) rounded as printed, and each committed report is what `mbv2 report` renders from its
run. Only figures from real runs go into the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BATCHES = (1, 8, 64, 256)

# (the README line the table follows, the run it quotes, the dtype of rows that name none)
TABLES = [
    ("fp32 (true fp32: no TF32 anywhere):", "results/h100/run.json", "fp32"),
    ("fp16 (half storage, tensor cores, fp32 accumulation", "results/h100/run.json", "fp16"),
    ("### Also measured: H200 (141 GB HBM3e), same code", "results/h200/run.json", None),
]


def _table_after(marker: str) -> list[list[str]]:
    assert README.count(marker) == 1, f"README: {marker!r} should appear once"
    lines = README[README.index(marker) :].splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    rows = []
    for ln in lines[start + 2 :]:  # past the header and the --- line
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _row_key(label: str, dtype: str | None) -> tuple[str, str, str]:
    backend = next(b for b in ("custom", "cudnn", "torch") if b in label)
    mode = "compile-graph" if "torch.compile" in label else "eager" if "eager" in label else "graph"
    dt = "fp16" if "fp16" in label else "fp32" if "fp32" in label else dtype
    assert dt is not None, f"README table row {label!r} names no dtype"
    return backend, dt, mode


def _device_ms(run_path: str) -> dict[tuple[str, str, str, int], float]:
    run = json.loads((ROOT / run_path).read_text())
    out = {}
    for b in run["benchmarks"]:
        m = re.fullmatch(r"test_e2e\[(\w+)-(fp\d+)-([\w-]+)-bs(\d+)\]", b.get("name", ""))
        if m:
            out[(m[1], m[2], m[3], int(m[4]))] = float(b["extra_info"]["device_ms"])
    return out


def _number(cell: str) -> tuple[float, float]:
    """(the time in ms, half a unit of its last printed digit)"""
    m = re.match(r"\**([0-9.]+) ms", cell)
    assert m, f"README cell {cell!r} is not a time in ms"
    return float(m[1]), _half_unit(m[1])


def _half_unit(text: str) -> float:
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5001 * 10.0**-decimals  # a printed 0.460 stands for [0.4595, 0.4605]


@pytest.mark.parametrize("marker,run_path,dtype", TABLES, ids=["h100-fp32", "h100-fp16", "h200"])
def test_readme_tables_quote_the_committed_run(marker: str, run_path: str, dtype: str | None) -> None:
    ms = _device_ms(run_path)
    rows = _table_after(marker)
    assert len(rows) >= 3
    wrong = []
    for row in rows:
        key = _row_key(row[0], dtype)
        for batch, cell in zip(BATCHES, row[1:5], strict=True):
            got = ms[(*key, batch)]
            value, tol = _number(cell)
            if abs(value - got) > tol:
                wrong.append(f"{row[0]} batch {batch}: README {cell}, {run_path} {got:.4f} ms")
            img = re.search(r"\(([0-9.]+)k img/s\)", cell)
            if img and abs(float(img[1]) - batch / got) > _half_unit(img[1]):
                wrong.append(f"{row[0]} batch {batch}: README {img[0]}, {run_path} {batch / got:.2f}k img/s")
        per_s = row[5].strip("*k")
        if abs(float(per_s) - 256 / ms[(*key, 256)]) > _half_unit(per_s):
            wrong.append(f"{row[0]}: README {row[5]} img/s at 256, {run_path} {256 / ms[(*key, 256)]:.2f}k")
    assert not wrong, "README figures that differ from the committed run:\n" + "\n".join(wrong)


@pytest.mark.parametrize("gpu", ["h100", "h200"])
def test_committed_report_is_rendered_from_the_committed_run(gpu: str) -> None:
    """results/<gpu>/report/report.md is what `python -m mbv2 report results/<gpu>/run.json` writes today (the text;
    the plots section follows it)."""
    from mbv2 import report

    md, _ = report.build_report(report.load_run(str(ROOT / f"results/{gpu}/run.json")))
    committed = (ROOT / f"results/{gpu}/report/report.md").read_text()
    assert committed.startswith(md), (
        f"results/{gpu}/report/report.md is stale: re-render it with "
        f"python -m mbv2 report results/{gpu}/run.json --out results/{gpu}/report"
    )
