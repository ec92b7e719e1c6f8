"""NumPy (float64) emulation of kernels/block0.cu for the CuPy stand-in of tests/test_custom_host.py."""

from __future__ import annotations

import math

import numpy as np

TILE = 14  # block0_v2 / v3's output tile


def _relu6(v: np.ndarray, act: int) -> np.ndarray:
    return np.clip(v, 0, 6) if act else v


def _from_b_fragments(f: np.ndarray, kk: int, nn: int) -> np.ndarray:
    """Inverse of impls._custom_hblock0.mma_b_fragments: (K / 16, N / 8, 32, 4) halves -> B (K, N) float64."""
    f = f[: kk * nn].reshape(kk // 16, nn // 8, 32, 4).astype(np.float64)
    ks = np.arange(kk // 16)[:, None, None, None]
    nt = np.arange(nn // 8)[None, :, None, None]
    lane = np.arange(32)[None, None, :, None]
    j = np.arange(4)[None, None, None, :]
    b = np.full((kk, nn), np.nan)
    b[16 * ks + 2 * (lane & 3) + (j & 1) + 8 * (j >> 1), 8 * nt + (lane >> 2)] = f
    assert np.isfinite(b).all()
    return b


def _half(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float16).astype(np.float64)


def emulate_block0(name: str, grid: tuple, block: tuple, args: tuple, flat) -> None:
    """block0_v2_c<C1>_p<C3> / block0_v3_c<C1>_p<C3>[_occ2] / block0_v4_c<C1>_p<C3>[_k4] / hblock0_v2 / hblock0_v3:
    stem 3x3 s2 p1 (3 -> C1) on the NCHW input, depthwise 3x3 s1 p1, pointwise C1 -> C3, NHWC output; the grid must
    cover the output map in 14 x 14 tiles (block0 v4: clusters of 2 or 4 blocks per tile), one image per blockIdx.y.
    hblock0_v3 takes its stem / projection weights as B fragments
    (decoded here: their K padding must be 0), the depthwise weights as half, and rounds the input, the stem and
    the depthwise outputs to half as the kernel does."""
    X, Ws, bs, Wd, bd, Wp, bp, Y = map(flat, args[:8])
    c1, c3 = (int(v) for v in name.split("_c")[1].removesuffix("_occ2").removesuffix("_k4").split("_p"))
    # block0 v4: a cluster of ks blocks per tile (kernels/block0.cu BLOCK0_V4_KERNEL: 2, the _k4 build 4)
    ks = (4 if name.endswith("_k4") else 2) if name.startswith("block0_v4") else 1
    if name.startswith("hblock0_v4"):  # persistent: (N, H, W, ...), a 1-D grid of at most N x tiles blocks
        n, H, W, Ho, Wo, act_s, act_d, act_p = map(int, args[8:])
        assert block[0] == 256 and 1 <= grid[0] <= n * math.ceil(Ho / TILE) * math.ceil(Wo / TILE), (grid, n)
        assert grid[1] == 1, grid
    else:
        H, W, Ho, Wo, act_s, act_d, act_p = map(int, args[8:])
        n = grid[1]
        assert block[0] == 256 and grid[0] == ks * math.ceil(Ho / TILE) * math.ceil(Wo / TILE), (grid, block, Ho, Wo)
    assert (Ho, Wo) == ((H - 1) // 2 + 1, (W - 1) // 2 + 1), (H, W, Ho, Wo)
    x = X[: n * 3 * H * W].reshape(n, 3, H, W).transpose(0, 2, 3, 1).astype(np.float64)
    v3 = name.startswith(("hblock0_v3", "hblock0_v4"))  # v4: v3's tile arithmetic
    if v3:  # B fragments -> the dense weights of the fp32 kernels' layout
        assert Ws.dtype == np.float16 and Wd.dtype == np.float16 and Wp.dtype == np.float16, name
        kp = -(-c1 // 16) * 16
        bst = _from_b_fragments(Ws, 48, c1).reshape(12, 4, c1)
        assert not bst[9:].any() and not bst[:, 3].any(), "stem B fragments: K padding not zero"
        Ws = bst[:9, :3].reshape(27 * c1)
        bpw = _from_b_fragments(Wp, kp, c3)
        assert not bpw[c1:].any(), "projection B fragments: K padding not zero"
        Wp = bpw[:c1].reshape(c1 * c3)
        x = _half(x)
    xp = np.pad(x, ((0, 0), (1, 2), (1, 2), (0, 0)))
    s = np.zeros((n, Ho, Wo, c1)) + bs[:c1]
    for ky in range(3):
        for kx in range(3):
            wk = Ws[(ky * 3 + kx) * 3 * c1 : (ky * 3 + kx + 1) * 3 * c1].reshape(3, c1)
            s += xp[:, ky : ky + 2 * (Ho - 1) + 1 : 2, kx : kx + 2 * (Wo - 1) + 1 : 2, :] @ wk
    s = _relu6(s, act_s)
    if v3:
        s = _half(s)
    sp = np.pad(s, ((0, 0), (1, 1), (1, 1), (0, 0)))  # the depthwise conv's zero padding
    d = np.zeros((n, Ho, Wo, c1)) + (_half(bd[:c1]) if v3 else bd[:c1])
    for dy in range(3):
        for dx in range(3):
            d += sp[:, dy : dy + Ho, dx : dx + Wo, :] * Wd[(dy * 3 + dx) * c1 :][:c1].astype(np.float64)
    d = _relu6(d, act_d)
    if v3:
        d = _half(d)
    y = _relu6(d @ Wp[: c1 * c3].reshape(c1, c3) + bp[:c3], act_p)
    Y[: n * Ho * Wo * c3] = y.ravel()
