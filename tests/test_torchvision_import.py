"""Files users actually bring: torchvision's MobileNetV2 exported by torch.onnx at several opsets.

Needs torch and torchvision (the `torch` extra; present on the GPU machine); skipped otherwise.
"""

from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install -e '.[torch]')")
torchvision = pytest.importorskip("torchvision", reason="torchvision not installed")

import impls  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.onnx_import import import_bytes  # noqa: E402
from mbv2.tolerances import rel_l2, tolerance  # noqa: E402


def export_torchvision(
    opset: int, width: float = 1.0, resolution: int = 224, dynamic: bool = True, keep_bn: bool = False
) -> bytes:
    torch.manual_seed(opset)
    model = torchvision.models.mobilenet_v2(weights=None, width_mult=width).eval()
    with torch.no_grad():  # non-trivial BN statistics, so folding them is really exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    buf = io.BytesIO()
    kwargs = dict(opset_version=opset, input_names=["input"], output_names=["logits"], dynamo=False)
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "N"}, "logits": {0: "N"}}
    if keep_bn:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
        kwargs["do_constant_folding"] = False
    torch.onnx.export(model, torch.randn(1, 3, resolution, resolution), buf, **kwargs)
    return buf.getvalue()


CASES = {
    "opset9": dict(opset=9),
    "opset11": dict(opset=11),
    "opset13": dict(opset=13),
    "opset17": dict(opset=17),
    "opset17-fixed-batch": dict(opset=17, dynamic=False),
    "opset13-bn-unfolded": dict(opset=13, keep_bn=True),
    "opset17-w0.5-r160": dict(opset=17, width=0.5, resolution=160),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_torchvision_export_imports_and_matches_onnxruntime(case: str) -> None:
    try:
        data = export_torchvision(**CASES[case])
    except Exception as exc:  # this torch cannot export at that opset: say so, do not pass silently
        pytest.skip(f"torch.onnx.export failed here: {exc.__class__.__name__}: {str(exc)[:200]}")
    net = import_bytes(data, source=f"torchvision {case}")
    assert sum(1 for layer in net.layers if layer.kind == "Conv2d") == 52
    batch = 1 if "fixed" in case else 2
    x = random_input(net, batch, seed=3)
    with impls.create("numpy") as nb, impls.create("ort") as ob:
        nb.prepare(net)
        ob.prepare(net)
        err = rel_l2(nb.run(x), ob.run(x))
    assert err < tolerance("fp32", "e2e"), f"{case}: rel L2 vs ORT {err:.3e}"
