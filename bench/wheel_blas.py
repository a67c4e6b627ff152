"""Benchmark of the wheel's OpenBLAS: is the engine inside the installed wheel on
the fast GEMM path?

Three engines, each in its own worker process, timed in interleaved rounds on the same work:

* ``wheel``: the wheel of ``dist/`` installed in a fresh virtual environment (no Swift, no
  ``BGAD_LIBRARY``, ``OPENBLAS_CORETYPE`` unset): libbgad.so calls the OpenBLAS copied into
  the wheel (scipy-openblas32), which picks its kernels itself;
* ``dev``: the development build ``.build/release/libbgad.so`` on the system OpenBLAS, with
  the loader's choice of ``OPENBLAS_CORETYPE`` (the peer: the speed before this change);
* ``sse3``: the same development build forced to OpenBLAS's generic SSE3 kernels
  (``OPENBLAS_CORETYPE=Prescott``): what an OpenBLAS that does not know the CPU would run.

Work: one flow training step (C = 112 on a 16×16 grid, 4096 vectors, 8 blocks; 4 steps in
a row, steady state), and EfficientNet-Lite0 features (strides 4, 8, 16) of 4 images at
256×256. Each figure is the best of the rounds, with the range; the engine's time inside
``cblas_sgemm`` (``bgad.gemm_counters``, summed over threads) is printed beside.

Run after ``make build wheel``:  python3 bench/wheel_blas.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
import numpy as np
import bgad
from bgad import _native
bgad.set_num_threads(2)
rng = np.random.default_rng(0)
pe = bgad.positional_encoding(16, 16)
index = rng.integers(0, 256, 4096)
x = rng.normal(size=(4096, 112)).astype(np.float32)
flow = bgad.Flow(112, seed=0)
net = bgad.backbone.EfficientNetLite0()
images = rng.integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
work = {
    "flow step": (lambda: flow.train_step(x, pe, 2e-4, cond_index=index), 4),
    "backbone 4 img": (lambda: net.features(images, strides=(4, 8, 16)), 2),
}
for fn, _ in work.values():
    fn()
print(json.dumps({"core": _native.openblas_corename(), "lib": str(_native.lib_path)}), flush=True)
for line in sys.stdin:
    name = line.strip()
    fn, calls = work[name]
    bgad.gemm_counters(reset=True)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    seconds = (time.perf_counter() - t0) / calls
    print(json.dumps([seconds, bgad.gemm_counters()[1] / calls]), flush=True)
"""


def base_env():
    return {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "BGAD_LIBRARY", "PYTHONPATH")}


class Worker:
    """A persistent process running WORKER with a given Python and environment."""

    def __init__(self, name, python, env, cwd):
        self.name = name
        self.proc = subprocess.Popen([python, "-c", WORKER], env=env, cwd=cwd, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{name}: the worker failed to start")
        self.info = json.loads(line)

    def run(self, work):
        self.proc.stdin.write(work + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    wheels = sorted((ROOT / "dist").glob("bgad-*-manylinux*.whl"))
    dev_lib = ROOT / ".build" / "release" / "libbgad.so"
    if len(wheels) != 1 or not dev_lib.is_file():
        sys.exit("run `make build wheel` first (one wheel in dist/ and .build/release/libbgad.so)")
    with tempfile.TemporaryDirectory(prefix="bgad-wheel-bench.") as tmp:
        subprocess.run([sys.executable, "-m", "venv", f"{tmp}/venv"], check=True)
        subprocess.run([f"{tmp}/venv/bin/python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(wheels[0])], check=True, env=base_env())
        dev_env = dict(base_env(), BGAD_LIBRARY=str(dev_lib), PYTHONPATH=str(ROOT / "python"))
        workers = [
            Worker("wheel", f"{tmp}/venv/bin/python", base_env(), tmp),
            Worker("dev", sys.executable, dev_env, tmp),
            Worker("sse3", sys.executable, dict(dev_env, OPENBLAS_CORETYPE="Prescott"), tmp),
        ]
        for w in workers:
            print(f"{w.name:5s}: OpenBLAS kernels {w.info['core']:12s} library {w.info['lib']}")
        works = ["flow step", "backbone 4 img"]
        results = {(w.name, k): [] for w in workers for k in works}
        for _ in range(args.rounds):
            for work in works:
                for w in workers:
                    results[(w.name, work)].append(w.run(work))
        for w in workers:
            w.close()
    print(f"best of {args.rounds} interleaved rounds, 2 threads (range over rounds); sgemm = time in cblas_sgemm")
    for work in works:
        best = {w.name: min(results[(w.name, work)]) for w in workers}
        for w in workers:
            times = [r[0] for r in results[(w.name, work)]]
            b = best[w.name]
            print(f"{work:15s} {w.name:5s} {b[0] * 1e3:8.1f} ms ({min(times) * 1e3:.1f}-{max(times) * 1e3:.1f})"
                  f"  sgemm {b[1] * 1e3:8.1f} ms   dev/this {best['dev'][0] / b[0]:5.2f}x")


if __name__ == "__main__":
    main()
