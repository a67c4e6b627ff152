"""Heat-map overlays of anomaly maps on images (for people to look at)."""

from __future__ import annotations

import numpy as np


def colormap(values: np.ndarray) -> np.ndarray:
    """Maps values in [0, 1] to RGB uint8 with a blue → cyan → yellow → red ramp ('jet'-like)."""
    v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, anomaly_map: np.ndarray, vmin: float, vmax: float, alpha: float = 0.45) -> np.ndarray:
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
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if anomaly_map.shape != img.shape[:2]:
        raise ValueError(f"map {anomaly_map.shape} and image {img.shape[:2]} differ in size")
    span = vmax - vmin if vmax > vmin else 1.0
    heat = colormap((anomaly_map - vmin) / span).astype(np.float64)
    out = (1 - alpha) * img.astype(np.float64) + alpha * heat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def side_by_side(*images: np.ndarray, gap: int = 4) -> np.ndarray:
    """Concatenates RGB/gray uint8 images of equal height horizontally with a white gap."""
    rgb = [np.repeat(i[..., None], 3, 2) if i.ndim == 2 else i for i in images]
    h = max(i.shape[0] for i in rgb)
    parts = []
    for k, i in enumerate(rgb):
        pad = np.full((h, i.shape[1], 3), 255, np.uint8)
        pad[: i.shape[0]] = i
        parts.append(pad)
        if k + 1 < len(rgb):
            parts.append(np.full((h, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


__all__ = ["colormap", "overlay", "side_by_side"]
