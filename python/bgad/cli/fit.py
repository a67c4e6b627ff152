"""``bgad fit DATA --out model.bgad``: train a Detector on an MVTec-layout folder and save it."""

from __future__ import annotations

import argparse

from .common import add_split_args, add_training_args, detector_from_args, split_from_args

HELP = "train a detector on an MVTec-layout folder and save it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad fit``."""
    add_split_args(p)
    add_training_args(p)
    p.add_argument("--out", required=True, help="detector file to write")


def run(args) -> int:
    """Fits on the split's normal images and known anomalies, writes the detector file."""
    split = split_from_args(args)
    print(split.summary())
    det = detector_from_args(args)
    det.fit(split.train_normal, split.known_anomalies, split.known_masks)
    det.save(args.out)
    print(f"wrote {args.out}")
    warning = det.training_warning()
    if warning:
        print(f"warning: {warning}")
    return 0
