"""The ``bgad`` command line (also ``python -m bgad``), with anomalib's verbs.

    bgad demo [--seeds 3] [--setting general|hard]     the main job: ELPV, BGAD vs NFAD
    bgad fit DATA --out model.bgad [--n-known 10]       train on an MVTec-layout folder
    bgad predict MODEL IMAGE_OR_FOLDER... --out DIR     scores (CSV + JSON) and overlay PNGs
                 [--scheduler ADDRESS|local[:N]]       ... or Parquet partitions on a Dask cluster, resumable
    bgad fit-many SPEC.json [--scheduler ...]           one detector per product type, in parallel
    bgad evaluate DATA [--model M] [--compare-nfad]     AUROC, pixel AUROC, AU-PRO, AP, F1
    bgad export MODEL --format onnx --out model.onnx    the scoring graph for ONNX Runtime, OpenVINO
    bgad rpag ...                                       write RPAG pseudo anomalies to look at

Every command runs :class:`bgad.Detector`. One module per command (``add_arguments`` +
``run``); they share :mod:`bgad.cli.common` and never import each other.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .._native import BGADError
from . import demo, evaluate, export, fit, fit_many, predict, rpag

#: The commands taking argparse options: verb -> module with HELP, add_arguments and run.
COMMANDS = {"demo": demo, "fit": fit, "fit-many": fit_many, "predict": predict, "evaluate": evaluate, "export": export}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bgad`` with one sub-command per verb."""
    ap = argparse.ArgumentParser(
        prog="bgad",
        description="BGAD supervised anomaly detection: train on good parts plus a few defects, "
        "get a score per image and a heat map per pixel.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n")[1],
    )
    sub = ap.add_subparsers(dest="verb", metavar="VERB")
    for verb, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(verb, help=module.HELP))
    sub.add_parser("rpag", help=rpag.HELP, add_help=False)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``bgad`` command; returns the exit status (2 on a clear error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "rpag":
        try:
            return rpag.run(argv[1:])
        except BGADError as e:
            print(f"bgad rpag: error: {e}", file=sys.stderr)
            return 2
    ap = build_parser()
    args = ap.parse_args(argv)
    if not args.verb:
        ap.print_help()
        return 1
    try:
        return COMMANDS[args.verb].run(args)
    except BGADError as e:
        print(f"bgad {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bgad {args.verb}: interrupted", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "COMMANDS"]
