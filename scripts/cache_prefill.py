"""Fill the kernel build cache here, with no GPU, for a device call (session 27): a cold device machine spends ~250 s
of its time compiling the tuner's fixed builds; this compiles the same builds on this machine instead.

    python3 scripts/cache_prefill.py LISTING --cache DIR [--nvcc /usr/local/cuda/bin/nvcc] [--jobs 2]

LISTING names earlier builds: a directory of cubins (an earlier cache, e.g. a device call's `.cache/kernels` brought
back as a tarball and unpacked) or a text file of cubin names, one per line. Each cubin's name starts with its build's
name (impls/_custom_kernels.py _compile_cached: <build>-sm<arch>-<key>.cubin); the build is compiled again from the
CURRENT sources into DIR/kernels, with the key the backend will compute on the device. The key includes the nvcc path
string, so --nvcc must be the path the device's backend finds (find_nvcc: /usr/local/cuda/bin/nvcc on the H200 image,
seen in session 27) and the same nvcc version (13.0 here and there). Carry DIR to the device (a tarball under an
ignored folder) and point MBV2_CACHE at it there: builds found are loaded, any other is compiled there as usual.
Prints one line per 25 builds and a summary; exits 1 if any build fails.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from impls import _custom_kernels as K  # noqa: E402

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


def build(name: str, arch: str, nvcc: str) -> str:
    """Compile one build (a kernel file, an exdwpw6 fixed build or a fuse v24 fixed build) into the cache."""
    arch = arch.rstrip("a")  # (the backend passes the plain arch; cblock.cu's own -arch adds the a)
    if name.endswith("_st"):  # a stamps script's measuring twin: not planned, not needed
        return "skipped"
    if name in K.KERNEL_FILES:
        K.build_one(name, arch, nvcc)
        return "file"
    base, modes, shape = K.exdwpw6_spec_parse(name)
    if modes is not None:
        K.build_exdwpw6_spec(base, modes, arch, nvcc, shape)
        return "exdwpw6"
    generic, fshape = K.fixed_parse(name)
    if fshape is not None:
        K.build_fixed(generic, fshape, arch, nvcc)
        return "fixed"
    raise SystemExit(f"unknown build {name!r}: not a kernel file, an exdwpw6 fixed build or a fuse v24 fixed build")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("listing", type=Path)
    ap.add_argument("--cache", type=Path, required=True, help="the cache to fill (MBV2_CACHE on the device)")
    ap.add_argument("--nvcc", default="/usr/local/cuda/bin/nvcc", help="the device's nvcc path (part of the key)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    if not Path(args.nvcc).exists():
        raise SystemExit(f"no nvcc at {args.nvcc}: the key needs the device's path to an nvcc of the same version here")
    os.environ["MBV2_CACHE"] = str(args.cache)
    todo = builds_of(args.listing)
    print(f"prefill: {len(todo)} builds from {args.listing} into {args.cache}/kernels ({args.jobs} jobs)", flush=True)
    t0, done, kinds, failed = time.time(), 0, {}, []

    def one(item: tuple[str, str]) -> tuple[str, str]:
        try:
            return item[0], build(*item, args.nvcc)
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
