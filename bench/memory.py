"""Peak memory of a Detector fit against the number of normal images (not a test).

ELPV cells (defect probability 0, repeated in a fixed order when more are asked for than
the 1,508 the data set has) as the normal images, plus the 10 known anomalies of the demo's
split (seed 0) with whole-image masks; each size is fitted in a fresh subprocess and its
peak resident memory (``ru_maxrss`` of the child) printed. Training steps do not change the
memory (the trainer's buffers depend on the batch, not on the data set), so a short budget
(``--steps``, default 100) keeps the run short; the features of every image are computed.

    PYTHONPATH=python python3 bench/memory.py                       # 500, 2,000, 5,000 images
    PYTHONPATH=python python3 bench/memory.py --sizes 500 --library /path/to/old/libbgad.so

``--library`` runs the children on another ``libbgad.so`` and ``--package`` on another
``python`` folder (e.g. the build and package of the commit before a change).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(size: int, steps: int) -> None:
    """One fit on `size` normal images; prints a JSON line with the time and image count."""
    import bgad
    from bgad.datasets import elpv, elpv_table

    paths, probs, _ = elpv_table()
    normal = sorted(str(p) for p, q in zip(paths, probs) if q == 0.0)
    train = [normal[i % len(normal)] for i in range(size)]
    known = elpv("general", n_known=10, seed=0).known_anomalies
    det = bgad.Detector(seed=0, steps=steps, progress=False)
    t = time.perf_counter()
    det.fit(train, known)
    print(json.dumps({"size": size, "fit_s": round(time.perf_counter() - t, 1)}))


def measure(size: int, steps: int, library: str | None, package: str | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = (package or str(ROOT / "python")) + os.pathsep + env.get("PYTHONPATH", "")
    if library:
        env["BGAD_LIBRARY"] = library
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = subprocess.run([sys.executable, __file__, "--child", str(size), "--steps", str(steps)],
                         env=env, capture_output=True, text=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if run.returncode != 0:
        raise SystemExit(f"size {size} failed:\n{run.stderr[-2000:]}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: only meaningful when it grew,
    # hence sizes run in increasing order (one parent per library).
    out["peak_rss_mb"] = round(peak_kib / 1024, 1) if peak_kib > before else None
    out["library"] = library or env.get("BGAD_LIBRARY") or "default"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="500,2000,5000", help="numbers of normal images (increasing)")
    ap.add_argument("--steps", type=int, default=100, help="training steps of each fit (memory does not depend on it)")
    ap.add_argument("--library", default=None, help="libbgad.so the children load (default: BGAD_LIBRARY or the build)")
    ap.add_argument("--package", default=None, help="folder holding the bgad package the children import (default: python/)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.steps)
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"{'normal images':>14} {'peak RSS':>10} {'fit s':>7}")
    for size in sizes:
        r = measure(size, args.steps, args.library, args.package)
        rss = f"{r['peak_rss_mb']:.0f} MB" if r["peak_rss_mb"] is not None else "n/a"
        print(f"{size:>14} {rss:>10} {r['fit_s']:>7}", flush=True)


if __name__ == "__main__":
    main()
