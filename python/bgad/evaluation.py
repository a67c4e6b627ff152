"""Evaluation of a :class:`bgad.Detector` on a :class:`bgad.datasets.Split` with the literature's metrics.

Image AUROC and AP use the image scores; pixel AUROC and AU-PRO@0.3 use the anomaly
maps against the ground-truth masks, when the split has masks for its anomalous images;
the F1-optimal threshold is reported on image scores.
"""

from __future__ import annotations

import json
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import metrics


def image_metrics(labels: np.ndarray, scores: np.ndarray) -> Dict[str, float]:
    """Image AUROC, AP and the F1-optimal threshold of image scores."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float64)
    threshold, f1 = metrics.f1_optimal_threshold(labels, scores)
    return {
        "image_auroc": metrics.roc_auc(labels, scores),
        "image_ap": metrics.average_precision(labels, scores),
        "f1_threshold": threshold,
        "f1": f1,
    }


def pixel_metrics(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3) -> Dict[str, float]:
    """Pixel AUROC and AU-PRO (up to ``fpr_limit``) of a stack of maps against masks."""
    return {
        "pixel_auroc": metrics.pixel_roc_auc(masks, maps),
        "au_pro": metrics.au_pro(masks, maps, fpr_limit=fpr_limit),
    }


#: Rows of the table: key, label, format.
_ROWS = [
    ("image_auroc", "image AUROC", "{:.3f}"),
    ("image_ap", "image AP", "{:.3f}"),
    ("pixel_auroc", "pixel AUROC", "{:.3f}"),
    ("au_pro", "AU-PRO@0.3", "{:.3f}"),
    ("f1", "F1 (best threshold)", "{:.3f}"),
    ("f1_threshold", "F1 threshold", "{:.4g}"),
]


def evaluate_detector(det, split, fpr_limit: float = 0.3) -> Dict[str, float]:
    """Scores the split's test images with a fitted :class:`bgad.Detector` and returns
    :func:`image_metrics`, plus :func:`pixel_metrics` when the split has test masks (maps at
    the images' own size; the test images must then share one size)."""
    from .io import read_mask

    preds = det.predict(split.test)
    res = image_metrics(split.test_labels, np.array([p.score for p in preds]))
    if any(m is not None for m in split.test_masks):
        shapes = {p.anomaly_map.shape for p in preds}
        if len(shapes) == 1:
            shape = shapes.pop()
            masks = np.stack([read_mask(m, shape) if m is not None else np.zeros(shape, np.uint8) for m in split.test_masks])
            res.update(pixel_metrics(masks, np.stack([p.anomaly_map for p in preds]), fpr_limit))
    return res


def format_table(results: Dict[str, Dict[str, float]], reference: Optional[Dict[str, float]] = None) -> str:
    """A readable table: one column per model (e.g. ``{"BGAD": {...}, "NFAD": {...}}``).

    Values may be floats or ``(mean, std)`` pairs. ``reference`` adds published image AUROC
    figures below the table.
    """
    names = list(results)
    has_spread = any(isinstance(v, (tuple, list)) for r in results.values() for v in r.values())
    width = max(18 if has_spread else 12, *(len(n) + 2 for n in names))
    lines = ["metric".ljust(22) + "".join(n.rjust(width) for n in names)]
    for key, label, fmt in _ROWS:
        if not any(key in results[n] for n in names):
            continue
        cells = []
        for n in names:
            v = results[n].get(key)
            if v is None:
                cells.append("-".rjust(width))
            elif isinstance(v, (tuple, list)):
                cells.append(f"{fmt.format(v[0])} ± {v[1]:.3f}".rjust(width))
            else:
                cells.append(fmt.format(v).rjust(width))
        lines.append(label.ljust(22) + "".join(cells))
    if reference:
        lines.append("")
        lines.append("published image AUROC (same protocol): " + ", ".join(f"{k} {v:.3f}" for k, v in reference.items()))
    return "\n".join(lines)


def to_json(obj) -> str:
    """JSON of results (numpy scalars converted)."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(type(o))
    return json.dumps(obj, indent=2, default=default)


__all__ = ["image_metrics", "pixel_metrics", "evaluate_detector", "format_table", "to_json"]
