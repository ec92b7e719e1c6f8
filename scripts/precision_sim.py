"""How much end-to-end error the arithmetic alone causes on a model: a NumPy simulation, no GPU.

Runs the network in float64 with (a) weights and every layer's output rounded to float16 ("ideal fp16
storage", fp16 tensor-core kernels with fp32 accumulation do no better) and (b) both operands of every
conv / linear rounded to TF32 (10-bit mantissa) with fp32 activations ("ideal TF32"), and prints the
rel L2 of the logits against float64, next to the tolerances of mbv2/tolerances.py. A kernel cannot
beat these figures; a model whose figures are near the tolerance cannot judge kernels of that dtype.

    python scripts/precision_sim.py [--images 8] [--width 1.0] [--resolution 224] [--seed 0] [--onnx FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls.numpy_ref import NumpyBackend  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.tolerances import TOLERANCES, rel_l2  # noqa: E402


def round_fp16(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(np.float16).astype(np.float64)


def round_tf32(a: np.ndarray) -> np.ndarray:
    """Round to nearest (ties away) at 10 mantissa bits, as the tensor cores read fp32 operands in TF32 mode."""
    f = np.array(a, np.float32)
    bits = f.view(np.uint32)
    bits += np.uint32(0x1000)
    bits &= np.uint32(0xFFFFE000)
    return f.astype(np.float64)


class SimulatedPrecision(NumpyBackend):
    """float64 arithmetic with the rounding of one reduced-precision mode applied at its points."""

    def __init__(self, mode: str) -> None:
        super().__init__(dtype="fp64")
        if mode not in ("fp32", "tf32", "fp16"):
            raise ValueError(f"mode must be fp32, tf32 or fp16, got {mode!r}")
        self.mode = mode

    def _operand(self, a: np.ndarray) -> np.ndarray:
        if self.mode == "fp16":
            return round_fp16(a)
        if self.mode == "tf32":
            return round_tf32(a)
        return np.asarray(a, np.float32).astype(np.float64)

    def _stored(self, a: np.ndarray) -> np.ndarray:
        return round_fp16(a) if self.mode == "fp16" else np.asarray(a, np.float32).astype(np.float64)

    def _params(self, layer):
        w, b = super()._params(layer)
        return self._operand(w), (round_fp16(b) if self.mode == "fp16" else b)

    def conv2d(self, x, layer, act=False, residual=None):
        return self._stored(super().conv2d(self._operand(x), layer, act, residual))

    def global_avg_pool(self, x):
        return self._stored(super().global_avg_pool(x))

    def linear(self, x, layer):
        return super().linear(self._operand(x), layer)


def simulate(net, images: int = 8, seed: int = 3) -> dict[str, float]:
    x = random_input(net, images, seed=seed)
    ref = NumpyBackend(dtype="fp64")
    ref.prepare(net)
    y = net.forward(ref, ref.to_device(x))
    errors = {}
    for mode in ("fp32", "tf32", "fp16"):
        be = SimulatedPrecision(mode)
        be.prepare(net)
        errors[mode] = rel_l2(net.forward(be, be.to_device(x)), y)
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0, help="seed of the embedded model")
    ap.add_argument("--onnx", help="an ONNX file instead of the embedded model")
    args = ap.parse_args(argv)
    from mbv2.model import default_network
    from mbv2.onnx_import import import_file

    if args.onnx:
        net = import_file(args.onnx)
    else:
        net = default_network(width_mult=args.width, resolution=args.resolution, seed=args.seed)
    errors = simulate(net, args.images)
    for mode, err in errors.items():
        tol = TOLERANCES[mode].e2e
        print(f"{mode:5s} end-to-end rel L2 {err:.2e}  (tolerance {tol:.0e}: {'within' if err < tol else 'ABOVE'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
