"""Heat-map overlays of anomaly maps on images, and training-history plots (for people to look at)."""

from __future__ import annotations

import numpy as np

from ._errors import deprecated_alias
from .io import to_rgb


def colormap(values: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] to RGB uint8 with a blue → cyan → yellow → red ramp ('jet'-like)."""
    v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255 + 0.5).astype(np.uint8)


def heatmap_overlay(image: np.ndarray, anomaly_map: np.ndarray, vmin: float, vmax: float, alpha: float = 0.45) -> np.ndarray:
    """Blends the colour-mapped ``anomaly_map`` (scaled from ``[vmin, vmax]``) over ``image``.

    Args:
        image: uint8 ``(H, W)`` or ``(H, W, 3)``.
        anomaly_map: ``(H, W)`` scores at the image's size.
        vmin, vmax: the score range mapped to the ends of the colour ramp (use the same
            range for every image of a run so colours compare).
        alpha: weight of the heat map.
    Returns:
        uint8 ``(H, W, 3)``.
    """
    img = to_rgb(image)
    if anomaly_map.shape != img.shape[:2]:
        raise ValueError(f"map {anomaly_map.shape} and image {img.shape[:2]} differ in size")
    span = vmax - vmin if vmax > vmin else 1.0
    heat = colormap((anomaly_map - vmin) / span).astype(np.float64)
    out = (1 - alpha) * img.astype(np.float64) + alpha * heat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """Concatenates RGB/gray uint8 images of equal height horizontally with a white gap."""
    rgb = [to_rgb(i) for i in images]
    h = max(i.shape[0] for i in rgb)
    parts = []
    for k, i in enumerate(rgb):
        pad = np.full((h, i.shape[1], 3), 255, np.uint8)
        pad[: i.shape[0]] = i
        parts.append(pad)
        if k + 1 < len(rgb):
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def plot_history(history, path=None, title: str = "BGAD training history"):
    """Draws a training history (``BGAD.history_`` / ``Detector.history_``): per level, the loss
    and its maximum-likelihood part, the normal and abnormal vectors' mean log-likelihood with
    the explicit boundaries (in ℓ units), and the learning rate, against the level's optimizer steps; phase 2 is
    shaded.

    Args:
        history: a list (one entry per level) of dicts of arrays as ``history_`` returns.
        path: optional file to save the figure to (PNG, PDF, SVG... by its suffix).
        title: the figure's title.
    Returns:
        the matplotlib ``Figure`` (needs matplotlib: ``pip install matplotlib`` or ``bgad[plot]``).
    """
    try:
        import matplotlib

        if path is not None and matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        from ._native import BGADError

        raise BGADError("plot_history needs matplotlib: pip install matplotlib (or bgad[plot])") from None
    levels = list(history)
    if not levels or any(len(h.get("step", ())) == 0 for h in levels):
        from ._native import BGADError

        raise BGADError("plot_history: the history is empty (a model saved before histories were kept?)")
    fig, axes = plt.subplots(3, len(levels), figsize=(4.5 * len(levels), 8), squeeze=False, sharex="col")
    for l, h in enumerate(levels):
        step = np.asarray(h["step"])
        phase2 = step[np.asarray(h["phase"]) == 2]
        loss_ax, ell_ax, lr_ax = axes[0][l], axes[1][l], axes[2][l]
        loss_ax.plot(step, h["loss"], label="loss")
        loss_ax.plot(step, h["maximum_likelihood"], label="max. likelihood part")
        ell_ax.plot(step, h["normal_log_likelihood"], label="normal ℓ")
        if np.isfinite(h["abnormal_log_likelihood"]).any():
            ell_ax.plot(step, h["abnormal_log_likelihood"], label="abnormal ℓ")
        if np.isfinite(h["normal_boundary"]).any():
            ell_ax.plot(step, h["normal_boundary"], "--", label="b_n")
            ell_ax.plot(step, h["abnormal_boundary"], ":", label="b_a")
        lr_ax.plot(step, h["learning_rate"], label="learning rate")
        for ax in (loss_ax, ell_ax, lr_ax):
            if phase2.size:
                ax.axvspan(phase2[0], step[-1], color="0.9", zorder=0)
            ax.legend(fontsize=7)
        loss_ax.set_title(f"level {l}")
        lr_ax.set_xlabel("optimizer steps of the level")
    fig.suptitle(title + " (shaded: phase 2)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


#: Deprecated old name of :func:`heatmap_overlay` (``bgad.rpag`` had an ``overlay`` of its own).
overlay = deprecated_alias(heatmap_overlay, "overlay", "bgad.visualize")

__all__ = ["colormap", "heatmap_overlay", "overlay", "plot_history", "side_by_side"]
