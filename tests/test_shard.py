"""`--shard I/N` (conftest.py): the N shards of one collection are disjoint and cover it, after -m / -k."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests/test_layers.py"


def _collect(*args: str) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    return proc.returncode, ids, proc.stdout + proc.stderr


def test_shards_partition_the_collection() -> None:
    rc, everything, out = _collect()
    assert rc == 0, out
    assert len(everything) >= 6, out  # the partition below would be trivial otherwise
    seen: list[str] = []
    for i in (1, 2, 3):
        rc, ids, out = _collect("--shard", f"{i}/3")
        assert rc == 0, out
        assert f"{len(ids)}/{len(everything)} tests collected" in out
        assert abs(len(ids) - len(everything) / 3) < 1, (i, len(ids), len(everything))
        seen += ids
    assert sorted(seen) == sorted(everything)
    assert len(set(seen)) == len(seen)


def test_shards_split_what_k_selects() -> None:
    rc, selected, out = _collect("-k", "conv")
    assert rc == 0 and selected, out
    rc1, a, out1 = _collect("-k", "conv", "--shard", "1/2")
    rc2, b, out2 = _collect("-k", "conv", "--shard", "2/2")
    assert rc1 == rc2 == 0, out1 + out2
    assert sorted(a + b) == sorted(selected) and not set(a) & set(b)
    assert len(a) - len(b) in (0, 1)  # balanced over the selection, not over the whole file


@pytest.mark.parametrize("bad", ["3", "0/2", "3/2", "a/b", "1/0", "1/-2"])
def test_bad_shard_is_a_usage_error(bad: str) -> None:
    rc, ids, out = _collect("--shard", bad)
    assert rc == 4 and not ids, out  # pytest's usage-error exit, never an empty pass
    assert "--shard" in out


def test_gpu_shard_script_runs_every_shard(tmp_path: Path) -> None:
    """scripts/test_gpu_shards.sh with a stand-in nvidia-smi (2 GPUs) on a CPU test file: every shard runs, the
    shards' passes add up to the whole file, and the logs come back as a tarball."""
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text(
        '#!/bin/sh\n[ "$1" = -L ] && { echo "GPU 0: stand-in"; echo "GPU 1: stand-in"; exit 0; }\necho stand-in\n'
    )
    smi.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    env = {
        "PATH": f"{fake}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MARK": "not gpu",
        "TESTS": TARGET,
        "SHARDS": "3",
        "MBV2_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        ["bash", "scripts/test_gpu_shards.sh", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rc, everything, _ = _collect("-m", "not gpu")
    passed = 0
    for i in (1, 2, 3):
        assert f"[shard {i}/3 rc=0" in proc.stdout, proc.stdout
        log = (out / "shards" / f"shard{i}.log").read_text()
        passed += int(log.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed == len(everything) > 0
    assert (out / "shards.tgz").stat().st_size > 0
