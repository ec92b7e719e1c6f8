"""The embedded model does not amplify rounding error: reduced-precision kernels can be judged on it.

scripts/precision_sim.py runs the network in float64 with the rounding of ideal fp16 storage / ideal
TF32 operands applied; no kernel does better. fp16 must stay well inside its end-to-end tolerance
(the old model, with random BatchNorm statistics, was at 3.8e-2 against 3e-2). TF32's floor on this
network (~6e-3) is above DESIGN.md's 5e-3: recorded, not asserted (results/NOTES.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from precision_sim import simulate  # noqa: E402

from mbv2.model import default_network  # noqa: E402
from mbv2.tolerances import TOLERANCES  # noqa: E402


def test_ideal_fp16_error_of_embedded_model_is_well_inside_tolerance():
    errors = simulate(default_network(), images=2)
    assert errors["fp32"] < TOLERANCES["fp32"].e2e / 10, errors
    assert errors["fp16"] < TOLERANCES["fp16"].e2e / 2, errors
    # the simulation really rounds: an fp16 result identical to float64 would mean a broken test
    assert errors["fp16"] > 1e-4 and errors["tf32"] > 1e-4, errors
