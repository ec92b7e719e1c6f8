"""``python -m mbv2 profile --out DIR``: Nsight traces of the NVTX-annotated runs.

With Nsight Systems (nsys) on PATH: one trace per GPU backend of one end-to-end run (after an
un-annotated warm-up), ``DIR/<backend>_bs<N>.nsys-rep``; layers show as NVTX ranges in the domain
``mbv2`` under the ``<backend>/e2e/bs<N>`` range. Else with Nsight Compute (ncu): a report of one
chosen layer's kernels, selected by its NVTX range (``ncu --nvtx --nvtx-include``).

The worker (``python -m mbv2.profile --worker``) is what the profilers launch: warm-up with NVTX
off (so the profiler's NVTX filter skips it), then one annotated run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from .errors import InputError, MbvError

HOST_BACKENDS = ("numpy", "ort")


def layer_range(backend: str, op: Any) -> str:
    """The NVTX message Network.forward gives one fused op (DESIGN.md, NVTX)."""
    return f"{backend}/{op.covers[0]}:{op.label}"


def e2e_range(backend: str, batch: int) -> str:
    return f"{backend}/e2e/bs{batch}"


def ncu_filters(range_name: str, domain: str = "mbv2") -> list[str]:
    """``--nvtx-include`` expressions for one range of ``domain``, the canonical one first.

    mbv2.nvtx opens start/end ranges (nvtxDomainRangeStartEx) whose names hold '/'. ncu reads a plain
    ``domain@a/b`` as push/pop ranges a then b, and matches nothing ("specified NVTX include expressions
    match only push/pop ranges"); its regex form, with '/' and the regex metacharacters escaped,
    selects the one range (measured with ncu on an H100, CUDA 13). The other forms are kept for tools
    that read them differently.
    """
    esc = re.escape(range_name).replace("/", "\\/")
    return [f"regex:{domain}@{esc}", f"{domain}@{range_name}", f"{domain}@{range_name}/"]


def largest_conv(net) -> int:
    convs = [op for op in net.fused if op.kind == "conv"]
    return max(convs, key=lambda op: op.layer.flops()).index


def gpu_backends(wanted: str = "") -> list[str]:
    import impls

    names = [b.strip() for b in wanted.split(",") if b.strip()] or [b for b in impls.names() if b not in HOST_BACKENDS]
    out, why = [], []
    for b in names:
        ok, reason = impls.available(b)
        (out if ok else why).append(b if ok else f"{b}: {reason}")
    if not out:
        raise MbvError("no GPU backend is available to profile (" + "; ".join(why) + ")")
    return out


def worker(backend: str, batch: int, seed: int = 0, options: dict[str, Any] | None = None) -> None:
    """Warm up with NVTX off, then one annotated end-to-end run."""
    import impls

    from . import nvtx
    from .model import default_network
    from .network import random_input

    net = default_network()
    x = random_input(net, batch, seed=seed)
    with impls.create(backend, **(options or {})) as be:
        be.prepare(net)
        nvtx.set_enabled(False)
        for _ in range(3):
            be.run(x)
        be.synchronize()
        nvtx.set_enabled(True)
        be.run(x)
        be.synchronize()


def worker_cmd(backend: str, batch: int, options: dict[str, Any] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "mbv2.profile", "--worker", "--backend", backend, "--batch", str(batch)]
    if options:
        cmd += ["--options", json.dumps(options)]
    return cmd


def _run(cmd: list[str], log_path: str) -> int:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode


def profile(out_dir: str, backends: str = "", batch: int = 1, layer: int | None = None, tool: str = "auto") -> int:
    from . import nvtx

    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    nsys, ncu = shutil.which("nsys"), shutil.which("ncu")
    if tool == "auto":
        tool = "nsys" if nsys else "ncu" if ncu else ""
    if not tool:
        raise MbvError("neither Nsight Systems (nsys) nor Nsight Compute (ncu) is on PATH")
    if (tool == "nsys" and not nsys) or (tool == "ncu" and not ncu):
        raise MbvError(f"{tool} is not on PATH")
    if nvtx.status().startswith("off"):
        print(f"warning: NVTX is {nvtx.status()}; the trace will have no mbv2 ranges", file=sys.stderr)
    names = gpu_backends(backends)
    os.makedirs(out_dir, exist_ok=True)
    failed = 0
    if tool == "nsys":
        for b in names:
            out = os.path.join(out_dir, f"{b}_bs{batch}")
            cmd = [nsys, "profile", "--trace=cuda,nvtx", "--force-overwrite=true", "-o", out, *worker_cmd(b, batch)]
            rc = _run(cmd, out + ".log")
            print(f"{b}: {'wrote ' + out + '.nsys-rep' if rc == 0 else f'nsys exit {rc}, see {out}.log'}")
            failed += rc != 0
        return 1 if failed else 0
    from .model import default_network

    net = default_network()
    idx = largest_conv(net) if layer is None else layer
    if not 0 <= idx < len(net.fused):
        raise InputError(f"--layer must be a fused op index in 0..{len(net.fused) - 1}, got {idx}")
    b = names[0]
    rng = layer_range(b, net.fused[idx])
    out = os.path.join(out_dir, f"{b}_op{idx}_bs{batch}")
    cmd = [
        ncu,
        "--clock-control",  # never touch the GPU's clocks (ncu locks them to base by default)
        "none",
        "--nvtx",
        "--nvtx-include",
        ncu_filters(rng)[0],
        "--set",
        "basic",
        "-f",
        "-o",
        out,
        *worker_cmd(b, batch),
    ]
    rc = _run(cmd, out + ".log")
    print(f"{b} op {idx} ({rng}): {'wrote ' + out + '.ncu-rep' if rc == 0 else f'ncu exit {rc}, see {out}.log'}")
    return 0 if rc == 0 else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mbv2.profile")
    p.add_argument("--worker", action="store_true", help="(internal) the process the profiler launches")
    p.add_argument("--backend", default="")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--out", default="results/profile")
    p.add_argument("--layer", type=int, default=None)
    p.add_argument("--tool", choices=["auto", "nsys", "ncu"], default="auto")
    p.add_argument("--options", default="", help="(worker) backend options as JSON, e.g. '{\"graph\": true}'")
    args = p.parse_args(argv)
    if args.worker:
        worker(args.backend, args.batch, options=json.loads(args.options) if args.options else None)
        return 0
    try:
        return profile(args.out, args.backend, args.batch, args.layer, args.tool)
    except MbvError as exc:
        print(f"mbv2: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
