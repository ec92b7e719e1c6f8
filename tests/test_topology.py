"""The seed's Step 2 listing and the census."""

from __future__ import annotations

from mbv2.cli import main


def test_listing_matches_the_seed(net) -> None:
    lines = net.listing().splitlines()
    assert lines[:3] == ["-----", "MobileNetV2", "-----"]
    entries = lines[3:-2]
    assert len(entries) == 99
    seed = {
        0: "Conv2d(3, 32, 3, 2, 1, 1)",
        1: "ReLU6",
        2: "Conv2d(1, 32, 3, 1, 1, 32)",
        4: "Conv2d(32, 16, 1, 1, 0, 1)",
        5: "Conv2d(16, 96, 1, 1, 0, 1)",
        7: "Conv2d(1, 96, 3, 2, 1, 96)",
        9: "Conv2d(96, 24, 1, 1, 0, 1)",
        10: "Conv2d(24, 144, 1, 1, 0, 1)",
        12: "Conv2d(1, 144, 3, 1, 1, 144)",
        14: "Conv2d(144, 24, 1, 1, 0, 1)",
        15: "ResidualAdd(Conv2d(96, 24, 1, 1, 0, 1))",
        86: "Conv2d(1, 960, 3, 1, 1, 960)",
        88: "Conv2d(960, 160, 1, 1, 0, 1)",
        89: "ResidualAdd(ResidualAdd(Conv2d(576, 160, 1, 1, 0, 1)))",
        90: "Conv2d(160, 960, 1, 1, 0, 1)",
        94: "Conv2d(960, 320, 1, 1, 0, 1)",
        95: "Conv2d(320, 1280, 1, 1, 0, 1)",
        96: "ReLU6",
        97: "GlobalAveragePool",
        98: "Linear(1280, 1000)",
    }
    for i, text in seed.items():
        assert entries[i] == f"{i}: {text}"
    assert lines[-1] == "Conv2d=52 ReLU6=35 ResidualAdd=10 GlobalAveragePool=1 Linear=1"


def test_fused_listing(net) -> None:
    text = net.listing(fused=True)
    assert "0: Conv2d(3, 32, 3, 2, 1, 1) + ReLU6  [layers 0-1]" in text
    assert "8: Conv2d(144, 24, 1, 1, 0, 1) + ResidualAdd(skip from layer 9)  [layers 14-15]" in text
    assert text.splitlines()[-1].endswith("-> 54 fused ops")


def test_cli_topology_prints_99_entries_and_census(capsys) -> None:
    assert main(["topology"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "Conv2d=52 ReLU6=35 ResidualAdd=10 GlobalAveragePool=1 Linear=1"
    assert out[-3] == "98: Linear(1280, 1000)"
