"""The embedded default model: MobileNetV2 (Sandler et al. 2018) written as ONNX with seeded weights.

Built with the onnx helper API (no torch). Channels follow torchvision: ``_make_divisible(c * width,
8)``. Weights are He-normal; BatchNorm statistics are measured on seeded calibration images (as a
trained network's are), so activations stay centred and in ReLU6's useful range through the 17 blocks,
rounding errors are not amplified on the way (fp16 storage: ~1e-2 end to end) and the logits spread over
a few units. The same arguments give the same bytes.

Variants (for the importer's tests, and for users who want one): opset 9..21, BatchNorm left
unfolded, ReLU6 as Clip or Relu+Min, Flatten or Reshape before the classifier, Gemm or MatMul+Add,
fixed or dynamic batch, and Clip bounds as initializers or Constant nodes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .layers import Conv2d

# (t, c, n, s): expansion, output channels, repeats, first stride (Table 2 of the paper)
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
BN_EPS = 1e-5
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 9, 21


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to a multiple of divisor, never down by more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@dataclass(frozen=True)
class ExportOptions:
    width_mult: float = 1.0
    resolution: int = 224
    seed: int = 0
    num_classes: int = 1000
    opset: int = DEFAULT_OPSET
    fold_bn: bool = True
    relu6: str = "clip"  # "clip" | "relu_min"
    clip_bounds: str = "initializer"  # opset >= 11: "initializer" | "constant"
    flatten: str = "flatten"  # "flatten" | "reshape"
    classifier: str = "gemm"  # "gemm" | "matmul_add"
    batch: int | None = None  # None: dynamic batch dimension "N"

    def validate(self) -> None:
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise ValueError(f"opset must be in {MIN_OPSET}..{MAX_OPSET}, got {self.opset}")
        if self.width_mult <= 0:
            raise ValueError(f"width multiplier must be > 0, got {self.width_mult}")
        if self.resolution < 32:
            raise ValueError(f"resolution must be >= 32 (five stride-2 stages), got {self.resolution}")
        if self.relu6 not in ("clip", "relu_min"):
            raise ValueError(f"relu6 must be 'clip' or 'relu_min', got {self.relu6!r}")
        if self.clip_bounds not in ("initializer", "constant"):
            raise ValueError(f"clip_bounds must be 'initializer' or 'constant', got {self.clip_bounds!r}")
        if self.flatten not in ("flatten", "reshape"):
            raise ValueError(f"flatten must be 'flatten' or 'reshape', got {self.flatten!r}")
        if self.classifier not in ("gemm", "matmul_add"):
            raise ValueError(f"classifier must be 'gemm' or 'matmul_add', got {self.classifier!r}")
        if self.batch is not None and self.batch < 1:
            raise ValueError(f"batch must be >= 1 or None (dynamic), got {self.batch}")


def conv_plan(width_mult: float = 1.0) -> list[dict]:
    """Every conv of the network in order: in/out channels, kernel, stride, groups, relu6, block role."""
    plan: list[dict] = []
    inp = make_divisible(STEM_CHANNELS * width_mult)
    last = make_divisible(LAST_CHANNELS * max(1.0, width_mult))
    plan.append(dict(cin=3, cout=inp, k=3, s=2, g=1, relu6=True, block=0, role="stem", residual=False))
    block = 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out = make_divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(inp * t))
            use_res = stride == 1 and inp == out
            if t != 1:
                plan.append(
                    dict(cin=inp, cout=hidden, k=1, s=1, g=1, relu6=True, block=block, role="expand", residual=False)
                )
            plan.append(
                dict(
                    cin=hidden,
                    cout=hidden,
                    k=3,
                    s=stride,
                    g=hidden,
                    relu6=True,
                    block=block,
                    role="depthwise",
                    residual=False,
                )
            )
            plan.append(
                dict(cin=hidden, cout=out, k=1, s=1, g=1, relu6=False, block=block, role="project", residual=use_res)
            )
            inp = out
            block += 1
    plan.append(dict(cin=inp, cout=last, k=1, s=1, g=1, relu6=True, block=block, role="head", residual=False))
    return plan


# Conditioning of the seeded weights (see results/NOTES.md, "conditioning of the embedded model"):
# BatchNorm statistics are those of the data (every conv's output has per-channel mean 0 and variance
# gamma^2 + beta^2 on a seeded calibration batch, as in a trained network), depthwise filters have a
# positive mean (smoothing, like trained ones: random zero-mean 3x3 filters nearly cancel on spatially
# correlated maps and turn rounding into large relative errors), and residual branches enter at half gain.
# Measured with a NumPy simulation of fp16 storage (8 images): end-to-end rel L2 3.8e-2 -> ~8e-3.
CALIBRATION_IMAGES = 4
DEPTHWISE_MEAN = 2.0  # in units of the He standard deviation sqrt(2 / 9)
RESIDUAL_GAIN = 0.5


def _round16(a: np.ndarray) -> np.ndarray:
    # float16-representable values: the last bits of a float64 BLAS pass (machine-dependent) cannot change
    # the file's bytes from one machine to another
    return np.asarray(a, np.float64).astype(np.float16).astype(np.float64)


@functools.lru_cache(maxsize=16)
def _seeded_parameters(width_mult: float, resolution: int, seed: int, num_classes: int):
    """Per conv (w, gamma, beta, mean, var) and the classifier (wl, bl), calibrated on seeded images.

    Each conv's BatchNorm mean and variance are measured on its own output for CALIBRATION_IMAGES seeded
    images (float64, layer by layer through the already-normalised layers before it), so activations stay
    centred and in ReLU6's useful range through the 17 blocks, and the image shows in the pooled features.
    """
    from impls.numpy_ref import NumpyBackend

    rng = np.random.default_rng(seed)
    xcal = np.random.default_rng([seed, 1]).standard_normal((CALIBRATION_IMAGES, 3, resolution, resolution))
    be = NumpyBackend(dtype="fp64")
    params = []
    cur = block_in = xcal
    plan = conv_plan(width_mult)
    for li, p in enumerate(plan):
        if li == 0 or plan[li - 1]["block"] != p["block"]:
            block_in = cur
        fan_in = (p["cin"] // p["g"]) * p["k"] * p["k"]
        std = np.sqrt(2.0 / fan_in)
        w = rng.normal(0.0, std, (p["cout"], p["cin"] // p["g"], p["k"], p["k"]))
        if p["role"] == "depthwise":
            w += DEPTHWISE_MEAN * std
        pad = p["k"] // 2
        geometry = dict(in_channels=p["cin"], out_channels=p["cout"], kernel=p["k"], stride=p["s"], pad=pad)
        z = be.conv2d(cur, Conv2d(**geometry, groups=p["g"], weight=w, bias=np.zeros(p["cout"])))
        mean, var = _round16(z.mean(axis=(0, 2, 3))), _round16(z.var(axis=(0, 2, 3)))
        gamma = rng.uniform(0.8, 1.2, p["cout"]) * (RESIDUAL_GAIN if p["residual"] else 1.0)
        beta = rng.normal(0.0, 0.1, p["cout"])
        scale = gamma / np.sqrt(var + BN_EPS)
        conv = Conv2d(**geometry, groups=p["g"], weight=w * scale[:, None, None, None], bias=beta - mean * scale)
        cur = be.conv2d(cur, conv, act=p["relu6"], residual=block_in if p["residual"] else None)
        params.append((w, gamma, beta, mean, var))
    feats = cur.mean(axis=(2, 3))
    # Pooled ReLU6 features are a per-channel constant plus an image-dependent part, so a random classifier
    # would give every image the same top-1 class (and a top-1 agreement test that cannot fail): centre it
    # on the calibration images' mean feature and scale it so the logits spread by about 2 across images.
    wl = rng.normal(0.0, 1.0, (num_classes, feats.shape[1]))
    centred = (feats - feats.mean(axis=0)) @ wl.T
    wl *= 2.0 / max(float(centred.std()), 1e-12)
    bl = -wl @ feats.mean(axis=0) + rng.normal(0.0, 0.01, num_classes)
    return tuple(params), _round16(wl), _round16(bl)


def build_model(opts: ExportOptions | None = None, **kwargs):
    """An onnx.ModelProto of MobileNetV2 for these options (keyword arguments override ``opts``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if opts is None:
        opts = ExportOptions(**kwargs)
    elif kwargs:
        opts = ExportOptions(**{**opts.__dict__, **kwargs})
    opts.validate()
    nodes: list = []
    inits: list = []
    counter = {"n": 0}

    def uid(prefix: str) -> str:
        counter["n"] += 1
        return f"{prefix}_{counter['n']}"

    def init(name: str, arr: np.ndarray, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=dtype), name))
        return name

    def const_node(name: str, arr: np.ndarray) -> str:
        nodes.append(
            helper.make_node(
                "Constant",
                [],
                [name],
                name=f"{name}_node",
                value=numpy_helper.from_array(np.asarray(arr, np.float32), name),
            )
        )
        return name

    def relu6(x: str, prefix: str) -> str:
        y = f"{prefix}.relu6"
        if opts.relu6 == "relu_min":
            r = f"{prefix}.relu"
            nodes.append(helper.make_node("Relu", [x], [r], name=f"{prefix}/Relu"))
            six = f"{prefix}.six"
            if opts.clip_bounds == "constant":
                const_node(six, np.array(6.0, np.float32))
            else:
                init(six, np.array(6.0))
            nodes.append(helper.make_node("Min", [r, six], [y], name=f"{prefix}/Min"))
        elif opts.opset < 11:
            nodes.append(helper.make_node("Clip", [x], [y], name=f"{prefix}/Clip", min=0.0, max=6.0))
        else:
            lo, hi = f"{prefix}.clip_min", f"{prefix}.clip_max"
            if opts.clip_bounds == "constant":
                const_node(lo, np.array(0.0, np.float32))
                const_node(hi, np.array(6.0, np.float32))
            else:
                init(lo, np.array(0.0))
                init(hi, np.array(6.0))
            nodes.append(helper.make_node("Clip", [x, lo, hi], [y], name=f"{prefix}/Clip"))
        return y

    x = "input"
    block_input = x
    plan = conv_plan(opts.width_mult)
    params, wl, bl = _seeded_parameters(opts.width_mult, opts.resolution, opts.seed, opts.num_classes)
    for li, (p, (w, gamma, beta, mean, var)) in enumerate(zip(plan, params)):
        prefix = f"features.{p['block']}.{p['role']}"
        if li == 0 or plan[li - 1]["block"] != p["block"]:
            block_input = x  # the skip input of this block's residual add
        pad = p["k"] // 2
        attrs = dict(
            kernel_shape=[p["k"], p["k"]], strides=[p["s"], p["s"]], pads=[pad] * 4, group=p["g"], dilations=[1, 1]
        )
        y = f"{prefix}.conv"
        scale = gamma / np.sqrt(var + BN_EPS)
        wf = w * scale[:, None, None, None]
        bf = beta - mean * scale
        if opts.fold_bn:
            nodes.append(
                helper.make_node(
                    "Conv",
                    [x, init(f"{prefix}.weight", wf), init(f"{prefix}.bias", bf)],
                    [y],
                    name=f"{prefix}/Conv",
                    **attrs,
                )
            )
        else:
            c = f"{prefix}.conv_nobn"
            nodes.append(
                helper.make_node("Conv", [x, init(f"{prefix}.weight", w)], [c], name=f"{prefix}/Conv", **attrs)
            )
            bn_in = [
                c,
                init(f"{prefix}.bn.weight", gamma),
                init(f"{prefix}.bn.bias", beta),
                init(f"{prefix}.bn.running_mean", mean),
                init(f"{prefix}.bn.running_var", var),
            ]
            nodes.append(
                helper.make_node("BatchNormalization", bn_in, [y], name=f"{prefix}/BatchNormalization", epsilon=BN_EPS)
            )
        if p["relu6"]:
            y = relu6(y, prefix)
        if p["residual"]:
            s = f"features.{p['block']}.add"
            nodes.append(helper.make_node("Add", [block_input, y], [s], name=f"features.{p['block']}/Add"))
            y = s
        x = y

    pooled = "pool"
    nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled], name="GlobalAveragePool"))
    flat = "flatten"
    if opts.flatten == "flatten":
        nodes.append(helper.make_node("Flatten", [pooled], [flat], name="Flatten", axis=1))
    else:
        shape = init("flatten.shape", np.array([0, -1]), dtype=np.int64)
        nodes.append(helper.make_node("Reshape", [pooled, shape], [flat], name="Reshape"))
    out = "logits"
    if opts.classifier == "gemm":
        nodes.append(
            helper.make_node(
                "Gemm",
                [flat, init("classifier.weight", wl), init("classifier.bias", bl)],
                [out],
                name="classifier/Gemm",
                alpha=1.0,
                beta=1.0,
                transB=1,
            )
        )
    else:
        mm = "classifier.matmul"
        nodes.append(
            helper.make_node("MatMul", [flat, init("classifier.weight_t", wl.T)], [mm], name="classifier/MatMul")
        )
        nodes.append(helper.make_node("Add", [mm, init("classifier.bias", bl)], [out], name="classifier/Add"))

    n_dim = opts.batch if opts.batch is not None else "N"
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [n_dim, 3, opts.resolution, opts.resolution])
    outp = helper.make_tensor_value_info(out, TensorProto.FLOAT, [n_dim, opts.num_classes])
    graph = helper.make_graph(nodes, f"mobilenetv2_{opts.width_mult:g}_{opts.resolution}", [inp], [outp], inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opts.opset)], producer_name="mbv2", producer_version="1"
    )
    model.ir_version = min(model.ir_version, 10) if opts.opset >= 21 else min(model.ir_version, 8)
    model.doc_string = (
        f"MobileNetV2 width {opts.width_mult:g} @ {opts.resolution}, seed {opts.seed}, seeded random weights "
        "(not trained): for benchmarking and correctness checks only"
    )
    onnx.checker.check_model(model)
    return model


def model_bytes(opts: ExportOptions | None = None, **kwargs) -> bytes:
    return build_model(opts, **kwargs).SerializeToString(deterministic=True)


def export(path: str, opts: ExportOptions | None = None, **kwargs) -> str:
    data = model_bytes(opts, **kwargs)
    with open(path, "wb") as f:
        f.write(data)
    return path


def default_network(**kwargs):
    """The Network of the embedded model (imported through the same path as a user's file)."""
    from .onnx_import import import_bytes

    return import_bytes(model_bytes(**kwargs), source="<embedded MobileNetV2>")
