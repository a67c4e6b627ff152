"""``bgad fit-many SPEC.json [--scheduler ADDRESS|local[:N]]``: one detector per product, in parallel."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .._native import BGADError

HELP = "train one detector per product type of a JSON spec, in parallel on a Dask cluster"

_PATH_KEYS = ("normal", "anomalous", "masks", "out")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declares the options of ``bgad fit-many``."""
    p.add_argument("spec", help="JSON file: a list of {name, normal, anomalous, masks, params, out} "
                                "(or {\"specs\": [...]}); relative paths are relative to the file's folder")
    p.add_argument("--scheduler", default=None,
                   help="ADDRESS of a Dask scheduler, a scheduler file (*.json) or local[:N]; "
                        "without it the products are fitted one after another here")
    p.add_argument("--threads-per-worker", dest="threads_per_worker", type=int, default=None,
                   help="engine threads per worker process (default: a host's cores / its worker processes)")


def read_spec_file(path) -> list:
    """The specs of a ``fit-many`` JSON file, relative paths made relative to its folder."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise BGADError(f"{p}: cannot read ({exc.strerror or exc})", 2) from None
    except ValueError as exc:
        raise BGADError(f"{p}: not valid JSON ({exc})", 3) from None
    specs = doc.get("specs") if isinstance(doc, dict) else doc
    if not isinstance(specs, list):
        raise BGADError(f"{p}: expected a list of specs or {{\"specs\": [...]}}")
    base = p.resolve().parent
    out = []
    for spec in specs:
        if isinstance(spec, dict):
            spec = dict(spec)
            for key in _PATH_KEYS:
                v = spec.get(key)
                if isinstance(v, str) and v and "://" not in v and not os.path.isabs(v):
                    spec[key] = str(base / v)
        out.append(spec)
    return out


def run(args) -> int:
    """Fits every spec; prints one line per product; exit status 1 when any failed."""
    from .. import dask as bdask

    specs = bdask.check_specs(read_spec_file(args.spec))
    client = cluster = None
    if args.scheduler:
        client, cluster = bdask.connect(args.scheduler)
    try:
        table = bdask.fit_many(specs, client=client, threads_per_worker=args.threads_per_worker)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    failed = 0
    for row in table.itertuples():
        if isinstance(row.error, str):
            failed += 1
            print(f"{row.name}: FAILED: {row.error}")
        else:
            print(f"{row.name}: wrote {row.out} (model {row.model_id}, {row.seconds:.1f} s)")
    print(f"{len(table) - failed} of {len(table)} detectors written")
    return 1 if failed else 0
