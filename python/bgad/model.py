"""BGAD on feature maps: train one conditional normalizing flow per feature level with
the explicit boundary guided semi-push-pull loss, and score images with calibrated,
multi-level anomaly maps.

Works on feature maps from ANY backbone: pass, per level, a ``(N, C, H, W)`` float32
array (for instance the outputs of your own PyTorch network, as numpy arrays).

Example:
    >>> import numpy as np, bgad
    >>> rng = np.random.default_rng(0)
    >>> normal = [rng.normal(size=(8, 16, 8, 8)).astype(np.float32)]
    >>> model = bgad.BGAD(meta_epochs=2, sub_epochs=1, progress=False).fit(normal)
    >>> model.score_maps(normal, image_size=32).shape
    (8, 32, 32)
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from ._native import PROGRESS_FN, BGADError, NativeHandle, c_path, as_array, c_double_p, c_float_p, c_int64_p, c_uint8_p, check, function, size_pair


_create = function("bgad_model_create")
_free = function("bgad_model_free")
_set_param = function("bgad_model_set_param")
_get_param = function("bgad_model_get_param")
_num_levels = function("bgad_model_num_levels")
_channels = function("bgad_model_channels")
_fit = function("bgad_model_fit")
_score_maps = function("bgad_model_score_maps")
_score_images = function("bgad_model_score_images")
_history_length = function("bgad_model_history_length")
_history = function("bgad_model_history")
_separation = function("bgad_model_separation")
_log_likelihoods = function("bgad_model_log_likelihoods")
_calibration = function("bgad_model_calibration")
_is_trained = function("bgad_model_is_trained")
_save = function("bgad_model_save")
_load = function("bgad_model_load")

def _engine_defaults() -> Dict[str, Any]:
    """The engine's default hyper-parameters of a new model (``bgad_model_default_params``)."""
    fn = function("bgad_model_default_params")
    needed = ctypes.c_int64()
    fn(None, 0, ctypes.byref(needed))  # sizes the buffer (status: buffer too small)
    buf = ctypes.create_string_buffer(max(1, needed.value))
    check(fn(buf, needed.value, ctypes.byref(needed)))
    return json.loads(buf.value.decode())


#: The authors' hyper-parameters (docs/METHOD.md, "Defaults"; README settings: beta 0.01,
#: focal weighting on), as the engine defines them: read from it once, at import.
DEFAULTS: Dict[str, Any] = _engine_defaults()
_INT_PARAMS = {k for k, v in DEFAULTS.items() if isinstance(v, int) and not isinstance(v, bool)}
_FLOAT_PARAMS = {k for k, v in DEFAULTS.items() if isinstance(v, float)}

ImageSize = Union[int, Tuple[int, int]]

#: Names of a training-history record's fields, in the engine's order (bgad.h, bgad_model_history).
HISTORY_FIELDS = (
    "step", "phase", "learning_rate", "loss", "maximum_likelihood", "semi_pull", "semi_push",
    "normal_log_likelihood", "abnormal_log_likelihood", "normal_boundary", "abnormal_boundary",
)
#: ``separation_`` below this many margins at every level means training stopped before the
#: known anomalies left the normals' margin (docs/TRAINING.md: how it was chosen).
SEPARATION_WARNING = 1.0


def _text(name: str, value: Any) -> bytes:
    if name == "focal":
        return b"true" if bool(value) else b"false"
    if name == "variant":
        return str(value).encode()
    if name in _INT_PARAMS:
        if isinstance(value, bool) or int(value) != value:
            raise BGADError(f"{name}: expected an integer, got {value!r}")
        return str(int(value)).encode()
    return repr(float(value)).encode()


def _parse(name: str, text: str) -> Any:
    if name == "variant":
        return text
    if name == "focal":
        return text == "true"
    if name in _INT_PARAMS:
        return int(text)
    return float(text)


def _levels_arg(features: Any, name: str, channels: Optional[Sequence[int]]) -> List[np.ndarray]:
    if isinstance(features, np.ndarray):
        features = [features]
    if not isinstance(features, (list, tuple)) or len(features) == 0:
        raise BGADError(f"{name}: expected a list with one (N, C, H, W) array per feature level")
    out = []
    for l, f in enumerate(features):
        a = as_array(f, np.float32, f"{name}[{l}]", ndim=4)
        out.append(a)
    n = out[0].shape[0]
    for l, a in enumerate(out):
        if a.shape[0] != n:
            raise BGADError(f"{name}: level {l} has {a.shape[0]} images, level 0 has {n}")
        if a.shape[2] < 1 or a.shape[3] < 1:
            raise BGADError(f"{name}: level {l} has an empty grid {a.shape[2:]}")
    if channels is not None:
        if len(out) != len(channels):
            raise BGADError(f"{name}: expected {len(channels)} levels, got {len(out)}")
        for l, (a, c) in enumerate(zip(out, channels)):
            if a.shape[1] != c:
                raise BGADError(f"{name}: level {l} has {a.shape[1]} channels, the model expects {c}")
    return out


