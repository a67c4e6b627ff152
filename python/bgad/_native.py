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

Every C signature is written once, in :data:`SIGNATURES` (in the order of
``CInterop/include/bgad.h``, then ``bgad_testing.h``), and applied when the library loads;
modules take their functions with :func:`function` and wrap every call in :func:`check`,
which turns a non-zero status into :class:`BGADError` with the library's own message. The
ABI version expected is read from ``bgad.h`` itself.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _blas, _elf
from ._errors import BGADError

_STATUS_NAMES = {
    1: "invalid argument",
    2: "I/O error",
    3: "format error",
    4: "cancelled",
    5: "internal error",
    6: "out of memory",
}


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


# ---------------------------------------------------------------------------- signatures
# ctypes spellings of the C types of bgad.h (table below).
_int = ctypes.c_int
i32, i64, u64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64
f32, f64 = ctypes.c_float, ctypes.c_double
char_p, void_p = ctypes.c_char_p, ctypes.c_void_p
u8_p = ctypes.POINTER(ctypes.c_uint8)
i32_p, i64_p = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int64)
f32_p, f64_p = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_double)
f32_pp, char_pp = ctypes.POINTER(f32_p), ctypes.POINTER(ctypes.c_char_p)
#: An opaque handle (``bgad_flow_t *``, ``bgad_model_t *``, ``bgad_detector *``...) and the
#: out-parameter that receives one.
handle, handle_out = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)


class Image(ctypes.Structure):
    """``bgad_image``: one 8-bit image (or mask) buffer."""

    _fields_ = [("pixels", u8_p), ("height", ctypes.c_int64), ("width", ctypes.c_int64),
                ("channels", ctypes.c_int64)]


image_p = ctypes.POINTER(Image)
#: ``bgad_progress_fn``: (step, total, loss, user data) -> 0 to continue, non-zero to cancel.
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p)
#: ``bgad_image_loader``: (kind, index, image*, mask*, user data) -> 0 or stop.
LOADER_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_int64, image_p, image_p, ctypes.c_void_p)

