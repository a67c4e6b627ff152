"""PNG reading and writing through the engine (libpng), numpy in, numpy out.

Decoding accepts every PNG colour type (gray, gray+alpha, RGB, RGBA, palette) and bit
depth (1, 2, 4, 8, 16), interlaced or not, and returns ``uint8`` arrays:

* 16-bit samples keep their most significant byte (``v >> 8``). Pillow does the same
  for 16-bit RGB, but converts 16-bit gray (``I;16``) to ``L`` by clipping at 255.
* 1/2/4-bit gray is scaled by bit replication (a 1-bit 1 becomes 255, 2-bit 3 → 255).
* Palettes are expanded to RGB; alpha and ``tRNS`` transparency are dropped (not
  composited); ``gAMA``/``sRGB``/``iCCP`` are ignored (values are taken as stored).
* ``mode="gray"`` of a colour image is Pillow's ``convert("L")``:
  ``(19595 R + 38470 G + 7471 B + 32768) >> 16``; ``mode="rgb"`` of a gray image
  replicates the value.

A missing file raises :class:`bgad.BGADError` (status 2); a corrupt, truncated or
non-PNG file raises it with status 3. Nothing crashes.

Example:
    >>> import numpy as np, bgad
    >>> bgad.io.write_png("/tmp/x.png", np.zeros((4, 5), np.uint8))
    >>> bgad.io.read_png("/tmp/x.png").shape
    (4, 5)
"""

from __future__ import annotations

import ctypes
import os
import stat
from typing import Optional, Union

import numpy as np

from ._native import BGADError, c_path, c_int64_p, c_uint8_p, check, declare, ptr

_decode_info = declare(
    "bgad_png_decode_info", [c_uint8_p, ctypes.c_int64, ctypes.c_int32, c_int64_p, c_int64_p, c_int64_p]
)
_decode = declare(
    "bgad_png_decode",
    [c_uint8_p, ctypes.c_int64, ctypes.c_int32, c_uint8_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64],
)
_write = declare(
    "bgad_png_write",
    [ctypes.c_char_p, c_uint8_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32],
)

_MODES = {None: 0, "native": 0, "gray": 1, "rgb": 3}

PathLike = Union[str, "os.PathLike[str]"]


def _mode(mode: Optional[str]) -> int:
    try:
        return _MODES[mode if mode is None else str(mode).lower()]
    except KeyError:
        raise BGADError(f"mode must be 'gray', 'rgb' or None, got {mode!r}") from None


def decode_png(data: bytes, mode: Optional[str] = None) -> np.ndarray:
    """Decodes PNG bytes (see :func:`read_png` for ``mode`` and the conversion rules)."""
    m = _mode(mode)
    buf = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(1, np.uint8)
    size = len(data)
    h, w, c = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
    check(_decode_info(ptr(buf, ctypes.c_uint8), size, m, ctypes.byref(h), ctypes.byref(w), ctypes.byref(c)))
    shape = (h.value, w.value) if c.value == 1 else (h.value, w.value, c.value)
    out = np.empty(shape, np.uint8)
    check(_decode(ptr(buf, ctypes.c_uint8), size, m, ptr(out, ctypes.c_uint8), h.value, w.value, c.value))
    return out


def read_png(path: PathLike, mode: Optional[str] = None) -> np.ndarray:
    """Reads a PNG file into a ``uint8`` array.

    Args:
        path: the file.
        mode: ``"gray"`` → shape ``(H, W)``; ``"rgb"`` → ``(H, W, 3)``; ``None`` → the
            file's own layout (gray and gray+alpha → ``(H, W)``, others → ``(H, W, 3)``).

    Raises:
        BGADError: missing/unreadable file (status 2), corrupt/truncated/non-PNG (status 3).
    """
    _mode(mode)
    try:
        with open(path, "rb", buffering=0) as f:
            # a device or pipe (/dev/zero) would be read without end: only regular files
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise BGADError(f"{os.fspath(path)}: is not a regular file", 2)
            data = f.read()
    except OSError as exc:
        raise BGADError(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})", 2) from None
    try:
        return decode_png(data, mode)
    except BGADError as exc:
        raise BGADError(f"{os.fspath(path)}: {exc}", exc.status) from None


def write_png(path: PathLike, array: np.ndarray, compression_level: int = 6) -> None:
    """Writes an 8-bit gray ``(H, W)`` / ``(H, W, 1)`` or RGB ``(H, W, 3)`` array as PNG,
    atomically (temporary file in the same folder, then rename).

    Args:
        path: destination file.
        array: ``uint8`` values (bool is accepted and written as 0/255; other integer
            dtypes must hold values in 0..255).
        compression_level: zlib level 0..9.
    """
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        if a.dtype.kind not in "iu":
            raise BGADError(f"array: expected uint8 pixels, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise BGADError("array: values must be in 0..255")
        a = a.astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        c = 1
    elif a.ndim == 3 and a.shape[2] == 3:
        c = 3
    else:
        raise BGADError(f"array: expected shape (H, W) or (H, W, 3), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise BGADError(f"array: empty image of shape {a.shape}")
    a = np.ascontiguousarray(a)
    check(_write(c_path(path), ptr(a, ctypes.c_uint8), a.shape[0], a.shape[1], c, int(compression_level)))


__all__ = ["read_png", "write_png", "decode_png"]
