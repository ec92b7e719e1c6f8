"""The custom backend's host side on a machine without a GPU: CuPy replaced by a NumPy stand-in.

The stand-in checks every launch against the kernel's C signature parsed from kernels/*.cu (argument
count, pointer / int / long long types, grid and block limits, shared memory) and emulates each
kernel's documented semantics in NumPy (float64). So these CPU tests catch, in CI, what the GPU tests
would only catch on a device: wrong argument order, strides, flags, buffer planning and reuse,
split-K workspaces, layout conversion, CUDA-graph capture/replay, the stream plumbing. They say
nothing about the CUDA code itself (tests/test_custom_kernels.py does, on a GPU).
"""

from __future__ import annotations

import inspect
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import impls
from impls import _custom_kernels as K
from impls._custom_kernels import exdwpw8_configs
from impls.numpy_ref import NumpyBackend
from mbv2.errors import InputError
from mbv2.network import random_input
from mbv2.tolerances import TOP1_AGREEMENT, assert_close, top1_agreement
from tests._half_emulation import HALF_PREFIXES, emulate_half

KDIR = Path(__file__).resolve().parent.parent / "kernels"
EXGDW_THREADS, EXGDW_ROWS = K.EXGDW_THREADS, K.EXGDW_ROWS  # emulate() has a local K (a GEMM's depth)
PWPOOL_CO, PWPOOL_MAX_HW = K.PWPOOL_CO, K.PWPOOL_MAX_HW


def parse_signatures() -> dict[str, list[str]]:
    sigs: dict = {}
    for f in KDIR.glob("*.cu"):
        s = f.read_text()
        pat = r'extern "C" __global__ void(?:\s+__(?:launch_bounds|cluster_dims)__\([^)]*\))*\s+(\w+)\s*\(([^)]*)\)'
        for m in re.finditer(pat, s):
            # fuse v24 / v31 / v54 / v55 name their fixed builds through a macro
            macro = {
                "PWPOOL_C8_NAME": "pwpool_c8",
                "PWPOOL_FC_C8_NAME": "pwpool_fc_c8",
                "PWPOOL_FC_C8E_NAME": "pwpool_fc_c8e",
                "PWPOOL_C10_NAME": "pwpool_c10",
            }
            name = macro.get(m.group(1), m.group(1))
            if name != "NAME":  # the macro bodies
                sigs[name] = [p.strip() for p in m.group(2).split(",")]
        macros = "GEMM_REG_KERNEL|GEMM_3XTF32_KERNEL|GEMM_V8_KERNEL|GEMM_V8K_KERNEL"
        for m in re.finditer(rf"^(?:{macros})\((\w+),", s, re.M):
            sigs[m.group(1)] = "GEMM"
        for m in re.finditer(r"^GEMM_SMALLK_KERNEL\((\w+),", s, re.M):
            sigs[m.group(1)] = [
                "const float* A",
                "const float* B",
                "float* C",
                "const float* bias",
                "const float* R",
                "int M",
                "int N",
                "int act",
                "int has_res",
            ]
        for m in re.finditer(r"^EXDWPW[58]_KERNEL(?:_CL)?\((\w+),", s, re.M):  # fuse v5 / v8 (v25): the same arguments
            sigs[m.group(1)] = [f"const float* {v}" for v in ("X", "We", "be", "Wd", "bd", "Wp", "bp", "R")]
            sigs[m.group(1)] += ["float* Y"] + [f"int {v}" for v in ("H", "W", "Ce", "Ho", "Wo", "pad")]
            sigs[m.group(1)] += ["int act_e", "int act_d", "int act_p", "int has_res"]
        for m in re.finditer(r"^EXGDW_KERNEL\((\w+),", s, re.M):  # kernels/gemm.cu, fuse v7
            sigs[m.group(1)] = [f"const float* {v}" for v in ("X", "We", "be", "Wd", "bd")] + ["float* Y"]
            sigs[m.group(1)] += [f"int {v}" for v in ("NB", "H", "W", "CIN", "CE", "Ho", "Wo", "pad", "imgs")]
            sigs[m.group(1)] += ["int act_e", "int act_d"]
        for m in re.finditer(r"^EXDWPW6_KERNEL\((\w+),", s, re.M):  # kernels/cblock.cu, fuse v6
            sigs[m.group(1)] = [f"const float* {v}" for v in ("X", "We", "be", "Wd", "bd", "Wp", "bp", "R")]
            sigs[m.group(1)] += ["float* Y", "float* ws", "int* cnt"]
            sigs[m.group(1)] += [f"int {v}" for v in ("H", "W", "CIN", "CE", "COUT", "Ho", "Wo", "S", "TR")]
            sigs[m.group(1)] += [
                "int act_e",
                "int act_d",
                "int act_p",
                "int has_res",
                "int proj_cols",
                "int ex_ks",
                "int red_pf",
                "int dw_segs",
            ]
        for m in re.finditer(r"^EXDWPW10_KERNEL\((\w+),", s, re.M):  # kernels/cblock.cu, fuse v10
            sigs[m.group(1)] = [f"const float* {v}" for v in ("X", "We", "be", "Wd", "bd", "Wp", "bp", "R")]
            sigs[m.group(1)] += ["float* Y", "float* D", "unsigned int* bar"]
            sigs[m.group(1)] += [f"int {v}" for v in ("NB", "H", "W", "CIN", "CE", "COUT", "Ho", "Wo", "S", "TR")]
            sigs[m.group(1)] += ["int act_e", "int act_d", "int act_p", "int has_res"]
        for m in re.finditer(r"^EXDW4?_KERNEL\((\w+),", s, re.M):
            sigs[m.group(1)] = [
                "const float* X",
                "const float* We",
                "const float* be",
                "const float* Wd",
                "const float* bd",
                "float* Y",
                "int H",
                "int W",
                "int Ce",
                "int Ho",
                "int Wo",
                "int pad",
                "int act_e",
                "int act_d",
            ]
        for m in re.finditer(r"^H?BLOCK0_V[234]_KERNEL\((\w+),", s, re.M):  # kernels/block0.cu (+ hblock0)
            sigs[m.group(1)] = ["const float* X", "const float* Ws", "const float* bs", "const float* Wd"]
            sigs[m.group(1)] += ["const float* bd", "const float* Wp", "const float* bp", "float* Y", "int H", "int W"]
            sigs[m.group(1)] += ["int Ho", "int Wo", "int act_s", "int act_d", "int act_p"]
        for m in re.finditer(r"^DWPW_KERNEL\((\w+),", s, re.M):
            sigs[m.group(1)] = [
                "const float* X",
                "const float* Wd",
                "const float* bd",
                "const float* B",
                "float* C",
                "const float* bias",
                "const float* R",
                "int M",
                "int N",
                "int K",
                "int H",
                "int W",
                "int Ho",
                "int Wo",
                "int pad",
                "int dwact",
                "int act",
                "int has_res",
            ]
        for m in re.finditer(r"^HEXDW3_KERNEL\((\w+),", s, re.M):  # kernels/half.cu, hfuse v3
            sigs[m.group(1)] = ["const __half* x", "const __half* we", "const float* be", "const __half* wd"]
            sigs[m.group(1)] += ["const float* bd", "__half* y"]
            sigs[m.group(1)] += [f"int {v}" for v in ("H", "W", "CE", "Ho", "Wo", "pad", "ex_act", "dw_act", "cpb")]
        for m in re.finditer(r"^HEXDWPW4_KERNEL\((\w+),", s, re.M):  # kernels/half.cu, hfuse v4
            sigs[m.group(1)] = ["const __half* x", "const __half* we", "const float* be", "const __half* wd"]
            sigs[m.group(1)] += ["const float* bd", "const __half* wp", "const float* bp", "const __half* r"]
            sigs[m.group(1)] += ["__half* y"]
            sigs[m.group(1)] += [f"int {v}" for v in ("H", "W", "CE", "Ho", "Wo", "pad", "ex_act", "dw_act")]
            sigs[m.group(1)] += ["int pw_act", "int has_res"]
        for m in re.finditer(r"^HDW3_V4_KERNEL\((\d), (\d), (\d)\)", s, re.M):  # kernels/half.cu: as hdw3_v3_*
            sigs[f"hdw3_v4_s{m.group(1)}_w{m.group(2)}h{m.group(3)}"] = "HDW3"
    for k, v in list(sigs.items()):
        if v == "GEMM":
            sigs[k] = sigs["gemm_v1"]
        elif v == "HDW3":
            sigs[k] = sigs["hdw3_v3_s1_w1h1"]
    return sigs


SIGS = parse_signatures()
LAUNCHES: list[str] = []
PDL_LAUNCHES: list[str] = []  # kernels the stand-in cuLaunchKernelEx launched (fixture fake_cupy)
NONPORTABLE: set[str] = set()  # kernels opted in to clusters of 16 (fixture fake_cupy)
CAPTURE = None


class _Data:
    def __init__(self, ptr):
        self.ptr = ptr


class ndarray(np.ndarray):
    @property
    def data(self):
        return _Data(self.ctypes.data)

    def get(self, stream=None, out=None):
        if out is not None:
            out[...] = self
            return out
        return np.array(self, copy=True).view(np.ndarray)

    def set(self, x, stream=None):
        self[...] = x


float16 = np.float16
float32 = np.float32
int32 = np.int32
float64 = np.float64


def zeros(shape, dtype=np.float32):
    return np.zeros(shape, dtype).view(ndarray)


def empty(shape, dtype=np.float32):
    return np.full(shape, np.nan, dtype).view(ndarray)  # poison: catches unwritten output


def empty_like(a):
    return empty(a.shape, a.dtype)


def zeros_like(a):
    return zeros(a.shape, a.dtype)


def asarray(x):
    return np.array(x.view(np.ndarray) if isinstance(x, np.ndarray) else x, copy=True).view(ndarray)


def full(shape, v, dtype=np.float32):
    return np.full(shape, v, dtype).view(ndarray)


def flat(a):
    assert isinstance(a, ndarray), type(a)
    assert a.flags.c_contiguous
    return a.reshape(-1)


def relu6(v, act):
    return np.clip(v, 0, 6) if act else v


def emulate_block(X, We, be, Wd, bd, Wp, bp, R, Y, shape, flags):
    """A whole bottleneck block (fuse v5 exdwpw5, fuse v6 exdwpw6): project(depthwise 3x3(expand 1x1(x))) (+ R)."""
    n, H, W, cin, Ce, cout, Ho, Wo, s, pad = shape
    act_e, act_d, act_p, hr = flags
    e = X[: n * H * W * cin].reshape(n, H, W, cin).astype(np.float64) @ We[: cin * Ce].reshape(cin, Ce)
    e = relu6(e + be[:Ce], act_e)
    ep = np.pad(e, ((0, 0), (pad, pad + 2), (pad, pad + 2), (0, 0)))
    v = np.zeros((n, Ho, Wo, Ce))
    for dy in range(3):
        for dx in range(3):
            tap = Wd[(dy * 3 + dx) * Ce :][:Ce]
            v += ep[:, dy : dy + s * (Ho - 1) + 1 : s, dx : dx + s * (Wo - 1) + 1 : s, :] * tap
    v = relu6(v + bd[:Ce], act_d)
    o = relu6(v @ Wp[: Ce * cout].reshape(Ce, cout) + bp[:cout], act_p)
    if hr:
        o = o + R[: o.size].reshape(o.shape)
    Y[: o.size] = o.ravel()


