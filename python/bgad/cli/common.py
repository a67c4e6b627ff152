"""What several ``bgad`` commands share: option groups, the detector built from options,
the split of an MVTec-layout folder, and the published ELPV figures."""

from __future__ import annotations

import argparse
from typing import List

from .._native import BGADError

#: Published image AUROC on ELPV (10-shot, general setting).
ELPV_PUBLISHED = {"DevNet": 0.846, "DRA": 0.845, "AHL": 0.850, "PatchCore (unsup.)": 0.916}
#: Published hard-setting means (10-shot).
ELPV_PUBLISHED_HARD = {"DRA": 0.766, "AHL": 0.788}


def parse_strides(text: str, option: str = "--strides"):
    """The strides of a ``--strides`` option such as ``8,16``, as a tuple of ints."""
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise BGADError(f"{option} must be comma-separated strides such as 8,16, got {text!r}") from None


def add_strides_option(p: argparse.ArgumentParser, help: str) -> None:
    """``--strides`` (backbone strides used as feature levels) and its deprecated old name
    ``--levels`` (kept for one release)."""
    p.add_argument("--strides", default=None, help=help)
    p.add_argument("--levels", default=None, help="deprecated old name of --strides (removed in the next release)")


def strides_from_args(args):
    """The strides of ``--strides`` (or of the deprecated ``--levels``, with a warning on
    stderr), or None when neither was given."""
    import sys

    strides, levels = getattr(args, "strides", None), getattr(args, "levels", None)
    if levels is not None:
        if strides is not None:
            raise BGADError("give --strides only (--levels is its deprecated old name)")
        print("warning: --levels is deprecated and will be removed in the next release; use --strides", file=sys.stderr)
        return parse_strides(levels, "--levels")
    return None if strides is None else parse_strides(strides)


def add_training_args(p: argparse.ArgumentParser) -> None:
    """Options of a training command; ``None`` defaults leave the Detector's (the engine's) default."""
    p.add_argument("--variant", default="bgad", choices=["bgad", "bgad_wo", "nfad"], help="method (default bgad)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="training budget in optimizer steps, the same for any number of images (Detector default)")
    p.add_argument("--meta-epochs", dest="meta_epochs", type=int, default=None,
                   help="the authors' epoch schedule instead of a step budget (with --steps 0 and --sub-epochs)")
    p.add_argument("--sub-epochs", dest="sub_epochs", type=int, default=None, help="sub-epochs per meta-epoch")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--rpag", dest="rpag_per_anomaly", type=int, default=None, help="RPAG samples per known anomaly (0 = off)")
    p.add_argument("--image-size", dest="image_size", type=int, default=None, help="model input side (Detector default 256)")
    add_strides_option(p, "backbone strides used as feature levels (Detector default 8,16)")
    p.add_argument("--foreground", default=None, choices=["otsu", "whole"], help="RPAG foreground rule (Detector default otsu)")
    p.add_argument("--tiling", default=None, choices=["auto", "on", "off"],
                   help="cover strips (aspect > 2) and large images (> 4x the model input) with square tiles "
                        "at the model resolution: auto (Detector default), always, never")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_split_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    """Options choosing the train/test split of an MVTec-layout folder (``optional``: the
    folder may be left out, when the command has another way to name its images)."""
    p.add_argument("data", nargs="?" if optional else None,
                   help="category folder in the MVTec layout (train/good, test/<type>, ground_truth/<type>)")
    p.add_argument("--protocol", default="multi", choices=["multi", "one-class"], help="known-anomaly protocol")
    p.add_argument("--n-known", dest="n_known", type=int, default=10, help="number of known anomalies (default 10)")
    p.add_argument("--defect-type", dest="defect_type", default=None, help="the seen defect type (one-class protocol)")
    p.add_argument("--split-seed", dest="split_seed", type=int, default=0, help="seed of the choice of known anomalies")


def add_folder_args(p: argparse.ArgumentParser) -> None:
    """Options naming the user's own images: good ones, known defects and their masks
    (each a folder, glob pattern, .txt list file or image, repeatable), and --skip-bad."""
    spec = "folder, glob pattern, .txt list of paths or image file(s)"
    p.add_argument("--normal", nargs="+", default=None, metavar="SPEC", help=f"good images: {spec}")
    p.add_argument("--anomalous", nargs="+", default=None, metavar="SPEC", help=f"known defect images: {spec}")
    p.add_argument("--masks", nargs="+", default=None, metavar="SPEC",
                   help="masks of the defects, matched by file stem (a.jpg <-> a.png or a_mask.png; "
                        "non-zero = defect); a defect without a mask is defective as a whole")
    p.add_argument("--skip-bad", dest="skip_bad", action="store_true",
                   help="skip unreadable or corrupt images (listed) instead of stopping at the first")


def detector_from_args(args, variant=None):
    """A :class:`bgad.Detector` with the options given on the command line (others: its defaults)."""
    from ..detector import Detector

    params = {"variant": variant or args.variant, "seed": args.seed, "progress": not args.quiet}
    for key in ("steps", "meta_epochs", "sub_epochs", "lr", "rpag_per_anomaly", "image_size", "foreground", "tiling"):
        value = getattr(args, key, None)
        if value is not None:
            params[key] = value
    strides = strides_from_args(args)
    if strides is not None:
        params["strides"] = strides
    return Detector(**params)


def split_from_args(args):
    """The :class:`bgad.datasets.Split` the split options describe."""
    from ..datasets import MVTecFolder

    return MVTecFolder(args.data).split(args.protocol, args.n_known, args.defect_type, args.split_seed)


def collect_images(items: List[str]) -> List[str]:
    """Image files named on the command line: folders (recursive), glob patterns, ``.txt``
    lists or files, together and sorted (:func:`bgad.io.list_images`)."""
    from ..io import list_images

    return list_images(list(items))


__all__ = ["ELPV_PUBLISHED", "ELPV_PUBLISHED_HARD", "parse_strides", "add_strides_option", "strides_from_args", "add_training_args", "add_split_args", "add_folder_args",
           "detector_from_args", "split_from_args", "collect_images"]
