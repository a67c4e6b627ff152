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
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._native import BGADError, c_path, c_double_p, c_float_p, c_int32_p, c_int64_p, c_uint8_p, check, declare
from ._progress import NativeProgress
from .model import PROGRESS_FN

ImageLike = Union[str, os.PathLike, np.ndarray]


class _Image(ctypes.Structure):
    """``bgad_image``: one 8-bit image (or mask) buffer."""

    _fields_ = [("pixels", c_uint8_p), ("height", ctypes.c_int64), ("width", ctypes.c_int64),
                ("channels", ctypes.c_int64)]


_c_void_pp = ctypes.POINTER(ctypes.c_void_p)
_c_image_p = ctypes.POINTER(_Image)
_c_char_pp = ctypes.POINTER(ctypes.c_char_p)
_create = declare("bgad_detector_create", [ctypes.c_char_p, _c_void_pp])
_config = declare("bgad_detector_config", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, c_int64_p])
_is_fitted = declare("bgad_detector_is_fitted", [ctypes.c_void_p, c_int32_p])
_fit = declare("bgad_detector_fit", [ctypes.c_void_p, _c_image_p, ctypes.c_int64, _c_image_p, _c_image_p,
                                     ctypes.c_int64, PROGRESS_FN, ctypes.c_void_p])
_fit_paths = declare("bgad_detector_fit_paths", [ctypes.c_void_p, _c_char_pp, ctypes.c_int64, _c_char_pp, _c_char_pp,
                                                 ctypes.c_int64, PROGRESS_FN, ctypes.c_void_p])
_predict = declare("bgad_detector_predict", [ctypes.c_void_p, _c_image_p, ctypes.c_int64, c_double_p, c_int32_p,
                                             ctypes.POINTER(c_float_p)])
_thresholds = declare("bgad_detector_thresholds", [ctypes.c_void_p, c_double_p, c_double_p])
_backbone_sha256 = declare("bgad_detector_backbone_sha256", [ctypes.c_void_p, ctypes.c_char_p])
_save = declare("bgad_detector_save", [ctypes.c_void_p, ctypes.c_char_p])
_load = declare("bgad_detector_load", [ctypes.c_char_p, _c_void_pp])
_to_bytes = declare("bgad_detector_to_bytes", [ctypes.c_void_p, c_uint8_p, ctypes.c_int64, c_int64_p])
_from_bytes = declare("bgad_detector_from_bytes", [c_uint8_p, ctypes.c_int64, _c_void_pp])
_free = declare("bgad_detector_free", [ctypes.c_void_p])
_history_length = declare("bgad_detector_history_length", [ctypes.c_void_p, ctypes.c_int64, c_int64_p])
_history = declare("bgad_detector_history", [ctypes.c_void_p, ctypes.c_int64, c_double_p, ctypes.c_int64])
_late_improvement = declare("bgad_detector_late_improvement", [ctypes.c_void_p, c_double_p])

#: Python parameter name → the engine's configuration key, where they differ.
_ENGINE_KEY = {"levels": "strides"}
_PYTHON_KEY = {v: k for k, v in _ENGINE_KEY.items()}


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


def read_image(src: ImageLike, mode: Optional[str] = None) -> np.ndarray:
    """Reads an image: a uint8 array is returned as is; a path is decoded (PNG by the
    engine, other formats through Pillow). ``mode`` = ``"gray"``, ``"rgb"`` or ``None``
    (as stored)."""
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8:
            raise BGADError(f"image arrays must be uint8, got {src.dtype}")
        if src.ndim not in (2, 3) or (src.ndim == 3 and src.shape[2] not in (1, 3)):
            raise BGADError(f"image arrays must be (H, W) or (H, W, 3), got shape {src.shape}")
        img = src[..., 0] if src.ndim == 3 and src.shape[2] == 1 else src
    elif not isinstance(src, (str, bytes, os.PathLike)):
        raise BGADError(f"an image must be a uint8 array or a path, got {type(src).__name__}")
    else:
        path = Path(os.fsdecode(src))
        if not path.is_file():
            raise BGADError(f"image file not found: {path}")
        if path.suffix.lower() == ".png":
            from . import io

            img = io.read_png(str(path))
        else:
            try:
                from PIL import Image  # type: ignore
            except ImportError:
                raise BGADError(f"{path}: only PNG is read natively; install Pillow for {path.suffix} files") from None
            try:
                with Image.open(path) as im:
                    img = np.asarray(im.convert("RGB" if im.mode not in ("L", "I;16", "I") else "L"))
            except OSError as exc:
                raise BGADError(f"{path}: cannot be decoded ({exc})") from None
            if img.dtype != np.uint8:
                img = (img >> 8).astype(np.uint8)
    if mode == "gray" and img.ndim == 3:
        img = np.round(img @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
    elif mode == "rgb" and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img)


