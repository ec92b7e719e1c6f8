"""scripts/cache_prefill.py (CPU only): the builds named in a cache listing, each compiled by the right builder with
the given nvcc, and the key it writes is the one the backend computes for that nvcc path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import cache_prefill  # noqa: E402

from impls import _custom_kernels as K  # noqa: E402

SIX = "exdwpw6_c36x16_t512_m3210z_s14x14_96_576_160_7x7_2_1_1100"
FIXED = "pwpool_c8_f49_320_1280_1"
FIVE = "exdwpw5_s2_c24_o32_t4x4_cc72_k2_f56_56_144_28_28_1_1_1_0_0"  # (fuse v43: its epoch twin)


def test_builds_of_a_listing(tmp_path):
    names = [
        f"cblock-sm90-{'a' * 16}.cubin",
        f"{SIX}-sm90-0123456789abcdef.cubin",
        f"{FIXED}-sm90-{'f' * 16}.cubin",
    ]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(names + names[:1]))  # a repeat counts once
    assert cache_prefill.builds_of(listing) == sorted([("cblock", "90"), (SIX, "90"), (FIXED, "90")])
    d = tmp_path / "kernels"
    d.mkdir()
    for n in names:
        (d / n).write_bytes(b"")
    assert cache_prefill.builds_of(d) == cache_prefill.builds_of(listing)
    listing.write_text("cblock.cubin")
    with pytest.raises(SystemExit, match="not a cached cubin"):
        cache_prefill.builds_of(listing)


def test_build_dispatches_to_the_backends_builders(monkeypatch):
    calls = []
    monkeypatch.setattr(K, "build_one", lambda *a: calls.append(("file", *a)))
    monkeypatch.setattr(K, "build_exdwpw6_spec", lambda *a: calls.append(("six", *a)))
    monkeypatch.setattr(K, "build_fixed", lambda *a: calls.append(("fixed", *a)))
    nvcc = "/usr/local/cuda/bin/nvcc"
    assert cache_prefill.build("cblock", "90a", nvcc) == "file"
    assert cache_prefill.build(SIX, "90", nvcc) == "exdwpw6"
    assert cache_prefill.build(FIXED, "90", nvcc) == "fixed"
    assert cache_prefill.build(SIX + "_st", "90", nvcc) == "skipped"
    base, modes, shape = K.exdwpw6_spec_parse(SIX)
    assert calls == [
        ("file", "cblock", "90", nvcc),
        ("six", base, modes, "90", nvcc, shape),
        ("fixed", "pwpool_c8", (49, 320, 1280, 1), "90", nvcc),
    ]
    assert base == "exdwpw6_c36x16_t512" and shape == (14, 14, 96, 576, 160, 7, 7, 2, 1, 1, 1, 0, 0)
    with pytest.raises(SystemExit, match="unknown build"):
        cache_prefill.build("no_such_kernel_f1_2", "90", nvcc)


def test_the_key_follows_the_nvcc_path(tmp_path, monkeypatch):
    """The cubin's name holds a key of the source, options, arch and the nvcc PATH string: the same build by another
    path to the same compiler is another file (why --nvcc must be the device's path)."""
    monkeypatch.setenv("MBV2_CACHE", str(tmp_path))
    seen = []

    def fake_run(cmd, **kw):
        Path(cmd[cmd.index("-o") + 1]).write_bytes(b"cubin")
        seen.append(cmd[0])
        return type("P", (), {"returncode": 0, "stderr": "", "stdout": ""})()

    monkeypatch.setattr(K.subprocess, "run", fake_run)
    a = K.build_one("add", "90", "/usr/local/cuda/bin/nvcc").path
    b = K.build_one("add", "90", "/usr/local/bin/nvcc").path
    assert a != b and a.name.startswith("add-sm90-") and b.name.startswith("add-sm90-")
    assert seen == ["/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc"]
    assert K.build_one("add", "90", "/usr/local/cuda/bin/nvcc").path == a and len(seen) == 2  # cached: not rebuilt


def test_builds_of_a_run_and_their_hand_off_twins(tmp_path, monkeypatch):
    import json

    run = {"benchmarks": [
        {"extra_info": {"kernels": ["block0_v4_c32_p16", SIX, FIXED, "linear_gemv_v5"]}},
        {"extra_info": {"kernels": [SIX + K.FLAG_SUFFIX, "gemm_v11_x"]}},  # (a v43 plan names the twin)
        {"extra_info": {}},
    ]}  # fmt: skip
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    assert cache_prefill.builds_of_run(path, "90", False) == [(SIX, "90"), (FIXED, "90")]
    assert cache_prefill.builds_of_run(path, "90", True) == [(SIX, "90"), (SIX + K.FLAG_SUFFIX, "90"), (FIXED, "90")]
    run["benchmarks"][2]["extra_info"]["kernels"] = [FIVE + K.EPOCH_SUFFIX]
    path.write_text(json.dumps(run))
    assert (FIVE, "90") in cache_prefill.builds_of_run(path, "90", False)
    assert {(FIVE, "90"), (FIVE + K.EPOCH_SUFFIX, "90"), (FIVE + K.FLAG_SUFFIX, "90")} <= set(
        cache_prefill.builds_of_run(path, "90", True))  # fmt: skip
    calls = []
    monkeypatch.setattr(K, "build_exdwpw6_spec", lambda *a, **kw: calls.append((a, kw)))
    monkeypatch.setattr(K, "build_fixed", lambda *a, **kw: calls.append((a, kw)))
    nvcc = "/usr/local/cuda/bin/nvcc"
    assert cache_prefill.build(SIX + K.FLAG_SUFFIX, "90", nvcc) == "exdwpw6_flags"
    assert cache_prefill.build(SIX, "90", nvcc) == "exdwpw6"
    assert cache_prefill.build(FIVE + K.EPOCH_SUFFIX, "90", nvcc) == "fixed_epoch"
    assert cache_prefill.build(FIVE + K.FLAG_SUFFIX, "90", nvcc) == "fixed_flags"  # fuse v44
    assert cache_prefill.build(FIVE, "90", nvcc) == "fixed"
    base, modes, shape = K.exdwpw6_spec_parse(SIX)
    assert calls[:2] == [((base, modes, "90", nvcc, shape), {"flags": True}), ((base, modes, "90", nvcc, shape), {})]
    assert calls[2:] == [((*K.fixed_parse(FIVE), "90", nvcc), kw) for kw in ({"epoch": True}, {"flags": True}, {})]
    with pytest.raises(SystemExit, match="unknown build"):
        cache_prefill.build("pwpool_c8_hf", "90", nvcc)
