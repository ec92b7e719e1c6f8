"""How far apart the autotuner's picks land for the same op in fresh backends (the spread noticed in session 7
and in the H200 run of session 9, where the classifier at batch 64 took 20.5 us per call against 13.6 on the H100).
Any CUDA GPU; results/NOTES.md cites its output.

    python3 scripts/tuner_spread.py --ops 23,53 --batch 64 --backends 4 [--warm-ms 300] [--rounds 3]

Per op (the index of a fused op of the default network) and fresh backend: the op runs once (the tuner picks then),
then the kernels its call launches (bench.harness.launched_kernels) and the CUDA-event median of its device time,
measured the way bench/test_ops.py measures it (rotated inputs, warm-up, `inner` calls per sample).
--warm-ms keeps the GPU busy (SGEMMs) that long right before the tuner runs (is the spread the clock ramp from
idle?); --rounds overrides the tuner's TUNE_ROUNDS (is it too few samples?).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Rotation, gpu_inner, launched_kernels, op_call, op_inputs, op_work  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.timing import cuda_event_timing, rotation_count, stream_of  # noqa: E402


def warm_gpu(ms: float) -> None:
    """Busy the GPU with SGEMMs for about ``ms`` of host time, then wait for them."""
    import time

    import cupy

    a = cupy.ones((4096, 4096), cupy.float32)
    end = time.perf_counter() + ms / 1e3
    while time.perf_counter() < end:
        a @ a
        cupy.cuda.get_current_stream().synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="23,53")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--backends", type=int, default=4)
    ap.add_argument("--warm-ms", type=float, default=0.0)
    ap.add_argument("--rounds", type=int, default=0, help="the tuner's TUNE_ROUNDS (0: the backend's own)")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    net = default_network()
    rows = []
    for idx in [int(i) for i in args.ops.split(",")]:
        op = net.fused[idx]
        for b in range(args.backends):
            be = CustomBackend(dtype="fp32")
            be.prepare(net)
            call = op_call(be, op)
            rot = Rotation()
            n_sets = rotation_count(op_work(op, args.batch, "fp32")["bytes"])
            for k in range(n_sets):
                x, r = op_inputs(op, args.batch, 1000 + idx + 7919 * k)
                rot.sets.append((be.to_device(x), be.to_device(r) if r is not None else None))
            if args.warm_ms > 0:
                warm_gpu(args.warm_ms)
            if args.rounds:
                be.TUNE_ROUNDS = args.rounds
            call(*rot.sets[0])  # the tuner picks here
            kernels = launched_kernels(be, lambda call=call, rot=rot: call(*rot.sets[0]))
            t = cuda_event_timing(
                lambda i, call=call, rot=rot: call(*rot(i)),
                warmup=10,
                repeats=30,
                stream=stream_of(be),
                inner=gpu_inner(args.batch),
            )
            row = {"warm_ms": args.warm_ms, "rounds": be.TUNE_ROUNDS, "op": idx, "describe": op.label}
            row.update(backend=b, us=t.median_ms * 1e3, kernels=kernels)
            rows.append(row)
            head = f"warm {args.warm_ms:g} ms rounds {be.TUNE_ROUNDS} op{idx:<3} bs{args.batch} backend {b}"
            print(f"{head}: {row['us']:7.1f} us  {' + '.join(kernels)}", flush=True)
            be.close()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
