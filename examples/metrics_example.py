"""A first look at bgad: exact evaluation metrics on synthetic anomaly maps."""

import numpy as np

import bgad

rng = np.random.default_rng(0)
labels = np.r_[np.zeros(80), np.ones(20)]
scores = rng.normal(size=100) + 1.5 * labels
print(f"bgad {bgad.__version__}")
print(f"image AUROC   {bgad.metrics.roc_auc(labels, scores):.4f}")
print(f"AP            {bgad.metrics.average_precision(labels, scores):.4f}")
t, f1 = bgad.metrics.f1_optimal_threshold(labels, scores)
print(f"F1 threshold  {t:.4f} (F1 {f1:.4f})")

masks = np.zeros((10, 64, 64), np.uint8)
masks[:, 20:30, 20:35] = 1
maps = rng.normal(size=masks.shape).astype(np.float32) + 2.0 * masks
print(f"pixel AUROC   {bgad.metrics.pixel_roc_auc(masks, maps):.4f}")
print(f"AU-PRO@0.3    {bgad.metrics.au_pro(masks, maps):.4f}")
