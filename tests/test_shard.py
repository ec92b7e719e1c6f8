"""`--shard I/N` (conftest.py): the N shards of one collection are disjoint and cover it, after -m / -k."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests/test_layers.py"


def _collect(*args: str, target: str = TARGET) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", target, "--collect-only", "-q", "-p", "no:cacheprovider", *args],
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


def _run_shard_script(tmp_path: Path, **env_extra: str) -> tuple[Path, subprocess.CompletedProcess]:
    """scripts/test_gpu_shards.sh in 3 shards with a stand-in nvidia-smi (2 GPUs): (its OUT, the finished process)."""
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
        "SHARDS": "3",
        "MBV2_CACHE": str(tmp_path / "cache"),
        **env_extra,
    }
    proc = subprocess.run(
        ["bash", "scripts/test_gpu_shards.sh", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    return out, proc


def test_gpu_shard_script_runs_every_shard(tmp_path: Path) -> None:
    """scripts/test_gpu_shards.sh with a stand-in nvidia-smi (2 GPUs) on a CPU test file: every shard runs, the
    shards' passes add up to the whole file, and the logs come back as a tarball."""
    out, proc = _run_shard_script(tmp_path, MARK="not gpu", TESTS=TARGET)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rc, everything, _ = _collect("-m", "not gpu")
    passed = 0
    for i in (1, 2, 3):
        assert f"[shard {i}/3 rc=0" in proc.stdout, proc.stdout
        log = (out / "shards" / f"shard{i}.log").read_text()
        passed += int(log.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed == len(everything) > 0
    assert (out / "shards.tgz").stat().st_size > 0


# -- --exclusive (session 31): tests that read device-wide state run alone -----------------------------------------
EXCL_TARGET = "tests/test_cudnn.py"  # its leak test is marked exclusive_gpu (cudaMemGetInfo)
EXCL_TEST = "test_prepare_close_cycles_leak_no_device_memory"


def _collect_in(target: str, *args: str) -> tuple[int, list[str], str]:
    return _collect(*args, target=target)


def test_exclusive_items_defer_and_only_partition() -> None:
    import conftest

    class Item:
        def __init__(self, marked: bool) -> None:
            self.marked = marked

        def get_closest_marker(self, name: str):
            return object() if name == "exclusive_gpu" and self.marked else None

    items = [Item(m) for m in (False, True, False, False, True)]
    assert conftest.exclusive_items(items, "all") == (items, [])
    defer, rest = conftest.exclusive_items(items, "defer")
    only, rest2 = conftest.exclusive_items(items, "only")
    assert defer == [items[0], items[2], items[3]] and only == [items[1], items[4]]
    assert rest == only and rest2 == defer
    with pytest.raises(pytest.UsageError, match="--exclusive"):
        conftest.exclusive_items(items, "first")


def test_exclusive_splits_each_shard() -> None:
    rc, everything, out = _collect_in(EXCL_TARGET)
    assert rc == 0 and any(EXCL_TEST in t for t in everything), out
    rc, only, out = _collect_in(EXCL_TARGET, "--exclusive", "only")
    assert rc == 0 and len(only) == 1 and EXCL_TEST in only[0], out
    rc, defer, out = _collect_in(EXCL_TARGET, "--exclusive", "defer")
    assert rc == 0 and sorted(defer + only) == sorted(everything), out
    for i in (1, 2, 3):  # after --shard: a shard's defer and only runs together are that shard
        _, shard, _ = _collect_in(EXCL_TARGET, "--shard", f"{i}/3")
        _, d, _ = _collect_in(EXCL_TARGET, "--shard", f"{i}/3", "--exclusive", "defer")
        rc, o, out = _collect_in(EXCL_TARGET, "--shard", f"{i}/3", "--exclusive", "only")
        assert sorted(d + o) == sorted(shard) and not set(d) & set(o), (i, out)


def test_bad_exclusive_is_a_usage_error() -> None:
    rc, ids, out = _collect_in(EXCL_TARGET, "--exclusive", "first")
    assert rc == 4 and not ids and "--exclusive" in out, out


def test_gpu_shard_script_runs_exclusive_tests_alone_after(tmp_path: Path) -> None:
    """The shard script on a file with an exclusive_gpu test (the GPU hidden: MBV2_HIDE_GPU, so every gpu test
    skips): the parallel shards leave it out, one shard runs it alone afterwards, and the counts add up."""
    out, proc = _run_shard_script(tmp_path, MARK="gpu", TESTS=EXCL_TARGET, MBV2_HIDE_GPU="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" exclusive rc=0 ") == 1, proc.stdout
    _, gpu_tests, _ = _collect_in(EXCL_TARGET, "-m", "gpu")
    skipped = {"parallel": 0, "alone": 0}
    for log in sorted((out / "shards").glob("shard*.log")):
        last = log.read_text().strip().splitlines()[-1]
        if " skipped" in last:
            skipped["alone" if log.name.endswith("x.log") else "parallel"] += int(last.split(" skipped")[0].split()[-1])
    assert skipped == {"parallel": len(gpu_tests) - 1, "alone": 1} and len(gpu_tests) > 2, skipped


@pytest.mark.parametrize("value, hidden", [("1", True), ("yes", True), ("0", False), ("", False)])
def test_hide_gpu(monkeypatch, value: str, hidden: bool) -> None:
    from mbv2.gpu import gpu_status

    monkeypatch.setenv("MBV2_HIDE_GPU", value)
    gpu_status.cache_clear()
    try:
        status = gpu_status()
    finally:
        gpu_status.cache_clear()  # the next caller asks the machine again
    assert (status == (False, "MBV2_HIDE_GPU is set")) == hidden, status