def _pointers(arrays: Sequence[np.ndarray]) -> Any:
    return (c_float_p * len(arrays))(*[a.ctypes.data_as(c_float_p) for a in arrays])


def _grid(arrays: Sequence[np.ndarray]) -> Tuple[Any, Any]:
    h = np.array([a.shape[2] for a in arrays], dtype=np.int64)
    w = np.array([a.shape[3] for a in arrays], dtype=np.int64)
    return h, w


def _image_size(size: Optional[ImageSize], default: Tuple[int, int]) -> Tuple[int, int]:
    return default if size is None else size_pair(size, "image_size")


def read_history(length_fn: Any, history_fn: Any, handle: Any, levels: int) -> List[Dict[str, np.ndarray]]:
    """The training history behind a native handle (a model's or a detector's): per level, a
    dict of float64 arrays named by :data:`HISTORY_FIELDS`."""
    out = []
    for level in range(levels):
        n = ctypes.c_int64()
        check(length_fn(handle, level, ctypes.byref(n)))
        values = np.empty((n.value, len(HISTORY_FIELDS)), dtype=np.float64)
        check(history_fn(handle, level, values.ctypes.data_as(c_double_p), n.value))
        out.append({name: values[:, j].copy() for j, name in enumerate(HISTORY_FIELDS)})
    return out


def training_warning(separation: np.ndarray, steps: int) -> Optional[str]:
    """The one-line warning for a model whose training stopped before the known anomalies
    left the normals' margin (every level's separation below :data:`SEPARATION_WARNING`),
    else None (also None without known anomalies: nothing to measure).
    ``steps`` is the step budget trained with (0 = the epoch schedule)."""
    sep = np.asarray(separation, dtype=np.float64)
    if not np.isfinite(sep).any():
        return None
    best = int(np.nanargmax(sep))
    if not sep[best] < SEPARATION_WARNING:
        return None
    hint = (f"raise steps (now {steps}), e.g. steps={2 * steps}" if steps > 0
            else "raise meta_epochs/sub_epochs or use a step budget (steps=...)")
    return (f"training stopped early: the known anomalies are still within the boundary margin of the "
            f"normal images (best level {best}: {sep[best]:.2f} margins apart; trained models reach about 2 or more); {hint}")