#: Every C function the package and its tests call, ``name: (restype, argtypes)``, in the
#: order of ``bgad.h`` (sections Library, Image, RPAG, Backbone, Flow, Model, Detector,
#: Metrics), then ``bgad_testing.h``. The one place a signature is written in Python;
#: ``tests/test_abi.py`` checks it against both headers.
SIGNATURES: Dict[str, Tuple[Any, List[Any]]] = {
    # -- bgad.h
    "bgad_version": (char_p, []),
    "bgad_abi_version": (i32, []),
    "bgad_last_error": (char_p, []),
    "bgad_set_num_threads": (_int, [i32]),
    "bgad_get_num_threads": (i32, []),
    "bgad_gemm_counters": (_int, [i64_p, i64_p, i32]),
    "bgad_vector_kernels": (char_p, []),
    "bgad_png_decode_info": (_int, [u8_p, i64, i32, i64_p, i64_p, i64_p]),
    "bgad_png_decode": (_int, [u8_p, i64, i32, u8_p, i64, i64, i64]),
    "bgad_png_write": (_int, [char_p, u8_p, i64, i64, i64, i32]),
    "bgad_resize_bilinear_u8": (_int, [u8_p, i64, i64, i64, u8_p, i64, i64]),
    "bgad_resize_bilinear_f32": (_int, [f32_p, i64, i64, i64, f32_p, i64, i64]),
    "bgad_resize_nearest_u8": (_int, [u8_p, i64, i64, i64, u8_p, i64, i64]),
    "bgad_resize_nearest_f32": (_int, [f32_p, i64, i64, i64, f32_p, i64, i64]),
    "bgad_otsu_threshold": (_int, [u8_p, i64, i32_p]),
    "bgad_foreground_mask": (_int, [u8_p, i64, i64, i64, i32, u8_p]),
    "bgad_rpag_create": (_int, [u64, i32, handle_out]),
    "bgad_rpag_free": (_int, [handle]),
    "bgad_rpag_generate": (_int, [handle, u8_p, u8_p, u8_p, u8_p, i32, i64, i64, i64, u8_p, u8_p, u8_p, u8_p, i32_p, i32_p]),
    "bgad_rpag_augment": (_int, [handle, i32, u8_p, u8_p, i64, i64, i64, u8_p, u8_p]),
    "bgad_backbone_load_variant": (_int, [char_p, i32, handle_out]),
    "bgad_backbone_free": (_int, [handle]),
    "bgad_backbone_variant": (_int, [handle, i32_p]),
    "bgad_backbone_variant_feature_shape": (_int, [i32, i64, i64, i32, i64_p, i64_p, i64_p]),
    "bgad_backbone_features": (_int, [handle, u8_p, i64, i64, i64, i64, i64, i64, i32_p, i64, f32_pp]),
    "bgad_backbone_features_preprocessed": (_int, [handle, f32_p, i32, i64, i64, i64, i32_p, i64, f32_pp]),
    "bgad_backbone_classify": (_int, [handle, u8_p, i64, i64, i64, i64, i64, i64, f32_p]),
    "bgad_backbone_classify_preprocessed": (_int, [handle, f32_p, i32, i64, i64, i64, f32_p]),
    "bgad_flow_create": (_int, [i64, i64, i64, f32, u64, handle_out]),
    "bgad_flow_free": (_int, [handle]),
    "bgad_flow_shape": (_int, [handle, i64_p, i64_p, i64_p]),
    "bgad_flow_forward": (_int, [handle, f32_p, i64, f32_p, i64, i32_p, f32_p, f32_p]),
    "bgad_flow_log_likelihood": (_int, [handle, f32_p, i64, f32_p, i64, i32_p, f32_p]),
    "bgad_flow_inverse": (_int, [handle, f32_p, i64, f32_p, i64, i32_p, f32_p, f32_p]),
    "bgad_flow_train_step": (_int, [handle, f32_p, i64, f32_p, i64, i32_p, f32, i32, f32_p]),
    "bgad_flow_compute_gradients": (_int, [handle, f32_p, i64, f32_p, i64, i32_p, i32, f32_p]),
    "bgad_flow_input_gradient": (_int, [handle, f32_p, i64]),
    "bgad_flow_parameter_count": (_int, [handle, i64_p]),
    "bgad_flow_parameter_name": (_int, [handle, i64, char_p, i64]),
    "bgad_flow_parameter_shape": (_int, [handle, char_p, i64_p, i32_p]),
    "bgad_flow_get_parameter": (_int, [handle, char_p, f32_p, i64]),
    "bgad_flow_set_parameter": (_int, [handle, char_p, f32_p, i64]),
    "bgad_flow_get_gradient": (_int, [handle, char_p, f32_p, i64]),
    "bgad_positional_encoding": (_int, [i64, i64, i64, f32_p]),
    "bgad_model_create": (_int, [i64, i64_p, handle_out]),
    "bgad_model_free": (_int, [handle]),
    "bgad_model_set_param": (_int, [handle, char_p, char_p]),
    "bgad_model_get_param": (_int, [handle, char_p, char_p, i64, i64_p]),
    "bgad_model_default_params": (_int, [char_p, i64, i64_p]),
    "bgad_model_num_levels": (_int, [handle, i64_p]),
    "bgad_model_channels": (_int, [handle, i64_p]),
    "bgad_model_fit": (_int, [handle, f32_pp, i64, f32_pp, i64, i64_p, i64_p, u8_p, i64, i64, i64, i64, PROGRESS_FN, void_p]),
    "bgad_model_score_maps": (_int, [handle, f32_pp, i64, i64_p, i64_p, i64, i64, f32_p]),
    "bgad_model_score_images": (_int, [handle, f32_pp, i64, i64_p, i64_p, i64, i64, f64_p]),
    "bgad_model_history_length": (_int, [handle, i64, i64_p]),
    "bgad_model_history": (_int, [handle, i64, f64_p, i64]),
    "bgad_model_separation": (_int, [handle, f64_p]),
    "bgad_model_log_likelihoods": (_int, [handle, f32_pp, i64, i64_p, i64_p, f32_pp]),
    "bgad_model_calibration": (_int, [handle, f64_p, f64_p, f64_p, f64_p, i64_p, i64_p, f64_p]),
    "bgad_model_is_trained": (_int, [handle, i32_p]),
    "bgad_model_save": (_int, [handle, char_p]),
    "bgad_model_load": (_int, [char_p, handle_out]),
    "bgad_detector_create": (_int, [char_p, handle_out]),
    "bgad_detector_config": (_int, [handle, char_p, i64, i64_p]),
    "bgad_detector_is_fitted": (_int, [handle, i32_p]),
    "bgad_detector_fit": (_int, [handle, image_p, i64, image_p, image_p, i64, PROGRESS_FN, void_p]),
    "bgad_detector_fit_paths": (_int, [handle, char_pp, i64, char_pp, char_pp, i64, PROGRESS_FN, void_p]),
    "bgad_detector_predict": (_int, [handle, image_p, i64, f64_p, i32_p, f32_pp]),
    "bgad_detector_predict_path": (_int, [handle, char_p, f64_p, i32_p, f32_p, i64, i64_p, i64_p]),
    "bgad_detector_thresholds": (_int, [handle, f64_p, f64_p]),
    "bgad_detector_backbone_sha256": (_int, [handle, char_p]),
    "bgad_detector_history_length": (_int, [handle, i64, i64_p]),
    "bgad_detector_history": (_int, [handle, i64, f64_p, i64]),
    "bgad_detector_separation": (_int, [handle, f64_p]),
    "bgad_detector_save": (_int, [handle, char_p]),
    "bgad_detector_load": (_int, [char_p, handle_out]),
    "bgad_detector_to_bytes": (_int, [handle, u8_p, i64, i64_p]),
    "bgad_detector_from_bytes": (_int, [u8_p, i64, handle_out]),
    "bgad_detector_free": (_int, [handle]),
    "bgad_detector_fit_loader": (_int, [handle, i64, i64, LOADER_FN, void_p, PROGRESS_FN, void_p]),
    "bgad_detector_tensor_count": (_int, [handle, i64_p]),
    "bgad_detector_tensor_info": (_int, [handle, i64, char_p, i64, i64_p, i64_p, i64, i64_p]),
    "bgad_detector_tensor": (_int, [handle, i64, f32_p, i64, i64_p]),
    "bgad_roc_auc": (_int, [f64_p, f64_p, i64, f64_p]),
    "bgad_average_precision": (_int, [f64_p, f64_p, i64, f64_p]),
    "bgad_f1_optimal_threshold": (_int, [f64_p, f64_p, i64, f64_p, f64_p]),
    "bgad_pixel_roc_auc": (_int, [u8_p, f32_p, i64, i64, i64, f64_p]),
    "bgad_au_pro": (_int, [u8_p, f32_p, i64, i64, i64, f64, f64_p]),
    # -- bgad_testing.h
    "bgad_backbone_load": (_int, [char_p, handle_out]),
    "bgad_backbone_feature_shape": (_int, [i64, i64, i32, i64_p, i64_p, i64_p]),
    "bgad_explicit_boundaries": (_int, [f32_p, u8_p, i64, f64, f64, f64, f32_p, f32_p]),
    "bgad_boundary_guided_loss": (_int, [f32_p, u8_p, i64, i32, f32, f32, f32_p, f32_p, i32, f64, f64, f64_p, f32_p]),
    "bgad_focal_weights": (_int, [f32_p, i64, f32_p, f32_p]),
}


