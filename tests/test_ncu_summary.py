"""scripts/ncu_kernels.py --summarize: the markdown table's derived columns from an ncu raw-page CSV; --columns: raw
metrics as printed (CPU only)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import ncu_kernels  # noqa: E402

HEAD = (
    '"ID","Kernel Name","gpu__time_duration.sum","dram__bytes.sum","lts__t_bytes.sum",'
    '"sm__sass_thread_inst_executed_op_ffma_pred_on.sum","sm__sass_thread_inst_executed_op_fadd_pred_on.sum",'
    '"smsp__issue_active.avg.pct_of_peak_sustained_active"\n'
)


def _table(tmp_path: Path, units: str, row: str) -> list[str]:
    path = tmp_path / "ncu.csv"
    path.write_text("==PROF== noise\n" + HEAD + units + "\n" + row + "\n")
    return ncu_kernels.summarize(str(path)).splitlines()


def test_summary_derives_gflops_and_l2_bandwidth(tmp_path):
    lines = _table(
        tmp_path,
        '"","","usecond","Kbyte","Mbyte","inst","Kinst","%"',
        '"0","exdwpw6_c12","8.0","512","16","2,000,000","4","31.5"',
    )
    assert lines[0].split("|")[-4:-1] == [" L2 GB/s ", " GFLOP/s ", " issue % "], lines[0]
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    # 8 us; 0.512 MB of DRAM; 16 MB of L2 in 8000 ns = 2000 GB/s; (2 * 2e6 + 4e3) FLOP / 8000 ns = 500.5 GFLOP/s
    assert cells[0] == "0" and cells[1] == "exdwpw6_c12" and cells[2] == "8.0", cells
    assert cells[6] == "0.5" and cells[7] == "2000.0" and cells[8] == "500.5" and cells[9] == "31.5", cells


def test_summary_without_optional_metrics_has_the_base_columns(tmp_path):
    path = tmp_path / "ncu.csv"
    path.write_text('"ID","Kernel Name","gpu__time_duration.sum"\n"","","nsecond"\n"0","k","1,500"\n')
    lines = ncu_kernels.summarize(str(path)).splitlines()
    assert "GFLOP/s" not in lines[0] and "L2 GB/s" not in lines[0], lines[0]
    assert lines[2].split("|")[3].strip() == "1.5", lines[2]


def test_summary_lists_the_largest_stall_reasons(tmp_path):
    """With the WarpStateStats metrics a second table: cycles per issue and the four largest stall reasons."""
    reasons = ("barrier", "long_scoreboard", "wait", "membar", "short_scoreboard")
    stall = [ncu_kernels.STALL_PREFIX + r + ncu_kernels.STALL_SUFFIX for r in reasons]
    names = ["ID", "Kernel Name", "gpu__time_duration.sum", ncu_kernels.CYCLES_PER_ISSUE, *stall]
    path = tmp_path / "ncu.csv"
    path.write_text(
        ",".join(f'"{n}"' for n in names) + "\n" + '"","","usecond",' + ",".join('""' for _ in names[3:]) + "\n"
        '"0","exdwpw6_c8_t512","10.0","12.5","3.0","4.5","0.5","1.0","2.0"\n'
    )
    lines = ncu_kernels.summarize(str(path)).splitlines()
    i = lines.index("| # | kernel | cycles per issue | largest stall reasons (cycles per issue) |")
    assert lines[i + 2] == (
        "| 0 | exdwpw6_c8_t512 | 12.5 | long_scoreboard 4.5, barrier 3.0, short_scoreboard 2.0, membar 1.0 |"
    ), lines[i + 2]
    assert ncu_kernels.CYCLES_PER_ISSUE in ncu_kernels.STALL_METRICS and len(ncu_kernels.STALL_METRICS) == 19


def test_columns_prints_the_named_metrics_as_ncu_printed_them(tmp_path):
    path = tmp_path / "ncu.csv"
    path.write_text("==PROF== noise\n" + HEAD + '"","","usecond","Kbyte","Mbyte","inst","Kinst","%"\n'
                    + '"0","g111_d8_f32a","18.8","512","16","2,000,000","4","26.8"\n')  # fmt: skip
    lines = ncu_kernels.columns(str(path), ["smsp__issue_active.avg.pct_of_peak_sustained_active", "not_a_metric",
                                            "gpu__time_duration.sum"])  # fmt: skip
    lines = lines.splitlines()
    assert lines[0] == "| kernel | smsp__issue_active.avg.pct_of_peak_sustained_active | gpu__time_duration.sum |"
    assert lines[1] == "|---|---|---|"
    assert lines[2] == "| g111_d8_f32a | 26.8 | 18.8 |", lines
