"""``bgad export MODEL --format onnx --out model.onnx``: the detector's whole scoring graph
for another runtime (ONNX Runtime, OpenVINO, ...); see :mod:`bgad.onnx_export`."""

from __future__ import annotations

import argparse

from ..onnx_export import MAX_OPSET, MIN_OPSET

HELP = "export a detector's scoring graph (ONNX) to run without bgad"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad export``."""
    p.add_argument("model", help="detector file written by `bgad fit` or Detector.save")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="output format (default onnx)")
    p.add_argument("--out", required=True, help="file to write (e.g. model.onnx)")
    p.add_argument("--opset", type=int, default=MAX_OPSET, choices=range(MIN_OPSET, MAX_OPSET + 1),
                   metavar=f"{MIN_OPSET}..{MAX_OPSET}", help=f"ONNX opset (default {MAX_OPSET})")


def run(args) -> int:
    """Loads the detector and writes its graph; prints the input and outputs."""
    from ..detector import Detector

    det = Detector.load(args.model)
    path = det.export_onnx(args.out, opset=args.opset)
    s = det.get_params()["image_size"]
    print(f"wrote {path}: input image uint8 (N, {s}, {s}, 3) RGB -> anomaly_map (N, {s}, {s}), "
          f"pred_score (N,), pred_label (N,) [score > {det.image_threshold_!r}]")
    return 0
