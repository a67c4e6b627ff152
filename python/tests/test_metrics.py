"""bgad.metrics against scikit-learn and against slow, obviously-correct references."""

import re

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

import bgad
from bgad import BGADError, metrics


def random_case(rng, n, ties):
    labels = rng.integers(0, 2, n)
    labels[0], labels[1] = 0, 1  # both classes present
    if ties:
        scores = rng.integers(0, rng.integers(1, 6), n).astype(np.float64)  # heavy ties
    else:
        scores = rng.normal(size=n)
    return labels, scores


@pytest.mark.parametrize("seed", range(120))
def test_roc_auc_and_ap_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    labels, scores = random_case(rng, n, ties=seed % 2 == 0)
    assert metrics.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert metrics.average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-9
    )


@pytest.mark.parametrize("seed", range(40))
def test_f1_optimal_threshold_equals_best_point_of_sklearn_pr_curve(seed):
    rng = np.random.default_rng(1000 + seed)
    labels, scores = random_case(rng, int(rng.integers(2, 300)), ties=seed % 2 == 0)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)[:-1]
    best = f1.max()
    threshold, value = metrics.f1_optimal_threshold(labels, scores)
    assert value == pytest.approx(best, abs=1e-12)
    # the returned threshold achieves that F1 when score >= threshold is called anomalous
    pred = scores >= threshold
    tp = np.sum(pred & (labels == 1))
    assert 2 * tp / (pred.sum() + labels.sum()) == pytest.approx(best, abs=1e-12)
    # and it is the highest threshold that does
    assert threshold == thresholds[np.isclose(f1, best, rtol=0, atol=1e-12)].max()


def test_pixel_roc_auc_equals_sklearn_on_flattened_maps():
    rng = np.random.default_rng(7)
    masks = rng.random((5, 17, 13)) < 0.2
    maps = rng.normal(size=masks.shape).astype(np.float32) + masks
    maps[0, :4] = 0.5  # ties across classes
    assert metrics.pixel_roc_auc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)
    # a single (H, W) map is accepted too
    assert metrics.pixel_roc_auc(masks[1], maps[1]) == pytest.approx(
        roc_auc_score(masks[1].ravel(), maps[1].ravel()), abs=1e-9
    )


def au_pro_reference(masks, maps, fpr_limit=0.3):
    """Slow and obvious: 8-connected regions via scipy, then every distinct threshold."""
    normal = ~masks.astype(bool)
    region_masks = []
    for i, m in enumerate(masks):
        lab, k = ndimage.label(m, structure=np.ones((3, 3)))
        for r in range(1, k + 1):
            full = np.zeros(masks.shape, bool)
            full[i] = lab == r
            region_masks.append(full)
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        called = maps >= t
        fpr = (called & normal).sum() / normal.sum()
        pro = np.mean([(called & r).sum() / r.sum() for r in region_masks])
        points.append((fpr, pro))
    area = 0.0
    for (f0, p0), (f1, p1) in zip(points, points[1:]):
        if f1 >= fpr_limit:
            p_lim = p0 + (p1 - p0) * (fpr_limit - f0) / (f1 - f0) if f1 > f0 else p1
            area += (fpr_limit - f0) * (p0 + p_lim) / 2
            return area / fpr_limit
        area += (f1 - f0) * (p0 + p1) / 2
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(30))
def test_au_pro_equals_slow_reference(seed):
    rng = np.random.default_rng(seed)
    n, h, w = int(rng.integers(1, 4)), int(rng.integers(4, 12)), int(rng.integers(4, 12))
    masks = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        for _ in range(int(rng.integers(1, 4))):  # a few rectangles, some touching diagonally
            y, x = rng.integers(0, h), rng.integers(0, w)
            masks[i, y : y + rng.integers(1, 4), x : x + rng.integers(1, 4)] = 1
    masks[0, 0, 0] = 0
    masks[-1, -1, -1] = 1  # at least one region
    quantised = seed % 3 == 0
    maps = rng.normal(size=masks.shape) + 1.5 * masks
    if quantised:
        maps = np.round(maps * 2) / 2  # heavy ties between normal and anomalous pixels
    maps = maps.astype(np.float32)
    for limit in (0.3, 0.05, 1.0):
        assert metrics.au_pro(masks, maps, fpr_limit=limit) == pytest.approx(
            au_pro_reference(masks, maps, limit), abs=1e-9
        )


def test_au_pro_of_region_covering_the_whole_image_but_one_pixel():
    masks = np.ones((1, 6, 6), np.uint8)
    masks[0, 5, 5] = 0
    maps = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    maps[0, 5, 5] = 10.5
    assert metrics.au_pro(masks, maps) == pytest.approx(au_pro_reference(masks, maps), abs=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.roc_auc([0, 1], [0.5]), "differ in length"),
        (lambda: metrics.roc_auc([], []), "empty"),
        (lambda: metrics.roc_auc([0, 1], [np.nan, 1.0]), "NaN"),
        (lambda: metrics.roc_auc([0, 1], [np.inf, 1.0]), "infinite"),
        (lambda: metrics.average_precision([0, 3], [0.1, 1.0]), "must be 0"),
        (lambda: metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), "single class"),
        (lambda: metrics.average_precision([0, 0], [0.1, 0.2]), "single class"),
        (lambda: metrics.roc_auc([[0, 1]], [[0.1, 0.2]]), "1-D"),
        (lambda: metrics.roc_auc(["a", "b"], [0.1, 0.2]), "expected numbers"),
        (lambda: metrics.pixel_roc_auc(np.zeros((2, 3, 3)), np.zeros((2, 3, 4))), "differ in shape"),
        (lambda: metrics.pixel_roc_auc(np.full((1, 2, 2), 255, np.uint8), np.zeros((1, 2, 2))), "must be 0"),
        (lambda: metrics.au_pro(np.full((1, 2, 2), 0.5), np.zeros((1, 2, 2))), "must be 0"),
        (lambda: metrics.au_pro(np.zeros((1, 2, 2)), np.zeros((1, 2, 2))), "single class"),
        (lambda: metrics.au_pro(np.eye(3)[None], np.full((1, 3, 3), np.nan)), "NaN"),
        (lambda: metrics.au_pro(np.eye(3)[None], np.zeros((1, 3, 3)), fpr_limit=1.5), "fpr_limit"),
        (lambda: metrics.pixel_roc_auc(np.zeros((0, 3, 3)), np.zeros((0, 3, 3))), "empty"),
    ],
)
def test_bad_input_raises_bgad_error_naming_the_problem(call, message):
    with pytest.raises(BGADError, match=message):
        call()


def test_native_status_code_is_attached():
    with pytest.raises(BGADError) as info:
        metrics.roc_auc([0, 1], [np.nan, 1.0])
    assert info.value.status == 1


def test_version_and_threads():
    # one VERSION file: the package and the engine (which embeds it at compile time) agree
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", bgad.__version__)
    assert bgad.__version__ == bgad.native_version()
    old = bgad.get_num_threads()
    try:
        bgad.set_num_threads(1)
        assert bgad.get_num_threads() == 1
        with pytest.raises(BGADError, match="threads"):
            bgad.set_num_threads(0)
    finally:
        bgad.set_num_threads(old)  # later tests (and the examples they compare with) run at the default
