"""NumPy emulation of kernels/half.cu for the CPU stand-in of tests/test_custom_host.py.

Each kernel's documented semantics in float64, written into the (float16 / float32) output array,
so the store rounds as the kernel's does. Arguments as the kernels' C signatures (the stand-in has
already checked their count and types).
"""

from __future__ import annotations

import numpy as np

HALF_PREFIXES = (
    "hexdw_",
    "hexdw3_",
    "hexdwpw4_",
    "hgemm_",
    "hdw3_",
    "hconv_direct_",
    "hstem3x3c3",
    "hpool_",
    "hlinear_",
    "h_",
    "f32_to_h",
    "hadd",
)


def _flat(a):
    assert a.flags.c_contiguous
    return a.reshape(-1)


def _relu6(v, act):
    return np.clip(v, 0, 6) if act else v


def _conv_nhwc(xx, w_at, bias, Ho, Wo, k, s, depthwise, cin, cout):
    """xx: padded NHWC float64; w_at(ky, kx) -> (C,) for depthwise or (Cin, Cout) otherwise."""
    nb = xx.shape[0]
    out = np.zeros((nb, Ho, Wo, cout)) + bias[:cout]
    for ky in range(k):
        for kx in range(k):
            patch = xx[:, ky : ky + (Ho - 1) * s + 1 : s, kx : kx + (Wo - 1) * s + 1 : s, :]
            out += patch * w_at(ky, kx) if depthwise else patch @ w_at(ky, kx)
    return out


