"""CPU tests of the cuDNN/cuBLAS ctypes layer (impls/_cudnn_lib.py): signatures and enums against the installed
headers, library discovery, status messages. No GPU needed; header checks skip with the reason when the
nvidia-cudnn / nvidia-cublas wheels (or a CUDA toolkit with them) are not installed."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

import impls
from impls import _cudnn_lib as L
from mbv2.errors import BackendUnavailable, CudaError, InputError

CUDNN_HEADERS = ("cudnn_graph.h", "cudnn_ops.h", "cudnn_cnn.h")


def _find_headers(kind: str, names: tuple[str, ...]) -> str | None:
    """The concatenated text of ``names`` from the first include dir of ``kind`` that has them all."""
    for d in L.header_dirs(kind):
        if all((d / n).is_file() for n in names):
            return "\n".join((d / n).read_text(errors="replace") for n in names)
    return None


@pytest.fixture(scope="module")
def cudnn_headers() -> str:
    text = _find_headers("cudnn", CUDNN_HEADERS)
    if text is None:
        pytest.skip(
            f"cuDNN 9 headers ({', '.join(CUDNN_HEADERS)}) not installed in any of "
            f"{[str(d) for d in L.header_dirs('cudnn')] or 'the searched include dirs'}; "
            "pip install nvidia-cudnn-cu13 to check the bindings against them"
        )
    return text


@pytest.fixture(scope="module")
def cublas_headers() -> str:
    text = _find_headers("cublas", ("cublas_api.h",))
    if text is None:
        pytest.skip("cublas_api.h not installed (pip install nvidia-cublas to check the bindings against it)")
    return text


@pytest.fixture(scope="module")
def library_types_header() -> str:
    text = _find_headers("cublas", ("library_types.h",))
    if text is None:
        pytest.skip("library_types.h (CUDA toolkit headers) not found under $CUDA_PATH, /usr/local/cuda or the wheels")
    return text


@pytest.fixture
def no_libraries(monkeypatch: pytest.MonkeyPatch):
    """Simulate a machine without libcudnn/libcublas: discovery finds no candidates at all."""
    monkeypatch.setattr(L, "candidates", lambda kind: [])
    L.reset()
    yield
    L.reset()  # the next user loads the real libraries again


def _compare(signatures, protos) -> list[str]:
    problems = []
    for ret, name, params in signatures:
        if name not in protos:
            problems.append(f"{name}: not declared in the headers")
            continue
        h_ret, h_params = protos[name]
        mine = (L.normalize_c_type(ret), [L.normalize_c_type(p) for p in params])
        if (h_ret, h_params) != mine:
            problems.append(
                f"{name}: header says {h_ret}({', '.join(h_params)}), binding says {mine[0]}({', '.join(mine[1])})"
            )
    return problems


# -- signatures and enums vs headers -----------------------------------------------------------------
def test_cudnn_signatures_match_headers(cudnn_headers: str) -> None:
    protos = L.parse_prototypes(cudnn_headers, "CUDNNWINAPI")
    assert len(protos) > 100, "header parser found too few prototypes; is the regex broken?"
    assert _compare(L.CUDNN_SIGNATURES, protos) == []


def test_cublas_signatures_match_headers(cublas_headers: str) -> None:
    protos = L.parse_prototypes(cublas_headers, "CUBLASWINAPI")
    assert len(protos) > 100
    assert _compare(L.CUBLAS_SIGNATURES, protos) == []


def test_signature_check_catches_a_wrong_declaration(cudnn_headers: str) -> None:
    protos = L.parse_prototypes(cudnn_headers, "CUDNNWINAPI")
    wrong = [
        ("cudnnStatus_t", "cudnnSetConvolutionGroupCount", ["cudnnConvolutionDescriptor_t", "size_t"]),
        ("cudnnStatus_t", "cudnnAddTensor", ["cudnnHandle_t", "void*", "void*"]),
    ]
    assert len(_compare(wrong, protos)) == 2


def test_cudnn_enum_values_match_headers(cudnn_headers: str) -> None:
    values = L.parse_enum_values(cudnn_headers)
    mine = {k: v for k, v in L.ENUMS.items() if k.startswith("CUDNN_")}
    assert {k: values.get(k) for k in mine} == mine


def test_cublas_enum_values_match_headers(cublas_headers: str) -> None:
    values = L.parse_enum_values(cublas_headers)
    mine = {k: v for k, v in L.ENUMS.items() if k.startswith("CUBLAS_")}
    assert {k: values.get(k) for k in mine} == mine


def test_library_types_enum_values_match_header(library_types_header: str) -> None:
    values = L.parse_enum_values(library_types_header)
    for name in ("CUDA_R_32F", "MAJOR_VERSION", "MINOR_VERSION", "PATCH_LEVEL"):
        assert values.get(name) == L.ENUMS[name], name


def test_algo_perf_struct_matches_header(cudnn_headers: str) -> None:
    fields = L.parse_struct_fields(cudnn_headers, "cudnnConvolutionFwdAlgoPerf_t")
    assert fields == [(L.normalize_c_type(t), n) for t, n in L.ALGO_PERF_C_FIELDS]
    # C layout: 3 x 4-byte, pad to 8, size_t, 2 x 4-byte enums, int[3], padded to 8
    assert ctypes.sizeof(L.ConvolutionFwdAlgoPerf) == 48
    assert L.ConvolutionFwdAlgoPerf.memory.offset == 16
    assert L.ConvolutionFwdAlgoPerf.mathType.offset == 28


def test_every_declared_c_type_maps_to_ctypes() -> None:
    for ret, _, params in L.CUDNN_SIGNATURES + L.CUBLAS_SIGNATURES:
        for t in [ret, *params]:
            L.ctype_of(t)  # raises TypeError on an unmapped type
    assert L.ctype_of("const cudnnTensorDescriptor_t") is ctypes.c_void_p
    assert L.ctype_of("cudnnConvolutionFwdAlgo_t") is ctypes.c_int
    assert L.ctype_of("size_t*")._type_ is ctypes.c_size_t


def test_prototype_parser_on_a_small_header() -> None:
    text = """
    /* comment with foo(int); */
    CUDNN_DEPRECATED cudnnStatus_t CUDNNWINAPI
    cudnnFoo(cudnnHandle_t handle, const void *alpha, /* scale */ int n);
    size_t CUDNNWINAPI cudnnBar(void);
    typedef enum { A_X = 3, A_Y, A_Z = 1 << 4 } a_t;
    """
    protos = L.parse_prototypes(text, "CUDNNWINAPI")
    assert protos["cudnnFoo"] == ("cudnnStatus_t", ["cudnnHandle_t", "void*", "int"])
    assert protos["cudnnBar"] == ("size_t", [])
    assert L.parse_enum_values(text) == {"A_X": 3, "A_Y": 4, "A_Z": 16}


# -- discovery -----------------------------------------------------------------------------------------
def test_discovery_prefers_wheel_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for sub in (
        "nvidia/cudnn/lib/libcudnn.so.9",
        "nvidia/cu13/lib/libcublas.so.13",
        "nvidia/cublas/lib/libcublas.so.12",
    ):
        (tmp_path / sub).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / sub).write_bytes(b"")
    monkeypatch.setattr(L, "site_dirs", lambda: [tmp_path])
    assert L.candidates("cudnn")[0] == (str(tmp_path / "nvidia/cudnn/lib/libcudnn.so.9"), "wheel")
    cublas = [c for c in L.candidates("cublas") if c[1] == "wheel"]
    assert cublas == [
        (str(tmp_path / "nvidia/cu13/lib/libcublas.so.13"), "wheel"),
        (str(tmp_path / "nvidia/cublas/lib/libcublas.so.12"), "wheel"),
    ]
    # then the system, then the bare sonames for the loader's own search
    assert L.candidates("cudnn")[-1] == ("libcudnn.so.9", "loader search path")


def test_missing_libraries_make_backend_unavailable_not_crash(no_libraries) -> None:
    ok, reason = impls.available("cudnn")
    assert ok is False
    assert "libcudnn.so.9" in reason and "libcublas" in reason and "nvidia-cudnn" in reason
    with pytest.raises(BackendUnavailable, match="not available"):
        impls.create("cudnn")


def test_unloadable_library_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_libraries) -> None:
    bogus = tmp_path / "libcudnn.so.9"
    bogus.write_bytes(b"not an ELF file")
    monkeypatch.setattr(L, "candidates", lambda kind: [(str(bogus), "wheel")])
    ok, reason = impls.available("cudnn")
    assert not ok and str(bogus) in reason


def test_backend_options_are_validated_before_loading(no_libraries) -> None:
    from impls.cudnn import CudnnBackend

    with pytest.raises(InputError, match="layout"):
        CudnnBackend(layout="nchw8")
    with pytest.raises(InputError, match="linear"):
        CudnnBackend(linear="mkl")
    with pytest.raises(InputError, match="fp16"):
        CudnnBackend(dtype="fp16")
    with pytest.raises(BackendUnavailable):  # valid options, no libraries
        CudnnBackend()


# -- status strings (need the libraries, not a GPU) -----------------------------------------------------
@pytest.fixture(scope="module")
def libs() -> L.Libraries:
    try:
        return L.load()
    except BackendUnavailable as exc:
        pytest.skip(f"cuDNN/cuBLAS libraries not installed: {exc}")


def test_cudnn_failure_names_function_and_status_string(libs: L.Libraries) -> None:
    with pytest.raises(CudaError, match=r"cudnnFoo failed: CUDNN_STATUS_NOT_SUPPORTED \(status 3000\)"):
        libs.check_cudnn("cudnnFoo", 3000)


def test_cublas_failure_names_function_and_status_string(libs: L.Libraries) -> None:
    with pytest.raises(CudaError, match=r"cublasGemmEx failed: CUBLAS_STATUS_INVALID_VALUE"):
        libs.check_cublas("cublasGemmEx", 7)


def test_checked_call_raises_on_a_bad_argument(libs: L.Libraries) -> None:
    # a NULL output pointer: cuDNN refuses it without touching a GPU
    with pytest.raises(CudaError, match="cudnnGetProperty failed: CUDNN_STATUS_BAD_PARAM"):
        libs.cudnnGetProperty(L.ENUMS["MAJOR_VERSION"], None)


def test_versions_are_reported(libs: L.Libraries) -> None:
    assert libs.cudnn_version().startswith("9.")
    assert int(libs.cublas_version().split(".")[0]) >= 12
