"""scripts/sass_fences.py on the host, over the SASS that session 49's device calls committed (cuobjdump of the
handoff probe's step_wait_early in each --cluster-sync mode) and the ncu pass of the default plan."""

from __future__ import annotations

import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
S49 = ROOT / "results/h100/session49"
sys.path.insert(0, str(ROOT / "scripts"))

import sass_fences  # noqa: E402


def _sass(call: str, mode: int) -> str:
    with tarfile.open(S49 / call / "sass.tgz") as t:
        return t.extractfile(f"s/sass_{mode}.txt").read().decode()


@pytest.mark.parametrize(
    ("call", "mode", "gpu", "cta", "fence", "arv"),
    [("call6", 0, 0, 0, 0, 0),  # no cluster synchronisation
     ("call6", 1, 1, 0, 0, 1),  # release arrive after the stores: one GPU-scope MEMBAR
     ("call6", 2, 0, 0, 0, 1),  # relaxed arrive: none
     ("call6", 3, 1, 0, 0, 1),  # release before the work
     ("call6", 4, 1, 0, 0, 1),  # fence.acq_rel.cluster + relaxed arrive: the same MEMBAR
     ("call6", 6, 0, 0, 0, 1),  # relaxed before the work
     ("call8", 7, 0, 0, 0, 1),  # push4: st.async, no fence
     ("call8", 8, 0, 1, 1, 1)],  # bulk: the CTA membar and the async-proxy fence of fence.proxy.async
)  # fmt: skip
def test_counts_the_probe_modes_fences(call: str, mode: int, gpu: int, cta: int, fence: int, arv: int) -> None:
    c = sass_fences.count(_sass(call, mode))
    assert list(c) == ["step_wait_early"]
    got = c["step_wait_early"]
    assert (got["MEMBAR.ALL.GPU"], got["MEMBAR.ALL.CTA"], got["FENCE.VIEW.ASYNC"], got["UCGABAR_ARV"]) == (
        gpu, cta, fence, arv)  # fmt: skip
    assert got["UCGABAR_WAIT"] == arv and got["BAR.SYNC"] >= 1


def test_counts_one_gpu_membar_per_mbarrier_release_arrive() -> None:
    """mbar_release (call 8): every mbarrier.arrive.release.cluster is MEMBAR.ALL.CTA + MEMBAR.ALL.GPU + the arrive;
    ptxas unrolled thread 0's loop over the peers, so there are several of each, one pair per SYNCS arrive."""
    sass = _sass("call8", 9)
    got = sass_fences.count(sass)["step_wait_early"]
    arrives = sass.count("SYNCS.ARRIVE.TRANS64.RED")
    assert arrives >= 2 and got["MEMBAR.ALL.GPU"] == arrives and got["MEMBAR.ALL.CTA"] == arrives
    assert got["SYNCS"] >= arrives + 2  # + the init's exchange and the try-wait


def test_column_of() -> None:
    col = sass_fences.column_of
    assert col("MEMBAR.ALL.GPU") == "MEMBAR.ALL.GPU" and col("MEMBAR.SC.GPU") == "MEMBAR.SC"
    assert col("FENCE.VIEW.ASYNC.S") == "FENCE.VIEW.ASYNC" and col("SYNCS.PHASECHK.TRANS64.TRYWAIT") == "SYNCS"
    assert col("BAR.SYNC.DEFER_BLOCKING") == "BAR.SYNC" and col("UCGABAR_ARV") == "UCGABAR_ARV"
    assert col("FFMA") is None and col("BAR.ARV") is None


def test_ncu_kernels_of_the_default_plan() -> None:
    names = sass_fences.ncu_kernels(S49 / "call1/ncu_v51.csv.gz")
    assert len(names) == 19 and names[0] == "block0_v4_c32_p16" and names[-1] == "linear_gemv_v5"
    assert sum(n.startswith("exdwpw6_") for n in names) == 13 and sum(n.startswith("exdwpw5_") for n in names) == 3


def test_table_sums_and_refuses_unknown_kernels() -> None:
    m = sass_fences
    index = {"a": Counter({"MEMBAR.ALL.GPU": 1, "UCGABAR_ARV": 2}), "b": Counter({"MEMBAR.ALL.GPU": 2})}
    t = m.table(["a", "b", "a"], index).splitlines()
    assert t[2].startswith("| 0 | a | 1 | 0 |") and t[-1].startswith("| all | | 4 | 0 |")
    with pytest.raises(SystemExit, match="kernel c is in no cubin"):
        m.table(["c"], index)
