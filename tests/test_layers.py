"""Every layer kind: NumPy float32 against NumPy float64 on fresh random inputs, plus the fusion pass."""

from __future__ import annotations

import numpy as np
import pytest

import impls
from mbv2.layers import Conv2d, Linear
from mbv2.tolerances import assert_close


@pytest.fixture(scope="module")
def backends(net):
    b32, b64 = impls.create("numpy", dtype="fp32"), impls.create("numpy", dtype="fp64")
    b32.prepare(net)
    b64.prepare(net)
    return b32, b64


def conv_direct(x: np.ndarray, layer: Conv2d) -> np.ndarray:
    """A deliberately different float64 convolution (loops over taps) to check im2col itself."""
    n, c, h, w = x.shape
    k, s, p, g = layer.kernel, layer.stride, layer.pad, layer.groups
    ho, wo = layer.out_hw(h, w)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    wt = layer.weight.astype(np.float64)
    y = np.zeros((n, layer.out_channels, ho, wo))
    cg, og = c // g, layer.out_channels // g
    for gi in range(g):
        for i in range(k):
            for j in range(k):
                patch = xp[:, gi * cg : (gi + 1) * cg, i : i + s * ho : s, j : j + s * wo : s]
                y[:, gi * og : (gi + 1) * og] += np.einsum("nchw,oc->nohw", patch, wt[gi * og : (gi + 1) * og, :, i, j])
    return y + layer.bias[None, :, None, None]


def test_every_conv_shape_fp32_matches_fp64(net, backends, rng) -> None:
    b32, b64 = backends
    for entry in net.distinct_ops():
        op = entry["op"]
        if op.kind != "conv":
            continue
        x = rng.standard_normal((2, *op.in_shape)).astype(np.float32)
        res = rng.standard_normal((2, *op.out_shape)).astype(np.float32) if op.residual is not None else None
        y32 = b32.conv2d(b32.to_device(x), op.layer, act=op.act, residual=None if res is None else b32.to_device(res))
        y64 = b64.conv2d(b64.to_device(x), op.layer, act=op.act, residual=None if res is None else b64.to_device(res))
        assert_close(y32, y64, "fp32", "layer", what=f"conv op {op.index}")


@pytest.mark.parametrize(
    "shape",
    [
        (3, 5, 5, 5, 3, 2, 1, 1),
        (2, 8, 7, 8, 3, 1, 1, 8),
        (1, 6, 1, 10, 1, 1, 0, 1),
        (3, 12, 9, 12, 3, 2, 1, 12),
        (2, 6, 6, 9, 3, 1, 1, 3),
    ],
    ids=["stem-like", "depthwise", "1x1-spatial", "depthwise-s2-odd", "grouped"],
)
def test_im2col_matches_direct_convolution(shape, rng) -> None:
    n, c, h, o, k, s, p, g = shape
    layer = Conv2d(
        in_channels=c,
        out_channels=o,
        kernel=k,
        stride=s,
        pad=p,
        groups=g,
        weight=rng.standard_normal((o, c // g, k, k)).astype(np.float32),
        bias=rng.standard_normal(o).astype(np.float32),
    )
    layer.out_shape = (o, *layer.out_hw(h, h))
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    y = impls.create("numpy", dtype="fp64").conv2d(x.astype(np.float64), layer)
    assert_close(y, conv_direct(x, layer), "fp32", "layer", what="im2col conv")


def test_relu6_clips_both_ends(rng) -> None:
    layer = Conv2d(
        in_channels=1,
        out_channels=1,
        kernel=1,
        weight=np.full((1, 1, 1, 1), 10, np.float32),
        bias=np.zeros(1, np.float32),
    )
    x = np.array([-1.0, 0.1, 0.3, 2.0], np.float32).reshape(1, 1, 2, 2)
    y = impls.create("numpy").conv2d(x, layer, act=True)
    assert y.ravel().tolist() == [0.0, 1.0, 3.0, 6.0]


def test_add_pool_linear_fp32_match_fp64(net, backends, rng) -> None:
    b32, b64 = backends
    x = rng.standard_normal((3, 24, 56, 56)).astype(np.float32)
    r = rng.standard_normal((3, 24, 56, 56)).astype(np.float32)
    assert_close(b32.add(x, r), b64.add(x.astype(np.float64), r.astype(np.float64)), "fp32")
    p = rng.standard_normal((3, 1280, 7, 7)).astype(np.float32)
    assert_close(b32.global_avg_pool(p), p.astype(np.float64).mean(axis=(2, 3)), "fp32")
    lin = next(layer for layer in net.layers if isinstance(layer, Linear))
    f = rng.standard_normal((3, 1280)).astype(np.float32)
    ref = f.astype(np.float64) @ lin.weight.astype(np.float64).T + lin.bias
    assert_close(b32.linear(f, lin), ref, "fp32")


def test_fused_run_equals_unfused_walk(net, rng) -> None:
    """The fused list computes what the 99 layers compute one by one."""
    b = impls.create("numpy", dtype="fp64")
    b.prepare(net)
    x = rng.standard_normal((1, *net.input_shape)).astype(np.float32)
    outs = []
    cur = x.astype(np.float64)
    for layer in net.layers:
        if layer.kind == "Conv2d":
            cur = b.conv2d(cur, layer)
        elif layer.kind == "ReLU6":
            cur = np.clip(cur, 0, 6)
        elif layer.kind == "ResidualAdd":
            cur = cur + outs[layer.skip]
        elif layer.kind == "GlobalAveragePool":
            cur = cur.mean(axis=(2, 3))
        else:
            cur = b.linear(cur, layer)
        outs.append(cur)
    assert_close(b.run(x), cur, "fp32", "e2e")


def test_bottleneck_blocks(net) -> None:
    """Network.bottleneck_blocks: MobileNetV2-1.0's 16 expansion -> depthwise -> projection blocks (block 0 has no
    expansion), each a chain of fused ops, in order, with the widths of the architecture."""
    blocks = net.bottleneck_blocks()
    assert len(blocks) == 16
    widths = [(ex.layer.in_channels, ex.layer.out_channels, pw.layer.out_channels) for ex, _, pw in blocks]
    assert widths[0] == (16, 96, 24) and widths[-1] == (160, 960, 320)
    assert [dw.layer.stride for _, dw, _ in blocks].count(2) == 4
    for ex, dw, pw in blocks:
        assert dw.input == ex.index and pw.input == dw.index and dw.layer.groups == dw.layer.in_channels
        assert ex.layer.kernel == pw.layer.kernel == 1
    assert [ex.index for ex, _, _ in blocks] == sorted(ex.index for ex, _, _ in blocks)
