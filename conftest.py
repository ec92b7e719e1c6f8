"""Shared fixtures: the default model, seeded inputs, backend parametrisation, the gpu marker."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from mbv2.gpu import gpu_status


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mbv2")
    group.addoption("--backends", default="", help="comma-separated backends to test/bench (default: all available)")
    group.addoption("--full", action="store_true", help="benchmarks: batch sizes 1, 8, 64, 256 (default 1 and 64)")
    group.addoption("--all-versions", action="store_true", help="benchmarks: time every custom kernel version")
    group.addoption("--compile", action="store_true", help="benchmarks: include torch.compile (slow to compile)")
    group.addoption("--no-nvtx", action="store_true", help="turn NVTX ranges off (to measure their cost)")
    group.addoption(
        "--shard",
        default="",
        metavar="I/N",
        help="run only shard I of N (1-based): every N-th collected test, starting at the I-th; the N shards of one "
        "collection partition it (scripts/test_gpu_shards.sh runs them in parallel, one GPU each)",
    )
    group.addoption(
        "--exclusive",
        default="all",
        choices=EXCLUSIVE_MODES,
        help="the tests marked exclusive_gpu (they read device-wide state, e.g. cudaMemGetInfo, and fail when another "
        "process shares the GPU): 'all' runs them with the rest, 'defer' leaves them out, 'only' runs just them. "
        "Applied after --shard, so a shard's defer and only runs together are that shard "
        "(scripts/test_gpu_shards.sh: the shards in parallel with defer, then each shard's only run alone)",
    )


def parse_shard(text: str) -> tuple[int, int] | None:
    """'I/N' -> (I, N) with 1 <= I <= N; '' -> None. A malformed value is a usage error, not an empty run."""
    if not text:
        return None
    i, sep, n = text.partition("/")
    if not sep or not i.strip().isdigit() or not n.strip().isdigit():
        raise pytest.UsageError(f"--shard wants I/N with whole numbers, e.g. 2/4; got {text!r}")
    i_, n_ = int(i), int(n)
    if n_ < 1 or not 1 <= i_ <= n_:
        raise pytest.UsageError(f"--shard {text}: need 1 <= I <= N")
    return i_, n_


def shard_items(items: list, index: int, count: int) -> tuple[list, list]:
    """(kept, deselected): the items at positions index - 1, index - 1 + count, ... of the collection order. Round
    robin spreads each file's expensive cases over the shards; the shards of one collection are disjoint and cover
    it."""
    kept = [it for k, it in enumerate(items) if k % count == index - 1]
    dropped = [it for k, it in enumerate(items) if k % count != index - 1]
    return kept, dropped


EXCLUSIVE_MODES = ("all", "defer", "only")


def exclusive_items(items: list, mode: str) -> tuple[list, list]:
    """(kept, deselected) for --exclusive: 'all' keeps every item, 'defer' the ones not marked exclusive_gpu, 'only'
    the marked ones. defer and only partition the items."""
    if mode not in EXCLUSIVE_MODES:
        raise pytest.UsageError(f"--exclusive wants one of {', '.join(EXCLUSIVE_MODES)}; got {mode!r}")
    if mode == "all":
        return list(items), []
    marked = [it.get_closest_marker("exclusive_gpu") is not None for it in items]
    want = mode == "only"
    return [it for it, m in zip(items, marked) if m == want], [it for it, m in zip(items, marked) if m != want]


SHARD = pytest.StashKey[tuple]()


def pytest_configure(config: pytest.Config) -> None:
    # checked here, before collection: a malformed --shard stops the run before any test is listed
    config.stash[SHARD] = parse_shard(config.getoption("--shard", default=""))
    if config.getoption("--no-nvtx", default=False):
        from mbv2 import nvtx

        nvtx.set_enabled(False)


@pytest.hookimpl(trylast=True)  # after -m / -k deselection, so the shards split what would run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.stash.get(SHARD, None)
    if shard is not None:
        kept, dropped = shard_items(items, *shard)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    kept, dropped = exclusive_items(items, config.getoption("--exclusive", default="all"))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    ok, reason = gpu_status()
    if ok:
        skip_custom(items)
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA GPU: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def runs_custom(item: pytest.Item) -> bool:
    """A gpu test that runs the custom backend: every gpu test of tests/test_custom_*.py, and the gpu tests
    parametrized with the backend name "custom" (the soak, NVTX and model-variant tests)."""
    if "gpu" not in item.keywords:
        return False
    if item.path.name.startswith("test_custom_"):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and any(isinstance(v, str) and v == "custom" for v in callspec.params.values())


def skip_custom(items: list) -> None:
    """On a GPU the custom backend cannot run on (impls/custom.py available(): compute capability below 9.0), its gpu
    tests skip with that reason; the other backends' gpu tests run."""
    if not any(runs_custom(it) for it in items):
        return
    from impls.custom import available

    ok, reason = available()
    if ok:
        return
    skip = pytest.mark.skip(reason=f"the custom backend is unavailable: {reason}")
    for item in items:
        if runs_custom(item):
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str | None:
    shard = config.stash.get(SHARD, None)
    return f"mbv2: shard {shard[0]}/{shard[1]} of the collected tests" if shard else None


@pytest.fixture(scope="session")
def net():
    """The embedded MobileNetV2-1.0 @ 224 (seed 0), imported through the ONNX importer."""
    from mbv2.model import default_network

    return default_network()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: fresh inputs per test, reproducible run to run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
