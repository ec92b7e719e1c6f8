"""NumPy (float64) emulation of kernels/block0.cu for the CuPy stand-in of tests/test_custom_host.py."""

from __future__ import annotations

import math

import numpy as np

TILE = 14  # block0_v2 / v3's output tile


def _relu6(v: np.ndarray, act: int) -> np.ndarray:
    return np.clip(v, 0, 6) if act else v


def emulate_block0(name: str, grid: tuple, block: tuple, args: tuple, flat) -> None:
    """block0_v2_c<C1>_p<C3> / block0_v3_c<C1>_p<C3>[_occ2]: stem 3x3 s2 p1 (3 -> C1) on the NCHW input,
    depthwise 3x3 s1 p1, pointwise C1 -> C3, NHWC output; the grid must cover the output map in 14 x 14 tiles,
    one image per blockIdx.y."""
    X, Ws, bs, Wd, bd, Wp, bp, Y = map(flat, args[:8])
    H, W, Ho, Wo, act_s, act_d, act_p = map(int, args[8:])
    c1, c3 = (int(v) for v in name.split("_c")[1].removesuffix("_occ2").split("_p"))
    n = grid[1]
    assert block[0] == 256 and grid[0] == math.ceil(Ho / TILE) * math.ceil(Wo / TILE), (grid, block, Ho, Wo)
    assert (Ho, Wo) == ((H - 1) // 2 + 1, (W - 1) // 2 + 1), (H, W, Ho, Wo)
    x = X[: n * 3 * H * W].reshape(n, 3, H, W).transpose(0, 2, 3, 1).astype(np.float64)
    xp = np.pad(x, ((0, 0), (1, 2), (1, 2), (0, 0)))
    s = np.zeros((n, Ho, Wo, c1)) + bs[:c1]
    for ky in range(3):
        for kx in range(3):
            wk = Ws[(ky * 3 + kx) * 3 * c1 : (ky * 3 + kx + 1) * 3 * c1].reshape(3, c1)
            s += xp[:, ky : ky + 2 * (Ho - 1) + 1 : 2, kx : kx + 2 * (Wo - 1) + 1 : 2, :] @ wk
    sp = np.pad(_relu6(s, act_s), ((0, 0), (1, 1), (1, 1), (0, 0)))  # the depthwise conv's zero padding
    d = np.zeros((n, Ho, Wo, c1)) + bd[:c1]
    for dy in range(3):
        for dx in range(3):
            d += sp[:, dy : dy + Ho, dx : dx + Wo, :] * Wd[(dy * 3 + dx) * c1 :][:c1]
    y = _relu6(_relu6(d, act_d) @ Wp[: c1 * c3].reshape(c1, c3) + bp[:c3], act_p)
    Y[: n * Ho * Wo * c3] = y.ravel()
