"""The custom backend end to end against ONNX Runtime on the same ONNX file (DESIGN.md, Correctness).

fp32: logits rel L2 < tolerance("fp32", "e2e") and top-1 agreement TOP1_AGREEMENT["fp32"] (100%),
at batch 1, 8 and 64, eager and CUDA-graph replay, with every planned buffer poisoned (NaN) first.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import impls
from impls._custom_kernels import (
    EXDWPW6_MAX_BATCH,
    EXDWPW6_V13_MAX_BATCH,
    KERNEL_VERSIONS,
    LINEAR_PDL_MAX_BATCH,
    PWPOOL_MAX_BATCH,
)
from mbv2.errors import InputError
from mbv2.network import random_input
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, top1_agreement
from tests.test_custom_host import PIN  # the linear family's fuse=v51 pin (there: why)

pytestmark = pytest.mark.gpu


@functools.cache
def ort_reference(batch: int):
    from mbv2.model import default_network

    net = default_network()
    x = random_input(net, batch, seed=1000 + batch)
    ort = impls.create("ort")
    ort.prepare(net)
    return x, ort.run(x)


def check_against_ort(be, net, batch: int, what: str) -> None:
    x, ref = ort_reference(batch)
    be.poison(batch)
    y = be.run(x)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert_close(y, ref, "fp32", "e2e", what=what)
    agree = top1_agreement(y, ref)
    assert agree >= TOP1_AGREEMENT["fp32"], f"{what}: top-1 agreement {agree:.3f}"


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 8, 64])
def test_e2e_matches_onnxruntime(net, batch, graph):
    be = impls.create("custom", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom default graph={graph} bs{batch}")
    # a second run through the same plan / graph gives the same logits
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))


@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_plan_tune_matches_onnxruntime(net, batch):
    """plan_tune=True (off by default; at batch <= PLAN_TUNE_MAX_BATCH): the plan after its in-place timings against
    ONNX Runtime; each launch it changed timed the whole plan faster with the new pick; plan_tune=False changes none."""
    be = impls.create("custom", graph=True, plan_tune=True)
    assert be.plan_tune and batch <= be.PLAN_TUNE_MAX_BATCH
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom plan_tune bs{batch}")
    changes = be.plan_tuned[batch]
    for ch in changes:
        assert ch["plan_ms"][1] < ch["plan_ms"][0], ch
    assert be.info()["plan_tuned"][str(batch)] == changes
    off = impls.create("custom", graph=True, plan_tune=False)
    off.prepare(net)
    check_against_ort(off, net, batch, f"custom plan_tune=False bs{batch}")
    assert batch not in off.plan_tuned


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 64])
def test_e2e_fused_dw_pointwise_matches_onnxruntime(net, batch, graph):
    be = impls.create("custom", kernels="fuse=v2", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v2 graph={graph} bs{batch}")
    assert not any("fuse" in f for f in be.info()["fallbacks"])


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 64])
def test_e2e_fused_blocks_match_onnxruntime(net, batch, graph):
    """fuse v5 with the cost model alone (no autotune): at batch 64 every small-CIN block is one exdwpw5
    launch; at batch 1 only the blocks with >= SMs / 3 spatial tiles are, the others run the exdw4 pair +
    projection GEMM."""
    be = impls.create("custom", kernels="fuse=v5", graph=graph, autotune=False)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v5 graph={graph} bs{batch}")
    launches = be.plan(batch).launches
    blocks = [la for la in launches if la.name.startswith("exdwpw5")]
    pairs = [la for la in launches if la.name.startswith("exdw4")]
    assert len(blocks) + len(pairs) == 6, [la.name for la in launches]
    assert all(la.grid[0] * la.grid[1] >= be.sms // 3 for la in blocks), [(la.name, la.grid) for la in blocks]
    if batch == 64:
        assert len(blocks) == 6, [la.name for la in launches]
    assert not any("fuse" in f for f in be.info()["fallbacks"])


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 8, 64])
def test_e2e_cluster_blocks_match_onnxruntime(net, batch, graph):
    """fuse v6: up to batch EXDWPW6_MAX_BATCH the 13 bottleneck blocks on maps of <= 28x28 are one exdwpw6 launch
    each (the three on larger maps keep fuse v5's path by design: no fallback recorded); above it the plan is v5's.
    Repeated runs bit-identical (fixed summation order)."""
    be = impls.create("custom", kernels="fuse=v6", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v6 graph={graph} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    small = batch <= EXDWPW6_MAX_BATCH
    assert sum(n.startswith("exdwpw6") for n in names) == (13 if small else 0), names
    assert not [f for f in be.info()["fallbacks"] if "fuse" in f], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 8])
def test_e2e_two_phase_blocks_match_onnxruntime(net, batch, graph):
    """fuse v10: at batch EXDWPW6_MAX_BATCH the 13 blocks exdwpw6 takes in v9 are one cooperative exdwpw10 launch each;
    above it v9's plan. Runs bit-identical."""
    be = impls.create("custom", kernels="fuse=v10", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v10 graph={graph} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    assert sum(n.startswith("exdwpw10") for n in names) == (13 if batch <= EXDWPW6_MAX_BATCH else 0), names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_big_chunk_blocks_v11_match_onnxruntime(net, batch, graph):
    """fuse v11: at batch 1 the three small-tile exdwpw5 blocks run their larger-chunk builds (K.EXDWPW5_BIG_CHUNK),
    at batch 2 v9's. Runs bit-identical."""
    be = impls.create("custom", kernels="fuse=v11", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v11 graph={graph} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    assert sum("_cc" in n for n in names) == (3 if batch == 1 else 0), names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2, 8, 64])
def test_e2e_head_pool_fused_matches_onnxruntime(net, batch, graph):
    """fuse v9 + linear v3: up to batch PWPOOL_MAX_BATCH the head conv 320 -> 1280 + ReLU6 and the global average pool
    are one pwpool launch (no pool kernel), the classifier the v3 GEMV; above it v8's plan. Runs bit-identical."""
    be = impls.create("custom", kernels="fuse=v9,linear=v3", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v9,linear=v3 graph={graph} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    small = batch <= PWPOOL_MAX_BATCH
    assert ("pwpool_c8" in names) == small and any(n.startswith("pool_") for n in names) != small, names
    assert ("linear_gemv_v3" in names) == (batch <= 8), names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("autotune", [False, True], ids=["model", "tuned"])
@pytest.mark.parametrize("batch", [1, 8, 64])
def test_e2e_exgdw_pairs_match_onnxruntime(net, batch, autotune, graph):
    """fuse v7: above batch 1 the 10 (expansion, depthwise) pairs of the 14x14 / 7x7 blocks run as exgdw kernels (the
    cost model always takes them; the autotuner may keep a pair's two kernels where those measured faster) and no
    standalone depthwise conv on those maps is left; at batch 1 the plan is fuse v6's."""
    be = impls.create("custom", kernels="fuse=v7", graph=graph, autotune=autotune)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v7 graph={graph} autotune={autotune} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    if batch <= EXDWPW6_MAX_BATCH:
        assert sum(n.startswith("exdwpw6") for n in names) == 13 and not any("exgdw" in n for n in names), names
    elif not autotune:
        assert sum(n.startswith("exgdw") for n in names) == 10, names
        assert not any(n.startswith("dwconv3") for n in names), names
    else:
        assert sum(n.startswith("exgdw") for n in names) + sum(n.startswith("dwconv3") for n in names) == 10, names
    assert not [f for f in be.info()["fallbacks"] if "fuse" in f], be.info()["fallbacks"]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_e2e_pdl_launches_match_plain_launches_bitwise(net, graph):
    """The batch-1 plan's exdwpw6 kernels launched with programmatic dependent launch (pdl=True; not the default: it
    measured slower) give the same logits, bit for bit, as the same plan launched plainly (pdl=False), and both match
    ONNX Runtime. The tuner is off: two tuned instances may pick different exdwpw6 configurations (fuse v13), whose
    summation orders differ. (The classifier's GEMV, linear v5, goes by PDL in both.)"""
    x, _ = ort_reference(1)
    outs = []
    for pdl in (True, False):
        be = impls.create("custom", graph=graph, pdl=pdl, autotune=False)
        be.prepare(net)
        check_against_ort(be, net, 1, f"custom default pdl={pdl} graph={graph} bs1")
        launches = be.plan(1).launches
        assert be.info()["pdl"] == pdl
        six = [la.pdl for la in launches if la.name.startswith("exdwpw6")]
        assert six == [pdl] * 13, [(la.name, la.pdl) for la in launches]
        outs.append(be.run(x))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("spec", ["", "fuse=v2", "fuse=v5"])
def test_e2e_autotuned_matches_onnxruntime(net, spec):
    be = impls.create("custom", kernels=spec, graph=True, autotune=True)
    be.prepare(net)
    check_against_ort(be, net, 64, f"custom autotune {spec or 'default'} bs64")
    assert be.tuned


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_e2e_with_early_versions_matches_onnxruntime(net, version):
    spec = ",".join(f"{fam}={version}" for fam, vers in KERNEL_VERSIONS.items() if version in vers)
    be = impls.create("custom", kernels=spec)
    be.prepare(net)
    check_against_ort(be, net, 8, f"custom {spec} bs8")


def test_environment_variable_pins_versions(net, monkeypatch):
    monkeypatch.setenv("MBV2_KERNELS", "gemm=v2,pool=v1")
    be = impls.create("custom")
    assert be.info()["kernel_versions"]["gemm"] == "v2"
    assert be.info()["kernel_versions"]["pool"] == "v1"
    be2 = impls.create("custom", kernels="gemm=v3")  # the option wins over the environment
    assert be2.info()["kernel_versions"]["gemm"] == "v3"


def test_run_refuses_bad_input(net):
    be = impls.create("custom")
    be.prepare(net)
    x = random_input(net, 2)
    with pytest.raises(InputError):
        be.run(x.astype(np.float64))
    with pytest.raises(InputError):
        be.run(x[:, :2])
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError):
        be.run(bad)


def test_debug_mode_runs_and_reports(net):
    be = impls.create("custom", debug=True)
    be.prepare(net)
    check_against_ort(be, net, 1, "custom debug bs1")
    info = be.info()
    assert info["layout"] == "NHWC" and info["arch"].startswith("sm_") and info["compiler"]


def assert_same_cost_model_logits(net, x, spec: str, base: str, graph: bool) -> None:
    """The logits of the plans of ``spec`` and ``base`` (kernel specs) are bit-identical; both plans from the cost
    model (two autotuned instances may pick different tiles upstream)."""
    ys = []
    for k in (spec, base):
        b = impls.create("custom", kernels=k, graph=graph, autotune=False)
        b.prepare(net)
        ys.append(b.run(x))
    np.testing.assert_array_equal(ys[0], ys[1], err_msg=f"{spec} vs {base}")


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2, 3, 8, 9])
def test_e2e_linear_v5_pdl_gemv_matches_onnxruntime(net, batch, graph):
    """linear v5: up to batch LINEAR_PDL_MAX_BATCH the classifier GEMV is launched with programmatic dependent launch
    (it requests its weights while pwpool_c8 runs, then waits for it), above it v3's GEMV / GEMM plainly; logits
    against ONNX Runtime, NaN-poisoned buffers, bit-identical to linear v3's plan (same arithmetic, same order) and
    run to run, eager and in a CUDA graph."""
    be = impls.create("custom", kernels="linear=v5,fuse=v26", graph=graph)  # fuse v27 / v28: more PDL launches
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom linear=v5 graph={graph} bs{batch}")
    launches = be.plan(batch).launches
    gemv = [la for la in launches if la.name.startswith("linear_gemv")]
    if batch <= LINEAR_PDL_MAX_BATCH:
        assert [(la.name, la.pdl) for la in gemv] == [("linear_gemv_v5", True)], [la.name for la in launches]
        assert sum(la.pdl for la in launches) == 1
    else:
        assert [la.name for la in gemv] == (["linear_gemv_v3"] if batch <= 8 else [])
        assert not any(la.pdl for la in launches)
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))
    assert_same_cost_model_logits(net, x, "linear=v5" + PIN["linear"], "linear=v3" + PIN["linear"], graph)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_linear_v6_staged_gemv_matches_onnxruntime(net, batch, graph):
    """linear v6 (session 40): at batch <= LINEAR_PDL_MAX_BATCH the classifier GEMV stages x once per block in shared
    memory after its PDL wait; with fuse v51's plan (fuse v53 / v55 run the classifier inside their head kernel),
    logits against ONNX Runtime (NaN-poisoned buffers), bit-identical to linear v5's plan (the same
    products in the same order) and run to run, eager and in a CUDA graph."""
    be = impls.create("custom", kernels="linear=v6" + PIN["linear"], graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom linear=v6 graph={graph} bs{batch}")
    gemv = [(la.name, la.pdl, la.smem) for la in be.plan(batch).launches if la.name.startswith("linear_gemv")]
    fin = net.layers[-1].in_features
    want = ("linear_gemv_v6", True, batch * fin * 4) if batch <= LINEAR_PDL_MAX_BATCH else ("linear_gemv_v3", False, 0)
    assert gemv == [want], gemv
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))
    assert_same_cost_model_logits(net, x, "linear=v6" + PIN["linear"], "linear=v5" + PIN["linear"], graph)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_fuse_v12_pdl_pwpool_matches_onnxruntime(net, batch, graph):
    """fuse v12: at batch 1 pwpool_c8 is launched by programmatic dependent launch (its weight slice requested while
    the last block kernel finishes); logits against ONNX Runtime (NaN-poisoned), bit-identical to fuse v11's plan and
    run to run, eager and in a CUDA graph."""
    be = impls.create("custom", kernels="fuse=v12", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v12 graph={graph} bs{batch}")
    pdl = sorted(la.name for la in be.plan(batch).launches if la.pdl)
    assert pdl == (["linear_gemv_v5", "pwpool_c8"] if batch == 1 else []), pdl
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))
    assert_same_cost_model_logits(net, x, "fuse=v12", "fuse=v11", graph)


