"""Fill the kernel build cache here, with no GPU, for a device call (session 27): a cold device machine spends ~250 s
of its time compiling the tuner's fixed builds; this compiles the same builds on this machine instead.

    python3 scripts/cache_prefill.py [LISTING] [--run RUN_JSON [--flags] [--trigger]] --cache DIR [--nvcc PATH]

LISTING names earlier builds: a directory of cubins (an earlier cache, e.g. a device call's `.cache/kernels` brought
back as a tarball and unpacked) or a text file of cubin names, one per line. Each cubin's name starts with its build's
name (impls/_custom_kernels.py _compile_cached: <build>-sm<arch>-<key>.cubin); the build is compiled again from the
CURRENT sources into DIR/kernels, with the key the backend will compute on the device. The key includes the nvcc path
string, so --nvcc must be the path the device's backend finds (find_nvcc: /usr/local/cuda/bin/nvcc on the H200 image,
seen in session 27) and the same nvcc version (13.0 here and there). Carry DIR to the device (a tarball under an
ignored folder) and point MBV2_CACHE at it there: builds found are loaded, any other is compiled there as usual.
Prints one line per 25 builds and a summary; exits 1 if any build fails.

--run adds the fixed builds that a benchmark run's plans name (each figure's `kernels`: the launches in order, arch
--arch), so a run's own builds are there even where the listing came from other picks; --flags adds their fuse v43
hand-off twins: each exdwpw6 fixed build's flag twin (<build>_hf, K.build_exdwpw6_spec(flags=True)) and each exdwpw5
fixed build's epoch twin (<build>_ep, K.build_fixed(epoch=True)). --trigger adds their fuse v45 early-trigger twins:
each exdwpw6 and exdwpw5 fixed build's <build>_te (build_exdwpw6_spec / build_fixed with early=True), and where the
run names a block0 v4 build, kernels/block0.cu's early build (block0_te, K.build_file_twin); and fuse v46's exit twin
(<build>_tx, build_exdwpw6_spec(at_exit=True)) of each exdwpw6 fixed build that a plan runs right before its head
(K.EXIT_HEADS: pwpool_c8 and v53 - v55's heads);
and fuse v47's staged twin (<build>_ta, build_fixed(staged=True)) of each exdwpw5 fixed build of
K.EXDWPW5_ASYNC_BUILDS, fuse v48's patch twin (<build>_tp, build_fixed(patch=True)) of each of K.EXDWPW5_PATCH_BUILDS,
fuse v49's b0fuse twin (<build>_tb, build_fixed(b0fuse=True)) of each of K.B0FUSE_BUILDS.
A listing's twins (those names) are built as twins.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402

_SPEC_TWINS = {K.FLAG_SUFFIX: "flags", K.TRIGGER_SUFFIX: "early", K.EXIT_SUFFIX: "at_exit"}  # build_exdwpw6_spec's
_NAME = re.compile(r"^(?P<build>.+)-sm(?P<arch>[0-9]+a?)-[0-9a-f]{16}\.cubin$")


def builds_of(listing: Path) -> list[tuple[str, str]]:
    """(build name, arch) of every cubin named in ``listing`` (a directory of cubins or a file of names)."""
    names = [p.name for p in listing.iterdir()] if listing.is_dir() else listing.read_text().split()
    out = []
    for n in names:
        m = _NAME.match(Path(n).name)
        if m is None:
            raise SystemExit(f"not a cached cubin's name: {n!r} (wanted <build>-sm<arch>-<16 hex>.cubin)")
        out.append((m["build"], m["arch"]))
    return sorted(set(out))


def builds_of_run(path: Path, arch: str, flags: bool, trigger: bool = False) -> list[tuple[str, str]]:
    """The exdwpw6 and fuse v24 fixed builds that a benchmark run's plans name (``flags``: the exdwpw6 ones' flag twins
    and the exdwpw5 ones' epoch twins too, fuse v43, and the exdwpw5 ones' flag twins, fuse v44; ``trigger``: fuse v45's
    early-trigger twins of the exdwpw6 and exdwpw5 ones, and block0.cu's early build where a block0 v4 build is named,
    and fuse v46's exit twin of each exdwpw6 one that a plan runs right before its head (K.EXIT_HEADS), and fuse v47's
    staged twin of each exdwpw5 one of K.EXDWPW5_ASYNC_BUILDS, and fuse v48's patch twin of each of
    K.EXDWPW5_PATCH_BUILDS, and fuse v49's b0fuse twin of each of K.B0FUSE_BUILDS); the launches of whole kernel files
    (gemm, linear, ...) are left out."""
    run = json.loads(path.read_text())
    plans = [[n for n in ((b.get("extra_info") or {}).get("kernels") or []) if isinstance(n, str)]
             for b in run.get("benchmarks", [])]  # fmt: skip
    names = {n for p in plans for n in p}
    out: list = []
    for p in plans if trigger else []:  # fuse v46: the exit twin of an exdwpw6 fixed build right before the head
        for prev, n in zip(p, p[1:]):
            base = K.twin_parse(prev)[0]
            if K.generic_of(n) in K.EXIT_HEADS and K.exdwpw6_spec_parse(base)[2] is not None:
                out.append((base + K.EXIT_SUFFIX, arch))
    for n in sorted(names):
        n = K.twin_parse(n)[0]  # (a v43 run names the twins: their builds too)
        six = K.exdwpw6_spec_parse(n)[1] is not None
        gen, fshape = K.fixed_parse(n)
        if six or fshape is not None:
            out.append((n, arch))
            if flags and six:
                out.append((n + K.FLAG_SUFFIX, arch))
            if flags and fshape is not None and K.fixed_kind(gen) == "exdwpw5":
                out += [(n + K.EPOCH_SUFFIX, arch), (n + K.FLAG_SUFFIX, arch)]
        kind = K.trigger_twin_kind(n) if trigger else None
        if kind is not None:
            out.append((("block0" if kind == "block0" else n) + K.TRIGGER_SUFFIX, arch))
        if kind == "fixed" and gen in K.EXDWPW5_ASYNC_BUILDS:  # fuse v47: the staged twin
            out.append((n + K.STAGE_SUFFIX, arch))
        if kind == "fixed" and gen in K.EXDWPW5_PATCH_BUILDS:  # fuse v48: the patch twin
            out.append((n + K.PATCH_SUFFIX, arch))
        if kind == "fixed" and gen in K.B0FUSE_BUILDS:  # fuse v49: the b0fuse twin
            out.append((n + K.B0FUSE_SUFFIX, arch))
    return sorted(set(out))


def build(name: str, arch: str, nvcc: str) -> str:
    """Compile one build (a kernel file, an exdwpw6 fixed build, a fuse v24 fixed build or a fuse v43 / v44 hand-off
    twin of one: <build>_hf / <build>_ep) into the cache."""
    arch = arch.rstrip("a")  # (the backend passes the plain arch; cblock.cu's own -arch adds the a)
    if name.endswith("_st"):  # a stamps script's measuring twin: not planned, not needed
        return "skipped"
    if name in K.KERNEL_FILES:
        K.build_one(name, arch, nvcc)
        return "file"
    if name.endswith(K.TRIGGER_SUFFIX) and name[: -len(K.TRIGGER_SUFFIX)] in K.PDL_TRIGGER_FILES:  # fuse v45
        K.build_file_twin(name[: -len(K.TRIGGER_SUFFIX)], arch, nvcc)
        return "file_early"
    name, twin = K.twin_parse(name)
    base, modes, shape = K.exdwpw6_spec_parse(name)
    if modes is not None:
        kw = {_SPEC_TWINS[twin]: True} if twin in _SPEC_TWINS else {}
        K.build_exdwpw6_spec(base, modes, arch, nvcc, shape, **kw)
        return "exdwpw6" + ("_" + next(iter(kw)) if kw else "")
    generic, fshape = K.fixed_parse(name)
    if fshape is not None:
        twins = {K.EPOCH_SUFFIX: ("epoch", "_epoch"), K.FLAG_SUFFIX: ("flags", "_flags"), None: (None, ""),
                 K.TRIGGER_SUFFIX: ("early", "_early"), K.STAGE_SUFFIX: ("staged", "_staged"),
                 K.PATCH_SUFFIX: ("patch", "_patch"), K.B0FUSE_SUFFIX: ("b0fuse", "_b0fuse")}  # fmt: skip
        kw, tag = twins[twin]
        K.build_fixed(generic, fshape, arch, nvcc, **({kw: True} if kw else {}))
        return "fixed" + tag
    raise SystemExit(f"unknown build {name!r}: not a kernel file, an exdwpw6 fixed build or a fuse v24 fixed build")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("listing", type=Path, nargs="?", help="an earlier cache (a directory of cubins, or their names)")
    ap.add_argument("--run", type=Path, help="a benchmark run (run.json): the fixed builds its plans name")
    ap.add_argument("--arch", default="90", help="--run's builds' target (the device's compute capability)")
    ap.add_argument("--flags", action="store_true", help="--run's builds' fuse v43 / v44 hand-off twins too")
    ap.add_argument("--trigger", action="store_true", help="--run's builds' fuse v45 early-trigger twins too")
    ap.add_argument("--cache", type=Path, required=True, help="the cache to fill (MBV2_CACHE on the device)")
    ap.add_argument("--nvcc", default="/usr/local/cuda/bin/nvcc", help="the device's nvcc path (part of the key)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    if not Path(args.nvcc).exists():
        raise SystemExit(f"no nvcc at {args.nvcc}: the key needs the device's path to an nvcc of the same version here")
    if args.listing is None and args.run is None:
        raise SystemExit("nothing to build: give a LISTING, --run RUN_JSON or both")
    if (args.flags or args.trigger) and args.run is None:
        raise SystemExit("--flags / --trigger need --run (the twins of the run's fixed builds)")
    os.environ["MBV2_CACHE"] = str(args.cache)
    todo = builds_of(args.listing) if args.listing is not None else []
    if args.run is not None:
        todo = sorted(set(todo) | set(builds_of_run(args.run, args.arch, args.flags, args.trigger)), key=repr)
    src = " + ".join(str(p) for p in (args.listing, args.run) if p is not None)
    print(f"prefill: {len(todo)} builds from {src} into {args.cache}/kernels ({args.jobs} jobs)", flush=True)
    t0, done, kinds, failed = time.time(), 0, {}, []

    def one(item: tuple[str, str]) -> tuple[str, str]:
        try:
            return item[0], build(item[0], item[1], args.nvcc)
        except K.BackendUnavailable as e:
            return item[0], f"FAILED: {str(e)[:400]}"

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for name, kind in pool.map(one, todo):
            done += 1
            if kind.startswith("FAILED"):
                failed.append((name, kind))
            kinds[kind.split(":")[0]] = kinds.get(kind.split(":")[0], 0) + 1
            if done % 25 == 0 or done == len(todo):
                print(f"prefill: {done}/{len(todo)} in {time.time() - t0:.0f} s", flush=True)
    print(f"prefill: done in {time.time() - t0:.0f} s: {kinds}")
    for name, why in failed:
        print(f"prefill: {name}: {why}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
