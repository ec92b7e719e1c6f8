"""A/B end-to-end timing of kernel specs of the custom backend, interleaved so that clock drift and run order
do not decide the comparison. H100 (any CUDA GPU); results/NOTES.md cites its output.

    python3 scripts/e2e_ab.py --dtype fp16 --batches 1,64,256 --specs ";hdepthwise=v4" --rounds 5 --json out.json

Each spec gets its own backend, prepared and planned once (CUDA graph; the plan's autotuner runs then, so the
launches that are compared are fixed before any timing); then `rounds` rounds time every spec in turn (CUDA-event
median of `repeats` graph replays after warm-up, mbv2.timing). Printed per batch and spec: the median over rounds,
the spread (min-max of the round medians), the launch count, and the plan's launches that differ from the first
spec's (kernel names), so a difference in the figures can be traced to the kernels behind it. Before any timing,
each planned backend's logits (NaN-poisoned buffers first) are checked against ONNX Runtime with the e2e tolerance
of the dtype (--no-check skips it): a faster plan that is wrong fails here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cupy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import impls  # noqa: E402
from impls import _custom_kernels as K  # noqa: E402
from impls.custom import CustomBackend  # noqa: E402
from mbv2.model import default_network  # noqa: E402
from mbv2.network import random_input  # noqa: E402
from mbv2.timing import cuda_event_timing  # noqa: E402
from mbv2.tolerances import assert_close  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "fp16"))
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--specs", default=";", help="';'-separated kernel specs ('' = the defaults)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default="")
    ap.add_argument(
        "--tune-hide-launch",
        type=int,
        choices=(0, 1),
        default=1,
        help="0: the autotuner's timed windows without the spin-kernel cover (CustomBackend.TUNE_HIDE_LAUNCH)",
    )
    ap.add_argument("--no-check", action="store_true", help="skip checking each plan's logits against ONNX Runtime")
    args = ap.parse_args()
    CustomBackend.TUNE_HIDE_LAUNCH = bool(args.tune_hide_launch)
    specs = args.specs.split(";")  # a spec may repeat: a control for order effects (same plan, other instance)
    net = default_network()
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        x = random_input(net, batch, seed=batch)
        ref = None
        if not args.no_check:  # every plan compared is first checked: logits against ONNX Runtime (DESIGN.md's e2e)
            ort = impls.create("ort")
            ort.prepare(net)
            ref = ort.run(x)
        bes = []
        plan_secs: list[float] = []
        for spec in specs:
            # "pdl=0" / "pdl=1" in a spec is the backend's pdl option, "plantune=0" / "plantune=1" its plan_tune,
            # "tuneflop=X" its TUNE_MIN_FLOP (the smallest problem the autotuner times), "block6max=N" the largest
            # batch it runs exdwpw6 blocks at, "b0split=0/1" / "b0k4=0/1" block0 v4's block0_split / block0_k4,
            # "picks=FILE" its tune_picks (an earlier run's autotuner picks replayed: `python -m mbv2 picks`); not
            # kernel families; "trig=1+4-9" fuse v45's trigger_launches (the plan positions on early-trigger twins),
            # "stage=1+2" fuse v47's stage_launches (the exdwpw5 positions on staged twins)
            opt_keys = (
                "pdl=",
                "plantune=",
                "tuneflop=",
                "block6max=",
                "b0split=",
                "b0k4=",
                "picks=",
                "trig=",
                "stage=",
            )
            opts = dict(t.strip().split("=", 1) for t in spec.split(",") if t.strip().startswith(opt_keys))
            kspec = ",".join(t for t in spec.split(",") if not t.strip().startswith(opt_keys))
            pdl = bool(int(opts["pdl"])) if "pdl" in opts else None
            pt = bool(int(opts["plantune"])) if "plantune" in opts else None
            be = CustomBackend(
                dtype=args.dtype, graph=True, kernels=kspec, pdl=pdl, plan_tune=pt, tune_picks=opts.get("picks")
            )
            if "tuneflop" in opts:
                be.TUNE_MIN_FLOP = float(opts["tuneflop"])
            if "block6max" in opts:
                be.exdwpw6_max_batch = int(opts["block6max"])
            if "b0split" in opts:
                be.block0_split = bool(int(opts["b0split"]))
            if "b0k4" in opts:
                be.block0_k4 = bool(int(opts["b0k4"]))
            if "trig" in opts:
                be.trigger_launches = K.trigger_set_parse(opts["trig"])
            if "stage" in opts:
                be.stage_launches = K.trigger_set_parse(opts["stage"])
            be.prepare(net)
            t0 = time.perf_counter()
            be.plan(batch)
            plan_s = time.perf_counter() - t0
            be.run(x)
            if ref is not None:
                be.poison(batch)
                assert_close(
                    be.run(x), ref, args.dtype, "e2e", what=f"e2e_ab {args.dtype} bs{batch} {spec or 'default'}"
                )
            bes.append(be)
            changed = len(be.plan_tuned.get(batch, []))
            print(
                f"[bs{batch} {spec or 'default'}: planned in {plan_s:.1f} s, {len(be.plan(batch).launches)} launches, "
                f"plan_tune {'on' if be.plan_tune else 'off'}: {changed} launches changed]",
                flush=True,
            )
            plan_secs.append(plan_s)
        times: list[list[float]] = [[] for _ in specs]
        for _ in range(args.rounds):
            for j, be in enumerate(bes):
                t = cuda_event_timing(
                    lambda i, be=be, batch=batch: be.enqueue(batch), warmup=3, repeats=args.repeats, stream=be.stream
                )
                times[j].append(t.median_ms)
        base = [la.name for la in bes[0].plan(batch).launches]
        for j, (spec, be) in enumerate(zip(specs, bes)):
            names = [la.name for la in be.plan(batch).launches]
            med = statistics.median(times[j])
            diff = sorted(set(names) ^ set(base))
            row = {
                "gpu": gpu.decode() if isinstance(gpu, bytes) else str(gpu),
                "dtype": args.dtype,
                "batch": batch,
                "kernels": spec or "default",
                "tune_hide_launch": CustomBackend.TUNE_HIDE_LAUNCH,
                "tune_min_flop": be.TUNE_MIN_FLOP,
                "checked_against_ort": ref is not None,
                "device_ms": med,
                "instance": j,
                "round_medians_ms": times[j],
                "launches": len(names),
                "kernels_not_in_first_spec": [n for n in diff if n in names],
                "tuned": {str(k): v for k, v in be.tuned.items()},
                "plan_tune": be.plan_tune,
                "carveout": be.carveout,  # MBV2_CARVEOUT (one value per process; None: the driver's default)
                "pdl_trigger": be.pdl_trigger,  # MBV2_PDL_TRIGGER (one value per process)
                "stage": be.stage,  # MBV2_STAGE (one value per process)
                "b0split": be.b0split,  # MBV2_B0SPLIT (one value per process)
                "trigger_launches": None if be.trigger_launches is None else sorted(be.trigger_launches),
                "stage_launches": None if be.stage_launches is None else sorted(be.stage_launches),
                "plan_tuned": be.plan_tuned.get(batch, []),
                "plan_s": plan_secs[j],
            }
            rows.append(row)
            print(
                f"ab {args.dtype} bs{batch:<4} #{j} {spec or 'default':28s} device {med:8.4f} ms "
                f"(rounds {min(times[j]):.4f}-{max(times[j]):.4f})  {batch / med * 1e3:9.0f} img/s  "
                f"launches {len(names)}  new kernels {row['kernels_not_in_first_spec'][:6]}",
                flush=True,
            )
        for be in bes:
            be.close()
        cupy.get_default_memory_pool().free_all_blocks()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
