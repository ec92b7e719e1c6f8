"""NumPy (float64) emulation of kernels/persistent.cu: net_persistent, for the CPU stand-in of
tests/test_custom_host.py. It reads the stage table the host built (impls/_custom_persistent.py:
STAGE_DTYPE) and follows its raw pointers into the stand-in's host arrays, so the table's kinds,
shapes, flags and buffer pointers (liveness, reuse, residual sources, fused depthwise inputs) are
checked on a machine without a GPU. Split-K is emulated by its result (the workspace is not used).
"""

from __future__ import annotations

import ctypes

import numpy as np

from impls._custom_persistent import KIND, STAGE_DTYPE


def _arr(ptr: int, shape: tuple[int, ...]) -> np.ndarray:
    assert ptr, "null pointer in the stage table"
    n = int(np.prod(shape))
    return np.ctypeslib.as_array((ctypes.c_float * n).from_address(int(ptr))).reshape(shape)


def _relu6(v: np.ndarray, act: int) -> np.ndarray:
    return np.clip(v, 0.0, 6.0) if act else v


def _conv3x3(x: np.ndarray, w9: np.ndarray, b: np.ndarray, s: int, pad: int, ho: int, wo: int) -> np.ndarray:
    """Depthwise 3x3 on NHWC x (float64) with weights (9, C)."""
    xx = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros((x.shape[0], ho, wo, x.shape[3])) + b
    for ky in range(3):
        for kx in range(3):
            out += xx[:, ky : ky + (ho - 1) * s + 1 : s, kx : kx + (wo - 1) * s + 1 : s, :] * w9[ky * 3 + kx]
    return out


def emulate_persistent(grid: tuple, block: tuple, args: tuple) -> None:
    table_bytes, nstages, sync, stamps, record = args
    table = np.asarray(table_bytes).view(np.uint8).reshape(-1).view(STAGE_DTYPE)
    assert len(table) == int(nstages)
    assert block[0] == 256 and grid[0] >= 1
    assert int(sync[0]) == 0 or True  # the barrier counter may hold any value
    for i, st in enumerate(table):
        kind = int(st["kind"])
        nb, h, w, c, ho, wo, n = (int(st[f]) for f in ("nb", "h", "wd", "c", "ho", "wo", "n"))
        s, pad, act, has_res = int(st["stride"]), int(st["pad"]), int(st["act"]), int(st["has_res"])
        assert int(st["sync"]) == (1 if i < len(table) - 1 else 0) or kind == KIND["nop"]
        if kind == KIND["nop"]:
            continue
        if kind == KIND["stem"]:
            x = _arr(st["inp"], (nb, 3, h, w)).astype(np.float64).transpose(0, 2, 3, 1)
            wt = _arr(st["w"], (28, n))[:27].reshape(3, 3, 3, n)  # (ky, kx, ci, cout)
            xx = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            v = np.zeros((nb, ho, wo, n)) + _arr(st["b"], (n,))
            for ky in range(3):
                for kx in range(3):
                    v += xx[:, ky : ky + (ho - 1) * s + 1 : s, kx : kx + (wo - 1) * s + 1 : s, :] @ wt[ky, kx]
            v = _relu6(v, act)
            oshape = (nb, ho, wo, n)
        elif kind == KIND["dw"]:
            x = _arr(st["inp"], (nb, h, w, c))
            v = _relu6(_conv3x3(x, _arr(st["w"], (9, c)), _arr(st["b"], (c,)), s, pad, ho, wo), act)
            oshape = (nb, ho, wo, c)
        elif kind in (KIND["pw"], KIND["dwpw"]):
            m, k = int(st["m"]), int(st["k"])
            assert m == nb * ho * wo
            assert int(st["tile"]) in (0, 1, 2, 3) and int(st["splits"]) >= 1
            assert int(st["splits"]) == 1 or st["ws"], "split-K stage without a workspace"
            if kind == KIND["dwpw"]:
                x = _arr(st["inp"], (nb, h, w, k))
                a = _relu6(_conv3x3(x, _arr(st["dw_w"], (9, k)), _arr(st["dw_b"], (k,)), s, pad, ho, wo), st["dwact"])
                a = a.reshape(m, k)
            else:
                a = _arr(st["inp"], (m, k)).astype(np.float64)
            v = _relu6(a @ _arr(st["w"], (k, n)) + _arr(st["b"], (n,)), act)
            oshape = (m, n)
        elif kind == KIND["pool"]:
            v = _arr(st["inp"], (nb, h * w, c)).astype(np.float64).mean(1)
            oshape = (nb, c)
        elif kind == KIND["linear"]:
            k = int(st["k"])
            v = _arr(st["inp"], (nb, k)).astype(np.float64) @ _arr(st["w"], (n, k)).T + _arr(st["b"], (n,))
            oshape = (nb, n)
        else:
            raise AssertionError(f"stage {i}: unknown kind {kind}")
        if has_res:
            v = v + _arr(st["res"], oshape)
        _arr(st["out"], oshape)[...] = v
