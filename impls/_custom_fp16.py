"""The custom backend's fp16 mode (``CustomBackend(dtype="fp16")``): kernels/half.cu on tensor cores.

Mixed into ``CustomBackend``; every method here runs only when ``self.dtype == "fp16"`` (the fp32
path never reaches it). Storage and arithmetic (kernels/half.cu header): activations NHWC __half,
weights __half (the stem's fp32), biases fp32, fp32 accumulation, the logits fp32.

Device arrays in fp16 mode: a 4-D array is NHWC float16; a 2-D (N, F) activation is float16; the
classifier's output is float32. ``to_device`` converts a float32 NCHW / (N, F) host batch to float16
on the GPU; ``to_host`` gives float32 NCHW / (N, F) back for a float16 or float32 device array.
In the network plan the stem reads the float32 NCHW input straight from the upload buffer (no
transpose, no conversion kernel).

Families (impls/_custom_kernels.py): hgemm (v1 SIMT, v2 mma.sync tensor cores, v3 v2 + staged epilogue,
v4 autotuned v3 / small-K persistent / split-K: impls/_custom_hgemm_v4.py),
hdepthwise (v1 direct, v2 8 channels per 16-byte load, v3 v2 with the whole window loaded up front and
(TW, TH) tiles), hstem (v1 direct, v2 / v3 3x3x3 from fp32 NCHW, v4 v3 + smem-staged coalesced stores),
hpool v1, hlinear v1, hfuse (v1 none, v2 hexdw: expansion 1x1 conv on tensor cores inside the 3x3 depthwise
conv that reads it, for the pairs fp32's fuse v3/v4 takes: ``CustomBackend._exdw_fusable``; v3 hexdw3: v2 with
the depthwise phase in half2 arithmetic, register-blocked; v4 hexdwpw4: v3 + the projection 1x1 (+ residual) in the
same kernel, the whole small-CIN bottleneck block, tuned per block against v3's pair + projection GEMM),
hblock0 (v1 the first three convs as hstem / hdepthwise / hgemm, v2 the three as one kernel reading the fp32
NCHW input, fp32 on chip, half output: impls/_custom_hblock0.py, the plan hook below).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mbv2.errors import InputError
from mbv2.layers import Conv2d, Linear
from mbv2.network import NETWORK_INPUT

from . import _custom_kernels as K
from ._custom_hblock0 import hblock0_plan

STEM_SMEM_MAX = 48 * 1024
HDW3_V3_MIN_THREADS = 256  # hdepthwise v3: threads per SM below which a smaller tile is taken (as v2)
HEXDW_FALLBACK = "hfuse {} -> v1 (needs CIN in EXDW_CIN, Ce % 8 == 0, a 3x3 s1/s2 depthwise, 16-byte aligned)"
HEXDW_VERSIONS = ("v2", "v3", "v4")  # hfuse versions that run an expansion inside the depthwise kernel
HEXDW3_VERSIONS = ("v3", "v4")  # hfuse versions whose pair kernel is hexdw3
HEXDWPW4_FALLBACK = "hfuse v4 -> v3 (no hexdwpw4 instance for this block shape, or unaligned; K.HEXDWPW4_INSTANCES)"
HEXDW_MIN_BLOCKS = 2  # hfuse v2: blocks per SM below which the smaller tile / expanded-channel groups are taken


def choose_hgemm_tile(m: int, n: int, k: int, tiles: tuple, sms: int) -> tuple[int, int]:
    """Tile (BM, BN) of the tensor-core GEMM: the busiest SM's share of padded tile area, plus a
    per-block cost of staging (BM + BN) rows per k-step (big tiles reuse more, small ones fill the
    SMs at batch 1 / 7x7)."""
    best, best_cost = tiles[0], math.inf
    for tile in tiles:
        bm, bn = tile
        blocks = math.ceil(m / bm) * math.ceil(n / bn)
        per_sm = math.ceil(blocks / sms)
        cost = per_sm * (bm * bn + 4.0 * (bm + bn)) * math.ceil(k / 32)
        if cost < best_cost:
            best, best_cost = tile, cost
    return best


def _i32(v: int) -> np.int32:
    return np.int32(v)


def _i64(v: int) -> np.int64:
    return np.int64(v)


class HalfMixin:
    """fp16 launch builders, ops and plan of CustomBackend (see the module docstring)."""

    # -- weights ------------------------------------------------------------------------------------
    def _h_params(self, layer: Conv2d | Linear) -> dict[str, Any]:
        hit = self._params.get(id(layer))
        if hit is not None and hit[0] is layer:
            return hit[1]
        cp = self._cp
        h = np.float16
        p: dict[str, Any] = {"bias": cp.asarray(np.ascontiguousarray(layer.bias, np.float32))}
        w = np.asarray(layer.weight, np.float32)
        if isinstance(layer, Linear):
            if w.shape != (layer.out_features, layer.in_features):
                raise InputError(f"Linear weight shape {w.shape}, expected {(layer.out_features, layer.in_features)}")
            p["w"] = cp.asarray(np.ascontiguousarray(w.astype(h)))  # (OUT, IN): GEMV rows and the GEMM's B
        else:
            cout, cin, k, g = layer.out_channels, layer.in_channels, layer.kernel, layer.groups
            if w.shape != (cout, cin // g, k, k):
                raise InputError(f"Conv2d weight shape {w.shape}, expected {(cout, cin // g, k, k)}")
            if layer.is_pointwise:
                p["kind"] = "pointwise"
                p["w"] = cp.asarray(np.ascontiguousarray(w.reshape(cout, cin).astype(h)))  # (Cout, Cin) = B (N, K)
            elif layer.is_depthwise:
                if k != 3:
                    raise InputError(f"depthwise conv with kernel {k}: only 3x3 is implemented")
                p["kind"] = "depthwise"
                p["w"] = cp.asarray(np.ascontiguousarray(w.reshape(cout, 9).T.astype(h)))  # (9, C)
            elif g == 1:
                p["kind"] = "stem"
                p["w"] = cp.asarray(np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(k * k * cin, cout)))
            else:
                raise InputError(f"grouped conv with groups={g} (not depthwise) is not implemented")
        self._params[id(layer)] = (layer, p)
        return p

    # -- checks and buffers --------------------------------------------------------------------------
    def _h_check(self, a: Any, what: str, ndim: int | None = None, dtype: str = "float16") -> None:
        cp = self._cp
        if not isinstance(a, cp.ndarray):
            if isinstance(a, np.ndarray):
                raise InputError(f"{what}: got a host NumPy array; pass a device array from backend.to_device()")
            raise InputError(f"{what}: expected a CuPy device array, got {type(a).__name__}")
        if a.dtype != np.dtype(dtype):
            hint = " (fp16 mode: activations are float16, from backend.to_device())" if dtype == "float16" else ""
            raise InputError(f"{what}: dtype {a.dtype}, expected {dtype}{hint}")
        if not a.flags.c_contiguous:
            raise InputError(f"{what}: array is not C-contiguous (shape {a.shape}, strides {a.strides})")
        if ndim is not None and a.ndim != ndim:
            layout = {4: "NHWC (N, H, W, C)", 2: "(N, F)"}.get(ndim, f"rank {ndim}")
            raise InputError(f"{what}: shape {a.shape} has rank {a.ndim}, expected {layout}")
        if a.size == 0:
            raise InputError(f"{what}: empty array {a.shape}")

    def _h_check_out(self, out: Any, shape: tuple[int, ...], what: str, dtype: str = "float16") -> None:
        self._h_check(out, what, dtype=dtype)
        if tuple(out.shape) != tuple(shape):
            raise InputError(f"{what}: shape {tuple(out.shape)}, expected {tuple(shape)}")

    def _h_empty(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        cp = self._cp
        with self.stream:
            out = cp.empty(shape, cp.float16 if dtype is None else dtype)
            if self.debug:
                out.fill(np.nan)
        return out

    def _grid1(self, work: int) -> tuple[int]:
        return (max(1, min(math.ceil(work / 256), self.sms * 32)),)

    # -- launch builders -------------------------------------------------------------------------------
    def _h_gemm(
        self, a: Any, b: Any, c: Any, bias: Any, r: Any, m: int, n: int, k: int, act: bool, f32_out: bool = False
    ) -> list:
        """C (M, N) = epi(A (M, K) @ B (N, K)^T): hgemm v2 (tensor cores) where K, N % 8 == 0 and the
        operands are 16-byte aligned, else hgemm v1."""
        from .custom import Launch

        has_res = r is not None
        args = (a, b, c, bias, r if has_res else a, _i32(m), _i32(n), _i32(k), _i32(int(act)), _i32(int(has_res)))
        arrays = [a, b, c] + ([r] if has_res else [])
        ver = self.versions["hgemm"]
        if ver != "v1" and not (k % 8 == 0 and n % 8 == 0 and self._aligned(*arrays)):
            self._fallbacks.add(f"hgemm {ver} -> v1 (needs K % 8 == 0, N % 8 == 0, 16-byte aligned)")
            ver = "v1"
        if ver == "v1":
            name = "hgemm_v1_f32" if f32_out else "hgemm_v1"
            grid = (math.ceil(m / 16) * math.ceil(n / 16),)
            return [Launch(name, self._fn(name), grid, (16, 16), args)]
        if ver == "v4" and not f32_out:  # the fp32-output classifier keeps the v2 kernels below
            from ._custom_hgemm_v4 import hgemm_v4_launches

            return hgemm_v4_launches(self, a, b, c, bias, r, m, n, k, act)
        tiles = K.HGEMM_TILES_F32 if f32_out else K.HGEMM_TILES

        def build(tile: tuple[int, int]) -> list:
            bm, bn = tile
            name = K.hgemm_kernel(tile, f32_out, ver)
            grid = (math.ceil(m / bm) * math.ceil(n / bn),)
            return [Launch(name, self._fn(name), grid, (K.HGEMM_THREADS[tile],), args)]

        model = choose_hgemm_tile(m, n, k, tuple(tiles), self.sms)
        if self.autotune and 2.0 * m * n * k >= self.TUNE_MIN_FLOP:
            key = ("hgemm", ver, f32_out, m, n, k, bool(act), has_res)
            return self._tuned(key, tuple(tiles), build, model)
        return build(model)

    def _h_conv_launches(self, x: Any, layer: Conv2d, act: bool, res: Any, out: Any, nchw32: bool = False) -> list:
        """Launches of one conv. ``nchw32``: x is the float32 NCHW network input (stems only)."""
        from .custom import Launch

        p = self._h_params(layer)
        if nchw32:
            nb, cin, h, w = x.shape
        else:
            nb, h, w, cin = x.shape
        ho, wo = layer.out_hw(h, w)
        cout = layer.out_channels
        has_res = res is not None
        rr = res if has_res else out
        flags = (_i32(int(act)), _i32(int(has_res)))
        if p["kind"] == "pointwise" and not nchw32:
            return self._h_gemm(x, p["w"], out, p["bias"], res, nb * h * w, cout, cin, act)
        if p["kind"] == "depthwise" and not nchw32:
            return [self._h_dw_launch(x, p, layer, act, rr, has_res, out, nb, h, w, cin, ho, wo)]
        if p["kind"] != "stem":
            raise AssertionError("only a stem conv reads the float32 NCHW input")
        k, s, pad = layer.kernel, layer.stride, layer.pad
        fits = 27 * cout * 4 <= STEM_SMEM_MAX
        stem3 = cin == 3 and k == 3 and cout % 8 == 0 and fits
        if not nchw32 and self.versions["hstem"] == "v5":  # the op on a half NHWC input: v3's kernel too
            if stem3 and self._aligned(p["bias"], out, rr):
                args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, ho, wo, cout, s, pad)), *flags)
                grid = (math.ceil(nb * ho * wo / 256),)
                return [
                    Launch("hstem3x3c3_v3_nhwc16", self._fn("hstem3x3c3_v3_nhwc16"), grid, (256,), args, 27 * cout * 4)
                ]
            self._fallbacks.add("hstem v5 -> v1 on a half NHWC input (needs Cin = 3, 3x3, Cout % 8 == 0, aligned)")
        if nchw32 and self.versions["hstem"] in ("v2", "v3", "v4", "v5"):
            if stem3 and self._aligned(p["bias"], out, rr):
                smem4 = 27 * cout * 4 + 256 * cout * 2  # v4: weights + the staged output tile
                if self.versions["hstem"] == "v4" and smem4 <= STEM_SMEM_MAX:
                    args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, ho, wo, cout, s, pad)), *flags)
                    name = "hstem3x3c3_v4_nchw32"
                    return [Launch(name, self._fn(name), (math.ceil(nb * ho * wo / 256),), (256,), args, smem4)]
                v3 = self.versions["hstem"] in ("v3", "v4", "v5")  # v3: a thread per pixel, v2: per (pixel, 8 ch)
                total = nb * ho * wo * (1 if v3 else cout // 8)
                args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, ho, wo, cout, s, pad)), *flags)
                grid = (math.ceil(total / 256),)
                name = "hstem3x3c3_v3_nchw32" if v3 else "hstem3x3c3_nchw32"
                return [Launch(name, self._fn(name), grid, (256,), args, 27 * cout * 4)]
            self._fallbacks.add(f"hstem {self.versions['hstem']} -> v1 (needs Cin = 3, 3x3, Cout % 8 == 0)")
        name = "hconv_direct_nchw32" if nchw32 else "hconv_direct_nhwc"
        args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, cin, ho, wo, cout, k, s, pad)), *flags)
        return [Launch(name, self._fn(name), self._grid1(nb * ho * wo * cout), (256,), args)]

    def _h_dw_launch(self, x, p, layer, act, rr, has_res, out, nb, h, w, c, ho, wo) -> Any:
        from .custom import Launch

        s, pad = layer.stride, layer.pad
        flags = (_i32(int(act)), _i32(int(has_res)))
        ver = self.versions["hdepthwise"]
        if ver != "v1" and not (s in (1, 2) and c % 8 == 0 and self._aligned(x, out, p["w"], p["bias"], rr)):
            self._fallbacks.add(f"hdepthwise {ver} -> v1 (needs stride 1/2, C % 8 == 0, 16-byte aligned)")
            ver = "v1"
        if ver == "v1":
            args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, c, ho, wo, s, pad)), *flags)
            return Launch("hdw3_v1", self._fn("hdw3_v1"), self._grid1(nb * ho * wo * c), (256,), args)
        tile = self._hdw3_v3_tile(s, nb, ho, wo, c) if ver in ("v3", "v4") else None
        if ver == "v4" and self.hdw3_v3_force is None:
            tile, ver = self._hdw3_v4_tile(s, nb, ho, wo, c)
        if tile is not None:  # else v3 / v4 launch v2's kernel (stride 2 on maps above 14x14: measured faster)
            tw, th = tile
            name = K.hdw3_v3_kernel(s, tile, ver)
            total = nb * math.ceil(ho / th) * math.ceil(wo / tw) * (c // 8)
            args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, c, ho, wo, pad)), *flags)
            return Launch(name, self._fn(name), (math.ceil(total / 256),), (256,), args)
        tw = 4 if s == 1 else 2
        name = f"hdw3_v2_s{s}"
        if nb * ho * math.ceil(wo / tw) * (c // 8) < self.sms * 256:  # too few threads: one output each
            tw, name = 1, name + "_tw1"
        total = nb * ho * math.ceil(wo / tw) * (c // 8)
        args = (x, p["w"], p["bias"], rr, out, *map(_i32, (nb, h, w, c, ho, wo, pad)), *flags)
        return Launch(name, self._fn(name), (math.ceil(total / 256),), (256,), args)

    # hdepthwise v3: (TW, TH) forced for every layer (timing sweeps and tests), else the choice below
    hdw3_v3_force: tuple[int, int] | None = None

    def _hdw3_v3_tile(self, s: int, nb: int, ho: int, wo: int, c: int) -> tuple[int, int] | None:
        """(TW, TH) of hdepthwise v3, or None for v2's kernel. Measured on H100 (results/NOTES.md,
        "hdepthwise v3"): stride 1, the 4-output tile (w4h1 or w2h2) that computes the fewest padded
        outputs (w4h1 on ties: 112, 56, 28, 7 wide maps; w2h2 on 14x14), while the grid keeps
        >= HDW3_V3_MIN_THREADS threads per SM, else w2h1 (batch 1), w1h1 on the tiniest grids; stride 2:
        w1h2 on even output maps up to 14x14 (the 28x28 -> 14x14 layer), w2h1 where the grid is small
        (batch 1: it beat v2's _tw1), v2's kernel on the larger maps (v3 lost there)."""
        if self.hdw3_v3_force is not None:
            return self.hdw3_v3_force
        enough = self.sms * HDW3_V3_MIN_THREADS

        def threads(tw: int, th: int) -> int:
            return nb * math.ceil(ho / th) * math.ceil(wo / tw) * (c // 8)

        if s == 2:
            if ho <= 14 and ho % 2 == 0 and threads(1, 2) >= enough:
                return 1, 2
            return (2, 1) if threads(2, 1) < enough else None  # small grids (batch 1): w2h1 beat v2's _tw1
        big = [t for t in ((4, 1), (2, 2)) if threads(*t) >= enough]
        if big:
            return min(big, key=lambda t: threads(*t))  # fewest padded outputs; w4h1 first on ties
        return (2, 1) if threads(2, 1) >= enough // 4 else (1, 1)

    def _hdw3_v4_tile(self, s: int, nb: int, ho: int, wo: int, c: int) -> tuple[tuple[int, int] | None, str]:
        """(tile, kernel version) of hdepthwise v4. Measured on H100 at batch 64 / 256 (results/NOTES.md,
        "hdepthwise v4"): the half2 kernels win with w2h2 at stride 1 (80 registers, 3 blocks per SM: ahead of
        w4h1 on every map, 7x7 included) and w2h1 at stride 2 (ahead of v2's kernel on the larger maps too).
        Where the grid is small (batch 1; not measured for v4) v3's choice and kernels, unchanged."""
        enough = self.sms * HDW3_V3_MIN_THREADS
        tile = (2, 2) if s == 1 else (2, 1)
        if nb * math.ceil(ho / tile[1]) * math.ceil(wo / tile[0]) * (c // 8) >= enough:
            return tile, "v4"
        return self._hdw3_v3_tile(s, nb, ho, wo, c), "v3"

    # hfuse v2 / v3: (T, chunks per block[, v3 build's blocks per SM]) forced for every pair (timing sweeps and
    # tests), else the choice below
    hexdw_force: tuple[int, ...] | None = None

    def _hexdw_shape(self, s: int, nb: int, ho: int, wo: int, ce: int) -> tuple[int, int]:
        """(T, chunks of 32 expanded channels per block) of hfuse v2: the largest T x T output tile of the
        stride (K.HEXDW_TILES) whose grid keeps >= HEXDW_MIN_BLOCKS blocks per SM with every block looping
        over all chunks (input patch staged once); else the smallest tile with the chunks split over
        blocks until the grid is that large (batch 1)."""
        chunks = math.ceil(ce / 32)
        if self.hexdw_force is not None:
            t, cpb = self.hexdw_force[:2]
            return t, max(1, min(cpb, chunks))
        want = self.sms * HEXDW_MIN_BLOCKS
        tiles = K.HEXDW_TILES[s]
        for t in tiles:
            if nb * math.ceil(ho / t) * math.ceil(wo / t) >= want:
                return t, chunks
        t = tiles[-1]
        groups = min(chunks, math.ceil(want / (nb * math.ceil(ho / t) * math.ceil(wo / t))))
        return t, math.ceil(chunks / groups)

    def _h_exdw_launch(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, out: Any, shape: Any = None
    ) -> Any:
        """depthwise(act(expand(x))) as one hexdw kernel (hfuse v2; hexdw3 with v3), or None where it does not
        apply; ``shape`` (T, chunks per block[, v3 build's blocks per SM]) overrides ``_hexdw_shape``."""
        from .custom import Launch

        nb, h, w, cin = x.shape
        ce = ex.out_channels
        if not (self._exdw_fusable(ex, dw) and cin == ex.in_channels and ce % 8 == 0 and nb <= 65535):
            return None
        pe, pd = self._h_params(ex), self._h_params(dw)
        if not self._aligned(x, out, pe["w"], pe["bias"], pd["w"], pd["bias"]):
            return None
        ho, wo = dw.out_hw(h, w)
        if shape is None:
            shape = self._hexdw_shape(dw.stride, nb, ho, wo, ce)
            if self.hexdw_force is not None:
                shape = (*shape, *self.hexdw_force[2:])
        t, cpb = shape[:2]
        grid = (math.ceil(ho / t) * math.ceil(wo / t), math.ceil(math.ceil(ce / 32) / cpb), nb)
        if self.versions["hfuse"] in HEXDW3_VERSIONS:
            name = K.hexdw3_kernel(dw.stride, t, cin, shape[2] if len(shape) > 2 else 3)
        else:
            name = K.hexdw_kernel(dw.stride, t, cin)
        ints = map(_i32, (h, w, ce, ho, wo, dw.pad, int(ex_act), int(dw_act), cpb))
        args = (x, pe["w"], pe["bias"], pd["w"], pd["bias"], out, *ints)
        return Launch(name, self._fn(name), grid, (256,), args)

    def _h_exdw_pair_launches(self, x: Any, exop: Any, dwop: Any, mid: Any, out: Any) -> list:
        """A fused pair of the fp16 plan (hfuse v2 / v3): the hexdw kernel (``_hexdw_shape``'s tile); where the
        problem is >= TUNE_MIN_FLOP and autotune is on, that tile, the other tiles with all chunks per block
        (v3: each in both builds, 3 and 2 blocks per SM) and the two layers' own kernels through the
        expansion's buffer ``mid`` are timed at plan time and the fastest kept (``tuned`` shows the choice);
        the two kernels where hexdw does not apply (a recorded fallback)."""
        ex, dw = exop.layer, dwop.layer

        def two() -> list:
            first = self._h_conv_launches(x, ex, exop.act, None, mid)
            return first + self._h_conv_launches(mid, dw, dwop.act, None, out)

        fused = self._h_exdw_launch(x, ex, exop.act, dw, dwop.act, out)
        ver = self.versions["hfuse"]
        if fused is None:
            self._fallbacks.add(HEXDW_FALLBACK.format(ver))
            return two()
        nb, h, w, cin = x.shape
        if self.hexdw_force is not None or not (
            self.autotune and 2.0 * nb * h * w * cin * ex.out_channels >= self.TUNE_MIN_FLOP
        ):
            return [fused]
        ho, wo = dw.out_hw(h, w)
        model = self._hexdw_shape(dw.stride, nb, ho, wo, ex.out_channels)
        chunks = math.ceil(ex.out_channels / 32)
        cands = [model] + [(t, chunks) for t in K.HEXDW_TILES[dw.stride] if (t, chunks) != model]
        if ver in HEXDW3_VERSIONS:
            cands += [(*c, occ) for c in list(cands) for occ in K.HEXDW3_OCC if occ != 3]
        cands += ["two kernels"]

        def build(cand: Any) -> list:
            if cand == "two kernels":
                return two()
            return [self._h_exdw_launch(x, ex, exop.act, dw, dwop.act, out, shape=cand)]

        key = ("hfuse", ver, tuple(x.shape), ex.out_channels, dw.stride, dw.pad, bool(exop.act), bool(dwop.act))
        return self._tuned(key, tuple(cands), build, model)

    # hfuse v4: the block kernel's tile T forced (tests, timing sweeps), else the choice in _h_block_launches
    hexdwpw4_force: int | None = None

    def _h_block_tiles(self, x: Any, ex: Conv2d, dw: Conv2d, pw: Conv2d, res: Any, out: Any) -> list[int]:
        """Tiles T of the compiled hexdwpw4 instances (K.HEXDWPW4_INSTANCES) that apply to this block, largest
        first; [] where none does (shape, alignment)."""
        nb, h, w, cin = x.shape
        ce = ex.out_channels
        if not (
            self._exdw_fusable(ex, dw)
            and pw.is_pointwise
            and pw.in_channels == dw.out_channels
            and cin == ex.in_channels
            and ce % 8 == 0
            and nb <= 65535
        ):
            return []
        pe, pd, pp = self._h_params(ex), self._h_params(dw), self._h_params(pw)
        arrays = [x, out, pe["w"], pe["bias"], pd["w"], pd["bias"], pp["w"], pp["bias"]]
        if not self._aligned(*arrays, *([] if res is None else [res])):
            return []
        key = (dw.stride, cin, pw.out_channels)
        return sorted((t for s, t, c, co in K.HEXDWPW4_INSTANCES if (s, c, co) == key), reverse=True)

    def _h_block_launch(
        self, x: Any, ex: Conv2d, ex_act: bool, dw: Conv2d, dw_act: bool, pw: Conv2d, act: bool, res: Any, out: Any,
        tile: int,
    ) -> Any:  # fmt: skip
        """project(act(depthwise(act(expand(x))))) (+ res) as one hexdwpw4 kernel with a T x T output tile (hfuse
        v4; the tile must be one of ``_h_block_tiles``)."""
        from .custom import Launch

        nb, h, w, cin = x.shape
        ho, wo = dw.out_hw(h, w)
        pe, pd, pp = self._h_params(ex), self._h_params(dw), self._h_params(pw)
        name = K.hexdwpw4_kernel(dw.stride, tile, cin, pw.out_channels)
        smem = K.hexdwpw4_smem(dw.stride, tile, cin)
        grid = (math.ceil(ho / tile) * math.ceil(wo / tile), 1, nb)
        flags = (int(ex_act), int(dw_act), int(act), int(res is not None))
        ints = map(_i32, (h, w, ex.out_channels, ho, wo, dw.pad, *flags))
        r = out if res is None else res
        args = (x, pe["w"], pe["bias"], pd["w"], pd["bias"], pp["w"], pp["bias"], r, out, *ints)
        return Launch(name, self._dyn_smem(self._fn(name), smem), grid, (256,), args, smem=smem)

    def _h_block_launches(self, x: Any, exop: Any, dwop: Any, pwop: Any, res: Any, mid_ex: Any, mid_dw: Any, out: Any):
        """A fused bottleneck block of the fp16 plan (hfuse v4): the hexdwpw4 block kernel or v3's pair (hexdw3 or the
        two kernels, itself tuned) + the projection hgemm through ``mid_dw``, whichever is faster (autotuned at
        >= TUNE_MIN_FLOP: every applicable tile and the pair; ``tuned`` shows the choice). Without timing (batch 1,
        captures) a model as fp32's fuse v5: the block kernel (largest tile with >= SMs blocks, else the smallest)
        when its grid has >= SMs / 3 blocks, else the pair."""
        ex, dw, pw = exop.layer, dwop.layer, pwop.layer
        tiles = self._h_block_tiles(x, ex, dw, pw, res, out)

        def build(cand: Any) -> list:
            if cand == "pair":
                first = self._h_exdw_pair_launches(x, exop, dwop, mid_ex, mid_dw)
                return first + self._h_conv_launches(mid_dw, pw, pwop.act, res, out)
            return [self._h_block_launch(x, ex, exop.act, dw, dwop.act, pw, pwop.act, res, out, cand)]

        if not tiles:
            self._fallbacks.add(HEXDWPW4_FALLBACK)
            return build("pair")
        if self.hexdwpw4_force is not None:
            return build(self.hexdwpw4_force if self.hexdwpw4_force in tiles else tiles[0])
        nb, h, w, cin = x.shape
        ho, wo = dw.out_hw(h, w)

        def blocks(t: int) -> int:
            return nb * math.ceil(ho / t) * math.ceil(wo / t)

        tile = next((t for t in tiles if blocks(t) >= self.sms), tiles[-1])
        model = tile if blocks(tile) >= self.sms // 3 else "pair"
        if self.autotune and 2.0 * nb * h * w * cin * ex.out_channels >= self.TUNE_MIN_FLOP:
            key = ("hfuse-block", "v4", tuple(x.shape), ex.out_channels, dw.stride, pw.out_channels, res is not None)
            key += (bool(exop.act), bool(dwop.act), bool(pwop.act))
            return self._tuned(key, (*tiles, "pair"), build, model)
        return build(model)

    def _h_bottleneck(
        self, x: Any, ex: Conv2d, dw: Conv2d, pw: Conv2d, ex_act: bool, dw_act: bool, act: bool, residual: Any, out: Any
    ) -> Any:
        """fp16 mode of ``bottleneck``: the hexdwpw4 block kernel whatever the versions (tile: hexdwpw4_force, else
        the largest applicable), else the three layers' own kernels through temporaries (a recorded fallback)."""
        self._h_check(x, "bottleneck input", ndim=4)
        chain = (("pointwise", ex), ("depthwise", dw), ("pointwise", pw))
        out = self._chain_out("bottleneck", x, chain, residual, out, half=True)
        tiles = self._h_block_tiles(x, ex, dw, pw, residual, out)
        if tiles:
            t = self.hexdwpw4_force if self.hexdwpw4_force in tiles else tiles[0]
            self.launch_all([self._h_block_launch(x, ex, ex_act, dw, dw_act, pw, act, residual, out, t)])
            return out
        self._fallbacks.add("hfuse v4 -> v1 (no hexdwpw4 instance for this block shape, or unaligned)")
        nb, h, w, _ = x.shape
        ho, wo = dw.out_hw(h, w)
        mid = self._h_empty((nb, h, w, ex.out_channels))
        mid2 = self._h_empty((nb, ho, wo, dw.out_channels))
        self.launch_all(self._h_conv_launches(x, ex, ex_act, None, mid))
        self.launch_all(self._h_conv_launches(mid, dw, dw_act, None, mid2))
        self.launch_all(self._h_conv_launches(mid2, pw, act, residual, out))
        self.stream.synchronize()  # mid, mid2 are freed on return
        return out

    def _h_expand_depthwise(self, x: Any, ex: Conv2d, dw: Conv2d, ex_act: bool, dw_act: bool, out: Any) -> Any:
        """fp16 mode of ``expand_depthwise``: the hexdw kernel with hfuse v2 / v3 (where the shapes allow), else
        the two layers' own kernels through a temporary."""
        self._h_check(x, "expand_depthwise input", ndim=4)
        out = self._chain_out("expand_depthwise", x, (("pointwise", ex), ("depthwise", dw)), None, out, half=True)
        nb, h, w, _ = x.shape
        ver = self.versions["hfuse"]
        fuse = ver in HEXDW_VERSIONS
        launch = self._h_exdw_launch(x, ex, ex_act, dw, dw_act, out) if fuse else None
        if launch is not None:
            self.launch_all([launch])
            return out
        if fuse:
            self._fallbacks.add(HEXDW_FALLBACK.format(ver))
        mid = self._h_empty((nb, *ex.out_hw(h, w), ex.out_channels))
        self.launch_all(self._h_conv_launches(x, ex, ex_act, None, mid))
        self.launch_all(self._h_conv_launches(mid, dw, dw_act, None, out))
        self.stream.synchronize()  # mid is freed on return
        return out

    def _h_pool_launch(self, x: Any, out: Any) -> Any:
        from .custom import Launch

        nb, h, w, c = x.shape
        if nb > 65535:
            raise InputError(f"batch {nb} exceeds the grid limit 65535")
        return Launch(
            "hpool_v1", self._fn("hpool_v1"), (math.ceil(c / 128), nb), (128,), (x, out, _i32(h * w), _i32(c))
        )

    def _h_linear_launches(self, x: Any, layer: Linear, out: Any) -> list:
        from .custom import GEMV_MAX_BATCH, Launch

        p = self._h_params(layer)
        nb = x.shape[0]
        fin, fout = layer.in_features, layer.out_features
        if nb <= GEMV_MAX_BATCH:
            vec = int(fin % 8 == 0 and self._aligned(x, p["w"]))
            args = (x, p["w"], p["bias"], out, _i32(nb), _i32(fin), _i32(fout), _i32(vec))
            return [Launch("hlinear_gemv", self._fn("hlinear_gemv"), (math.ceil(fout * 32 / 256),), (256,), args)]
        return self._h_gemm(x, p["w"], out, p["bias"], None, nb, fout, fin, False, f32_out=True)

    def _h_add_launch(self, a: Any, b: Any, out: Any) -> Any:
        from .custom import Launch

        n = a.size
        return Launch("hadd", self._fn("hadd"), self._grid1(n), (256,), (a, b, out, _i64(n)))

    def _h_nchw_launch(self, src: Any, dst: Any, nb: int, rows: int, cols: int, to_half: bool) -> Any:
        """fp32 NCHW -> half NHWC (to_half) or back: per image a (rows, cols) transpose."""
        from .custom import Launch

        if nb > 65535:
            raise InputError(f"batch {nb} exceeds the grid limit 65535")
        name = "h_from_nchw_f32" if to_half else "h_to_nchw_f32"
        grid = (math.ceil(cols / 32), math.ceil(rows / 32), nb)
        return Launch(name, self._fn(name), grid, (32, 8), (src, dst, _i32(rows), _i32(cols)))

    def _h_copy_launch(self, src: Any, dst: Any, to_half: bool) -> Any:
        from .custom import Launch

        name = "f32_to_h" if to_half else "h_to_f32"
        return Launch(name, self._fn(name), self._grid1(src.size), (256,), (src, dst, _i64(src.size)))

    # -- data movement ----------------------------------------------------------------------------------
    def _h_to_device(self, x: np.ndarray) -> Any:
        cp = self._cp
        with self.stream:
            xd = cp.asarray(np.ascontiguousarray(x))
            if x.ndim == 2:
                y = cp.empty(x.shape, cp.float16)
                self._launch(self._h_copy_launch(xd, y, True))
                return y
            n, c, h, w = x.shape
            y = cp.empty((n, h, w, c), cp.float16)
            self._launch(self._h_nchw_launch(xd, y, n, c, h * w, True))
        return y

    def _h_to_host(self, y: Any) -> np.ndarray:
        cp = self._cp
        self._h_check(y, "to_host")  # float32 arrays (the logits) take the fp32 path of to_host
        with self.stream:
            if y.ndim == 4:
                n, h, w, c = y.shape
                t = cp.empty((n, c, h, w), cp.float32)
                self._launch(self._h_nchw_launch(y, t, n, h * w, c, False))
            else:
                t = cp.empty(y.shape, cp.float32)
                self._launch(self._h_copy_launch(y, t, False))
            out = t.get()
        self.stream.synchronize()
        return out

    # -- the ops -------------------------------------------------------------------------------------
    def _h_conv2d(self, x: Any, layer: Conv2d, act: bool, residual: Any, out: Any) -> Any:
        self._h_check(x, "conv2d input", ndim=4)
        oshape = self._conv_out_shape(x.shape, layer)
        if residual is not None:
            self._h_check_out(residual, oshape, "conv2d residual")
        self._h_params(layer)
        if out is None:
            out = self._h_empty(oshape)
        else:
            self._h_check_out(out, oshape, "conv2d out")
        self.launch_all(self._h_conv_launches(x, layer, act, residual, out))
        return out

    def conv2d_nchw_input(self, x: Any, layer: Conv2d, act: bool = False, out: Any = None) -> Any:
        """fp16 mode: a stem conv on the float32 NCHW device array ``x`` (as the network plan runs the
        first conv: hstem kernels, no conversion); returns NHWC float16."""
        self._ensure_device()
        if self.dtype != "fp16":
            raise InputError("conv2d_nchw_input is the fp16 mode's stem path; this backend runs fp32")
        self._h_check(x, "conv2d_nchw_input input", ndim=4, dtype="float32")
        p = self._h_params(layer)
        if p["kind"] != "stem":
            raise InputError("conv2d_nchw_input: only a groups=1 conv that is not 1x1 (a stem) reads NCHW input")
        nb, c, h, w = x.shape
        if c != layer.in_channels:
            raise InputError(f"conv2d_nchw_input: NCHW shape {x.shape}, the layer expects {layer.in_channels} channels")
        ho, wo = layer.out_hw(h, w)
        oshape = (nb, ho, wo, layer.out_channels)
        if out is None:
            out = self._h_empty(oshape)
        else:
            self._h_check_out(out, oshape, "conv2d_nchw_input out")
        self.launch_all(self._h_conv_launches(x, layer, act, None, out, nchw32=True))
        return out

    def _h_add(self, a: Any, b: Any, out: Any) -> Any:
        self._h_check(a, "add a")
        self._h_check(b, "add b")
        if a.shape != b.shape:
            raise InputError(f"add: shapes {a.shape} and {b.shape} differ")
        if out is None:
            out = self._h_empty(a.shape)
        else:
            self._h_check_out(out, a.shape, "add out")
        self.launch_all([self._h_add_launch(a, b, out)])
        return out

    def _h_global_avg_pool(self, x: Any, out: Any) -> Any:
        self._h_check(x, "global_avg_pool input", ndim=4)
        oshape = (x.shape[0], x.shape[3])
        if out is None:
            out = self._h_empty(oshape)
        else:
            self._h_check_out(out, oshape, "global_avg_pool out")
        self.launch_all([self._h_pool_launch(x, out)])
        return out

    def _h_linear(self, x: Any, layer: Linear, out: Any) -> Any:
        self._h_check(x, "linear input", ndim=2)
        if x.shape[1] != layer.in_features:
            raise InputError(f"linear input: shape {x.shape}, the layer expects {layer.in_features} features")
        self._h_params(layer)
        oshape = (x.shape[0], layer.out_features)
        if out is None:
            out = self._h_empty(oshape, self._cp.float32)
        else:
            self._h_check_out(out, oshape, "linear out (fp16 mode: the logits are float32)", dtype="float32")
        self.launch_all(self._h_linear_launches(x, layer, out))
        return out

    # -- whole network -----------------------------------------------------------------------------------
    def _h_plan(self, batch: int) -> Any:
        """fp16 plan: half NHWC buffers reused by liveness (plan_buffers), the stem reading the float32
        NCHW upload buffer, float32 logits."""
        from .custom import Plan, _pinned, plan_buffers, slot_sizes

        cp = self._cp
        net = self.net
        c, h, w = net.input_shape
        fused = net.fused
        last_use = [-1] * len(fused)
        readers_of_input = 0
        for op in fused:
            for src in (op.input, op.residual):
                if src == NETWORK_INPUT:
                    readers_of_input += 1
                elif src is not None:
                    last_use[src] = op.index
        last_use[-1] = len(fused)
        for op in fused[:-1]:
            if op.kind == "linear":
                raise InputError(f"fp16 mode: the Linear at fused op {op.index} is not the last op (logits are fp32)")
        first = fused[0]
        stem_direct = (
            first.kind == "conv"
            and first.input == NETWORK_INPUT
            and first.residual is None
            and readers_of_input == 1
            and self._h_params(first.layer)["kind"] == "stem"
        )

        # hfuse v2 / v3: an expansion 1x1 conv runs inside the next op's kernel, a 3x3 depthwise conv (hexdw);
        # the pairs as fp32's fuse v3/v4 (its criterion, and _fuse_pairs keeps the expansion's input live)
        fuse_ex: dict[int, Any] = {}  # depthwise op index -> the expansion op fused into it
        if self.versions["hfuse"] in HEXDW_VERSIONS:
            fuse_ex = self._fuse_pairs(
                fused, last_use, lambda op, nxt: nxt.residual is None and self._exdw_fusable(op.layer, nxt.layer)
            )
        # hfuse v4: an (expansion, depthwise) pair whose only reader is a pointwise conv (the projection; its residual,
        # if any, any tensor of its output shape) runs with it as one block kernel (hexdwpw4) or, where faster, as
        # the pair + the projection GEMM: decided at the projection op (_h_block_launches); criterion as fp32's fuse v5
        fuse_blk: dict[int, tuple[Any, Any]] = {}  # projection op index -> (expansion op, depthwise op)
        if self.versions["hfuse"] == "v4":
            fuse_blk = self._fuse_blocks(fused, last_use, fuse_ex)
        fused_ex = {ex.index for ex in fuse_ex.values()}
        blk_dw = {dwop.index for _, dwop in fuse_blk.values()}

        def out_shape(op) -> tuple[int, ...]:
            s = op.layer.out_shape
            return (batch, s[1], s[2], s[0]) if len(s) == 3 else (batch, *s)

        shapes = [out_shape(op) for op in fused]
        sizes = [int(np.prod(s)) if op.kind != "linear" else 0 for op, s in zip(fused, shapes)]
        slot_of = plan_buffers(sizes, last_use)
        with self.stream:
            stage_in = cp.empty((batch, c, h, w), cp.float32)
            slots = [cp.empty((max(n, 1),), cp.float16) for n in slot_sizes(slot_of, sizes)]
            launches: list = []
            ranges: list = []
            buffers: list = [*slots]
            if stem_direct:
                outs: dict[int, Any] = {NETWORK_INPUT: stage_in}
            else:
                x0 = cp.empty((batch, h, w, c), cp.float16)
                launches.append(self._h_nchw_launch(stage_in, x0, batch, c, h * w, True))
                ranges.append(("input NCHW fp32 -> NHWC fp16", 0, 1))
                outs = {NETWORK_INPUT: x0}
                buffers.append(x0)
            # hblock0 v2: the first three convs as one kernel reading stage_in (impls/_custom_hblock0.py)
            hb0 = hblock0_plan(self, fused, stage_in, stem_direct)
            for op in fused:
                if op.kind == "linear":
                    y = cp.empty(shapes[op.index], cp.float32)
                    buffers.append(y)
                else:
                    y = slots[slot_of[op.index]][: sizes[op.index]].reshape(shapes[op.index])
                a = outs[op.input]
                lo = len(launches)
                if op.index in hb0:
                    launches += hb0[op.index](y)
                elif op.index in fused_ex or op.index in blk_dw:
                    pass  # runs inside the next op's hexdw kernel (hfuse v2 / v3) or the block kernel (v4)
                elif op.kind == "conv" and op.index in fuse_blk:
                    exop, dwop = fuse_blk[op.index]
                    res = outs[op.residual] if op.residual is not None else None
                    mids = outs[exop.index], outs[dwop.index]
                    launches += self._h_block_launches(outs[exop.input], exop, dwop, op, res, *mids, y)
                elif op.kind == "conv" and op.index in fuse_ex:
                    exop = fuse_ex[op.index]
                    launches += self._h_exdw_pair_launches(outs[exop.input], exop, op, outs[exop.index], y)
                elif op.kind == "conv":
                    res = outs[op.residual] if op.residual is not None else None
                    nchw = stem_direct and op.index == first.index
                    launches += self._h_conv_launches(a, op.layer, op.act, res, y, nchw32=nchw)
                elif op.kind == "add":
                    launches.append(self._h_add_launch(a, outs[op.residual], y))
                elif op.kind == "pool":
                    launches.append(self._h_pool_launch(a, y))
                elif op.kind == "linear":
                    launches += self._h_linear_launches(a, op.layer, y)
                else:  # pragma: no cover
                    raise AssertionError(op.kind)
                ranges.append((f"{self.name}/{op.covers[0]}:{op.label}", lo, len(launches)))
                outs[op.index] = y
            final = outs[fused[-1].index]
            if final.dtype != np.float32:  # a network not ending in the classifier: float32 out
                if final.ndim == 4:
                    nb_, hh, ww, cc = final.shape
                    t = cp.empty((nb_, cc, hh, ww), cp.float32)
                    launches.append(self._h_nchw_launch(final, t, nb_, hh * ww, cc, False))
                else:
                    t = cp.empty(final.shape, cp.float32)
                    launches.append(self._h_copy_launch(final, t, False))
                final = t
        plan = Plan(batch=batch, stage_in=stage_in, out=final, launches=launches, op_ranges=ranges, buffers=buffers)
        plan.host_in, plan.host_out = _pinned(stage_in.shape), _pinned(final.shape)
        if self.graph:
            from mbv2.timing import CudaGraph

            self._capturing = True
            try:
                plan.graph = CudaGraph(lambda: self._enqueue_eager(plan), self.stream)
            finally:
                self._capturing = False
        return plan
