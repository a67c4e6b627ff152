"""The C header against the shared library: every function `bgad.h` declares is exported
by the loaded ``libbgad.so`` (C users compile against the header alone)."""

import re

from bgad._native import lib
from conftest import header_path

HEADER = header_path()


def declared_functions():
    text = HEADER.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments may mention calls
    return re.findall(r"^[A-Za-z_][\w \*]*?\b(bgad_\w+)\s*\(", text, re.M)


def test_header_declares_the_documented_functions():
    names = declared_functions()
    assert len(names) == len(set(names)), "a function is declared twice"
    for expected in ("bgad_version", "bgad_vector_kernels", "bgad_gemm_counters"):
        assert expected in names


def test_every_declared_function_is_exported():
    missing = [n for n in declared_functions() if not hasattr(lib, n)]
    assert not missing, f"declared in bgad.h but not exported by libbgad.so: {missing}"
