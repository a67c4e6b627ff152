"""The evaluation helpers: metric dictionaries and the readable table."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bgad.evaluation import format_table, image_metrics


def test_image_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(30), np.ones(20)]
    scores = rng.normal(size=50) + labels
    res = image_metrics(labels, scores)
    assert res["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert 0 < res["f1"] <= 1 and res["f1_threshold"] in scores


def test_table_keeps_mean_and_std_columns_apart():
    text = format_table({"BGAD": {"image_auroc": (0.883, 0.037)}, "NFAD": {"image_auroc": (0.853, 0.055)}})
    row = text.splitlines()[1]
    assert row.split() == ["image", "AUROC", "0.883", "±", "0.037", "0.853", "±", "0.055"]
