"""scripts/handoff_probe.py on the host: its reference chain, and its kernels compile (nvcc, sm_90) without spills,
with the acquire / release hand-off and the PDL instructions where each variant needs them."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from impls import _custom_kernels as K

ROOT = Path(__file__).resolve().parent.parent


def _probe():
    spec = importlib.util.spec_from_file_location("handoff_probe", ROOT / "scripts/handoff_probe.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_is_the_halo_sum_chain() -> None:
    hp = _probe()
    rng = np.random.default_rng(1)
    x0 = rng.integers(0, 1 << 20, (5, 7), dtype=np.uint32)
    x = x0.astype(np.int64)
    for _ in range(3):
        x = np.stack([x[max(t - 1, 0)] + x[t] + x[min(t + 1, 4)] + 1 for t in range(5)]) % (1 << 32)
    assert np.array_equal(hp.reference(x0, 3), x.astype(np.uint32))


def test_probe_kernels_compile(tmp_path: Path) -> None:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the probe's kernels")
    src = tmp_path / "probe.cu"
    src.write_text(_probe().SRC)
    out = subprocess.run([nvcc, "-std=c++17", "-arch=sm_90", "-cubin", "-Xptxas", "-v", "-o", str(tmp_path / "p.cubin"),
                          str(src)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "spill" in out.stderr and not re.search(r"[1-9]\d* bytes spill", out.stderr)
    ptx = subprocess.run([nvcc, "-std=c++17", "-arch=sm_90", "-ptx", "-o", "-", str(src)], capture_output=True,
                         text=True, timeout=300).stdout  # fmt: skip
    bodies = dict(re.findall(r"\.entry (step_\w+)\((.*?)\n}\n", ptx, re.S))
    assert set(bodies) == {f"step_{v}" for v in _probe().VARIANTS}
    for name, body in bodies.items():
        flag = "flag" in name or name == "step_persist"
        assert ("ld.acquire.gpu" in body) == flag and ("red.release.gpu" in body) == flag, name
        assert ("griddepcontrol.wait" in body) == (name in ("step_wait_end", "step_wait_early")), name
        assert ("griddepcontrol.launch_dependents" in body) == (name not in ("step_plain", "step_persist")), name
        if name in ("step_wait_end", "step_wait_early"):  # the trigger after the wait: before the work or after it
            at, wait = body.index("griddepcontrol.launch_dependents"), body.index("griddepcontrol.wait")
            first_store = body.index("st.global")
            assert wait < at and (at < first_store) == (name == "step_wait_early"), name


class _Arr:
    def __init__(self, ptr: int) -> None:
        self.data = type("D", (), {"ptr": ptr})()
        self.itemsize = 4


@pytest.mark.parametrize("var", ["plain", "wait_end", "wait_early", "flag_end", "flag_start", "persist"])
def test_chain_launch_arguments(var: str) -> None:
    """Launch k reads X[k] and writes X[k + 1], stages weight slice k % 4, waits on C[k - 1] (none for the first) and
    counts on C[k]; PDL from the second launch on, except in `plain`; `persist` is one cooperative launch."""
    hp = _probe()
    L, T, CPT, E, pf = 6, 3, 4, 32, 1024
    calls = []
    fake = type("F", (), {})()
    fake.args = type("A", (), {"chain": L, "elems": E})()
    fake._ptr = hp.Probe._ptr
    fake.wts, fake.epoch, fake.pf4, fake.pdl_attr = _Arr(50_000), _Arr(90_000), pf // 16, 6
    fake._launch = lambda var, grid, vals, attr, keep: calls.append((grid, [v.value for v in vals], attr))
    X, C = _Arr(1_000_000), _Arr(2_000_000)
    hp.Probe._chain(fake, var, X, C, T, CPT, 0, [])
    if var == "persist":
        assert calls == [(T * CPT, [X.data.ptr, 50_000, pf // 16, C.data.ptr, 90_000, T, CPT, E, 0, calls[0][1][9],
                                    calls[0][1][10], L], hp.COOPERATIVE)]  # fmt: skip
        return
    assert len(calls) == L
    for k, (grid, vals, attr) in enumerate(calls):
        assert grid == T * CPT
        assert vals[0] == X.data.ptr + 4 * k * T * E and vals[1] == X.data.ptr + 4 * (k + 1) * T * E
        assert vals[2] == 50_000 + (k % 4) * pf and vals[3] == pf // 16
        assert vals[4] == (0 if k == 0 else C.data.ptr + 4 * (k - 1) * T) and vals[5] == C.data.ptr + 4 * k * T
        assert vals[6] == 90_000 and vals[7:10] == [T, CPT, E]
        assert attr == (None if var == "plain" or k == 0 else 6)


def _fake_probe(hp, monkeypatch, ran: list, wrong=lambda var, iters: False) -> None:
    """The probe's GPU side stood in for: each run is recorded in ``ran`` as (T, CPT, iters, variant), 1 us, and
    correct unless ``wrong(variant, iters)``."""

    class FakeProbe:
        gpu, sms = "stand-in", 132

        def __init__(self, args) -> None:
            pass

        def run(self, var, x0, ref, cpt, iters):
            ran.append((x0.shape[0], cpt, iters, var))
            return 1.0, not wrong(var, iters)

    monkeypatch.setattr(hp, "Probe", FakeProbe)


def test_main_runs_the_launch_variants_first_and_keeps_its_rows(tmp_path: Path, monkeypatch) -> None:
    """Every variant of every shape and work size once, the persistent kernel last (and not where the grid outgrows
    the SMs), the JSON rewritten after each row; a wrong chain fails the run."""
    import json
    import sys

    hp = _probe()
    ran: list = []
    _fake_probe(hp, monkeypatch, ran, wrong=lambda var, iters: var == "flag_start" and iters == 7)
    out = tmp_path / "p.json"
    argv = ["handoff_probe", "--shapes", "2x4,20x8", "--iters", "0,7", "--chain", "3", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit, match="differs from the host"):
        hp.main()
    launches = [r for r in ran if r[3] != "persist"]
    assert ran[: len(launches)] == launches and len(launches) == 2 * 2 * 5
    assert ran[len(launches) :] == [(2, 4, 0, "persist"), (2, 4, 7, "persist")]  # 20 x 8 = 160 blocks > 132 SMs
    rows = json.loads(out.read_text())
    assert len(rows) == len(ran) and sum(not r["correct"] for r in rows) == 2


def test_default_shapes_divide_the_default_tile() -> None:
    """Session 30's first device call stopped at the probe's own check: the default --elems (8192 then) was not a
    multiple of the 3x40 shape's CPT. Every default shape must run."""
    args = _probe().parser().parse_args([])
    cpts = [int(s.split("x")[1]) for s in args.shapes.split(",")]
    assert cpts and all(args.elems % c == 0 for c in cpts), (args.elems, cpts)


