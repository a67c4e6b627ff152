"""``bgad evaluate DATA [--model M] [--compare-nfad]``: the literature's metrics on a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_split_args, add_training_args, detector_from_args, split_from_args

HELP = "image AUROC, pixel AUROC, AU-PRO@0.3, AP, F1 threshold on an MVTec-layout folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad evaluate``."""
    add_split_args(p)
    add_training_args(p)
    p.add_argument("--model", default=None, help="evaluate this detector file instead of training one")
    p.add_argument("--compare-nfad", action="store_true", help="also train and evaluate the NFAD baseline")
    p.add_argument("--json", default=None, help="write the results as JSON to this file")


def run(args) -> int:
    """Evaluates a saved detector, or fits one (and NFAD with ``--compare-nfad``), prints the table."""
    from ..detector import Detector
    from ..evaluation import evaluate_detector, format_table, to_json

    split = split_from_args(args)
    print(split.summary())
    results = {}
    if args.model:
        det = Detector.load(args.model)
        det.progress = not args.quiet
        results[str(det.get_params()["variant"]).upper()] = evaluate_detector(det, split)
    else:
        variants = [args.variant] + (["nfad"] if args.compare_nfad and args.variant != "nfad" else [])
        for v in variants:
            det = detector_from_args(args, v)
            det.fit(split.train_normal, split.known_anomalies, split.known_masks)
            results[v.upper()] = evaluate_detector(det, split)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(to_json({"split": split.name, "results": results}))
        print(f"wrote {args.json}")
    return 0
