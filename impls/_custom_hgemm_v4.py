"""hgemm v4 launch builder (fp16 mode; kernels/half.cu, block "hgemm v4").

Candidates per GEMM, timed by the backend's autotuner (``_tuned``) at plan time for problems of
>= TUNE_MIN_FLOP, so the choice is never slower than v3's tiles (they stay candidates):
  ("v3", tile)            the v3 kernels (shared-memory staged epilogue), every v3 tile
  ("sk", tile, g)         K <= 32: hgemm_v4_sk_<tile>, a grid of ~g blocks per SM looping over M tiles
  ("split", tile, s)      K >= 128 and few output tiles: hgemm_v4_<tile> over s K splits (fp32 partials in
                          the backend's split-K workspace) + hgemm_v4_splitk_reduce; s = 1 only for the
                          tiles v3 lacks (64x160, 128x96)
Below TUNE_MIN_FLOP (1e8: batch 1; the default is 0 since session 14, i.e. every problem is timed) the cost
model: v3's tile, split like fp32 gemm v5 (``split_k``) when the
tiles leave SMs idle and K >= MODEL_SPLIT_MIN_K.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _custom_kernels as K

SPLIT_COUNTS = (2, 3, 4, 6, 8, 12)
SK_GRID_PER_SM = (2, 4, 8)
MODEL_SPLIT_MIN_K = 384


def _i32(v: int) -> np.int32:
    return np.int32(v)


def even_splits(k: int, s: int) -> int:
    """Splits of the kernel's 32-wide k tiles (per = ceil(KT / s)) that are not empty."""
    kt = math.ceil(k / 32)
    per = math.ceil(kt / max(1, s))
    return math.ceil(kt / per)


def sk_tiles_for(n: int) -> list[tuple[int, int]]:
    """Small-K tiles worth trying for N: the column tiles waste at most a third."""
    out = []
    for bm, bn in K.HGEMM4_SK_TILES:
        tn = math.ceil(n / bn)
        if tn * bn <= max(n * 4 / 3, 16):
            out.append((bm, bn))
    return out


def hgemm_v4_launches(be: Any, a: Any, b: Any, c: Any, bias: Any, r: Any, m: int, n: int, k: int, act: bool) -> list:
    """Launches of C (M, N) half = epi(A (M, K) @ B (N, K)^T) with hgemm v4 (caller checked K % 8,
    N % 8 and 16-byte alignment)."""
    from ._custom_fp16 import choose_hgemm_tile
    from .custom import Launch, split_k

    has_res = r is not None
    rr = r if has_res else a
    tail = (_i32(m), _i32(n), _i32(k), _i32(int(act)), _i32(int(has_res)))
    args = (a, b, c, bias, rr, *tail)
    sms = be.sms

    def build(cand: tuple) -> list:
        kind, (bm, bn) = cand[0], cand[1]
        blocks = math.ceil(m / bm) * math.ceil(n / bn)
        if kind == "v3":
            name = K.hgemm_kernel((bm, bn), False, "v3")
            return [Launch(name, be._fn(name), (blocks,), (K.HGEMM_THREADS[(bm, bn)],), args)]
        if kind == "sk":
            name = f"hgemm_v4_sk_{bm}x{bn}"
            tn = math.ceil(n / bn)
            per_col = max(1, min(math.ceil(m / bm), math.ceil(cand[2] * sms / tn)))
            return [Launch(name, be._fn(name), (per_col * tn,), (K.HGEMM4_SK_THREADS[(bm, bn)],), args)]
        s = cand[2]
        name = f"hgemm_v4_{bm}x{bn}"
        nt = K.HGEMM4_THREADS[(bm, bn)]
        if s == 1:
            return [Launch(name, be._fn(name), (blocks, 1, 1), (nt,), (a, b, c, c, bias, rr, *tail))]
        ws = be._workspace(s * m * n)
        rgrid = max(1, min(math.ceil(m * n / 8 / 256), sms * 8))
        rargs = (ws, c, bias, rr, _i32(m), _i32(n), _i32(s), _i32(int(act)), _i32(int(has_res)))
        return [
            Launch(name, be._fn(name), (blocks, 1, s), (nt,), (a, b, c, ws, bias, rr, *tail)),
            Launch("hgemm_v4_splitk_reduce", be._fn("hgemm_v4_splitk_reduce"), (rgrid,), (256,), rargs),
        ]

    tile = choose_hgemm_tile(m, n, k, K.HGEMM_TILES, sms)
    blocks = math.ceil(m / tile[0]) * math.ceil(n / tile[1])
    # measured (H100, batch 1): split-K wins for K >= 384 (960->160 16.3 -> 11.1 us), loses 1-1.5 us for K 144-192
    s = even_splits(k, split_k(blocks, k, sms)) if k >= MODEL_SPLIT_MIN_K else 1
    model: tuple = ("split", tile, s) if s > 1 else ("v3", tile)
    if not (be.autotune and 2.0 * m * n * k >= be.TUNE_MIN_FLOP):
        return build(model)
    cands: list[tuple] = [("v3", t) for t in K.HGEMM_TILES]
    if k <= 32:
        cands += [("sk", t, g) for t in sk_tiles_for(n) for g in SK_GRID_PER_SM]
    if k >= 128:
        for t in K.HGEMM4_TILES:
            tb = math.ceil(m / t[0]) * math.ceil(n / t[1])
            if t not in K.HGEMM_TILES:
                cands.append(("split", t, 1))
            if tb >= 2 * sms:
                continue
            seen = set()
            for sc in SPLIT_COUNTS:
                se = even_splits(k, sc)
                if se > 1 and se not in seen and tb * se <= 16 * sms:
                    seen.add(se)
                    cands.append(("split", t, se))
    if model not in cands:
        cands.append(model)
    key = ("hgemm", "v4", m, n, k, bool(act), has_res)
    return be._tuned(key, tuple(cands), build, model)
