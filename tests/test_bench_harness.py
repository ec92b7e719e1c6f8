"""The benchmark suite on the CPU backends: a short filtered run writes a complete results JSON."""

from __future__ import annotations

import json

import pytest

from bench.harness import smoke_run

OP_KEYS = {
    "kind",
    "backend",
    "batch",
    "dtype",
    "graph",
    "device_ms",
    "timer",
    "layers",
    "fused_ops",
    "in_shape",
    "out_shape",
    "flops",
    "bytes",
    "gflops",
    "gbps",
    "backend_info",
    "describe",
}
E2E_KEYS = {
    "kind",
    "backend",
    "batch",
    "dtype",
    "graph",
    "device_ms",
    "host_ms",
    "images_per_s",
    "mode",
    "check",
    "timer",
    "backend_info",
    "flops",
}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    path, proc = smoke_run(str(tmp_path_factory.mktemp("bench")))
    assert proc.returncode == 0, f"bench run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
    with open(path) as f:
        return json.load(f), proc


def test_short_cpu_bench_writes_json_with_every_extra_info_field(smoke):
    run, _ = smoke
    benches = run["benchmarks"]
    kinds = {b["extra_info"]["kind"] for b in benches}
    assert kinds == {"op", "e2e"}
    for b in benches:
        e = b["extra_info"]
        need = OP_KEYS if e["kind"] == "op" else E2E_KEYS
        missing = need - set(e)
        assert not missing, f"{b['name']}: extra_info lacks {sorted(missing)}"
        assert e["backend"] in ("numpy", "ort")
        assert e["dtype"] in ("fp32", "tf32", "fp16")
        assert isinstance(e["graph"], bool)
        assert e["device_ms"] > 0
        assert e["timer"] == "host", "CPU backends have no CUDA events; device_ms must say it is host time"
        if e["kind"] == "op":
            assert e["flops"] > 0 and e["bytes"] > 0 and e["gflops"] > 0 and e["gbps"] > 0
            assert e["in_shape"][0] == e["batch"]
        else:
            assert e["check"]["reference"] == "ort-cpu" and e["check"]["rel_l2"] < e["check"]["tolerance"]
            assert e["images_per_s"] > 0


def test_scenarios_are_named_and_carry_percentiles(smoke):
    run, _ = smoke
    ss = [b["extra_info"] for b in run["benchmarks"] if b["extra_info"].get("scenario") == "single-stream"]
    off = [b["extra_info"] for b in run["benchmarks"] if b["extra_info"].get("scenario") == "offline"]
    assert ss and off
    for e in ss:
        assert e["batch"] == 1
        assert e["latency_p50_ms"] <= e["latency_p90_ms"] <= e["latency_p99_ms"]
    for e in off:
        assert e["images_per_s"] > 0 and e["batch"] > 1


def test_machine_info_on_cpu(smoke):
    run, _ = smoke
    m = run["machine_info"]["mbv2"]
    for key in ("gpu", "libraries", "git", "nvtx", "measured", "measured_cpu", "nvidia_smi_at_start", "backends"):
        assert key in m, key
    assert {"cudnn", "cublas", "cupy", "onnxruntime", "torch"} <= set(m["libraries"])
    assert "commit" in m["git"] and "dirty" in m["git"]
    assert m["measured_cpu"]["copy_gbps"] > 0 and m["measured_cpu"]["sgemm_gflops"] > 0
    if m["gpu"]["name"] is None:
        assert m["gpu"]["reason"]
        assert m["measured"]["copy_gbps"] is None and m["measured"]["reason"]
    else:
        assert m["gpu"]["sm_count"] > 0 and m["measured"]["copy_gbps"] > 0 and m["measured"]["sgemm_gflops"] > 0
    assert run["mbv2"]["backends"]["numpy"]["available"] is True


def test_skipped_backends_are_listed_with_reasons(smoke):
    run, proc = smoke
    for name, st in run["mbv2"]["backends"].items():
        if not st["available"]:
            assert st["reason"], name
    assert "[mbv2 bench]" in proc.stdout, "progress lines per backend/batch group are printed"


