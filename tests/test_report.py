"""report and compare: on a real (short, CPU) bench JSON and on a synthetic pair with a planted regression."""

from __future__ import annotations

import copy
import json
import os

import pytest

from bench.harness import smoke_run
from mbv2.cli import main
from mbv2.errors import MbvError
from mbv2.report import build_report, compare_runs, load_run, write_report


@pytest.fixture(scope="module")
def run_json(tmp_path_factory) -> str:
    path, proc = smoke_run(str(tmp_path_factory.mktemp("bench")))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return path


def _bench(name, kind, backend, batch, ms, **extra):
    e = {
        "kind": kind,
        "backend": backend,
        "batch": batch,
        "dtype": "fp32",
        "graph": False,
        "device_ms": ms,
        "timer": "cuda-event",
        **extra,
    }
    if kind == "op":
        e.update(
            fused_ops=[3],
            layers=[5, 6],
            op="Conv2d+ReLU6",
            describe="Conv2d(16, 96, 1, 1, 0, 1) + ReLU6",
            count_in_network=1,
            flops=10**9,
            bytes=10**7,
        )
    else:
        e.update(mode="eager", scenario=None, images_per_s=batch / ms * 1e3, host_ms=ms * 1.1)
    return {
        "name": name,
        "fullname": f"bench/x.py::{name}",
        "group": None,
        "params": {},
        "param": name,
        "extra_info": e,
        "options": {},
        "stats": {"median": ms * 1.1e-3},
    }


def synthetic(gpu="NVIDIA H100 80GB HBM3"):
    return {
        "machine_info": {
            "mbv2": {
                "gpu": {"name": gpu, "sm_count": 132},
                "measured": {"copy_gbps": 3000.0, "sgemm_gflops": 51000.0, "hgemm_gflops": 7e5},
                "measured_cpu": {"copy_gbps": 20.0, "sgemm_gflops": 200.0},
            }
        },
        "commit_info": {},
        "datetime": "2026-11-24T00:00:00",
        "version": "5",
        "benchmarks": [
            _bench("test_op[custom-op03-bs1]", "op", "custom", 1, 0.010),
            _bench("test_op[cudnn-op03-bs1]", "op", "cudnn", 1, 0.020),
            _bench("test_e2e[custom-eager-bs1]", "e2e", "custom", 1, 0.5),
            _bench("test_e2e[cudnn-eager-bs1]", "e2e", "cudnn", 1, 1.0),
            _bench("test_e2e[custom-eager-bs64]", "e2e", "custom", 64, 5.0),
        ],
    }


def test_report_on_a_cpu_bench_run(run_json, tmp_path):
    out = tmp_path / "report"
    text = write_report(run_json, str(out), baseline="cudnn")
    assert "## End to end" in text and "## Per layer" in text and "## Machine" in text
    assert "baseline 'cudnn' is not in this run" in text
    for png in ("e2e_latency.png", "roofline.png", "layers_bs1_fp32.png"):
        assert (out / png).stat().st_size > 1000, png
    assert (out / "report.md").read_text() == text


def test_report_cli(run_json, tmp_path, capsys):
    assert main(["report", run_json, "--out", str(tmp_path / "r")]) == 0
    assert "End to end" in capsys.readouterr().out


def test_report_speedups_ceilings_and_wins_on_synthetic_run():
    text, _ = build_report(synthetic(), baseline="cudnn")
    assert "2.00x" in text  # custom e2e bs1 over cudnn, and op 3
    assert "| 1 | fp32 | 1 | 1 (1/1 network ops) | 1 (1/1 network ops) |" in text  # custom wins its one layer
    # op 3: 1 GFLOP in 0.010 ms = 100 TFLOP/s > 51 TFLOP/s measured -> ceiling bound is compute, 196%
    assert "compute" in text


def test_compare_catches_a_planted_regression_and_passes_an_identical_pair(tmp_path, capsys):
    old = synthetic()
    new = copy.deepcopy(old)
    new["benchmarks"][1]["extra_info"]["device_ms"] *= 1.2  # cudnn op 3: +20%
    text, regressions = compare_runs(old, new, 0.05)
    assert [r["name"] for r in regressions] == ["bench/x.py::test_op[cudnn-op03-bs1]"]
    assert "REGRESSION" in text
    _, none = compare_runs(old, copy.deepcopy(old), 0.05)
    assert none == []
    # through the CLI: exit 1 on a regression, 0 on the identical pair, 0 when under the threshold
    po, pn = tmp_path / "old.json", tmp_path / "new.json"
    po.write_text(json.dumps(old))
    pn.write_text(json.dumps(new))
    assert main(["compare", str(po), str(pn), "--threshold", "5%"]) == 1
    assert main(["compare", str(po), str(po)]) == 0
    assert main(["compare", str(po), str(pn), "--threshold", "25%"]) == 0


def test_compare_on_the_real_run_against_itself(run_json):
    run = load_run(run_json)
    _, regressions = compare_runs(run, run, 0.05)
    assert regressions == []


def test_compare_refuses_different_gpus():
    with pytest.raises(MbvError, match="different machines"):
        compare_runs(synthetic(), synthetic("NVIDIA A100-SXM4-80GB"), 0.05)
    compare_runs(synthetic(), synthetic("NVIDIA A100-SXM4-80GB"), 0.05, allow_different_machine=True)


def test_user_errors_are_mbv_errors(tmp_path, capsys):
    with pytest.raises(MbvError, match="not found"):
        load_run(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MbvError, match="not JSON"):
        load_run(str(bad))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(MbvError, match="not a pytest-benchmark JSON"):
        load_run(str(other))
    assert main(["report", str(other)]) == 2
    assert "not a pytest-benchmark JSON" in capsys.readouterr().err
    with pytest.raises(MbvError, match="threshold"):
        from mbv2.report import parse_threshold

        parse_threshold("five")
    assert os.path.exists(str(bad))