def emulate(name, grid, block, args):
    a = args
    from impls._custom_kernels import (  # (this function's K is a GEMM dimension)
        B0FUSE_BLOCK0,
        B0FUSE_SUFFIX,
        EPOCH_SUFFIX,
        EXIT_SUFFIX,
        FLAG_SUFFIX,
        PATCH_SUFFIX,
        STAGE_SUFFIX,
        TRIGGER_SUFFIX,
        twin_parse,
    )

    twin_base, twin = twin_parse(name)
    if twin == B0FUSE_SUFFIX:  # fuse v49: block0 v4 (c32_p16, 2-block clusters) on the image, then the exdwpw5 build
        ex, b0 = args[: -len(B0FUSE_SIG)], args[-len(B0FUSE_SIG) :]
        h, w = int(ex[9]), int(ex[10])
        y0 = empty((grid[1] * h * w * 16,))
        b0_grid = (2 * math.ceil(h / 14) * math.ceil(w / 14), grid[1], 1)
        emulate(B0FUSE_BLOCK0, b0_grid, block, (*b0[:7], y0, b0[7], b0[8], np.int32(h), np.int32(w), *b0[9:]))
        return emulate(twin_base, grid, block, (y0, *ex[1:]))
    if twin in (TRIGGER_SUFFIX, EXIT_SUFFIX, STAGE_SUFFIX, PATCH_SUFFIX):  # fuse v45 - v48: the same build, its
        # trigger elsewhere (v47 / v48: its staging by cp.async): the same sums
        return emulate(twin_base, grid, block, args)
    if twin == FLAG_SUFFIX:  # fuse v43
        return emulate_flag_twin(twin_base, grid, block, args)
    if twin == EPOCH_SUFFIX:  # fuse v43: the exdwpw5 build, then block (0, 0)'s thread 0 advances the number
        emulate(twin_base, grid, block, args[:-1])
        args[-1][0] += 1
        return
    from impls._custom_kernels import FIXED_KINDS, fixed_kind, fixed_parse  # (this function's K is a GEMM dimension)

    base, fshape = fixed_parse(name)
    if fshape is not None:  # fuse v24: a build with its shape fixed at compile time: it must be the arguments'
        _, _, first, fnames, _ = FIXED_KINDS[fixed_kind(base)]
        assert tuple(int(v) for v in a[first : first + len(fnames)]) == fshape, (name, a[first:])
        name = base
    if name == "gemm_splitk_reduce":
        ws, C, bias, R = map(flat, a[:4])
        M, N, S, bm, act, hr = map(int, a[4:])
        v = ws[: S * M * N].reshape(S, M, N).astype(np.float64).sum(0)
        if bm == 1:
            v = v + bias[:N][None, :]
        elif bm == 2:
            v = v + bias[:M][:, None]
        v = relu6(v, act)
        if hr:
            v = v + R[: M * N].reshape(M, N)
        C[: M * N] = v.ravel()
    elif name.startswith("dwpw_s"):
        X, Wd, bd, B, C, bias, R = map(flat, a[:7])
        M, N, K, H, W, Ho, Wo, pad, dwact, act, hr = map(int, a[7:])
        s = int(name[len("dwpw_s")])
        nb = M // (Ho * Wo)
        assert nb * Ho * Wo == M
        xx = np.pad(
            X[: nb * H * W * K].reshape(nb, H, W, K).astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0))
        )
        d = np.zeros((nb, Ho, Wo, K)) + bd[:K]
        for ky in range(3):
            for kx in range(3):
                d += (
                    xx[:, ky : ky + (Ho - 1) * s + 1 : s, kx : kx + (Wo - 1) * s + 1 : s, :]
                    * Wd[(ky * 3 + kx) * K : (ky * 3 + kx + 1) * K]
                )
        Am = relu6(d, dwact).reshape(M, K)
        Bm = B[: K * N].reshape(K, N)
        S = grid[2]
        if S > 1:  # split-K partials, raw
            chunk = math.ceil(math.ceil(K / S) / 8) * 8
            for z in range(S):
                kb, ke = z * chunk, min(K, z * chunk + chunk)
                C[z * M * N : (z + 1) * M * N] = (Am[:, kb:ke] @ Bm[kb:ke]).ravel()
        else:
            v = relu6(Am @ Bm + bias[:N], act)
            if hr:
                v = v + R[: M * N].reshape(M, N)
            C[: M * N] = v.ravel()
    elif name.startswith("gemm_smallk"):
        A, B, C, bias, R = map(flat, a[:5])
        M, N, act, hr = map(int, a[5:])
        K = int(name.split("_k")[1].split("_")[0])
        v = A[: M * K].reshape(M, K).astype(np.float64) @ B[: K * N].reshape(K, N) + bias[:N]
        v = relu6(v, act)
        if hr:
            v = v + R[: M * N].reshape(M, N)
        C[: M * N] = v.ravel()
    elif name.startswith("gemm_") and grid[2] > 1:
        A, B, C = map(flat, a[:3])
        M, N, K = map(int, a[5:8])
        S = grid[2]
        assert grid[1] == 1
        bk = 16 if name.startswith(("gemm_v7", "gemm_v8")) else 8  # the kernel's k-step: chunks are whole k-steps
        chunk = math.ceil(math.ceil(K / S) / bk) * bk
        for z in range(S):
            kb, ke = z * chunk, min(K, z * chunk + chunk)
            Am = A[: M * K].reshape(M, K)[:, kb:ke].astype(np.float64)
            Bm = B[: K * N].reshape(K, N)[kb:ke]
            C[z * M * N : (z + 1) * M * N] = (Am @ Bm).ravel()
    elif name.startswith("gemm_"):
        A, B, C, bias, R = map(flat, a[:5])
        M, N, K, sA, sB, sC, bm, act, hr = map(int, a[5:])
        for b in range(grid[1]):
            Am = A[b * sA : b * sA + M * K].reshape(M, K).astype(np.float64)
            Bm = B[b * sB : b * sB + K * N].reshape(K, N)
            Cm = Am @ Bm
            if bm == 1:
                Cm = Cm + bias[:N][None, :]
            elif bm == 2:
                Cm = Cm + bias[:M][:, None]
            Cm = relu6(Cm, act)
            if hr:
                Cm = Cm + R[b * sC : b * sC + M * N].reshape(M, N)
            C[b * sC : b * sC + M * N] = Cm.ravel()
    elif name == "im2col_nhwc":
        x, cols = flat(a[0]), flat(a[1])
        N, H, W, Cin, Ho, Wo, k, s, pad, Kp = map(int, a[2:])
        xx = np.pad(x[: N * H * W * Cin].reshape(N, H, W, Cin), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        out = np.zeros((N, Ho, Wo, Kp))
        for ky in range(k):
            for kx in range(k):
                patch = xx[:, ky : ky + (Ho - 1) * s + 1 : s, kx : kx + (Wo - 1) * s + 1 : s, :]
                out[..., (ky * k + kx) * Cin : (ky * k + kx + 1) * Cin] = patch
        cols[: out.size] = out.ravel()
    elif name.startswith("exdwpw5"):  # fuse v5: project(depthwise 3x3(expand 1x1(x))) (+ residual)
        X, We, be, Wd, bd, Wp, bp, R, Y = map(flat, a[:9])
        H, W, Ce, Ho, Wo, pad, act_e, act_d, act_p, hr = map(int, a[9:])
        m = re.fullmatch(r"exdwpw5_s(\d)_c(\d+)_o(\d+)_t(\d+)x(\d+)(?:_cc\d+)?(?:_k(\d))?", name)
        s, cin, cout, th, tw = map(int, m.groups()[:5])
        ks = int(m[6] or 1)  # fuse v25: a cluster of ks blocks per tile
        n = grid[1]
        assert grid[0] == ks * -(-Ho // th) * -(-Wo // tw), (grid, Ho, Wo, th, tw, ks)
        flags = (act_e, act_d, act_p, hr)
        emulate_block(X, We, be, Wd, bd, Wp, bp, R, Y, (n, H, W, cin, Ce, cout, Ho, Wo, s, pad), flags)
    elif name.startswith("exdwpw8"):  # fuse v8: the same op and arguments as exdwpw5, the build's own tile
        X, We, be, Wd, bd, Wp, bp, R, Y = map(flat, a[:9])
        H, W, Ce, Ho, Wo, pad, act_e, act_d, act_p, hr = map(int, a[9:])
        c = exdwpw8_configs()[name]  # (this function's K is a GEMM dimension)
        s, cin, cout, th, tw, n = c["S"], c["CIN"], c["COUT"], c["TH"], c["TW"], grid[1]
        assert grid[0] == -(-Ho // th) * -(-Wo // tw) and block == (256, 1, 1), (grid, block, Ho, Wo, th, tw)
        flags = (act_e, act_d, act_p, hr)
        emulate_block(X, We, be, Wd, bd, Wp, bp, R, Y, (n, H, W, cin, Ce, cout, Ho, Wo, s, pad), flags)
    elif name.startswith("exdwpw6"):  # fuse v6: the same op as exdwpw5, split over clusters (kernels/cblock.cu)
        X, We, be, Wd, bd, Wp, bp, R, Y, _ = map(flat, a[:10])
        cnt = flat(a[10])
        H, W, cin, Ce, cout, Ho, Wo, s, tr, act_e, act_d, act_p, hr, proj, ex_ks, red_pf, dw_segs = map(int, a[11:])
        assert dw_segs in (0, 1), dw_segs  # fuse v20's depthwise by row segments: the same sums
        # fuse v18's reduce with its loads requested early, v37's bulk-copy reduce (2, fixed builds): the same sums
        assert red_pf in (0, 1, 2), red_pf
        # v16's projection by output columns, v17 / v19's lane tiles, v36's in the lane-pair order: the same sums
        assert proj in (0, 1, 2, 3, 4, 5), proj
        ks, ec = ex_ks & 15, (ex_ks >> 4) & 3  # fuse v30: ex_ks = KS + 16 * EC (EC channel groups per lane, 1 - 3)
        assert ks in (0, 1, 2, 4, 8) and (ks == 0 or cin % (4 * ks) == 0), (ex_ks, cin)  # fuse v17
        assert ec in (0, 1, 2, 3) and (ec == 0 or ks > 0), ex_ks
        # fuse v32: + 64, the padded tiles; v33: + 128, their k loop unrolled; v34: + 256, the units in boustrophedon
        # order (the same sums)
        assert 0 <= ex_ks < 512 and (ex_ks & 192 == 0 or ec > 0) and (ex_ks < 256 or ks > 0), ex_ks
        # exdwpw6_c<CH>, fuse v13's exdwpw6_c<CH>x<CL>, fuse v15's _t512 (512 threads), fuse v22's _m<modes> (the
        # build with its modes fixed at compile time: they must be the arguments'; fuse v23's _s<shape>: so must it)
        from impls._custom_kernels import exdwpw6_spec_parse  # (this function's K is a GEMM dimension)

        base, modes, shape = exdwpw6_spec_parse(name)
        assert modes in (None, (proj, ex_ks, red_pf, dw_segs)), (name, a[24:])
        assert shape in (None, (H, W, cin, Ce, cout, Ho, Wo, s, tr, act_e, act_d, act_p, hr)), (name, a[11:24])
        assert shape is None or modes is not None, name
        m = re.fullmatch(r"exdwpw6_c(\d+)(?:x(\d+))?(?:_t(\d+))?", base)
        ch, cl = int(m[1]), int(m[2] or 8)
        assert ec == 0 or ((ch // 4) % ec == 0 and shape is not None), (name, ex_ks)  # v30's modes: fixed builds only
        assert proj < 4 or shape is not None, (name, proj)  # v36's ordered projection tiles: fixed builds only
        assert red_pf < 2 or shape is not None, (name, red_pf)  # v37's bulk-copy reduce: fixed builds only
        n = grid[2]
        assert cnt.dtype == np.int32 and not cnt[: n * grid[1] * cl].any(), "counters must be zero before a launch"
        assert cnt.size >= n * grid[1] * cl, (cnt.size, n, grid, cl)
        assert grid[0] % cl == 0 and grid[0] * ch == Ce and grid[1] == -(-Ho // tr), (grid, Ce, ch, cl, Ho, tr)
        assert block == (int(m[3] or 256), 1, 1) and (H + 2 - 3) // s + 1 == Ho and (W + 2 - 3) // s + 1 == Wo
        assert cin % 4 == 0 and Ce % 4 == 0 and cout % 4 == 0
        flags = (act_e, act_d, act_p, hr)
        emulate_block(X, We, be, Wd, bd, Wp, bp, R, Y, (n, H, W, cin, Ce, cout, Ho, Wo, s, 1), flags)
    elif name.startswith("exdwpw10"):  # fuse v10: the same op as exdwpw6 in one cooperative two-phase kernel
        X, We, be, Wd, bd, Wp, bp, R, Y, D = map(flat, a[:10])
        bar = flat(a[10])
        n, H, W, cin, Ce, cout, Ho, Wo, s, tr, act_e, act_d, act_p, hr = map(int, a[11:])
        ch = int(name[len("exdwpw10_c") :])
        items_a = n * -(-Ho // tr) * (Ce // ch)
        items_b = -(-n * Ho * Wo // 8) * (cout // 16)
        assert bar.dtype == np.uint32 and D.size >= n * Ho * Wo * Ce, (bar.dtype, D.size)
        assert tuple(grid[1:]) in ((), (1, 1)) and 1 <= grid[0] <= max(items_a, items_b) and block == (256, 1, 1), grid
        assert Ce % ch == 0 and cout % 16 == 0 and cin % 4 == 0 and (H + 2 - 3) // s + 1 == Ho
        flags = (act_e, act_d, act_p, hr)
        emulate_block(X, We, be, Wd, bd, Wp, bp, R, Y, (n, H, W, cin, Ce, cout, Ho, Wo, s, 1), flags)
    elif name.startswith(("block0_v", "hblock0_v")):  # block0 v2 / v3, hblock0 v2 (half output): the same op
        from tests._block0_emulation import emulate_block0

        emulate_block0(name, grid, block, args, flat)
    elif name.startswith(("exdw", "exgdw")):  # fuse v3 / v4 / v7: depthwise 3x3(ReLU6(expand 1x1(x)))
        X, We, be, Wd, bd, Y = map(flat, a[:6])
        if name.startswith("exgdw"):  # fuse v7: blocks of `imgs` whole images x BN expanded channels, 224 threads
            n, H, W, cin, Ce, Ho, Wo, pad, imgs, act_e, act_d = map(int, a[6:])
            s, bn = map(int, re.fullmatch(r"exgdw_s(\d)_n(\d+)(?:_k32)?", name).groups())
            assert grid == (-(-n // imgs) * -(-Ce // bn), 1, 1) and block == (EXGDW_THREADS, 1, 1), (grid, block)
            assert imgs == EXGDW_ROWS // (H * W) >= 1 and cin % 4 == 0 and Ce % 4 == 0
        else:
            H, W, Ce, Ho, Wo, pad, act_e, act_d = map(int, a[6:])
            s, cin, n = int(name.split("_s")[1][0]), int(name.split("_c")[1]), grid[2]
        e = X[: n * H * W * cin].reshape(n, H, W, cin).astype(np.float64) @ We[: cin * Ce].reshape(cin, Ce)
        e = relu6(e + be[:Ce], act_e)
        ep = np.pad(e, ((0, 0), (pad, pad + 2), (pad, pad + 2), (0, 0)))  # zero padding of the depthwise input
        v = np.zeros((n, Ho, Wo, Ce))
        for dy in range(3):
            for dx in range(3):
                tap = Wd[(dy * 3 + dx) * Ce :][:Ce]
                v += ep[:, dy : dy + s * (Ho - 1) + 1 : s, dx : dx + s * (Wo - 1) + 1 : s, :] * tap
        Y[: n * Ho * Wo * Ce] = relu6(v + bd[:Ce], act_d).ravel()
    elif name.startswith("conv_direct") or name.startswith("dwconv3") or name == "conv3x3c3_nhwc":
        name = name.replace("_tw1", "")
        x, w, bias, R, y = map(flat, a[:5])
        if name == "conv3x3c3_nhwc":
            N, H, W, Ho, Wo, Cout, s, pad, act, hr = map(int, a[5:])
            Cin = 3
            k = 3
            dw = False
        elif name.startswith("conv_direct"):
            N, H, W, Cin, Ho, Wo, Cout, k, s, pad, act, hr = map(int, a[5:])
            dw = False
        elif name == "dwconv3_v1":
            N, H, W, Cin, Ho, Wo, s, pad, act, hr = map(int, a[5:])
            k = 3
            Cout = Cin
            dw = True
        else:
            N, H, W, Cin, Ho, Wo, pad, act, hr = map(int, a[5:])
            k = 3
            Cout = Cin
            dw = True
            s = int(name[-1])
        xx = np.pad(
            x[: N * H * W * Cin].reshape(N, H, W, Cin).astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0))
        )
        out = np.zeros((N, Ho, Wo, Cout)) + bias[:Cout]
        for ky in range(k):
            for kx in range(k):
                patch = xx[:, ky : ky + (Ho - 1) * s + 1 : s, kx : kx + (Wo - 1) * s + 1 : s, :]
                if dw:
                    out += patch * w[(ky * 3 + kx) * Cin : (ky * 3 + kx + 1) * Cin]
                else:
                    wk = w[(ky * k + kx) * Cin * Cout : (ky * k + kx + 1) * Cin * Cout].reshape(Cin, Cout)
                    out += patch @ wk
        out = relu6(out, act)
        if hr:
            out = out + R[: out.size].reshape(out.shape)
        y[: out.size] = out.ravel()
    elif name.startswith("pool_"):
        x, y = flat(a[0]), flat(a[1])
        HW, C = int(a[2]), int(a[3])
        N = grid[1]
        y[: N * C] = x[: N * HW * C].reshape(N, HW, C).astype(np.float64).mean(1).ravel()
    elif name in ("pwpool", "pwpool_c8", "pwpool_c10"):  # fuse v9: mean over pixels of ReLU6(pointwise conv)
        assert int(a[6]) % PWPOOL_CO == 0 and int(a[4]) <= PWPOOL_MAX_HW
        x, Wt, bias, y = map(flat, a[:4])
        HW, Kc, COUT, act = map(int, a[4:])
        N = grid[1]
        # channels per block: pwpool's PWPOOL_CO; 64 / 80 per cluster of 8 (pwpool_c8 / fuse v54's pwpool_c10)
        assert grid[0] * {"pwpool": PWPOOL_CO, "pwpool_c8": 8, "pwpool_c10": 10}[name] == COUT
        assert name != "pwpool_c10" or (COUT % 80 == 0 and block == (256, 1, 1)), (COUT, block)
        v = x[: N * HW * Kc].reshape(N, HW, Kc).astype(np.float64) @ Wt[: Kc * COUT].reshape(Kc, COUT) + bias[:COUT]
        y[: N * COUT] = relu6(v, act).mean(1).ravel()
    elif name in ("pwpool_fc_c8", "pwpool_fc_c8e"):  # fuse v31 (v55): pwpool_c8 + L = pool @ Wl + bl over clusters
        x, Wt, bias, y, Wl, bl, L, ws = map(flat, a[:8])
        cnt = flat(a[8])
        HW, Kc, COUT, OUT, act = map(int, a[9:])
        N = grid[1]
        assert HW <= PWPOOL_MAX_HW and Kc % 4 == 0 and COUT % 64 == 0 and OUT % 4 == 0, (HW, Kc, COUT, OUT)
        assert grid[0] == 8 * (COUT // 64) and block == (256, 1, 1), (grid, block)
        assert ws.size >= N * (COUT // 64) * OUT, (ws.size, N, COUT, OUT)
        assert cnt.dtype == np.int32 and cnt.size >= N * 8 and not cnt[: N * 8].any(), "counters must be zero"
        v = x[: N * HW * Kc].reshape(N, HW, Kc).astype(np.float64) @ Wt[: Kc * COUT].reshape(Kc, COUT) + bias[:COUT]
        pooled = relu6(v, act).mean(1)
        y[: N * COUT] = pooled.ravel()
        # the clusters' partials as the kernel leaves them in the workspace (64 channels each), summed in cluster order
        part = np.einsum("ngc,gco->ngo", pooled.reshape(N, -1, 64), Wl[: COUT * OUT].reshape(-1, 64, OUT))
        ws[: part.size] = part.ravel()
        L[: N * OUT] = (part.sum(1) + bl[:OUT]).ravel()
    elif name == "mbv2_spin":  # mbv2.timing.spin (the autotuner's launch-latency cover): no data
        assert grid == (1, 1, 1) and int(a[0]) > 0, (grid, a)
    elif name == "linear_c8":  # linear v4: y = x @ Wt + b, clusters of 8 over 64-column / 64-row tiles
        x, Wt, bias, y = map(flat, a[:4])
        N, IN, OUT = map(int, a[4:])
        assert IN % 4 == 0 and OUT % 8 == 0 and grid[:2] == (8 * -(-OUT // 64), -(-N // 64)), (grid, N, OUT)
        v = x[: N * IN].reshape(N, IN).astype(np.float64) @ Wt[: IN * OUT].reshape(IN, OUT) + bias[:OUT]
        y[: N * OUT] = v.ravel()
    elif name in ("linear_gemv", "linear_gemv_v3", "linear_gemv_v5", "linear_gemv_v6"):
        x, W, bias, y = map(flat, a[:4])
        N, IN, OUT = map(int, a[4:])
        y[: N * OUT] = (
            x[: N * IN].reshape(N, IN).astype(np.float64) @ W[: OUT * IN].reshape(OUT, IN).T + bias[:OUT]
        ).ravel()
    elif name.startswith("add_"):
        A, B, Y = map(flat, a[:3])
        n = int(a[3])
        Y[:n] = A[:n] + B[:n]
    elif name == "nchw_to_nhwc_smallc":
        x, y = flat(a[0]), flat(a[1])
        c, hw, pixels = int(a[2]), int(a[3]), int(a[4])
        nb = pixels // hw
        y[: pixels * c] = x[: pixels * c].reshape(nb, c, hw).transpose(0, 2, 1).ravel()
    elif name == "transpose_batched":
        x, y = flat(a[0]), flat(a[1])
        rows, cols = int(a[2]), int(a[3])
        nb = grid[2]
        y[: nb * rows * cols] = x[: nb * rows * cols].reshape(nb, rows, cols).transpose(0, 2, 1).ravel()
    elif name.startswith(HALF_PREFIXES):  # kernels/half.cu (fp16 mode)
        emulate_half(name, grid, block, args)
    elif name == "net_persistent":  # kernels/persistent.cu (net v2): walks the stage table
        from tests.persistent_emulation import emulate_persistent

        emulate_persistent(grid, block, args)
    else:
        raise AssertionError(name)


# fuse v43: the flag twin's five more arguments (kernels/cblock.cu EXDWPW6_FLAG_PARAMS)
FLAG_SIG = ["const unsigned* fin", "unsigned* fout", "const unsigned* fep", "int ptr_", "int pcl"]
# fuse v49: the b0fuse twin's arguments after its exdwpw5 build's (kernels/conv.cu EXDWPW5_B0_PARAMS: block0 v4's)
B0FUSE_SIG = ["const float* X0", "const float* Ws0", "const float* bs0", "const float* Wd0", "const float* bd0"]
B0FUSE_SIG += ["const float* Wp0", "const float* bp0", "int H0", "int W0", "int act_s0", "int act_d0", "int act_p0"]
FLAG_CHECKS: list[str] = []  # the flag twins launched whose producer flags were checked (emulate_flag_twin)


def emulate_flag_twin(name, grid, block, args):
    """fuse v43's flag twin of an exdwpw6 fixed build, fuse v44's of an exdwpw5 one (kernels/conv.cu EXDWPW5_FLAGS):
    with producer flags (fin), every producer tile that an output tile's input rows lie in must already hold this
    forward's number (on the GPU the block would wait for it; here launches run in order, so a flag not set means the
    producer never ran in this forward: a hang on the device); then the build's own arithmetic, then every flag of
    its own is set. exdwpw6: (image, tile, rank) flags, the input rows of each row tile; exdwpw5: one flag per block,
    the rows each band of TH output rows stages (exdwpw5_body's patch: IH = (TH - 1) S + 3 rows from th0 S - pad,
    clipped to the image)."""
    from impls._custom_flags import input_rows, producer_tiles

    if name.startswith("exdwpw5"):
        gen, shape = K.fixed_parse(name)
        cfg = K.exdwpw5_configs()[gen]
        s, th, h, ho, pad = cfg[0], cfg[3], shape[0], shape[3], shape[5]
        n_args, images, own = 19, grid[1], grid[0] * grid[1]
        starts = [band * th * s - pad for band in range(-(-ho // th))]
        rows = [(max(y, 0), min(y + (th - 1) * s + 3, h)) for y in starts]
    else:
        h, ho, s, tr = int(args[11]), int(args[16]), int(args[18]), int(args[19])
        cl = K.exdwpw6_build_of(K.exdwpw6_spec_parse(name)[0])[1]
        n_args, images, own = 28, grid[2], grid[2] * grid[1] * cl
        rows = [input_rows(t * tr, min(tr, ho - t * tr), s, h) for t in range(grid[1])]
    assert len(args) == n_args + 5, (name, len(args))
    fin, fout, fep, ptr_, pcl = args[n_args:]
    assert type(ptr_) is np.int32 and type(pcl) is np.int32 and fout.dtype == np.uint32 and fep.dtype == np.uint32
    e = int(fep[0])
    assert e > 0, f"{name}: the forward's number was never advanced"
    if isinstance(fin, ndarray):
        stp = -(-h // int(ptr_))
        assert fin.dtype == np.uint32 and fin.size == images * stp * int(pcl), (name, fin.size)
        for n in range(images):
            for iy0, iy1 in rows:
                for sp in producer_tiles(iy0, iy1, int(ptr_)):
                    polled = fin[(n * stp + sp) * int(pcl) : (n * stp + sp + 1) * int(pcl)]
                    assert (polled == e).all(), f"{name}: would wait forever on producer tile {sp}: {polled}, {e}"
        FLAG_CHECKS.append(name)
    emulate(name, grid, block, args[:n_args])
    assert fout.size == own, (name, fout.size, grid)
    fout[:] = e  # every block that stores stored its slice


class RawKernel:
    ptr = 0  # no CUfunction; the stand-in driver's occupancy query ignores it

    def __init__(self, name, name2=None):
        if name2 is not None:
            name = name2
        if name == "mbv2_spin":
            SIGS[name] = ["unsigned long long ns"]
        base = K.generic_of(name)  # fuse v22 - v24: a fixed build has its generic build's signature
        if base != name and base in SIGS:
            SIGS[name] = SIGS[base]
        twin = K.twin_parse(name)[1]  # fuse v43: the flag / epoch twins take more arguments
        if twin is not None and base in SIGS:  # (fuse v45 / v46's trigger twins: the build's own arguments)
            more = {K.FLAG_SUFFIX: FLAG_SIG, K.EPOCH_SUFFIX: ["unsigned* ep"], K.B0FUSE_SUFFIX: B0FUSE_SIG}
            more = more.get(twin, [])
            SIGS[name] = SIGS[base] + more
        if name not in SIGS:
            raise KeyError(f"no kernel {name}")
        self.name, self.sig = name, SIGS[name]

    def __call__(self, grid, block, args, shared_mem=0, enable_cooperative_groups=False):
        assert len(args) == len(self.sig), (self.name, len(args), len(self.sig), self.sig)
        for p, v in zip(self.sig, args):
            if p == FLAG_SIG[0] and type(v) is np.int64:  # a flag twin's fin may be a null pointer
                assert int(v) == 0, (self.name, p, v)
            elif "*" in p:
                assert isinstance(v, ndarray), (self.name, p, type(v))
            elif p.startswith("unsigned"):
                pass
            elif p.startswith("long long"):
                assert type(v) is np.int64, (self.name, p, type(v))
            elif p.startswith("int"):
                assert type(v) is np.int32, (self.name, p, type(v))
            else:
                raise AssertionError(p)
        g = tuple(grid) + (1,) * (3 - len(grid))
        b = tuple(block) + (1,) * (3 - len(block))
        assert all(isinstance(int(q), int) and q >= 1 for q in g + b), (self.name, g, b)
        assert g[0] < 2**31 and g[1] <= 65535 and g[2] <= 65535, (self.name, g)
        # above 48 KB of dynamic shared memory a kernel must have opted in (max_dynamic_shared_size_bytes), up to
        # the H100's 227 KB per block
        limit = max(48 * 1024, getattr(self, "max_dynamic_shared_size_bytes", 0))
        assert np.prod(b) <= 1024 and shared_mem <= limit <= 227 * 1024, (self.name, shared_mem, limit)
        if self.name == "linear_gemv_v6":  # linear v6: x staged in dynamic shared memory, N * IN floats, all of it
            n, fin = int(args[4]), int(args[5])
            assert shared_mem == n * fin * 4 <= K.LINEAR_V6_MAX_SMEM and fin % 4 == 0, (shared_mem, n, fin)
        if CAPTURE is not None:
            CAPTURE.append((self.name, g, b, args))
            return
        LAUNCHES.append(self.name)
        emulate(self.name, g, b, args)


class RawModule:
    def __init__(self, code=None, path=None, options=()):
        pass

    def get_function(self, name):
        return RawKernel(name)


CAPTURE = None


class _Graph:
    def __init__(self, items):
        self.items = items

    def launch(self, stream=None):
        for name, g, b, args in self.items:
            LAUNCHES.append(name)
            emulate(name, g, b, args)


class _Stream:
    def __init__(self, non_blocking=False):
        pass

    def begin_capture(self):
        global CAPTURE
        CAPTURE = []

    def end_capture(self):
        global CAPTURE
        g = _Graph(CAPTURE)
        CAPTURE = None
        return g

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass

    def synchronize(self):
        pass


class _Device:
    id = 0

    def __init__(self, i=0):
        pass

    compute_capability = "90"
    attributes = {"MultiProcessorCount": 132, "L2CacheSize": 50 * 2**20}


class _Event:
    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


class _Pool:
    def free_all_blocks(self):
        pass


def get_default_memory_pool():
    return _Pool()


uint64 = np.uint64
uint32 = np.uint32

cuda = types.SimpleNamespace(
    Stream=_Stream,
    Device=_Device,
    Event=_Event,
    get_elapsed_time=lambda a, b: 1.0,
    get_current_stream=lambda: _Stream(),
    driver=types.SimpleNamespace(
        CUDADriverError=RuntimeError, occupancyMaxActiveBlocksPerMultiprocessor=lambda fn, threads, smem: 2
    ),
    runtime=types.SimpleNamespace(
        CUDARuntimeError=RuntimeError,
        driverGetVersion=lambda: 13000,
        getDeviceProperties=lambda i: {"name": b"fake", "multiProcessorCount": 132, "l2CacheSize": 50 * 2**20},
    ),
)


def make_fake_cupy() -> types.ModuleType:
    mod = types.ModuleType("cupy")
    for k in [
        "ndarray",
        "float16",
        "float32",
        "int32",
        "float64",
        "zeros",
        "empty",
        "empty_like",
        "zeros_like",
        "asarray",
        "full",
        "RawModule",
        "RawKernel",
        "cuda",
        "get_default_memory_pool",
        "uint64",
        "uint32",
    ]:
        setattr(mod, k, globals()[k])
    mod.__version__ = "fake"
    return mod


SPEC_BUILDS: list = []  # fuse v22: the (build, modes) the backend compiled (the stand-in's build_exdwpw6_spec)
SPEC_EXTRAS: list = []  # each of those builds' extra -D options (the flag twins' MBV2_FLAG_EXTRA variants)
FIXED_BUILDS: list = []  # fuse v24: the (build, shape) the backend compiled (the stand-in's build_fixed)
FILE_TWINS: list = []  # fuse v45: the kernel files whose early-trigger build the backend asked for


@pytest.fixture
def fake_cupy(monkeypatch):
    import impls.custom as custom

    monkeypatch.setitem(sys.modules, "cupy", make_fake_cupy())
    monkeypatch.delitem(sys.modules, "cupyx", raising=False)
    monkeypatch.setattr(custom, "gpu_status", lambda: (True, "fake"))
    monkeypatch.setattr(custom, "_MODULE_CACHE", {})
    monkeypatch.setattr(custom, "_PROCESS_OPTIONS", {})  # (the loaded functions are the stand-in's: each test its own)
    monkeypatch.setattr(custom, "available", lambda: (True, ""))
    # the autotuner's threshold as before session 14 (1e8: batch >= ~8): here every timed candidate is emulated in
    # NumPy, and tuning the batch-1 / 2 plans of every test slowed this file ~50x (2 tests done against 113); the
    # tests of the tuner set TUNE_MIN_FLOP themselves, the GPU tests run the default (0)
    monkeypatch.setattr(custom.CustomBackend, "TUNE_MIN_FLOP", 1e8)
    # plan_tune's whole-plan graph timings: every candidate ties (the current picks stay), no emulated replays; the
    # tests of plan_tune patch in their own timings
    monkeypatch.setattr(custom.CustomBackend, "_time_sequences", lambda self, seqs: [0.0] * len(seqs))
    # an sm_90 GPU's driver: cuLaunchKernelEx (programmatic dependent launch, linear v5's GEMV by default) stood in
    # for by the plain emulated launch; PDL_LAUNCHES records which kernels went that way
    monkeypatch.setattr(custom, "_driver_launch_ex", lambda: object())

    def fake_pdl(self, launch):
        PDL_LAUNCHES.append(launch.name)
        launch.kernel(launch.grid, launch.block, launch.args, shared_mem=launch.smem)

    monkeypatch.setattr(custom.CustomBackend, "_launch_pdl", fake_pdl)
    # clusters of 16 (fuse v13): the driver's opt-in stood in for; NONPORTABLE records the kernels opted in
    monkeypatch.setattr(custom.CustomBackend, "_allow_nonportable_cluster", lambda self, nm, fn: NONPORTABLE.add(nm))
    NONPORTABLE.clear()
    PDL_LAUNCHES.clear()
    # no compile: the fake "loads" kernels by name from the parsed signatures
    monkeypatch.setattr(
        custom.K, "build_all", lambda arch: {n: custom.K.Built(n, None, "") for n in custom.K.KERNEL_FILES}
    )

    def fake_spec(name, modes, arch, nvcc, shape=None, flags=False, extra=(), early=False, at_exit=False):
        tags = (("flags",) if flags else ()) + (("early",) if early else ()) + (("exit",) if at_exit else ())
        SPEC_BUILDS.append((name, modes, shape) + tags)  # fuse v22 / v23's fixed builds: recorded, loaded by name
        SPEC_EXTRAS.append(tuple(extra))  # (v43 / v45 / v46: the twins; session 30: a flag twin's measuring variants)
        twin = K.FLAG_SUFFIX if flags else K.TRIGGER_SUFFIX if early else K.EXIT_SUFFIX if at_exit else ""
        return custom.K.Built(custom.K.exdwpw6_spec_name(name, modes, shape) + twin, None, "")

    monkeypatch.setattr(custom.K, "build_exdwpw6_spec", fake_spec)
    SPEC_BUILDS.clear()
    SPEC_EXTRAS.clear()

    # build_fixed's twin keywords, in the order of their tags, and the suffix each names its build with
    twin_suffix = {"epoch": K.EPOCH_SUFFIX, "flags": K.FLAG_SUFFIX, "early": K.TRIGGER_SUFFIX,
                   "staged": K.STAGE_SUFFIX, "patch": K.PATCH_SUFFIX, "b0fuse": K.B0FUSE_SUFFIX}  # fmt: skip

    def fake_fixed(name, shape, arch, nvcc, **twins):
        assert set(twins) <= set(twin_suffix), twins
        tags = tuple(k for k in twin_suffix if twins.get(k))
        FIXED_BUILDS.append((name, shape) + tags)  # fuse v24's fixed builds: recorded, loaded by name
        suffix = twin_suffix[tags[-1]] if tags else ""  # (one twin at most: K.build_fixed refuses more)
        return custom.K.Built(custom.K.fixed_name(name, shape) + suffix, None, "")

    monkeypatch.setattr(custom.K, "build_fixed", fake_fixed)
    FIXED_BUILDS.clear()

    def fake_file_twin(name, arch, nvcc):  # fuse v45: block0.cu's early build (its kernels keep their names)
        FILE_TWINS.append(name)
        return custom.K.Built(name + K.TRIGGER_SUFFIX, None, "")

    monkeypatch.setattr(custom.K, "build_file_twin", fake_file_twin)
    FILE_TWINS.clear()
    FLAG_CHECKS.clear()
    LAUNCHES.clear()
    return custom


# the stem versions pinned with block0=v1: block0 v2 / v3 (the default) run the stem inside their own kernel; the
# linear versions with fuse=v51: fuse v53 / v55 (head_fc) run the classifier inside their head kernel at these batches
PIN = {"stem": ",block0=v1", "linear": ",fuse=v51"}
SPECS = [""] + [f"{fam}={ver}" + PIN.get(fam, "") for fam, vers in K.KERNEL_VERSIONS.items() for ver in vers]


@pytest.fixture(scope="module")
def ort_logits(net):
    x = random_input(net, 2, seed=7)
    ort = impls.create("ort")
    ort.prepare(net)
    return x, ort.run(x)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("spec", SPECS)
def test_host_plan_matches_onnxruntime_with_emulated_kernels(fake_cupy, net, ort_logits, spec, graph):
    x, ref = ort_logits
    be = fake_cupy.CustomBackend(kernels=spec, graph=graph)
    be.prepare(net)
    be.poison(2)
    y = be.run(x)
    assert_close(y, ref, "fp32", "e2e", what=f"emulated custom {spec or 'default'}")
    assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp32"]
    if spec == "net=v2":  # the whole network is one launch, the input transpose fused into its stem stage
        assert set(LAUNCHES) == {"net_persistent"}, LAUNCHES
    else:
        # the 3-channel input's layout change, or block0 v2 reading the NCHW input itself (fuse v24: on its fixed
        # build, named after the generic one)
        ver = be.versions["block0"]
        b0 = ver in ("v2", "v3", "v4")
        b0_kernels = {K.block0_kernel(32, 16, v) for v in (("v4", "v3") if ver == "v4" else (ver,))}
        generic = [K.generic_of(k) for k in LAUNCHES]
        assert ("nchw_to_nhwc_smallc" in LAUNCHES) != b0 and bool(b0_kernels & set(generic)) == b0, LAUNCHES
    if spec == "fuse=v9":  # the head conv 320 -> 1280 + ReLU6 + pool as one kernel at batch 2 (<= PWPOOL_MAX_BATCH)
        assert "pwpool_c8" in LAUNCHES and not any(n.startswith("pool_") for n in LAUNCHES), LAUNCHES
    if spec == "linear=v3" + PIN["linear"]:
        assert "linear_gemv_v3" in LAUNCHES and "linear_gemv" not in LAUNCHES, LAUNCHES
    if spec in ("fuse=v3", "fuse=v4", "fuse=v5", "fuse=v6"):  # the 6 expansions on <= 32 channels: inside their dw
        names = [launch.name for launch in be.plan(2).launches]
        assert sum(n.startswith("exdw") for n in names) == 6, names


def test_default_plan_launches_the_default_kernels(fake_cupy, net, ort_logits):
    be = fake_cupy.CustomBackend()
    be.prepare(net)
    be.run(ort_logits[0])
    # fuse v22 and later: each planned exdwpw6 launch runs a fixed build named after the generic one (v24: exdwpw5 and
    # block0 too)
    launched = {K.generic_of(k) for k in LAUNCHES}
    allowed = {k for _, k in K.default_kernels()}
    assert launched <= allowed, launched - allowed
    fixed = K.spec_modes(K.DEFAULT_VERSIONS["fuse"])
    six = [k for k in LAUNCHES if k.startswith("exdwpw6")]
    assert all((K.exdwpw6_spec_parse(k)[1] is not None) == fixed for k in six), six
    b0 = K.DEFAULT_VERSIONS["block0"]
    b0 = "v3" if b0 == "v4" else b0  # v4 runs v3's kernel at ort_logits' batch 2 (its split only where it fits)
    stem = K.block0_kernel(32, 16, b0) if b0 in ("v2", "v3", "v4") else "conv3x3c3_nhwc"
    # ort_logits' batch 2: fuse v13 runs the <= 28x28 blocks as exdwpw6 kernels there, above it split-K GEMMs
    small = len(ort_logits[0]) <= be.exdwpw6_max_batch
    assert stem in launched and (
        any(k.startswith("exdwpw6") for k in launched) if small else "gemm_splitk_reduce" in launched
    )


def test_fused_plan_skips_the_depthwise_launches(fake_cupy, net, ort_logits):
    be = fake_cupy.CustomBackend(kernels="fuse=v2,block0=v1")  # block0 v2 / v3 would take the first pair
    be.prepare(net)
    be.run(ort_logits[0])
    launched = list(LAUNCHES)
    assert not any(k.startswith("dwconv3") for k in launched), launched  # all 17 pairs fused
    assert sum(k.startswith("dwpw_s") for k in launched) == 17


@pytest.mark.parametrize("spec", ["", "fuse=v2"])
def test_autotuned_plan_matches_onnxruntime(fake_cupy, net, ort_logits, spec, monkeypatch):
    x, ref = ort_logits
    if not spec:  # plan_tune: the last alternative of each tuned launch timed fastest, so each one swaps in

        def last_fastest(self, seqs):
            return [float(len(seqs) - k) for k in range(len(seqs))]

        monkeypatch.setattr(fake_cupy.CustomBackend, "_time_sequences", last_fastest)
    be = fake_cupy.CustomBackend(kernels=spec, autotune=True, graph=True, plan_tune=not spec)
    be.TUNE_MIN_FLOP = 0  # batch 2 problems are below the threshold
    be.prepare(net)
    be.poison(2)
    y = be.run(x)
    assert_close(y, ref, "fp32", "e2e", what=f"emulated custom autotune {spec or 'default'}")
    assert be.tuned and be.info()["autotune"]
    changes = be.plan_tuned.get(2)
    assert (changes is None) == bool(spec)
    if not spec:  # the 13 exdwpw6 blocks (every candidate ties in the stand-in: each has alternatives) and others
        assert sum("exdwpw6" in ch["key"] for ch in changes) == 13, changes
        for ch in changes:
            assert ch["plan_pick"] != ch["isolated_pick"]
            assert ch["plan_ms"][1] < ch["plan_ms"][0]
        plan = be.plan(2)
        assert [lo for _, lo, _ in plan.op_ranges[1:]] == [hi for _, _, hi in plan.op_ranges[:-1]]
        assert plan.op_ranges[-1][2] == len(plan.launches)
        assert be.info()["plan_tuned"]["2"] == changes
    n = len(be.tuned)
    be.plan(3)  # another batch: new problems tuned, the cached ones reused
    assert len(be.tuned) >= n
    # inside a stream capture nothing is timed: the cost model's tile, nothing added to the cache
    be2 = fake_cupy.CustomBackend(kernels=spec, autotune=True)
    be2.TUNE_MIN_FLOP = 0
    be2.prepare(net)
    be2._capturing = True
    try:
        be2.plan(2)
    finally:
        be2._capturing = False
    assert not be2.tuned


def test_pointwise_pool_op_with_emulated_kernels(fake_cupy, rng):
    """pointwise_pool: pwpool_c8 (COUT % 64 == 0) or pwpool with fuse=v9 where it applies, the conv + pool kernels
    (and a recorded fallback with v9) elsewhere; every path against NumPy float64."""
    from tests.test_custom_kernels import make_conv

    for ver in ("v8", "v9"):
        # (cin, cout, h, w, batch): the head at batch 1; 64 pixels; 81 pixels, CIN % 4, COUT % 8: not pwpool
        for cin, cout, h, w, batch in [(320, 1280, 7, 7, 1), (8, 16, 8, 8, 2), (8, 16, 9, 9, 1), (6, 8, 2, 2, 1),
                                       (8, 12, 2, 2, 1), (36, 64, 8, 8, 2)]:  # fmt: skip
            be = fake_cupy.CustomBackend(kernels=f"fuse={ver}")
            lay = make_conv(rng, cin, cout, 1, 1, 0, 1, h, w)
            x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
            LAUNCHES.clear()
            y = be.to_host(be.pointwise_pool(be.to_device(x), lay, act=True))
            ref = NumpyBackend(dtype="fp64").conv2d(x.astype(np.float64), lay, act=True).mean(axis=(2, 3))
            assert_close(y, ref, "fp32", "layer", what=f"pointwise_pool fuse {ver} {cin}->{cout} {h}x{w}")
            applies = ver == "v9" and h * w <= K.PWPOOL_MAX_HW and cin % 4 == 0 and cout % K.PWPOOL_CO == 0
            kernel = "pwpool_c8" if cout % 64 == 0 else "pwpool"
            assert (kernel in LAUNCHES) == applies and any(n.startswith("pool_") for n in LAUNCHES) != applies, LAUNCHES
            assert any("fuse v9" in f for f in be.info()["fallbacks"]) == (ver == "v9" and not applies)
    be = fake_cupy.CustomBackend(kernels="fuse=v9")
    with pytest.raises(InputError, match="pointwise Conv2d"):
        be.pointwise_pool(be.to_device(np.zeros((1, 8, 3, 3), np.float32)), make_conv(rng, 8, 8, 3, 1, 1, 8, 3, 3))


def test_linear_v4_with_emulated_kernels(fake_cupy, rng):
    """linear v4: the GEMV up to batch 8, one linear_c8 launch above (to LINEAR_C8_MAX_BATCH) where IN % 4 == 0 and
    OUT % 8 == 0, the split-K GEMM with a recorded fallback where not, the plain GEMM above LINEAR_C8_MAX_BATCH; every
    path against NumPy float64."""
    from tests.test_custom_kernels import make_linear

    top = K.LINEAR_C8_MAX_BATCH
    # (IN, OUT, batch): the classifier at 8 / 9 / 64 / 200 / max / max + 1; OUT % 8 != 0; IN % 4 != 0
    for fin, fout, batch in [(1280, 1000, 8), (1280, 1000, 9), (1280, 1000, 64), (36, 40, 200), (36, 8, top),
                             (36, 8, top + 1), (64, 30, 64), (6, 16, 16)]:  # fmt: skip
        lay = make_linear(rng, fin, fout)
        x = rng.standard_normal((batch, fin), dtype=np.float32)
        be = fake_cupy.CustomBackend(kernels="linear=v4")
        LAUNCHES.clear()
        y = be.to_host(be.linear(be.to_device(x), lay))
        assert_close(y, NumpyBackend(dtype="fp64").linear(x.astype(np.float64), lay), "fp32", "layer", what=f"{fin}")
        c8 = 8 < batch <= top and fin % 4 == 0 and fout % 8 == 0
        assert (LAUNCHES == ["linear_c8"]) == c8, (fin, fout, batch, LAUNCHES)
        assert any(n.startswith("linear_gemv") for n in LAUNCHES) == (batch <= 8), LAUNCHES
        fell_back = any("linear v4" in f for f in be.info()["fallbacks"])
        assert fell_back == (8 < batch <= top and not c8), (fin, fout, batch, be.info()["fallbacks"])


def test_fuse_v9_plan_at_batch1_small_tiles_and_head(fake_cupy, net):
    """fuse v9 at batch 1: the two 56x56 blocks take the small exdwpw5 tiles (more blocks than v8's t8x8 / pair), the
    head is one pwpool_c8 launch, exdwpw6 configurations of up to 2 blocks per SM; 19 launches against v8's 23. v8's
    plan keeps its tiles."""
    names, blocks6 = {}, {}
    for ver in ("v8", "v9"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={ver}")
        be.prepare(net)
        names[ver] = [la.name for la in be.plan(1).launches]
        blocks6[ver] = [math.prod(la.grid) for la in be.plan(1).launches if la.name.startswith("exdwpw6")]
    # exdwpw6: v8's cost model takes at most one block per SM, v9's up to two
    assert max(blocks6["v8"]) <= be.sms < max(blocks6["v9"]) <= 2 * be.sms, blocks6
    assert {"exdwpw5_s1_c24_o24_t4x8", "exdwpw5_s2_c24_o32_t4x4", "pwpool_c8"} <= set(names["v9"]), names["v9"]
    assert "exdwpw5_s1_c24_o24_t8x8" in names["v8"] and "exdw4_s2_c24" in names["v8"], names["v8"]
    assert len(names["v8"]) == 23 and len(names["v9"]) == 19, names


def test_fuse_v11_plan_big_chunk_builds_where_the_grid_fits(fake_cupy, net):
    """fuse v11 = v9 + the larger-chunk exdwpw5 builds (EXDWPW5_BIG_CHUNK) where the block's grid has at most the
    build's blocks per SM, at batch <= EXDWPW5_BIG_CHUNK_MAX_BATCH: all three small-tile blocks at batch 1, none at
    batch 2 and 4; no exdwpw10 (v10 is its own branch); otherwise v9's plan; the logits match ONNX Runtime."""
    x = random_input(net, 1, seed=11)
    ort = impls.create("ort")
    ort.prepare(net)
    ref = ort.run(x)
    plans = {}
    for ver in ("v9", "v11"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={ver}")
        be.prepare(net)
        be.poison(1)
        assert_close(be.run(x), ref, "fp32", "e2e", what=f"emulated custom fuse={ver} bs1")
        plans[ver] = {b: [(la.name, la.grid) for la in be.plan(b).launches] for b in (1, 2, 4)}
    want = [k + sfx for k, (sfx, _) in K.EXDWPW5_BIG_CHUNK.items()]
    for b in (1, 2, 4):
        big = [(n, g) for n, g in plans["v11"][b] if "_cc" in n]
        assert [n for n, _ in big] == (want if b <= K.EXDWPW5_BIG_CHUNK_MAX_BATCH else []), (b, big)
        assert all(math.prod(g) <= K.EXDWPW5_BIG_CHUNK[n.split("_cc")[0]][1] * be.sms for n, g in big), big
        assert [(n.split("_cc")[0], g) for n, g in plans["v11"][b]] == plans["v9"][b]
        assert not any(n.startswith("exdwpw10") for n, _ in plans["v11"][b])


def test_fuse_v10_plan_at_batch1_runs_two_phase_block_kernels(fake_cupy, net):
    """fuse v10 at batch 1: the 13 blocks exdwpw6 takes in v9 are one cooperative exdwpw10 launch each (at most the
    resident blocks: 2 per SM), the rest is v9's plan; the logits match ONNX Runtime (eager and graph). Above batch 1
    the plan is v9's."""
    x = random_input(net, 1, seed=12)
    ort = impls.create("ort")
    ort.prepare(net)
    ref = ort.run(x)
    for graph in (False, True):
        be = fake_cupy.CustomBackend(kernels="fuse=v10", graph=graph)
        be.prepare(net)
        be.poison(1)
        y = be.run(x)
        assert_close(y, ref, "fp32", "e2e", what=f"emulated custom fuse=v10 bs1 graph={graph}")
        launches = be.plan(1).launches
        ten = [la for la in launches if la.name.startswith("exdwpw10")]
        assert len(ten) == 13 and not any(la.name.startswith("exdwpw6") for la in launches), [la.name for la in ten]
        assert all(la.coop and len(la.grid) == 1 and la.grid[0] <= 2 * be.sms for la in ten)
        assert len(launches) == 19 and not be.info()["fallbacks"], be.info()["fallbacks"]
    names = [la.name for la in be.plan(2).launches]
    assert not any(n.startswith(("exdwpw10", "exdwpw6")) for n in names), names


def test_fuse_v10_bottleneck_op_with_emulated_kernels(fake_cupy, rng):
    """The bottleneck op with fuse=v10: exdwpw10 at any batch where COUT % 16 == 0 (one cooperative launch), else the
    v8 / v6 kernels and a recorded fallback; against NumPy float64."""
    from tests.test_custom_exdw import _odd_block

    # (cin, ce, cout, stride, h, w, batch, residual): 14x14 / 7x7 / odd maps, a partial last row tile; COUT 24: not v10
    for cin, ce, cout, s, h, w, batch, has_res in [
        (64, 384, 64, 1, 14, 14, 1, True),
        (160, 960, 320, 1, 7, 7, 2, False),
        (32, 96, 48, 2, 9, 11, 3, False),
        (32, 192, 24, 1, 5, 5, 1, False),
    ]:
        be = fake_cupy.CustomBackend(kernels="fuse=v10")
        ex, dw, pw, x, res, ref = _odd_block(rng, s, cin, ce, cout, h, w, batch, has_res, True, False)
        LAUNCHES.clear()
        rd = be.to_device(res) if has_res else None
        y = be.to_host(be.bottleneck(be.to_device(x), ex, dw, pw, residual=rd))
        assert_close(y, ref, "fp32", "layer", what=f"fuse v10 {cin}->{ce}->{cout} s{s} {h}x{w} bs{batch}")
        ten = cout % 16 == 0
        assert any(n.startswith("exdwpw10") for n in LAUNCHES) == ten, LAUNCHES
        assert any("fuse v10" in f for f in be.info()["fallbacks"]) != ten


def test_fuse_v9_plan_only_up_to_pwpool_max_batch(fake_cupy, net, monkeypatch):
    """fuse v9 fuses the head conv into the pool's kernel at batch <= PWPOOL_MAX_BATCH only; the conv's input
    buffer is not reused by the pool's output while pwpool reads it."""
    monkeypatch.setattr(fake_cupy.K, "PWPOOL_MAX_BATCH", 2)
    be = fake_cupy.CustomBackend(kernels="fuse=v9")
    be.prepare(net)
    for batch, fused in ((2, True), (3, False)):
        plan = be.plan(batch)
        names = [la.name for la in plan.launches]
        assert ("pwpool_c8" in names) == fused and any(n.startswith("pool_") for n in names) != fused, names
        if fused:
            pw = next(la for la in plan.launches if la.name == "pwpool_c8")
            assert pw.args[0].data.ptr != pw.args[3].data.ptr


def test_dw_pointwise_op_with_emulated_kernels(fake_cupy, rng):
    from tests.test_custom_kernels import make_conv

    for ver in K.KERNEL_VERSIONS["fuse"]:
        be = fake_cupy.CustomBackend(kernels=f"fuse={ver}")
        # (c, cout, stride, h, w, batch, residual): split-K (batch 1, K >= 128), 1x1 map, odd C (falls back)
        for c, cout, s, h, w, batch, has_res in [
            (144, 24, 1, 5, 6, 3, True),
            (960, 160, 1, 7, 7, 1, False),
            (36, 20, 2, 1, 1, 1, False),
            (6, 8, 2, 5, 5, 2, True),
        ]:
            dw = make_conv(rng, c, c, 3, s, 1, c, h, w)
            ho, wo = dw.out_hw(h, w)
            pw = make_conv(rng, c, cout, 1, 1, 0, 1, ho, wo)
            x = rng.standard_normal((batch, c, h, w), dtype=np.float32)
            res = rng.standard_normal((batch, cout, ho, wo), dtype=np.float32) if has_res else None
            y = be.to_host(
                be.dw_pointwise(be.to_device(x), dw, pw, residual=None if res is None else be.to_device(res))
            )
            r64 = NumpyBackend(dtype="fp64")
            mid = r64.conv2d(x.astype(np.float64), dw, act=True)
            ref = r64.conv2d(mid, pw, act=False, residual=None if res is None else res.astype(np.float64))
            assert_close(y, ref, "fp32", "layer", what=f"fuse {ver} dw{c} s{s} -> {cout}")


def test_expand_depthwise_op_with_emulated_kernels(fake_cupy, rng):
    from tests.test_custom_kernels import make_conv

    for ver in K.KERNEL_VERSIONS["fuse"]:
        be = fake_cupy.CustomBackend(kernels=f"fuse={ver}")
        # (cin, ce, stride, h, w, batch): fused shapes, a 1x1 map, CIN = 12 (not in EXDW_CIN: two kernels)
        for cin, ce, s, h, w, batch in [
            (16, 40, 2, 9, 10, 3),
            (24, 72, 1, 5, 7, 2),
            (8, 48, 2, 1, 1, 1),
            (12, 36, 1, 4, 4, 2),
        ]:
            ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
            dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
            x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
            LAUNCHES.clear()
            y = be.to_host(be.expand_depthwise(be.to_device(x), ex, dw))
            fused = K.fuse_level(ver) >= 3 and cin in K.EXDW_CIN
            assert any(k.startswith("exdw") for k in LAUNCHES) == fused, LAUNCHES
            r64 = NumpyBackend(dtype="fp64")
            ref = r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True)
            assert_close(y, ref, "fp32", "layer", what=f"fuse {ver} ex{cin}->{ce} s{s}")


def test_bottleneck_op_with_emulated_kernels(fake_cupy, rng):
    """fuse v5's block kernel (exdwpw5) through the public op: every compiled instance on a map that is not a
    multiple of its tile, with and without residual; a block shape without an instance runs the three layers'
    own kernels and says so."""
    from tests.test_custom_kernels import make_conv

    be = fake_cupy.CustomBackend(kernels="fuse=v5")
    r64 = NumpyBackend(dtype="fp64")
    cases = [(s, ci, co, 9, 10, 2, s == 1 and ci == co) for s, ci, co, _, _ in K.EXDWPW5_INSTANCES]
    cases.append((1, 12, 12, 5, 5, 1, True))  # no instance: three kernels
    for s, cin, cout, h, w, batch, has_res in cases:
        ce = 6 * cin
        ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
        dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
        pw = make_conv(rng, ce, cout, 1, 1, 0, 1, *dw.out_shape[1:])
        x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
        res = rng.standard_normal((batch, *pw.out_shape), dtype=np.float32) if has_res else None
        LAUNCHES.clear()
        be._fallbacks.clear()
        rd = be.to_device(res) if has_res else None
        y = be.to_host(be.bottleneck(be.to_device(x), ex, dw, pw, residual=rd))
        fused = (s, cin, cout) in {i[:3] for i in K.EXDWPW5_INSTANCES}
        tile = K.exdwpw5_tile(s, cin, cout, *dw.out_shape[1:])
        want = [K.exdwpw5_kernel(s, cin, cout, tile)] if fused else []
        assert [k for k in LAUNCHES if k.startswith("exdwpw5")] == want, LAUNCHES
        assert bool(be._fallbacks) != fused, be._fallbacks
        ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True), pw)
        if has_res:
            ref = ref + res
        assert_close(y, ref, "fp32", "layer", what=f"bottleneck s{s} {cin}->{ce}->{cout}")


def test_fuse_v8_bottleneck_op_with_emulated_kernels(fake_cupy, rng):
    """fuse v8's exdwpw8 builds through the public op, each pinned (force_block8) on a map that is not a multiple of
    its tile, with the residual where the shape has one: argument list, grid, shared-memory opt-in; an unknown build
    name in a plan is an error, and a shape without a build falls back with a note."""
    from tests.test_custom_kernels import make_conv

    be = fake_cupy.CustomBackend(kernels="fuse=v8")
    r64 = NumpyBackend(dtype="fp64")
    for name, c in K.exdwpw8_configs().items():
        s, cin, cout = c["S"], c["CIN"], c["COUT"]
        h, w, batch, has_res, ce = 11, 9, 2, s == 1 and cin == cout, 6 * cin
        ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
        dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
        pw = make_conv(rng, ce, cout, 1, 1, 0, 1, *dw.out_shape[1:])
        x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
        res = rng.standard_normal((batch, *pw.out_shape), dtype=np.float32) if has_res else None
        LAUNCHES.clear()
        be._fallbacks.clear()
        be.force_block8 = name
        rd = be.to_device(res) if has_res else None
        y = be.to_host(be.bottleneck(be.to_device(x), ex, dw, pw, residual=rd))
        ran = [k for k in LAUNCHES if k != "transpose_batched"]  # (to_device / to_host: NCHW <-> NHWC)
        assert ran == [name] and not be._fallbacks, (LAUNCHES, be._fallbacks)
        assert be._fn(name).max_dynamic_shared_size_bytes >= K.exdwpw8_smem(name) > 48 * 1024
        ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True), pw)
        if has_res:
            ref = ref + res
        assert_close(y, ref, "fp32", "layer", what=f"fuse v8 {name}")
    be.force_block8 = None
    ex, dw = make_conv(rng, 12, 72, 1, 1, 0, 1, 5, 5), make_conv(rng, 72, 72, 3, 1, 1, 72, 5, 5)
    pw = make_conv(rng, 72, 12, 1, 1, 0, 1, 5, 5)
    LAUNCHES.clear()
    be._fallbacks.clear()
    be.bottleneck(be.to_device(rng.standard_normal((1, 12, 5, 5), dtype=np.float32)), ex, dw, pw)
    assert not any(k.startswith("exdwpw8") for k in LAUNCHES) and any("fuse v8" in f for f in be._fallbacks)


def test_fuse_v6_bottleneck_op_with_emulated_kernels(fake_cupy, rng):
    """fuse v6's cluster block kernel (exdwpw6) through the public op, every (CH, TR) it may run a shape with (one
    cluster per tile and several, partial row tiles); a 144-wide block (144 % 32) runs exdwpw5 and says so."""
    from impls.custom import exdwpw6_configs
    from tests.test_custom_kernels import make_conv

    be = fake_cupy.CustomBackend(kernels="fuse=v6")
    r64 = NumpyBackend(dtype="fp64")
    for s, cin, ce, cout, h, w, batch, has_res in [
        (1, 64, 384, 64, 14, 14, 1, True),
        (2, 96, 576, 160, 14, 14, 1, False),
        (1, 8, 64, 12, 5, 7, 2, False),
        (2, 12, 256, 40, 3, 3, 2, False),
        (1, 24, 144, 24, 8, 8, 1, True),
    ]:
        ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
        dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
        ho, wo = dw.out_hw(h, w)
        pw = make_conv(rng, ce, cout, 1, 1, 0, 1, ho, wo)
        x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
        res = rng.standard_normal((batch, *pw.out_shape), dtype=np.float32) if has_res else None
        ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True), pw)
        if has_res:
            ref = ref + res
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s)
        assert bool(cfgs) == (ce % 32 == 0)
        for cfg in cfgs or [None]:
            LAUNCHES.clear()
            be._fallbacks.clear()
            be.force_block6 = cfg
            rd = be.to_device(res) if has_res else None
            y = be.to_host(be.bottleneck(be.to_device(x), ex, dw, pw, residual=rd))
            be.force_block6 = None
            want = [K.exdwpw6_kernel(cfg[0], cfg[2])] if cfg else [K.exdwpw5_kernel(s, cin, cout, (8, 8))]
            assert [k for k in LAUNCHES if k.startswith("exdwpw")] == want, LAUNCHES
            assert bool(be._fallbacks) == (cfg is None), be._fallbacks
            assert not be._cnt.any()
            assert_close(y, ref, "fp32", "layer", what=f"fuse v6 bottleneck s{s} {cin}->{ce}->{cout} cfg {cfg}")


def test_fuse_v6_plan_at_batch1_runs_cluster_block_kernels(fake_cupy, net):
    """The default plan at batch 1: the 13 bottleneck blocks on <= 28x28 maps with 32-divisible expanded widths are
    one exdwpw6 launch each, the 112x112 and 56x56 blocks v5's exdwpw5; the logits match ONNX Runtime (eager and
    graph)."""
    x = random_input(net, 1, seed=11)
    ort = impls.create("ort")
    ort.prepare(net)
    ref = ort.run(x)
    for graph in (False, True):
        be = fake_cupy.CustomBackend(graph=graph)
        be.prepare(net)
        be.poison(1)
        y = be.run(x)
        assert_close(y, ref, "fp32", "e2e", what=f"emulated custom default bs1 graph={graph}")
        names = [launch.name for launch in be.plan(1).launches]
        assert sum(n.startswith("exdwpw6") for n in names) == 13, names
        # fuse v9 (the default): the three small-CIN blocks on 112x112 / 56x56 maps as exdwpw5, the head pwpool_c8
        assert sum(n.startswith("exdwpw5") for n in names) == 3, names
        assert len(names) == 19, names


def test_fuse_v13_wide_builds_through_the_op_with_emulated_kernels(fake_cupy, rng):
    """fuse v13's wider exdwpw6 builds (24 channels per block, clusters of 16) through the public op on the network's
    28x28 and 7x7 block shapes: every configuration v13 adds runs its own build with grid x = CL * NG, the clusters
    of 16 are opted in to the non-portable size first, the counters stay zero, the output matches float64."""
    be = fake_cupy.CustomBackend(kernels="fuse=v13")
    shapes = [(1, 32, 192, 32, 28, 28, True), (1, 160, 960, 320, 7, 7, False)]
    seen = _emulated_added_builds(be, rng, shapes, 1, dict(wide=True), dict(), K.EXDWPW6_WIDE, 6, "fuse v13")
    assert {(24, 8), (12, 16)} <= seen, seen


def _emulated_added_builds(be, rng, shapes, batch, kw_new, kw_old, builds, spread, tag):
    """Each (stride, cin, ce, cout, h, w, residual) block through the op, pinned to a spread of the exdwpw6
    configurations that exdwpw6_configs(**kw_new) adds to exdwpw6_configs(**kw_old) (all of ``builds``): each runs its
    own build, clusters above 8 opted in to the non-portable size, the counters zero, the output within the float64
    tolerance. Returns the (CH, CL) builds run."""
    from impls.custom import exdwpw6_configs
    from tests.test_custom_kernels import make_conv

    r64 = NumpyBackend(dtype="fp64")
    seen = set()
    for s, cin, ce, cout, h, w, has_res in shapes:
        ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
        dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
        ho, wo = dw.out_hw(h, w)
        pw = make_conv(rng, ce, cout, 1, 1, 0, 1, ho, wo)
        x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
        res = rng.standard_normal((batch, *pw.out_shape), dtype=np.float32) if has_res else None
        ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True), pw)
        ref = ref + res if has_res else ref
        before = set(exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, **kw_old))
        new = [c for c in exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, **kw_new) if c not in before]
        assert new and all((c[0], c[2]) in builds for c in new), new
        for cfg in new[:: max(1, len(new) // spread)]:  # a spread of them: each emulated launch costs ~1 s here
            LAUNCHES.clear()
            be.force_block6 = cfg
            y = be.to_host(be.bottleneck(be.to_device(x), ex, dw, pw, residual=be.to_device(res) if has_res else None))
            be.force_block6 = None
            name = K.exdwpw6_kernel(cfg[0], cfg[2])
            assert [k for k in LAUNCHES if k.startswith("exdwpw")] == [name], LAUNCHES
            assert (name in NONPORTABLE) == (cfg[2] > 8), (name, NONPORTABLE)
            assert not be._cnt.any() and not be._fallbacks, be._fallbacks
            assert_close(y, ref, "fp32", "layer", what=f"{tag} bottleneck {cin}->{ce}->{cout} cfg {cfg}")
            seen.add((cfg[0], cfg[2]))
    return seen


def test_fuse_v13_plan_at_batch1(fake_cupy, net):
    """fuse v13 at batch 1: the same 19 launches as v11, the 13 block kernels at the cost model's picks among the
    wider builds too (so some are clusters of 16, opted in); the logits match v11's; at batch 3 (EXDWPW6_V13_MAX_BATCH)
    v13 still runs the 13 blocks as exdwpw6, v11 not; at batch 4 the plans are the same."""
    x = random_input(net, 1, seed=13)
    ys, plans, plans3, plans4 = {}, {}, {}, {}
    for fuse in ("v13", "v11"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)  # the plans compared, not tuned
        be.prepare(net)
        plans[fuse] = [(la.name, la.grid) for la in be.plan(1).launches]
        plans3[fuse] = [la.name for la in be.plan(3).launches]
        plans4[fuse] = [la.name for la in be.plan(4).launches]
        ys[fuse] = be.run(x)
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
    assert len(plans["v13"]) == len(plans["v11"]) == 19
    assert plans4["v13"] == plans4["v11"]
    assert K.EXDWPW6_V13_MAX_BATCH == 3 and K.EXDWPW6_MAX_BATCH == 1
    assert sum(n.startswith("exdwpw6") for n in plans3["v13"]) == 13 and not any(
        n.startswith("exdwpw6") for n in plans3["v11"]
    )
    six = [(n, g) for n, g in plans["v13"] if n.startswith("exdwpw6")]
    assert len(six) == 13 and any(n.endswith("x16") for n, _ in six), six
    assert {n for n, _ in six if n.endswith("x16")} <= NONPORTABLE, NONPORTABLE
    assert [n for n, _ in plans["v13"] if not n.startswith("exdwpw6")] == [
        n for n, _ in plans["v11"] if not n.startswith("exdwpw6")
    ]
    assert_close(ys["v13"], ys["v11"], "fp32", "e2e", what="emulated fuse v13 vs v11 bs1")


def _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, fuse, batch=1):
    """fuse ``fuse``'s plan at ``batch`` (1 unless given) with the autotuner on (TUNE_MIN_FLOP 0) and ``_tuned``
    replaced by a recorder that takes each exdwpw6 problem's LAST candidate (not the model's: the launch must be
    what the tuner returns) and the model elsewhere. Returns the backend, the 13 exdwpw6 calls (key, candidates,
    model), the plan's exdwpw6 launches in order, and every call (the recorder stays on for the caller)."""
    calls = []

    def fake_tuned(self, key, cands, build, model):
        calls.append((key, list(cands), model))
        pick = cands[-1] if key[0] == "exdwpw6" else model
        self._tune_cache[key] = pick  # as the real one caches its pick
        return build(pick)

    monkeypatch.setattr(fake_cupy.CustomBackend, "_tuned", fake_tuned)
    be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=True)
    be.TUNE_MIN_FLOP = 0
    be.prepare(net)
    launches = [la for la in be.plan(batch).launches if la.name.startswith("exdwpw6")]
    later = ("proj_cols", "ex_ks", "dw_segs", "proj_order", "reduce")  # the later stages' keys
    six = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] not in later]
    assert len(six) == len(launches) == 13, [c[0] for c in calls]
    return be, six, launches, calls


def test_fuse_v13_tunes_each_block_among_the_one_wave_configurations(fake_cupy, net, monkeypatch):
    """fuse v13 with the autotuner on (TUNE_MIN_FLOP 0, the GPU default): each of the 13 exdwpw6 blocks at batch 1 goes
    to the tuner with every configuration of one wave (wider builds included) and the cost model's pick as the
    model; the launch is the tuner's pick. v11 and autotune off tune none; a pinned force_block6 none where it fits."""
    import math

    from impls.custom import choose_exdwpw6, exdwpw6_configs

    be, six, launches, calls = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v13")
    for (key, cands, model), la in zip(six, launches):
        _, (nb, h, w, cin), ce, cout, s, *_ = key
        ho = wo = (h - 1) // s + 1
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True)
        assert cands == [c for c in cfgs if nb * (ce // c[0]) * math.ceil(ho / c[1]) <= 2 * be.sms], key
        assert model == choose_exdwpw6(nb, h, w, cin, ce, cout, ho, wo, s, be.sms, 2, wide=True)
        ch, tr, cl = cands[-1]
        assert la.name == K.exdwpw6_kernel(ch, cl) and la.grid == (ce // ch, math.ceil(ho / tr), nb), (la, cands[-1])
    for kw, spec in ((dict(autotune=True), "fuse=v11"), (dict(autotune=False), "fuse=v13")):
        calls.clear()
        other = fake_cupy.CustomBackend(kernels=spec, **kw)
        other.TUNE_MIN_FLOP = 0
        other.prepare(net)
        other.plan(1)
        assert not [c for c in calls if c[0][0] == "exdwpw6"], (spec, kw)
    # a pinned configuration is not tuned where it fits (c24x16: the four 64->384 blocks), tuned elsewhere
    calls.clear()
    pinned = fake_cupy.CustomBackend(kernels="fuse=v13", autotune=True)
    pinned.TUNE_MIN_FLOP = 0
    pinned.force_block6 = (24, 2, 16)
    pinned.prepare(net)
    names = [la.name for la in pinned.plan(1).launches if la.name.startswith("exdwpw6")]
    tuned = [c for c in calls if c[0][0] == "exdwpw6"]
    assert all(pinned.force_block6 not in cands for _, cands, _ in tuned), tuned
    assert len(tuned) == 13 - names.count("exdwpw6_c24x16") == 9, names


def test_fuse_v14_cluster_builds_through_the_op_with_emulated_kernels(fake_cupy, rng):
    """fuse v14's exdwpw6 builds with clusters of 4, 6 and 12 through the public op: a 144-wide block (no earlier build
    takes it) and a 96-wide stride-2 one, on small maps, batch 2: each runs its own build with grid x = CL * NG, the
    clusters of 12 opted in to the non-portable size, the counters zero, the output within the float64 tolerance."""
    from impls.custom import exdwpw6_configs

    be = fake_cupy.CustomBackend(kernels="fuse=v14")
    shapes = [(1, 24, 144, 24, 6, 5, True), (2, 16, 96, 24, 7, 8, False)]
    kw = dict(wide=True)
    seen = _emulated_added_builds(be, rng, shapes, 2, dict(wide=True, v14=True), kw, K.EXDWPW6_V14, 4, "fuse v14")
    assert not exdwpw6_configs(6, 5, 24, 144, 24, 6, 5, 1, wide=True)  # only v14's builds take CE 144
    assert {4, 6, 12} <= {cl for _, cl in seen}, seen


def test_fuse_v14_times_the_56x56_blocks_against_v5s_path(fake_cupy, net, monkeypatch):
    """fuse v14 with the autotuner on (TUNE_MIN_FLOP 0): the three 56x56 blocks at batch 1 go to the tuner with every
    one-wave exdwpw6 configuration (v14's builds included; CE 144 only theirs) and "v5" (v5's path, the model); the
    13 smaller-map blocks with v14's builds among their candidates. Where the tuner takes exdwpw6 the plan is 16
    exdwpw6 launches and no exdwpw5, and its emulated logits match ONNX Runtime. Untuned, v14's plan is v13's."""
    import math

    from impls.custom import exdwpw6_configs

    for batch in (1, 3):  # untuned: v13's plan
        plans = {}
        for fuse in ("v13", "v14"):
            other = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
            other.prepare(net)
            plans[fuse] = [(la.name, la.grid) for la in other.plan(batch).launches]
        assert plans["v14"] == plans["v13"], batch
    calls = []

    def fake_tuned(self, key, cands, build, model):
        calls.append((key, list(cands), model))
        return build(cands[0] if key[0] == "exdwpw6|v5" else model)

    monkeypatch.setattr(fake_cupy.CustomBackend, "_tuned", fake_tuned)
    be = fake_cupy.CustomBackend(kernels="fuse=v14", autotune=True)
    be.TUNE_MIN_FLOP = 0
    be.prepare(net)
    names = [la.name for la in be.plan(1).launches]
    big = [c for c in calls if c[0][0] == "exdwpw6|v5"]
    assert len(big) == 3, [c[0] for c in calls]
    for key, cands, model in big:
        _, (nb, h, w, cin), ce, cout, s, *_ = key
        ho = wo = (h - 1) // s + 1
        assert (h, w) in ((112, 112), (56, 56)) and model == "v5" and cands[-1] == "v5", key
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True, v14=True)
        assert cands[:-1] == [c for c in cfgs if nb * (ce // c[0]) * math.ceil(ho / c[1]) <= 2 * be.sms], key
        assert ce != 144 or all((c[0], c[2]) in K.EXDWPW6_V14 for c in cands[:-1]), cands
    small = [c for c in calls if c[0][0] == "exdwpw6"]
    assert len(small) == 13 and all(any((c[0], c[2]) in K.EXDWPW6_V14 for c in cs) for _, cs, _ in small)
    assert sum(n.startswith("exdwpw6") for n in names) == 16 and not any(n.startswith("exdwpw5") for n in names)
    assert len(names) == 19, names  # block0, 16 block kernels, pwpool_c8, the GEMV
    x = random_input(net, 1, seed=14)
    ort = impls.create("ort")
    ort.prepare(net)
    assert_close(be.run(x), ort.run(x), "fp32", "e2e", what="emulated fuse v14 bs1, exdwpw6 on the 56x56 blocks")


def test_fuse_v15_offers_512_thread_builds_to_the_tuner(fake_cupy, net, monkeypatch, rng):
    """fuse v15 with the autotuner on (TUNE_MIN_FLOP 0): each of the 13 exdwpw6 blocks at batch 1 goes to the tuner with
    v13's one-wave configurations (up to 2 blocks per SM) and the same builds at 512 threads, (CH, TR, CL, 512), of
    one block per SM; a 512-thread pick launches the _t512 build with 512 threads, and the emulated plan's logits
    match ONNX Runtime. Untuned, v15's plan is v13's; a pinned 4-tuple runs through the op."""
    import math

    from impls.custom import exdwpw6_configs
    from tests.test_custom_kernels import make_conv

    for batch in (1, 3):  # untuned: v13's plan
        plans = {}
        for fuse in ("v13", "v15"):
            other = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
            other.prepare(net)
            plans[fuse] = [(la.name, la.grid, la.block) for la in other.plan(batch).launches]
        assert plans["v15"] == plans["v13"], batch
    op = fake_cupy.CustomBackend(kernels="fuse=v15")
    ex, dw = make_conv(rng, 32, 192, 1, 1, 0, 1, 6, 5), make_conv(rng, 192, 192, 3, 1, 1, 192, 6, 5)
    pw = make_conv(rng, 192, 32, 1, 1, 0, 1, 6, 5)
    x = rng.standard_normal((2, 32, 6, 5), dtype=np.float32)
    r64 = NumpyBackend(dtype="fp64")
    ref = r64.conv2d(r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True), pw)
    LAUNCHES.clear()
    op.force_block6 = (12, 2, 16, 512)
    y = op.to_host(op.bottleneck(op.to_device(x), ex, dw, pw))
    assert [k for k in LAUNCHES if k.startswith("exdwpw")] == ["exdwpw6_c12x16_t512"], LAUNCHES
    assert not op._cnt.any() and not op._fallbacks, op._fallbacks
    assert_close(y, ref, "fp32", "layer", what="fuse v15 bottleneck c12x16 at 512 threads")
    be, six, launches, _ = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v15")  # the last: 512 threads
    for (key, cands, _), la in zip(six, launches):
        _, (nb, h, w, cin), ce, cout, s, *_ = key
        ho = wo = (h - 1) // s + 1
        cfgs = exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, wide=True)
        waves = [c for c in cfgs if nb * (ce // c[0]) * math.ceil(ho / c[1]) <= 2 * be.sms]
        ones = [(*c, 512) for c in cfgs if nb * (ce // c[0]) * math.ceil(ho / c[1]) <= be.sms]
        assert cands == waves + ones, key
        ch, tr, cl, nt = cands[-1]
        assert la.name == K.exdwpw6_kernel(ch, cl, 512) and la.block == (512,), la
        assert la.grid == (ce // ch, math.ceil(ho / tr), nb), (la, cands[-1])
    xin = random_input(net, 1, seed=15)
    ort = impls.create("ort")
    ort.prepare(net)
    assert_close(be.run(xin), ort.run(xin), "fp32", "e2e", what="emulated fuse v15 bs1, 512-thread exdwpw6 builds")


def test_fuse_v16_times_the_projection_mapping_per_block(fake_cupy, net, monkeypatch):
    """fuse v16: untuned, proj_cols (the last kernel argument) is 1 on the COUT >= PROJ_COLS_MIN_COUT blocks, else 0
    (v15 and v13 pass 0), the kernels and grids v13's; tuned (TUNE_MIN_FLOP 0), after each block's configuration a
    second problem times that configuration with proj_cols 0 and 1 (the rule's as the model), and the launch is the
    tuner's pick."""
    plans = {}
    for fuse in ("v13", "v15", "v16"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        six = [la for la in be.plan(1).launches if la.name.startswith("exdwpw6")]
        cout = [int(la.args[15]) for la in six]  # (X, We, be, Wd, bd, Wp, bp, R, Y, ws, cnt, H, W, CIN, CE, COUT, ...)
        want = [int(fuse == "v16" and c >= K.PROJ_COLS_MIN_COUT) for c in cout]
        assert len(six) == 13 and [int(la.args[24]) for la in six] == want, (fuse, cout)
        assert all(int(la.args[25]) == 0 for la in six)  # ex_ks 0: the pixel-lane expansion before v17
        assert (fuse == "v16") == any(want), cout  # the four 7x7 blocks (COUT 160, 320) and 576 -> 160
        plans[fuse] = [(la.name, la.grid, la.block) for la in be.plan(1).launches]
    assert plans["v16"] == plans["v15"] == plans["v13"]
    be, six, launches, calls = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v16")
    second = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "proj_cols"]
    assert len(second) == 13, [c[0] for c in calls]
    for (key, cands, model), la in zip(second, launches):
        b4 = cands[0][:4]
        assert cands == [(*b4, 0), (*b4, 1)] and model == (*b4, int(key[3] >= K.PROJ_COLS_MIN_COUT)), (key, cands)
        assert int(la.args[24]) == 1 and la.block == (b4[3],), la  # the recorder takes the last: proj_cols 1


def test_fuse_v17_times_the_lane_tiles_per_block(fake_cupy, net, monkeypatch):
    """fuse v17: untuned, v16's kernels and grids with proj_cols 2 and ex_ks = ex_ks_rule(CIN) (4 on every block of
    the network: CIN 32 / 64 / 96 / 160); tuned (TUNE_MIN_FLOP 0), each block's first problem runs those (the model
    and the candidates v16's shapes), the second times proj_cols 0 / 1 / 2, the third ex_ks 0 / 1 / 2 / 4 / 8 (those
    dividing CIN into float4 slices) with the rule's as the model, and the launch carries the tuner's picks; the
    emulated plan against ONNX Runtime."""
    plans = {}
    for fuse in ("v16", "v17"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        six = [la for la in be.plan(1).launches if la.name.startswith("exdwpw6")]
        cin = [int(la.args[13]) for la in six]
        if fuse == "v17":
            assert [(int(la.args[24]), int(la.args[25])) for la in six] == [(2, K.ex_ks_rule(c)) for c in cin], cin
            assert {K.ex_ks_rule(c) for c in cin} == {4}, cin
        plans[fuse] = [(la.name, la.grid, la.block) for la in be.plan(1).launches]
    assert plans["v17"] == plans["v16"]
    assert [K.ex_ks_rule(c) for c in (4, 8, 12, 16, 20, 24, 32)] == [1, 2, 1, 4, 1, 2, 4]
    be, six, launches, calls = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v17")
    second = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "proj_cols"]
    third = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "ex_ks"]
    assert len(second) == len(third) == 13, [c[0] for c in calls]
    for (key, cands, model), (key3, cands3, model3), la in zip(second, third, launches):
        b4 = cands[0][:4]
        assert cands == [(*b4, 0), (*b4, 1), (*b4, 2)] and model == (*b4, 2), (key, cands)
        cin = key[1][3]
        kss = [k for k in (0, 1, 2, 4, 8) if k == 0 or cin % (4 * k) == 0]  # spelled out: checks K.ex_ks_modes
        assert key3[:-1] == key[:-1] and cands3 == [(*b4, 2, k) for k in kss], (key3, cands3)
        assert model3 == (*b4, 2, K.ex_ks_rule(cin)), model3
        assert (int(la.args[24]), int(la.args[25])) == (2, kss[-1]) and la.block == (b4[3],), la  # the last picks
    xin = random_input(net, 1, seed=17)
    ort = impls.create("ort")
    ort.prepare(net)
    assert_close(be.run(xin), ort.run(xin), "fp32", "e2e", what="emulated fuse v17 bs1, tuned")


def test_fuse_v18_prefetches_in_the_reduce(fake_cupy, net):
    """fuse v18: v17's plan (kernels, grids, every other argument) with red_pf (the last exdwpw6 argument) 1; v17 and
    earlier pass 0."""
    plans = {}
    for fuse in ("v16", "v17", "v18"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        six = [la for la in be.plan(1).launches if la.name.startswith("exdwpw6")]
        assert len(six) == 13 and all(len(la.args) == 28 for la in six)
        assert [int(la.args[26]) for la in six] == [int(fuse == "v18")] * 13, fuse
        plans[fuse] = [(la.name, la.grid, la.block, [int(a) for a in la.args[11:26]]) for la in six]
    assert plans["v18"] == plans["v17"]


def test_fuse_v7_expand_depthwise_op_with_emulated_kernels(fake_cupy, rng):
    """fuse v7's exgdw kernel (BN 64 and 32 pinned) and its unfused alternative through the public op: argument
    order, the grid of whole-image blocks (1 image at 14x14, 4 at 7x7, 2 at 10x9, partial last blocks), the shared
    memory opt-in; 28x28 maps and CIN in EXDW_CIN are not exgdw's (exdw4 / the two layers)."""
    from tests.test_custom_kernels import make_conv

    r64 = NumpyBackend(dtype="fp64")
    for cin, ce, s, h, w, nb, want in [
        (64, 384, 1, 14, 14, 2, "exgdw"),
        (160, 960, 1, 7, 7, 5, "exgdw"),
        (96, 576, 2, 14, 14, 3, "exgdw"),
        (40, 100, 1, 10, 9, 3, "exgdw"),
        (64, 384, 1, 28, 28, 1, "gemm"),  # 784 pixels > EXGDW_ROWS
        (32, 192, 1, 14, 14, 2, "exdw4"),  # CIN in EXDW_CIN: fuse v4's kernel
    ]:
        ex = make_conv(rng, cin, ce, 1, 1, 0, 1, h, w)
        dw = make_conv(rng, ce, ce, 3, s, 1, ce, h, w)
        x = rng.standard_normal((nb, cin, h, w), dtype=np.float32)
        ref = r64.conv2d(r64.conv2d(x.astype(np.float64), ex, act=True), dw, act=True)
        for force in (*K.EXGDW_VARIANTS, "pair"):
            be = fake_cupy.CustomBackend(kernels="fuse=v7")
            be.force_exgdw = force
            xd = be.to_device(x)
            LAUNCHES.clear()
            yd = be.expand_depthwise(xd, ex, dw)
            if want == "exgdw" and force != "pair":
                assert LAUNCHES == [K.exgdw_kernel(s, force)], LAUNCHES
                fn = be._fn(K.exgdw_kernel(s, force))
                assert fn.max_dynamic_shared_size_bytes >= K.exgdw_smem(force) > 48 * 1024
            else:
                assert not any(k.startswith("exgdw") for k in LAUNCHES), LAUNCHES
                other = "gemm" if want == "exgdw" else want  # "pair": the two layers' own kernels
                assert any(k.startswith(other) for k in LAUNCHES), LAUNCHES
            y = be.to_host(yd)
            assert_close(y, ref, "fp32", "layer", what=f"fuse v7 {cin}->{ce} s{s} {h}x{w} bs{nb} {force}")
    be = fake_cupy.CustomBackend(kernels="fuse=v7")
    be.force_exgdw = 48
    ex = make_conv(rng, 64, 384, 1, 1, 0, 1, 14, 14)
    dw = make_conv(rng, 384, 384, 3, 1, 1, 384, 14, 14)
    from mbv2.errors import InputError

    with pytest.raises(InputError, match="force_exgdw=48"):
        be.expand_depthwise(be.to_device(np.zeros((1, 64, 14, 14), np.float32)), ex, dw)


def test_fuse_v7_plan_runs_the_depthwise_convs_inside_the_expansion_gemms(fake_cupy, net):
    """fuse v7 above batch 1: the 10 (expansion, depthwise) pairs of the 14x14 / 7x7 blocks are one exgdw launch each
    and no standalone depthwise conv is left; at batch 1 the plan is fuse v6's (23 launches); logits match ONNX
    Runtime (eager and graph)."""
    ort = impls.create("ort")
    ort.prepare(net)
    for batch in (1, 3):
        x = random_input(net, batch, seed=5)
        ref = ort.run(x)
        for graph in (False, True):
            be = fake_cupy.CustomBackend(kernels="fuse=v7", graph=graph)
            be.prepare(net)
            be.poison(batch)
            y = be.run(x)
            assert_close(y, ref, "fp32", "e2e", what=f"emulated custom fuse v7 bs{batch} graph={graph}")
            names = [launch.name for launch in be.plan(batch).launches]
            if batch == 1:
                assert len(names) == 23 and sum(n.startswith("exdwpw6") for n in names) == 13, names
            else:
                assert sum(n.startswith("exgdw") for n in names) == 10, names
                assert not any(n.startswith("dwconv3") for n in names), names
            assert not be._fallbacks, be._fallbacks


def test_fuse_v8_plan_runs_the_small_cin_blocks_as_exdwpw8(fake_cupy, net):
    """fuse v8 without the tuner: each of the six small-CIN blocks is one launch of its shape's first build in
    K.EXDWPW8_TUNED where that grid fills the SMs at 2 blocks each (a 4-SM GPU here, so that batch 2 does), fuse v5's
    choice where it does not (132 SMs); logits match ONNX Runtime (eager and graph)."""
    ort = impls.create("ort")
    ort.prepare(net)
    x = random_input(net, 2, seed=6)
    ref = ort.run(x)
    first = {}
    for name in K.EXDWPW8_TUNED:
        c = K.exdwpw8_configs()[name]
        first.setdefault((c["S"], c["CIN"], c["COUT"]), name)
    for sms, graph in ((4, False), (4, True), (132, False)):
        be = fake_cupy.CustomBackend(kernels="fuse=v8", graph=graph, autotune=False)
        be.prepare(net)
        be.sms = sms
        be.poison(2)
        y = be.run(x)
        assert_close(y, ref, "fp32", "e2e", what=f"emulated custom fuse v8 sms={sms} graph={graph}")
        names = [launch.name for launch in be.plan(2).launches]
        b8 = [n for n in names if n.startswith("exdwpw8")]
        if sms == 4:
            assert len(b8) == 6 and set(b8) == set(first.values()), names
        else:
            assert not b8, names  # (exdwpw5 or, on the smaller grids, the pair: fuse v5's model)
        assert not be._fallbacks, be._fallbacks


def test_fused_ops_refuse_layers_that_do_not_chain(fake_cupy, rng):
    """bottleneck / expand_depthwise / dw_pointwise check their layers chain and the out / residual shapes."""
    from mbv2.errors import InputError
    from tests.test_custom_kernels import make_conv

    be = fake_cupy.CustomBackend()
    ex = make_conv(rng, 16, 96, 1, 1, 0, 1, 8, 8)
    dw = make_conv(rng, 96, 96, 3, 1, 1, 96, 8, 8)
    dw2 = make_conv(rng, 64, 64, 3, 1, 1, 64, 8, 8)
    pw = make_conv(rng, 96, 24, 1, 1, 0, 1, 8, 8)
    x = be.to_device(rng.standard_normal((2, 16, 8, 8), dtype=np.float32))
    with pytest.raises(InputError, match="bottleneck: pointwise 16->96 then depthwise 64->64 .* do not chain"):
        be.bottleneck(x, ex, dw2, pw)
    with pytest.raises(InputError, match="expand_depthwise: .* do not chain"):
        be.expand_depthwise(x, dw, ex)
    with pytest.raises(InputError, match="dw_pointwise: .* do not chain"):
        be.dw_pointwise(x, dw, pw)
    with pytest.raises(InputError, match="bottleneck residual: shape"):
        be.bottleneck(x, ex, dw, pw, residual=be.to_device(np.zeros((2, 16, 8, 8), np.float32)))
    with pytest.raises(InputError, match="expand_depthwise out: shape"):
        be.expand_depthwise(x, ex, dw, out=be.to_device(np.zeros((2, 16, 8, 8), np.float32)))
    y = be.bottleneck(x, ex, dw, pw)
    assert tuple(y.shape) == (2, 8, 8, 24)


def test_fuse_v5_plan_runs_six_block_kernels(fake_cupy, net, ort_logits):
    """The v5 plan with the cost model taking the block kernel (the stand-in claims 1 SM, so every block
    grid has >= 2 blocks per SM): the six small-CIN blocks are one exdwpw5 launch each, no exdw4 pair."""
    x, ref = ort_logits
    be = fake_cupy.CustomBackend(kernels="fuse=v5", autotune=False)
    be._ensure_device()
    be.sms = 1
    be.prepare(net)
    be.poison(2)
    y = be.run(x)
    assert_close(y, ref, "fp32", "e2e", what="emulated custom fuse=v5, block kernels")
    names = [launch.name for launch in be.plan(2).launches]
    assert sum(n.startswith("exdwpw5") for n in names) == 6, names
    assert not any(n.startswith("exdw4") for n in names), names


def test_gemm_v8_batch1_plan_is_v5s(fake_cupy, net):
    """gemm v8 adds autotune candidates only: below TUNE_MIN_FLOP (batch 1 under 1e8) its plan is v5's, launch for
    launch."""
    plans = []
    for spec in ("gemm=v5", "gemm=v8"):
        be = fake_cupy.CustomBackend(kernels=spec)
        be.TUNE_MIN_FLOP = 1e8
        be.prepare(net)
        plans.append([(la.name, tuple(la.grid), tuple(la.block), la.smem) for la in be.plan(1).launches])
    assert plans[0] == plans[1]
    assert not any(name.startswith("gemm_v8") for name, *_ in plans[1])


def test_gemm_v10_k_sliced_builds_catalogue():
    """gemm v10's / v11's k-sliced tiles: each names a GEMM_V8K_KERNEL line whose numbers match the tile, launches
    (BM / TM) * (BN / TN) * KS threads (whole warps, one or more per slice, KS dividing the 16-wide k-step),
    and gets dynamic shared memory for both the cp.async ring and the KS partial tiles of its epilogue (the
    partials overwrite the ring: too little here would corrupt the neighbour block's memory on the GPU)."""
    import re

    text = (K.KERNEL_DIR / "gemm.cu").read_text()
    lines = {
        m.group(1): [int(v) for v in m.group(2).split(",")]
        for m in re.finditer(r"^GEMM_V8K_KERNEL\((\w+),([\d\s,]+)\)", text, re.M)
    }
    sliced = [t for t in K.GEMM_TILES_V11 if len(t) == 5]
    assert sliced and set(K.GEMM_TILES_V9) < set(K.GEMM_TILES_V10) < set(K.GEMM_TILES_V11)
    assert {K.gemm_tile_kernel("v8", t, False) for t in sliced} == set(
        lines
    )  # no build without a tile, no tile without a build
    for t in sliced:
        bm, bn, tm, tn, ks = t
        name = K.gemm_tile_kernel("v8", t, False)
        assert name == f"gemm_v8_{bm}x{bn}_{tm}x{tn}_k{ks}"
        lbm, lbn, ltm, ltn, stages, minb, lks = lines[name]
        assert (lbm, lbn, ltm, ltn, lks) == t
        threads = K.gemm_simt_threads(t)
        assert threads == (bm // tm) * (bn // tn) * ks and threads % (32 * ks) == 0 and 16 % ks == 0
        smem = K.gemm_v8_smem(t)
        assert smem >= 4 * stages * 16 * (bm + 4 + bn) and smem >= 4 * ks * bm * bn
        assert smem * minb <= 227 * 1024, f"{name}: {minb} blocks of {smem} B do not fit an SM"
    for t in K.GEMM_TILES_V9:  # the v8 / v9 builds keep their names, threads and ring-only shared memory
        assert K.gemm_tile_kernel("v8", t, False) == "gemm_v8_{}x{}_{}x{}".format(*t)
        assert K.gemm_simt_threads(t) == (t[0] // t[2]) * (t[1] // t[3])


def test_gemm_v8_tiles_with_emulated_kernels(fake_cupy, rng):
    """Every gemm v8 tile pinned on the odd shapes of its GPU test: launch arguments, dynamic shared memory
    opt-in and split-K chunks (16-wide k-steps) as the host builds them."""
    from tests.test_custom_kernels import V8_ODD, make_conv

    be = fake_cupy.CustomBackend(kernels="gemm=v11")  # v11's tiles = v8's + session 8's + the k-sliced ones
    for tile in K.GEMM_TILES_V11:
        for cin, cout, h, w, batch, act, has_res in V8_ODD:
            lay = make_conv(rng, cin, cout, 1, 1, 0, 1, h, w)
            x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
            res = rng.standard_normal((batch, *lay.out_shape), dtype=np.float32) if has_res else None
            LAUNCHES.clear()
            be.force_tile = tile
            try:
                y = be.to_host(
                    be.conv2d(be.to_device(x), lay, act=act, residual=None if res is None else be.to_device(res))
                )
            finally:
                be.force_tile = None
            assert K.gemm_tile_kernel("v8", tile, False) in LAUNCHES, LAUNCHES
            ref = NumpyBackend(dtype="fp64").conv2d(
                x.astype(np.float64), lay, act=act, residual=None if res is None else res.astype(np.float64)
            )
            assert_close(y, ref, "fp32", "layer", what=f"gemm v8 {tile} {lay.describe([])}")


def test_odd_ops_with_emulated_kernels(fake_cupy, rng):
    from tests.test_custom_kernels import ODD_CONVS, make_conv

    for fam, shapes in ODD_CONVS.items():
        for ver in K.KERNEL_VERSIONS[fam]:
            be = fake_cupy.CustomBackend(kernels=f"{fam}={ver}")
            for cin, cout, k, stride, pad, groups, h, w, batch, act, has_res in shapes:
                lay = make_conv(rng, cin, cout, k, stride, pad, groups, h, w)
                x = rng.standard_normal((batch, cin, h, w), dtype=np.float32)
                res = rng.standard_normal((batch, *lay.out_shape), dtype=np.float32) if has_res else None
                y = be.to_host(
                    be.conv2d(be.to_device(x), lay, act=act, residual=None if res is None else be.to_device(res))
                )
                ref = NumpyBackend(dtype="fp64").conv2d(
                    x.astype(np.float64), lay, act=act, residual=None if res is None else res.astype(np.float64)
                )
                assert_close(y, ref, "fp32", "layer", what=f"{fam} {ver} {lay.describe([])}")


def test_head_and_two_phase_kernel_constants_match_the_host():
    """The tile constants the host sizes grids and shared memory with are the kernels' own (kernels/pool.cu pwpool,
    kernels/cblock.cu exdwpw10)."""
    pool = (KDIR / "pool.cu").read_text()
    cblock = (KDIR / "cblock.cu").read_text()
    assert re.search(rf"constexpr int PWPOOL_CO = {K.PWPOOL_CO};", pool)
    assert re.search(rf"constexpr int PWPOOL_MAXHW = {K.PWPOOL_MAX_HW};", pool)
    assert re.search(rf"constexpr int PB_PM = {K.EXDWPW10_PM}, PB_PN = {K.EXDWPW10_PN};", cblock)


def test_small_cin_blocks_are_the_exdwpw5_instances(net):
    """CustomBackend.small_cin_blocks (what the exdwpw5 / exdwpw8 timing scripts walk): MobileNetV2-1.0's six
    small-CIN blocks, each (stride, CIN, COUT) a compiled exdwpw5 instance, each projection reading its depthwise op."""
    from impls.custom import CustomBackend

    blocks = CustomBackend.small_cin_blocks(net)
    shapes = [(dw.layer.stride, ex.layer.in_channels, pw.layer.out_channels) for ex, dw, pw in blocks]
    assert shapes == [(2, 16, 24), (1, 24, 24), (2, 24, 32), (1, 32, 32), (1, 32, 32), (2, 32, 64)], shapes
    assert set(shapes) == {i[:3] for i in K.EXDWPW5_INSTANCES}
    assert all(pw.input == dw.index and dw.index == ex.index + 1 for ex, dw, pw in blocks)


def test_cooperative_launch_needs_a_cooperative_kernel():
    """A Launch with coop=True must carry a CooperativeKernel (CuPy's RawKernel.__call__ rejects the cooperative flag;
    the first GPU run of fuse v10 failed on it): a plain kernel is refused where the plan is built, not at launch."""
    from impls._custom_persistent import CooperativeKernel
    from impls.custom import Launch

    raw = type("Raw", (), {"kernel": type("Fn", (), {"ptr": 7})()})()
    with pytest.raises(TypeError, match="CooperativeKernel"):
        Launch("k", raw, (1,), (256,), (), coop=True)
    la = Launch("k", CooperativeKernel(raw), (1,), (256,), (), coop=True)
    assert la.kernel.ptr == 7 and Launch("k", raw, (1,), (256,), ()).kernel is raw


def test_tuner_covers_each_timed_window_with_a_spin(fake_cupy, monkeypatch):
    """The autotuner queues a spin-kernel cover (mbv2.timing.spin) before each candidate's timed window (so the
    window times the device, not the host's launches): TUNE_SPIN_US_PER_LAUNCH per launch of the window to start, then
    2x the host's enqueue time for a candidate whose window took longer than 0.8x its cover; none with
    TUNE_HIDE_LAUNCH off."""
    from impls.custom import Launch

    be = fake_cupy.CustomBackend()
    be._ensure_device()
    spins: list[int] = []
    monkeypatch.setattr(fake_cupy, "spin", lambda us, stream: spins.append(int(us * 1e3)))
    clock = iter(range(0, 10**9, 1000))  # every perf_counter call 1 ms later: every window's enqueue "takes" 1 ms
    monkeypatch.setattr(fake_cupy.time, "perf_counter", lambda: next(clock) * 1e-6)
    calls: list[str] = []

    def build(cand: str) -> list[Launch]:
        return [Launch(cand, lambda grid, block, args, shared_mem=0, c=cand: calls.append(c), (1,), (32,), ())]

    assert be._tuned(("t", 1), ("a", "b"), build, "a")[0].name in ("a", "b")
    first = int((20.0 + be.TUNE_SPIN_US_PER_LAUNCH * be.TUNE_REPEATS) * 1e3)
    assert spins == [first, first] + [2_000_000] * 2 * (be.TUNE_ROUNDS - 1), spins
    assert calls.count("a") == calls.count("b") == 1 + be.TUNE_ROUNDS * be.TUNE_REPEATS
    spins.clear()
    monkeypatch.setattr(be, "TUNE_HIDE_LAUNCH", False)
    be._tuned(("t", 2), ("a", "b"), build, "a")
    assert spins == []


def test_tune_min_flop_from_the_environment(fake_cupy, net, monkeypatch):
    """MBV2_TUNE_MIN_FLOP overrides the autotuner's threshold per backend (recorded in info()); the default 0 tunes
    the batch-1 plan's small-CIN block choices, which 1e8 (the default before session 14) leaves to the cost model;
    a bad value is a clear InputError."""
    monkeypatch.setattr(fake_cupy.CustomBackend, "TUNE_MIN_FLOP", 0.0)  # the class default (the fixture pins 1e8)
    be0 = fake_cupy.CustomBackend()
    assert be0.info()["tune_min_flop"] == be0.TUNE_MIN_FLOP == 0.0
    monkeypatch.setenv("MBV2_TUNE_MIN_FLOP", "1e8")
    be = fake_cupy.CustomBackend()
    assert be.info()["tune_min_flop"] == 1e8 and fake_cupy.CustomBackend.TUNE_MIN_FLOP == 0.0
    be.prepare(net)
    be.plan(1)
    be0.prepare(net)
    be0.plan(1)
    assert not be.tuned and any("exdwpw5" in k for k in be0.tuned), (be.tuned, be0.tuned)
    for bad in ("lots", "-1"):
        monkeypatch.setenv("MBV2_TUNE_MIN_FLOP", bad)
        with pytest.raises(InputError, match="MBV2_TUNE_MIN_FLOP"):
            fake_cupy.CustomBackend()


def test_linear_v5_launches_the_gemv_with_pdl(fake_cupy, net, monkeypatch):
    """linear v5 (the default): at batch <= LINEAR_PDL_MAX_BATCH the classifier is linear_gemv_v5 launched through
    cuLaunchKernelEx with programmatic dependent launch (Launch.pdl), above it v3's GEMV / GEMM plainly; the logits are
    v3's, bit for bit. Without cuLaunchKernelEx (or below sm_90) the plan says so in info()["fallbacks"] and launches
    v3's GEMV plainly."""
    assert K.DEFAULT_VERSIONS["linear"] == "v5" and K.LINEAR_PDL_MAX_BATCH >= 1
    for batch in (1, 2):
        be = fake_cupy.CustomBackend(kernels="linear=v5,fuse=v26")  # fuse v27 / v28: more PDL launches
        be.prepare(net)
        x = random_input(net, batch, seed=batch)
        names = [(la.name, la.pdl) for la in be.plan(batch).launches]
        pdl = batch <= K.LINEAR_PDL_MAX_BATCH
        assert names[-1] == (("linear_gemv_v5", True) if pdl else ("linear_gemv_v3", False)), names
        assert sum(p for _, p in names) == int(pdl), names  # the GEMV only: no other kernel waits for PDL
        PDL_LAUNCHES.clear()
        y = be.run(x)
        assert PDL_LAUNCHES == (["linear_gemv_v5"] if pdl else []), PDL_LAUNCHES
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
        be3 = fake_cupy.CustomBackend(kernels="linear=v3,fuse=v26")
        be3.prepare(net)
        np.testing.assert_array_equal(y, be3.run(x))
    monkeypatch.setattr(fake_cupy, "_driver_launch_ex", lambda: None)
    be = fake_cupy.CustomBackend(kernels="linear=v5,fuse=v26")
    be.prepare(net)
    names = [(la.name, la.pdl) for la in be.plan(1).launches]
    assert names[-1] == ("linear_gemv_v3", False) and not any(p for _, p in names), names
    assert any("linear v5 -> v3" in f for f in be.info()["fallbacks"]), be.info()["fallbacks"]


def test_linear_v6_stages_x_in_shared_memory(fake_cupy, net, monkeypatch):
    """linear v6 (session 40): at batch <= LINEAR_PDL_MAX_BATCH the classifier is linear_gemv_v6 by programmatic
    dependent launch with N * IN * 4 bytes of dynamic shared memory (x staged once per block; the fake kernel checks
    the size), above it v3's GEMV plainly as in v5; the logits are v5's, bit for bit, in the default fuse plan too.
    Where x does not fit LINEAR_V6_MAX_SMEM: v5's kernel and a fallback record; without cuLaunchKernelEx: v3's."""
    for batch in (1, 2):
        x = random_input(net, batch, seed=batch)
        ys = []
        for ver in ("v6", "v5"):
            be = fake_cupy.CustomBackend(kernels=f"linear={ver}{PIN['linear']}")  # (v53 / v55: no GEMV)
            be.prepare(net)
            gemv = [la for la in be.plan(batch).launches if la.name.startswith("linear_gemv")]
            pdl = batch <= K.LINEAR_PDL_MAX_BATCH
            want = f"linear_gemv_{ver}" if pdl else "linear_gemv_v3"
            assert [(la.name, la.pdl) for la in gemv] == [(want, pdl)], gemv
            fin = net.layers[-1].in_features
            assert gemv[0].smem == (batch * fin * 4 if pdl and ver == "v6" else 0), gemv[0].smem
            ys.append(be.run(x))
            assert not be.info()["fallbacks"], be.info()["fallbacks"]
        np.testing.assert_array_equal(ys[0], ys[1])
    monkeypatch.setattr(K, "LINEAR_V6_MAX_SMEM", 1024)
    be = fake_cupy.CustomBackend(kernels="linear=v6" + PIN["linear"])
    be.prepare(net)
    names = [(la.name, la.pdl, la.smem) for la in be.plan(1).launches if la.name.startswith("linear_gemv")]
    assert names == [("linear_gemv_v5", True, 0)], names
    assert any("linear v6 -> v5" in f for f in be.info()["fallbacks"]), be.info()["fallbacks"]
    monkeypatch.setattr(fake_cupy, "_driver_launch_ex", lambda: None)
    be = fake_cupy.CustomBackend(kernels="linear=v6,fuse=v26")
    be.prepare(net)
    names = [(la.name, la.pdl) for la in be.plan(1).launches if la.name.startswith("linear_gemv")]
    assert names == [("linear_gemv_v3", False)], names
    assert any("linear v6 -> v3" in f for f in be.info()["fallbacks"]), be.info()["fallbacks"]


def test_fuse_v12_launches_pwpool_c8_with_pdl(fake_cupy, net):
    """fuse v12: at batch <= PWPOOL_PDL_MAX_BATCH pwpool_c8 (and, with linear v5, the GEMV after it) go through
    cuLaunchKernelEx with programmatic dependent launch; nothing else does; above it v11's plain launches. The logits
    are v11's, bit for bit."""
    for batch in (1, 2):
        x = random_input(net, batch, seed=batch)
        ys = []
        for fuse in ("v12", "v11"):
            be = fake_cupy.CustomBackend(kernels=f"fuse={fuse},linear=v5")
            be.prepare(net)
            pdl = sorted(la.name for la in be.plan(batch).launches if la.pdl)
            want = {("v12", 1): ["linear_gemv_v5", "pwpool_c8"], ("v11", 1): ["linear_gemv_v5"]}
            assert pdl == want.get((fuse, batch), []), (fuse, batch, pdl)
            PDL_LAUNCHES.clear()
            ys.append(be.run(x))
            assert sorted(PDL_LAUNCHES) == pdl, PDL_LAUNCHES
            assert not be.info()["fallbacks"], be.info()["fallbacks"]
        np.testing.assert_array_equal(ys[0], ys[1])


def test_fuse_v19_times_the_two_pixel_tiles(fake_cupy, net, monkeypatch):
    """fuse v19: the projection stage's candidates are proj_cols 0 / 1 / 2 / 3 (v17: 0 / 1 / 2, v16: 0 / 1), the
    model still 2; untuned, v18's plan."""
    assert [K.proj_modes(f) for f in ("v15", "v16", "v17", "v18", "v19")] == [
        (0,),
        (0, 1),
        (0, 1, 2),
        (0, 1, 2),
        (0, 1, 2, 3),
    ]
    plans = {}
    for fuse in ("v18", "v19"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        plans[fuse] = [(la.name, la.grid, la.block, [int(a) for a in la.args[11:]]) for la in be.plan(1).launches
                       if la.name.startswith("exdwpw6")]  # fmt: skip
    assert plans["v19"] == plans["v18"]
    be, six, launches, calls = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v19")
    second = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "proj_cols"]
    assert len(second) == 13
    for key, cands, model in second:
        b4 = cands[0][:4]
        assert cands == [(*b4, p) for p in (0, 1, 2, 3)] and model == (*b4, 2), (key, cands)
    assert all(int(la.args[24]) == 3 for la in launches)  # the recorder takes the last


def test_fuse_v20_depthwise_by_row_segments(fake_cupy, net):
    """fuse v20: v19's plan with dw_segs (the last exdwpw6 argument) 1; v19 and earlier pass 0."""
    plans = {}
    for fuse in ("v19", "v20"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        six = [la for la in be.plan(1).launches if la.name.startswith("exdwpw6")]
        assert [int(la.args[27]) for la in six] == [int(fuse == "v20")] * 13, fuse
        plans[fuse] = [(la.name, la.grid, la.block, [int(a) for a in la.args[11:27]]) for la in six]
    assert plans["v20"] == plans["v19"]


def test_fuse_v21_times_the_depthwise_mapping_per_block(fake_cupy, net, monkeypatch):
    """fuse v21: untuned, v20's plan (dw_segs 1); tuned, each block's fourth tuner problem times the third stage's pick
    with dw_segs 0 and 1 (the model 1), the launch carries the pick; a force_block6 of 7 values pins dw_segs (v21
    only); earlier versions have no fourth stage."""
    plans = {}
    for fuse in ("v20", "v21"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        plans[fuse] = [(la.name, la.grid, la.block, [int(a) for a in la.args[11:]]) for la in be.plan(1).launches
                       if la.name.startswith("exdwpw6")]  # fmt: skip
    assert plans["v21"] == plans["v20"] and all(p[3][-1] == 1 for p in plans["v21"])
    be, six, launches, calls = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v21")
    third = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "ex_ks"]
    fourth = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "dw_segs"]
    assert len(third) == len(fourth) == 13, [c[0] for c in calls]
    for (key3, cands3, _), (key4, cands4, model4), la in zip(third, fourth, launches):
        b6 = cands3[-1]  # the recorder's pick of the third stage
        assert key4[:-1] == key3[:-1] and cands4 == [(*b6, 0), (*b6, 1)] and model4 == (*b6, 1), (key4, cands4)
        assert [int(a) for a in la.args[24:26]] == list(b6[4:6]) and int(la.args[27]) == 1, la  # the last: 1
    _, _, _, calls19 = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v19")
    assert not [c for c in calls19 if c[0][-1] == "dw_segs"]
    be = fake_cupy.CustomBackend(kernels="fuse=v21", autotune=False)
    cfgs = [(12, 4, 16)]
    be.force_block6 = (12, 4, 16, 512, 3, 4, 0)
    assert be._pinned6(cfgs, 32) == (12, 4, 16, 512, 3, 4, 0)
    be.force_block6 = (12, 4, 16, 512, 3, 4, 2)
    assert be._pinned6(cfgs, 32) is None
    v20 = fake_cupy.CustomBackend(kernels="fuse=v20", autotune=False)
    v20.force_block6 = (12, 4, 16, 512, 3, 4, 0)
    assert v20._pinned6(cfgs, 32) is None


@pytest.mark.parametrize("fuse", ["v22", "v23"])
def test_fuse_v22_runs_each_exdwpw6_launch_on_its_fixed_mode_build(fake_cupy, net, ort_logits, fuse):
    """fuse v22: v21's plan with each exdwpw6 launch on <build>_m<proj_cols><ex_ks><red_pf><dw_segs> (fuse v23:
    + _s<shape and flags>; the stand-in checks the name's modes and shape are the arguments'), the same grids, blocks
    and arguments; each distinct build compiled once per device, another batch's plan reuses them; the emulated plan
    against ONNX Runtime; earlier versions compile none."""
    plans = {}
    for f in ("v21", fuse):
        be = fake_cupy.CustomBackend(kernels=f"fuse={f}", autotune=False)
        be.prepare(net)
        plans[f] = be.plan(1).launches
        if f == "v21":
            assert not SPEC_BUILDS
    six21 = [la for la in plans["v21"] if la.name.startswith("exdwpw6")]
    six = [la for la in plans[fuse] if la.name.startswith("exdwpw6")]
    assert len(six21) == len(six) == 13
    wanted = set()
    for a, b in zip(six21, six):
        modes = tuple(int(v) for v in a.args[24:28])
        shape = tuple(int(v) for v in a.args[11:24]) if fuse == "v23" else None
        assert b.name == K.exdwpw6_spec_name(a.name, modes, shape) and b.name != a.name, (a.name, b.name)
        assert (b.grid, b.block, b.smem, b.pdl) == (a.grid, a.block, a.smem, a.pdl)
        assert [int(v) for v in b.args[11:]] == [int(v) for v in a.args[11:]]
        wanted.add((a.name, modes, shape))
    assert [la.name for la in plans["v21"] if not la.name.startswith("exdwpw6")] == [
        la.name for la in plans[fuse] if not la.name.startswith("exdwpw6")
    ]
    assert sorted(SPEC_BUILDS, key=repr) == sorted(wanted, key=repr)  # each distinct build once
    if fuse == "v23":  # the repeated blocks share their shape: fewer builds than launches
        assert len(wanted) < 13
    be.plan(2)  # batch 2: new builds only where the shape (v23) or the picks differ, none twice
    assert len(SPEC_BUILDS) == len(set(SPEC_BUILDS))
    x, ref = ort_logits
    be.poison(2)
    assert_close(be.run(x), ref, "fp32", "e2e", what=f"emulated custom fuse={fuse}")
    assert not be.info()["fallbacks"]


@pytest.mark.parametrize("batch", [1, 2])
def test_fuse_v24_runs_exdwpw5_block0_and_pwpool_launches_on_fixed_builds(fake_cupy, net, ort_logits, batch):
    """fuse v24: v23's plan with each exdwpw5 launch, the block0 v3 and the pwpool_c8 launch on <build>_f<shape>
    (the stand-in checks the name's shape is the arguments'), the same grids, blocks, shared memory and arguments;
    each distinct build compiled once per device, another batch's plan only its own new builds (batch 1 runs v11's
    larger-chunk exdwpw5 builds); the emulated plan against ONNX Runtime; v23 compiles none."""
    plans = {}
    for f in ("v23", "v24"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={f},block0=v3", autotune=False)  # block0 v4: no fixed build
        be.prepare(net)
        plans[f] = be.plan(batch).launches
        if f == "v23":
            assert not FIXED_BUILDS
    a23, a24 = plans["v23"], plans["v24"]
    assert len(a23) == len(a24)
    wanted = set()
    for a, b in zip(a23, a24):
        kind = K.fixed_kind(a.name)
        if kind is None:
            assert b.name == a.name, (a.name, b.name)
            continue
        _, _, first, names, _ = K.FIXED_KINDS[kind]
        shape = tuple(int(v) for v in a.args[first : first + len(names)])
        assert b.name == K.fixed_name(a.name, shape) and K.fixed_parse(b.name) == (a.name, shape), b.name
        assert (b.grid, b.block, b.smem, b.pdl, len(b.args)) == (a.grid, a.block, a.smem, a.pdl, len(a.args))
        assert [int(v) for v in b.args[first:]] == [int(v) for v in a.args[first:]]
        wanted.add((a.name, shape))
    kinds = sorted(K.fixed_kind(n) for n, _ in wanted)
    assert kinds == ["block0", "exdwpw5", "exdwpw5", "exdwpw5", "pwpool"], wanted  # batch <= 2: the head's pwpool_c8
    assert sorted(FIXED_BUILDS) == sorted(wanted)
    be.plan(3 - batch)  # the other batch (the batch is no compile-time constant): block0's build again, none twice
    assert (
        len(FIXED_BUILDS) == len(set(FIXED_BUILDS)) and sum(K.fixed_kind(n) == "block0" for n, _ in FIXED_BUILDS) == 1
    )
    x, ref = ort_logits
    be.poison(2)
    assert_close(be.run(x), ref, "fp32", "e2e", what="emulated custom fuse=v24")
    assert not be.info()["fallbacks"]


def test_fixed_build_names_and_defines():
    """fuse v24's build names, their inverse and -D options (kernels/conv.cu EXDWPW5_SPEC_ONLY, kernels/block0.cu
    BLOCK0_SPEC_ONLY); the configurations read from the kernel files; bad shapes and other kernels refused."""
    assert K.block0_configs()["block0_v3_c32_p16"] == (32, 16, 16, 3)
    assert K.fixed_kind("block0_v3_c32_p16") == "block0" and K.fixed_kind("exdwpw5_s2_c24_o32_t4x4_cc144") == "exdwpw5"
    for other in ("block0_v2_c32_p16", "exdwpw6_c24", "exdwpw8_s1_c24_o24_e", "gemm_v5"):
        assert K.fixed_kind(other) is None
        with pytest.raises(ValueError):
            K.fixed_name(other, (1, 1, 1, 1))
    shape5 = (112, 112, 96, 56, 56, 1, 1, 1, 0, 0)
    name = K.fixed_name("exdwpw5_s2_c16_o24_t4x8_cc48", shape5)
    assert name == "exdwpw5_s2_c16_o24_t4x8_cc48_f112_112_96_56_56_1_1_1_0_0"
    assert (
        K.fixed_parse(name) == ("exdwpw5_s2_c16_o24_t4x8_cc48", shape5)
        and K.generic_of(name) == name[: -len("_f112_112_96_56_56_1_1_1_0_0")]
    )
    assert K.fixed_parse("exdwpw5_s2_c16_o24_t4x8") == ("exdwpw5_s2_c16_o24_t4x8", None)
    for own in ("hgemm_v2_64x64_f32", "h_to_nchw_f32"):  # an "_f<digits>" ending of the kernel's own name
        assert K.fixed_parse(own) == (own, None) and K.generic_of(own) == own
    assert K.generic_of("exdwpw6_c24_m3410_s14x14_64_384_64_14x14_1_2_1101") == "exdwpw6_c24"
    assert K.fixed_defines("exdwpw5_s2_c16_o24_t4x8_cc48", shape5) == [
        "-DEXDWPW5_SPEC_ONLY", "-DEXDWPW5_FIX_SHAPE", f"-DEXDWPW5_SPEC_NAME={name}", "-DEXDWPW5_SPEC_CFG_S=2",
        "-DEXDWPW5_SPEC_CFG_CIN=16", "-DEXDWPW5_SPEC_CFG_COUT=24", "-DEXDWPW5_SPEC_CFG_TH=4", "-DEXDWPW5_SPEC_CFG_TW=8",
        "-DEXDWPW5_SPEC_CFG_CC=48", "-DEXDWPW5_SPEC_CFG_DP=1", "-DEXDWPW5_SPEC_CFG_PT=2", "-DEXDWPW5_SPEC_CFG_WS=1",
        "-DEXDWPW5_SPEC_CFG_MINB=2", "-DEXDWPW5_SPEC_CFG_KS=1", "-DEXDWPW5_H=112", "-DEXDWPW5_W=112",
        "-DEXDWPW5_CE=96", "-DEXDWPW5_HO=56", "-DEXDWPW5_WO=56", "-DEXDWPW5_PAD=1", "-DEXDWPW5_ACTE=1",
        "-DEXDWPW5_ACTD=1", "-DEXDWPW5_ACTP=0", "-DEXDWPW5_RES=0",
    ]  # fmt: skip
    assert K.fixed_kind("pwpool_c8") == "pwpool" and K.fixed_config("pwpool_c8") == ()
    assert K.fixed_defines("pwpool_c8", (49, 320, 1280, 1)) == [
        "-DPWPOOL_SPEC_ONLY", "-DPWPOOL_FIX_SHAPE", "-DPWPOOL_SPEC_NAME=pwpool_c8_f49_320_1280_1", "-DPWPOOL_HW=49",
        "-DPWPOOL_K=320", "-DPWPOOL_COUT=1280", "-DPWPOOL_ACT=1"]  # fmt: skip
    assert K.fixed_defines("block0_v3_c32_p16", (224, 224, 112, 112))[-4:] == [
        "-DBLOCK0_H=224", "-DBLOCK0_W=224", "-DBLOCK0_HO=112", "-DBLOCK0_WO=112"]  # fmt: skip
    for bad in (shape5[:-1], (0, *shape5[1:]), (*shape5[:-1], -1)):
        with pytest.raises(ValueError):
            K.fixed_name("exdwpw5_s2_c16_o24_t4x8_cc48", bad)
    b = K.build_fixed("block0_v3_c32_p16", (224, 224, 112, 112), "90", None)  # no nvcc: the defines, then the file
    assert b.path is None and b.name == "block0_v3_c32_p16_f224_224_112_112"
    assert b.source.startswith("#define BLOCK0_SPEC_ONLY\n#define BLOCK0_FIX_SHAPE\n")
    assert b.source.endswith(K.KERNEL_DIR.joinpath("block0.cu").read_text())


def test_exdwpw6_spec_names_and_defines():
    """fuse v22's build names and -D options (kernels/cblock.cu EXDWPW6_SPEC_ONLY), and the generic build's (CH, CL,
    NT) read back from its name."""
    assert K.exdwpw6_build_of("exdwpw6_c24x16_t512") == (24, 16, 512)
    assert K.exdwpw6_build_of("exdwpw6_c12") == (12, 8, 256)
    assert K.exdwpw6_build_of("exdwpw6_c36x4") == (36, 4, 256)
    for ch, cl, nt in ((8, 8, 256), (24, 16, 512), (12, 12, 256)):
        assert K.exdwpw6_build_of(K.exdwpw6_kernel(ch, cl, nt)) == (ch, cl, nt)
    with pytest.raises(ValueError):
        K.exdwpw6_build_of("exdwpw5_s1_c24_o24_t4x8")
    assert K.exdwpw6_spec_name("exdwpw6_c24", (3, 4, 1, 0)) == "exdwpw6_c24_m3410"
    for bad in ((6, 0, 1, 0), (0, 3, 1, 0), (0, 0, 3, 0), (0, 0, 1, 2)):  # (proj_cols 4 / 5: v36's; red_pf 2: v37's)
        with pytest.raises(ValueError):
            K.exdwpw6_spec_name("exdwpw6_c24", bad)
    assert K.exdwpw6_spec_defines("exdwpw6_c12x16_t512", (2, 8, 0, 1)) == [
        "-DEXDWPW6_SPEC_ONLY", "-DEXDWPW6_FIX_MODES", "-DEXDWPW6_PC=2", "-DEXDWPW6_KS=8", "-DEXDWPW6_RPF=0",
        "-DEXDWPW6_DS=1", "-DEXDWPW6_SPEC_NAME=exdwpw6_c12x16_t512_m2801", "-DEXDWPW6_SPEC_CH=12",
        "-DEXDWPW6_SPEC_CL=16", "-DEXDWPW6_SPEC_NT=512",
    ]  # fmt: skip
    shape = (14, 14, 64, 384, 64, 14, 14, 1, 2, 1, 1, 0, 1)  # fuse v23: + the shape and flags
    assert (
        K.exdwpw6_spec_name("exdwpw6_c24", (3, 4, 1, 0), shape) == "exdwpw6_c24_m3410_s14x14_64_384_64_14x14_1_2_1101"
    )
    assert K.exdwpw6_spec_defines("exdwpw6_c24", (3, 4, 1, 0), shape)[-14:] == [
        "-DEXDWPW6_FIX_SHAPE", "-DEXDWPW6_H=14", "-DEXDWPW6_W=14", "-DEXDWPW6_CIN=64", "-DEXDWPW6_CE=384",
        "-DEXDWPW6_COUT=64", "-DEXDWPW6_HO=14", "-DEXDWPW6_WO=14", "-DEXDWPW6_S=1", "-DEXDWPW6_TR=2",
        "-DEXDWPW6_ACTE=1", "-DEXDWPW6_ACTD=1", "-DEXDWPW6_ACTP=0", "-DEXDWPW6_RES=1",
    ]  # fmt: skip
    for modes, sh in (((3, 4, 1, 0), shape), ((3, 4, 1, 0), None), ((0, 8, 0, 1), None)):  # the name parsed back
        assert K.exdwpw6_spec_parse(K.exdwpw6_spec_name("exdwpw6_c12x16_t512", modes, sh)) == (
            "exdwpw6_c12x16_t512", modes, sh)  # fmt: skip
    assert K.exdwpw6_spec_parse("exdwpw6_c24") == ("exdwpw6_c24", None, None)
    for bad in (shape[:-1], (0, *shape[1:]), (*shape[:-1], 2)):
        with pytest.raises(ValueError):
            K.exdwpw6_spec_name("exdwpw6_c24", (3, 4, 1, 0), bad)
    b = K.build_exdwpw6_spec("exdwpw6_c24", (1, 2, 1, 0), "90", None)  # no nvcc: the defines in front of the source
    assert b.path is None and b.name == "exdwpw6_c24_m1210"
    assert b.source.startswith("#define EXDWPW6_SPEC_ONLY\n#define EXDWPW6_FIX_MODES\n#define EXDWPW6_PC 1\n")
    assert "#define EXDWPW6_SPEC_NAME exdwpw6_c24_m1210\n" in b.source and b.source.endswith(
        K.KERNEL_DIR.joinpath("cblock.cu").read_text()
    )


def test_plan_tune_swaps_in_the_fastest_alternative_and_shifts_the_op_ranges(monkeypatch):
    """_plan_tune on stand-in launches: the alternative whose whole plan timed fastest replaces the tuned launch (here
    one launch by two: the later op ranges shift), the tuner's cache and ``tuned`` follow it, ``plan_tuned`` records
    it; a tie keeps the current pick; launches without alternatives, or no longer in the plan, are left alone."""
    import types

    from impls.custom import CustomBackend, Launch

    monkeypatch.delenv("MBV2_PLAN_TUNE", raising=False)
    assert not CustomBackend().plan_tune  # off by default
    be = CustomBackend(autotune=True, plan_tune=True)
    assert be.plan_tune and be.info()["plan_tune"]

    def mk(name):
        return Launch(name, None, (1,), (1,), ())

    a, b, c, d = mk("a"), mk("b"), mk("c"), mk("d")
    built = {"x": [mk("x0"), mk("x1")], "y": [mk("y")], "z": [mk("z")]}
    be._register_alts([mk("op call")], ("k0",), lambda cand: built[cand], "o", ["y"])  # outside plan(): not kept
    assert not be._alts
    be._planning = True  # (as inside plan())
    be._tune_cache[("k1",)] = "b"
    be._tune_cache[("k2",)] = "d"
    be._register_alts([b], ("k1",), lambda cand: built[cand], "b", ["x", "y"])
    be._register_alts([d], ("k2",), lambda cand: built[cand], "d", ["z"])
    be._register_alts([mk("gone")], ("k3",), lambda cand: built[cand], "g", ["y"])  # not in the plan
    timed = []

    def fake_times(self, seqs):
        timed.append([[la.name for la in s] for s in seqs])
        return [0.2 if any(la.name == "x0" for la in s) else 1.0 for s in seqs]  # x fastest; z ties with d

    be._time_sequences = types.MethodType(fake_times, be)
    ranges = [("op0", 0, 1), ("op1", 1, 2), ("op2", 2, 3), ("op3", 3, 4)]
    out, rng = be._plan_tune(1, [a, b, c, d], ranges)
    assert [la.name for la in out] == ["a", "x0", "x1", "c", "d"]
    assert rng == [("op0", 0, 1), ("op1", 1, 3), ("op2", 3, 4), ("op3", 4, 5)]
    assert timed == [
        [["a", "b", "c", "d"], ["a", "x0", "x1", "c", "d"], ["a", "y", "c", "d"]],
        [["a", "x0", "x1", "c", "d"], ["a", "x0", "x1", "c", "z"]],
    ]
    assert be._tune_cache == {("k1",): "x", ("k2",): "d"} and be.tuned == {repr(("k1",)): repr("x")}
    assert be.plan_tuned[1] == [
        {"op": "op1", "key": repr(("k1",)), "isolated_pick": repr("b"), "plan_pick": repr("x"), "plan_ms": [1.0, 0.2]}
    ]


def test_plan_tune_option_and_near_alternatives(monkeypatch):
    """MBV2_PLAN_TUNE / plan_tune= switch plan_tune (a bad value is an InputError); _near keeps the candidates within
    PLAN_TUNE_WITHIN of the fastest, at most PLAN_TUNE_ALTS, fastest first, never the pick itself."""
    from impls.custom import CustomBackend

    monkeypatch.setenv("MBV2_PLAN_TUNE", "0")
    assert not CustomBackend().plan_tune and CustomBackend(plan_tune=True).plan_tune
    monkeypatch.setenv("MBV2_PLAN_TUNE", "yes")
    with pytest.raises(InputError, match="MBV2_PLAN_TUNE"):
        CustomBackend()
    monkeypatch.setenv("MBV2_PLAN_TUNE", "1")
    be = CustomBackend()
    assert be.plan_tune
    be._tune_times[("k",)] = [(1.0, "a"), (1.05, "b"), (1.08, "c"), (1.09, "d"), (1.2, "e")]
    assert be._near(("k",), "a") == ["b", "c"]
    assert be._near(("k",), "b") == ["a", "c"]
    be.PLAN_TUNE_ALTS = 5
    assert be._near(("k",), "a") == ["b", "c", "d"]
    assert be._near(("other",), "a") == []


def test_fuse_v25_runs_the_56_to_28_block_on_clusters_at_batch1(fake_cupy, net):
    """fuse v25 = v24 + at batch 1 the 56 -> 28 exdwpw5 block (49 tiles) on its cluster build (K.EXDWPW5_SPLIT: 2
    blocks per tile, one 72-channel chunk each), on the fixed-shape build of it; the other launches as v24's; the
    emulated plan against ONNX Runtime; batch 2: v24's plan."""
    x = random_input(net, 1, seed=25)
    ort = impls.create("ort")
    ort.prepare(net)
    ref = ort.run(x)
    plans, bes = {}, {}
    for f in ("v24", "v25"):
        bes[f] = fake_cupy.CustomBackend(kernels=f"fuse={f}", autotune=False)
        bes[f].prepare(net)
        plans[f] = bes[f].plan(1).launches
    a24, a25 = plans["v24"], plans["v25"]
    assert len(a24) == len(a25)
    diff = [(a, b) for a, b in zip(a24, a25) if a.name != b.name]
    assert len(diff) == 1, [(a.name, b.name) for a, b in diff]
    a, b = diff[0]
    assert K.fixed_parse(a.name)[0] == "exdwpw5_s2_c24_o32_t4x4_cc144", a.name
    assert K.fixed_parse(b.name) == ("exdwpw5_s2_c24_o32_t4x4_cc72_k2", K.fixed_parse(a.name)[1]), b.name
    assert b.grid == (2 * a.grid[0], 1) == (98, 1) and b.smem == K.exdwpw5_smem("exdwpw5_s2_c24_o32_t4x4_cc72_k2")
    assert [int(v) for v in b.args[9:]] == [int(v) for v in a.args[9:]]
    assert K.exdwpw5_configs()["exdwpw5_s2_c24_o32_t4x4_cc72_k2"][-1] == 2  # KS
    be = bes["v25"]
    be.poison(1)
    assert_close(be.run(x), ref, "fp32", "e2e", what="emulated custom fuse=v25 bs1")
    names2 = [la.name for la in be.plan(2).launches]
    assert not any("_k2" in n for n in names2), names2


def test_fuse_v26_splits_the_98_tile_exdwpw5_blocks_at_batch1(fake_cupy, net):
    """fuse v26 = v25 + at batch 1 the two 98-tile exdwpw5 blocks (112 -> 56, 56 -> 56) on their cluster builds
    (K.EXDWPW5_SPLIT's v26 entries: 2 blocks per tile, one chunk each, 196 blocks at up to 2 per SM), on fixed-shape
    builds of them; the other launches as v25's; the emulated plan against ONNX Runtime; batch 2: v25's plan."""
    x = random_input(net, 1, seed=26)
    ort = impls.create("ort")
    ort.prepare(net)
    ref = ort.run(x)
    plans, bes = {}, {}
    for f in ("v25", "v26"):
        bes[f] = fake_cupy.CustomBackend(kernels=f"fuse={f}", autotune=False)
        bes[f].prepare(net)
        plans[f] = bes[f].plan(1).launches
    a25, a26 = plans["v25"], plans["v26"]
    assert len(a25) == len(a26)
    diff = [(a, b) for a, b in zip(a25, a26) if a.name != b.name]
    want = {"exdwpw5_s2_c16_o24_t4x8_cc48": "exdwpw5_s2_c16_o24_t4x8_cc48_k2",
            "exdwpw5_s1_c24_o24_t4x8_cc72": "exdwpw5_s1_c24_o24_t4x8_cc72_k2"}  # fmt: skip
    pairs = {K.fixed_parse(a.name)[0]: K.fixed_parse(b.name)[0] for a, b in diff}
    assert pairs == want, [(a.name, b.name) for a, b in diff]
    for a, b in diff:
        gen, shape = K.fixed_parse(b.name)
        assert shape == K.fixed_parse(a.name)[1], (a.name, b.name)
        assert b.grid == (2 * a.grid[0], 1) == (196, 1) and b.smem == K.exdwpw5_smem(gen), (b.name, b.grid)
        assert [int(v) for v in b.args[9:]] == [int(v) for v in a.args[9:]]
        assert K.exdwpw5_configs()[gen][-1] == 2 and K.exdwpw5_configs()[gen][9] == 2  # KS, MINB: 2 blocks per SM
        assert 2 * b.smem <= 227 * 1024, b.smem
    be = bes["v26"]
    be.poison(1)
    assert_close(be.run(x), ref, "fp32", "e2e", what="emulated custom fuse=v26 bs1")
    names2 = [la.name for la in be.plan(2).launches]
    assert not any("_k2" in n for n in names2), names2


def test_fuse_v27_v28_launch_by_pdl(fake_cupy, net, monkeypatch):
    """fuse v27: the exdwpw6 launches by programmatic dependent launch; v28: the plan's exdwpw5 launches too, at batch
    <= EXDWPW5_PDL_MAX_BATCH; nothing else besides linear v5's GEMV. pdl=False: none of them; the logits are v26's,
    bit for bit. Without cuLaunchKernelEx: plain launches and a fallback note per version."""
    want = {
        ("v26", 1): {"exdwpw6": 0, "exdwpw5": 0},
        ("v27", 1): {"exdwpw6": 13, "exdwpw5": 0},
        ("v28", 1): {"exdwpw6": 13, "exdwpw5": 3},
        ("v28", 2): {"exdwpw6": 13, "exdwpw5": 0},  # EXDWPW5_PDL_MAX_BATCH 1
        ("v28", 4): {"exdwpw6": 0, "exdwpw5": 0},
    }
    for (fuse, batch), counts in want.items():
        x = random_input(net, batch, seed=batch)
        ys = []
        for pdl in (None, False):
            be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", pdl=pdl)
            be.prepare(net)
            launches = be.plan(batch).launches
            got = {k: sum(la.pdl for la in launches if la.name.startswith(k)) for k in counts}
            assert got == (counts if pdl is None else dict.fromkeys(counts, 0)), (fuse, batch, pdl, got)
            others = [la.name for la in launches if la.pdl and not la.name.startswith(("exdwpw", "linear_gemv_v5"))]
            assert not others, others
            PDL_LAUNCHES.clear()
            ys.append(be.run(x))
            assert len(PDL_LAUNCHES) == sum(la.pdl for la in launches)
            assert not be.info()["fallbacks"], be.info()["fallbacks"]
        np.testing.assert_array_equal(ys[0], ys[1])
    monkeypatch.setattr(fake_cupy, "_driver_launch_ex", lambda: None)
    be = fake_cupy.CustomBackend(kernels="fuse=v28")
    be.prepare(net)
    assert not any(la.pdl for la in be.plan(1).launches)
    notes = be.info()["fallbacks"]
    assert any("fuse v27 -> v26" in f for f in notes) and any("fuse v28 -> v27" in f for f in notes), notes


def test_fuse_v29_launches_pwpool_c8_with_pdl(fake_cupy, net):
    """fuse v29 = v28 + fuse v12's pwpool_c8 by programmatic dependent launch at batch <= PWPOOL_PDL_MAX_BATCH; the
    rest of the plan is v28's; the logits are v28's, bit for bit."""
    x = random_input(net, 1, seed=29)
    ys, plans = [], {}
    for fuse in ("v28", "v29"):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}")
        be.prepare(net)
        plans[fuse] = be.plan(1).launches
        ys.append(be.run(x))
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
    a, b = plans["v28"], plans["v29"]
    assert [la.name for la in a] == [la.name for la in b]
    diff = [(la.name, lb.pdl) for la, lb in zip(a, b) if la.pdl != lb.pdl]
    assert len(diff) == 1 and K.generic_of(diff[0][0]) == "pwpool_c8" and diff[0][1], diff
    np.testing.assert_array_equal(ys[0], ys[1])


def test_fuse_v30_expansion_modes_helpers():
    """fuse v30's expansion modes: ex_ks = KS + 16 * EC (ex_pack / ex_unpack), the extra candidates of a block
    (ex_ec_modes: every k split but 0 with each EC of 1 - 3 dividing CH / 4), their fixed builds' names
    (<build>_m<p><k><r><d>e<ec>, parsed back), the shared memory of the skewed k slices, and no mode out of range."""
    assert K.ex_pack(4, 3) == 52 and K.ex_unpack(52) == (4, 3) and K.ex_unpack(8) == (8, 0)
    assert K.ex_ec_modes(96, 36) == [K.ex_pack(k, ec) for ec in (1, 3) for k in (1, 2, 4, 8)]  # CG 9: EC 1, 3
    assert K.ex_ec_modes(160, 24) == [K.ex_pack(k, ec) for ec in (1, 2, 3) for k in (1, 2, 4, 8)]  # CG 6
    assert K.ex_ec_modes(32, 12) == [K.ex_pack(k, ec) for ec in (1, 3) for k in (1, 2, 4, 8)]
    assert K.ex_ec_modes(24, 20) == [K.ex_pack(k, 1) for k in (1, 2)]  # CG 5; 24 = 2 x 3 float4s: KS 1 / 2 only
    assert K.ex_mode_fits(K.ex_pack(4, 3), 36) and not K.ex_mode_fits(K.ex_pack(4, 2), 20) and K.ex_mode_fits(4, 20)
    for ok in (0, 1, 8, 17, 18, 20, 24, 33, 40, 49, 56):
        assert K.ex_mode_ok(ok), ok
    for bad in (3, 16, 32, 48, 64, 65, 19):
        assert not K.ex_mode_ok(bad), bad
        with pytest.raises(ValueError):
            K.exdwpw6_spec_name("exdwpw6_c24", (3, bad, 1, 0))
    shape = (14, 14, 96, 576, 96, 14, 14, 1, 2, 1, 1, 0, 1)
    name = K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (3, K.ex_pack(2, 3), 1, 0), shape)
    assert name == "exdwpw6_c36x16_t512_m3210e3_s14x14_96_576_96_14x14_1_2_1101", name
    assert K.exdwpw6_spec_parse(name) == ("exdwpw6_c36x16_t512", (3, 50, 1, 0), shape)
    assert K.exdwpw6_spec_parse("exdwpw6_c36x16_t512_m3210e3") == ("exdwpw6_c36x16_t512", (3, 50, 1, 0), None)
    assert "-DEXDWPW6_KS=50" in K.exdwpw6_spec_defines("exdwpw6_c36x16_t512", (3, 50, 1, 0), shape)
    base = K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36)
    assert K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, 4) == base  # v17's tiles: no skew
    assert K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, K.ex_pack(1, 3)) == base  # one slice: no skew
    assert K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, K.ex_pack(4, 1)) == base + 4 * 3 * K.EX_WSK
    assert K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, K.ex_pack(8, 3)) == base + 4 * 7 * K.EX_WSK


def test_fuse_v34_boustrophedon_modes_helpers():
    """fuse v34: ex_pack's snake (+ 256) on v17's tiles (KS >= 1) and on the EC modes, never on the pixel lanes or
    with v32 / v33's pad / unroll in v34's candidates; the builds named ..z (parsed back); the tuner's candidates per
    version (ex_v17_modes, ex_version_ec_modes); no extra shared memory (v17's tiles: none, EC: the skew only)."""
    assert K.ex_pack(2, 0, snake=True) == 258 and K.ex_unpack(258) == (2, 0) and K.ex_snaked(258)
    assert K.ex_pack(2, 1, snake=True) == 274 and K.ex_unpack(274) == (2, 1) and not K.ex_padded(274)
    for ok in (257, 258, 260, 264, 273, 274, 306):
        assert K.ex_mode_ok(ok), ok
    for bad in (256, 512, 259, 320, 384, 1 + 64 + 256):
        assert not K.ex_mode_ok(bad), bad
        with pytest.raises(ValueError):
            K.exdwpw6_spec_name("exdwpw6_c24", (3, bad, 1, 0))
    assert K.ex_v17_modes(96, "v33") == [0, 1, 2, 4, 8]
    assert K.ex_v17_modes(96, "v34") == [0, 257, 258, 260, 264]
    assert K.ex_version_ec_modes(96, 36, "v28") == []
    assert K.ex_version_ec_modes(96, 36, "v30") == K.ex_ec_modes(96, 36)
    assert K.ex_version_ec_modes(96, 36, "v33") == [m + 192 for m in K.ex_ec_modes(96, 36)]
    assert K.ex_version_ec_modes(96, 36, "v34") == [m + 256 for m in K.ex_ec_modes(96, 36)]
    assert not K.ex_pad("v34") and not K.ex_unroll("v34") and K.ex_snake("v34") and not K.ex_snake("v33")
    src = (KDIR / "cblock.cu").read_text()  # the host's mirrors of the kernel's mode constants
    assert f"constexpr int EX_SNAKE_V34 = {K.EX_SNAKE};" in src and f"constexpr int EX_PAD_V32 = {K.EX_PAD};" in src
    assert K.ex_version_ec_modes(96, 36, "v35") == [m + 384 for m in K.ex_ec_modes(96, 36)]
    assert K.ex_v17_modes(96, "v35") == [0, 257, 258, 260, 264] and not K.ex_pad("v35")
    name = K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (3, 2 + 16 + 384, 1, 0))
    assert name == "exdwpw6_c36x16_t512_m3210e1fz" and K.exdwpw6_spec_parse(name)[1] == (3, 402, 1, 0), name
    shape = (14, 14, 96, 576, 96, 14, 14, 1, 2, 1, 1, 0, 1)
    for ks, tag in ((258, "m3210z"), (274, "m3210e1z")):
        name = K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (3, ks, 1, 0), shape)
        assert name == f"exdwpw6_c36x16_t512_{tag}_s14x14_96_576_96_14x14_1_2_1101", name
        assert K.exdwpw6_spec_parse(name) == ("exdwpw6_c36x16_t512", (3, ks, 1, 0), shape)
        assert f"-DEXDWPW6_KS={ks}" in K.exdwpw6_spec_defines("exdwpw6_c36x16_t512", (3, ks, 1, 0), shape)
        smem = K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, ks)
        assert smem == K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, ks - 256)


def test_fuse_v36_ordered_projection_helpers():
    """fuse v36: proj_cols 4 / 5 (the lane tiles in the lane-pair order) only on v36 and later, in the fixed builds'
    names (..m4.. / ..m5.., parsed back) and defines, never above 5; v36 keeps v35's expansion modes; the kernel runs
    4 / 5 through proj_tiles with EX_SNAKE_V34's order in fixed builds only."""
    assert K.proj_order("v36") and not K.proj_order("v35") and K.PROJ_ORDER_MODES == (2, 3, 4, 5)
    assert K.ex_unroll("v36") and K.ex_snake("v36") and not K.ex_pad("v36") and not K.head_fc("v36")
    assert K.ex_version_ec_modes(96, 36, "v36") == K.ex_version_ec_modes(96, 36, "v35")
    assert K.proj_modes("v36") == (0, 1, 2, 3)  # the generic-build projection stage is v35's
    shape = (14, 14, 96, 576, 96, 14, 14, 1, 2, 1, 1, 0, 1)
    for pc in (4, 5):
        name = K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (pc, 402, 1, 0), shape)
        assert name == f"exdwpw6_c36x16_t512_m{pc}210e1fz_s14x14_96_576_96_14x14_1_2_1101", name
        assert K.exdwpw6_spec_parse(name) == ("exdwpw6_c36x16_t512", (pc, 402, 1, 0), shape)
        assert f"-DEXDWPW6_PC={pc}" in K.exdwpw6_spec_defines("exdwpw6_c36x16_t512", (pc, 402, 1, 0), shape)
    with pytest.raises(ValueError):
        K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (6, 402, 1, 0), shape)
    src = (KDIR / "cblock.cu").read_text()
    fixed = src[src.index("#ifdef EXDWPW6_FIX_MODES\n        // fuse v36") :]
    assert fixed.index("proj_cols == 4) proj_tiles<4, CH, NT, EX_SNAKE_V34>") < fixed.index("#endif")
    assert fixed.index("proj_cols == 5) proj_tiles<2, CH, NT, EX_SNAKE_V34>") < fixed.index("#endif")