def _declare(name: str) -> Any:
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = SIGNATURES[name]
    return fn


def header_dir() -> Optional[Path]:
    """The folder holding ``bgad.h``: the package's ``include`` (an installed wheel), else
    the source tree's ``CInterop/include``; None when neither has it."""
    here = Path(__file__).resolve().parent
    for folder in (here / "include", here.parent.parent / "CInterop" / "include"):
        if (folder / "bgad.h").is_file():
            return folder
    return None


def _header_abi_version() -> int:
    """``BGAD_ABI_VERSION`` as ``bgad.h`` defines it (the header is the one source)."""
    folder = header_dir()
    if folder is None:
        raise ImportError("bgad.h not found beside the package (include/) nor in a source tree: "
                          "the bgad installation is incomplete; reinstall it")
    m = re.search(r"^#define\s+BGAD_ABI_VERSION\s+(\d+)", (folder / "bgad.h").read_text(), re.M)
    if m is None:
        raise ImportError(f"{folder / 'bgad.h'} does not define BGAD_ABI_VERSION")
    return int(m.group(1))


#: The ABI version this binding was written for: ``BGAD_ABI_VERSION`` in ``bgad.h``.
ABI_VERSION = _header_abi_version()

for _name in ("bgad_version", "bgad_abi_version", "bgad_last_error"):
    _declare(_name)
