"""net v2: the whole network as one persistent kernel (kernels/persistent.cu, impls/_custom_persistent.py).

End to end against NumPy float64 and ONNX Runtime (fp32 e2e tolerance, 100% top-1) at batch 1, 3 and 8,
eager and CUDA graph, on the embedded model and a width-0.5 / resolution-160 variant (5x5 final map,
channel counts 8, 48, 80, ...); every planned buffer NaN-poisoned first. Plus: the plan is one launch,
repeated runs are bit-identical (split-K is reduced in a fixed order), the stamped run gives a
per-stage breakdown, and the empty-stage barrier launch runs.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import impls
from impls.numpy_ref import NumpyBackend
from mbv2.network import random_input
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, top1_agreement

pytestmark = pytest.mark.gpu

MODELS = {"w1.0-r224": {}, "w0.5-r160": dict(width_mult=0.5, resolution=160)}


@functools.cache
def model(name: str):
    from mbv2.model import default_network, model_bytes
    from mbv2.onnx_import import import_bytes

    return default_network() if not MODELS[name] else import_bytes(model_bytes(**MODELS[name]), source=name)


@functools.cache
def references(name: str, batch: int):
    net = model(name)
    x = random_input(net, batch, seed=2000 + batch)
    ref64 = NumpyBackend(dtype="fp64")
    ref64.prepare(net)
    y64 = np.asarray(ref64.run(x), np.float64)
    with impls.create("ort") as ort:
        ort.prepare(net)
        y_ort = ort.run(x)
    return x, y64, y_ort


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("name", list(MODELS))
def test_net_v2_matches_numpy_fp64_and_onnxruntime(name, batch, graph):
    net = model(name)
    x, y64, y_ort = references(name, batch)
    be = impls.create("custom", kernels="net=v2", graph=graph)
    be.prepare(net)
    plan = be.plan(batch)
    assert len(plan.launches) == 1 and plan.launches[0].name == "net_persistent"
    be.poison(batch)
    y = be.run(x)
    assert y.shape == y64.shape and y.dtype == np.float32
    assert_close(y, y64, "fp32", "e2e", what=f"net v2 {name} bs{batch} graph={graph} vs numpy fp64")
    assert_close(y, y_ort, "fp32", "e2e", what=f"net v2 {name} bs{batch} graph={graph} vs ORT")
    assert top1_agreement(y, y_ort) >= TOP1_AGREEMENT["fp32"]
    np.testing.assert_array_equal(be.run(x), y)  # deterministic: split-K partials summed in split order


@pytest.mark.parametrize("opts", [dict(fuse=False), dict(blocks_per_sm=1), dict(tile=0, splits=1), dict(tile=1)])
def test_net_v2_options_match_numpy_fp64(opts):
    net = model("w1.0-r224")
    x, y64, _ = references("w1.0-r224", 1)
    be = impls.create("custom", kernels="net=v2")
    be.persistent_options = opts
    be.prepare(net)
    be.poison(1)
    assert_close(be.run(x), y64, "fp32", "e2e", what=f"net v2 {opts}")


def test_net_v2_stage_breakdown_and_barrier_launch():
    from impls._custom_persistent import barrier_launch, stage_breakdown

    net = model("w1.0-r224")
    be = impls.create("custom", kernels="net=v2")
    be.prepare(net)
    plan = be.plan(1)
    b = stage_breakdown(be, plan)
    assert len(b["stages"]) == len(plan.persistent.labels) and b["total_us"] > 0
    assert all(s["stage_us"] >= 0 for s in b["stages"])
    with be.stream:
        be._launch(barrier_launch(be, 100, 2))
    be.stream.synchronize()
