"""``bgad fit``: train a Detector and save it, on the user's own folders
(``--normal DIR --anomalous DIR [--masks DIR]``) or on an MVTec-layout folder's split."""

from __future__ import annotations

import argparse

from .._native import BGADError
from .common import add_folder_args, add_split_args, add_training_args, detector_from_args, split_from_args

HELP = "train a detector on your folders (--normal/--anomalous/--masks) or an MVTec-layout folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad fit``."""
    add_folder_args(p)
    add_split_args(p, optional=True)
    add_training_args(p)
    p.add_argument("--out", required=True, help="detector file to write")


def run(args) -> int:
    """Fits on the given folders (or the split's normal images and known anomalies) and
    writes the detector file."""
    det = detector_from_args(args)
    if args.normal is not None:
        if args.data is not None:
            raise BGADError("give either --normal (your folders) or an MVTec-layout folder, not both")
        det.fit_folders(args.normal, args.anomalous, args.masks, skip_bad=args.skip_bad)
        for path, reason in det.skipped_:
            print(f"skipped {path}: {reason}")
        if det.skipped_:
            print(f"skipped {len(det.skipped_)} unreadable file(s)")
    else:
        if args.data is None:
            raise BGADError("give --normal DIR [--anomalous DIR [--masks DIR]] or an MVTec-layout folder")
        if args.anomalous is not None or args.masks is not None:
            raise BGADError("--anomalous and --masks go with --normal")
        split = split_from_args(args)
        print(split.summary())
        det.fit(split.train_normal, split.known_anomalies, split.known_masks)
    det.save(args.out)
    print(f"wrote {args.out}")
    warning = det.training_warning()
    if warning:
        print(f"warning: {warning}")
    return 0