@pytest.mark.parametrize("autotune", [True, False], ids=["tuned", "model"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3, 4])
def test_e2e_fuse_v13_wide_blocks_match_onnxruntime(net, batch, graph, autotune):
    """fuse v13: at batch 1 - 3 (EXDWPW6_V13_MAX_BATCH) the 13 exdwpw6 blocks at the tuner's picks (each block timed
    among its one-wave configurations, the wider builds included) or, untuned, the cost model's (which takes clusters
    of 16 on some blocks); logits against ONNX Runtime (NaN-poisoned), runs bit-identical, eager and in a CUDA graph;
    at batch 4 v11's plan."""
    be = impls.create("custom", kernels="fuse=v13", graph=graph, autotune=autotune)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v13 graph={graph} autotune={autotune} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    six = [n for n in names if n.startswith("exdwpw6")]
    tuned6 = [k for k in be.tuned if k.startswith("('exdwpw6'")]
    if batch <= EXDWPW6_V13_MAX_BATCH:
        assert len(six) == 13, names
        assert len(tuned6) == (8 if autotune else 0), be.tuned  # 8 distinct block problems (13 blocks)
        assert autotune or any(n.endswith("x16") for n in six), names
    else:
        assert not six and not tuned6, names
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))


def _check_v13_successor(net, fuse, batch, graph, autotune):
    """fuse ``fuse`` (v14, v15) against ONNX Runtime (NaN-poisoned), eager or in a CUDA graph, runs bit-identical, no
    fallback; untuned its plan must be v13's. Returns the backend and its plan's kernel names."""
    be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph, autotune=autotune)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse={fuse} graph={graph} autotune={autotune} bs{batch}")
    names = [la.name for la in be.plan(batch).launches]
    if not autotune:
        ref = impls.create("custom", kernels="fuse=v13", graph=graph, autotune=False)
        ref.prepare(net)
        assert names == [la.name for la in ref.plan(batch).launches]
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), be.run(x))
    return be, names