def test_fuse_v37_bulk_reduce_helpers():
    """fuse v37: red_pf 2 (the bulk-copy reduce) only on v37 and later, in the fixed builds' names (..m<p><k>2<d>,
    parsed back) and defines (-DEXDWPW6_RPF=2, which the kernel turns into EXDWPW6_BULK_ON), never above 2; the
    launch's shared memory adds the receive buffer; v37 keeps v36's modes."""
    assert K.bulk_reduce("v37") and not K.bulk_reduce("v36") and K.proj_order("v37") and K.ex_unroll("v37")
    shape = (14, 14, 96, 576, 96, 14, 14, 1, 2, 1, 1, 0, 1)
    name = K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (5, 402, 2, 1), shape)
    assert name == "exdwpw6_c36x16_t512_m5221e1fz_s14x14_96_576_96_14x14_1_2_1101", name
    assert K.exdwpw6_spec_parse(name) == ("exdwpw6_c36x16_t512", (5, 402, 2, 1), shape)
    assert "-DEXDWPW6_RPF=2" in K.exdwpw6_spec_defines("exdwpw6_c36x16_t512", (5, 402, 2, 1), shape)
    with pytest.raises(ValueError):
        K.exdwpw6_spec_name("exdwpw6_c36x16_t512", (5, 402, 3, 1), shape)
    base = K.exdwpw6_smem(14, 14, 96, 96, 14, 1, 2, 36, 402)
    assert K.exdwpw6_launch_smem(14, 14, 96, 96, 14, 1, 2, 36, 402, 16, 1) == base
    assert K.exdwpw6_launch_smem(14, 14, 96, 96, 14, 1, 2, 36, 402, 16, 2) == base + 4 * 16 * 2 * 100
    src = (KDIR / "cblock.cu").read_text()
    assert "#if defined(EXDWPW6_FIX_MODES) && EXDWPW6_RPF == 2" in src


