"""Data-size sweep of the training budget (not a test): ELPV, general setting, K = 10 known
anomalies, the training normals subsampled (seeded) to each size; BGAD with the Detector's
default step budget and with multiples of it, NFAD at the default; image AUROC on the full
test split and fit seconds.

Each finished run is appended to a JSON-lines file as it ends, so an interrupted sweep resumes
where it stopped (``--out``; runs already in the file are skipped). ``--table`` prints the
summary table (mean ± std over seeds) from the file without running anything.

    PYTHONPATH=python python3 bench/data_size.py                      # the whole sweep (hours)
    PYTHONPATH=python python3 bench/data_size.py --sizes 30 --seeds 0 --multiples 1
    PYTHONPATH=python python3 bench/data_size.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "data_size.jsonl"


def run_key(r: dict) -> tuple:
    return (r["size"], r["seed"], r["variant"], r["multiple"])


def load(path: Path) -> list:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows: list) -> str:
    """Markdown table: per size, mean ± std image AUROC of each budget and NFAD, fit seconds."""
    sizes = sorted({r["size"] for r in rows})
    cols = sorted({(r["variant"], r["multiple"]) for r in rows}, key=lambda c: (c[0] != "bgad", c[1]))
    head = ["normal images"] + [f"{v.upper()} {m:g}× budget" for v, m in cols] + ["BGAD 1× fit s", "BGAD 4× − 1×"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in sizes:
        cells = [str(n)]
        means = {}
        for v, m in cols:
            a = [r["image_auroc"] for r in rows if r["size"] == n and r["variant"] == v and r["multiple"] == m]
            means[(v, m)] = np.mean(a) if a else np.nan
            cells.append(f"{np.mean(a):.3f} ± {np.std(a):.3f} ({len(a)})" if a else "–")
        t = [r["fit_seconds"] for r in rows if r["size"] == n and r["variant"] == "bgad" and r["multiple"] == 1]
        cells.append(f"{np.median(t):.0f}" if t else "–")
        d = means.get(("bgad", 4), np.nan) - means.get(("bgad", 1), np.nan)
        cells.append(f"{d:+.3f}" if np.isfinite(d) else "–")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="30,60,120,300,1131", help="training normal counts (1131 = all)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--multiples", default="1,2,4", help="multiples of the default step budget for BGAD")
    ap.add_argument("--steps", type=int, default=None, help="the budget the multiples scale (default: the Detector's)")
    ap.add_argument("--no-nfad", action="store_true", help="skip the NFAD runs (default budget)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON-lines results (default {DEFAULT_OUT})")
    ap.add_argument("--table", action="store_true", help="print the table of --out and exit")
    ap.add_argument("--histories", type=Path, default=None, help="folder to keep each run's training history (npz)")
    args = ap.parse_args()
    if args.table:
        print(table(load(args.out)))
        return 0

    import bgad
    from bgad.datasets import elpv
    from bgad.detector import Detector
    from bgad.metrics import roc_auc

    base = args.steps or int(Detector().get_params()["steps"])  # the engine's default budget
    done = {run_key(r) for r in load(args.out)}
    plan = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for size in [int(s) for s in args.sizes.split(",")]:
            for m in [float(x) for x in args.multiples.split(",")]:
                plan.append((size, seed, "bgad", m))
            if not args.no_nfad:
                plan.append((size, seed, "nfad", 1.0))
    todo = [p for p in plan if p not in done]
    print(f"{len(plan) - len(todo)} of {len(plan)} runs already in {args.out}; {len(todo)} to go", flush=True)
    test_scores_cache = {}
    for size, seed, variant, m in todo:
        split = elpv("general", 10, seed=seed)
        train = split.train_normal
        if size < len(train):
            pick = np.sort(np.random.default_rng([size, seed]).choice(len(train), size, replace=False))
            train = [train[i] for i in pick]
        steps = int(round(base * m))
        det = Detector(variant=variant, seed=seed, progress=False, steps=steps)
        t0 = time.perf_counter()
        det.fit(train, split.known_anomalies if variant == "bgad" else None, split.known_masks if variant == "bgad" else None)
        fit_s = time.perf_counter() - t0
        scores = det.score_images(split.test)
        auroc = roc_auc(split.test_labels, scores)
        sep = [float(v) for v in det.separation_]
        if args.histories is not None:
            args.histories.mkdir(parents=True, exist_ok=True)
            np.savez(args.histories / f"{len(train)}_{seed}_{variant}_{m:g}.npz",
                     **{f"{l}_{k}": v for l, h in enumerate(det.history_) for k, v in h.items()})
        row = {"size": len(train), "seed": seed, "variant": variant, "multiple": m, "steps": steps,
               "image_auroc": float(auroc), "fit_seconds": fit_s, "separation": sep,
               "threads": bgad.get_num_threads() if hasattr(bgad, "get_num_threads") else None,
               "bgad_version": getattr(bgad, "__version__", "?")}
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        print(f"size {len(train):5d} seed {seed} {variant:5s} {m:g}× ({steps} steps): AUROC {auroc:.4f}, "
              f"fit {fit_s:.0f} s, separation {['%.2f' % v for v in sep]}", flush=True)
    print(table(load(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
