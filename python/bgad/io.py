"""Images in and out, in one place: reading (PNG through the engine's libpng, JPEG/BMP/TIFF
through Pillow), masks, gray → RGB, resizing (the engine's Pillow-exact bilinear and
nearest rules), writing PNGs, and listing users' folders. Numpy in, numpy out.

* :func:`read_image` / :func:`read_mask`: a path or a uint8 array → a uint8 image / a 0/1 mask.
* :func:`to_rgb`: gray ``(H, W)`` → ``(H, W, 3)`` by replication (RGB unchanged).
* :func:`resize`: ``(H, W[, C])`` uint8/float32 to a new size (``bgad.backbone.resize`` is
  the same function).
* :func:`read_png`, :func:`decode_png`, :func:`write_png`, :func:`read_any`,
  :func:`list_images`, :func:`pair_masks`, :func:`image_shape`.

PNG decoding:

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
import glob
import os
import stat
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ._native import BGADError, c_path, check, function, ptr, size_pair

_decode_info = function("bgad_png_decode_info")
_decode = function("bgad_png_decode")
_write = function("bgad_png_write")
_resize_fns = {
    ("bilinear", np.uint8): function("bgad_resize_bilinear_u8"),
    ("bilinear", np.float32): function("bgad_resize_bilinear_f32"),
    ("nearest", np.uint8): function("bgad_resize_nearest_u8"),
    ("nearest", np.float32): function("bgad_resize_nearest_f32"),
}

_MODES = {None: 0, "native": 0, "gray": 1, "rgb": 3}

#: File name endings read as images: PNG natively, the others through Pillow.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Largest image (pixels) any reader decodes: the engine's PNG limit (``PNG.maxPixels``,
#: 2²⁸), applied to Pillow's formats too before they are decoded.
MAX_PIXELS = 1 << 28

PathLike = Union[str, "os.PathLike[str]"]
#: An image as the readers take it: a path or a uint8 array.
ImageLike = Union[str, os.PathLike, np.ndarray]


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


def is_image_file(path: PathLike) -> bool:
    """True when ``path`` ends with one of :data:`IMAGE_SUFFIXES` (any case)."""
    return os.fspath(path).lower().endswith(IMAGE_SUFFIXES)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")  # dot files: macOS' "._a.png" resource forks, editors' copies


def _folder_images(folder: str) -> List[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not _is_hidden(d)]
        out += [os.path.join(root, f) for f in files if is_image_file(f) and not _is_hidden(f)]
    return out


def _list_file_images(list_file: str) -> List[str]:
    base = os.path.dirname(os.path.abspath(list_file))
    out = []
    try:
        with open(list_file, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BGADError(f"{list_file}: cannot read the list of images ({exc})", 2) from None
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = entry if os.path.isabs(entry) else os.path.join(base, entry)
        if not os.path.isfile(path):
            raise BGADError(f"{list_file}, line {number}: no such image file: {entry}", 2)
        if not is_image_file(path):
            raise BGADError(f"{list_file}, line {number}: not an image file ({', '.join(IMAGE_SUFFIXES)}): {entry}")
        out.append(path)
    return out


def list_images(spec: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    """The image files a specification names, sorted, without duplicates.

    ``spec`` is a folder (its image files, subfolders included, dot files skipped), a glob
    pattern (``"parts/*.jpg"``, ``"**"`` recursive), a ``.txt`` list file (one path a line,
    relative to the list file's folder; blank lines and ``#`` comments skipped), one image
    file, or a list of these (their images together). Only files ending with
    :data:`IMAGE_SUFFIXES` are taken from folders and patterns.

    Raises:
        BGADError: a folder, pattern or list that yields no image (naming it), a missing
            path, or a list entry that is missing or not an image (naming the line).
    """
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise BGADError("no image folder, pattern or list was given")
        return sorted({p for item in spec for p in list_images(item)})
    text = os.fspath(spec)
    if os.path.isdir(text):
        found = _folder_images(text)
        what = f"the folder {text}"
    elif os.path.isfile(text) and text.lower().endswith(".txt"):
        found = _list_file_images(text)
        what = f"the list file {text}"
    elif os.path.isfile(text):
        if not is_image_file(text):
            raise BGADError(f"{text}: not an image file ({', '.join(IMAGE_SUFFIXES)}) nor a .txt list of images")
        found = [text]
        what = text
    elif glob.has_magic(text):
        found = [p for p in glob.glob(text, recursive=True)
                 if os.path.isfile(p) and is_image_file(p) and not _is_hidden(os.path.basename(p))]
        what = f"the pattern {text}"
    else:
        raise BGADError(f"no such folder, image or list file: {text}", 2)
    if not found:
        raise BGADError(f"{what} holds no image file ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(set(found))


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def pair_masks(images: Sequence[str], masks: Sequence[str]) -> List[Optional[str]]:
    """The mask of each image, matched by file stem: the mask of ``a.jpg`` is named
    ``a.<any image suffix>`` or ``a_mask.<suffix>``; an image without one gets ``None``
    (its whole area is the defect).

    Raises:
        BGADError: a mask that matches no image, two masks for one image, or two images of
            the same stem (naming the files).
    """
    by_stem = {}
    for img in images:
        stem = _stem(img)
        if stem in by_stem:
            raise BGADError(f"two anomalous images share the stem '{stem}' ({by_stem[stem]}, {img}): "
                            "masks are matched by stem, rename one")
        by_stem[stem] = img
    out = {img: None for img in images}
    for m in masks:
        stem = _stem(m)
        img = by_stem.get(stem)
        if img is None and stem.endswith("_mask"):
            img = by_stem.get(stem[:-len("_mask")])
        if img is None:
            raise BGADError(f"mask {m} matches no anomalous image (the mask of a.png is named a.png or a_mask.png)")
        if out[img] is not None:
            raise BGADError(f"two masks for {img}: {out[img]} and {m}")
        out[img] = m
    return [out[img] for img in images]


def image_shape(path: PathLike) -> Tuple[int, int]:
    """``(height, width)`` of an image file from its header, without decoding the pixels
    (PNG by its IHDR chunk, other formats through Pillow)."""
    text = os.fspath(path)
    try:
        if text.lower().endswith(".png"):
            with open(text, "rb") as f:
                head = f.read(24)
            if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
                raise BGADError(f"{text}: not a PNG file (corrupt or truncated header)", 3)
            return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
        Image = _pillow(text)
        with Image.open(text) as im:
            return im.size[1], im.size[0]
    except OSError as exc:
        raise BGADError(f"{text}: cannot read ({getattr(exc, 'strerror', None) or exc})", 2) from None
    except BGADError:
        raise
    except Exception as exc:  # Pillow's own errors (UnidentifiedImageError is an OSError)
        raise BGADError(f"{text}: cannot be decoded ({exc})", 3) from None


def _pillow(path: str):
    """Pillow's Image module, or an error naming the file that needs it."""
    try:
        from PIL import Image  # type: ignore
    except ImportError:
        raise BGADError(f"{path}: only PNG is read without Pillow; install Pillow (pip install pillow) "
                        f"for {os.path.splitext(path)[1]} files") from None
    return Image


def read_any(path: PathLike) -> np.ndarray:
    """Reads an image file of any supported format as ``uint8`` ``(H, W)`` (gray) or
    ``(H, W, 3)`` (colour): PNG by the engine (see :func:`read_png`), JPEG/BMP/TIFF through
    Pillow. 16-bit images keep their most significant byte (``v >> 8``), as the PNG
    decoder does; alpha is dropped; palette and CMYK images become RGB. Images over
    :data:`MAX_PIXELS` pixels are refused before decoding.

    Raises:
        BGADError: missing/unreadable (status 2), corrupt, truncated or unsupported (status 3).
    """
    text = os.fspath(path)
    if not os.path.isfile(text):
        raise BGADError(f"image file not found: {text}", 2)
    if text.lower().endswith(".png"):
        return read_png(text)
    Image = _pillow(text)
    try:
        with Image.open(text) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise BGADError(f"{text}: {w}×{h} exceeds the limit of {MAX_PIXELS} pixels", 3)
            mode = im.mode
            if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
                a = np.asarray(im, dtype=np.int64)
                img = (np.clip(a, 0, 65535) >> 8).astype(np.uint8)
            elif mode == "F":
                raise BGADError(f"{text}: floating-point images are not supported (convert to 8 or 16 bits)", 3)
            elif mode in ("1", "L", "LA"):
                img = np.asarray(im.convert("L"))
            else:
                img = np.asarray(im.convert("RGB"))
    except BGADError:
        raise
    except OSError as exc:
        raise BGADError(f"{text}: cannot be decoded ({exc})", 3) from None
    except Exception as exc:  # DecompressionBombError, SyntaxError of broken files...
        raise BGADError(f"{text}: cannot be decoded ({exc})", 3) from None
    return np.ascontiguousarray(img, dtype=np.uint8)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An ``(H, W, 3)`` image: a gray ``(H, W)`` one with its value in each channel (as the
    engine makes gray images RGB); an image that already has channels is returned as is."""
    a = np.asarray(image)
    return np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a


def read_image(src: ImageLike, mode: Optional[str] = None) -> np.ndarray:
    """Reads an image: a uint8 array is returned as is; a path is decoded by
    :func:`read_any` (PNG by the engine, JPEG/BMP/TIFF through Pillow, 16-bit
    reduced to 8). ``mode`` = ``"gray"``, ``"rgb"`` or ``None`` (as stored)."""
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8:
            raise BGADError(f"image arrays must be uint8, got {src.dtype}")
        if src.ndim not in (2, 3) or (src.ndim == 3 and src.shape[2] not in (1, 3)):
            raise BGADError(f"image arrays must be (H, W) or (H, W, 3), got shape {src.shape}")
        img = src[..., 0] if src.ndim == 3 and src.shape[2] == 1 else src
    elif not isinstance(src, (str, bytes, os.PathLike)):
        raise BGADError(f"an image must be a uint8 array or a path, got {type(src).__name__}")
    else:
        img = read_any(src)
    if mode == "gray" and img.ndim == 3:
        img = np.round(img @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
    elif mode == "rgb":
        img = to_rgb(img)
    return np.ascontiguousarray(img)


def read_mask(src: Union[ImageLike, None], shape) -> np.ndarray:
    """A binary uint8 mask (1 = defect) from a path or array; ``None`` → whole image."""
    if src is None:
        return np.ones(shape, np.uint8)
    m = read_image(src) if not isinstance(src, np.ndarray) or src.dtype == np.uint8 else np.asarray(src)
    if m.ndim == 3:
        m = m.max(axis=2)
    return (np.asarray(m) > 0).astype(np.uint8)


def resize(image: np.ndarray, size, mode: str = "bilinear") -> np.ndarray:
    """Resizes an ``(H, W)`` or ``(H, W, C)`` image (uint8 or float32) to ``size``.

    Args:
        image: the image; other dtypes are converted to float32.
        size: an int (square) or ``(height, width)``. Note: Pillow's ``resize`` takes
            ``(width, height)``; this function takes ``(height, width)`` like numpy shapes.
        mode: ``"bilinear"`` -- Pillow's ``Image.resize(..., Image.BILINEAR)`` (antialiased
            when shrinking; bit-exact on uint8) -- or ``"nearest"`` -- PyTorch's
            ``F.interpolate(mode="nearest")`` rule ``src = floor(dst * in / out)``, for masks.

    Returns:
        the resized image with the same number of dimensions: uint8 for uint8 input (and
        for bool with ``"bilinear"``), bool for bool masks with ``"nearest"``, float32
        otherwise.
    """
    if mode not in ("bilinear", "nearest"):
        raise BGADError(f"resize: mode must be 'bilinear' or 'nearest', got {mode!r}")
    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise BGADError(f"resize: expected an (H, W) or (H, W, C) image, got shape {arr.shape}")
    if arr.dtype == np.bool_ and mode == "nearest":  # masks keep their dtype
        return resize(arr.view(np.uint8), size, mode).astype(bool)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    dtype = np.uint8 if arr.dtype == np.uint8 else np.float32
    if arr.dtype.kind not in "biuf":
        raise BGADError(f"resize: expected numbers, got dtype {arr.dtype}")
    src = np.ascontiguousarray(arr, dtype=dtype)
    h, w = src.shape[:2]
    c = 1 if src.ndim == 2 else src.shape[2]
    oh, ow = size_pair(size)
    out = np.empty((oh, ow) + src.shape[2:], dtype)
    ctype = ctypes.c_uint8 if dtype == np.uint8 else ctypes.c_float
    check(_resize_fns[(mode, dtype)](ptr(src, ctype), h, w, c, ptr(out, ctype), oh, ow))
    return out


__all__ = ["read_image", "read_mask", "to_rgb", "resize", "read_png", "write_png", "decode_png", "read_any", "list_images", "pair_masks", "image_shape", "is_image_file",
           "IMAGE_SUFFIXES", "MAX_PIXELS", "ImageLike"]
