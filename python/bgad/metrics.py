"""Evaluation metrics of the anomaly-detection literature, computed exactly by the engine.

Image level (one score per image): :func:`roc_auc`, :func:`average_precision`,
:func:`f1_optimal_threshold`. Pixel level (a stack of anomaly maps against ground-truth
masks): :func:`pixel_roc_auc`, :func:`au_pro`.

Labels and masks are binary: 0 (or False) = normal, 1 (or True) = anomalous. Higher
scores mean "more anomalous". Bad input raises :class:`bgad.BGADError` naming the problem.

Example:
    >>> import numpy as np, bgad
    >>> bgad.metrics.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
"""

from __future__ import annotations

import ctypes
from typing import Tuple

import numpy as np
from numpy.typing import ArrayLike

from ._native import BGADError, as_array, check, function, ptr

_roc_auc = function("bgad_roc_auc")
_average_precision = function("bgad_average_precision")
_f1 = function("bgad_f1_optimal_threshold")
_pixel_roc_auc = function("bgad_pixel_roc_auc")
_au_pro = function("bgad_au_pro")


def _rank_inputs(labels: ArrayLike, scores: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    y = as_array(labels, np.float64, "labels")
    s = as_array(scores, np.float64, "scores")
    if y.ndim != 1 or s.ndim != 1:
        raise BGADError(f"labels and scores must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise BGADError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if y.size == 0:
        raise BGADError("empty input: no scores given")
    return y, s


def _rank_metric(fn, labels: ArrayLike, scores: ArrayLike) -> float:
    """One image-level metric ``fn(labels, scores, n, out)`` of the engine on checked inputs."""
    y, s = _rank_inputs(labels, scores)
    out = ctypes.c_double()
    check(fn(ptr(y, ctypes.c_double), ptr(s, ctypes.c_double), y.size, ctypes.byref(out)))
    return out.value


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve; equal to ``sklearn.metrics.roc_auc_score`` (ties count ½).

    Args:
        labels: 1-D array of 0/1 (or bool), 1 = anomalous.
        scores: 1-D array of finite scores, same length.
    """
    return _rank_metric(_roc_auc, labels, scores)


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """Average precision; equal to ``sklearn.metrics.average_precision_score``.

    Args:
        labels: 1-D array of 0/1 (or bool), 1 = anomalous.
        scores: 1-D array of finite scores, same length.
    """
    return _rank_metric(_average_precision, labels, scores)


def f1_optimal_threshold(labels: ArrayLike, scores: ArrayLike) -> Tuple[float, float]:
    """The threshold that maximises F1 when ``score >= threshold`` is called anomalous.

    Candidates are the distinct scores (as ``sklearn.metrics.precision_recall_curve``);
    on equal F1 the highest threshold wins.

    Returns:
        ``(threshold, f1)``.
    """
    y, s = _rank_inputs(labels, scores)
    t, f = ctypes.c_double(), ctypes.c_double()
    check(_f1(ptr(y, ctypes.c_double), ptr(s, ctypes.c_double), y.size, ctypes.byref(t), ctypes.byref(f)))
    return t.value, f.value


def _pixel_inputs(masks: ArrayLike, maps: ArrayLike) -> Tuple[np.ndarray, np.ndarray]:
    m = np.asarray(masks)
    a = as_array(maps, np.float32, "maps")
    if m.shape != a.shape:
        raise BGADError(f"masks and maps differ in shape ({m.shape} vs {a.shape})")
    if a.ndim == 2:
        m, a = m[None], a[None]
    if a.ndim != 3:
        raise BGADError(f"maps must have shape (N, H, W) or (H, W), got {a.shape}")
    if a.size == 0:
        raise BGADError(f"empty input: maps of shape {a.shape}")
    if m.dtype == np.bool_ or m.dtype == np.uint8:
        m8 = np.ascontiguousarray(m, dtype=np.uint8)  # values other than 0/1 are rejected natively
    else:
        m = as_array(m, m.dtype, "masks")
        bad = (m != 0) & (m != 1)
        if bad.any():
            idx = int(np.flatnonzero(bad.ravel())[0])
            raise BGADError(
                f"masks: element {idx} is {m.ravel()[idx]}; mask values must be 0 (normal) or 1 (anomalous)"
            )
        m8 = np.ascontiguousarray(m, dtype=np.uint8)
    return m8, a


def pixel_roc_auc(masks: ArrayLike, maps: ArrayLike) -> float:
    """ROC AUC over every pixel of a stack of anomaly maps.

    Equal to ``roc_auc_score(masks.ravel(), maps.ravel())`` with the maps in float32.

    Args:
        masks: ``(N, H, W)`` or ``(H, W)`` binary ground truth (bool or 0/1).
        maps: anomaly maps of the same shape (converted to float32).
    """
    m, a = _pixel_inputs(masks, maps)
    out = ctypes.c_double()
    n, h, w = a.shape
    check(_pixel_roc_auc(ptr(m, ctypes.c_uint8), ptr(a, ctypes.c_float), n, h, w, ctypes.byref(out)))
    return out.value


def au_pro(masks: ArrayLike, maps: ArrayLike, fpr_limit: float = 0.3) -> float:
    """Exact area under the per-region-overlap curve up to ``fpr_limit``, divided by it.

    Ground-truth regions are the 8-connected components of each mask. For every distinct
    score ``t``: PRO(t) = mean over all regions of the fraction of the region scoring
    ``>= t``; FPR(t) = fraction of all normal pixels scoring ``>= t``. The curve from
    (0, 0) through every such point is integrated with trapezoids up to ``fpr_limit``
    (interpolating linearly at the limit) and divided by ``fpr_limit``. No threshold grid.

    Args:
        masks: ``(N, H, W)`` or ``(H, W)`` binary ground truth (bool or 0/1).
        maps: anomaly maps of the same shape (converted to float32).
        fpr_limit: upper integration limit in (0, 1]; 0.3 in the literature.
    """
    m, a = _pixel_inputs(masks, maps)
    out = ctypes.c_double()
    n, h, w = a.shape
    check(_au_pro(ptr(m, ctypes.c_uint8), ptr(a, ctypes.c_float), n, h, w, float(fpr_limit), ctypes.byref(out)))
    return out.value


__all__ = ["roc_auc", "average_precision", "f1_optimal_threshold", "pixel_roc_auc", "au_pro"]
