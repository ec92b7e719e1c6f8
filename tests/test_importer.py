"""The importer on our model and on variants users bring, each compared end to end with ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import impls
from mbv2.errors import ModelError
from mbv2.model import ExportOptions, build_model, model_bytes
from mbv2.network import random_input
from mbv2.onnx_import import import_bytes
from mbv2.tolerances import TOP1_AGREEMENT, rel_l2, tolerance, top1_agreement


def run_both(data: bytes, batch: int, seed: int):
    net = import_bytes(data, source="variant")
    x = random_input(net, batch, seed=seed)
    with impls.create("numpy", dtype="fp32") as nb, impls.create("ort") as ob:
        nb.prepare(net)
        ob.prepare(net)
        return net, nb.run(x), ob.run(x)


def assert_matches_ort(data: bytes, batch: int = 2, seed: int = 0):
    net, ours, ref = run_both(data, batch, seed)
    err = rel_l2(ours, ref)
    assert err < tolerance("fp32", "e2e"), f"rel L2 vs ORT {err:.3e}"
    assert top1_agreement(ours, ref) >= TOP1_AGREEMENT["fp32"]
    return net


VARIANTS = {
    "default": {},
    "opset9": dict(opset=9),
    "opset11": dict(opset=11),
    "opset13": dict(opset=13),
    "opset17": dict(opset=17),
    "opset21": dict(opset=21),
    "opset13-clip-constant-nodes": dict(opset=13, clip_bounds="constant"),
    "bn-unfolded": dict(fold_bn=False),
    "bn-unfolded-opset9": dict(fold_bn=False, opset=9),
    "relu-min": dict(relu6="relu_min"),
    "relu-min-constant": dict(relu6="relu_min", clip_bounds="constant"),
    "reshape": dict(flatten="reshape"),
    "matmul-add": dict(classifier="matmul_add"),
    "width0.5": dict(width_mult=0.5),
    "width0.75": dict(width_mult=0.75),
    "width1.4": dict(width_mult=1.4, resolution=160),
    "res160": dict(resolution=160),
    "res192": dict(resolution=192),
    "fixed-batch": dict(batch=2),
}


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_variant_matches_onnxruntime(variant: str) -> None:
    opts = VARIANTS[variant]
    net = assert_matches_ort(model_bytes(**opts), batch=2, seed=len(variant))
    assert net.batch == opts.get("batch")
    assert net.input_shape == (3, opts.get("resolution", 224), opts.get("resolution", 224))
    assert sum(1 for layer in net.layers if layer.kind == "Conv2d") == 52


def test_default_model_census(net) -> None:
    counts = {
        k: sum(1 for layer in net.layers if layer.kind == k)
        for k in ("Conv2d", "ReLU6", "ResidualAdd", "GlobalAveragePool", "Linear")
    }
    assert counts == {"Conv2d": 52, "ReLU6": 35, "ResidualAdd": 10, "GlobalAveragePool": 1, "Linear": 1}
    assert net.macs() == 300_774_272  # 300.8 M MACs (DESIGN.md)
    assert net.param_count() == 3_487_816
    assert len(net.fused) == 54


def test_unfolded_bn_folds_to_the_same_weights() -> None:
    folded = import_bytes(model_bytes(seed=3))
    unfolded = import_bytes(model_bytes(seed=3, fold_bn=False))
    for a, b in zip(folded.convs(), unfolded.convs()):
        np.testing.assert_allclose(a.weight, b.weight, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a.bias, b.bias, rtol=1e-6, atol=1e-6)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert model_bytes(seed=5) == model_bytes(seed=5)
    assert model_bytes(seed=5) != model_bytes(seed=6)


def test_top1_varies_across_images(net) -> None:
    # guards the agreement tests: a model that gives every image one class would make them vacuous
    with impls.create("ort") as ob:
        ob.prepare(net)
        logits = ob.run(random_input(net, 16, seed=1))
    assert len(set(np.argmax(logits, axis=1).tolist())) >= 8


# -- refused models --------------------------------------------------------------------------------
def _edit(model: onnx.ModelProto, fn) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    fn(m)
    return m.SerializeToString()


@pytest.fixture(scope="module")
def small_model() -> onnx.ModelProto:
    return build_model(ExportOptions(width_mult=0.35, resolution=64))


def _node(model, op_type: str, k: int = 0):
    return [n for n in model.graph.node if n.op_type == op_type][k]


def test_unsupported_op_is_named(small_model) -> None:
    def swap(m):
        n = _node(m, "Clip", 0)
        n.op_type = "Sigmoid"
        del n.input[1:]

    with pytest.raises(
        ModelError, match=r"node 'features\.0\.stem/Clip' \(Sigmoid\): unsupported op type Sigmoid; supported: Conv"
    ):
        import_bytes(_edit(small_model, swap))


def test_clip_other_than_relu6_is_refused(small_model) -> None:
    def six_to_four(m):
        for t in m.graph.initializer:
            if t.name == "features.0.stem.clip_max":
                t.CopyFrom(numpy_helper.from_array(np.array(4.0, np.float32), t.name))

    with pytest.raises(ModelError, match=r"Clip\(min=0.0, max=4.0\) is supported only as ReLU6"):
        import_bytes(_edit(small_model, six_to_four))


def test_relu_without_min_is_refused() -> None:
    m = build_model(ExportOptions(width_mult=0.35, resolution=64, relu6="relu_min"))

    def drop_min(model):
        mn = _node(model, "Min", 0)
        relu_out = mn.input[0]
        for n in model.graph.node:
            n.input[:] = [relu_out if i == mn.output[0] else i for i in n.input]
        model.graph.node.remove(mn)

    with pytest.raises(ModelError, match=r"\(Relu\): Relu is supported only as ReLU6"):
        import_bytes(_edit(m, drop_min))


def test_dilated_conv_is_refused(small_model) -> None:
    def dilate(m):
        n = _node(m, "Conv", 1)
        for a in n.attribute:
            if a.name == "dilations":
                a.CopyFrom(helper.make_attribute("dilations", [2, 2]))

    with pytest.raises(ModelError, match=r"dilations \[2, 2\] are not supported"):
        import_bytes(_edit(small_model, dilate))


def test_dynamic_resolution_is_refused(small_model) -> None:
    def dyn(m):
        m.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"

    with pytest.raises(ModelError, match="dynamic H dimension"):
        import_bytes(_edit(small_model, dyn))


def test_two_outputs_are_refused(small_model) -> None:
    def extra(m):
        m.graph.output.append(helper.make_tensor_value_info("pool", onnx.TensorProto.FLOAT, ["N", 1280, 1, 1]))

    with pytest.raises(ModelError, match="2 outputs"):
        import_bytes(_edit(small_model, extra))


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        import_bytes(b"\x08\x07garbage that is not protobuf \xff\xff")
    with pytest.raises(ModelError, match="empty"):
        import_bytes(b"")
