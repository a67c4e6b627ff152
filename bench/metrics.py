"""Benchmark of the exact pixel metrics against their peers, measured in the same run.

    PYTHONPATH=python python3 bench/metrics.py [--maps 200] [--aupro-maps 100] [--size 256]

- pixel AUROC on N maps of S×S: bgad vs ``sklearn.metrics.roc_auc_score`` on the flattened
  pixels (the same exact value).
- AU-PRO@0.3 on M maps of S×S: bgad vs a straightforward exact implementation in numpy/scipy
  (8-connected regions with ``scipy.ndimage.label``, one global argsort, cumulative sums,
  the curve at every distinct threshold, trapezoids with interpolation at the limit). That
  peer is the vectorised form of the all-thresholds reference of the tests, which is
  O(pixels × thresholds) and cannot run at this size.

Prints each time (best of a few runs), the ratio, and checks that the values agree.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

import bgad

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
from test_metrics import au_pro_reference  # noqa: E402  (the slow, obviously-correct reference)


def synthetic(n, size, seed=0):
    """Maps with blob-shaped defects on a third of the images, scores correlated with them."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(0, n, 3):
        for _ in range(rng.integers(1, 4)):
            cy, cx, r = rng.integers(0, size, 2).tolist() + [int(rng.integers(2, max(3, size // 8)))]
            masks[i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    maps = (rng.normal(size=masks.shape) + 1.5 * masks).astype(np.float32)
    return masks, maps


def au_pro_numpy(masks, maps, fpr_limit=0.3):
    """Straightforward exact AU-PRO with numpy + scipy (the peer)."""
    weights = np.zeros(masks.shape, np.float64)
    regions = 0
    labelled = []
    for i, m in enumerate(masks):
        lab, k = ndimage.label(m, structure=np.ones((3, 3)))
        labelled.append((i, lab, k))
        regions += k
    for i, lab, k in labelled:
        if k:
            areas = np.bincount(lab.ravel())[1:]
            w = np.zeros(k + 1)
            w[1:] = 1.0 / (areas * regions)
            weights[i] = w[lab]
    normal = masks.ravel() == 0
    scores = maps.ravel()
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    fpr = np.cumsum(normal[order]) / normal.sum()
    pro = np.cumsum(weights.ravel()[order])
    last = np.r_[s[1:] != s[:-1], True]  # end of each tie group
    fpr = np.r_[0.0, fpr[last]]
    pro = np.r_[0.0, pro[last]]
    k = np.searchsorted(fpr, fpr_limit, side="left")  # first point with fpr >= limit
    area = np.sum((fpr[1:k] - fpr[: k - 1]) * (pro[1:k] + pro[: k - 1]) / 2)
    f0, f1, p0, p1 = fpr[k - 1], fpr[k], pro[k - 1], pro[k]
    p_lim = p0 + (p1 - p0) * (fpr_limit - f0) / (f1 - f0) if f1 > f0 else p1
    area += (fpr_limit - f0) * (p0 + p_lim) / 2
    return area / fpr_limit


def best_time(fn, repeat):
    best, value = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t)
    return best, value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", type=int, default=200)
    ap.add_argument("--aupro-maps", type=int, default=100)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    masks, maps = synthetic(args.maps, args.size)
    t_ours, v_ours = best_time(lambda: bgad.metrics.pixel_roc_auc(masks, maps), args.repeat)
    t_peer, v_peer = best_time(lambda: roc_auc_score(masks.ravel(), maps.ravel()), args.repeat)
    assert abs(v_ours - v_peer) < 1e-9, (v_ours, v_peer)
    print(f"pixel AUROC, {args.maps} maps of {args.size}x{args.size}: bgad {t_ours*1e3:.1f} ms, "
          f"scikit-learn {t_peer*1e3:.1f} ms, ratio {t_peer/t_ours:.1f}x (value {v_ours:.6f})")

    masks, maps = masks[: args.aupro_maps], maps[: args.aupro_maps]
    t_ours, v_ours = best_time(lambda: bgad.metrics.au_pro(masks, maps), args.repeat)
    t_peer, v_peer = best_time(lambda: au_pro_numpy(masks, maps), args.repeat)
    assert abs(v_ours - v_peer) < 1e-9, (v_ours, v_peer)
    print(f"AU-PRO@0.3, {len(maps)} maps of {args.size}x{args.size}: bgad {t_ours*1e3:.1f} ms, "
          f"exact numpy/scipy {t_peer*1e3:.1f} ms, ratio {t_peer/t_ours:.1f}x (value {v_ours:.6f})")

    # The tests' reference evaluates every threshold on every pixel (O(pixels x thresholds)):
    # it is only feasible on a small stack.
    small_m, small_s = synthetic(6, 32, seed=1)
    t_ours, v_ours = best_time(lambda: bgad.metrics.au_pro(small_m, small_s), args.repeat)
    t_peer, v_peer = best_time(lambda: au_pro_reference(small_m, small_s), 1)
    assert abs(v_ours - v_peer) < 1e-9, (v_ours, v_peer)
    print(f"AU-PRO@0.3, 6 maps of 32x32: bgad {t_ours*1e3:.2f} ms, the tests' all-thresholds reference "
          f"{t_peer*1e3:.0f} ms, ratio {t_peer/t_ours:.0f}x")


if __name__ == "__main__":
    main()
