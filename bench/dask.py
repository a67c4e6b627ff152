"""Benchmark of ``bgad.dask.score``: images/s on a LocalCluster of 1 and of 2 worker
processes (one engine thread each) against the single-process ``Detector.predict`` with 2
engine threads, the three measured in the same run, interleaved.

What is timed: PNG paths → image scores (no maps) for N images. The Dask side includes
everything a call costs: sending the detector's bytes to the workers (``client.scatter``),
the tasks (partitions of ``--partition`` paths, engine calls of ``--batch`` images), each
worker reading its PNGs, and gathering the tables. The workers hold the detector from a
warm-up call (loaded once per worker process, as in a long job). The single process runs
``Detector.score_images`` on the same paths (engine calls of ``feature_batch`` = 16 images).

The detector is the default architecture (EfficientNet-Lite0 at 256², strides 8/16, 8-block
flows) fitted for only a few steps: scoring costs the same whatever the training budget.

Protocol: ``--rounds`` rounds, each timing the single process, then 1 worker, then 2 workers
(0.3 s pause before each); per-round ratios and each side's range are printed, and the
machine's load average (another job on the same cores slows the side that runs while it
does: compare ratios within a round). Each side's CPU time (this process + the workers) is
measured too: "cores used" = CPU seconds / wall seconds shows whether the second worker got
a core of its own, and "images per CPU-second" shows the work Dask adds per image.

    PYTHONPATH=python python3 bench/dask.py [--images 256] [--rounds 3] [--partition 32] [--batch 32]

Data: ELPV solar cells (300×300 gray PNGs, ``elpv-dataset``) when installed, otherwise
synthetic 300×300 PNGs. Goals: 2 workers ≥ 1.7× one worker, and not slower than the single
process with 2 threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
# This file is named dask.py: its folder must not stay on the path, or `import dask` (here and
# in the worker processes, which inherit the path) would find it instead of the library.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.join(_HERE, "..", "python"))

import numpy as np  # noqa: E402


def images(n, tmp):
    """(N test paths, 16 normal paths, 2 anomalous paths, source name)."""
    import bgad

    try:
        split = bgad.datasets.elpv("general", 2, seed=0)
        test = (split.test * (n // len(split.test) + 1))[:n] if n > len(split.test) else split.test[:n]
        return list(test), split.train_normal[:16], split.known_anomalies, "ELPV 300x300 gray"
    except Exception:  # elpv-dataset not installed
        rng = np.random.default_rng(0)
        paths = []
        for i in range(max(n, 18)):
            img = rng.integers(60, 120, (300, 300), dtype=np.uint8)
            if i % 5 == 0:
                img[100:140, 80:200] = 240
            p = os.path.join(tmp, f"{i:05d}.png")
            bgad.io.write_png(p, img)
            paths.append(p)
        return paths[:n], paths[:16], paths[16:18], "synthetic 300x300 gray"


def _peak_rss_kb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(fn, n, client=None):
    """(images/s, CPU seconds used) of ``fn()``: this process's CPU time (the client, and the
    LocalClusters' schedulers, which run in it) plus that of ``client``'s workers."""
    time.sleep(0.3)
    w0 = client.run(_cpu_seconds) if client is not None else {}
    c0, t0 = _cpu_seconds(), time.perf_counter()
    fn()
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    if client is not None:
        w1 = client.run(_cpu_seconds)
        cpu += sum(w1[a] - w0.get(a, 0.0) for a in w1)
    return n / wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--partition", type=int, default=32, help="paths per Dask task (bgad.dask.score: partition_size)")
    ap.add_argument("--batch", type=int, default=32, help="images per engine call on a worker (bgad.dask.score: 32)")
    args = ap.parse_args()

    import bgad
    import bgad.dask as bdask
    from distributed import Client, LocalCluster

    tmp = tempfile.mkdtemp(prefix="bgad-bench-dask-")
    paths, normal, anomalous, source = images(args.images, tmp)
    det = bgad.Detector(seed=0, steps=10, rpag_per_anomaly=0, progress=False).fit(normal, anomalous)
    data = det.to_bytes()
    print(f"bench/dask.py: {len(paths)} images ({source}), detector {len(data) / 1e6:.1f} MB, "
          f"partitions of {args.partition}, engine calls of {args.batch}; cores {os.cpu_count()}, "
          f"OpenBLAS kernels {bgad._native.openblas_corename()}; load average {os.getloadavg()[0]:.1f}")

    single = bgad.Detector.from_bytes(data, progress=False)
    bgad.set_num_threads(2)
    single.score_images(paths[:16])  # warm-up (the detector's first call fixes its work split)
    clusters = {}
    for k in (1, 2):
        cluster = LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=":0")
        clusters[k] = (cluster, Client(cluster, set_as_default=False))

    def dask_run(k):
        client = clusters[k][1]
        df = bdask.score(data, paths, client=client, predict_batch=args.batch, partition_size=args.partition,
                         threads_per_worker=1)
        out = client.compute(df).result()
        assert len(out) == len(paths) and out.error.isna().all()
        return out

    reference = single.score_images(paths)
    for k in (1, 2):  # warm-up: each worker loads the detector once; the scores match
        out = dask_run(k)
        diff = float(np.max(np.abs(out.score.to_numpy() - reference)))
        print(f"  {k} worker(s): warm, max |score − single-process score| = {diff:.2e} (1 vs 2 engine threads)")

    rows = []
    n = len(paths)
    try:
        for r in range(args.rounds):
            s, cs = measure(lambda: single.score_images(paths), n)
            w1, c1 = measure(lambda: dask_run(1), n, clusters[1][1])
            w2, c2 = measure(lambda: dask_run(2), n, clusters[2][1])
            rows.append((s, w1, w2, n / cs, n / c1, n / c2, s * cs / n, w1 * c1 / n, w2 * c2 / n))
            print(f"round {r + 1}: img/s single process (2 threads) {s:6.1f} | 1 worker {w1:6.1f} | "
                  f"2 workers {w2:6.1f} | 2w/1w {w2 / w1:.2f}x | 2w/single {w2 / s:.2f}x || cores used "
                  f"{s * cs / n:.2f} / {w1 * c1 / n:.2f} / {w2 * c2 / n:.2f}, img per CPU-second "
                  f"{n / cs:.1f} / {n / c1:.1f} / {n / c2:.1f}  (load {os.getloadavg()[0]:.1f})")
        rss = {k: sorted(v / 1024 for v in clusters[k][1].run(_peak_rss_kb).values()) for k in clusters}
        print("worker peak RSS: " + "; ".join(f"{k} worker(s) " + ", ".join(f"{m:.0f} MB" for m in v)
                                               for k, v in rss.items()))
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    a = np.array(rows)

    def span(col, fmt=".1f"):
        return f"{a[:, col].min():{fmt}}–{a[:, col].max():{fmt}}"

    r21, r2s = a[:, 2] / a[:, 1], a[:, 2] / a[:, 0]
    print(f"ranges over {len(rows)} rounds: img/s single {span(0)}, 1 worker {span(1)}, 2 workers {span(2)}; "
          f"cores used {span(6, '.2f')} / {span(7, '.2f')} / {span(8, '.2f')}; "
          f"img per CPU-second {span(3)} / {span(4)} / {span(5)}")
    print(f"2 workers / 1 worker: {r21.min():.2f}–{r21.max():.2f}x (goal >= 1.7x); "
          f"2 workers / single process: {r2s.min():.2f}–{r2s.max():.2f}x (goal >= 1.0x); "
          f"load average now {os.getloadavg()[0]:.1f}")
    eff = a[:, 5] / a[:, 4]
    print(f"CPU work per image, 1 worker / 2 workers: {eff.min():.2f}–{eff.max():.2f} (1.00 = the second worker "
          "adds no work; then 2 workers on 2 free cores reach ~2x one worker). When 'cores used' stays near "
          "the same value whatever the number of processes, other jobs hold the cores and the img/s ratios "
          "say nothing about scaling.")


if __name__ == "__main__":
    main()
