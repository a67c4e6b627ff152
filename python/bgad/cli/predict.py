"""``bgad predict MODEL IMAGES... --out DIR``: scores (CSV + JSON) and heat-map overlays."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from .common import collect_images

HELP = "score images: CSV/JSON of scores and heat-map overlay PNGs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad predict``."""
    p.add_argument("model", help="detector file written by `bgad fit`")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Scores every image with the saved detector; writes scores.csv, scores.json, overlays/."""
    from .. import io
    from ..detector import Detector, read_image
    from ..evaluation import to_json
    from ..visualize import overlay

    det = Detector.load(args.model)
    det.progress = not args.quiet
    paths = collect_images(args.images)
    preds = det.predict(paths)
    out = Path(args.out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    vmin = float(min(p.anomaly_map.min() for p in preds))
    vmax = float(max(p.anomaly_map.max() for p in preds))
    rows = []
    for path, p in zip(paths, preds):
        io.write_png(str(out / "overlays" / f"{Path(path).stem}.png"), overlay(read_image(path), p.anomaly_map, vmin, vmax))
        rows.append({"image": path, "score": p.score, "is_anomalous": p.is_anomalous})
    with open(out / "scores.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "score", "is_anomalous"])
        w.writeheader()
        w.writerows(rows)
    (out / "scores.json").write_text(to_json(rows))
    print(f"scored {len(rows)} images: {sum(r['is_anomalous'] for r in rows)} anomalous; wrote {out}/scores.csv, scores.json, overlays/")
    return 0
