"""RPAG: RandAugment-based pseudo anomaly generation (BGAD paper, Sec. 3.5).

Each known defect (an anomalous image and its mask) becomes many new training
anomalies: 3 distinct random augmentations are applied to the defect image and mask
together, and the result is pasted onto a normal image, in place if at least 2/3 of the
defect lies on the normal image's foreground, otherwise with every connected defect
region moved so that its centre lands on a random foreground point. The returned mask
is exact: the output differs from the normal image only where the mask is 1, and equals
the augmented defect there.

Images are ``uint8`` arrays ``(H, W)`` (gray) or ``(H, W, 3)`` (RGB); masks are
``(H, W)``, non-zero = defect / object. All work runs in the engine; the generator is
seeded and reproducible.

Example:
    >>> import numpy as np, bgad
    >>> normal = np.full((64, 64), 120, np.uint8)
    >>> anomaly = normal.copy(); anomaly[20:30, 20:24] = 10
    >>> mask = np.zeros((64, 64), np.uint8); mask[20:30, 20:24] = 1
    >>> image, m = bgad.rpag.RPAG(seed=0).generate(normal, anomaly, mask)
    >>> bool(((image != normal) <= (m == 1)).all())
    True

Command line (also ``bgad rpag``)::

    python -m bgad.rpag --normal DIR --anomalies A.png B.png --masks A_mask.png B_mask.png \\
        --out OUT --n 16 --seed 0
"""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import io as _io

# `python -m bgad.rpag` runs this module again as __main__ after the package imported it;
# runpy's warning about that is harmless here.
import warnings as _warnings

_warnings.filterwarnings("ignore", message=r"'bgad\.rpag' found in sys\.modules", category=RuntimeWarning)
from ._errors import deprecated_alias
from ._native import BGADError, NativeHandle, check, function, ptr

_create = function("bgad_rpag_create")
_generate = function("bgad_rpag_generate")
_augment = function("bgad_rpag_augment")
_otsu = function("bgad_otsu_threshold")
_foreground = function("bgad_foreground_mask")

#: Names of the augmentations, in the engine's numbering (``bgad_rpag_augment``).
AUGMENTATIONS: Tuple[str, ...] = (
    "rotate90", "flip", "transpose", "shift_scale_rotate", "optical_distortion", "grid_distortion",
    "gaussian_noise", "box_blur", "median_blur", "motion_blur", "sharpen", "emboss", "clahe",
    "brightness_contrast", "hue_saturation",
)
#: The augmentations that move pixels (and therefore the mask).
GEOMETRIC: Tuple[str, ...] = AUGMENTATIONS[:6]

_FG_MODES = {"otsu": 0, "whole": 1}