def test_variants_option_runs_only_those(tmp_path: Path, monkeypatch) -> None:
    import sys

    hp = _probe()
    ran: list = []
    _fake_probe(hp, monkeypatch, ran)
    argv = ["handoff_probe", "--shapes", "2x4", "--iters", "0", "--chain", "2", "--variants", "wait_early,wait_end"]
    monkeypatch.setattr(sys, "argv", argv)
    hp.main()
    assert [r[3] for r in ran] == ["wait_end", "wait_early"]  # in VARIANTS' order
    monkeypatch.setattr(sys, "argv", [*argv[:-1], "wait_end,wait_late"])
    with pytest.raises(SystemExit, match="unknown \\['wait_late'\\]"):
        hp.main()


def test_launch_attrs_add_the_cluster_dimension() -> None:
    """Session 49's --cluster: the PDL (or cooperative) attribute first where given, then the cluster dimension
    {N, 1, 1} where N > 1; the count the launch passes is the entries that are set."""
    import ctypes

    from impls.custom import LaunchAttr

    hp = _probe()
    la = hp.Probe.launch_attrs
    assert la(LaunchAttr, None, 1)[1] == 0
    attrs, n = la(LaunchAttr, 6, 1)
    assert n == 1 and (attrs[0].id, attrs[0].value.i) == (6, 1)
    attrs, n = la(LaunchAttr, 6, 16)
    assert n == 2 and (attrs[0].id, attrs[0].value.i) == (6, 1) and attrs[1].id == hp.CLUSTER_DIMENSION == 4
    assert list((ctypes.c_uint * 3).from_buffer(attrs[1].value)) == [16, 1, 1]
    attrs, n = la(LaunchAttr, None, 8)
    assert n == 1 and attrs[0].id == 4 and list((ctypes.c_uint * 3).from_buffer(attrs[0].value)) == [8, 1, 1]


