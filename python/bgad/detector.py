"""``bgad.Detector``: images in, anomaly maps out — a thin wrapper over the engine's detector.

The whole pipeline runs in the Swift engine behind ``bgad_detector_*`` (``bgad.h``):
backbone (EfficientNet-Lite0, or Lite1/Lite2) → RPAG pseudo anomalies (training only) → one conditional
flow per feature level (BGAD) → calibrated anomaly maps at each image's own size. This
module only turns Python inputs (paths, uint8 arrays) into image buffers, shows progress
and handles Ctrl-C; every rule and default lives in the engine.

Example::

    det = bgad.Detector(variant="bgad", seed=0)
    det.fit(normal_paths, anomalous_images=defect_paths, anomaly_masks=mask_paths)
    for p in det.predict(test_paths):
        print(p.score, p.is_anomalous, p.anomaly_map.shape)
    det.save("model.bgad"); det2 = bgad.Detector.load("model.bgad")
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._errors import renamed_keywords
from ._native import LOADER_FN, BGADError, NativeHandle, Image as _Image, c_path, c_double_p, c_float_p, c_int32_p, c_uint8_p, check, function
from ._progress import NativeProgress
from .io import ImageLike, read_image, read_mask

_create = function("bgad_detector_create")
_config = function("bgad_detector_config")
_is_fitted = function("bgad_detector_is_fitted")
_fit = function("bgad_detector_fit")
_fit_paths = function("bgad_detector_fit_paths")
_fit_loader = function("bgad_detector_fit_loader")
_predict = function("bgad_detector_predict")
_thresholds = function("bgad_detector_thresholds")
_backbone_sha256 = function("bgad_detector_backbone_sha256")
_save = function("bgad_detector_save")
_load = function("bgad_detector_load")
_to_bytes = function("bgad_detector_to_bytes")
_from_bytes = function("bgad_detector_from_bytes")
_free = function("bgad_detector_free")
_history_length = function("bgad_detector_history_length")
_history = function("bgad_detector_history")
_separation = function("bgad_detector_separation")
_tensor_count = function("bgad_detector_tensor_count")
_tensor_info = function("bgad_detector_tensor_info")
_tensor = function("bgad_detector_tensor")

#: Deprecated parameter names → their names now (kept for one release): ``levels`` meant
#: the backbone strides here but channel counts in :class:`bgad.BGAD`.
_RENAMED = {"levels": "strides"}


@dataclass
class Prediction:
    """The result for one image.

    Attributes:
        score: image anomaly score ``−log(min Σ)`` at the model resolution (``Σ``: the summed
            normality; the map is ``S_max − Σ``): ranks images as the map's maximum does, without
            its ties among strong defects.
        anomaly_map: ``(H, W)`` float32 anomaly map at the input image's size (``None``
            when maps were not asked for).
        is_anomalous: ``score > image_threshold_``, the detector's calibrated threshold.
    """

    score: float
    anomaly_map: Optional[np.ndarray]
    is_anomalous: bool


_decoders: Optional["concurrent.futures.ThreadPoolExecutor"] = None
_decoders_lock = threading.Lock()


def _forget_decoders() -> None:
    # A forked child has none of the parent's threads: it starts its own pool when needed.
    global _decoders, _decoders_lock
    _decoders, _decoders_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_decoders)


def _read_images(items: Sequence[ImageLike]) -> List[np.ndarray]:
    """:func:`read_image` of each item, in order. Files are decoded on up to the engine's
    thread count of threads at once (the engine's PNG decoder and Pillow release the GIL),
    so a batch of paths is not decoded one file after another; the first error is raised."""
    paths = sum(1 for x in items if not isinstance(x, np.ndarray))
    from . import get_num_threads

    workers = min(paths, get_num_threads())
    if workers < 2:
        return [read_image(x) for x in items]
    global _decoders
    with _decoders_lock:
        if _decoders is None or _decoders._max_workers < workers:  # noqa: SLF001 (grown once, kept)
            import concurrent.futures

            _decoders = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bgad-decode")
        pool = _decoders
    return list(pool.map(read_image, items))


# ---------------------------------------------------------------------- native plumbing


def _json_value(value: Any) -> Any:
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _config_json(params: Dict[str, Any]) -> bytes:
    """The engine's JSON configuration of Python parameters (``progress`` excluded)."""
    cfg = {k: _json_value(v) for k, v in params.items() if k != "progress"}
    for k, v in cfg.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise BGADError(f"{k} must be a finite number, got {v}")
    try:
        return json.dumps(cfg).encode()
    except TypeError as exc:
        raise BGADError(f"Detector parameters must be numbers, strings, booleans or lists: {exc}") from None


def _new_handle(params: Dict[str, Any]) -> ctypes.c_void_p:
    h = ctypes.c_void_p()
    check(_create(_config_json(params), ctypes.byref(h)))
    return h


def _read_config(handle: ctypes.c_void_p) -> Dict[str, Any]:
    """Every setting of a native detector (the engine's keys are the parameter names)."""
    needed = ctypes.c_int64()
    _config(handle, None, 0, ctypes.byref(needed))  # sizes the buffer (status: buffer too small)
    buf = ctypes.create_string_buffer(max(1, needed.value))
    check(_config(handle, buf, needed.value, ctypes.byref(needed)))
    cfg = json.loads(buf.value.decode())
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}