def _image(value, name: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype != np.uint8:
        raise BGADError(f"{name}: expected a uint8 image, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise BGADError(f"{name}: expected shape (H, W) or (H, W, 3), got {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise BGADError(f"{name}: empty image of shape {a.shape}")
    return np.ascontiguousarray(a)


def _mask(value, name: str, shape: Tuple[int, int]) -> np.ndarray:
    m = np.asarray(value)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.shape != shape:
        raise BGADError(f"{name}: expected shape {shape}, got {m.shape}")
    if m.dtype.kind not in "biuf":
        raise BGADError(f"{name}: expected numbers, got dtype {m.dtype}")
    if m.dtype.kind == "f" and not np.isfinite(m).all():
        raise BGADError(f"{name}: contains NaN or infinite values")
    return np.ascontiguousarray(m != 0, dtype=np.uint8)


def _fg_mode(mode: str) -> int:
    try:
        return _FG_MODES[mode]
    except (KeyError, TypeError):
        raise BGADError(f"foreground mode must be 'otsu' or 'whole', got {mode!r}") from None


def otsu_threshold(gray: np.ndarray) -> int:
    """Otsu's threshold of 8-bit values; equal to ``skimage.filters.threshold_otsu``
    on a ``uint8`` image (foreground = ``value > t``)."""
    g = np.ascontiguousarray(np.asarray(gray), dtype=None)
    if g.dtype != np.uint8:
        raise BGADError(f"gray: expected uint8 values, got dtype {g.dtype}")
    if g.size == 0:
        raise BGADError("gray: empty input")
    g = np.ascontiguousarray(g.ravel())
    out = ctypes.c_int32()
    check(_otsu(ptr(g, ctypes.c_uint8), g.size, ctypes.byref(out)))
    return int(out.value)


def foreground_mask(image: np.ndarray, mode: str = "otsu") -> np.ndarray:
    """The object region of an image, as a ``uint8`` 0/1 mask of shape ``(H, W)``.

    Args:
        image: ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
        mode: ``"otsu"`` -- Otsu threshold of the gray image; the polarity is automatic
            (the class holding most of the outermost ring of pixels is background);
            then a closing and an opening with a ``(2r+1)²`` square,
            ``r = max(1, min(H, W) // 128)``, and hole filling; an empty result becomes
            the whole image. ``"whole"`` -- every pixel (textures, or images the object
            fills).
    """
    a = _image(image, "image")
    m = _fg_mode(mode)
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else 3
    out = np.empty((h, w), np.uint8)
    check(_foreground(ptr(a, ctypes.c_uint8), h, w, c, m, ptr(out, ctypes.c_uint8)))
    return out


class RPAG(NativeHandle):
    """A seeded pseudo anomaly generator (one random stream; not thread-safe).

    Args:
        seed: any integer; the same seed and inputs give the same outputs.
        foreground_mode: how the normal image's foreground is found when none is given to
            :meth:`generate` (``"otsu"`` or ``"whole"``, see :func:`foreground_mask`).
        always_apply: if False (default), each of the 3 drawn augmentation slots fires
            with the authors' probability (``albumentations`` list of the reference code:
            rotate90 / flip / transpose 0.5, strong optical distortion 1.0, noise, blur,
            shift-scale-rotate and mild distortions 0.2, CLAHE/sharpen/emboss/
            brightness-contrast and hue-saturation 0.3); if True every drawn slot fires.
    """

    _free_name = "bgad_rpag_free"

    def __init__(self, seed: int = 0, foreground_mode: str = "otsu", always_apply: bool = False):
        self.seed = int(seed)
        self.foreground_mode = foreground_mode
        self.always_apply = bool(always_apply)
        _fg_mode(foreground_mode)
        h = ctypes.c_void_p()
        check(_create(ctypes.c_uint64(self.seed & 0xFFFFFFFFFFFFFFFF), int(self.always_apply), ctypes.byref(h)))
        self._set_handle(h)

    def generate(
        self,
        normal: np.ndarray,
        anomaly: np.ndarray,
        anomaly_mask: np.ndarray,
        foreground: Optional[np.ndarray] = None,
        return_details: bool = False,
    ):
        """Generates one pseudo anomaly.

        Args:
            normal: the normal image ``I_n``, ``uint8`` ``(H, W)`` or ``(H, W, 3)``.
            anomaly: a known anomalous image ``I_a`` of the same shape.
            anomaly_mask: its defect mask ``M_a`` ``(H, W)``, non-zero = defect (not empty).
            foreground: optional object mask of ``normal`` (non-zero = object); default:
                :func:`foreground_mask` of ``normal`` with this generator's mode.
            return_details: also return a dict with ``augmented_image``,
                ``augmented_mask`` (0/1), ``source`` (int32 ``(H, W)``: for each output
                pixel the flat index of the augmented pixel pasted there, or -1),
                ``pasted_in_place`` and ``operations`` (names, in the order applied).

        Returns:
            ``(image, mask)``: the synthetic anomalous image and its exact 0/1 mask
            (plus the details dict when asked).
        """
        n = _image(normal, "normal")
        a = _image(anomaly, "anomaly")
        if a.shape != n.shape:
            raise BGADError(f"anomaly has shape {a.shape} but normal has {n.shape}")
        h, w = n.shape[:2]
        c = 1 if n.ndim == 2 else 3
        m = _mask(anomaly_mask, "anomaly_mask", (h, w))
        f = None if foreground is None else _mask(foreground, "foreground", (h, w))
        out = np.empty_like(n)
        out_mask = np.empty((h, w), np.uint8)
        null = ctypes.POINTER(ctypes.c_uint8)()
        if return_details:
            aug = np.empty_like(n)
            aug_mask = np.empty((h, w), np.uint8)
            source = np.empty((h, w), np.int32)
            info = np.empty(5, np.int32)
            extra = (ptr(aug, ctypes.c_uint8), ptr(aug_mask, ctypes.c_uint8), ptr(source, ctypes.c_int32),
                     ptr(info, ctypes.c_int32))
        else:
            extra = (null, null, ctypes.POINTER(ctypes.c_int32)(), ctypes.POINTER(ctypes.c_int32)())
        check(_generate(
            self._handle, ptr(n, ctypes.c_uint8), ptr(a, ctypes.c_uint8), ptr(m, ctypes.c_uint8),
            null if f is None else ptr(f, ctypes.c_uint8), _fg_mode(self.foreground_mode), h, w, c,
            ptr(out, ctypes.c_uint8), ptr(out_mask, ctypes.c_uint8), *extra,
        ))
        if not return_details:
            return out, out_mask
        details = {
            "augmented_image": aug,
            "augmented_mask": aug_mask,
            "source": source,
            "pasted_in_place": bool(info[0]),
            "operations": [AUGMENTATIONS[i] for i in info[2 : 2 + info[1]]],
        }
        return out, out_mask, details

    def augment(self, name: str, image: np.ndarray, mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Applies one augmentation (one of :data:`AUGMENTATIONS`) with random parameters
        from this generator to an image and its mask; geometric ones move both the same
        way, photometric ones leave the mask unchanged. The output keeps the input's
        shape (on a non-square image, rotate90 uses half turns only and transpose becomes
        a half turn). Mask values are carried as they are (not binarised)."""
        try:
            idx = AUGMENTATIONS.index(name)
        except ValueError:
            raise BGADError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}") from None
        img = _image(image, "image")
        h, w = img.shape[:2]
        c = 1 if img.ndim == 2 else 3
        if mask is None:
            m = np.zeros((h, w), np.uint8)
        else:
            m = np.asarray(mask)
            if m.shape != (h, w) or m.dtype != np.uint8:
                raise BGADError(f"mask: expected a uint8 array of shape {(h, w)}, got {m.dtype} {m.shape}")
            m = np.ascontiguousarray(m)
        out = np.empty_like(img)
        out_mask = np.empty((h, w), np.uint8)
        check(_augment(self._handle, idx, ptr(img, ctypes.c_uint8), ptr(m, ctypes.c_uint8), h, w, c,
                       ptr(out, ctypes.c_uint8), ptr(out_mask, ctypes.c_uint8)))
        return out, out_mask


# --------------------------------------------------------------------------- samples

_IMAGE_SUFFIXES = (".png",)


def _list_images(normal_dir_or_paths: Union[str, os.PathLike, Sequence]) -> List[Path]:
    if isinstance(normal_dir_or_paths, (str, os.PathLike)):
        p = Path(normal_dir_or_paths)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
            if not files:
                raise BGADError(f"{p}: no .png images found")
            return files
        return [p]
    files = [Path(f) for f in normal_dir_or_paths]
    if not files:
        raise BGADError("no normal images given")
    return files


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask that touch the background (8-neighbourhood)."""
    m = mask.astype(bool)
    p = np.pad(m, 1, mode="constant")
    inner = np.ones_like(m)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            inner &= p[1 + dy : 1 + dy + m.shape[0], 1 + dx : 1 + dx + m.shape[1]]
    return m & ~inner


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Tiles rows of equally sized images (gray or RGB) into one RGB image with a
    white gap between tiles."""
    if not rows:
        raise BGADError("contact_sheet: no rows")
    tiles = [[_io.to_rgb(np.asarray(t, np.uint8)) for t in r] for r in rows]
    th = max(t.shape[0] for r in tiles for t in r)
    tw = max(t.shape[1] for r in tiles for t in r)
    ncol = max(len(r) for r in tiles)
    sheet = np.full((len(tiles) * (th + gap) + gap, ncol * (tw + gap) + gap, 3), 255, np.uint8)
    for i, r in enumerate(tiles):
        for j, t in enumerate(r):
            y, x = gap + i * (th + gap), gap + j * (tw + gap)
            sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
    return sheet


def mask_outline(image: np.ndarray, mask: np.ndarray, color=(255, 0, 0)) -> np.ndarray:
    """An RGB copy of ``image`` with the outline of ``mask`` drawn in ``color``."""
    out = _io.to_rgb(np.asarray(image, np.uint8)).copy()
    out[_outline(mask)] = color
    return out


def write_samples(
    normal_dir_or_paths: Union[str, os.PathLike, Sequence],
    anomaly_paths: Sequence,
    mask_paths: Sequence,
    out_dir: Union[str, os.PathLike],
    n: int = 16,
    seed: int = 0,
    foreground_mode: str = "otsu",
    mode: Optional[str] = None,
    sheet_rows: int = 8,
) -> Dict[str, object]:
    """Writes ``n`` RPAG samples and a contact sheet so a person can look at them.

    For sample ``i`` a normal image and a known anomaly (with its mask) are drawn at
    random (seeded), :meth:`RPAG.generate` makes the pseudo anomaly, and the files
    ``out_dir/rpag_{i:05d}.png`` (image) and ``out_dir/rpag_{i:05d}_mask.png`` (mask,
    0/255) are written. ``out_dir/contact_sheet.png`` shows the first ``sheet_rows``
    samples, one per row: normal image | known anomaly with its mask outlined in red |
    generated image | generated image with the new mask outlined in red.

    Args:
        normal_dir_or_paths: a folder of ``.png`` normal images, or a list of files.
        anomaly_paths, mask_paths: the known anomalies and their masks (same lengths).
        out_dir: created if missing.
        n: number of samples.
        seed: seeds both the choice of images and the generator.
        foreground_mode: ``"otsu"`` or ``"whole"``.
        mode: ``"gray"``, ``"rgb"`` or None (the anomalies' layout decides; normal
            images are converted to it).

    Returns:
        ``{"images": [...], "masks": [...], "contact_sheet": path}``.
    """
    normals = _list_images(normal_dir_or_paths)
    anomalies, masks = [Path(p) for p in anomaly_paths], [Path(p) for p in mask_paths]
    if not anomalies:
        raise BGADError("no anomaly images given")
    if len(anomalies) != len(masks):
        raise BGADError(f"{len(anomalies)} anomaly images but {len(masks)} masks")
    if int(n) < 1:
        raise BGADError(f"n must be >= 1, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    gen = RPAG(seed=seed, foreground_mode=foreground_mode)
    anomaly_images = [_io.read_png(p, mode) for p in anomalies]
    layout = "gray" if anomaly_images[0].ndim == 2 else "rgb"
    anomaly_images = [_io.read_png(p, layout) for p in anomalies]
    anomaly_masks = [_io.read_png(p, "gray") for p in masks]
    cache: Dict[Path, np.ndarray] = {}
    images, mask_files, rows = [], [], []
    for i in range(int(n)):
        npath = normals[int(rng.integers(len(normals)))]
        k = int(rng.integers(len(anomalies)))
        if npath not in cache:
            cache[npath] = _io.read_png(npath, layout)
        normal = cache[npath]
        img, m = gen.generate(normal, anomaly_images[k], anomaly_masks[k])
        ip, mp = out / f"rpag_{i:05d}.png", out / f"rpag_{i:05d}_mask.png"
        _io.write_png(ip, img)
        _io.write_png(mp, m * 255)
        images.append(str(ip))
        mask_files.append(str(mp))
        if len(rows) < sheet_rows:
            rows.append([normal, mask_outline(anomaly_images[k], anomaly_masks[k] != 0), img, mask_outline(img, m)])
    sheet = out / "contact_sheet.png"
    _io.write_png(sheet, contact_sheet(rows))
    return {"images": images, "masks": mask_files, "contact_sheet": str(sheet)}


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """The command-line options of ``python -m bgad.rpag`` (reusable by ``bgad rpag``)."""
    p = parser or argparse.ArgumentParser(
        prog="python -m bgad.rpag",
        description="Write N RPAG pseudo anomalies (image + mask PNGs) and a contact sheet.",
    )
    p.add_argument("--normal", required=True, help="folder of normal .png images (or one file)")
    p.add_argument("--anomalies", required=True, nargs="+", help="known anomalous images (.png)")
    p.add_argument("--masks", required=True, nargs="+", help="their defect masks (.png), same order")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=16, help="number of samples (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--foreground", choices=["otsu", "whole"], default="otsu",
                   help="foreground of the normal images: Otsu object mask or the whole image")
    p.add_argument("--mode", choices=["gray", "rgb"], default=None, help="colour layout (default: the anomalies')")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m bgad.rpag``; returns the exit status."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Runs the command on options parsed by :func:`build_parser` (for ``bgad rpag``:
    ``build_parser(subparsers.add_parser("rpag"))`` then ``run(args)``); returns the
    exit status."""
    try:
        result = write_samples(args.normal, args.anomalies, args.masks, args.out, args.n, args.seed,
                               foreground_mode=args.foreground, mode=args.mode)
    except BGADError as exc:
        print(f"error: {exc}")
        return 1
    print(f"wrote {len(result['images'])} samples and {result['contact_sheet']}")
    return 0


#: Deprecated old name of :func:`mask_outline` (``bgad.visualize`` had an ``overlay`` of its own).
overlay = deprecated_alias(mask_outline, "overlay", "bgad.rpag")

__all__ = ["RPAG", "foreground_mask", "otsu_threshold", "write_samples", "contact_sheet", "mask_outline", "overlay",
           "AUGMENTATIONS", "GEOMETRIC", "main", "run", "build_parser"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