def test_cluster_sync_builds_place_their_barrier_or_exchange(tmp_path: Path) -> None:
    """-DCLUSTER_SYNC=1 .. 6 (--cluster-sync MODE): every launched step holds exactly its mode's cluster
    synchronisation, the persistent kernel none; no spills. release / relaxed: one arrive after the stores (release /
    relaxed), then wait.acquire. release_before / fence_before / relaxed_before: one barrier after the hand-off and the
    weights, before the work's stores (arrive.release; fence.acq_rel.cluster then arrive.relaxed; arrive.relaxed).
    push / push4 / bulk: the mbarrier initialised and fenced at entry with a relaxed arrive, then st.async (of one / 4
    words) or bulk copies (after the words' stores and fence.proxy.async) into the peers with complete_tx and a parity
    wait, and no release arrive at all. Without the define: nothing of it."""
    hp = _probe()
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the probe's kernels")
    src = tmp_path / "probe.cu"
    src.write_text(hp.SRC)
    assert hp.SYNC_MODES[:6] == ("release", "relaxed", "release_before", "fence_before", "push", "relaxed_before")
    assert hp.SYNC_MODES[6:] == ("push4", "bulk", "mbar_release", "ticket_sc", "ticket_ar")
    assert hp.PUSH_MODES == ("push", "push4", "bulk", "mbar_release")
    for want in ("", *hp.SYNC_MODES):
        define = f"-DCLUSTER_SYNC={hp.SYNC_MODES.index(want) + 1}" if want else "-DNO_SUCH=1"
        cmd = [nvcc, "-std=c++17", "-arch=sm_90", define, "-Xptxas", "-v", "-cubin", "-o", str(tmp_path / "p.cubin")]
        out = subprocess.run([*cmd, str(src)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and not re.search(r"[1-9]\d* bytes spill", out.stderr), (want, out.stderr)
        ptx = subprocess.run([nvcc, "-std=c++17", "-arch=sm_90", define, "-ptx", "-o", "-", str(src)],
                             capture_output=True, text=True, timeout=300).stdout  # fmt: skip
        bodies = dict(re.findall(r"\.entry (step_\w+)\((.*?)\n}\n", ptx, re.S))
        assert set(bodies) == {f"step_{v}" for v in hp.VARIANTS}
        for name, body in bodies.items():
            if want in hp.TICKET_MODES:  # no cluster barrier: the ticket before the work, as last_to_arrive's
                on = name != "step_persist"
                n_sc, n_ar = body.count("membar.gl"), body.count("atom.acq_rel.gpu.global.add.s32")
                assert (n_sc, n_ar) == (((2, 0) if want == "ticket_sc" else (0, 1)) if on else (0, 0)), (want, name)
                assert "barrier.cluster" not in body, (want, name)
                if on:
                    at = body.index("membar.gl" if want == "ticket_sc" else "atom.acq_rel")
                    assert body.index("cp.async.wait_all") < at < body.index("st.global"), (want, name)
                continue
            on = bool(want) and name != "step_persist"
            n_rel, n_rlx = body.count("barrier.cluster.arrive.release"), body.count("barrier.cluster.arrive.relaxed")
            n_wait, n_fence = body.count("barrier.cluster.wait.acquire"), body.count("fence.acq_rel.cluster")
            n_push = body.count("st.async.shared::cluster.mbarrier::complete_tx::bytes")
            n_bulk = body.count("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes")
            n_bulk += body.count("mbarrier.arrive.release.cluster.shared::cluster.b64")
            n_push += int(n_bulk > 0)  # (bulk / mbar_release: one per peer in a loop, which ptxas may unroll)
            expect = {
                "release": (1, 0, 1, 0, 0),
                "relaxed": (0, 1, 1, 0, 0),
                "release_before": (1, 0, 1, 0, 0),
                "fence_before": (0, 1, 1, 1, 0),
                "relaxed_before": (0, 1, 1, 0, 0),
                **dict.fromkeys(hp.PUSH_MODES, (0, 1, 1, 0, 1)),
            }
            assert (n_rel, n_rlx, n_wait, n_fence, n_push) == (expect[want] if on else (0, 0, 0, 0, 0)), (want, name)
            if not on:
                continue
            sync = body.index("barrier.cluster.wait.acquire")
            if want in ("release", "relaxed"):
                assert body.rindex("st.global") < sync, (want, name)
            else:  # before the work: after the weights have landed, before any of the work's stores
                assert body.index("cp.async.wait_all") < sync < body.index("st.global"), (want, name)
                assert "ld.global" in body[sync:], (want, name)
            if want in hp.PUSH_MODES:
                assert (
                    body.index("mbarrier.init")
                    < body.index("fence.mbarrier_init.release.cluster")
                    < body.index("barrier.cluster.arrive.relaxed")
                    < body.index("cp.async.wait_all")
                ), name
                send = body.index(
                    {"bulk": "cp.async.bulk.shared::cluster", "mbar_release": "st.shared::cluster"}.get(
                        want, "st.async"
                    )
                )
                assert sync < send < body.index("mbarrier.try_wait.parity"), name
                assert ("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.u32" in body) == (want == "push4")
                if want == "mbar_release":  # the remote stores, a block barrier, then the release arrives; acquire
                    assert send < body.index("bar.sync", send) < body.index("mbarrier.arrive.release.cluster"), name
                    assert "mbarrier.try_wait.parity.acquire.cluster" in body and "st.async" not in body, name
                if want == "bulk":  # the words written, then made visible to the async proxy, before the copies
                    assert body.index("st.shared.u32") < body.index("fence.proxy.async.shared::cta") < send, name
                    assert body.index("cp.async.bulk.wait_group.read") > body.index("mbarrier.try_wait.parity")


@pytest.mark.parametrize(
    ("argv", "match"),
    [(["--cluster", "17"], "1 to 16 blocks"), (["--cluster", "0"], "1 to 16 blocks"),
     (["--shapes", "3x5", "--elems", "10", "--cluster", "4"], "not a multiple of --cluster 4"),
     (["--cluster-sync", "push"], "push needs --cluster >= 2"),
     (["--cluster", "2", "--cluster-sync", "push", "--smem", "65536"], "push needs"),
     (["--cluster-sync", "ticket_ar"], "counts on the tile counters the flag variants use")],
)  # fmt: skip
def test_main_refuses_cluster_sizes_it_cannot_launch(argv: list, match: str, monkeypatch) -> None:
    import sys

    hp = _probe()
    _fake_probe(hp, monkeypatch, [])
    monkeypatch.setattr(sys, "argv", ["handoff_probe", *argv])
    with pytest.raises(SystemExit, match=match):
        hp.main()


def test_persist_is_skipped_under_clusters(monkeypatch, capsys) -> None:
    import sys

    hp = _probe()
    ran: list = []
    _fake_probe(hp, monkeypatch, ran)
    argv = ["handoff_probe", "--shapes", "2x4", "--iters", "0", "--chain", "2", "--cluster", "4"]
    monkeypatch.setattr(sys, "argv", [*argv, "--variants", "wait_early,persist"])
    hp.main()
    assert [r[3] for r in ran] == ["wait_early"] and "persist skipped: a cooperative launch" in capsys.readouterr().out
