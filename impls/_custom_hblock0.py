"""Family "hblock0" (fp16 mode): MobileNetV2's first three convs as one kernel (kernels/block0.cu).

``hblock0=v1`` runs them as the fp16 plan always did: hstem (fp32 NCHW input -> half NHWC), hdepthwise, hgemm.
``hblock0=v2`` runs the three as one ``hblock0_v2_c<C1>_p<C3>`` launch: block0 v3's body (the fp32 family's
kernel, impls/_custom_block0.py) reading the fp32 NCHW upload buffer and storing the projection's output as
half NHWC. Weights and arithmetic are fp32 on chip (the stem's fp32 weights of the fp16 plan; fp32 copies of the
depthwise and projection weights, which the other fp16 kernels take as half): nothing is rounded to half before
the output. ``hblock0=v3`` runs ``hblock0_v3_c<C1>_p<C3>``: the stem and the projection as mma.sync GEMMs (half
operands pre-packed here in the kernel's B-fragment order, ``_v3_params``; fp32 accumulation), the depthwise conv in
half2, dynamic shared memory ``K.hblock0_v3_smem``. ``hblock0=v4``: v3's tile in a persistent loop (grid = SMs x
``K.HBLOCK0_V4_BLOCKS_PER_SM``) prefetching the next tile's input by cp.async. Same criterion as block0 for v2 /
v3 / v4 (``block0_unfit`` + the plan's reader checks); where it does not apply the plan keeps v1 and
``info()["fallbacks"]`` says why.

Functions, not a mixin: ``hblock0_plan`` is the hook of ``HalfMixin._h_plan``; ``hstem_block`` is the op alone
(tests, timing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mbv2.errors import InputError
from mbv2.layers import Conv2d

from . import _custom_kernels as K
from ._custom_block0 import TILE, block0_launch_unfit, block0_ops


def _i32(v: int) -> np.int32:
    return np.int32(v)


def _f32_params(be: Any, stem: Conv2d, dw: Conv2d, pw: Conv2d) -> tuple:
    """(Ws (27, C1), bs, Wd (9, C1), bd, Wp (C1, C3), bp) as float32 device arrays, cached per backend."""
    cache = be.__dict__.setdefault("_hblock0_params", {})
    key = (id(stem), id(dw), id(pw))
    hit = cache.get(key)
    if hit is not None and hit[0] == (stem, dw, pw):
        return hit[1]
    cp = be._cp
    ps = be._h_params(stem)  # the fp16 plan's stem weights are fp32, rows (ky, kx, ci)
    c1, c3 = dw.out_channels, pw.out_channels
    wd = np.asarray(dw.weight, np.float32).reshape(c1, 9).T  # (9, C1)
    wp = np.asarray(pw.weight, np.float32).reshape(c3, c1).T  # (C1, C3)
    arrs = (
        ps["w"],
        ps["bias"],
        cp.asarray(np.ascontiguousarray(wd)),
        cp.asarray(np.ascontiguousarray(np.asarray(dw.bias, np.float32))),
        cp.asarray(np.ascontiguousarray(wp)),
        cp.asarray(np.ascontiguousarray(np.asarray(pw.bias, np.float32))),
    )
    cache[key] = ((stem, dw, pw), arrs)
    return arrs


def mma_b_fragments(b: np.ndarray) -> np.ndarray:
    """B (K, N) of an m16n8k16 GEMM (K % 16 == 0, N % 8 == 0) -> float16 (K / 16, N / 8, 32, 4): per k-step, n-tile
    and lane (g = lane / 4, t = lane % 4) the lane's two B registers (k0, k0 + 1), (k0 + 8, k0 + 9) at k0 = 16 ks + 2 t,
    column n = 8 nt + g (low half first), so the kernel reads them as one uint2 per lane."""
    kk, nn = b.shape
    ks = np.arange(kk // 16)[:, None, None, None]
    nt = np.arange(nn // 8)[None, :, None, None]
    lane = np.arange(32)[None, None, :, None]
    j = np.arange(4)[None, None, None, :]
    k = 16 * ks + 2 * (lane & 3) + (j & 1) + 8 * (j >> 1)
    return np.ascontiguousarray(b[k, 8 * nt + (lane >> 2)].astype(np.float16))


def _v3_params(be: Any, stem: Conv2d, dw: Conv2d, pw: Conv2d) -> tuple:
    """hblock0 v3's (WsF, bs, Wd, bd, WpF, bp): the stem's B fragments (K = tap * 4 + ci, 48 rows, ci = 3 and
    taps >= 9 zero), fp32 biases, the fp16 plan's (9, C1) half depthwise weights, the projection's B fragments
    (K = C1 padded to 16 with zero rows); cached per backend."""
    cache = be.__dict__.setdefault("_hblock0_v3_params", {})
    key = (id(stem), id(dw), id(pw))
    hit = cache.get(key)
    if hit is not None and hit[0] == (stem, dw, pw):
        return hit[1]
    cp = be._cp
    c1, c3 = dw.out_channels, pw.out_channels
    ws = np.asarray(stem.weight, np.float32).transpose(2, 3, 1, 0).reshape(9, 3, c1)  # (tap, ci, C1)
    bst = np.zeros((12, 4, c1), np.float32)
    bst[:9, :3] = ws
    kp = -(-c1 // 16) * 16
    bpw = np.zeros((kp, c3), np.float32)
    bpw[:c1] = np.asarray(pw.weight, np.float32).reshape(c3, c1).T
    arrs = (
        cp.asarray(mma_b_fragments(bst.reshape(48, c1))),
        be._h_params(stem)["bias"],
        be._h_params(dw)["w"],
        be._h_params(dw)["bias"],
        cp.asarray(mma_b_fragments(bpw)),
        be._h_params(pw)["bias"],
    )
    cache[key] = ((stem, dw, pw), arrs)
    return arrs


def hblock0_launch(
    be: Any, x: Any, stem: Conv2d, stem_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, pw_act: bool, out: Any
) -> Any:
    """The hblock0 v2 / v3 / v4 launch of the pinned version (x fp32 NCHW (N, 3, H, W) -> out half NHWC (N, Ho, Wo,
    C3)), or None where it does not apply (the reason goes to the fallback record)."""
    from .custom import Launch

    ver = be.versions["hblock0"]
    why = block0_launch_unfit(be, x, out, stem, dw, pw)
    nb, _, h, w = x.shape
    if why:
        be._fallbacks.add(f"hblock0 {ver} -> v1 ({why})")
        return None
    ho, wo = stem.out_hw(h, w)
    name = K.hblock0_kernel(stem.out_channels, pw.out_channels, ver)
    grid = (math.ceil(ho / TILE) * math.ceil(wo / TILE), nb)
    params = _v3_params(be, stem, dw, pw) if ver in ("v3", "v4") else _f32_params(be, stem, dw, pw)
    acts = (_i32(int(stem_act)), _i32(int(dw_act)), _i32(int(pw_act)))
    if ver == "v2":
        args = (x, *params, out, _i32(h), _i32(w), _i32(ho), _i32(wo), *acts)
        return Launch(name, be._fn(name), grid, (256,), args)
    if ver == "v3":
        smem = K.hblock0_v3_smem(stem.out_channels)
        args = (x, *params, out, _i32(h), _i32(w), _i32(ho), _i32(wo), *acts)
        return Launch(name, be._dyn_smem(be._fn(name), smem), grid, (256,), args, smem=smem)
    # v4: persistent, one block per resident slot (jobs = images x tiles)
    smem = K.hblock0_v4_smem(stem.out_channels)
    grid = (min(grid[0] * nb, be.sms * K.HBLOCK0_V4_BLOCKS_PER_SM[stem.out_channels]),)
    args = (x, *params, out, _i32(nb), _i32(h), _i32(w), _i32(ho), _i32(wo), *acts)
    return Launch(name, be._dyn_smem(be._fn(name), smem), grid, (256,), args, smem=smem)


def hstem_block(
    be: Any,
    x: Any,
    stem: Conv2d,
    dw: Conv2d,
    pw: Conv2d,
    out: Any = None,
    stem_act: bool = True,
    dw_act: bool = True,
    pw_act: bool = False,
) -> Any:
    """fp16 mode: pointwise(ReLU6(depthwise(ReLU6(stem(x))))) on the fp32 NCHW device array x -> half NHWC: one
    hblock0 kernel with hblock0=v2 / v3 / v4 (where it applies), else the three fp16 kernels through temporaries
    (v1)."""
    be._ensure_device()
    if be.dtype != "fp16":
        raise InputError("hstem_block (hblock0) is the fp16 mode's; in fp32 use stem_block")
    be._h_check(x, "hstem_block input (NCHW)", ndim=4, dtype="float32")
    nb, c, h, w = x.shape
    if c != stem.in_channels or dw.in_channels != stem.out_channels or pw.in_channels != dw.out_channels:
        raise InputError(f"hstem_block: stem, depthwise, pointwise on NCHW {x.shape} do not chain")
    sh, sw = stem.out_hw(h, w)
    dh, dwid = dw.out_hw(sh, sw)
    oshape = (nb, *pw.out_hw(dh, dwid), pw.out_channels)
    if out is None:
        out = be._h_empty(oshape)
    else:
        be._h_check_out(out, oshape, "hstem_block out")
    launch = None
    if be.versions["hblock0"] in ("v2", "v3", "v4"):
        launch = hblock0_launch(be, x, stem, stem_act, dw, dw_act, pw, pw_act, out)
    if launch is not None:
        be.launch_all([launch])
        return out
    s = be._h_empty((nb, sh, sw, stem.out_channels))
    d = be._h_empty((nb, dh, dwid, dw.out_channels))
    launches = be._h_conv_launches(x, stem, stem_act, None, s, nchw32=True)
    launches += be._h_conv_launches(s, dw, dw_act, None, d)
    launches += be._h_conv_launches(d, pw, pw_act, None, out)
    be.launch_all(launches)
    be.stream.synchronize()  # the temporaries are freed on return
    return out


def hblock0_plan(be: Any, fused: list, stage_in: Any, stem_direct: bool) -> dict[int, Any]:
    """The hook of the fp16 plan: {op index: builder(y) -> launches} for the network's first three ops when
    hblock0=v2 / v3 / v4 applies (the stem and depthwise ops launch nothing, the projection op launches the one kernel
    reading stage_in); {} otherwise (v1, or a fallback record)."""
    ver = be.versions["hblock0"]
    if ver not in ("v2", "v3", "v4"):
        return {}
    ops, why = block0_ops(fused) if stem_direct else ([], "the stem does not read the network input alone")
    if why:
        be._fallbacks.add(f"hblock0 {ver} -> v1 ({why})")
        return {}
    st, dw, pw = ops

    def build(y: Any) -> list:
        launch = hblock0_launch(be, stage_in, st.layer, st.act, dw.layer, dw.act, pw.layer, pw.act, y)
        if launch is None:  # the plan's buffers are fresh allocations, so aligned: cannot happen
            raise AssertionError("hblock0: a planned buffer is not 16-byte aligned")
        return [launch]

    return {st.index: lambda y: [], dw.index: lambda y: [], pw.index: build}
