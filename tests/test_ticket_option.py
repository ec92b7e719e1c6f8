"""MBV2_TICKET (session 49, a measuring option; results/NOTES.md "Session 49"): kernels/cblock.cu's last_to_arrive takes
its cross-cluster ticket as one atom.acq_rel.gpu (CBLOCK_TICKET_ACQ_REL 1, the default, "acq_rel"); "sc" compiles it
with -DCBLOCK_TICKET_ACQ_REL=0: __threadfence() before the atomicAdd and after the last arriver's reset, as up to
session 48. Host tests: the option's values and refusal; that under "sc" every cblock.cu build (whole file, exdwpw6
spec builds, its fixed kinds) and no other file gets the define, and under "acq_rel" none; and that the PTX of a 7x7
exdwpw6 build (NG > 1: the ticket runs) holds the one atomic, or under "sc" the two fences."""

from __future__ import annotations

import re
import subprocess

import pytest

from impls import _custom_kernels as K
from mbv2.errors import InputError
from tests.test_custom_host import fake_cupy  # noqa: F401  (the CuPy stand-in fixture)
from tests.test_kernels_compile import SPEC_CASES
from tests.test_pdl_trigger import defines_of_every_build

SC = K.TICKET_SC_DEFINES[0]


def test_option_values(monkeypatch) -> None:
    monkeypatch.delenv(K.TICKET_ENV, raising=False)
    assert K.ticket_option() == "acq_rel" and SC not in K.process_defines("cblock")
    assert "#define CBLOCK_TICKET_ACQ_REL 1" in (K.KERNEL_DIR / "cblock.cu").read_text()
    for raw, want in (("", "acq_rel"), (" sc ", "sc"), ("acq_rel", "acq_rel")):
        monkeypatch.setenv(K.TICKET_ENV, raw)
        assert K.ticket_option() == want
    monkeypatch.setenv(K.TICKET_ENV, "release")
    with pytest.raises(InputError, match="MBV2_TICKET='release': expected acq_rel .* or sc"):
        K.process_defines("cblock")


@pytest.mark.parametrize("value", ["sc", "acq_rel"])
def test_every_cblock_build_and_no_other_gets_the_define(monkeypatch, value) -> None:
    monkeypatch.setenv(K.TICKET_ENV, value)
    builds = defines_of_every_build(monkeypatch)
    assert {file for file, _ in builds.values()} == set(K.KERNEL_FILES)
    for stem, (file, defines) in builds.items():
        assert (SC in defines) == (value == "sc" and file == "cblock"), stem


@pytest.mark.parametrize("value", ["sc", "acq_rel"])
def test_the_7x7_builds_ticket_in_ptx(monkeypatch, value) -> None:
    """A 7x7 exdwpw6 spec build (5 clusters of 8 per tile at batch 1, so the ticket runs): under "sc" the ticket's two
    __threadfence() (membar.gl) and a plain atomic add; under "acq_rel" one atom.acq_rel.gpu and no membar.gl."""
    nvcc = K.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda): cannot compile kernels/cblock.cu")
    monkeypatch.setenv(K.TICKET_ENV, value)
    build, modes, shape = next(c for c in SPEC_CASES if c[2] is not None and c[2][:2] == (7, 7))
    defines = K.exdwpw6_spec_defines(build, modes, shape) + K.process_defines("cblock")
    cmd = [nvcc, "-std=c++17", "-arch=sm_90a", *defines, "-ptx", "-o", "-", str(K.KERNEL_DIR / "cblock.cu")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    n_gl, n_ar = out.stdout.count("membar.gl"), out.stdout.count("atom.acq_rel.gpu.global.add.s32")
    n_add = len(re.findall(r"atom\.global\.add\.u32|atom\.global\.add\.s32|red\.global\.add", out.stdout))
    assert (n_gl, n_ar) == ((2, 0) if value == "sc" else (0, 1)), (n_gl, n_ar)
    assert (n_add >= 1) == (value == "sc")


@pytest.mark.parametrize(("first", "second"), [("", "sc"), ("sc", ""), ("acq_rel", "sc")])
def test_a_second_value_in_one_process_is_refused(fake_cupy, net, monkeypatch, first, second) -> None:  # noqa: F811
    """The fixed builds are loaded by name, whatever their ticket: a backend with the other value is refused. info()
    names the ticket only where it is not the default."""
    monkeypatch.setenv(K.TICKET_ENV, first)
    be = fake_cupy.CustomBackend()
    be.prepare(net)
    assert be.info().get("ticket", "acq_rel") == (first or "acq_rel")
    monkeypatch.setenv(K.TICKET_ENV, second)
    with pytest.raises(InputError, match="this process already runs the custom kernels with MBV2_TICKET"):
        fake_cupy.CustomBackend().prepare(net)
