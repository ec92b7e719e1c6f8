"""Session 40's scripts/tr_stamps.py on the host: which launches of the H100's committed batch-1 plan it stamps (the
distinct exdwpw6 fixed builds with one cluster per tile, twins counted as their base builds) and the configuration it
rebuilds each at, and the network block each shape names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mbv2.model import default_network

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import tr_stamps  # noqa: E402


def _committed_bs1_names() -> list[str]:
    run = json.loads((ROOT / "results/h100/run.json").read_text())
    bench = next(b for b in run["benchmarks"] if b["name"] == "test_e2e[custom-fp32-graph-bs1]")
    return bench["extra_info"]["kernels"]


def test_configs_of_the_committed_plan() -> None:
    names = _committed_bs1_names()
    got = tr_stamps.configs_of(names)
    six = [n for n in names if n.startswith("exdwpw6")]
    assert len(six) == 13 and len(got) < len(six)  # the repeated builds once each
    for base, cfg, shape in got:
        ch, tr, cl, nt = cfg[:4]
        assert f"exdwpw6_c{ch}x{cl}" in base or (cl == 8 and f"exdwpw6_c{ch}_" in base), base
        assert shape[3] == ch * cl and shape[8] == tr and nt in (256, 512), (base, cfg, shape)
        assert any(n.startswith(base) for n in six)
    # the 7x7 launches (960 expanded channels on 5 clusters of 8) are left out; 28x28 and 14x14 stay
    assert {s[0] for _, _, s in got} == {28, 14}, got
    assert [b for b, _, _ in got] == sorted({b for b, _, _ in got}, key=[b for b, _, _ in got].index)


def test_block_layers_finds_each_shape() -> None:
    net = default_network()
    for _, _, shape in tr_stamps.configs_of(_committed_bs1_names()):
        ex, dw, pw = tr_stamps.block_layers(net, shape)
        assert (ex.layer.in_channels, ex.layer.out_channels, pw.layer.out_channels) == tuple(shape[2:5])
        assert dw.layer.stride == shape[7]
    with pytest.raises(SystemExit, match="no block"):
        tr_stamps.block_layers(net, (5, 5, 1, 2, 3, 5, 5, 1))


def test_trigger_base() -> None:
    """K.trigger_base: an early-trigger or exit twin's name -> its base build; any other name (a flag or staged twin, a
    plain build) as it is."""
    from impls import _custom_kernels as K

    names = _committed_bs1_names()
    twins = [n for n in names if K.twin_parse(n)[1] in (K.TRIGGER_SUFFIX, K.EXIT_SUFFIX)]
    assert twins, names
    for n in twins:
        base = K.trigger_base(n)
        assert base != n and n.startswith(base) and K.twin_parse(base)[1] is None
    others = [n for n in names if K.twin_parse(n)[1] not in (K.TRIGGER_SUFFIX, K.EXIT_SUFFIX)]
    assert all(K.trigger_base(n) == n for n in others) and others