class BGAD(NativeHandle):
    """BGAD anomaly detector on feature maps (one conditional flow per feature level).

    Args:
        levels: channel count of each feature level (e.g. ``[24, 40, 112]``), or None to
            take them from the first ``fit``.
        variant: ``"bgad"`` (default; uses the known anomalies), ``"bgad_wo"`` (no
            anomalies, semi-pull only) or ``"nfad"`` (maximum likelihood only).
        steps: training budget in optimizer steps of the finest level (the level with the
            most grid positions), independent of the number of images: batches are drawn
            from reshuffled passes until the budget is spent; the first ``phase1_fraction``
            of it is phase 1, the learning rate warms up over ``warmup_fraction`` of each
            level's steps and then decays along a cosine. ``0`` (default) = the authors'
            epoch schedule below. :class:`bgad.Detector` trains with a budget
            (``DETECTOR_RECIPE``); docs/TRAINING.md says how it was chosen.
        phase1_fraction: share of a step budget spent in phase 1. Default {phase1_fraction}.
        warmup_fraction: share of a step budget spent warming up. Default {warmup_fraction}.
        meta_epochs: meta-epochs; the first is phase 1 (normal data, ML loss). Default {meta_epochs}.
            Unused when ``steps > 0``.
        sub_epochs: passes over the images per meta-epoch. Default {sub_epochs}. Unused when ``steps > 0``.
        lr: Adam learning rate (cosine decay to ``lr * decay_rate**3``). Default {lr}.
        warmup_epochs: linear warm-up from ``lr / 10`` over this many meta-epochs. Default {warmup_epochs}.
        decay_rate: see ``lr``. Default {decay_rate}.
        batch_size: images per training batch. Default {batch_size}.
        chunk_size: feature vectors per optimisation step. Default {chunk_size}.
        beta: boundary quantile β (also the false-positive rate the default thresholds
            target on the training normals). Default {beta}.
        tau: margin τ, ``b_a = b_n − τ``. Default {tau}.
        alpha_n: normalizer α_n of the log-likelihoods. Default {alpha_n}.
        lam: weight λ of the BG-SPP loss. Default {lam}.
        focal: asymmetric focal weighting. Default {focal}.
        seed: seed of every random choice. Default {seed}.
        blocks: coupling blocks per flow. Default {blocks}.
        clamp: clamp α of the coupling log-scales. Default {clamp}.
        progress: show a tqdm progress bar during ``fit`` when tqdm is installed.

    The defaults shown are :data:`DEFAULTS`, the engine's (filled in when the module loads).

    One estimator may be shared between threads: its native calls are serialised by a lock.

    Attributes (after ``fit`` or ``load``):
        pixel_threshold_: default pixel threshold (anomalous iff score > threshold).
        image_threshold_: default image threshold.
        threshold_beta_: the β the thresholds target (FPR ≤ β on the training normals).
        calibration_size_: map size ``(H, W)`` the thresholds were taken on.
        channels_: channel count per level.
        history_: per level, the training history (loss, boundaries, learning rate per
            interval of steps); also kept in the model file.
        separation_: per level, how many boundary margins apart training put the known
            anomalies and the normal vectors (see :data:`SEPARATION_WARNING`).
    """

    _free_name = "bgad_model_free"

    def __init__(self, levels: Optional[Sequence[int]] = None, *, progress: bool = True, **hyperparameters: Any):
        unknown = set(hyperparameters) - set(DEFAULTS)
        if unknown:
            raise BGADError(f"unknown hyper-parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.levels = None if levels is None else [int(c) for c in levels]
        self.progress = progress
        self._params = dict(DEFAULTS)
        self._params.update(hyperparameters)
        self._lock = threading.RLock()  # the native model is not thread-safe
        if self.levels is not None:
            self._set_handle(self._new_handle(self.levels))

    # -- handle management -------------------------------------------------------------
    def _new_handle(self, channels: Sequence[int]) -> ctypes.c_void_p:
        c = np.array(channels, dtype=np.int64)
        h = ctypes.c_void_p()
        check(_create(len(c), c.ctypes.data_as(c_int64_p), ctypes.byref(h)))
        try:
            for name, value in self._params.items():
                check(_set_param(h, name.encode(), _text(name, value)))
        except Exception:
            _free(h)
            raise
        return h

    def _require_trained(self) -> None:
        if self._handle is None:
            raise BGADError("the model is not trained: call fit first")
        out = ctypes.c_int32()
        check(_is_trained(self._handle, ctypes.byref(out)))
        if not out.value:
            raise BGADError("the model is not trained: call fit first")

    # -- hyper-parameters ------------------------------------------------------------
    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        """Hyper-parameters (scikit-learn style), including ``levels`` and ``progress``."""
        params = {"levels": None if self.levels is None else list(self.levels), "progress": self.progress}
        params.update(self._params)
        return params

    def set_params(self, **params: Any) -> "BGAD":
        """Sets hyper-parameters; they take effect at the next ``fit``."""
        for name, value in params.items():
            if name == "progress":
                self.progress = bool(value)
            elif name == "levels":
                self.levels = None if value is None else [int(c) for c in value]
                self._set_handle(None)
            elif name in DEFAULTS:
                if self._handle is not None:
                    check(_set_param(self._handle, name.encode(), _text(name, value)))
                self._params[name] = value
            else:
                raise BGADError(f"unknown hyper-parameter {name!r}; known: {sorted(DEFAULTS)}")
        return self

    # -- training ----------------------------------------------------------------------
    def fit(
        self,
        normal_features: Sequence[ArrayLike],
        anomalous_features: Optional[Sequence[ArrayLike]] = None,
        anomaly_masks: Optional[ArrayLike] = None,
        image_size: Optional[ImageSize] = None,
    ) -> "BGAD":
        """Trains the flows (from scratch, seeded) and calibrates the scores.

        Args:
            normal_features: one ``(N, C_l, H_l, W_l)`` float32 array per level, normal images.
            anomalous_features: one ``(M, C_l, H_l, W_l)`` array per level (same grids), the
                known anomalous images, or None.
            anomaly_masks: ``(M, H_img, W_img)`` binary masks of the anomalous images at image
                resolution (downsampled to each level by nearest neighbour), or None to mark
                every position of an anomalous image as anomalous.
            image_size: map size ``(H, W)`` (or int) the default thresholds are calibrated
                at; default: the mask size when masks are given, else the finest grid.

        Returns:
            self. Ctrl-C cancels cleanly (the model is left untrained, KeyboardInterrupt
            is re-raised).
        """
        normal = _levels_arg(normal_features, "normal_features", self.levels)
        channels = [a.shape[1] for a in normal]
        anomalous: List[np.ndarray] = []
        if anomalous_features is not None:
            anomalous = _levels_arg(anomalous_features, "anomalous_features", channels)
            for l, (a, b) in enumerate(zip(normal, anomalous)):
                if a.shape[2:] != b.shape[2:]:
                    raise BGADError(
                        f"anomalous_features: level {l} has grid {b.shape[2:]}, the normal features {a.shape[2:]}"
                    )
        n_anom = anomalous[0].shape[0] if anomalous else 0
        masks = None
        mh = mw = 0
        if anomaly_masks is not None:
            if not anomalous:
                raise BGADError("anomaly_masks given without anomalous_features")
            m = np.asarray(anomaly_masks)
            if m.ndim != 3 or m.shape[0] != n_anom:
                raise BGADError(f"anomaly_masks: expected shape ({n_anom}, H_img, W_img), got {m.shape}")
            if m.dtype != np.bool_:
                m = as_array(m, m.dtype, "anomaly_masks")
                bad = (m != 0) & (m != 1)
                if bad.any():
                    raise BGADError("anomaly_masks: values must be 0 (normal) or 1 (anomalous)")
            masks = np.ascontiguousarray(m, dtype=np.uint8)
            mh, mw = masks.shape[1], masks.shape[2]
        ch = cw = 0
        if image_size is not None:
            ch, cw = _image_size(image_size, (0, 0))

        if self._handle is None or self.levels != channels:
            self._set_handle(None)
            self._set_handle(self._new_handle(channels))
            self.levels = channels
        heights, widths = _grid(normal)
        anomalous_ptrs = _pointers(anomalous) if anomalous else None

        bar = None
        if self.progress:
            try:
                from tqdm.auto import tqdm

                bar = tqdm(total=0, desc="BGAD fit", unit="step")
            except ImportError:
                bar = None
        # Ctrl-C: a SIGINT handler only records the request (so it can never be lost
        # inside the native call); the next progress callback returns non-zero and the
        # engine stops cleanly. Without a handler (not the main thread) an exception in
        # the callback is caught and cancels as well.
        stop = {"interrupt": False, "error": None}

        def on_progress(step: int, total: int, loss: float, _user: Any) -> int:
            try:
                if bar is not None:
                    if bar.total != total:
                        bar.total = total
                    bar.update(step - bar.n)
                    if step % 20 == 0 or step == total:
                        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            except KeyboardInterrupt:
                stop["interrupt"] = True
            except BaseException as exc:  # never let an exception unwind through the C frames
                stop["error"] = exc
            return 1 if (stop["interrupt"] or stop["error"] is not None) else 0

        def on_sigint(signum: int, frame: Any) -> None:
            stop["interrupt"] = True

        previous = None
        try:
            previous = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not the main thread
            previous = None
        callback = PROGRESS_FN(on_progress)
        try:
            with self._lock:
                status = _fit(
                    self._handle, _pointers(normal), normal[0].shape[0], anomalous_ptrs, n_anom,
                    heights.ctypes.data_as(c_int64_p), widths.ctypes.data_as(c_int64_p),
                    None if masks is None else masks.ctypes.data_as(c_uint8_p), mh, mw, ch, cw, callback, None,
                )
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if bar is not None:
                bar.close()
        if stop["interrupt"]:
            raise KeyboardInterrupt("BGAD training interrupted; the model is not trained")
        if stop["error"] is not None:
            raise stop["error"]
        check(status)
        return self

    # -- scoring -----------------------------------------------------------------------
    def _prepare(self, features: Sequence[ArrayLike]) -> List[np.ndarray]:
        self._require_trained()
        return _levels_arg(features, "features", self.channels_)

    def log_likelihoods(self, features: Sequence[ArrayLike]) -> List[np.ndarray]:
        """Per-level grids ``ℓ = log p(x) / C``: a list of ``(N, H_l, W_l)`` float32 arrays."""
        f = self._prepare(features)
        outs = [np.empty((a.shape[0], a.shape[2], a.shape[3]), dtype=np.float32) for a in f]
        h, w = _grid(f)
        with self._lock:
            check(_log_likelihoods(self._handle, _pointers(f), f[0].shape[0], h.ctypes.data_as(c_int64_p),
                                   w.ctypes.data_as(c_int64_p), _pointers(outs)))
        return outs

    def score_maps(self, features: Sequence[ArrayLike], image_size: Optional[ImageSize] = None) -> np.ndarray:
        """Anomaly maps ``(N, H, W)`` float32 (higher = more anomalous).

        Each image is scored on its own with the calibration stored in the model, so an
        image gets the same map alone or in a batch.

        Args:
            features: one ``(N, C_l, H_l, W_l)`` array per level.
            image_size: output size, int or ``(H, W)``; default the calibration size.
        """
        f = self._prepare(features)
        h, w = _image_size(image_size, self.calibration_size_)
        out = np.empty((f[0].shape[0], h, w), dtype=np.float32)
        gh, gw = _grid(f)
        with self._lock:
            check(_score_maps(self._handle, _pointers(f), f[0].shape[0], gh.ctypes.data_as(c_int64_p),
                              gw.ctypes.data_as(c_int64_p), h, w, out.ctypes.data_as(c_float_p)))
        return out

    def score_images(self, features: Sequence[ArrayLike], image_size: Optional[ImageSize] = None) -> np.ndarray:
        """Image scores ``(N,)`` float64: ``−log(min Σ)`` of each image's map, where ``Σ`` is the
        summed normality (map = ``S_max − Σ``). They rank images exactly as the maximum of the
        map does, but keep ranking strong defects whose map saturates at ``S_max`` in float
        precision (``exp(ℓ − ref)`` underflows there). Compare with ``image_threshold_`` when
        ``image_size`` is the calibration size."""
        f = self._prepare(features)
        h, w = _image_size(image_size, self.calibration_size_)
        out = np.empty(f[0].shape[0], dtype=np.float64)
        gh, gw = _grid(f)
        with self._lock:
            check(_score_images(self._handle, _pointers(f), f[0].shape[0], gh.ctypes.data_as(c_int64_p),
                                gw.ctypes.data_as(c_int64_p), h, w, out.ctypes.data_as(c_double_p)))
        return out

    def predict(self, features: Sequence[ArrayLike], image_size: Optional[ImageSize] = None,
                threshold: Optional[float] = None) -> np.ndarray:
        """Image decisions ``(N,)`` bool: image score > threshold (default ``image_threshold_``)."""
        t = self.image_threshold_ if threshold is None else float(threshold)
        return self.score_images(features, image_size) > t

    def predict_maps(self, features: Sequence[ArrayLike], image_size: Optional[ImageSize] = None,
                     threshold: Optional[float] = None) -> np.ndarray:
        """Pixel decisions ``(N, H, W)`` bool: score > threshold (default ``pixel_threshold_``)."""
        t = self.pixel_threshold_ if threshold is None else float(threshold)
        return self.score_maps(features, image_size) > t

    # -- calibration -------------------------------------------------------------------
    def _calibration(self) -> Dict[str, Any]:
        self._require_trained()
        p, i, b, s = ctypes.c_double(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        h, w = ctypes.c_int64(), ctypes.c_int64()
        refs = np.empty(len(self.channels_), dtype=np.float64)
        with self._lock:
            check(_calibration(self._handle, ctypes.byref(p), ctypes.byref(i), ctypes.byref(b), ctypes.byref(s),
                               ctypes.byref(h), ctypes.byref(w), refs.ctypes.data_as(c_double_p)))
        return {"pixel": p.value, "image": i.value, "beta": b.value, "s_max": s.value,
                "size": (h.value, w.value), "references": refs}

    @property
    def channels_(self) -> List[int]:
        """Channel count per level of the native model."""
        if self._handle is None:
            raise BGADError("the model has no levels yet: call fit first")
        n = ctypes.c_int64()
        check(_num_levels(self._handle, ctypes.byref(n)))
        c = np.empty(n.value, dtype=np.int64)
        check(_channels(self._handle, c.ctypes.data_as(c_int64_p)))
        return [int(v) for v in c]

    @property
    def pixel_threshold_(self) -> float:
        """Default pixel threshold: flags at most a fraction β of the training normal pixels."""
        return self._calibration()["pixel"]

    @property
    def image_threshold_(self) -> float:
        """Default image threshold: flags at most a fraction β of the training normal images."""
        return self._calibration()["image"]

    @property
    def threshold_beta_(self) -> float:
        """The quantile β the default thresholds were taken at."""
        return self._calibration()["beta"]

    @property
    def calibration_size_(self) -> Tuple[int, int]:
        """Map size ``(H, W)`` the default thresholds were taken on."""
        return self._calibration()["size"]

    @property
    def references_(self) -> np.ndarray:
        """Per-level reference log-likelihoods ``ref_l`` (max over the training normals)."""
        return self._calibration()["references"]

    @property
    def history_(self) -> List[Dict[str, np.ndarray]]:
        """Per level, the training history: a dict of equally long float64 arrays, one entry per
        interval of optimizer steps (at most ~100 per level): ``step`` (the level's step count at
        the interval's end), ``phase`` (1 or 2), ``learning_rate``, ``loss``,
        ``maximum_likelihood``, ``semi_pull``, ``semi_push``, ``normal_log_likelihood`` (mean ℓ
        of the normal vectors), ``abnormal_log_likelihood``, ``normal_boundary``,
        ``abnormal_boundary`` (interval means; NaN where not evaluated). Empty arrays for a model
        read from a file written before histories were kept."""
        self._require_trained()
        with self._lock:
            return read_history(_history_length, _history, self._handle, len(self.channels_))

    @property
    def separation_(self) -> np.ndarray:
        """Per level, how far training pushed the known anomalies from the normal vectors, in
        boundary margins: over the last quarter of phase 2, (mean normal ℓ − mean abnormal ℓ)
        / mean (b_n − b_a). NaN without a history or known anomalies. Below
        :data:`SEPARATION_WARNING` at every level, a larger ``steps`` budget would likely
        score better (docs/TRAINING.md)."""
        self._require_trained()
        out = np.empty(len(self.channels_), dtype=np.float64)
        with self._lock:
            check(_separation(self._handle, out.ctypes.data_as(c_double_p)))
        return out

    def training_warning(self) -> Optional[str]:
        """A one-line warning when training stopped before the known anomalies left the
        normals' margin (``separation_`` below :data:`SEPARATION_WARNING` at every level),
        else None."""
        return training_warning(self.separation_, int(self._params.get("steps", 0)))

    @property
    def max_normality_(self) -> float:
        """``S_max``: anomaly score = ``S_max`` − summed normality."""
        return self._calibration()["s_max"]

    # -- persistence -------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the trained model (versioned, checksummed binary; atomic rename)."""
        self._require_trained()
        with self._lock:
            check(_save(self._handle, c_path(path)))

    @classmethod
    def load(cls, path: Union[str, os.PathLike], progress: bool = True) -> "BGAD":
        """Reads a model written by :meth:`save`; a bad file raises :class:`BGADError`."""
        h = ctypes.c_void_p()
        check(_load(c_path(path), ctypes.byref(h)))
        model = cls.__new__(cls)
        model._set_handle(h)
        model._lock = threading.RLock()
        model.progress = progress
        model._params = {}
        for name in DEFAULTS:
            needed = ctypes.c_int64()
            check(_get_param(h, name.encode(), None, 0, ctypes.byref(needed)))
            buf = ctypes.create_string_buffer(needed.value)
            check(_get_param(h, name.encode(), buf, needed.value, ctypes.byref(needed)))
            model._params[name] = _parse(name, buf.value.decode())
        model.levels = model.channels_
        return model

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._params.items() if DEFAULTS.get(k) != v}
        args = ", ".join([f"levels={self.levels!r}"] + [f"{k}={v!r}" for k, v in changed.items()])
        return f"BGAD({args})"


# The docstring's defaults are the engine's (DEFAULTS), not a copy of them (no docstring
# under python -OO).
if BGAD.__doc__:
    _doc = BGAD.__doc__.replace("{", "{{").replace("}", "}}")
    for _name in DEFAULTS:
        _doc = _doc.replace("{{%s}}" % _name, "{%s}" % _name)
    BGAD.__doc__ = _doc.format(**DEFAULTS)

__all__ = ["BGAD", "DEFAULTS", "HISTORY_FIELDS", "SEPARATION_WARNING", "PROGRESS_FN", "read_history",
           "training_warning"]
