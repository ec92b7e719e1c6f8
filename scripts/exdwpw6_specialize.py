"""Does exdwpw6's code size cost time? (session 18; results/NOTES.md "exdwpw6 with compile-time modes"). H100.

    nvcc -std=c++17 -O3 -lineinfo -DEXDWPW6_FIX_MODES -DEXDWPW6_PC=2 -DEXDWPW6_KS=2 -DEXDWPW6_RPF=1 -DEXDWPW6_DS=0 \
        -arch=sm_90a -cubin -o .spec/cblock_pc2_ks2_rpf1_ds0.cubin kernels/cblock.cu      # here, then carried
    python3 scripts/exdwpw6_specialize.py --cubin .spec/cblock_pc2_ks2_rpf1_ds0.cubin --pc 2 --ks 2 --rpf 1 --ds 0

ncu reads 1.4-3.3 cycles per issue of "no_instruction" stalls in the exdwpw6 kernels at batch 1 (call 7). Each kernel
holds every mapping of every phase (65-93 KB of SASS); the modes are runtime arguments. The measuring build
EXDWPW6_FIX_MODES makes them compile-time constants (one path per phase, about half the code). Three CUDA graphs of
the default batch-`batch` plan are timed in interleaved rounds (CUDA-event median of `repeats` replays,
mbv2.timing): the plan as tuned; every exdwpw6 launch with the given modes (the generic kernels); the same launches
with the specialised kernels. The last two must give the same bits (checked), and both must match the tuned plan's
logits within the fp32 e2e tolerance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

import cupy
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import CudaGraph, cuda_event_timing  # noqa: E402
from mbv2.tolerances import assert_close  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cubin", required=True)
    ap.add_argument("--pc", type=int, required=True)
    ap.add_argument("--ks", type=int, required=True)
    ap.add_argument("--rpf", type=int, required=True)
    ap.add_argument("--ds", type=int, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    net = default_network()
    be = CustomBackend(graph=True)
    be.prepare(net)
    plan = be.plan(args.batch)
    x = random_input(net, args.batch, seed=args.batch)
    y_tuned = be.run(x)  # (leaves x in the plan's input buffer)
    mod = cupy.RawModule(path=args.cubin)
    modes = tuple(np.int32(v) for v in (args.pc, args.ks, args.rpf, args.ds))
    gen, spec = [], []
    for la in plan.launches:
        if not la.name.startswith("exdwpw6"):
            gen.append(la)
            spec.append(la)
            continue
        g = dataclasses.replace(la, args=la.args[:24] + modes)  # (.., has_res, proj_cols, ex_ks, red_pf, dw_segs)
        fn = be._dyn_smem(mod.get_function(la.name), la.smem)
        be._nonportable.discard(la.name)  # (the generic function of this name is opted in already)
        be._allow_nonportable_cluster(la.name, fn)
        gen.append(g)
        spec.append(dataclasses.replace(g, kernel=fn))
    graphs = {"tuned plan": plan.graph}
    outs = {}
    for label, seq in (("generic, fixed modes", gen), ("specialised, fixed modes", spec)):
        graphs[label] = CudaGraph(lambda seq=seq: be._enqueue_launches(seq), be.stream)
        plan.out.fill(np.nan)
        graphs[label].replay()
        outs[label] = cupy.asnumpy(plan.out)
    a, b = outs.values()
    same = bool(np.array_equal(a, b))
    for label, y in outs.items():
        assert_close(y, y_tuned, "fp32", "e2e", what=label)
    times: dict[str, list[float]] = {k: [] for k in graphs}
    for _ in range(args.rounds):
        for label, g in graphs.items():
            t = cuda_event_timing(lambda i, g=g: g.replay(), warmup=3, repeats=args.repeats, stream=be.stream)
            times[label].append(t.median_ms * 1e3)
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
    rows = []
    for label, t in times.items():
        med = statistics.median(t)
        rows.append({"gpu": gpu, "batch": args.batch, "graph": label, "modes": [int(m) for m in modes],
                     "device_us": med, "rounds_us": t})  # fmt: skip
        print(f"spec {gpu} bs{args.batch} {label:26s} {med:8.2f} us (rounds {min(t):.2f}-{max(t):.2f})", flush=True)
    print(f"spec generic and specialised logits bitwise equal: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "bitwise_equal": same}, indent=1))
    if not same:
        raise SystemExit("the specialised kernels changed the logits' bits")


if __name__ == "__main__":
    main()
