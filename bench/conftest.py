"""Benchmark plumbing: options, machine info in every JSON, backend instances, progress lines.

The root conftest.py registers --backends --full --all-versions --compile --no-nvtx; this one adds
--dtypes and wires them to the harness.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from bench.harness import BackendPool, statuses

_CONFIG: list[pytest.Config] = []  # the session's config, for hooks that are not given it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mbv2-bench")
    group.addoption(
        "--dtypes",
        default="fp32",
        help="benchmarks: comma-separated dtypes (fp32,tf32,fp16) or 'all' (each backend's own)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--no-nvtx", default=False):
        from mbv2 import nvtx

        nvtx.set_enabled(False)
    config._mbv2_failed = []  # type: ignore[attr-defined]
    _CONFIG[:] = [config]


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for s in statuses(config):
        lines.append(f"mbv2 backend {s.name}: " + ("available" if s.ok else f"SKIPPED: {s.reason}"))
    from mbv2 import nvtx

    lines.append(f"mbv2 nvtx: {nvtx.status()}")
    return lines


# -- machine info in every JSON ---------------------------------------------------------------------
_MACHINE: dict[str, Any] = {}


def machine_record() -> dict[str, Any]:
    if not _MACHINE:
        from mbv2.machine import collect

        _MACHINE.update(collect(measure=True))
    return _MACHINE


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    rec = dict(machine_record())
    rec["backends"] = {s.name: {"available": s.ok, "reason": s.reason} for s in statuses(config)}
    machine_info["mbv2"] = rec


def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: dict[str, Any]) -> None:
    """pytest-benchmark reads git in the working directory; MBV2_GIT_COMMIT (set by `make bench` from the
    checkout) wins, since a copied tree on a GPU machine may carry a stale .git."""
    env_commit = os.environ.get("MBV2_GIT_COMMIT")
    if env_commit:
        commit_info["id"] = env_commit
        dirty = os.environ.get("MBV2_GIT_DIRTY")
        commit_info["dirty"] = None if dirty is None else dirty.lower() in ("1", "true", "yes")
        commit_info["source"] = "MBV2_GIT_COMMIT / MBV2_GIT_DIRTY environment"


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    output_json["mbv2"] = {
        "format": 1,
        "backends": {s.name: {"available": s.ok, "reason": s.reason} for s in statuses(config)},
        "failed": list(getattr(config, "_mbv2_failed", [])),
        "options": {
            k: config.getoption(k, default=None)
            for k in ("--backends", "--full", "--all-versions", "--compile", "--no-nvtx", "--dtypes")
        },
    }


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def backend_pool(net):
    pool = BackendPool(net)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def ort_reference(net):
    """ONNX Runtime (CPU provider) logits of the shared input, per batch: the e2e correctness check."""
    import impls
    from bench.harness import INPUT_SEED
    from mbv2.network import random_input

    cache: dict[int, Any] = {}
    be = impls.create("ort", device="cpu")
    be.prepare(net)

    def get(batch: int):
        if batch not in cache:
            cache[batch] = be.run(random_input(net, batch, seed=INPUT_SEED))
        return cache[batch]

    yield get
    be.close()


@pytest.fixture(scope="session")
def machine_ceilings() -> dict[str, Any]:
    return machine_record()


# -- progress: one line per backend/batch group -----------------------------------------------------
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups: dict[str, str] = {}
    for item in items:
        callspec = getattr(item, "callspec", None)
        case = callspec.params.get("case") if callspec else None
        group = getattr(case, "group", None)
        if group is not None:
            groups[item.nodeid] = group
    config._mbv2_groups = groups  # type: ignore[attr-defined]


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    """Outside output capture (unlike setup): a line when the backend/batch group changes."""
    config = _CONFIG[0] if _CONFIG else None
    if config is None:
        return
    group = getattr(config, "_mbv2_groups", {}).get(nodeid)
    if group is None or getattr(config, "_mbv2_last_group", None) == group:
        return
    config._mbv2_last_group = group  # type: ignore[attr-defined]
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write("\n" if getattr(tr, "currentfspath", None) or tr.verbosity < 0 else "")
        tr.write_line(f"[mbv2 bench] {group}")


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    if call.when == "call" and call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception):
        item.config._mbv2_failed.append(  # type: ignore[attr-defined]
            {
                "test": item.nodeid,
                "error": str(call.excinfo.value).splitlines()[0][:500]
                if str(call.excinfo.value)
                else call.excinfo.typename,
            }
        )


@pytest.fixture(scope="session", autouse=True)
def _machine_at_start():
    """Clocks and ceilings measured before the first benchmark, not after the GPU has warmed up."""
    machine_record()
