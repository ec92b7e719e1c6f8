"""Family "block0" (fp32): MobileNetV2's first three convs as one kernel (kernels/block0.cu).

The network starts with stem conv 3x3 s2 p1 on the 3-channel input (+ ReLU6) -> depthwise 3x3 s1 p1 (+ ReLU6)
-> pointwise projection (no residual). ``block0=v1`` runs them as before (input transpose, stem v3, depthwise
v3, the GEMM); ``block0=v2`` runs the three as one ``block0_v2_c<C1>_p<C3>`` launch that reads the NCHW input
straight from the upload buffer (no transpose launch) and writes only the projection's NHWC output; ``block0=v3``
the same with ``block0_v3_c<C1>_p<C3>`` (2 barriers per channel chunk instead of 4, 3 blocks per SM); ``block0=v4``
where its grid fits one block per SM (batch 1 at 224 on 132 SMs) runs v3's tile on a cluster of 2 blocks
(``block0_v4_c<C1>_p<C3>``): each block the stem / depthwise of half the channel chunks, the projection's partial
sums added through distributed shared memory; v3's kernel elsewhere.

``Block0Mixin`` is mixed into CustomBackend: ``stem_block`` (the public op, testable alone), ``_block0_plan``
(the plan hook) and the launch builder. Where v2 / v3 do not apply (other channel counts, another first block,
stride / padding) the plan keeps the v1 kernels and ``info()["fallbacks"]`` says why. Where it applies, the
first block's stem / depthwise / GEMM versions do not run in the plan: pin ``block0=v1`` to time or test those
end to end (e.g. ``kernels="stem=v1,block0=v1"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mbv2.errors import InputError
from mbv2.layers import Conv2d
from mbv2.network import NETWORK_INPUT

from . import _custom_kernels as K

TILE = 14  # output tile of block0_v2 / v3 (rows = cols), kernels/block0.cu


def _i32(v: int) -> np.int32:
    return np.int32(v)


def block0_unfit(stem: Conv2d, dw: Conv2d, pw: Conv2d) -> str:
    """Why (stem, dw, pw) cannot run as block0 v2 / v3; "" when it can."""
    if not (stem.groups == 1 and stem.in_channels == 3 and stem.kernel == 3 and stem.stride == 2 and stem.pad == 1):
        return "needs a 3x3 stride-2 pad-1 stem conv on 3 channels"
    if not (dw.is_depthwise and dw.kernel == 3 and dw.stride == 1 and dw.pad == 1):
        return "needs a 3x3 stride-1 pad-1 depthwise conv after the stem"
    if not (pw.is_pointwise and dw.in_channels == stem.out_channels and pw.in_channels == dw.out_channels):
        return "needs stem -> depthwise -> pointwise channels that chain"
    if (stem.out_channels, pw.out_channels) not in K.BLOCK0_SHAPES:
        shapes = ", ".join(f"{a}->{b}" for a, b in K.BLOCK0_SHAPES)
        return f"stem channels -> projection channels {stem.out_channels}->{pw.out_channels} not in ({shapes})"
    return ""


def block0_launch_unfit(be: Any, x: Any, out: Any, stem: Conv2d, dw: Conv2d, pw: Conv2d) -> str:
    """Why one block0 / hblock0 launch cannot take these layers and arrays (x NCHW), "" if it can."""
    why = block0_unfit(stem, dw, pw)
    if not why and x.shape[0] > 65535:
        why = f"batch {x.shape[0]} exceeds the grid limit 65535"
    if not why and not be._aligned(x, out):
        why = "unaligned arrays"
    return why


def block0_ops(fused: list) -> tuple[list, str]:
    """The network's first three ops when block0 / hblock0 can run them as one kernel (stem -> depthwise ->
    projection, no residual, each output read by the next op alone, shapes block0_unfit accepts), with "";
    else ([], why not)."""
    ops = fused[:3]

    def readers(i: int) -> list:
        return [o for o in fused if o.input == i or o.residual == i]

    if len(ops) < 3 or any(op.kind != "conv" or op.residual is not None for op in ops):
        return [], "the network does not start with three convs without residual"
    if not (ops[0].input == NETWORK_INPUT and readers(ops[0].index) == [ops[1]]):
        return [], "the stem output is not read by the next op alone"
    if readers(ops[1].index) != [ops[2]]:
        return [], "the depthwise output is not read by the next op alone"
    why = block0_unfit(ops[0].layer, ops[1].layer, ops[2].layer)
    return ([], why) if why else (ops, "")


class Block0Mixin:
    """block0 v2 / v3 / v4 for CustomBackend (fp32)."""

    block0_occ2 = False  # v3 at 2 blocks per SM (block0_v3_c32_p16_occ2) for MobileNetV2-1.0's shape: timing only
    # v4: None = the cluster kernel where its grid (2 blocks per tile) fits one block per SM, v3's kernel elsewhere;
    # True / False = always / never (tests, timing)
    block0_split: bool | None = None
    block0_k4 = False  # v4 on clusters of 4 (block0_v4_c32_p16_k4) for MobileNetV2-1.0's shape: timing only

    def _block0_launch(
        self, x: Any, stem: Conv2d, stem_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, pw_act: bool, out: Any
    ) -> Any:
        """The one-kernel launch of the pinned version (v2 / v3 / v4; x NCHW (N, 3, H, W) -> out NHWC (N, Ho, Wo, C3)),
        or None where it does not apply (the reason goes to the fallback record)."""
        from .custom import Launch

        why = block0_launch_unfit(self, x, out, stem, dw, pw)
        nb, _, h, w = x.shape
        if why:
            self._fallbacks.add(f"block0 {self.versions['block0']} -> v1 ({why})")
            return None
        ps, pd, pp = self._layer_params(stem), self._layer_params(dw), self._layer_params(pw)
        ho, wo = stem.out_hw(h, w)
        ver = self.versions["block0"]
        tiles = math.ceil(ho / TILE) * math.ceil(wo / TILE)
        ks = 1
        if ver == "v4":
            # the split where its grid (2 x v3's) still fits one block per SM: batch 1 at 224 (H200, session 20:
            # block0 9.0 -> 7.9 us, e2e -1.1 us; at batch 2, 256 blocks, no gain)
            split = 2 * tiles * nb <= self.sms if self.block0_split is None else self.block0_split
            if split:
                ks = 4 if self.block0_k4 and (stem.out_channels, pw.out_channels) == (32, 16) else 2
            else:
                ver = "v3"
        name = K.block0_kernel(stem.out_channels, pw.out_channels, ver) + ("_k4" if ks == 4 else "")
        if ver == "v3" and self.block0_occ2 and (stem.out_channels, pw.out_channels) == (32, 16):
            name += "_occ2"
        grid = (ks * tiles, nb)  # v4: clusters of ks blocks along x (__cluster_dims__), one per tile
        args = (x, ps["wt"], ps["bias"], pd["w"], pd["bias"], pp["wt"], pp["bias"], out)
        args += (_i32(h), _i32(w), _i32(ho), _i32(wo), _i32(int(stem_act)), _i32(int(dw_act)), _i32(int(pw_act)))
        return Launch(name, self._fn(name), grid, (256,), args)

    def stem_block(
        self,
        x: Any,
        stem: Conv2d,
        dw: Conv2d,
        pw: Conv2d,
        out: Any = None,
        stem_act: bool = True,
        dw_act: bool = True,
        pw_act: bool = False,
    ) -> Any:
        """pointwise(ReLU6(depthwise(ReLU6(stem(x))))) on an NCHW device input x (N, 3, H, W) -> NHWC output:
        one block0 kernel with block0=v2 / v3 / v4 (where it applies), else the layout kernel and the three layers'
        own kernels through temporaries (block0 v1)."""
        self._ensure_device()
        if self.dtype != "fp32":
            raise InputError("stem_block (block0) is fp32 only; in fp16 mode run conv2d three times")
        self._check_dev(x, "stem_block input (NCHW)", ndim=4)
        nb, c, h, w = x.shape
        if c != stem.in_channels or dw.in_channels != stem.out_channels or pw.in_channels != dw.out_channels:
            raise InputError(
                f"stem_block: conv {stem.in_channels}->{stem.out_channels}, depthwise {dw.in_channels}, pointwise "
                f"{pw.in_channels}->{pw.out_channels} on NCHW {x.shape} do not chain"
            )
        sh, sw = stem.out_hw(h, w)
        dh, dwid = dw.out_hw(sh, sw)
        oshape = (nb, *pw.out_hw(dh, dwid), pw.out_channels)
        if min(sh, sw, *oshape[1:3]) < 1:
            raise InputError(f"stem_block: input {h}x{w} is too small")
        if out is None:
            out = self._empty(oshape)
        else:
            self._check_out(out, oshape, "stem_block out")
        launch = None
        if self.versions["block0"] in ("v2", "v3", "v4"):
            launch = self._block0_launch(x, stem, stem_act, dw, dw_act, pw, pw_act, out)
        if launch is not None:
            self.launch_all([launch])
            return out
        x0 = self._empty((nb, h, w, c))
        s = self._empty((nb, sh, sw, stem.out_channels))
        d = self._empty((nb, dh, dwid, dw.out_channels))
        need = self._needs_scratch(stem, x0.shape)
        scratch = self._empty((need,)) if need else None
        launches = [self._transpose_launch(x, x0, nb, c, h * w)]
        launches += self._conv_launches(x0, stem, stem_act, None, s, scratch)
        launches += self._conv_launches(s, dw, dw_act, None, d)
        launches += self._conv_launches(d, pw, pw_act, None, out)
        self.launch_all(launches)
        self.stream.synchronize()  # the temporaries are freed on return
        return out

    def _block0_plan(self, fused: list, stage_in: Any) -> dict[int, Any]:
        """The plan hook: {op index: builder(y) -> launches} for the network's first three ops when block0=v2/v3/v4
        applies (the stem and depthwise ops launch nothing, the projection op launches the one kernel reading
        stage_in, and the plan drops its input transpose); {} otherwise."""
        if self.versions["block0"] not in ("v2", "v3", "v4"):
            return {}
        ops, why = block0_ops(fused)
        if why:
            self._fallbacks.add(f"block0 {self.versions['block0']} -> v1 ({why})")
            return {}
        st, dw, pw = ops

        def build(y: Any) -> list:
            launch = self._block0_launch(stage_in, st.layer, st.act, dw.layer, dw.act, pw.layer, pw.act, y)
            if launch is None:  # the plan's buffers are fresh allocations, so aligned: cannot happen
                raise AssertionError("block0: a planned buffer is not 16-byte aligned")
            return [launch]

        return {st.index: lambda y: [], dw.index: lambda y: [], pw.index: build}