_defaults_cache: Optional[Dict[str, Any]] = None


def _engine_defaults() -> Dict[str, Any]:
    """The engine's default configuration (read once)."""
    global _defaults_cache
    if _defaults_cache is None:
        h = _new_handle({})
        try:
            _defaults_cache = _read_config(h)
        finally:
            _free(h)
    return dict(_defaults_cache)


def _images(arrays: Sequence[np.ndarray]):
    """A ctypes array of ``bgad_image`` over C-contiguous uint8 arrays (kept alive by the caller)."""
    out = (_Image * max(1, len(arrays)))()
    for i, a in enumerate(arrays):
        out[i] = _Image(a.ctypes.data_as(c_uint8_p), a.shape[0], a.shape[1], 1 if a.ndim == 2 else a.shape[2])
    return out


def _is_png_path(src: Any) -> bool:
    return isinstance(src, (str, os.PathLike)) and os.fspath(src).lower().endswith(".png")


def _paths(items: Sequence[Any]):
    arr = (ctypes.c_char_p * max(1, len(items)))()
    for i, p in enumerate(items):
        arr[i] = None if p is None else c_path(p)
    return arr


def _is_one_image(images: Any) -> bool:
    if isinstance(images, (str, os.PathLike)):
        return True
    return (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim in (2, 3)
            and not (images.ndim == 3 and images.shape[2] not in (1, 3)))


class _Loader:
    """The ``bgad_image_loader`` of a fit on paths (any format) or arrays: the engine asks
    for one image at a time, so only the image being read is held here. An error (a
    corrupt file...) stops the fit and is re-raised by :meth:`raise_pending`."""

    def __init__(self, normal: Sequence[Any], anomalous: Sequence[Any], masks: Sequence[Any]):
        self.normal, self.anomalous, self.masks = normal, anomalous, masks
        self.progress: Optional[NativeProgress] = None
        self.error: Optional[BaseException] = None
        self._held: List[np.ndarray] = []
        self.callback = LOADER_FN(self._load)

    def _load(self, kind: int, index: int, image, mask, _data) -> int:
        try:
            if self.progress is not None and self.progress.interrupted:
                return 1
            src = self.normal[index] if kind == 0 else self.anomalous[index]
            img = read_image(src)
            held = [img]
            image[0] = _Image(img.ctypes.data_as(c_uint8_p), img.shape[0], img.shape[1], 1 if img.ndim == 2 else 3)
            if kind == 1 and self.masks[index] is not None:
                m = np.ascontiguousarray(read_mask(self.masks[index], None))
                if m.shape != img.shape[:2]:
                    raise BGADError(f"mask {_name(self.masks[index])} is {m.shape[0]}×{m.shape[1]} but its image "
                                    f"{_name(src)} is {img.shape[0]}×{img.shape[1]}")
                held.append(m)
                mask[0] = _Image(m.ctypes.data_as(c_uint8_p), m.shape[0], m.shape[1], 1)
            self._held = held  # valid until the next call
            return 0
        except BaseException as exc:  # never unwinds through the C frames
            self.error = exc
            return 1

    def raise_pending(self) -> None:
        """Re-raises the error that stopped the fit, if any."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error


def _named(exc: BGADError, normal: Sequence[Any], anomalous: Sequence[Any], masks: Sequence[Any]) -> BGADError:
    """The engine's error with its leading "normal image i" / "anomalous image i" / "mask i"
    followed by the file's path (the engine only knows indices)."""
    import re

    m = re.match(r"(normal image|anomalous image|mask) (\d+)\b", str(exc))
    if m is None:
        return exc
    items = {"normal image": normal, "anomalous image": anomalous, "mask": masks}[m.group(1)]
    i = int(m.group(2))
    if i >= len(items) or items[i] is None:
        return exc
    text = str(exc)
    return BGADError(f"{text[:m.end()]} ({_name(items[i])}){text[m.end():]}", exc.status)


