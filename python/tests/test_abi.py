"""The C headers against the shared library and the Python binding: every function
``bgad.h`` and ``bgad_testing.h`` declare is exported by the loaded ``libbgad.so`` (C users
compile against the header alone), and ``bgad._native.SIGNATURES`` — the one table of
ctypes signatures — holds exactly those functions, in the headers' order, with the ctypes
spelling of each C parameter and result type."""

import ctypes
import re

import pytest

import bgad
from bgad import BGADError, _native
from bgad._native import SIGNATURES, lib
from conftest import header_path

HEADER = header_path()
TESTING_HEADER = HEADER.parent / "bgad_testing.h"


def _declarations(path):
    """``(name, result type, [parameter declarations])`` of every function of a header."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)  # comments may mention calls
    text = re.sub(r"#.*", "", text)
    out = []
    for m in re.finditer(r"^([A-Za-z_][\w \*]*?)\b(bgad_\w+)\s*\(([^)]*)\)\s*;", text, re.M):
        args = " ".join(m.group(3).split())
        params = [] if args in ("", "void") else [a.strip() for a in args.split(",")]
        out.append((m.group(2), m.group(1).strip(), params))
    return out


def declared_functions(path=HEADER):
    return [name for name, _, _ in _declarations(path)]


# The C types of the headers and the ctypes objects that stand for them.
_SCALARS = {"int": ctypes.c_int, "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64,
            "uint64_t": ctypes.c_uint64, "float": ctypes.c_float, "double": ctypes.c_double}
_POINTEES = {"uint8_t": ctypes.c_uint8, "float": ctypes.c_float, "double": ctypes.c_double,
             "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64}
_HANDLES = {"bgad_flow_t", "bgad_rpag_t", "bgad_backbone_t", "bgad_model_t", "bgad_detector"}


def _expected_ctype(decl):
    """The ctypes type a C declaration (``const float *x``, ``bgad_model_t **out``...) needs."""
    words = re.sub(r"\bconst\b", "", decl).replace("*", " * ").split()
    stars = words.count("*")
    names = [w for w in words if w != "*"]
    base = names[0]  # the type; a parameter's name, when present, follows it
    if base in _HANDLES:
        return {1: ctypes.c_void_p, 2: ctypes.POINTER(ctypes.c_void_p)}[stars]
    if base == "bgad_image":
        return ctypes.POINTER(_native.Image)
    if base == "bgad_progress_fn":
        return _native.PROGRESS_FN
    if base == "bgad_image_loader":
        return _native.LOADER_FN
    if stars == 0:
        return _SCALARS[base]
    if base == "char":
        return {1: ctypes.c_char_p, 2: ctypes.POINTER(ctypes.c_char_p)}[stars]
    if base == "void":
        assert stars == 1
        return ctypes.c_void_p
    inner = ctypes.POINTER(_POINTEES[base])
    return inner if stars == 1 else ctypes.POINTER(inner)


def test_header_declares_the_documented_functions():
    names = declared_functions()
    assert len(names) == len(set(names)), "a function is declared twice"
    for expected in ("bgad_version", "bgad_vector_kernels", "bgad_gemm_counters", "bgad_model_default_params"):
        assert expected in names


def test_testing_header_holds_only_what_the_public_header_does_not():
    public, testing = set(declared_functions()), declared_functions(TESTING_HEADER)
    assert testing and not public & set(testing)
    assert {"bgad_focal_weights", "bgad_explicit_boundaries", "bgad_boundary_guided_loss"} <= set(testing)


def test_every_declared_function_is_exported():
    names = declared_functions() + declared_functions(TESTING_HEADER)
    missing = [n for n in names if not hasattr(lib, n)]
    assert not missing, f"declared in a header but not exported by libbgad.so: {missing}"


def test_signature_table_matches_the_headers():
    declarations = _declarations(HEADER) + _declarations(TESTING_HEADER)
    assert list(SIGNATURES) == [name for name, _, _ in declarations], "SIGNATURES: not the headers' functions in order"
    for name, result, params in declarations:
        restype, argtypes = SIGNATURES[name]
        want = _expected_ctype(result)
        assert restype is want, f"{name}: result {restype} for C {result!r}"
        assert len(argtypes) == len(params), f"{name}: {len(argtypes)} ctypes arguments, {len(params)} in C"
        for i, (got, decl) in enumerate(zip(argtypes, params)):
            assert got is _expected_ctype(decl), f"{name}: argument {i} is {got}, C declares {decl!r}"
        fn = getattr(lib, name)
        assert fn.restype is restype and list(fn.argtypes) == list(argtypes), f"{name}: table not applied"


def test_function_refuses_a_name_outside_the_table():
    assert _native.function("bgad_version") is lib.bgad_version
    with pytest.raises(KeyError, match="SIGNATURES"):
        _native.function("bgad_no_such_function")


def test_binding_expects_the_headers_abi_version():
    m = re.search(r"^#define\s+BGAD_ABI_VERSION\s+(\d+)", HEADER.read_text(), re.M)
    assert _native.ABI_VERSION == int(m.group(1)) == lib.bgad_abi_version()
    assert bgad.__version__ == _native.version()


def test_every_wrapper_owns_its_handle_through_one_base_class():
    """Flow, RPAG, EfficientNetLite, BGAD and Detector free their native object once:
    close() and a with block free it, a closed object says so, pickling is refused (the
    Detector pickles by value: tests/test_detector_api.py)."""
    import pickle

    import numpy as np

    from bgad import BGAD, Detector, Flow, backbone, rpag
    from bgad._native import NativeHandle

    for cls in (Flow, rpag.RPAG, backbone.EfficientNetLite, BGAD, Detector):
        assert issubclass(cls, NativeHandle) and cls._free_name in SIGNATURES
    with Flow(4, cond_dim=4, blocks=1) as flow:
        assert not flow.closed
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(flow)
    assert flow.closed
    with pytest.raises(BGADError, match="closed"):
        flow._require_handle()
    flow.close()  # a second close is harmless
    gen = rpag.RPAG(seed=1)
    gen.close()
    assert gen.closed
    model = BGAD([4], progress=False)
    assert not model.closed
    model.set_params(levels=[6])  # a new channel count drops the native model
    assert model.closed
    net = backbone.EfficientNetLite0()
    net.close()
    with pytest.raises(BGADError, match="closed"):
        net.features(np.zeros((8, 8), np.uint8))
