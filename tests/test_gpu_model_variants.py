"""Every GPU backend on the models users bring, not only the default: `run --verify ort` for each.

Widths 0.5 / 0.75 / 1.4, resolutions 160 / 192 (odd final maps: 5x5, 6x6), BN unfolded, fixed batch,
and torchvision's own MobileNetV2 exported at opset 13 (when torch + torchvision are there), each
against ONNX Runtime on the same file at fp32 (e2e tolerance, 100% top-1), eager and CUDA graph.
"""

from __future__ import annotations

import functools

import pytest

import impls
from mbv2.model import model_bytes
from mbv2.network import random_input
from mbv2.onnx_import import import_bytes
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, top1_agreement

pytestmark = pytest.mark.gpu

GPU_BACKENDS = ("custom", "cudnn", "torch")
VARIANTS = {
    "w0.5-r224": dict(width_mult=0.5),
    "w0.75-r192": dict(width_mult=0.75, resolution=192),
    "w1.4-r160": dict(width_mult=1.4, resolution=160),
    "w1.0-r160-bn-unfolded": dict(resolution=160, fold_bn=False),
    "w1.0-fixed-batch-3": dict(batch=3),
}


@functools.cache
def variant(name: str):
    if name == "torchvision-opset13":
        from tests.test_torchvision_import import export_torchvision

        data = export_torchvision(opset=13)
    else:
        data = model_bytes(**VARIANTS[name])
    net = import_bytes(data, source=name)
    x = random_input(net, net.batch or 3, seed=7)
    with impls.create("ort") as ort:
        ort.prepare(net)
        return net, x, ort.run(x)


def _names() -> list[str]:
    names = list(VARIANTS)
    try:
        import torchvision  # noqa: F401

        names.append("torchvision-opset13")
    except Exception:
        pass
    return names


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("name", _names())
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_backend_on_model_variant_matches_onnxruntime(backend: str, name: str, graph: bool) -> None:
    ok, reason = impls.available(backend)
    if not ok:
        pytest.skip(f"{backend}: {reason}")
    net, x, ref = variant(name)
    with impls.create(backend, graph=graph) as be:
        be.prepare(net)
        y = be.run(x)
    assert_close(y, ref, "fp32", "e2e", what=f"{backend} on {name}")
    assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp32"]
