"""The flag hand-off measuring build (kernels/cblock.cu -DEXDWPW6_FLAGS=1) and scripts/flag_handoff_ab.py on the host:
the build compiles without spills and holds the acquire / release pair, the plan's own builds hold neither, the tiles
a consumer polls are the ones its input rows lie in, and the launch list is rewired as the script says."""

from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from impls import _custom_kernels as K
from tests.test_custom_host import fake_cupy  # noqa: F401 (the fixture)

ROOT = Path(__file__).resolve().parent.parent
SPEC_RES = "exdwpw6_c24x16_t512_m5210e1fz_s14x14_64_384_64_14x14_1_2_1101"  # NG 1, residual
SPEC_NG5 = "exdwpw6_c24_t512_m4410e1fz_s7x7_160_960_160_7x7_1_3_1101"  # NG 5 (the last cluster stores)


def _script():
    spec = importlib.util.spec_from_file_location("flag_handoff_ab", ROOT / "scripts/flag_handoff_ab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("spec", [SPEC_RES, SPEC_NG5])
def test_flag_build_compiles_and_publishes_its_tiles(spec: str, tmp_path: Path) -> None:
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile the flag builds")
    base, modes, shape = K.exdwpw6_spec_parse(spec)
    ptx = {}
    for flags in (False, True):
        d = K.exdwpw6_spec_defines(base, modes, shape) + (["-DEXDWPW6_FLAGS=1"] if flags else [])
        common = [nvcc, *K.NVCC_FLAGS, *d, "-arch=sm_90a", str(K.KERNEL_DIR / "cblock.cu")]
        r = subprocess.run([*common, "-cubin", "-Xptxas", "-v", "-o", str(tmp_path / "f.cubin")], capture_output=True,
                           text=True, timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        assert re.search(r"\b0 bytes spill stores", r.stderr) and not re.search(r"[1-9]\d* bytes spill", r.stderr)
        ptx[flags] = subprocess.run([*common, "-ptx", "-o", "-"], capture_output=True, text=True, timeout=600).stdout
    for op in ("ld.acquire.gpu", "st.release.gpu", "fence.proxy.async.global", "trap"):
        assert op in ptx[True] and op not in ptx[False], op
    assert "griddepcontrol.wait" in ptx[True] and "griddepcontrol.wait" in ptx[False]  # (fin == nullptr: the grid)
    assert ptx[True].count("st.release.gpu") == 2  # NG == 1 and NG > 1's stores


def test_polled_tiles_are_those_the_input_rows_lie_in() -> None:
    fh = _script()
    for h, tr_p, tr_c, stride in itertools.product((7, 14, 28), (1, 2, 3, 4, 7), (1, 2, 3, 4), (1, 2)):
        ho = (h - 1) // stride + 1
        stp = -(-h // tr_p)
        for oy0 in range(0, ho, tr_c):
            rows = min(tr_c, ho - oy0)
            iy0, iy1 = fh.input_rows(oy0, rows, stride, h)
            need = {y // tr_p for y in range(max(0, oy0 * stride - 1), min(h, (oy0 + rows - 1) * stride + 2))}
            got = fh.producer_tiles(iy0, iy1, tr_p)
            assert set(got) == need and got.stop <= stp, (h, tr_p, tr_c, stride, oy0)


def test_exdwpw6_runs() -> None:
    fh = _script()
    names = ["block0", "exdwpw5_a", "exdwpw6_a", "exdwpw6_b", "exdwpw6_c", "pwpool", "exdwpw6_d", "gemv"]
    assert fh.exdwpw6_runs(names) == [(2, 5)]
    assert fh.exdwpw6_runs(["exdwpw6_a", "exdwpw6_b"]) == [(0, 2)]
    assert fh.exdwpw6_runs(["exdwpw6_a", "x", "exdwpw6_b"]) == []


class _Arr:
    _next = itertools.count(1000, 1000)

    def __init__(self) -> None:
        self.data = SimpleNamespace(ptr=next(self._next))


def _fake_cp():
    return SimpleNamespace(empty_like=lambda a: _Arr(), zeros_like=lambda a: _Arr(), zeros=lambda n, dt: _Arr(),
                           uint32=np.uint32)  # fmt: skip


def _exdwpw6_launch(spec: str, x, y, res: bool, tr: int, ng: int, grid: tuple):
    from impls.custom import Launch

    r = x if res else y
    ws = _Arr() if ng > 1 else y
    ints = [np.int32(0)] * (28 - 11)
    ints[19 - 11], ints[23 - 11] = np.int32(tr), np.int32(int(res))
    args = (x, _Arr(), _Arr(), _Arr(), _Arr(), _Arr(), _Arr(), r, y, ws, _Arr(), *ints)
    return Launch(spec, "generic", grid, (512,), args, smem=1000, pdl=True)


def test_flag_launches_rewire_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from impls.custom import Launch

    fh = _script()
    monkeypatch.setattr(fh.K, "build_exdwpw6_spec", lambda b, m, a, n, s, extra: SimpleNamespace(name=f"{b}{extra}"))
    monkeypatch.setattr(fh, "_load", lambda be, built: SimpleNamespace(get_function=lambda name: f"fn:{name}"))
    nonportable = []
    be = SimpleNamespace(arch="90", _dyn_smem=lambda fn, smem: fn,
                         _allow_nonportable_cluster=lambda name, fn: nonportable.append(name))  # fmt: skip
    a0, a1, a2, a3, out = _Arr(), _Arr(), _Arr(), _Arr(), _Arr()
    before = Launch("exdwpw5_x", "k5", (196,), (256,), (_Arr(), a0), pdl=True)
    l1 = _exdwpw6_launch(SPEC_RES, a0, a1, True, 2, 1, (16, 7, 1))
    l2 = _exdwpw6_launch(SPEC_NG5, a1, a2, False, 3, 5, (40, 3, 1))
    after = Launch("pwpool_c8", "kp", (160,), (256,), (a2, _Arr(), _Arr(), out), pdl=True)
    gemv = Launch("linear_gemv_v5", "kg", (125,), (256,), (out, a3), pdl=True)
    epoch = _Arr()
    got, fresh, rows = fh.flag_launches(be, [before, l1, l2, after, gemv], epoch, _fake_cp())
    assert got[0] is before and got[4] is gemv
    n1, n2 = got[1].args, got[2].args
    assert len(n1) == len(n2) == 33
    # the first waits for the grid before it (null flags), reads the plan's buffer, writes a fresh one
    assert n1[0] is a0 and n1[28] == 0 and (n1[31], n1[32]) == (1, 1) and n1[30] is epoch
    assert n1[8] is not a1 and n1[7] is n1[0]  # residual = its input
    # the second polls the first's flags with its tiling (TR 2, clusters of 16), reads its fresh output
    assert n2[0] is n1[8] and n2[28] is n1[29] and (int(n2[31]), int(n2[32])) == (2, 16)
    assert n2[7] is n2[8] and n2[8] is not a2 and n2[9] is not l2.args[9] and n2[10] is not l2.args[10]
    assert got[3].args[0] is n2[8] and got[3].args[3] is out
    assert [r["launch"] for r in rows] == [1, 2] and rows[1]["waits_on"] == "flags of 1"
    assert got[1].kernel == f"fn:exdwpw6_c24x16_t512{('-DEXDWPW6_FLAGS=1',)}" and got[1].pdl
    assert nonportable == [SPEC_RES + "+flags"]  # clusters of 16 opt in (the c24 build has clusters of 8)
    assert n1[8] in fresh and n2[8] in fresh and n2[9] in fresh


def test_flag_plan_with_emulated_kernels_gives_the_plans_logits(fake_cupy, net, monkeypatch) -> None:  # noqa: F811
    """The batch-1 plan (NumPy stand-ins for the kernels) rewired by flag_launches: every flag launch finds its
    producer's flags set to this forward's number before it runs (on the GPU it would wait for them) and sets its
    own; over two forwards with the outputs poisoned, the logits equal the plan's bit for bit."""
    import cupy as cp  # the stand-in module the fixture installed

    import tests.test_custom_host as host
    from mbv2.network import random_input

    fh = _script()

    checked = []

    class FlagKernel:
        def __init__(self, spec: str) -> None:
            self.spec, self.base = spec, host.RawKernel(spec)

        def __call__(self, grid, block, args, shared_mem=0):
            assert len(args) == 33, (self.spec, len(args))
            fin, fout, fep, ptr_, pcl = args[28:]
            assert type(ptr_) is np.int32 and type(pcl) is np.int32 and fout.dtype == np.uint32
            e = int(fep[0])
            h, ho, s, tr = int(args[11]), int(args[16]), int(args[18]), int(args[19])
            cl = K.exdwpw6_build_of(K.exdwpw6_spec_parse(self.spec)[0])[1]
            if not (type(fin) is np.int64 and int(fin) == 0):
                stp = -(-h // int(ptr_))
                for n in range(grid[2]):
                    for t in range(grid[1]):
                        iy0, iy1 = fh.input_rows(t * tr, min(tr, ho - t * tr), s, h)
                        for sp in fh.producer_tiles(iy0, iy1, int(ptr_)):
                            polled = fin[(n * stp + sp) * int(pcl) : (n * stp + sp + 1) * int(pcl)]
                            assert (polled == e).all(), f"{self.spec}: would wait forever on tile {sp}: {polled}, {e}"
                checked.append(self.spec)
            self.base.max_dynamic_shared_size_bytes = getattr(self, "max_dynamic_shared_size_bytes", 0)
            self.base(grid, block, args[:28], shared_mem=shared_mem)
            assert fout.size == grid[2] * grid[1] * cl
            fout[:] = e  # every (image, tile, rank) stored its slice

    be = fake_cupy.CustomBackend(graph=False)
    be.prepare(net)
    plan = be.plan(1)
    x = random_input(net, 1, seed=3)
    ref = be.run(x)
    # the flag twins (after planning: K is the backend's module too): loaded as FlagKernel stand-ins
    monkeypatch.setattr(fh.K, "build_exdwpw6_spec", lambda b, m, a, n, s, extra: K.Built(K.exdwpw6_spec_name(b, m, s),
                                                                                         None, ""))  # fmt: skip
    monkeypatch.setattr(fh, "_load", lambda be, built: SimpleNamespace(get_function=FlagKernel))
    shim = SimpleNamespace(empty_like=lambda a: cp.empty(a.shape, a.dtype), zeros_like=lambda a: cp.zeros(a.shape,
                           a.dtype), zeros=cp.zeros, uint32=np.uint32)  # fmt: skip
    epoch = cp.zeros(1, np.uint32)
    flagged, fresh, rows = fh.flag_launches(be, list(plan.launches), epoch, shim)
    assert len(rows) == 13 and sum(r["waits_on"] == "grid" for r in rows) == 1
    for forward in range(2):
        epoch[0] += 1
        for buf in [*plan.buffers, plan.out, *fresh]:  # a launch that read a stale buffer would read NaN
            buf.fill(np.nan)
        be._enqueue_launches(flagged)
        got = np.asarray(plan.out).copy()
        assert np.array_equal(got.view(np.uint32), np.asarray(ref, np.float32).view(np.uint32)), forward
    assert len(checked) == 2 * 12
