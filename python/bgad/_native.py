"""Loading of ``libbgad.so`` and the ctypes plumbing shared by every module.

The library is searched, in order:

1. the path in the environment variable ``BGAD_LIBRARY``;
2. ``libbgad.so`` next to this file (an installed package);
3. the SwiftPM build folders of a development tree (``.build/release``, then
   ``.build/debug``, relative to the repository root).

OpenBLAS kernels: the library of an installed wheel (or ``pip install .``) uses the
OpenBLAS copied beside it (``libscipy_openblas_bgad.so``, see ``setup.py``), which chooses
its kernels from the CPU itself. A library that links the system ``libopenblas.so.0``
(a development build) may meet a distribution OpenBLAS older than the CPU, which falls
back to SSE3 kernels; for such a library only, and only when the user has not set
``OPENBLAS_CORETYPE``, the loader sets it from the CPU's flags (:mod:`bgad._blas`)
before loading. :func:`openblas_corename` tells which kernels run.

Each module of the package declares the signatures it uses with :func:`declare`
(mirroring ``CInterop/include/bgad.h``) and wraps every call in :func:`check`, which
turns a non-zero status into :class:`BGADError` with the library's own message.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import _blas, _elf

#: The ABI version this binding was written for (``BGAD_ABI_VERSION`` in ``bgad.h``).
ABI_VERSION = 1

_STATUS_NAMES = {
    1: "invalid argument",
    2: "I/O error",
    3: "format error",
    4: "cancelled",
    5: "internal error",
    6: "out of memory",
}


class BGADError(RuntimeError):
    """An error reported by the bgad engine (bad input, bad file, cancellation...).

    Attributes:
        status: the engine's status code (see ``bgad.h``), or 0 for errors raised by the
            Python layer itself.
    """

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    found = []
    env = os.environ.get("BGAD_LIBRARY")
    if env:
        found.append(Path(env))
    found.append(here / "libbgad.so")
    root = here.parent.parent
    for config in ("release", "debug"):
        found.append(root / ".build" / config / "libbgad.so")
    return found


def _help_system_openblas(path: Path) -> None:
    """Sets ``OPENBLAS_CORETYPE`` from the CPU flags when the library at ``path`` links a
    system OpenBLAS and the user has not chosen; must run before the library loads."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return
    try:
        needed = _elf.read_dynamic(path).needed
    except (OSError, _elf.ELFError):
        return  # not ours to judge: ctypes reports a library that cannot load
    if _elf.links_openblas(needed):
        core = _blas.choose_openblas_coretype()
        if core:
            os.environ["OPENBLAS_CORETYPE"] = core


def _load() -> ctypes.CDLL:
    tried = []
    env = os.environ.get("BGAD_LIBRARY")
    for path in _candidates():
        if path.is_file():
            _help_system_openblas(path)
            return ctypes.CDLL(str(path))
        tried.append(str(path))
        if env and str(path) == env:
            raise ImportError(f"BGAD_LIBRARY={env} does not name a file")
    raise ImportError(
        "libbgad.so not found; tried: " + ", ".join(tried)
        + ". Install the wheel (`make wheel`, then `pip install dist/bgad-*.whl`), or build "
        "it with `swift build -c release -Xswiftc -static-stdlib`."
    )


lib = _load()
lib_path = lib._name

lib.bgad_version.restype = ctypes.c_char_p
lib.bgad_version.argtypes = []
lib.bgad_abi_version.restype = ctypes.c_int32
lib.bgad_abi_version.argtypes = []
lib.bgad_last_error.restype = ctypes.c_char_p
lib.bgad_last_error.argtypes = []

_abi = lib.bgad_abi_version()
if _abi != ABI_VERSION:
    raise ImportError(
        f"{lib_path} has ABI version {_abi}, but this bgad package needs {ABI_VERSION}; "
        "rebuild the library from the same source tree."
    )


def declare(name: str, argtypes: Sequence[Any], restype: Any = ctypes.c_int) -> Any:
    """Declares the signature of the C function ``name`` and returns it."""
    fn = getattr(lib, name)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


def c_path(path) -> bytes:
    """A file path as the bytes a C function takes; a path with a NUL byte is refused (C would
    cut it there and use another file than the one named)."""
    b = os.fsencode(os.fspath(path))
    if b"\0" in b:
        raise BGADError(f"the path {os.fspath(path)!r} contains a NUL byte", 1)
    return b


def check(status: int) -> None:
    """Raises :class:`BGADError` with the native message when ``status`` is non-zero."""
    if status != 0:
        message = lib.bgad_last_error().decode("utf-8", "replace")
        kind = _STATUS_NAMES.get(status, f"status {status}")
        raise BGADError(message or kind, status)


# Pointer types used in declarations.
c_double_p = ctypes.POINTER(ctypes.c_double)
c_float_p = ctypes.POINTER(ctypes.c_float)
c_uint8_p = ctypes.POINTER(ctypes.c_uint8)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
c_int64_p = ctypes.POINTER(ctypes.c_int64)


def ptr(array: np.ndarray, ctype: Any) -> Any:
    """A ctypes pointer to the data of a C-contiguous ``array`` (kept alive by the caller)."""
    assert array.flags["C_CONTIGUOUS"], "internal: array must be C-contiguous"
    return array.ctypes.data_as(ctypes.POINTER(ctype))


def as_array(value: Any, dtype: Any, name: str, ndim: Optional[int] = None) -> np.ndarray:
    """Converts ``value`` to a C-contiguous array of ``dtype``.

    Raises :class:`BGADError` naming ``name`` when the value cannot be converted or has
    the wrong number of dimensions. Floats converted from other dtypes keep their values;
    integer conversions are checked for loss.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise BGADError(f"{name}: cannot be converted to an array ({exc})") from None
    if arr.dtype == object:
        raise BGADError(f"{name}: expected numbers, got objects")
    if ndim is not None and arr.ndim != ndim:
        raise BGADError(f"{name}: expected {ndim} dimensions, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise BGADError(f"{name}: expected numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def size_pair(size: Any, name: str = "size") -> tuple:
    """``(height, width)`` from an int or a pair; raises :class:`BGADError` naming ``name``
    when it is neither or not positive."""
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        try:
            h, w = (int(v) for v in size)
        except Exception:
            raise BGADError(f"{name}: expected an int or (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise BGADError(f"{name}: must be positive, got {h}x{w}")
    return h, w


def openblas_corename() -> str:
    """The kernel set (``"SkylakeX"``, ``"Haswell"``, ``"Prescott"``...) chosen by the
    OpenBLAS that the loaded ``libbgad.so`` calls: the wheel's ``libscipy_openblas`` or the
    system's ``libopenblas``; "" when neither reports one."""
    for name in ("scipy_openblas_get_corename", "openblas_get_corename"):
        try:
            fn = getattr(lib, name)  # dlsym on libbgad's handle also searches its dependencies
        except AttributeError:
            continue
        fn.argtypes, fn.restype = [], ctypes.c_char_p
        return (fn() or b"").decode()
    return ""


def version() -> str:
    """Version string of the loaded native library."""
    return lib.bgad_version().decode()