def test_no_nvtx_turns_ranges_off(tmp_path):
    path, proc = smoke_run(str(tmp_path), ("--no-nvtx",), k="test_op and op53 and numpy")
    assert proc.returncode == 0, proc.stdout[-2000:]
    with open(path) as f:
        run = json.load(f)
    assert run["machine_info"]["mbv2"]["nvtx"].startswith("off")


def test_rotation_spans_l2_when_the_working_set_fits():
    from mbv2.timing import rotation_count

    assert rotation_count(100 << 20, 50 << 20) == 1
    n = rotation_count(4 << 20, 50 << 20)
    assert n * (4 << 20) >= 2 * (50 << 20) or n == 16
    assert rotation_count(1 << 20, 0) == 1


class _Launch:
    def __init__(self, name):
        self.name = name


class _Recorder:
    """A stand-in for the custom backend's launch interface: launch_all, synchronize, a plan cache, tuner picks."""

    def __init__(self):
        self.ran = []
        self.synced = 0
        self.tuned = {"('gemm', 64)": "((64, 64, 4, 4), 'v8')"}
        self._plans = {8: type("P", (), {"launches": [_Launch("block0_v3"), _Launch("pool_v2")]})()}

    def launch_all(self, launches):
        self.ran.extend(lc.name for lc in launches)

    def synchronize(self):
        self.synced += 1


def test_launched_kernels_names_what_one_call_launches_and_restores_the_backend():
    from bench.harness import launched_kernels

    be = _Recorder()
    names = launched_kernels(be, lambda: (be.launch_all([_Launch("gemm_v8_32x64_4x4")]), be.launch_all([_Launch("r")])))
    assert names == ["gemm_v8_32x64_4x4", "r"]
    assert be.ran == names and be.synced == 1  # the launches still ran, and were waited for
    assert "launch_all" not in vars(be)  # the class's method is back
    be.launch_all([_Launch("after")])
    assert names == ["gemm_v8_32x64_4x4", "r"]  # no recording after the call


def test_launched_kernels_keeps_a_wrapper_already_on_the_instance():
    from bench.harness import launched_kernels

    be = _Recorder()
    seen = []
    be.launch_all = lambda launches: seen.extend(lc.name for lc in launches)
    wrapper = be.launch_all
    assert launched_kernels(be, lambda: be.launch_all([_Launch("k")])) == ["k"]
    assert seen == ["k"] and be.launch_all is wrapper


def test_launched_kernels_is_none_without_a_launch_interface():
    from bench.harness import launched_kernels

    assert launched_kernels(object(), lambda: None) is None


def test_plan_kernels_lists_the_planned_launches_and_the_tuner_picks():
    from bench.harness import plan_kernels

    be = _Recorder()
    got = plan_kernels(be, 8)
    assert got == {"launches": 2, "kernels": ["block0_v3", "pool_v2"], "tuned": dict(be.tuned)}
    assert plan_kernels(be, 64) == {}  # not planned at that batch
    assert plan_kernels(object(), 8) == {}


def test_spin_compiles_one_kernel_per_cupy_module(monkeypatch):
    """mbv2.timing.spin caches its kernel per CuPy module: a stand-in CuPy (the custom backend's CPU tests) gets its
    own kernel and never hands it to another module; the length goes in as nanoseconds."""
    import sys
    import types

    from mbv2 import timing

    def fake_cupy():
        mod = types.ModuleType("cupy")
        mod.calls = []

        class Kernel:
            def __init__(self, src, name):
                assert name == "mbv2_spin" and "globaltimer" in src
                self.mod = mod

            def __call__(self, grid, block, args):
                mod.calls.append((self.mod, int(args[0])))

        class Stream:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        mod.RawKernel = Kernel
        mod.uint64 = int
        mod.cuda = types.SimpleNamespace(get_current_stream=Stream)
        return mod

    a, b = fake_cupy(), fake_cupy()
    for mod, us in ((a, 5.0), (b, 7.5), (a, 2.0)):
        monkeypatch.setitem(sys.modules, "cupy", mod)
        timing.spin(us)
    assert a.calls == [(a, 5000), (a, 2000)] and b.calls == [(b, 7500)]
