"""``bgad predict MODEL IMAGES... --out DIR``: scores (CSV + JSON) and heat-map overlays in this
process, or, with ``--scheduler``, on a Dask cluster into resumable Parquet/CSV partitions."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .._errors import BGADError
from .common import collect_images

HELP = "score images: CSV/JSON of scores and overlays, or Parquet partitions on a Dask cluster (--scheduler)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad predict``."""
    p.add_argument("model", help="detector file written by `bgad fit`")
    p.add_argument("images", nargs="+", help="image files, folders, glob patterns or .txt lists of paths")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    d = p.add_argument_group("on a Dask cluster (pip install 'bgad[dask]')")
    d.add_argument("--scheduler", default=None,
                   help="ADDRESS of a Dask scheduler (tcp://host:8786), a scheduler file (*.json), or local[:N] "
                        "(a LocalCluster of N worker processes, default one per core); writes "
                        "part-NNNNN.parquet files as partitions finish and resumes an interrupted run")
    d.add_argument("--partition-size", dest="partition_size", type=int, default=1024,
                   help="images per partition file / task (default 1024)")
    d.add_argument("--predict-batch", dest="predict_batch", type=int, default=None,
                   help="images per engine call on a worker (default 32)")
    d.add_argument("--batch-size", dest="batch_size", type=int, default=None,
                   help="deprecated old name of --predict-batch (removed in the next release)")
    d.add_argument("--maps", action="store_true", help="workers write each anomaly map to OUT/maps/*.npy (float32)")
    d.add_argument("--format", default=None, choices=["parquet", "csv"],
                   help="partition file format (default parquet when pyarrow is installed, else csv)")
    d.add_argument("--threads-per-worker", dest="threads_per_worker", type=int, default=None,
                   help="engine threads per worker process (default: a host's cores / its worker processes)")


def run(args) -> int:
    """Scores every image with the saved detector, locally or on the cluster of ``--scheduler``."""
    if args.scheduler:
        return run_distributed(args)
    from .. import io
    from ..detector import Detector
    from ..io import read_image
    from ..evaluation import to_json
    from ..visualize import heatmap_overlay

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
        io.write_png(str(out / "overlays" / f"{Path(path).stem}.png"), heatmap_overlay(read_image(path), p.anomaly_map, vmin, vmax))
        rows.append({"image": path, "score": p.score, "is_anomalous": p.is_anomalous})
    with open(out / "scores.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "score", "is_anomalous"])
        w.writeheader()
        w.writerows(rows)
    (out / "scores.json").write_text(to_json(rows))
    print(f"scored {len(rows)} images: {sum(r['is_anomalous'] for r in rows)} anomalous; wrote {out}/scores.csv, scores.json, overlays/")
    return 0


def run_distributed(args, on_partition=None) -> int:
    """``--scheduler``: :func:`bgad.dask.score_to_dir` on the cluster; prints what it wrote."""
    from .. import dask as bdask

    predict_batch = args.predict_batch
    if args.batch_size is not None:
        if predict_batch is not None:
            raise BGADError("give --predict-batch only (--batch-size is its deprecated old name)")
        print("warning: --batch-size is deprecated and will be removed in the next release; use --predict-batch",
              file=sys.stderr)
        predict_batch = args.batch_size
    paths = collect_images(args.images)
    client, cluster = bdask.connect(args.scheduler)
    try:
        done = bdask.score_to_dir(args.model, paths, args.out, client=client, partition_size=args.partition_size,
                                  predict_batch=32 if predict_batch is None else predict_batch, maps=args.maps, fmt=args.format,
                                  threads_per_worker=args.threads_per_worker, on_partition=on_partition)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"{len(paths)} images in {done['partitions']} partitions: {done['skipped']} already done, "
          f"{done['written']} written now ({done['rows']} rows, {done['errors']} errors) in "
          f"{done['seconds']:.1f} s; {args.out}/part-*.{done['format']}")
    return 0