def test_push_measuring_build_indexing():
    """Session 25's -DEXDWPW6_PUSH=1 and fuse v37's red_pf 2 (below) (kernels/cblock.cu exdwpw6_body, steps 4 / 5),
    mirrored: every float4 unit j of a tile is pushed by each of the CL blocks to block j // chunk at slot (sender *
    chunk + j - owner * chunk); the owners' ranges [lo, hi) partition the units, no two (sender, unit) pairs share a
    slot, every slot lies inside the receive buffer K.exdwpw6_push_bytes reserves, and the owner reads sender b's
    partial of unit j at (j - lo) + b * chunk, where it was pushed."""
    for tr, wo, cout, cl in ((2, 14, 96, 16), (3, 7, 320, 8), (1, 14, 64, 16), (4, 28, 32, 16), (1, 1, 12, 8)):
        o4 = cout // 4
        cap = K.exdwpw6_push_bytes(tr, wo, cout, cl) // 16
        for trt in range(1, tr + 1):  # the last tile may have fewer rows
            e4 = trt * wo * o4
            chunk = (e4 + cl - 1) // cl
            slots = {}
            for sender in range(cl):
                for j in range(e4):
                    ow = j // chunk
                    slot = sender * chunk + j - ow * chunk
                    assert 0 <= ow < cl and 0 <= slot < cap and (ow, slot) not in slots, (tr, wo, cout, cl, j)
                    slots[(ow, slot)] = (sender, j)
            covered = []
            for rank in range(cl):
                lo = min(e4, rank * chunk)
                hi = min(e4, lo + chunk)
                for j in range(lo, hi):
                    assert [slots[(rank, (j - lo) + b * chunk)] for b in range(cl)] == [(b, j) for b in range(cl)]
                covered += range(lo, hi)
            assert covered == list(range(e4)), (tr, wo, cout, cl, trt)
            # red_pf 2: pixel slices [q0, q1) of cpp rows; sender s's rows land at s * cpp rows in the
            # receiver's buffer; the receiver reads sender b's row of pixel q at (q - q0) + b * cpp rows
            tp, ps = trt * wo, cout + 4
            cpp = (tp + cl - 1) // cl
            rows = K.exdwpw6_bulkred_bytes(tr, wo, cout, cl) // (4 * ps)
            got = []
            for rank in range(cl):
                q0 = min(tp, rank * cpp)
                q1 = min(tp, q0 + cpp)
                landed = {}
                for sender in range(cl):
                    for q in range(q0, q1):  # the copy: rows [q0, q1) of sender's Ps, to rows sender * cpp + ...
                        row = sender * cpp + (q - q0)
                        assert 0 <= row < rows and row not in landed, (tr, wo, cout, cl, trt, rank, q)
                        landed[row] = (sender, q)
                for q in range(q0, q1):
                    assert [landed[(q - q0) + b * cpp] for b in range(cl)] == [(b, q) for b in range(cl)]
                got += range(q0 * o4, q1 * o4)
            assert got == list(range(e4)), (tr, wo, cout, cl, trt)


