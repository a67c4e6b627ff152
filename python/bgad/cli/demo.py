"""``bgad demo``: the main job on ELPV solar cells (the PyPI package ``elpv-dataset``).

Fits :class:`bgad.Detector` twice per split — BGAD and the NFAD baseline — on the ELPV
protocol of the open-set supervised AD literature (general setting, K = 10 known anomalies
by default), evaluates image AUROC on the test split, prints the table with the published
numbers beside ours, and writes a few heat-map overlays. Everything runs through the
Detector that ``bgad fit`` users run; the demo only sets its options explicitly.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from .common import ELPV_PUBLISHED, ELPV_PUBLISHED_HARD, add_strides_option, strides_from_args

HELP = "the main job: ELPV solar cells, BGAD vs NFAD, published numbers beside"

#: Options of the demo that differ from the Detector's defaults: ELPV cells fill the
#: whole image (no background for Otsu to separate), so RPAG pastes anywhere.
ELPV_OPTIONS = {"foreground": "whole"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad demo``."""
    p.add_argument("--setting", default="general", choices=["general", "hard"],
                   help="general: known anomalies from both classes; hard: from one class, tested on the other (both runs)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0, 1, ...); mean ± std when > 1")
    p.add_argument("--n-known", dest="n_known", type=int, default=10, help="known anomalies K (default 10)")
    p.add_argument("--steps", type=int, default=None,
                   help="training budget in optimizer steps (default: the Detector's; 150 with --quick)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the Detector's)")
    add_strides_option(p, "backbone strides used as feature levels (default: the Detector's, 8,16)")
    p.add_argument("--rpag", dest="rpag", type=int, default=None, help="RPAG samples per known anomaly (default: the Detector's)")
    p.add_argument("--foreground", default=ELPV_OPTIONS["foreground"], choices=["otsu", "whole"],
                   help=f"RPAG foreground rule (default {ELPV_OPTIONS['foreground']} for ELPV cells)")
    p.add_argument("--quick", action="store_true", help="a small, fast run (for CI): 60 train and 40 test images, 150 steps")
    p.add_argument("--out", default="bgad-demo", help="folder for overlays and results.json (default ./bgad-demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _options(args) -> dict:
    """The Detector's parameters of the run: its defaults, overridden by the options given."""
    from ..detector import Detector

    opts = {"foreground": args.foreground}
    strides = strides_from_args(args)
    if strides is not None:
        opts["strides"] = strides
    if args.rpag is not None:
        opts["rpag_per_anomaly"] = args.rpag
    if args.lr is not None:
        opts["lr"] = args.lr
    if args.quick:
        opts["steps"] = 150
    if args.steps is not None:
        opts["steps"] = args.steps
    Detector(**opts)  # the engine names a bad option now, before any data is read
    return opts


def _write_overlays(det, test: List[str], labels: np.ndarray, scores: np.ndarray, out: Path) -> None:
    """Side-by-side image | heat map of the 3 highest and 2 lowest scored test images."""
    from .. import io
    from ..io import read_image
    from ..visualize import heatmap_overlay, side_by_side

    order = np.argsort(scores)
    picks = list(order[-3:]) + list(order[:2])
    preds = det.predict([test[k] for k in picks])
    maps = np.concatenate([p.anomaly_map.ravel() for p in preds])
    vmin, vmax = float(np.percentile(maps, 1)), float(np.percentile(maps, 99.9))
    (out / "overlays").mkdir(exist_ok=True)
    for k, p in zip(picks, preds):
        img = read_image(test[k], mode="rgb")
        tag = "anomalous" if labels[k] else "normal"
        io.write_png(str(out / "overlays" / f"{Path(test[k]).stem}_{tag}_score{scores[k]:.3f}.png"),
                     side_by_side(img, heatmap_overlay(img, p.anomaly_map, vmin, vmax)))


def run(args) -> int:
    """Runs the demo; returns the process exit status."""
    from ..datasets import elpv
    from ..detector import Detector
    from ..evaluation import format_table, to_json
    from ..metrics import roc_auc

    t0 = time.time()
    progress = not args.quiet
    opts = _options(args)
    params = Detector(**opts).get_params()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    runs = []  # (seed, hard_class)
    for seed in range(max(1, args.seeds)):
        runs += [(seed, None)] if args.setting == "general" else [(seed, "mono"), (seed, "poly")]

    table_rows: Dict[str, List[float]] = {"BGAD": [], "NFAD": []}
    per_run = []
    for seed, hard_class in runs:
        split = elpv(args.setting, args.n_known, seed=seed, hard_class=hard_class or "mono")
        train, test, labels = split.train_normal, split.test, split.test_labels
        if args.quick:
            rng = np.random.default_rng(seed)
            train = [train[i] for i in sorted(rng.choice(len(train), 60, replace=False))]
            pick = np.r_[rng.choice(np.flatnonzero(labels == 0), 20, replace=False),
                         rng.choice(np.flatnonzero(labels == 1), 20, replace=False)]
            test, labels = [test[i] for i in pick], labels[pick]
        print(split.summary() + (" [quick: 60 train, 40 test]" if args.quick else ""))
        result = {"seed": seed, "hard_class": hard_class}
        for variant in ("bgad", "nfad"):
            t = time.time()
            det = Detector(variant=variant, seed=seed, progress=progress, **opts)
            det.fit(train, split.known_anomalies, split.known_masks)
            fit_seconds = time.time() - t
            scores = det.score_images(test)
            auroc = roc_auc(labels, scores)
            table_rows[variant.upper()].append(auroc)
            result[variant] = {"image_auroc": auroc, "fit_seconds": fit_seconds, "seconds": time.time() - t}
            print(f"  {variant.upper():5s} image AUROC {auroc:.4f}  (fit {fit_seconds:.0f} s, all {time.time() - t:.0f} s)")
            if variant == "bgad" and seed == 0 and hard_class in (None, "mono"):
                _write_overlays(det, test, labels, scores, out)
        per_run.append(result)

    def summary(values):
        return (float(np.mean(values)), float(np.std(values))) if len(values) > 1 else float(values[0])

    results = {name: {"image_auroc": summary(v)} for name, v in table_rows.items()}
    strides = [int(s) for s in params["strides"]]
    print()
    print(f"ELPV, {args.setting} setting, K = {args.n_known}, {max(1, args.seeds)} seed(s), "
          f"{params['steps']} steps, lr {params['lr']:g}, "
          f"strides {tuple(strides)}, foreground {params['foreground']}" + (" — QUICK run, not comparable" if args.quick else ""))
    print(format_table(results, ELPV_PUBLISHED if args.setting == "general" else ELPV_PUBLISHED_HARD))
    (out / "results.json").write_text(to_json({
        "setting": args.setting, "n_known": args.n_known, "quick": args.quick,
        "steps": params["steps"], "lr": params["lr"], "strides": strides,
        "detector": {k: v for k, v in params.items() if k not in ("progress", "weights")},
        "runs": per_run, "summary": results}))
    print(f"\nwrote {out}/results.json and overlays in {out}/overlays ({time.time() - t0:.0f} s in all)")
    return 0
