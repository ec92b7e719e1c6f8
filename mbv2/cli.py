"""python -m mbv2 <command> ...  (export, topology, backends, run, weights, picks, report, compare, profile)

Errors a user can act on print one line and exit 2 (verification failures exit 1); --debug shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from .errors import InputError, MbvError
from .tolerances import DTYPES, TOP1_AGREEMENT, max_abs, rel_l2, tolerance, top1_agreement


def load_network(path: str | None):
    """The Network of --model PATH, or of the embedded default MobileNetV2 when no path is given."""
    if path:
        from .onnx_import import import_file

        return import_file(path)
    from .model import default_network

    return default_network()


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


# -- export ------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from .model import ExportOptions, export

    try:
        opts = ExportOptions(
            width_mult=args.width_mult,
            resolution=args.resolution,
            seed=args.seed,
            opset=args.opset,
            batch=args.batch,
            fold_bn=not args.unfold_bn,
        )
        opts.validate()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise InputError(f"output directory does not exist: {out_dir}")
    export(args.out, opts)
    print(
        f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB): MobileNetV2 width {opts.width_mult:g} "
        f"@ {opts.resolution}, seed {opts.seed}, opset {opts.opset}, "
        f"batch {'dynamic' if opts.batch is None else opts.batch}"
    )
    return 0


# -- topology ----------------------------------------------------------------------------------
def cmd_topology(args: argparse.Namespace) -> int:
    net = load_network(args.model)
    print(net.listing(fused=args.fused))
    return 0


# -- backends ----------------------------------------------------------------------------------
def cmd_backends(args: argparse.Namespace) -> int:
    import impls

    rows = []
    for name in impls.names():
        ok, reason = impls.available(name)
        rows.append({"backend": name, "available": ok, "reason": reason})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        width = max(len(r["backend"]) for r in rows)
        for r in rows:
            status = "available" if r["available"] else f"not available: {r['reason']}"
            print(f"{r['backend']:<{width}}  {status}")
    return 0


# -- run ---------------------------------------------------------------------------------------
def _load_input(path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise InputError(f"input file not found: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"cannot read {path} as a .npy array: {exc}") from None
    if not isinstance(x, np.ndarray):
        raise InputError(f"{path} holds {type(x).__name__}, not a single array (.npz is not supported)")
    return x


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cmd_run(args: argparse.Namespace) -> int:
    import impls
    from impls.base import validate_input

    from .network import random_input

    net = load_network(args.model)
    model = args.model or "<embedded MobileNetV2-1.0>"
    if args.input:
        x = _load_input(args.input)
        validate_input(net, x)
        if args.batch is not None and args.batch != x.shape[0]:
            raise InputError(f"--batch {args.batch} disagrees with the input file's batch {x.shape[0]}")
    else:
        batch = args.batch if args.batch is not None else (net.batch or 1)
        if batch < 1:
            raise InputError(f"batch must be >= 1, got {batch}")
        x = random_input(net, batch, seed=args.seed)
        validate_input(net, x)
    options: dict[str, Any] = {"dtype": args.dtype}
    if args.graph:
        options["graph"] = True
    if args.kernel_version:
        options["kernels"] = args.kernel_version
    with impls.create(args.backend, **options) as backend:
        backend.prepare(net)
        logits = backend.run(x)  # warm-up (lazy loads, autotuning) outside the figure
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            logits = backend.run(x)
            times.append((time.perf_counter() - t0) * 1e3)
        info = backend.info()
    latency = float(np.median(times))
    probs = softmax(logits)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    result: dict[str, Any] = {
        "backend": args.backend,
        "batch": int(x.shape[0]),
        "dtype": args.dtype,
        "model": model,
        "latency_ms": latency,
        "latency_note": f"host wall time incl. upload/download, median of {len(times)}",
        "top5": [[{"class": int(c), "score": float(probs[i, c])} for c in top5[i]] for i in range(len(x))],
        "backend_info": info,
    }
    failed = False
    if args.verify:
        with impls.create(args.verify) as ref_backend:
            ref_backend.prepare(net)
            ref = ref_backend.run(x)
        tol = tolerance(args.dtype, "e2e")
        err, mad, agree = rel_l2(logits, ref), max_abs(logits, ref), top1_agreement(logits, ref)
        failed = not (err < tol and agree >= TOP1_AGREEMENT[args.dtype])
        result.update(
            {
                "verify": args.verify,
                "rel_l2": err,
                "max_abs": mad,
                "top1_agree": agree,
                "tolerance": tol,
                "passed": not failed,
            }
        )
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model {model}  backend {args.backend}  batch {x.shape[0]}  dtype {args.dtype}")
        for i in range(len(x)):
            entries = ", ".join(f"{e['class']}:{e['score']:.4f}" for e in result["top5"][i])
            print(f"image {i}: top-5 {entries}")
        print(f"latency {latency:.3f} ms ({result['latency_note']})")
        if args.verify:
            print(
                f"vs {args.verify}: rel L2 {result['rel_l2']:.3e} (tolerance {result['tolerance']:.0e}), "
                f"max abs {result['max_abs']:.3e}, top-1 agreement {result['top1_agree'] * 100:.1f}% "
                f"-> {'PASS' if not failed else 'FAIL'}"
            )
    return 1 if failed else 0


# -- picks -------------------------------------------------------------------------------------
def cmd_picks(args: argparse.Namespace) -> int:
    """One benchmark's autotuner picks from a pytest-benchmark run.json (extra_info.tuned), as the JSON mapping the
    custom backend replays (tune_picks=, MBV2_TUNE_PICKS): the same plan without timing anything again."""
    try:
        with open(args.run_json) as f:
            run = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{args.run_json}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{args.run_json}: not readable JSON ({exc})") from None
    if not isinstance(run, dict) or not isinstance(run.get("benchmarks"), list):
        raise InputError(f"{args.run_json}: not a pytest-benchmark run (no 'benchmarks' list)")
    found = {
        b.get("name", "?"): b
        for b in run["benchmarks"]
        if isinstance(b, dict) and isinstance((b.get("extra_info") or {}).get("tuned"), dict)
    }
    if not found:
        raise InputError(f"{args.run_json}: no benchmark recorded autotuner picks (extra_info.tuned)")
    if args.bench is None:
        for name, b in found.items():
            print(f"{name}  ({len(b['extra_info']['tuned'])} picks)")
        print(f"pick one with --bench NAME ({len(found)} benchmarks with picks)", file=sys.stderr)
        return 0
    hits = [b for name, b in found.items() if args.bench in (name, b.get("fullname"))]
    if not hits:
        near = [n for n in found if args.bench in n][:5]
        raise InputError(f"no benchmark named {args.bench!r} with picks in {args.run_json}" + (
            f"; names containing it: {near}" if near else "; run without --bench to list them"))  # fmt: skip
    tuned = hits[0]["extra_info"]["tuned"]
    text = json.dumps(tuned, indent=1, sort_keys=True) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        mi = run.get("machine_info")
        git = ((mi.get("mbv2") or {}).get("git") or {}) if isinstance(mi, dict) else {}
        commit = git.get("commit") if isinstance(git, dict) else None
        print(f"wrote {len(tuned)} picks of {hits[0].get('name')} to {args.out}" + (f" (commit {commit})" if commit
              else ""))  # fmt: skip
    else:
        sys.stdout.write(text)
    return 0


# -- weights -----------------------------------------------------------------------------------
def cmd_weights(args: argparse.Namespace) -> int:
    from .weights import compare_weights, initializers, read_weights, write_weights

    net = load_network(args.model)
    tensors = initializers(net.model_bytes)
    if args.load:
        loaded = read_weights(args.load)
        bad = compare_weights(tensors, loaded)
        if bad:
            print(f"{len(bad)} of {len(tensors)} tensors differ from the model, first: {bad[:5]}")
            return 1
        print(f"read {len(loaded)} tensors from {args.load}: bit-identical to the model's initializers")
        return 0
    manifest = write_weights(tensors, args.out)
    n = sum(int(np.prod(e["shape"], dtype=np.int64)) for e in manifest["tensors"])
    print(f"wrote {len(manifest['tensors'])} tensors ({n} values) and manifest.json to {args.out}")
    return 0


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mbv2", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    e = sub.add_parser("export", help="write the embedded MobileNetV2 as ONNX")
    e.add_argument("--out", required=True, help="output .onnx path")
    e.add_argument("--width-mult", type=float, default=1.0)
    e.add_argument("--resolution", type=int, default=224)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--opset", type=int, default=17)
    e.add_argument("--batch", type=_positive_int, default=None, help="fixed batch (default: dynamic)")
    e.add_argument("--unfold-bn", action="store_true", help="keep BatchNormalization nodes")
    e.set_defaults(func=cmd_export)

    t = sub.add_parser("topology", help="print the layer listing (seed Step 2 format)")
    t.add_argument("--model", help="ONNX file (default: the embedded model)")
    t.add_argument("--fused", action="store_true", help="the fused op list the backends run")
    t.set_defaults(func=cmd_topology)

    b = sub.add_parser("backends", help="list backends and whether each is available here")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_backends)

    r = sub.add_parser("run", help="run the network on one backend, print top-5 and latency")
    r.add_argument("--model", help="ONNX file (default: the embedded model)")
    r.add_argument("--backend", required=True)
    r.add_argument("--batch", type=int, default=None, help="batch of the random input (default 1)")
    r.add_argument("--seed", type=int, default=0, help="seed of the random input")
    r.add_argument("--input", help=".npy file, float32 (N, C, H, W)")
    r.add_argument("--dtype", default="fp32", choices=DTYPES)
    r.add_argument("--verify", choices=["ort", "numpy"], help="compare logits with this backend")
    r.add_argument("--graph", action="store_true", help="CUDA-graph replay (GPU backends)")
    r.add_argument("--kernel-version", help="custom backend: pin versions, e.g. gemm=v2,pool=v1")
    r.add_argument("--repeat", type=int, default=5, help="timed runs after one warm-up (median reported)")
    r.add_argument("--json", action="store_true", help="one JSON object")
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("weights", help="write the model's initializers as text files, or read them back")
    w.add_argument("--model", help="ONNX file (default: the embedded model)")
    g = w.add_mutually_exclusive_group(required=True)
    g.add_argument("--out", help="directory to write")
    g.add_argument("--load", help="directory to read back and compare bit for bit with the model")
    w.set_defaults(func=cmd_weights)

    k = sub.add_parser("picks", help="one benchmark's autotuner picks from a run.json, for MBV2_TUNE_PICKS")
    k.add_argument("run_json", help="a pytest-benchmark JSON written by `make bench`")
    k.add_argument("--bench", help="benchmark name or fullname, e.g. 'test_e2e[custom-fp32-graph-bs1]' (omit: list)")
    k.add_argument("--out", help="file to write (default: stdout)")
    k.set_defaults(func=cmd_picks)

    try:
        from .report import register_cli
    except ImportError:
        register_cli = None
    if register_cli is not None:
        register_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MbvError as exc:
        if args.debug:
            raise
        print(f"mbv2: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mbv2: interrupted", file=sys.stderr)
        return 130
