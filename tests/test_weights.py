"""The text export of the parameters round-trips bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from mbv2.cli import main
from mbv2.errors import MbvError
from mbv2.model import model_bytes
from mbv2.weights import compare_weights, initializers, read_weights, write_weights


def test_round_trip_is_bit_identical(tmp_path, rng) -> None:
    tensors = initializers(model_bytes(width_mult=0.35, resolution=64))
    tensors["odd/name:0"] = rng.standard_normal((3, 2)).astype(np.float32) * 1e-30  # tiny values, odd name
    tensors["ints"] = np.array([0, -1, 2**40], np.int64)
    write_weights(tensors, str(tmp_path))
    first = (tmp_path / "odd_name_0.txt").read_text().splitlines()
    assert first[0] == "3 2" and len(first) == 7
    assert compare_weights(tensors, read_weights(str(tmp_path))) == []


def test_cli_weights_out_and_load(tmp_path, capsys) -> None:
    assert main(["weights", "--out", str(tmp_path)]) == 0
    assert main(["weights", "--load", str(tmp_path)]) == 0
    assert "bit-identical" in capsys.readouterr().out
    f = next(p for p in tmp_path.iterdir() if p.name.endswith("weight.txt"))
    lines = f.read_text().splitlines()
    lines[1] = repr(float(lines[1]) + 1.0)
    f.write_text("\n".join(lines) + "\n")
    assert main(["weights", "--load", str(tmp_path)]) == 1


def test_truncated_weight_file_is_refused(tmp_path) -> None:
    write_weights({"w": np.ones((2, 3), np.float32)}, str(tmp_path))
    (tmp_path / "w.txt").write_text("2 3\n1\n1\n")
    with pytest.raises(MbvError, match="2 values, expected 6"):
        read_weights(str(tmp_path))