_abi = lib.bgad_abi_version()
if _abi != ABI_VERSION:
    raise ImportError(
        f"{lib_path} has ABI version {_abi}, but this bgad package needs {ABI_VERSION}; "
        "rebuild the library from the same source tree."
    )
for _name in SIGNATURES:
    _declare(_name)


def function(name: str) -> Any:
    """The C function ``name`` with its signature from :data:`SIGNATURES` (a name missing
    there is a bug in the package: KeyError)."""
    if name not in SIGNATURES:
        raise KeyError(f"{name} is not in bgad._native.SIGNATURES")
    return getattr(lib, name)


class NativeHandle:
    """Base of every Python object that owns a native one (a flow, an RPAG generator, a
    backbone, a model, a detector): it holds the opaque handle and frees it exactly once,
    with the C function named by ``_free_name`` — on :meth:`close`, on leaving a ``with``
    block, when :meth:`_set_handle` replaces it, or when the object is garbage-collected.

    Pickling is refused with a clear error unless the subclass defines its own
    ``__getstate__``/``__setstate__`` (the Detector pickles by value, as its bytes).
    """

    #: Name of the C function that frees the handle (``"bgad_flow_free"``...); subclasses set it.
    _free_name: str = ""
    #: The handle (None: none held). A class default, so that ``__del__`` is safe when
    #: ``__init__`` failed before taking one.
    _handle: Optional[ctypes.c_void_p] = None

    def _set_handle(self, handle: Optional[ctypes.c_void_p]) -> None:
        """Takes ownership of ``handle`` (None: hold nothing) and frees the one held before."""
        old, self._handle = self._handle, handle
        if old is not None and old.value:
            function(self._free_name)(old)

    def _require_handle(self) -> ctypes.c_void_p:
        """The handle; :class:`BGADError` when the object was closed."""
        if self._handle is None:
            raise BGADError(f"this {type(self).__name__} has been closed")
        return self._handle

    @property
    def closed(self) -> bool:
        """True once :meth:`close` freed the native object (or none was made)."""
        return self._handle is None

    def close(self) -> None:
        """Frees the native object now (also done when this object is garbage-collected)."""
        self._set_handle(None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown: the library may be gone
            pass

    def __getstate__(self) -> Dict[str, Any]:
        raise TypeError(f"a {type(self).__name__} holds a native object and cannot be pickled "
                        "(save it to a file, or pickle a bgad.Detector, which travels by value)")


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


# Pointer types the modules build arguments with (the same objects as the table's).
c_double_p, c_float_p, c_uint8_p, c_int32_p, c_int64_p = f64_p, f32_p, u8_p, i32_p, i64_p


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