def _emulate_hexdw(name: str, grid: tuple, args: tuple) -> None:
    """hfuse v2 / v3 (hexdw_ / hexdw3_ kernels, same arguments): depthwise(act(expand(x))) with the expanded
    value rounded to half once (as the unfused hgemm's store); checks the grid against the kernel's tile /
    chunk-group indexing. (v3 sums the depthwise taps in half2: rounding the emulation does not model.)"""
    x, we, be, wd, bd, y = map(_flat, args[:6])
    H, W, CE, Ho, Wo, pad, ex_act, dw_act, cpb = map(int, args[6:])
    parts = name.split("_")  # hexdw[3], s<S>, t<T>, c<CIN>[, b<occ>]
    s = int(parts[1][1:])
    t = int(parts[2][1:])
    cin = int(parts[3][1:])
    N = grid[2]
    assert grid[0] == -(-Ho // t) * -(-Wo // t), (name, grid, Ho, Wo)
    chunks = -(-CE // 32)
    assert cpb >= 1 and grid[1] == -(-chunks // cpb), (name, grid, CE, cpb)
    assert (Ho - 1) * s + 3 <= H + 2 * pad and (Wo - 1) * s + 3 <= W + 2 * pad
    xs = x[: N * H * W * cin].reshape(N, H, W, cin).astype(np.float64)
    mid = _relu6(xs @ we[: CE * cin].reshape(CE, cin).astype(np.float64).T + be[:CE], ex_act)
    mid = mid.astype(np.float16).astype(np.float64)
    xx = np.pad(mid, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    wf = wd[: 9 * CE].astype(np.float64)
    out = _conv_nhwc(xx, lambda ky, kx: wf[(ky * 3 + kx) * CE : (ky * 3 + kx + 1) * CE], bd, Ho, Wo, 3, s, True, CE, CE)
    out = _relu6(out, dw_act)
    y[: out.size] = out.ravel()


def _emulate_hexdwpw4(name: str, grid: tuple, args: tuple) -> None:
    """hfuse v4 (hexdwpw4_s<S>_t<T>_c<CIN>_p<COUT>): project(act(depthwise(act(expand(x))))) + bias (+ R), the
    expansion and the depthwise outputs rounded to half once each (as the unfused kernels' stores); checks the grid
    against the tile indexing (all chunks in one block: grid.y == 1)."""
    x, we, be, wd, bd, wp, bp, r, y = map(_flat, args[:9])
    H, W, CE, Ho, Wo, pad, ex_act, dw_act, pw_act, has_res = map(int, args[9:])
    parts = name.split("_")  # hexdwpw4, s<S>, t<T>, c<CIN>, p<COUT>
    s, t, cin, cout = (int(p[1:]) for p in parts[1:5])
    N = grid[2]
    assert grid[0] == -(-Ho // t) * -(-Wo // t) and grid[1] == 1, (name, grid, Ho, Wo)
    xs = x[: N * H * W * cin].reshape(N, H, W, cin).astype(np.float64)
    mid = _relu6(xs @ we[: CE * cin].reshape(CE, cin).astype(np.float64).T + be[:CE], ex_act)
    xx = np.pad(mid.astype(np.float16).astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    wf = wd[: 9 * CE].astype(np.float64)
    d = _conv_nhwc(xx, lambda ky, kx: wf[(ky * 3 + kx) * CE : (ky * 3 + kx + 1) * CE], bd, Ho, Wo, 3, s, True, CE, CE)
    d = _relu6(d, dw_act).astype(np.float16).astype(np.float64)
    out = _relu6(d @ wp[: cout * CE].reshape(cout, CE).astype(np.float64).T + bp[:cout], pw_act)
    if has_res:
        out = out + r[: out.size].reshape(out.shape)
    y[: out.size] = out.ravel()


def emulate_half(name: str, grid: tuple, block: tuple, args: tuple) -> None:
    a = args
    if name.startswith("hexdwpw4_"):
        _emulate_hexdwpw4(name, grid, a)
        return
    if name.startswith(("hexdw_", "hexdw3_")):
        _emulate_hexdw(name, grid, a)
        return
    if name == "hgemm_v4_splitk_reduce":  # ws (S, M, N) fp32 partials -> epilogue -> C half
        ws, C, bias, R = map(_flat, a[:4])
        M, N, S, act, hr = map(int, a[4:])
        v = ws[: S * M * N].reshape(S, M, N).astype(np.float64).sum(0)
        v = _relu6(v + bias[:N], act)
        if hr:
            v = v + R[: M * N].reshape(M, N)
        C[: M * N] = v.ravel()
        return
    if name.startswith("hgemm_v4_") and not name.startswith("hgemm_v4_sk_"):  # split-K over grid z
        A, B, C, ws, bias, R = map(_flat, a[:6])
        M, N, K, act, hr = map(int, a[6:])
        A64 = A[: M * K].reshape(M, K).astype(np.float64)
        B64 = B[: N * K].reshape(N, K).astype(np.float64)
        S = grid[2]
        if S == 1:
            v = _relu6(A64 @ B64.T + bias[:N], act)
            if hr:
                v = v + R[: M * N].reshape(M, N)
            C[: M * N] = v.ravel()
            return
        kt = -(-K // 32)
        per = -(-kt // S)
        for z in range(S):
            k0, k1 = min(K, z * per * 32), min(K, (z + 1) * per * 32)
            ws[z * M * N : (z + 1) * M * N] = (A64[:, k0:k1] @ B64[:, k0:k1].T).ravel()
        return
    if name.startswith("hgemm_"):
        A, B, C, bias, R = map(_flat, a[:5])
        M, N, K, act, hr = map(int, a[5:])
        v = A[: M * K].reshape(M, K).astype(np.float64) @ B[: N * K].reshape(N, K).astype(np.float64).T
        v = _relu6(v + bias[:N], act)
        if hr:
            v = v + R[: M * N].reshape(M, N)
        C[: M * N] = v.ravel()
    elif name.startswith(("hdw3_", "hconv_direct_", "hstem3x3c3")):
        x, w, bias, R, y = map(_flat, a[:5])
        ints = list(map(int, a[5:]))
        if name == "hdw3_v1":
            N, H, W, C, Ho, Wo, s, pad, act, hr = ints
            k, cin, cout, dw, nchw = 3, C, C, True, False
        elif name.startswith(("hdw3_v2", "hdw3_v3", "hdw3_v4")):
            N, H, W, C, Ho, Wo, pad, act, hr = ints
            s = int(name[len("hdw3_v2_s")])
            k, cin, cout, dw, nchw = 3, C, C, True, False
        elif name.startswith("hstem3x3c3"):
            N, H, W, Ho, Wo, cout, s, pad, act, hr = ints
            k, cin, dw, nchw = 3, 3, False, not name.endswith("nhwc16")
        else:
            N, H, W, cin, Ho, Wo, cout, k, s, pad, act, hr = ints
            dw, nchw = False, name.endswith("nchw32")
        if nchw:
            xs = x[: N * cin * H * W].reshape(N, cin, H, W).transpose(0, 2, 3, 1)
        else:
            xs = x[: N * H * W * cin].reshape(N, H, W, cin)
        xx = np.pad(xs.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        wf = w.astype(np.float64)
        if dw:
            out = _conv_nhwc(xx, lambda ky, kx: wf[(ky * 3 + kx) * cin : (ky * 3 + kx + 1) * cin], bias,
                             Ho, Wo, 3, s, True, cin, cout)  # fmt: skip
        else:
            kc = cin * cout
            out = _conv_nhwc(xx, lambda ky, kx: wf[(ky * k + kx) * kc : (ky * k + kx + 1) * kc].reshape(cin, cout),
                             bias, Ho, Wo, k, s, False, cin, cout)  # fmt: skip
        out = _relu6(out, act)
        if hr:
            out = out + R[: out.size].reshape(out.shape)
        y[: out.size] = out.ravel()
    elif name == "hpool_v1":
        x, y = _flat(a[0]), _flat(a[1])
        HW, C = int(a[2]), int(a[3])
        N = grid[1]
        y[: N * C] = x[: N * HW * C].reshape(N, HW, C).astype(np.float64).mean(1).ravel()
    elif name == "hlinear_gemv":
        x, W, bias, y = map(_flat, a[:4])
        N, IN, OUT, _vec = map(int, a[4:])
        assert N <= 8
        xm = x[: N * IN].reshape(N, IN).astype(np.float64)
        y[: N * OUT] = (xm @ W[: OUT * IN].reshape(OUT, IN).astype(np.float64).T + bias[:OUT]).ravel()
    elif name in ("h_from_nchw_f32", "h_to_nchw_f32"):
        x, y = _flat(a[0]), _flat(a[1])
        rows, cols = int(a[2]), int(a[3])
        nb = grid[2]
        y[: nb * rows * cols] = x[: nb * rows * cols].reshape(nb, rows, cols).transpose(0, 2, 1).ravel()
    elif name in ("f32_to_h", "h_to_f32"):
        x, y = _flat(a[0]), _flat(a[1])
        n = int(a[2])
        y[:n] = x[:n]
    elif name == "hadd":
        A, B, Y = map(_flat, a[:3])
        n = int(a[3])
        Y[:n] = A[:n].astype(np.float64) + B[:n]
    else:
        raise AssertionError(name)
