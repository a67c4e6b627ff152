"""The ``bgad`` command line (also ``python -m bgad``), with anomalib's verbs.

    bgad demo [--seeds 3] [--setting general|hard]     the main job: ELPV, BGAD vs NFAD
    bgad fit DATA --out model.bgad [--n-known 10]       train on an MVTec-layout folder
    bgad predict MODEL IMAGE_OR_FOLDER... --out DIR     scores (CSV + JSON) and overlay PNGs
    bgad evaluate DATA [--model M] [--compare-nfad]     AUROC, pixel AUROC, AU-PRO, AP, F1
    bgad rpag ...                                       write RPAG pseudo anomalies to look at
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from ._native import BGADError

#: Published image AUROC on ELPV (10-shot, general setting).
ELPV_PUBLISHED = {"DevNet": 0.846, "DRA": 0.845, "AHL": 0.850, "PatchCore (unsup.)": 0.916}
#: Published hard-setting means (10-shot).
ELPV_PUBLISHED_HARD = {"DRA": 0.766, "AHL": 0.788}


def _hyper(args) -> dict:
    hp = {}
    for key in ("steps", "meta_epochs", "sub_epochs", "lr"):
        v = getattr(args, key, None)
        if v is not None:
            hp[key] = v
    return hp


def parse_levels(text: str):
    """The strides of a ``--levels`` option such as ``8,16``, as a tuple of ints."""
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise BGADError(f"--levels must be comma-separated strides such as 8,16, got {text!r}") from None


def _add_training_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--variant", default="bgad", choices=["bgad", "bgad_wo", "nfad"], help="method (default bgad)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="training budget in optimizer steps, independent of the image count (default: the Detector's)")
    p.add_argument("--meta-epochs", dest="meta_epochs", type=int, default=None,
                   help="the authors' epoch schedule instead of a step budget (with --sub-epochs and --steps 0)")
    p.add_argument("--sub-epochs", dest="sub_epochs", type=int, default=None, help="sub-epochs per meta-epoch")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--rpag", dest="rpag_per_anomaly", type=int, default=10, help="RPAG samples per known anomaly (0 = off)")
    p.add_argument("--image-size", dest="image_size", type=int, default=256, help="model input side (default 256)")
    p.add_argument("--levels", default="8,16", help="backbone strides used as feature levels (default 8,16)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="category folder in the MVTec layout (train/good, test/<type>, ground_truth/<type>)")
    p.add_argument("--protocol", default="multi", choices=["multi", "one-class"], help="known-anomaly protocol")
    p.add_argument("--n-known", dest="n_known", type=int, default=10, help="number of known anomalies (default 10)")
    p.add_argument("--defect-type", dest="defect_type", default=None, help="the seen defect type (one-class protocol)")
    p.add_argument("--split-seed", dest="split_seed", type=int, default=0, help="seed of the choice of known anomalies")


def _detector(args, variant=None):
    from .detector import Detector

    return Detector(
        variant=variant or args.variant,
        seed=args.seed,
        rpag_per_anomaly=args.rpag_per_anomaly,
        image_size=args.image_size,
        levels=parse_levels(args.levels),
        progress=not args.quiet,
        **_hyper(args),
    )


def _split(args):
    from .datasets import MVTecFolder

    return MVTecFolder(args.data).split(args.protocol, args.n_known, args.defect_type, args.split_seed)


def cmd_fit(args) -> int:
    split = _split(args)
    print(split.summary())
    det = _detector(args)
    det.fit(split.train_normal, split.known_anomalies, split.known_masks)
    det.save(args.out)
    print(f"wrote {args.out}")
    warning = det.model.training_warning()
    if warning:
        print(f"warning: {warning}")
    return 0


def _collect_images(items: List[str]) -> List[str]:
    from .datasets import IMAGE_SUFFIXES

    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(str(q) for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(str(p))
        else:
            raise BGADError(f"no such image or folder: {p}")
    if not out:
        raise BGADError("no images found in " + ", ".join(items))
    return out


def cmd_predict(args) -> int:
    from . import io
    from .detector import Detector, read_image
    from .evaluation import to_json
    from .visualize import overlay

    det = Detector.load(args.model)
    det.progress = not args.quiet
    paths = _collect_images(args.images)
    preds = det.predict(paths)
    out = Path(args.out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    vmin = float(min(p.anomaly_map.min() for p in preds))
    vmax = float(max(p.anomaly_map.max() for p in preds))
    rows = []
    for path, p in zip(paths, preds):
        name = Path(path).stem
        io.write_png(str(out / "overlays" / f"{name}.png"), overlay(read_image(path), p.anomaly_map, vmin, vmax))
        rows.append({"image": path, "score": p.score, "is_anomalous": p.is_anomalous})
    with open(out / "scores.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "score", "is_anomalous"])
        w.writeheader()
        w.writerows(rows)
    (out / "scores.json").write_text(to_json(rows))
    print(f"scored {len(rows)} images: {sum(r['is_anomalous'] for r in rows)} anomalous; wrote {out}/scores.csv, scores.json, overlays/")
    return 0


def _evaluate_detector(det, split) -> dict:
    from .detector import read_mask
    from .evaluation import image_metrics, pixel_metrics

    preds = det.predict(split.test)
    scores = np.array([p.score for p in preds])
    res = image_metrics(split.test_labels, scores)
    if any(m is not None for m in split.test_masks):
        shapes = {p.anomaly_map.shape for p in preds}
        if len(shapes) == 1:
            shape = shapes.pop()
            masks = np.stack([read_mask(m, shape) if m is not None else np.zeros(shape, np.uint8) for m in split.test_masks])
            res.update(pixel_metrics(masks, np.stack([p.anomaly_map for p in preds])))
    return res


def cmd_evaluate(args) -> int:
    from .detector import Detector
    from .evaluation import format_table, to_json

    split = _split(args)
    print(split.summary())
    results = {}
    if args.model:
        det = Detector.load(args.model)
        det.progress = not args.quiet
        results[det.variant.upper()] = _evaluate_detector(det, split)
    else:
        variants = [args.variant] + (["nfad"] if args.compare_nfad and args.variant != "nfad" else [])
        for v in variants:
            det = _detector(args, v)
            det.fit(split.train_normal, split.known_anomalies, split.known_masks)
            results[v.upper()] = _evaluate_detector(det, split)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(to_json({"split": split.name, "results": results}))
        print(f"wrote {args.json}")
    return 0


def cmd_rpag(args, rest: List[str]) -> int:
    from . import rpag

    return rpag.main(rest)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="bgad",
        description="BGAD supervised anomaly detection: train on good parts plus a few defects, "
        "get a score per image and a heat map per pixel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    sub = ap.add_subparsers(dest="verb", metavar="VERB")

    p = sub.add_parser("demo", help="the main job: ELPV solar cells, BGAD vs NFAD, published numbers beside")
    from .demo import add_arguments as demo_args

    demo_args(p)

    p = sub.add_parser("fit", help="train a detector on an MVTec-layout folder and save it")
    _add_split_args(p)
    _add_training_args(p)
    p.add_argument("--out", required=True, help="detector file to write")

    p = sub.add_parser("predict", help="score images: CSV/JSON of scores and heat-map overlay PNGs")
    p.add_argument("model", help="detector file written by `bgad fit`")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("evaluate", help="image AUROC, pixel AUROC, AU-PRO@0.3, AP, F1 threshold on an MVTec-layout folder")
    _add_split_args(p)
    _add_training_args(p)
    p.add_argument("--model", default=None, help="evaluate this detector file instead of training one")
    p.add_argument("--compare-nfad", action="store_true", help="also train and evaluate the NFAD baseline")
    p.add_argument("--json", default=None, help="write the results as JSON to this file")

    sub.add_parser("rpag", help="write RPAG pseudo anomalies and a contact sheet (see `bgad rpag --help`)", add_help=False)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``bgad`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "rpag":
        try:
            return cmd_rpag(None, argv[1:])
        except BGADError as e:
            print(f"bgad rpag: error: {e}", file=sys.stderr)
            return 2
    ap = build_parser()
    args = ap.parse_args(argv)
    if not args.verb:
        ap.print_help()
        return 1
    try:
        if args.verb == "demo":
            from .demo import run

            return run(args)
        return {"fit": cmd_fit, "predict": cmd_predict, "evaluate": cmd_evaluate}[args.verb](args)
    except BGADError as e:
        print(f"bgad {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bgad {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
