"""The CLI: commands, JSON output, verification, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

import impls
from mbv2.cli import main
from mbv2.model import ExportOptions, build_model


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("m") / "small.onnx"
    assert main(["export", "--out", str(path), "--width-mult", "0.35", "--resolution", "64"]) == 0
    return str(path)


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    assert err[0].startswith("mbv2: error: ")
    return err[0]


def test_export_is_deterministic_and_checks(tmp_path) -> None:
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    for p in (a, b):
        assert main(["export", "--out", str(p), "--width-mult", "0.5", "--resolution", "96", "--seed", "7"]) == 0
    assert a.read_bytes() == b.read_bytes()
    onnx.checker.check_model(onnx.load(str(a)))


def test_run_json_has_the_documented_fields(small_onnx, capsys) -> None:
    assert main(["run", "--model", small_onnx, "--backend", "numpy", "--batch", "3", "--verify", "ort", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("rel_l2", "max_abs", "top1_agree", "latency_ms", "backend", "batch", "dtype", "model"):
        assert key in out
    assert out["batch"] == 3 and out["backend"] == "numpy" and out["dtype"] == "fp32"
    assert out["rel_l2"] < 1e-4 and out["top1_agree"] == 1.0
    assert len(out["top5"]) == 3 and len(out["top5"][0]) == 5


def test_run_text_prints_top5_per_image_and_latency(small_onnx, capsys) -> None:
    assert main(["run", "--model", small_onnx, "--backend", "ort", "--batch", "2", "--verify", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "image 0: top-5" in out and "image 1: top-5" in out and "latency" in out and "PASS" in out


def test_verify_fails_with_nonzero_exit_when_logits_are_wrong(small_onnx, capsys, monkeypatch) -> None:
    from impls.numpy_ref import NumpyBackend

    real = NumpyBackend.linear
    monkeypatch.setattr(NumpyBackend, "linear", lambda self, x, layer: real(self, x, layer) * 1.01)
    assert main(["run", "--model", small_onnx, "--backend", "numpy", "--verify", "ort"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_input_file_round_trip(small_onnx, tmp_path, capsys) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", "--model", small_onnx, "--backend", "numpy", "--input", str(tmp_path / "x.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["batch"] == 2


def _bad_input(tmp_path, name: str, arr) -> str:
    p = tmp_path / f"{name}.npy"
    np.save(p, arr)
    return str(p)


@pytest.mark.parametrize(
    "case,make,message",
    [
        ("wrong-shape", lambda: np.zeros((1, 3, 32, 32), np.float32), r"input shape \(1, 3, 32, 32\) does not match"),
        ("wrong-rank", lambda: np.zeros((3, 64, 64), np.float32), r"input has rank 3"),
        ("wrong-dtype", lambda: np.zeros((1, 3, 64, 64), np.int64), r"input dtype is int64, expected float32"),
        ("batch-0", lambda: np.zeros((0, 3, 64, 64), np.float32), r"batch must be >= 1, got 0"),
        (
            "nan",
            lambda: np.where(np.arange(3 * 64 * 64).reshape(1, 3, 64, 64) == 100, np.nan, 1).astype(np.float32),
            r"1 NaN/Inf value\(s\); first at index \(0, 0, 1, 36\)",
        ),
        (
            "inf",
            lambda: np.full((1, 3, 64, 64), np.inf, np.float32),
            r"NaN/Inf value\(s\); first at index \(0, 0, 0, 0\)",
        ),
    ],
)
def test_bad_input_file_is_refused_in_one_line(small_onnx, tmp_path, capsys, case, make, message) -> None:
    path = _bad_input(tmp_path, case, make())
    assert main(["run", "--model", small_onnx, "--backend", "numpy", "--input", path]) == 2
    line = error_line(capsys)
    import re

    assert re.search(message, line), line


@pytest.mark.parametrize("batch", ["0", "-3"])
def test_nonpositive_batch_is_refused(small_onnx, capsys, batch) -> None:
    assert main(["run", "--model", small_onnx, "--backend", "numpy", "--batch", batch]) == 2
    assert f"batch must be >= 1, got {batch}" in error_line(capsys)


def test_bad_model_files_are_refused_in_one_line(tmp_path, small_onnx, capsys) -> None:
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(open(small_onnx, "rb").read()[:5000])
    text = tmp_path / "text.onnx"
    text.write_text("this is a text file\n")
    cases = {
        str(tmp_path / "missing.onnx"): "model file not found",
        str(empty): "model file is empty",
        str(trunc): "not a readable ONNX model",
        str(text): "not a readable ONNX model",
    }
    for path, message in cases.items():
        assert main(["topology", "--model", path]) == 2
        assert message in error_line(capsys)


def test_unsupported_op_model_is_refused_in_one_line(tmp_path, capsys) -> None:
    m = build_model(ExportOptions(width_mult=0.35, resolution=64))
    for n in m.graph.node:
        if n.op_type == "GlobalAveragePool":
            n.op_type = "GlobalMaxPool"
    path = tmp_path / "maxpool.onnx"
    path.write_bytes(m.SerializeToString())
    assert main(["run", "--model", str(path), "--backend", "numpy"]) == 2
    assert "(GlobalMaxPool): unsupported op type GlobalMaxPool; supported:" in error_line(capsys)


def test_unknown_and_unavailable_backends(small_onnx, capsys, monkeypatch) -> None:
    assert main(["run", "--model", small_onnx, "--backend", "tpu"]) == 2
    assert "unknown backend 'tpu'; known backends: numpy, ort, custom, cudnn, torch" in error_line(capsys)
    monkeypatch.setattr(impls, "available", lambda name: (False, "no GPU here (test)"))
    assert main(["run", "--model", small_onnx, "--backend", "cudnn"]) == 2
    assert "backend 'cudnn' is not available: no GPU here (test)" in error_line(capsys)


def test_backends_lists_all_five_with_reasons(capsys) -> None:
    assert main(["backends", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["backend"] for r in rows] == ["numpy", "ort", "custom", "cudnn", "torch"]
    assert rows[0]["available"] and rows[1]["available"]
    assert all(r["available"] or r["reason"] for r in rows)


def test_debug_shows_the_traceback(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mbv2", "--debug", "topology", "--model", str(tmp_path / "no.onnx")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "mbv2", "topology", "--model", str(tmp_path / "no.onnx")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_picks_lists_writes_and_refuses(tmp_path, capsys) -> None:
    """`python -m mbv2 picks RUN_JSON`: lists the benchmarks with autotuner picks; --bench NAME (or its fullname)
    --out writes that one's mapping, which the custom backend loads back unchanged (impls.custom.load_tune_picks); an
    unknown name, a file without picks and a file that is no run are refused in one line (exit 2)."""
    from impls.custom import load_tune_picks

    a = {"('gemm', 'v11', True, 3136, 24, 96, 1, 1, False, False)": "((32, 64, 4, 4), 'v8')"}
    b = {"('exdwpw6', (1, 14, 14, 64), 384, 64, 1, True, True, True, False)": "(24, 2, 16, 512)"}
    run = {
        "machine_info": {"mbv2": {"git": {"commit": "abc1234"}}},
        "benchmarks": [
            {"name": "test_e2e[custom-fp32-graph-bs1]", "fullname": "b.py::x1", "extra_info": {"tuned": a}},
            {"name": "test_e2e[custom-fp32-graph-bs8]", "fullname": "b.py::x8", "extra_info": {"tuned": b}},
            {"name": "test_e2e[cudnn-fp32-graph-bs1]", "fullname": "b.py::c1", "extra_info": {}},
        ],
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    assert main(["picks", str(path)]) == 0
    out = capsys.readouterr().out
    assert "test_e2e[custom-fp32-graph-bs1]  (1 picks)" in out and "bs8" in out and "cudnn" not in out, out
    dest = tmp_path / "picks.json"
    assert main(["picks", str(path), "--bench", "b.py::x8", "--out", str(dest)]) == 0
    assert "wrote 1 picks of test_e2e[custom-fp32-graph-bs8]" in capsys.readouterr().out
    assert load_tune_picks(str(dest)) == b
    assert main(["picks", str(path), "--bench", "test_e2e[custom-fp32-graph-bs1]"]) == 0
    assert json.loads(capsys.readouterr().out) == a
    assert main(["picks", str(path), "--bench", "graph-bs1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no benchmark named 'graph-bs1'" in err and "custom-fp32-graph-bs1" in err, err
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": [run["benchmarks"][2]]}))
    assert main(["picks", str(empty)]) == 2 and "no benchmark recorded" in capsys.readouterr().err
    notrun = tmp_path / "notrun.json"
    notrun.write_text("[1, 2]")
    assert main(["picks", str(notrun)]) == 2 and "not a pytest-benchmark run" in capsys.readouterr().err
    assert main(["picks", str(tmp_path / "missing.json")]) == 2 and "no such file" in capsys.readouterr().err
