"""Parameters as text files for C++ consumers (the seed's Step 2 format), and back.

One file per ONNX initializer: the shape on the first line (space-separated; an empty line for a
scalar), then one value per line. Floats are written with 9 significant digits, which round-trips
every float32 exactly; integers as integers. ``manifest.json`` maps initializer names to files,
shapes and dtypes.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from .errors import MbvError

MANIFEST = "manifest.json"
FORMAT = "mbv2-weights-text-v1"
_DTYPES = {"float32": "%.9g", "float64": "%.17g", "float16": "%.5g", "int64": "%d", "int32": "%d"}


def _file_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "tensor"
    stem, k = base, 1
    while f"{stem}.txt" in used:
        k += 1
        stem = f"{base}_{k}"
    used.add(f"{stem}.txt")
    return f"{stem}.txt"


def initializers(model_bytes: bytes) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(model_bytes)
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def write_weights(tensors: dict[str, np.ndarray], out_dir: str) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    used: set[str] = set()
    entries = []
    for name, arr in tensors.items():
        dt = str(arr.dtype)
        if dt not in _DTYPES:
            raise MbvError(f"initializer {name!r} has dtype {dt}; text export supports {', '.join(_DTYPES)}")
        fname = _file_name(name, used)
        with open(os.path.join(out_dir, fname), "w") as f:
            f.write(" ".join(str(d) for d in arr.shape) + "\n")
            if arr.size:
                np.savetxt(f, arr.reshape(-1), fmt=_DTYPES[dt])
        entries.append({"name": name, "file": fname, "shape": list(arr.shape), "dtype": dt})
    manifest = {"format": FORMAT, "tensors": entries}
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def read_weights(in_dir: str) -> dict[str, np.ndarray]:
    path = os.path.join(in_dir, MANIFEST)
    if not os.path.exists(path):
        raise MbvError(f"no {MANIFEST} in {in_dir} (write one with: python -m mbv2 weights --out {in_dir})")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise MbvError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    out: dict[str, np.ndarray] = {}
    for e in manifest["tensors"]:
        fpath = os.path.join(in_dir, e["file"])
        with open(fpath) as f:
            header = f.readline()
            shape = tuple(int(d) for d in header.split())
            if shape != tuple(e["shape"]):
                raise MbvError(f"{fpath}: shape line {shape} disagrees with the manifest's {tuple(e['shape'])}")
            text = f.read().split()
        n = int(np.prod(shape, dtype=np.int64))
        if len(text) != n:
            raise MbvError(f"{fpath}: {len(text)} values, expected {n} for shape {shape}")
        kind = np.dtype(e["dtype"])
        values = np.array(text, dtype=np.float64 if kind.kind == "f" else np.int64)
        out[e["name"]] = values.astype(kind).reshape(shape)
    return out


def compare_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    """Names that differ in presence, shape, dtype or any bit."""
    bad = sorted(set(a) ^ set(b))
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype or x.tobytes() != y.tobytes():
            bad.append(name)
    return bad