def _name(src: Any) -> str:
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else f"array of shape {np.shape(src)}"


class Detector(NativeHandle):
    """BGAD anomaly detector on images: the engine's detector behind a Python object.

    Every parameter is optional; one not given takes the engine's default (read back with
    :meth:`get_params`). Parameters (the engine's configuration keys, ``bgad.h``):

    - ``variant``: ``"bgad"`` (default), ``"bgad_wo"`` (no anomalies, semi-pull only) or
      ``"nfad"`` (ML loss only, the unsupervised baseline).
    - ``strides``: backbone strides used as feature levels (default ``(8, 16)``; the paper
      uses ``(4, 8, 16)``). ``levels`` is its deprecated old name (a DeprecationWarning;
      removed in the next release).
    - ``image_size``: side of the square model input; ``backbone``: ``"lite0"`` (default),
      ``"lite1"`` or ``"lite2"`` (the extras ``bgad[lite1]`` / ``bgad[lite2]``; docs/BACKBONES.md);
      ``weights``: path of the engine's converted backbone weight file (default: the one
      :func:`bgad.weights.prepare` writes, found at ``fit``).
    - ``tiling``: ``"auto"`` (default), ``"on"`` or ``"off"``: cover images with square tiles
      of ``min(short side, image_size)`` pixels (overlap ≥ 1/4) instead of resizing them
      whole — ``auto`` tiles strips (long side > 2 × short side) and images whose short side
      exceeds 4 × ``image_size``; each tile is scored, maps are stitched at full size, the
      image score is the maximum over the tiles; training tiles the same way (docs/INPUTS.md).
    - ``real_repeats``, ``rpag_per_anomaly``: how often each known anomaly is used and how
      many RPAG samples it yields; ``foreground``: ``"otsu"`` or ``"whole"`` (where RPAG
      pastes); ``feature_batch``: images per backbone call.
    - every BGAD training knob by its name (``steps``, ``lr``, ``batch_size``, ``beta``,
      ``seed``, ... — see :class:`bgad.BGAD`). The default is a budget of ``steps`` optimizer
      steps that does not depend on the number of images (docs/TRAINING.md); ``steps=0``
      with ``meta_epochs``/``sub_epochs`` selects the authors' epoch schedule. Two batch
      sizes, two names: ``batch_size`` is the training batch (images per optimizer batch),
      ``feature_batch`` the number of images per backbone call (fit and predict).
    - ``progress`` (Python only): tqdm bars during ``fit`` and ``predict``.

    An unknown parameter or a bad value raises :class:`BGADError` naming it. Follows
    scikit-learn's conventions (``get_params``/``set_params``, ``sklearn.base.clone``)
    and pickles by value (the fitted state travels as the engine's bytes).
    """

    _free_name = "bgad_detector_free"

    def __init__(self, progress: bool = True, **params: Any):
        self._params = renamed_keywords(params, _RENAMED, "Detector")
        self.progress = progress
        self._lock = threading.RLock()
        _free(_new_handle(self._params))  # validation: the engine names a bad key or value

    # ------------------------------------------------------------------ parameters

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """The constructor's parameters: the engine's defaults, overridden by those given
        (``deep`` is accepted for scikit-learn; there are no nested estimators)."""
        params = _engine_defaults()
        params.update(self._params)
        params["progress"] = self.progress
        return params

    def set_params(self, **params: Any) -> "Detector":
        """Sets parameters (checked by the engine now); they take effect at the next ``fit``."""
        params = renamed_keywords(params, _RENAMED, "Detector.set_params")
        if "progress" in params:
            self.progress = params.pop("progress")
        merged = {**self._params, **params}
        _free(_new_handle(merged))
        self._params = merged
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"Detector({args})"

    # ------------------------------------------------------------------ state

    def _swap(self, handle: Optional[ctypes.c_void_p]) -> None:
        with self._lock:  # waits for a predict in flight on the old handle
            self._set_handle(handle)

    @property
    def is_fitted(self) -> bool:
        """True once ``fit`` succeeded (or a fitted detector was loaded)."""
        if self._handle is None:
            return False
        out = ctypes.c_int32()
        check(_is_fitted(self._handle, ctypes.byref(out)))
        return bool(out.value)

    def __sklearn_is_fitted__(self) -> bool:
        return self.is_fitted

    def _require_fitted(self) -> ctypes.c_void_p:
        if not self.is_fitted:
            raise BGADError("this Detector is not fitted: call fit() or Detector.load()")
        return self._handle

    def _thresholds(self) -> Tuple[float, float]:
        h = self._require_fitted()
        image, pixel = ctypes.c_double(), ctypes.c_double()
        check(_thresholds(h, ctypes.byref(image), ctypes.byref(pixel)))
        return image.value, pixel.value

    @property
    def backbone_sha256_(self) -> str:
        """sha256 (hex) of the backbone weights the fitted detector holds (and embeds in its
        file): their provenance. :func:`bgad.weights.official_variant` names the official
        conversion it equals, or returns None for other weights."""
        h = self._require_fitted()
        buf = ctypes.create_string_buffer(65)
        with self._lock:
            check(_backbone_sha256(h, buf))
        return buf.value.decode()

    @property
    def image_threshold_(self) -> float:
        """Calibrated image threshold: an image is anomalous iff its score is above it."""
        return self._thresholds()[0]

    @property
    def history_(self) -> List[Dict[str, np.ndarray]]:
        """Per feature level (in the order of ``strides``), what training did: loss, its parts,
        the normal/abnormal mean log-likelihoods, the boundaries and the learning rate per
        interval of optimizer steps (see :attr:`bgad.BGAD.history_`); kept in the detector file.
        Draw it with :func:`bgad.visualize.plot_history`."""
        from .model import read_history

        handle = self._require_fitted()
        return read_history(_history_length, _history, handle, len(self.get_params()["strides"]))

    @property
    def separation_(self) -> np.ndarray:
        """Per level, how many boundary margins apart training put the known anomalies and
        the normal vectors (see :attr:`bgad.BGAD.separation_`); NaN without known anomalies."""
        handle = self._require_fitted()
        out = np.empty(len(self.get_params()["strides"]), dtype=np.float64)
        check(_separation(handle, out.ctypes.data_as(c_double_p)))
        return out

    def training_warning(self) -> Optional[str]:
        """A one-line warning when training stopped before the known anomalies left the
        normals' margin (with the budget to try instead), else None. ``bgad fit`` prints it."""
        from .model import training_warning

        return training_warning(self.separation_, int(self.get_params().get("steps", 0)))

    @property
    def pixel_threshold_(self) -> float:
        """Calibrated pixel threshold: a pixel is anomalous iff its map value is above it."""
        return self._thresholds()[1]

    # ------------------------------------------------------------------ training

    def fit(
        self,
        normal_images: Sequence[ImageLike],
        anomalous_images: Optional[Sequence[ImageLike]] = None,
        anomaly_masks: Optional[Sequence[Union[ImageLike, None]]] = None,
    ) -> "Detector":
        """Trains on normal images and (optionally) a few known anomalies with masks.

        Args:
            normal_images: paths (PNG, or other formats through Pillow) or uint8 arrays
                ``(H, W)`` / ``(H, W, 3)`` of good parts, any size.
            anomalous_images: paths or arrays of known defects (``nfad``/``bgad_wo`` ignore them).
            anomaly_masks: one mask per anomalous image (path, array of its image's size, or
                ``None`` = the whole image is anomalous). Omitted → whole-image masks.
        Returns:
            self. A failed fit leaves the detector as it was; Ctrl-C cancels cleanly (and
            re-raises KeyboardInterrupt).

        The engine reads the images one at a time (PNG paths itself, anything else through
        a loader callback), so a fit on thousands of files holds their features, not their
        pixels. See :meth:`fit_folders` to train on folders, globs or list files.
        """
        normal = list(normal_images)
        anomalous = list(anomalous_images or [])
        masks = [None] * len(anomalous) if anomaly_masks is None else list(anomaly_masks)
        if not normal:
            raise BGADError("fit needs at least one normal image")
        if len(masks) != len(anomalous):
            raise BGADError(f"got {len(anomalous)} anomalous images but {len(masks)} masks")
        params = dict(self._params)
        if not params.get("weights"):
            from . import weights

            # the chosen backbone's converted weights (its optional weight package is named
            # in a clear error when it is not installed)
            params["weights"] = str(weights.prepare(self.get_params()["backbone"]))
        handle = _new_handle(params)
        try:
            if all(map(_is_png_path, normal + anomalous)) and all(m is None or _is_png_path(m) for m in masks):
                n_paths, a_paths = _paths(normal), _paths(anomalous)
                m_paths = _paths(masks) if any(m is not None for m in masks) else None
                with NativeProgress(self.progress, "Detector fit") as bar:
                    status = _fit_paths(handle, n_paths, len(normal), a_paths, m_paths, len(anomalous), bar.callback, None)
            else:
                loader = _Loader(normal, anomalous, masks)
                with NativeProgress(self.progress, "Detector fit") as bar:
                    loader.progress = bar
                    status = _fit_loader(handle, len(normal), len(anomalous), loader.callback, None, bar.callback, None)
                loader.raise_pending()
            bar.raise_pending("Detector fit")
            try:
                check(status)
            except BGADError as exc:
                raise _named(exc, normal, anomalous, masks) from None
        except BaseException:
            _free(handle)
            raise
        self._swap(handle)
        return self

    def fit_folders(self, normal, anomalous=None, masks=None, skip_bad: bool = False) -> "Detector":
        """Trains on the user's own folders: good images, a few defects, their masks.

        Each argument is what :func:`bgad.io.list_images` takes — a folder (subfolders
        included), a glob pattern, a ``.txt`` list file or a list of these. Images may be
        PNG, JPEG, BMP or TIFF (Pillow for the non-PNG ones), gray or colour (mixed
        freely), 8 or 16 bits, of any size and shape (tiled by the engine, see the
        ``tiling`` parameter). Masks are matched to defect images by file stem (``a.jpg``
        ↔ ``a.png`` or ``a_mask.png``; non-zero = defect); a defect image without a mask
        is defective as a whole.

        Args:
            normal: the good images.
            anomalous: the known defects (optional; ``nfad``/``bgad_wo`` ignore them).
            masks: their masks (optional; needs ``anomalous``).
            skip_bad: when True, an unreadable or corrupt image (or mask) is skipped (a
                defect whose mask is bad is skipped with it) and listed in ``skipped_``;
                when False (default) the first one raises an error naming it.
        Returns:
            self; ``skipped_`` lists ``(path, reason)`` of what was skipped.
        Raises:
            BGADError: an empty folder or pattern, a mask matching no image or of another
                size than its image, a bad image (unless ``skip_bad``), naming the file.
        """
        from . import io

        normal_paths = io.list_images(normal)
        anomalous_paths = [] if anomalous is None else io.list_images(anomalous)
        if masks is not None and anomalous is None:
            raise BGADError("masks were given without anomalous images")
        mask_paths = io.pair_masks(anomalous_paths, io.list_images(masks)) if masks is not None \
            else [None] * len(anomalous_paths)
        skipped: List[Tuple[str, str]] = []

        def usable(path: str) -> bool:
            if not skip_bad:
                return True
            try:
                io.image_shape(path)
                read_image(path)
                return True
            except BGADError as exc:
                skipped.append((path, str(exc)))
                return False

        normal_paths = [p for p in normal_paths if usable(p)]
        if not normal_paths:
            raise BGADError(f"no readable normal image: every one of {normal} was skipped ({skipped[0][1]} ...)")
        pairs = []
        for img, mask in zip(anomalous_paths, mask_paths):
            if not usable(img):
                continue
            if mask is not None and not usable(mask):
                skipped.append((img, f"skipped with its unreadable mask {mask}"))
                continue
            if mask is not None:
                ih, iw = io.image_shape(img)
                mh, mw = io.image_shape(mask)
                if (mh, mw) != (ih, iw):
                    raise BGADError(f"mask {mask} is {mh}×{mw} but its image {img} is {ih}×{iw}")
            pairs.append((img, mask))
        self.fit(normal_paths, [p[0] for p in pairs], [p[1] for p in pairs])
        self.skipped_ = skipped
        return self

    # ------------------------------------------------------------------ scoring

    def score_images(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Image anomaly scores (higher = more anomalous) as a float64 array."""
        return np.array([p.score for p in self.predict(images, maps=False)], dtype=np.float64)

    def predict(self, images: Union[ImageLike, Sequence[ImageLike]], maps: bool = True) -> List[Prediction]:
        """Scores images (paths or uint8 arrays of any size, gray or RGB).

        A single uint8 array is one image when it is ``(H, W)`` or ``(H, W, 1 | 3)``; any
        other array is a batch along its first axis. A stack of gray images whose width is
        1 or 3 is therefore read as one image: pass a list to be unambiguous.

        Returns:
            one :class:`Prediction` per image; ``anomaly_map`` is at the image's own size
            (``None`` when ``maps=False``). A batch and the same images one by one give
            identical numbers.
        """
        self._require_fitted()
        if _is_one_image(images):
            images = [images]
        images = list(images)
        chunk = max(1, int(self.get_params().get("feature_batch", 16)))
        starts = range(0, len(images), chunk)
        if self.progress and len(starts) > 1:
            try:
                from tqdm.auto import tqdm

                starts = tqdm(starts, desc="predict", unit="batch", leave=False)
            except ImportError:
                pass
        results: List[Prediction] = []
        for s in starts:
            arrays = _read_images(images[s:s + chunk])
            n = len(arrays)
            scores = np.empty(n, np.float64)
            decisions = np.empty(n, np.int32)
            out = [np.empty(a.shape[:2], np.float32) for a in arrays] if maps else []
            map_ptrs = (c_float_p * n)(*[m.ctypes.data_as(c_float_p) for m in out]) if maps else None
            with self._lock:
                check(_predict(self._handle, _images(arrays), n, scores.ctypes.data_as(c_double_p),
                               decisions.ctypes.data_as(c_int32_p), map_ptrs))
            for i in range(n):
                results.append(Prediction(float(scores[i]), out[i] if maps else None, bool(decisions[i])))
        return results

    # ------------------------------------------------------------------ export

    def tensors(self) -> Dict[str, np.ndarray]:
        """Every number the engine's scoring uses, as named float32 arrays in the engine's
        order (``bgad_detector_tensor*``; names and meanings in ``bgad.h`` and
        ``Detector+Tensors.swift``): backbone weights (BatchNorm folded), flow parameters
        with their folded global affine, positional conditions, interpolation tables,
        calibration, thresholds and preprocessing constants."""
        h = self._require_fitted()
        out: Dict[str, np.ndarray] = {}
        with self._lock:
            count = ctypes.c_int64()
            check(_tensor_count(h, ctypes.byref(count)))
            name = ctypes.create_string_buffer(256)
            needed, rank, n = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
            shape = (ctypes.c_int64 * 8)()
            for i in range(count.value):
                status = _tensor_info(h, i, name, len(name), ctypes.byref(needed), shape, len(shape), ctypes.byref(rank))
                if status != 0 and needed.value > len(name):  # a longer name than the buffer: grow, ask again
                    name = ctypes.create_string_buffer(int(needed.value))
                    status = _tensor_info(h, i, name, len(name), ctypes.byref(needed), shape, len(shape), ctypes.byref(rank))
                check(status)
                dims = tuple(int(shape[d]) for d in range(rank.value))
                values = np.empty(int(np.prod(dims)), np.float32)
                check(_tensor(h, i, values.ctypes.data_as(c_float_p), values.size, ctypes.byref(n)))
                out[name.value.decode()] = values.reshape(dims)
        return out

    def export_onnx(self, path: Union[str, os.PathLike], opset: int = 17) -> Path:
        """Writes the whole scoring graph as an ONNX model (needs ``pip install 'bgad[onnx]'``):
        uint8 images ``(N, S, S, 3)`` at the model size ``S`` → ``anomaly_map`` ``(N, S, S)``,
        ``pred_score`` ``(N,)``, ``pred_label`` ``(N,)``; see :mod:`bgad.onnx_export`.
        Returns the path written (atomically)."""
        from .onnx_export import export_onnx

        return export_onnx(self, path, opset=opset)

    # ------------------------------------------------------------------ persistence

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes one file holding everything needed to score — configuration, backbone
        weights, flows, calibration — versioned and checksummed (atomic: temporary file
        in the same folder, fsync, rename)."""
        h = self._require_fitted()
        with self._lock:
            check(_save(h, c_path(path)))

    @classmethod
    def _from_handle(cls, handle: ctypes.c_void_p, progress: bool = True) -> "Detector":
        det = cls.__new__(cls)
        det._lock = threading.RLock()
        det.progress = progress
        det._set_handle(handle)
        det._params = _read_config(handle)
        return det

    @classmethod
    def load(cls, path: Union[str, os.PathLike], progress: bool = True) -> "Detector":
        """Loads a detector written by :meth:`save`; a missing, corrupt or foreign file (or
        the Python package's old format version 1) raises :class:`BGADError` saying so."""
        h = ctypes.c_void_p()
        check(_load(c_path(path), ctypes.byref(h)))
        return cls._from_handle(h, progress)

    def to_bytes(self) -> bytes:
        """The bytes of :meth:`save` (the whole fitted detector) in memory."""
        h = self._require_fitted()
        needed = ctypes.c_int64()
        with self._lock:
            _to_bytes(h, None, 0, ctypes.byref(needed))  # sizes the buffer (status: buffer too small)
            buf = np.empty(max(1, needed.value), np.uint8)
            check(_to_bytes(h, buf.ctypes.data_as(c_uint8_p), needed.value, ctypes.byref(needed)))
        return buf[:needed.value].tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, progress: bool = True) -> "Detector":
        """A detector from the bytes of :meth:`to_bytes` (or of a detector file)."""
        buf = np.frombuffer(bytes(data), np.uint8)
        h = ctypes.c_void_p()
        check(_from_bytes(buf.ctypes.data_as(c_uint8_p), len(buf), ctypes.byref(h)))
        return cls._from_handle(h, progress)

    def __getstate__(self) -> Dict[str, Any]:
        return {"params": self._params, "progress": self.progress,
                "detector": self.to_bytes() if self.is_fitted else None}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._lock = threading.RLock()
        self.progress = state["progress"]
        self._params = renamed_keywords(state["params"], _RENAMED, "a pickled Detector")
        self._handle = None  # an unpickled object holds nothing yet
        if state["detector"] is not None:
            fitted = Detector.from_bytes(state["detector"])
            self._set_handle(fitted._handle)
            fitted._handle = None  # now owned here


__all__ = ["Detector", "Prediction", "read_image", "read_mask"]