@pytest.mark.parametrize("v", ["v30", "v32", "v33", "v34", "v35", "v36", "v37", "v42"])
def test_fuse_v30_times_the_wide_expansion_tiles_on_fixed_builds(fake_cupy, net, monkeypatch, v):
    """fuse v30: untuned, v28's plan. Tuned, each block's expansion stage times v17's candidates and ex_ec_modes'
    (spelled out here) with the projection stage's pick, every one on its fixed build (modes and shape; compiled
    before the stage is timed), and so does the depthwise stage after it; the launch is the pick's fixed build, with
    the skewed slices' shared memory; v28's stage has only v17's candidates; the emulated plan against ONNX Runtime.
    A force_block6 may pin a v30 mode (v30 only, EC dividing CH / 4). fuse v32: the same with ex_ec_modes' tiles
    padded (ex_ks + 64, builds named ..e<EC>p), and only those; v33 padded and unrolled (+ 192, ..e<EC>pf); v34 v17's
    tiles and the EC modes in boustrophedon order (+ 256, builds named ..z); v35 those EC modes unrolled too (+ 384,
    ..e<EC>fz); v36 v35 + a last stage after the depthwise one: the final pick with proj_cols 2 / 3 / 4 / 5 (4 / 5:
    the ordered projection tiles), on fixed builds, the launch its pick's build; v37 v36 + a last stage with red_pf 1
    / 2 (2: the bulk-copy reduce, its receive buffer in the launch's shared memory); v42 as v37 (its first stage:
    one cluster per tile where the block has any)."""
    pad = {"v30": 0, "v32": 64, "v33": 192, "v34": 256, "v35": 384, "v36": 384, "v37": 384, "v42": 384}[v]
    z = 256 if v in ("v34", "v35", "v36", "v37", "v42") else 0
    ordered = v in ("v36", "v37", "v42")
    bulk_v = v in ("v37", "v42")
    plans = {}
    for fuse in ("v28", v):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        plans[fuse] = [(la.name, la.grid, la.block, la.smem, [int(a) for a in la.args[11:]] if la.name.startswith(
            "exdwpw6") else None) for la in be.plan(1).launches]  # fmt: skip
    assert plans[v] == plans["v28"]
    SPEC_BUILDS.clear()
    be, six, launches, calls = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, v)
    third = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "ex_ks"]
    fourth = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "dw_segs"]
    fifth = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "proj_order"]
    sixth = [c for c in calls if c[0][0] == "exdwpw6" and c[0][-1] == "reduce"]
    assert len(third) == len(fourth) == 13 and len(fifth) == (13 if ordered else 0), [c[0] for c in calls]
    assert len(sixth) == (13 if bulk_v else 0), [c[0] for c in calls]
    built = set(SPEC_BUILDS)
    for i, ((key3, cands3, model3), (_, cands4, _), la) in enumerate(zip(third, fourth, launches)):
        b5 = cands3[0][:5]
        ch, cin = b5[0], key3[1][3]
        kss = [k for k in (0, 1, 2, 4, 8) if k == 0 or cin % (4 * k) == 0]
        wide = [k + 16 * ec + pad for ec in (1, 2, 3) if (ch // 4) % ec == 0 for k in kss if k > 0]
        v17 = [k + z if k else 0 for k in kss]
        assert cands3 == [(*b5, k) for k in v17 + wide] and model3 == (*b5, K.ex_ks_rule(cin)), (key3, cands3)
        b6 = cands3[-1]  # the recorder's pick: the widest tiles with the most k slices
        assert b6[5] == 16 * max(ec for ec in (1, 2, 3) if (ch // 4) % ec == 0) + kss[-1] + pad, b6
        assert cands4 == [(*b6, 0), (*b6, 1)], cands4
        modes = (b6[4], b6[5], 1, 1)  # red_pf 1, dw_segs: the recorder's last
        if ordered:  # the proj_cols stage's last pick (3: the 2-pixel tiles), then the ordered ones timed
            _, cands5, model5 = fifth[i]
            b7 = cands4[-1]
            assert b7[4] == 3 and model5 == b7 and cands5 == [(*b7[:4], p, *b7[5:]) for p in (2, 3, 4, 5)], cands5
            modes = (5, b6[5], 1, 1)
            for c in cands5:
                assert (K.exdwpw6_kernel(ch, b5[2], b5[3]), (c[4], c[5], 1, c[6]), tuple(
                    int(a) for a in la.args[11:24])) in built, c  # fmt: skip
        if bulk_v:  # then red_pf 1 / 2 on the final pick (the receive buffer fits every network block)
            _, cands6, model6 = sixth[i]
            b8 = fifth[i][1][-1]
            assert cands6 == [(*b8, 1), (*b8, 2)] and model6 == (*b8, 1), cands6
            modes = (5, b6[5], 2, 1)
        shape = tuple(int(a) for a in la.args[11:24])
        generic = K.exdwpw6_kernel(ch, b5[2], b5[3])
        assert la.name == K.exdwpw6_spec_name(generic, modes, shape), la.name
        assert (f"p{'f' if pad > 64 else ''}_s" in la.name) == bool(pad and not z), la.name
        assert ("z_s" in la.name) == bool(z) and ("fz_s" in la.name) == (v in ("v35", "v36", "v37", "v42")), la.name
        assert la.name.startswith(f"{generic}_m{modes[0]}"), la.name
        assert [int(a) for a in la.args[24:]] == list(modes), la.args[24:]
        h, w, _, _, cout, _, wo, s, tr = shape[:9]
        bulk = K.exdwpw6_bulkred_bytes(tr, wo, cout, b5[2]) if modes[2] == 2 else 0  # v37's receive buffer
        assert la.smem - bulk == K.exdwpw6_smem(h, w, cin, cout, wo, s, tr, ch, b6[5]) > K.exdwpw6_smem(
            h, w, cin, cout, wo, s, tr, ch)  # fmt: skip
        for c in cands3:  # every candidate of the stage on its fixed build
            assert (generic, (c[4], c[5], 1, 1), shape) in built, c
    assert len(SPEC_BUILDS) == len(built)  # none twice
    _, _, _, calls28 = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v28")
    for key, cands, _ in calls28:
        if key[0] == "exdwpw6" and key[-1] == "ex_ks":
            assert all(c[5] < 16 for c in cands), cands
    xin = random_input(net, 1, seed=30)
    ort = impls.create("ort")
    ort.prepare(net)
    assert_close(be.run(xin), ort.run(xin), "fp32", "e2e", what=f"emulated fuse {v} bs1, tuned")
    cfgs = [(12, 4, 16)]
    for fuse, pin, ok in ((v, (12, 4, 16, 512, 3, 50 + pad, 0), True), (v, (12, 4, 16, 512, 3, 34 + pad, 0), False),
                          (v, (12, 4, 16, 512, 3, 50 + (64 if pad == 0 else 0), 0), False),
                          ("v28", (12, 4, 16, 512, 3, 50, 0), False),
                          (v, (12, 4, 16, 512, 5, 50 + pad, 0), v in ("v36", "v37", "v42")),
                          (v, (12, 4, 16, 512, 5, 50 + pad, 0, 2), bulk_v),
                          (v, (12, 4, 16, 512, 5, 50 + pad, 0, 3), False)):  # fmt: skip
        pinned = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        pinned.force_block6 = pin
        assert (pinned._pinned6(cfgs, 32) == pin) == ok, (fuse, pin)


def _head_launches(launches) -> list[tuple[str, bool]]:
    """The plan's launches after its last block kernel (exdwpw6): the head, as (generic build, pdl)."""
    last = max(i for i, la in enumerate(launches) if la.name.startswith("exdwpw6"))
    return [(K.generic_of(la.name), la.pdl) for la in launches[last + 1 :]]


HEAD_FC_PAIRS = [("v30", "v31"), ("v36", "v38")]  # (base, the base + head_fc)


@pytest.mark.parametrize("base,fc_v", HEAD_FC_PAIRS, ids=["v31", "v38"])
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
def test_fuse_v31_runs_the_head_and_classifier_as_one_kernel(fake_cupy, net, ort_logits, batch, graph, base, fc_v):
    """fuse v31 (v38) at batch <= PWPOOL_MAX_BATCH: v30's (v36's) plan with the head's pwpool_c8 and the classifier
    GEMV after it replaced by ONE pwpool_fc_c8 launch, plain (no PDL), on its fixed build
    <build>_f<HW>_<K>_<COUT>_<OUT>_<ACT>: grid (8 * COUT / 64, N), 256 threads, K.pwpool_fc_c8_smem, the classifier's
    W^T and bias, the logits into the linear op's buffer, a workspace of N * 20 * 1000 floats and N * 8 zero counters;
    the linear op's range is empty; the base's plan keeps its two kernels; the emulated logits against ONNX Runtime,
    bit-identical replay to replay; no fallback."""
    x, ref = ort_logits
    x, ref = x[:batch], ref[:batch]
    plans = {}
    for fuse in (base, fc_v):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False, graph=graph)
        be.prepare(net)
        plans[fuse] = be.plan(batch)
    a, b = plans[base].launches, plans[fc_v].launches
    gemv = "linear_gemv_v5" if batch <= K.LINEAR_PDL_MAX_BATCH else "linear_gemv_v3"
    assert _head_launches(a) == [("pwpool_c8", False), (gemv, batch <= K.LINEAR_PDL_MAX_BATCH)], _head_launches(a)
    assert _head_launches(b) == [("pwpool_fc_c8", False)], _head_launches(b)
    assert [(la.name, la.grid, la.smem, la.pdl) for la in a[:-2]] == [
        (la.name, la.grid, la.smem, la.pdl) for la in b[:-1]
    ]
    fc, pw = b[-1], a[-2]
    shape = (49, 320, 1280, 1000, 1)
    assert fc.name == K.fixed_name("pwpool_fc_c8", shape) == "pwpool_fc_c8_f49_320_1280_1000_1", fc.name
    assert ("pwpool_fc_c8", shape) in FIXED_BUILDS
    assert (fc.grid, fc.block, fc.smem) == ((160, batch), (256,), K.pwpool_fc_c8_smem(49, 320, 1000)), fc
    assert fc.smem == K.pwpool_c8_smem(49, 320) + 4 * (72 * 128 + 64) and fc.smem - pw.smem == 37120
    assert (
        [v.shape for v in fc.args[:4]]
        == [v.shape for v in pw.args[:4]]
        == [(batch, 7, 7, 320), (320, 1280), (1280,), (batch, 1280)]
    )
    assert [int(v) for v in fc.args[9:]] == [49, 320, 1280, 1000, 1]
    p = be._layer_params(net.fused[-1].layer)
    assert fc.args[4] is p["wt"] and fc.args[5] is p["bias"] and p["wt"].shape == (1280, 1000)
    assert fc.args[6].data.ptr == plans[fc_v].out.data.ptr and fc.args[6].shape == (batch, 1000)
    assert fc.args[7].size >= batch * 20 * 1000 and fc.args[8].dtype == np.int32 and not fc.args[8][: batch * 8].any()
    labels = {lb.split(":", 1)[1]: (lo, hi) for lb, lo, hi in plans[fc_v].op_ranges}
    (lo, hi), (plo, phi) = labels[net.fused[-1].label], labels[net.fused[-2].label]
    assert lo == hi == len(b) and (plo, phi) == (len(b) - 1, len(b)), plans[fc_v].op_ranges
    be.poison(batch)
    LAUNCHES.clear()
    y = be.run(x)
    assert [K.generic_of(n) for n in LAUNCHES[-1:]] == ["pwpool_fc_c8"] and not any(
        n.startswith(("linear", "pool_")) for n in LAUNCHES
    ), LAUNCHES
    assert_close(y, ref, "fp32", "e2e", what=f"emulated custom fuse={fc_v} bs{batch} graph={graph}")
    assert top1_agreement(y, ref) >= TOP1_AGREEMENT["fp32"]
    np.testing.assert_array_equal(y, be.run(x))
    assert not be.info()["fallbacks"], be.info()["fallbacks"]


@pytest.mark.parametrize("base,fc_v", HEAD_FC_PAIRS, ids=["v31", "v38"])
def test_fuse_v31_above_pwpool_max_batch_is_v30s_plan(fake_cupy, net, base, fc_v):
    """fuse v31 (v38) above PWPOOL_MAX_BATCH: no pwpool_c8 in v30's (v36's) plan there, so its plan is the same
    launches, with no fallback recorded."""
    names = {}
    for fuse in (base, fc_v):
        be = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        be.prepare(net)
        names[fuse] = [(la.name, la.grid, la.pdl) for la in be.plan(K.PWPOOL_MAX_BATCH + 1).launches]
        assert not be.info()["fallbacks"], be.info()["fallbacks"]
    assert names[fc_v] == names[base] and not any("pwpool" in n for n, _, _ in names[fc_v]), names[fc_v]


@pytest.mark.parametrize(
    "num_classes,force,fused",
    [(12, None, True), (10, None, False), (1000, "pwpool", False)],
    ids=["out12", "out10", "force_pwpool"],
)
@pytest.mark.parametrize("base,fc_v", HEAD_FC_PAIRS, ids=["v31", "v38"])
def test_fuse_v31_fuses_where_it_applies_else_plans_v30s_kernels(fake_cupy, num_classes, force, fused, base, fc_v):
    """fuse v31 (v38) on other heads at batch 2: 12 classes (OC 4: blocks of rank 3 - 7 own no column) fused; 10
    classes (OUT % 4 != 0) and a pinned pwpool head are v30's (v36's) kernels with the reason in info()["fallbacks"];
    the emulated logits against NumPy float64 either way."""
    from mbv2.model import default_network

    small = default_network(num_classes=num_classes, resolution=96)  # a 3x3 head map
    x = random_input(small, 2, seed=31)
    ref = NumpyBackend(dtype="fp64")
    ref.prepare(small)
    be = fake_cupy.CustomBackend(kernels=f"fuse={fc_v}", autotune=False)
    be.force_pwpool = force
    be.prepare(small)
    be.poison(2)
    LAUNCHES.clear()
    y = be.run(x)
    assert_close(y, ref.run(x), "fp32", "e2e", what=f"emulated fuse {fc_v} {num_classes} classes")
    generic = [K.generic_of(n) for n in LAUNCHES]
    assert ("pwpool_fc_c8" in generic) == fused and any(n.startswith("linear_gemv") for n in generic) != fused, generic
    notes = [f for f in be.info()["fallbacks"] if f.startswith(f"fuse {fc_v} -> {base}")]
    if fused:
        assert not notes and generic[-1] == "pwpool_fc_c8", (notes, generic)
        fc = be.plan(2).launches[-1]
        assert fc.smem == K.pwpool_fc_c8_smem(9, 320, num_classes) and int(fc.args[12]) == num_classes
    else:
        want = "OUT % 4 == 0" if force is None else "force_pwpool='pwpool'"
        assert len(notes) == 1 and want in notes[0], be.info()["fallbacks"]


def test_fuse_v31_fixed_build_name_and_defines():
    """fuse v31's fixed build: kind pwpool_fc (kernels/cblock.cu PWPOOL_SPEC_ONLY + PWPOOL_SPEC_CFG_FC: the file
    holds only pwpool_fc_c8), its name, inverse and -D options; its shared memory as the kernel lays it out (OC columns
    per block); the version's kernel list holds the generic build; earlier versions do not."""
    shape = (49, 320, 1280, 1000, 1)
    name = K.fixed_name("pwpool_fc_c8", shape)
    assert K.fixed_kind("pwpool_fc_c8") == "pwpool_fc" and K.fixed_config("pwpool_fc_c8") == (1,)
    assert name == "pwpool_fc_c8_f49_320_1280_1000_1" and K.fixed_parse(name) == ("pwpool_fc_c8", shape)
    assert K.generic_of(name) == "pwpool_fc_c8" and K.fixed_kind(K.fixed_name("pwpool_c8", shape[:3] + (1,))) is None
    assert K.fixed_defines("pwpool_fc_c8", shape) == [
        "-DPWPOOL_SPEC_ONLY", "-DPWPOOL_FIX_SHAPE", f"-DPWPOOL_SPEC_NAME={name}", "-DPWPOOL_SPEC_CFG_FC=1",
        "-DPWPOOL_HW=49", "-DPWPOOL_K=320", "-DPWPOOL_COUT=1280", "-DPWPOOL_OUT=1000", "-DPWPOOL_ACT=1",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        K.fixed_name("pwpool_fc_c8", (49, 320, 1280, 1))
    src = (KDIR / "cblock.cu").read_text()
    assert "const int OC = 4 * ((OUT + 31) / 32), OC4 = OC / 4;" in src and "#if defined(PWPOOL_SPEC_CFG_FC)" in src
    assert [K.pwpool_fc_oc(o) for o in (1000, 12, 32, 36, 1024)] == [128, 4, 4, 8, 128]
    assert K.pwpool_fc_c8_smem(49, 320, 1000) == 4 * (49 * 44 + 40 * 64 + 64 * 68 + 64 * 128 + 64 + 8 * 128)
    assert ("cblock", "pwpool_fc_c8") in K.kernels_of("fuse", "v31")
    assert ("cblock", "pwpool_fc_c8") not in K.kernels_of("fuse", "v30")
    assert K.head_fc("v31") and not K.head_fc("v30") and not K.head_fc(K.DEFAULT_VERSIONS["fuse"])
    assert K.DEFAULT_VERSIONS["fuse"] == "v51" and not K.head_fc("v34") and not K.head_fc("v35")
    # fuse v38: v36 + this head; not v37's bulk-copy reduce
    assert K.head_fc("v38") and not K.head_fc("v37") and not K.bulk_reduce("v38") and K.proj_order("v38")
    assert ("cblock", "pwpool_fc_c8") in K.kernels_of("fuse", "v38")
    assert [K.head_fc_base(v) for v in ("v31", "v38")] == ["v30", "v36"]
    # every other version predicate of the module (one argument, ``version``) reads v38 as v36
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f not in (K.fuse_level, K.head_fc, K.head_fc_base)]  # fmt: skip
    assert len(preds) > 20 and [f.__name__ for f in preds if f("v38") != f("v36")] == []
    assert set(K.kernels_of("fuse", "v38")) - set(K.kernels_of("fuse", "v36")) == {("cblock", "pwpool_fc_c8")}


def test_fuse_v39_to_v42_version_predicates():
    """fuse v39 = v36 + the EXDWPW6_V39 builds (CE 960 in one cluster of 16 per row tile, 512 threads) as tuner
    candidates, not v38's head; v40 = v39 + the first stage among one-cluster configurations at batch <=
    NG1_MAX_BATCH; v41 = v36 + v40's rule without v39's builds; v42 = v41 + v37's bulk-copy reduce stage (the
    default). Every other version predicate reads v39 - v42 as v36; the only kernel added is v39 / v40's c60x16
    build, and cblock.cu compiles it."""
    assert [K.ng1_builds(v) for v in ("v36", "v38", "v39", "v40", "v41", "v42")] == [0, 0, 1, 1, 0, 0]
    assert [K.ng1_first(v) for v in ("v36", "v39", "v40", "v41", "v42")] == [0, 0, 1, 1, 1]
    assert [K.bulk_reduce(v) for v in ("v36", "v37", "v38", "v39", "v40", "v41", "v42")] == [0, 1, 0, 0, 0, 0, 1]
    assert not any(K.head_fc(v) for v in ("v39", "v40", "v41", "v42")) and K.head_fc("v38") and K.head_fc("v31")
    assert K.DEFAULT_VERSIONS["fuse"] == "v51" and {"v39", "v40", "v41", "v42"} <= set(K.KERNEL_VERSIONS["fuse"])
    own = (K.fuse_level, K.head_fc_base, K.ng1_builds, K.ng1_first, K.bulk_reduce)
    preds = [f for f in vars(K).values() if inspect.isfunction(f) and list(inspect.signature(f).parameters) == [
        "version"] and f not in own]  # fmt: skip
    assert len(preds) > 20
    assert [f.__name__ for f in preds for v in ("v39", "v40", "v41", "v42") if f(v) != f("v36")] == []
    added = {("cblock", K.exdwpw6_kernel(60, 16, 512))}
    for v in ("v39", "v40"):
        assert set(K.kernels_of("fuse", v)) - set(K.kernels_of("fuse", "v36")) == added
    for v in ("v41", "v42"):
        assert set(K.kernels_of("fuse", v)) == set(K.kernels_of("fuse", "v36"))
    assert "EXDWPW6_KERNEL(exdwpw6_c60x16_t512, 60, 16, 512)" in (KDIR / "cblock.cu").read_text()


@pytest.mark.parametrize("v", ["v39", "v40", "v41", "v42"])
def test_fuse_v39_v40_first_stage_candidates(fake_cupy, net, monkeypatch, v):
    """The first exdwpw6 tuner stage at batch 1. v39: v36's candidates plus the c60x16 ones at 512 threads (every row
    tiling whose shared memory fits) on the CE 960 blocks, none at 256 threads, no change on the others. v40: of
    those, only the one-cluster configurations (CE = CH x CL), on every block (each has some). v41 / v42: v36's
    candidates, only the one-cluster ones where the block has any (all but the 7x7 blocks). The recorder takes the
    last candidate: the 7x7 blocks then run c60x16 on v39 / v40; the emulated plan against ONNX Runtime. force_block6
    pins a c60x16 configuration only at 512 threads and only on v39 / v40."""
    from impls.custom import exdwpw6_configs

    _, six36, _, _ = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, "v36")
    be, six, launches, _ = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, v)
    n960 = 0
    for (key, cands, _), (key36, cands36, _), la in zip(six, six36, launches):
        assert key == key36
        _, (nb, h, w, cin), ce, cout, s, *_ = key
        ho = wo = (h - 1) // s + 1
        c60 = [(*c, 512) for c in exdwpw6_configs(h, w, cin, ce, cout, ho, wo, s, v39=True) if c[0] == 60]
        assert all(c[2] == 16 and c[0] * c[2] == ce for c in c60)
        want = cands36 + (c60 if v in ("v39", "v40") else [])
        if ce == 960:
            n960 += 1
            assert c60 and {c[1] for c in c60} == {math.ceil(ho / t) for t in range(1, ho + 1)}, c60
        else:
            assert not c60
        if v != "v39":
            ng1 = [c for c in want if c[0] * c[2] == ce]
            assert ng1 or (ce == 960 and v in ("v41", "v42")), key
            want = ng1 or want
        assert cands == want, (key, cands)
        assert not any(c[0] == 60 and (len(c) < 4 or c[3] != 512) for c in cands), cands
        ch, tr, cl, nt = cands[-1][:4]
        assert K.generic_of(la.name) == K.exdwpw6_kernel(ch, cl, nt), la.name
        assert la.grid == (ce // ch, math.ceil(ho / tr), nb) and la.block[0] == nt, (la.name, la.grid, la.block)
        if ce == 960:
            assert (K.generic_of(la.name) == "exdwpw6_c60x16_t512") == (v in ("v39", "v40")), la.name
    assert n960 == 3
    xin = random_input(net, 1, seed=39)
    ort = impls.create("ort")
    ort.prepare(net)
    assert_close(be.run(xin), ort.run(xin), "fp32", "e2e", what=f"emulated fuse {v} bs1, tuned")
    cfgs = exdwpw6_configs(7, 7, 160, 960, 160, 7, 7, 1, wide=True, v39=True)
    assert (60, 1, 16) in cfgs and (60, 1, 16) not in exdwpw6_configs(7, 7, 160, 960, 160, 7, 7, 1, wide=True)
    c60ok = v in ("v39", "v40")
    for fuse, pin, ok in ((v, (60, 1, 16, 512), c60ok), (v, (60, 1, 16), False), (v, (60, 1, 16, 256), False),
                          ("v36", (60, 1, 16, 512), False), (v, (24, 3, 8, 512), True)):  # fmt: skip
        pinned = fake_cupy.CustomBackend(kernels=f"fuse={fuse}", autotune=False)
        pinned.force_block6 = pin
        got = pinned._pinned6(exdwpw6_configs(7, 7, 160, 960, 160, 7, 7, 1, True, False, K.ng1_builds(fuse)), 160)
        assert (got == pin) == ok, (fuse, pin)


def test_fuse_v40_rule_only_at_batch_1(fake_cupy, net, monkeypatch):
    """fuse v40's (v41 / v42's) one-cluster rule applies at batch <= NG1_MAX_BATCH only: at batch 2 its first stage
    times v39's (v36's) candidates."""
    assert K.NG1_MAX_BATCH == 1
    seen = {}
    for fuse in ("v36", "v39", "v40", "v41", "v42"):
        _, six, _, _ = _tuned_exdwpw6_plan(fake_cupy, monkeypatch, net, fuse, batch=2)
        seen[fuse] = [(key, cands) for key, cands, _ in six]
    assert all(key[1][0] == 2 for key, _ in seen["v36"])
    assert seen["v39"] == seen["v40"] and seen["v36"] == seen["v41"] == seen["v42"]
    assert any(ce != c[0] * c[2] for (_, _, ce, *_), cands in seen["v40"] for c in cands)


def test_tune_picks_replay_a_recorded_plan_untimed(fake_cupy, net, monkeypatch, tmp_path):
    """tune_picks: a backend given another's autotuner picks (``tuned``: as a mapping, a JSON file of it or of
    {"tuned": it}, or MBV2_TUNE_PICKS) plans the same batch-1 launches without timing anything, and info() counts the
    replayed picks; a tuner whose timings differ plans other launches (so the equality is the replay's doing). A pick
    that is not among the candidates, a pytest-benchmark run, a malformed or missing file: InputErrors."""
    import itertools
    import json

    from impls.custom import load_tune_picks
    from mbv2.errors import InputError

    ticks = itertools.count()
    calls = []

    def elapsed(a, b):  # deterministic "times" that vary from candidate to candidate and from backend to backend
        calls.append(1)
        return 1.0 + (next(ticks) * 7919 % 101) / 100.0

    monkeypatch.setattr(cuda, "get_elapsed_time", elapsed)
    monkeypatch.setattr(fake_cupy.CustomBackend, "_launch", lambda self, la: None)  # plans only, nothing emulated

    def planned(**opts):
        be = fake_cupy.CustomBackend(autotune=True, **opts)
        be.TUNE_MIN_FLOP = 0
        be.prepare(net)
        n = len(calls)
        launches = [(la.name, la.grid, la.block, la.smem, [int(a) for a in la.args if isinstance(a, (int, np.integer))])
                    for la in be.plan(1).launches]  # fmt: skip
        return be, launches, len(calls) - n

    a, plan_a, timed_a = planned()
    assert timed_a > 0 and len(a.tuned) == len(a.tune_timed) > 20 and not a.tune_replayed
    assert sum(k.startswith("('exdwpw6'") for k in a.tuned) >= 13 * 2, sorted(a.tuned)[:3]  # every block, later stages
    _, plan_c, _ = planned()  # the tuner again, with other timings: another plan
    assert plan_c != plan_a
    f1, f2 = tmp_path / "picks.json", tmp_path / "wrapped.json"
    f1.write_text(json.dumps(a.tuned))
    f2.write_text(json.dumps({"tuned": a.tuned, "launches": 19}))
    for src in (dict(a.tuned), str(f1), str(f2), "env"):
        if src == "env":
            monkeypatch.setenv("MBV2_TUNE_PICKS", str(f1))
            b, plan_b, timed_b = planned()
        else:
            b, plan_b, timed_b = planned(tune_picks=src)
        assert plan_b == plan_a and timed_b == 0 and not b.tune_timed, (src, b.tune_timed[:3])
        # (a's nested problems, e.g. the GEMMs inside an exdwpw5 candidate that lost, are not needed again)
        assert b.tuned == {k: a.tuned[k] for k in b.tuned} and sorted(b.tune_replayed) == sorted(b.tuned)
        assert len(b.tuned) >= len(a.tuned) - 5
        info = b.info()["tune_picks"]
        assert (info["replayed"], info["recorded"], info["timed"]) == (len(b.tuned), len(a.tuned), 0), info
        assert info["source"] == ("mapping" if isinstance(src, dict) else str(f1) if src == "env" else src), info
    monkeypatch.delenv("MBV2_TUNE_PICKS")
    key = next(k for k in a.tuned if k.startswith("('exdwpw6'") and k.endswith("False)"))
    with pytest.raises(InputError, match="is not among this backend's"):
        planned(tune_picks={**a.tuned, key: "(1, 2, 3)"})
    bad = tmp_path / "bad.json"
    for text, msg in ((json.dumps({"benchmarks": []}), "mbv2 picks"), ("[1, 2]", "expected a JSON object"),
                      (json.dumps({"k": 3}), "expected a JSON object"), ("{", "not readable JSON")):  # fmt: skip
        bad.write_text(text)
        with pytest.raises(InputError, match=msg):
            load_tune_picks(str(bad))
    with pytest.raises(InputError, match="no such file"):
        fake_cupy.CustomBackend(tune_picks=str(tmp_path / "missing.json"))