def read_mask(src: Union[ImageLike, None], shape) -> np.ndarray:
    """A binary uint8 mask (1 = defect) from a path or array; ``None`` → whole image."""
    if src is None:
        return np.ones(shape, np.uint8)
    m = read_image(src) if not isinstance(src, np.ndarray) or src.dtype == np.uint8 else np.asarray(src)
    if m.ndim == 3:
        m = m.max(axis=2)
    return (np.asarray(m) > 0).astype(np.uint8)


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
    cfg = {_ENGINE_KEY.get(k, k): _json_value(v) for k, v in params.items() if k != "progress"}
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
    """Every setting of a native detector, under the Python parameter names."""
    needed = ctypes.c_int64()
    _config(handle, None, 0, ctypes.byref(needed))  # sizes the buffer (status: buffer too small)
    buf = ctypes.create_string_buffer(max(1, needed.value))
    check(_config(handle, buf, needed.value, ctypes.byref(needed)))
    cfg = json.loads(buf.value.decode())
    return {_PYTHON_KEY.get(k, k): (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}


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


class Detector:
    """BGAD anomaly detector on images: the engine's detector behind a Python object.

    Every parameter is optional; one not given takes the engine's default (read back with
    :meth:`get_params`). Parameters (the engine's configuration keys, ``bgad.h``):

    - ``variant``: ``"bgad"`` (default), ``"bgad_wo"`` (no anomalies, semi-pull only) or
      ``"nfad"`` (ML loss only, the unsupervised baseline).
    - ``levels``: backbone strides used as feature levels (engine key ``strides``;
      default ``(8, 16)``; the paper uses ``(4, 8, 16)``).
    - ``image_size``: side of the square model input; ``backbone``: ``"lite0"`` (default),
      ``"lite1"`` or ``"lite2"`` (the extras ``bgad[lite1]`` / ``bgad[lite2]``; docs/BACKBONES.md);
      ``weights``: path of the engine's converted backbone weight file (default: the one
      :func:`bgad.weights.prepare` writes, found at ``fit``).
    - ``real_repeats``, ``rpag_per_anomaly``: how often each known anomaly is used and how
      many RPAG samples it yields; ``foreground``: ``"otsu"`` or ``"whole"`` (where RPAG
      pastes); ``feature_batch``: images per backbone call.
    - every BGAD training knob by its name (``steps``, ``lr``, ``batch_size``, ``beta``,
      ``seed``, ... — see :class:`bgad.BGAD`). The default is a budget of ``steps`` optimizer
      steps that does not depend on the number of images (docs/TRAINING.md); ``steps=0``
      with ``meta_epochs``/``sub_epochs`` selects the authors' epoch schedule.
    - ``progress`` (Python only): tqdm bars during ``fit`` and ``predict``.

    An unknown parameter or a bad value raises :class:`BGADError` naming it. Follows
    scikit-learn's conventions (``get_params``/``set_params``, ``sklearn.base.clone``)
    and pickles by value (the fitted state travels as the engine's bytes).
    """

    def __init__(self, progress: bool = True, **params: Any):
        self._params = dict(params)
        self.progress = progress
        self._handle: Optional[ctypes.c_void_p] = None
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

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h is not None and _free is not None:
            _free(h)
            self._handle = None

    def _swap(self, handle: Optional[ctypes.c_void_p]) -> None:
        with self._lock:
            old, self._handle = self._handle, handle
        if old is not None:
            _free(old)

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
        """Per feature level (in the order of ``levels``), what training did: loss, its parts,
        the normal/abnormal mean log-likelihoods, the boundaries and the learning rate per
        interval of optimizer steps (see :attr:`bgad.BGAD.history_`); kept in the detector file.
        Draw it with :func:`bgad.visualize.plot_history`."""
        from .model import read_history

        handle = self._require_fitted()
        return read_history(_history_length, _history, handle, len(self.get_params()["levels"]))

    @property
    def late_improvement_(self) -> np.ndarray:
        """Per level, how much the loss was still falling when training stopped (see
        :attr:`bgad.BGAD.late_improvement_`)."""
        handle = self._require_fitted()
        out = np.empty(len(self.get_params()["levels"]), dtype=np.float64)
        check(_late_improvement(handle, out.ctypes.data_as(c_double_p)))
        return out

    def training_warning(self) -> Optional[str]:
        """A one-line warning when training stopped while the loss was still falling fast
        (with the budget to try instead), else None. ``bgad fit`` prints it."""
        from .model import training_warning

        return training_warning(self.late_improvement_, int(self.get_params().get("steps", 0)))

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
                n_arr = [read_image(p) for p in normal]
                a_arr = [read_image(p) for p in anomalous]
                m_arr = [None if m is None else read_mask(m, None) for m in masks]
                m_img = (_Image * max(1, len(m_arr)))()
                for i, (m, a) in enumerate(zip(m_arr, a_arr)):
                    if m is None:
                        m_img[i] = _Image(None, a.shape[0], a.shape[1], 1)
                    else:
                        m_img[i] = _Image(m.ctypes.data_as(c_uint8_p), m.shape[0], m.shape[1], 1)
                with NativeProgress(self.progress, "Detector fit") as bar:
                    status = _fit(handle, _images(n_arr), len(n_arr), _images(a_arr),
                                  m_img if any(m is not None for m in m_arr) else None, len(a_arr), bar.callback, None)
            bar.raise_pending("Detector fit")
            check(status)
        except BaseException:
            _free(handle)
            raise
        self._swap(handle)
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
            arrays = [read_image(p) for p in images[s:s + chunk]]
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
        det._handle = handle
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
        self._params = dict(state["params"])
        self._handle = None
        if state["detector"] is not None:
            fitted = Detector.from_bytes(state["detector"])
            self._handle, fitted._handle = fitted._handle, None


__all__ = ["Detector", "Prediction", "read_image", "read_mask"]