@pytest.mark.parametrize("autotune", [True, False], ids=["tuned", "model"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v14_matches_onnxruntime(net, batch, graph, autotune):
    """fuse v14: tuned, the three 56x56 blocks timed as exdwpw6 (clusters of 4 / 6 / 12 among the candidates) against
    v5's path, and the 13 smaller-map blocks among v14's builds too; untuned, v13's plan."""
    be, names = _check_v13_successor(net, "v14", batch, graph, autotune)
    big = [k for k in be.tuned if k.startswith("('exdwpw6|v5'")]
    assert len(big) == (3 if autotune else 0), be.tuned  # the three 56x56 blocks
    assert sum(n.startswith("exdwpw6") for n in names) >= 13, names


@pytest.mark.parametrize("autotune", [True, False], ids=["tuned", "model"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v15_matches_onnxruntime(net, batch, graph, autotune):
    """fuse v15: tuned, each of the 13 exdwpw6 blocks among v13's configurations at 256 and at 512 threads per block;
    untuned, v13's plan."""
    be, names = _check_v13_successor(net, "v15", batch, graph, autotune)
    assert sum(n.startswith("exdwpw6") for n in names) == 13, names
    tuned6 = [k for k in be.tuned if k.startswith("('exdwpw6'")]
    assert len(tuned6) == (8 if autotune else 0), be.tuned


@pytest.mark.parametrize("autotune", [True, False], ids=["tuned", "model"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v16_matches_onnxruntime(net, batch, graph, autotune):
    """fuse v16: v15's plans with the exdwpw6 projection by output columns; untuned, v13's plan (and logits bitwise
    equal to v13's: the same sums)."""
    be, names = _check_v13_successor(net, "v16", batch, graph, autotune)
    assert sum(n.startswith("exdwpw6") for n in names) == 13, names
    if not autotune:
        ref = impls.create("custom", kernels="fuse=v13", graph=graph, autotune=False)
        ref.prepare(net)
        x, _ = ort_reference(batch)
        np.testing.assert_array_equal(be.run(x), ref.run(x))


@pytest.mark.parametrize("autotune", [True, False], ids=["tuned", "model"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v17_matches_onnxruntime(net, batch, graph, autotune):
    """fuse v17: v16's plans with exdwpw6's expansion and projection in lane tiles (untuned: ex_ks_rule's k split,
    proj_cols 2; tuned: each timed per block); untuned, v13's kernels."""
    be, names = _check_v13_successor(net, "v17", batch, graph, autotune)
    assert sum(n.startswith("exdwpw6") for n in names) == 13, names
    stages = [k for k in be.tuned if k.startswith("('exdwpw6'") and k.endswith("'ex_ks')")]
    assert len(stages) == (8 if autotune else 0), be.tuned


def _check_untuned_bitwise(net, fuse, base, batch, graph):
    """fuse ``fuse`` untuned (_check_v13_successor) with 13 exdwpw6 launches and logits bitwise equal to fuse
    ``base``'s (a change that keeps every sum and its order)."""
    be, names = _check_v13_successor(net, fuse, batch, graph, False)
    assert sum(n.startswith("exdwpw6") for n in names) == 13, names
    ref = impls.create("custom", kernels=f"fuse={base}", graph=graph, autotune=False)
    ref.prepare(net)
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), ref.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v18_matches_onnxruntime(net, batch, graph):
    """fuse v18: v17's plan with the reduce's loads requested early; untuned, logits bitwise equal to v17's."""
    _check_untuned_bitwise(net, "v18", "v17", batch, graph)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v19_matches_onnxruntime(net, batch, graph):
    """fuse v19 tuned (the projection stage among 4 mappings, the 2-pixel tiles included) against ONNX Runtime."""
    be, names = _check_v13_successor(net, "v19", batch, graph, True)
    assert sum(n.startswith("exdwpw6") for n in names) == 13, names


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v20_matches_onnxruntime(net, batch, graph):
    """fuse v20: v19's plan with the depthwise by row segments; untuned, logits bitwise equal to v19's."""
    _check_untuned_bitwise(net, "v20", "v19", batch, graph)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v21_matches_onnxruntime(net, batch, graph):
    """fuse v21: tuned (the fourth stage times dw_segs 0 / 1 per block) against ONNX Runtime, its 13 exdwpw6 blocks
    each timed with both depthwise mappings; untuned (v20's segments), logits bitwise equal to v19's."""
    be, names = _check_v13_successor(net, "v21", batch, graph, True)
    assert sum(n.startswith("exdwpw6") for n in names) == 13, names
    stage4 = [k for k in be.tuned if k.startswith("('exdwpw6'") and k.endswith("'dw_segs')")]
    assert stage4 and all(be.tuned[k].endswith((", 0)", ", 1)")) for k in stage4), be.tuned
    _check_untuned_bitwise(net, "v21", "v19", batch, graph)


@pytest.mark.parametrize("fuse", ["v22", "v23"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v22_matches_onnxruntime(net, batch, graph, fuse):
    """fuse v22 (v23) tuned against ONNX Runtime: its 13 exdwpw6 launches on fixed-mode (and fixed-shape) builds named
    with their launch's modes (and shape); logits bitwise equal to fuse v21 planned with the same tuner picks (the
    same launches on the generic builds: fixing the modes and shapes at compile time keeps every sum)."""
    from impls._custom_kernels import exdwpw6_spec_name, exdwpw6_spec_parse

    be, names = _check_v13_successor(net, fuse, batch, graph, True)
    six = [la for la in be.plan(batch).launches if la.name.startswith("exdwpw6")]
    assert len(six) == 13, names
    generic = []
    for la in six:
        base, modes = exdwpw6_spec_parse(la.name)[0], tuple(int(v) for v in la.args[24:28])
        shape = tuple(int(v) for v in la.args[11:24]) if fuse == "v23" else None
        assert la.name == exdwpw6_spec_name(base, modes, shape), la.name
        generic.append(base)
    ref = impls.create("custom", kernels="fuse=v21", graph=graph)
    ref.prepare(net)
    ref._tune_cache = dict(be._tune_cache)  # v22's picks
    assert [la.name for la in ref.plan(batch).launches if la.name.startswith("exdwpw6")] == generic
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), ref.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v24_matches_onnxruntime(net, batch, graph):
    """fuse v24 tuned against ONNX Runtime: its exdwpw5, block0 and pwpool_c8 launches on builds with their shape fixed
    (named with their launch's shape); logits bitwise equal to fuse v23 planned with the same tuner picks (the same
    launches on the generic builds)."""
    from impls._custom_kernels import FIXED_KINDS, fixed_kind, fixed_name, fixed_parse

    be, names = _check_v13_successor(net, "v24", batch, graph, True)
    launches = be.plan(batch).launches
    fixed = [la for la in launches if fixed_parse(la.name)[1] is not None]
    generic = []
    for la in fixed:
        base = fixed_parse(la.name)[0]
        _, _, first, fnames, _ = FIXED_KINDS[fixed_kind(base)]
        assert la.name == fixed_name(base, tuple(int(v) for v in la.args[first : first + len(fnames)])), la.name
        generic.append(base)
    kinds = [fixed_kind(g) for g in generic]
    # block0 v4 (the default) runs its cluster kernel, which has no fixed build, where it fits (batch 1), else v3's
    b0 = int(not (be.versions["block0"] == "v4" and 128 * batch <= be.sms))
    assert kinds.count("block0") == b0 and kinds.count("pwpool") == (batch <= 2) and kinds.count("exdwpw5") >= 0, names
    assert batch > 1 or len(generic) == 4 + b0, names  # batch 1: the three small-CIN blocks on exdwpw5 (fuse v9)
    ref = impls.create("custom", kernels="fuse=v23", graph=graph)
    ref.prepare(net)
    ref._tune_cache = dict(be._tune_cache)  # v24's picks
    ref_names = [la.name for la in ref.plan(batch).launches]
    assert [n for n in ref_names if fixed_kind(n)] == generic, ref_names
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), ref.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v25_matches_onnxruntime(net, batch, graph):
    """fuse v25 tuned against ONNX Runtime: at batch 1 the 56 -> 28 exdwpw5 block on its cluster build
    (K.EXDWPW5_SPLIT: 2 blocks per tile, grid 98; on its fixed-shape build, named after the generic one); above batch 1
    v25's plan is v24's, with the same bits for the same tuner picks."""
    from impls._custom_kernels import EXDWPW5_SPLIT, generic_of

    be, names = _check_v13_successor(net, "v25", batch, graph, True)
    split = [la for la in be.plan(batch).launches if generic_of(la.name) == "exdwpw5_s2_c24_o32_t4x4_cc72_k2"]
    assert len(split) == (batch == 1), names
    if split:
        assert split[0].grid == (98, 1) and split[0].name != generic_of(split[0].name), (split[0].name, split[0].grid)
        assert EXDWPW5_SPLIT["exdwpw5_s2_c24_o32_t4x4"][:2] == ("_cc72_k2", 2)
        return
    ref = impls.create("custom", kernels="fuse=v24", graph=graph)
    ref.prepare(net)
    ref._tune_cache = dict(be._tune_cache)  # v25's picks
    assert [la.name for la in ref.plan(batch).launches] == names
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), ref.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3])
def test_e2e_fuse_v26_matches_onnxruntime(net, batch, graph):
    """fuse v26 tuned against ONNX Runtime: at batch 1 the two 98-tile exdwpw5 blocks on their cluster builds
    (K.EXDWPW5_SPLIT's v26 entries: 2 blocks per tile, grid 196; on fixed-shape builds) besides v25's; above batch 1
    v26's plan is v25's, with the same bits for the same tuner picks."""
    from impls._custom_kernels import EXDWPW5_SPLIT, generic_of

    be, names = _check_v13_successor(net, "v26", batch, graph, True)
    v26 = {name + sfx for name, (sfx, _, _, level) in EXDWPW5_SPLIT.items() if level == 26}
    split = [la for la in be.plan(batch).launches if generic_of(la.name) in v26]
    assert len(split) == (2 if batch == 1 else 0), names
    if split:
        assert all(la.grid == (196, 1) and la.name != generic_of(la.name) for la in split), names
        assert any(generic_of(la.name) == "exdwpw5_s2_c24_o32_t4x4_cc72_k2" for la in be.plan(batch).launches), names
        return
    ref = impls.create("custom", kernels="fuse=v25", graph=graph)
    ref.prepare(net)
    ref._tune_cache = dict(be._tune_cache)  # v26's picks
    assert [la.name for la in ref.plan(batch).launches] == names
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(be.run(x), ref.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2, 3, 4])
def test_e2e_fuse_v27_v28_pdl_launches_match_onnxruntime(net, batch, graph):
    """fuse v27 launches the exdwpw6 blocks by programmatic dependent launch, v28 the plan's exdwpw5 blocks too (at
    batch <= EXDWPW5_PDL_MAX_BATCH); against ONNX Runtime (NaN-poisoned), no fallback, and bit-identical to the same
    plan launched plainly (pdl=False; the tuner's picks shared) and run to run."""
    from impls._custom_kernels import EXDWPW5_PDL_MAX_BATCH, generic_of

    x, _ = ort_reference(batch)
    for fuse in ("v27", "v28"):
        be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
        be.prepare(net)
        check_against_ort(be, net, batch, f"custom fuse={fuse} graph={graph} bs{batch}")
        launches = be.plan(batch).launches
        pdl = {generic_of(la.name).split("_")[0] for la in launches if la.pdl}
        six = any(la.name.startswith("exdwpw6") for la in launches)
        want = {"linear"} if batch == 1 else set()
        want |= {"exdwpw6"} if six else set()
        want |= {"exdwpw5"} if fuse == "v28" and batch <= EXDWPW5_PDL_MAX_BATCH else set()
        assert pdl == want, [(la.name, la.pdl) for la in launches]
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        plain = impls.create("custom", kernels=f"fuse={fuse}", graph=graph, pdl=False)
        plain.prepare(net)
        plain._tune_cache = dict(be._tune_cache)
        assert [la.name for la in plain.plan(batch).launches] == [la.name for la in launches]
        assert not any(la.pdl for la in plain.plan(batch).launches if not la.name.startswith("linear"))
        y = be.run(x)
        np.testing.assert_array_equal(y, be.run(x))
        np.testing.assert_array_equal(y, plain.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2, 3])
@pytest.mark.parametrize("fuse", ["v30", "v32", "v33", "v34", "v35", "v36", "v37", "v39", "v40", "v41", "v42"])
def test_e2e_fuse_v30_matches_onnxruntime(net, batch, graph, fuse):
    """fuse v30 (the expansion stage tuned among the tiles of 1 - 3 channel groups per lane too, on fixed builds; v32:
    those tiles padded; v33: and unrolled; v34: every tiled candidate in boustrophedon order; v35: and unrolled; v36:
    and the projection's tile order timed last; v37: then the bulk-copy reduce; v39: v36 with the c60x16 build among
    the candidates; v40: and at batch 1 one cluster per row tile on every block; v41: v36 with that rule where a block
    has such configurations; v42: v41 + v37's reduce stage, the default)
    against ONNX Runtime (NaN-poisoned), no fallback, bit-identical run to run; every exdwpw6 launch on a fixed build
    whose modes are its arguments. The tuner's picks are reported (the e2e A/B measures them)."""
    from impls._custom_kernels import (
        NG1_MAX_BATCH,
        ex_padded,
        ex_snaked,
        ex_unpack,
        exdwpw6_build_of,
        exdwpw6_spec_parse,
    )

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse={fuse} graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    six = [la for la in be.plan(batch).launches if la.name.startswith("exdwpw6")]
    assert six
    for la in six:
        _, modes, shape = exdwpw6_spec_parse(la.name)
        assert modes == tuple(int(a) for a in la.args[24:28]) and shape is not None, la.name
    ks = [int(la.args[25]) for la in six]
    assert fuse in ("v32", "v33") or not any(ex_padded(k) for k in ks), ks
    ordered = ("v34", "v35", "v36", "v37", "v39", "v40", "v41", "v42")
    assert all(ex_snaked(k) == (fuse in ordered and ex_unpack(k)[0] > 0) for k in ks), ks
    print(f"{fuse} expansion modes (KS, EC, padded):", [(*ex_unpack(k), ex_padded(k)) for k in ks])
    builds = [exdwpw6_build_of(exdwpw6_spec_parse(la.name)[0]) for la in six]
    print(f"{fuse} builds (CH, CL, NT) and grids:", [(b, tuple(la.grid)) for b, la in zip(builds, six)])
    assert fuse in ("v39", "v40") or all(b[0] != 60 for b in builds), builds
    if fuse == "v40" and batch <= NG1_MAX_BATCH:  # one cluster per row tile on every block
        assert all(la.grid[0] == b[1] for b, la in zip(builds, six)), builds
    if fuse in ("v41", "v42") and batch <= NG1_MAX_BATCH:  # one cluster per row tile but on the 7x7 blocks
        assert all(la.grid[0] == b[1] for b, la in zip(builds, six) if int(la.args[14]) != 960), builds
    pcs = [int(la.args[24]) for la in six]
    assert fuse in ("v36", "v37", "v39", "v40", "v41", "v42") or max(pcs) <= 3, pcs
    print(f"{fuse} projection modes:", pcs)
    rpfs = [int(la.args[26]) for la in six]
    assert fuse in ("v37", "v42") or max(rpfs) <= 1, rpfs
    print(f"{fuse} reduce modes (2: bulk copies):", rpfs)
    y = be.run(x)
    np.testing.assert_array_equal(y, be.run(x))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("fuse", ["v43", "v44"])
@pytest.mark.parametrize("batch", [1, 2, 3])  # (batch 1's four cases first: a device call may end before batch 3's)
def test_e2e_fuse_v43_flag_handoff_matches_onnxruntime(net, batch, graph, fuse):
    """fuse v43: every run of consecutive exdwpw6 launches hands off through per-tile flags (impls/_custom_flags.py),
    the last exdwpw5 launch before it advances the forward's number; fuse v44: the exdwpw5 launches join the run
    (kernels/conv.cu EXDWPW5_FLAGS) and block0 v4 advances the number (batch 1; elsewhere block0 v3 has no epoch twin,
    and the first exdwpw5 launch does it, outside the run). Against ONNX Runtime (NaN-poisoned), no
    fallback; bit-identical to v42's plan with the same tuner picks, over 20 replays each with the buffers poisoned
    first (a block that read its input before the producer's flag would see NaN, or a stale tile, in some replay); and
    after a cut-off forward (the plan's launches up to the middle of the run: flags of that partial forward left
    behind) the next full forward is still bit-identical (the flags hold the forward's number, not a count)."""
    from impls._custom_flags import handoff_runs
    from impls._custom_kernels import BLOCK0_V4_BUILDS, EPOCH_SUFFIX, FLAG_SUFFIX, twin_parse

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse={fuse} graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    plan = be.plan(batch)
    names = [la.name for la in plan.launches]
    six = [n for n in names if n.startswith("exdwpw6")]
    assert len(six) >= 2 and all(n.endswith(FLAG_SUFFIX) for n in six), names
    assert sum(n.endswith(EPOCH_SUFFIX) for n in names) == 1, names
    # the flag launches are the runs of the plan's own launches (at batch 3 an exdwpw8 launch follows the first exdwpw5
    # one, so v44's run starts after it); v44 at batch 1: block0 v4 advances the number
    base = [twin_parse(n)[0] for n in names]
    runs = handoff_runs(base, upstream=fuse == "v44")
    assert {i for i, n in enumerate(names) if n.endswith(FLAG_SUFFIX)} == {i for a, b in runs for i in range(a, b)}
    if fuse == "v44" and base[0] in BLOCK0_V4_BUILDS:
        assert names[0].endswith(EPOCH_SUFFIX), names
    ref = impls.create("custom", kernels="fuse=v42", graph=graph)
    ref.prepare(net)
    ref._tune_cache = dict(be._tune_cache)  # v43's / v44's picks
    assert [n.removesuffix(FLAG_SUFFIX).removesuffix(EPOCH_SUFFIX) for n in names] == [
        la.name for la in ref.plan(batch).launches
    ]
    want = ref.run(x)
    for i in range(20):
        be.poison(batch)
        np.testing.assert_array_equal(be.run(x), want, err_msg=f"replay {i}")
    cut = names.index(six[len(six) // 2])
    be.poison(batch)
    be._enqueue_launches(plan.launches[:cut])  # a partial forward: its flags stay behind
    be.synchronize()
    np.testing.assert_array_equal(be.run(x), want, err_msg="after a cut-off forward")


def assert_bit_identical_to_v42(be, net, batch: int, graph: bool, x, launches, block0_fused: bool = False) -> None:
    """``be``'s plan (``launches``) is fuse v42's with the same tuner picks but for twins (each launch's build:
    twin_parse; ``block0_fused``, fuse v49: without v42's first launch, block0), and its logits are v42's bit for bit
    over 20 replays, each with the buffers poisoned first (a dependent that read before its producer's grid finished
    would see NaN or a stale tile in some replay)."""
    from impls._custom_kernels import B0FUSE_BLOCK0, twin_parse

    ref = impls.create("custom", kernels="fuse=v42", graph=graph)
    ref.prepare(net)
    ref._tune_cache = dict(be._tune_cache)  # be's picks
    ref_names = [la.name for la in ref.plan(batch).launches]
    if block0_fused:
        assert ref_names[0] == B0FUSE_BLOCK0, ref_names
        ref_names = ref_names[1:]
    assert [twin_parse(la.name)[0] for la in launches] == ref_names
    want = ref.run(x)
    for i in range(20):
        be.poison(batch)
        np.testing.assert_array_equal(be.run(x), want, err_msg=f"replay {i}")


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_fuse_v45_trigger_twins_match_onnxruntime(net, batch, graph):
    """fuse v45 (session 32): at batch 1 every block0 v4, exdwpw5 and exdwpw6 launch on its early-trigger twin
    (PDL_TRIGGER_EARLY: each triggers its dependents right after its input staging, so two launches overlap), above it
    v42's plan. Against ONNX Runtime (NaN-poisoned), no fallback; bit-identical to v42's plan with the same tuner picks
    over 20 replays, each with the buffers poisoned first (a dependent that read before its producer's grid finished
    would see NaN or a stale tile in some replay)."""
    from impls._custom_kernels import TRIGGER_MAX_BATCH, TRIGGER_SUFFIX, trigger_twin_kind, twin_parse

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels="fuse=v45", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v45 graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    launches = be.plan(batch).launches
    names = [la.name for la in launches]
    base = [twin_parse(n)[0] for n in names]
    twins = [n for n in names if n.endswith(TRIGGER_SUFFIX)]
    if batch <= TRIGGER_MAX_BATCH:
        assert twins == [n + TRIGGER_SUFFIX for n in base if trigger_twin_kind(n)] and len(twins) >= 15, names
    else:
        assert not twins, names
    assert_bit_identical_to_v42(be, net, batch, graph, x, launches)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("trig", [None, ""], ids=["twins", "no_twins"])
def test_e2e_fuse_v46_pwpool_exit_matches_onnxruntime(net, batch, graph, trig):
    """fuse v46 (session 33): at batch 1 the head's pwpool_c8 by PDL, the exdwpw6 launch before it on its exit twin
    (PDL_TRIGGER_AT_EXIT: no explicit trigger, so pwpool_c8 starts as its blocks exit), with v45's twins elsewhere or
    none (trigger_launches empty); above it v42's plan. Against ONNX Runtime (NaN-poisoned), no fallback;
    bit-identical to v42's plan with the same tuner picks over 20 replays, each with the buffers poisoned first."""
    from impls._custom_kernels import EXIT_SUFFIX, PWPOOL_PDL_MAX_BATCH, generic_of, trigger_set_parse

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels="fuse=v46", graph=graph)
    if trig is not None:
        be.trigger_launches = trigger_set_parse(trig)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v46 trig={trig} graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    launches = be.plan(batch).launches
    heads = [i for i, la in enumerate(launches) if generic_of(la.name) == "pwpool_c8"]
    exits = [i for i, la in enumerate(launches) if la.name.endswith(EXIT_SUFFIX)]
    if batch <= PWPOOL_PDL_MAX_BATCH:
        assert len(heads) == 1 and exits == [heads[0] - 1] and launches[heads[0]].pdl, [la.name for la in launches]
    else:
        assert not exits and not any(launches[i].pdl for i in heads), [la.name for la in launches]
    assert_bit_identical_to_v42(be, net, batch, graph, x, launches)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("stage", [None, "1+2+3"], ids=["default", "all_three"])
@pytest.mark.parametrize("fuse", ["v47", "v48"])
def test_e2e_fuse_v47_staged_twins_match_onnxruntime(net, batch, graph, stage, fuse):
    """fuse v47 (session 37): at batch 1 the exdwpw5 launches of EXDWPW5_ASYNC_BUILDS (stage=1+2+3: the three of the
    committed picks' plan, where those are its positions) on their staged twins (cp.async staging, early trigger), v46
    elsewhere; above it v42's plan. fuse v48: those of EXDWPW5_PATCH_BUILDS on their patch twins too (unless staged).
    Against ONNX Runtime (NaN-poisoned), no fallback; bit-identical to v42's plan with the same tuner picks over 20
    replays, each with the buffers poisoned first."""
    from impls._custom_kernels import (
        EXDWPW5_ASYNC_BUILDS,
        EXDWPW5_PATCH_BUILDS,
        PATCH_SUFFIX,
        STAGE_SUFFIX,
        TRIGGER_MAX_BATCH,
        generic_of,
        trigger_set_parse,
    )

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
    be.prepare(net)
    if stage is not None:
        if batch > TRIGGER_MAX_BATCH:
            pytest.skip("stage= positions are for the batch-1 plan (above it v47 is v42's plan)")
        fives = [i for i, la in enumerate(be.plan(batch).launches) if la.name.startswith("exdwpw5")]
        if fives != [1, 2, 3]:
            pytest.skip(f"stage=1+2+3 is for the batch-1 plan whose exdwpw5 launches are 1 - 3 (here {fives})")
        be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
        be.stage_launches = trigger_set_parse(stage)
        be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse={fuse} stage={stage} graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    launches = be.plan(batch).launches
    staged = [i for i, la in enumerate(launches) if la.name.endswith(STAGE_SUFFIX)]
    patched = [i for i, la in enumerate(launches) if la.name.endswith(PATCH_SUFFIX)]
    if batch > TRIGGER_MAX_BATCH:
        assert not staged and not patched, [la.name for la in launches]
    elif stage is None:
        want = [i for i, la in enumerate(launches) if generic_of(la.name) in EXDWPW5_ASYNC_BUILDS]
        assert staged == want and staged, [la.name for la in launches]
        want = [i for i, la in enumerate(launches) if fuse == "v48" and generic_of(la.name) in EXDWPW5_PATCH_BUILDS]
        assert patched == want, [la.name for la in launches]
    else:
        assert staged == [1, 2, 3] and not patched, [la.name for la in launches]
    assert_bit_identical_to_v42(be, net, batch, graph, x, launches)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_fuse_v49_block0_fused_matches_onnxruntime(net, batch, graph):
    """fuse v49 (session 38): at batch 1 block0 computed inside the first exdwpw5 launch (its b0fuse twin: one launch
    fewer), v48 elsewhere; above it v42's plan. Against ONNX Runtime (NaN-poisoned: block0's own output buffer is no
    longer written, nothing may read it), no fallback; bit-identical to v42's plan with the same tuner picks over 20
    replays, each with the buffers poisoned first."""
    from impls._custom_kernels import B0FUSE_SUFFIX, TRIGGER_MAX_BATCH

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels="fuse=v49", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v49 graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    launches = be.plan(batch).launches
    fused = [i for i, la in enumerate(launches) if la.name.endswith(B0FUSE_SUFFIX)]
    assert fused == ([0] if batch <= TRIGGER_MAX_BATCH else []), [la.name for la in launches]
    assert_bit_identical_to_v42(be, net, batch, graph, x, launches, block0_fused=bool(fused))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("version", ["v50", "v51", "v52"])
def test_e2e_fuse_v50_retiled_exdwpw5_matches_onnxruntime(net, batch, graph, version):
    """fuse v50 (session 42): at batch 1 the exdwpw5 launches of the v26 cluster builds on K.EXDWPW5_RETILE's builds
    (7x7 tiles on clusters of 2, one block per SM), v48 elsewhere; above it v48's plan; v51 / v52 (session 43) the
    first / the second of those launches alone. Against ONNX Runtime (NaN-poisoned), no fallback; three runs in a row
    bit-identical, each with the buffers poisoned first."""
    from impls._custom_kernels import exdwpw5_retile, generic_of

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels=f"fuse={version}", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse={version} graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    names = [generic_of(la.name) for la in be.plan(batch).launches]
    want = list(exdwpw5_retile(version).values())
    retiled = [n for n in names if n in want]
    assert retiled == (want if batch == 1 else []), names
    ys = []
    for _ in range(3):
        be.poison(batch)
        ys.append(be.run(x))
    for y in ys[1:]:
        assert np.array_equal(ys[0].view(np.uint32), y.view(np.uint32)), f"{version}: runs not bit-identical"


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_fuse_v54_pwpool_c10_matches_onnxruntime_and_v51(net, batch, graph):
    """fuse v54 (session 44): at batch 1 the head's pwpool_c8 as pwpool_c10 (80 channels per cluster of 8: 128 blocks)
    on its fixed build, by PDL after the exit twin; batch 2 v51's plan. Against ONNX Runtime (NaN-poisoned), no
    fallback; the logits bit-identical to v51's on the same autotuner picks (pwpool_c10 sums each pooled channel as
    pwpool_c8 does), three runs in a row bit-identical."""
    from impls._custom_kernels import EXIT_SUFFIX, generic_of

    x, _ = ort_reference(batch)
    base = impls.create("custom", kernels="fuse=v51", graph=graph)
    base.prepare(net)
    base.poison(batch)
    want = base.run(x)
    be = impls.create("custom", kernels="fuse=v54", graph=graph, tune_picks=dict(base.tuned))
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse=v54 graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    assert not be.tune_timed, be.tune_timed  # (every pick v51's: nothing timed anew)
    launches = be.plan(batch).launches
    heads = [(generic_of(la.name), la.pdl) for la in launches[-2:]]
    if batch == 1:
        assert heads == [("pwpool_c10", True), ("linear_gemv_v5", True)], heads
        assert launches[-2].grid == (128, 1) and launches[-3].name.endswith(EXIT_SUFFIX), launches[-3].name
    else:
        assert [generic_of(la.name) for la in launches] == [generic_of(la.name) for la in base.plan(batch).launches]
    for _ in range(3):
        be.poison(batch)
        y = be.run(x)
        assert np.array_equal(want.view(np.uint32), y.view(np.uint32)), "fuse v54: logits not bit-identical to v51's"


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2, 3])
@pytest.mark.parametrize("fuse", ["v31", "v38", "v53", "v55"])
def test_e2e_fuse_v31_head_fc_matches_onnxruntime(net, batch, graph, fuse):
    """fuse v31 (v38: on v36's plan; v53: on v51's; v55: v53 on pwpool_fc_c8e, its classifier slice requested before
    its griddepcontrol.wait): at batch <= PWPOOL_MAX_BATCH the head's pwpool_c8 and the
    classifier GEMV as ONE pwpool_fc_c8 launch on its fixed build (no linear_gemv, no pwpool_c8 in the plan; above it
    the base's kernels), v53's by PDL at batch <= PWPOOL_PDL_MAX_BATCH after the exit twin of the launch before it,
    the others' plain; against ONNX Runtime (NaN-poisoned), no fallback. Runs bit-identical: three in a row (each
    launch's last clusters reset the ticket counters for the next graph replay), and again after the other batch's
    plan has run on the same counters and workspace; the counters are zero after each run."""
    from impls._custom_kernels import EXIT_SUFFIX, PWPOOL_PDL_MAX_BATCH, fixed_name, generic_of, head_fc_kernel

    x, _ = ort_reference(batch)
    be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
    be.prepare(net)
    check_against_ort(be, net, batch, f"custom fuse={fuse} graph={graph} bs{batch}")
    assert not be.info()["fallbacks"], be.info()["fallbacks"]
    launches = be.plan(batch).launches
    names = [generic_of(la.name) for la in launches]
    fused = batch <= PWPOOL_MAX_BATCH
    head = head_fc_kernel(fuse)
    assert (head in names) == fused and any(n.startswith("linear_gemv") for n in names) != fused, names
    assert "pwpool_c8" not in names
    if fused:
        fc = launches[-1]
        by_pdl = fuse in ("v53", "v55") and batch <= PWPOOL_PDL_MAX_BATCH
        assert fc.name == fixed_name(head, (49, 320, 1280, 1000, 1)) and fc.pdl == by_pdl, fc.name
        assert launches[-2].name.endswith(EXIT_SUFFIX) == by_pdl, launches[-2].name
        assert fc.grid == (160, batch), fc.grid
        cnt = fc.args[8]
    y = be.run(x)
    np.testing.assert_array_equal(y, be.run(x))
    np.testing.assert_array_equal(y, be.run(x))
    if fused:
        assert not cnt[: 8 * batch].get().any(), cnt[: 8 * batch].get()
    other = 3 - batch if fused else 1
    xo, _ = ort_reference(other)
    be.run(xo)
    np.testing.assert_array_equal(y, be.run(x))
    if fused:
        assert not cnt[: 8 * batch].get().any()


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize(
    "opts", [dict(num_classes=12), dict(width_mult=0.5, resolution=160)], ids=["out12", "w0.5_r160"]
)
@pytest.mark.parametrize("fuse", ["v31", "v38", "v53", "v55"])
def test_e2e_fuse_v31_other_heads_match_onnxruntime(opts, graph, fuse):
    """fuse v31's (v38's, v53's; v55's pwpool_fc_c8e) pwpool_fc_c8 on other heads, batch 1 and 2: 12 classes (OC 4: the
    blocks of rank 3 - 7 own no column), MobileNetV2-0.5 at 160 (K 160: a k slice of 20 per block; 5x5 map); against
    ONNX Runtime on the same file (NaN-poisoned), no fallback of v31, runs bit-identical; each on its own fixed
    build."""
    from impls._custom_kernels import generic_of, head_fc_kernel
    from mbv2.model import model_bytes
    from mbv2.onnx_import import import_bytes

    small = import_bytes(model_bytes(**opts), source=str(opts))
    ort = impls.create("ort")
    ort.prepare(small)
    be = impls.create("custom", kernels=f"fuse={fuse}", graph=graph)
    be.prepare(small)
    for batch in (1, 2):
        x = random_input(small, batch, seed=3100 + batch)
        ref = ort.run(x)
        be.poison(batch)
        y = be.run(x)
        assert_close(y, ref, "fp32", "e2e", what=f"custom fuse={fuse} {opts} graph={graph} bs{batch}")
        assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp32"]
        assert generic_of(be.plan(batch).launches[-1].name) == head_fc_kernel(fuse), be.plan(batch).launches[-1].name
        np.testing.assert_array_equal(y, be.run(x))
    # (MobileNetV2-0.5's small-CIN blocks have no exdwpw5 instance: fallbacks of fuse v5 / v8, not of v31)
    assert not any(fuse in f for f in be.info()["fallbacks"]), be.info()["fallbacks"]


@pytest.mark.parametrize("batch", [1, 2])
def test_e2e_tune_picks_replay_the_same_plan_untimed(net, batch, tmp_path):
    """tune_picks: a fresh backend given another's autotuner picks (through a file, as `python -m mbv2 picks` writes
    it) plans the same launches with nothing timed, against ONNX Runtime (NaN-poisoned), and its logits are
    bit-identical to the first backend's (the same kernels on the same input)."""
    import json

    a = impls.create("custom", graph=True)
    a.prepare(net)
    check_against_ort(a, net, batch, f"custom graph bs{batch} (recording picks)")
    assert a.tune_timed and not a.tune_replayed
    picks = tmp_path / "picks.json"
    picks.write_text(json.dumps(a.tuned))
    b = impls.create("custom", graph=True, tune_picks=str(picks))
    b.prepare(net)
    check_against_ort(b, net, batch, f"custom graph bs{batch} (picks replayed)")
    la, lb = a.plan(batch).launches, b.plan(batch).launches
    assert [(x.name, x.grid, x.block, x.smem) for x in lb] == [(x.name, x.grid, x.block, x.smem) for x in la]
    info = b.info()["tune_picks"]
    assert info["timed"] == 0 and info["replayed"] > 0 and not b.tune_timed, info
    x, _ = ort_reference(batch)
    np.testing.assert_array_equal(b.run(x), a.run(x))
