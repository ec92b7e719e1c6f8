"""Time the classifier (MobileNetV2's Linear 1280 -> 1000) alone per batch: linear v3's path (the GEMV up to batch 8,
above it the split-K GEMM + reduce, autotuned where the plan would tune it) against linear v4's one-launch cluster
kernel linear_c8 (kernels/cblock.cu) at every batch, so the batch range where linear_c8 wins is measured, not
assumed. Each output is checked against NumPy float64 (NaN-poisoned first). CUDA-event medians, W in L2 (it is read
once per inference either way). results/NOTES.md cites the output.

    python3 scripts/linear_time.py --batches 1,2,4,8,16,32,64,128,256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cupy  # noqa: E402

from impls.custom import CustomBackend  # noqa: E402
from impls.numpy_ref import NumpyBackend  # noqa: E402
from mbv2.layers import Linear  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import cuda_event_timing  # noqa: E402
from mbv2.tolerances import assert_close  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,2,4,8,16,32,64,128,256")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    net = default_network()
    lay = next(layer for layer in net.layers if isinstance(layer, Linear))
    ref = NumpyBackend(dtype="fp64")
    old = CustomBackend(kernels="linear=v3")
    new = CustomBackend(kernels="linear=v4")
    for be in (old, new):
        be._ensure_device()
        be._layer_params(lay)
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    rows = []
    print(f"== {gpu} fp32 Linear({lay.in_features}, {lay.out_features}) alone, us (CUDA-event median)")
    print(f"{'batch':>6} {'v3 kernels':<44} {'v3 us':>8} {'linear_c8 us':>13} {'ratio':>6}")
    for batch in [int(b) for b in args.batches.split(",")]:
        x = np.random.default_rng(batch).standard_normal((batch, lay.in_features), dtype=np.float32)
        want = ref.linear(x.astype(np.float64), lay)
        row: dict = {"batch": batch}
        for tag, be in (("v3", old), ("c8", new)):
            xd = be.to_device(x)
            with be.stream:
                out = cupy.full((batch, lay.out_features), np.nan, cupy.float32)
            if tag == "v3":
                launches = be._linear_launches(xd, lay, out)  # the GEMM's autotuner (if any) runs here
            else:
                launches = [be._linear_c8_launch(xd, be._layer_params(lay), out)]
                if launches[0] is None:
                    raise SystemExit(f"linear_c8 does not apply at batch {batch}")
            be.launch_all(launches)
            be.stream.synchronize()
            assert_close(be.to_host(out), want, "fp32", "layer", what=f"{tag} bs{batch}")
            fn = lambda i, ls=launches, b=be: b.launch_all(ls)  # noqa: E731
            t = cuda_event_timing(fn, warmup=20, repeats=args.repeats, stream=be.stream, inner=10)
            row[tag] = {"kernels": [la.name for la in launches], "median_us": t.median_ms * 1e3, "timing": t.as_dict()}
        rows.append(row)
        v3, c8 = row["v3"]["median_us"], row["c8"]["median_us"]
        print(f"{batch:>6} {' + '.join(row['v3']['kernels']):<44} {v3:>8.2f} {c8:>13.2f} {c8 / v3:>6.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu, "layer": lay.describe([]), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
