"""scripts/launch_budget.py on a committed prefix-time file: each fused op counted once, FLOPs add up."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFIX = ROOT / "results/h200/session27/call3_inst3/prefix_P3.json"


def _script():
    spec = importlib.util.spec_from_file_location("launch_budget", ROOT / "scripts/launch_budget.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_budget_covers_every_op_once(net) -> None:
    lb = _script()
    rows = json.loads(PREFIX.read_text())["rows"]
    out = lb.budget(net, rows, gflops=51000.0, gbps=4100.0)
    assert len(out) == len(rows) == 19
    covered = [i for r in out for i in r["ops"]]
    assert covered == [op.covers[0] for op in net.fused]
    assert sum(r["mflop"] for r in out) * 1e6 == pytest.approx(sum(layer.flops() for layer in net.layers))
    assert sum(r["us"] for r in out) == pytest.approx(rows[-1]["prefix_us"])
    for r in out:
        assert r["kbytes"] > r["weight_kbytes"] > 0
        assert 0 < r["ceiling_us"] < r["us"]
    gemv = out[-1]
    assert gemv["weight_kbytes"] == pytest.approx((1280 * 1000 + 1000) * 4 / 1e3)
    assert "x".join(map(str, net.fused[-1].out_shape)) in gemv["shape"]


def test_budget_rejects_labels_out_of_order(net) -> None:
    lb = _script()
    rows = copy.deepcopy(json.loads(PREFIX.read_text())["rows"])
    rows[3]["op"], rows[4]["op"] = rows[4]["op"], rows[3]["op"]
    with pytest.raises(ValueError, match="out of order"):
        lb.budget(net, rows, gflops=1.0, gbps=1.0)
    rows[3]["op"] = "no label"
    with pytest.raises(ValueError, match="no op label"):
        lb.budget(net, rows, gflops=1.0, gbps=1.0)
