"""Benchmark: the engine's ``Detector.predict`` against ONNX Runtime and OpenVINO running
the graph ``Detector.export_onnx`` wrote for the same detector, same images, same thread
count, in the same run.

Detector: Lite0 at 256², strides 8 and 16 (the defaults), fitted briefly on synthetic
256² RGB textures (speed does not depend on the training). Inputs: 16 uint8 RGB images at
the model size (256 × 256 × 3), so that neither side resizes; outputs on both sides: the
anomaly map at 256², the image score and the decision. The engine is called through
``bgad.Detector.predict`` (the Python API users call: ctypes, one map array per image).
ONNX Runtime: CPU provider, ``intra_op_num_threads`` = threads, all graph optimisations.
OpenVINO: CPU, ``INFERENCE_NUM_THREADS`` = threads, f32 precision (the default is bf16 on
CPUs with bfloat16 units, which changes the scores by percents).

Protocol (as ``bench/backbone.py``): interleaved rounds; in each, every side processes the
16 images — 16 calls of one image at batch 1, one call of 16 at batch 16 — after a 0.3 s
pause and one warm-up call; printed: each side's best rate and range over the rounds, and
the engine's ratio to each peer (best / best, and the range of the per-round ratios).

    env -u OPENBLAS_CORETYPE PYTHONPATH=python python3 bench/onnx.py [--threads 1,2] [--rounds 5]

Goal: the engine ≥ 1.5× ONNX Runtime at batch 1 and 16.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import backbone as bench_backbone  # noqa: E402  (sets the BLAS thread variables, adds python/ to the path)

# This file is named onnx.py: its folder must not shadow the onnx package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import numpy as np  # noqa: E402

import bgad  # noqa: E402

SIZE = 256


def textures(rng, n, defect=False):
    out = []
    for _ in range(n):
        a = rng.integers(60, 140, (SIZE, SIZE, 3), dtype=np.uint8)
        if defect:
            a[80:150, 100:170] = 240
        out.append(a)
    return out


def peers(path, threads):
    """name -> callable(images) for the runtimes that are installed."""
    out = {}
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    out[f"onnxruntime {ort.__version__}"] = lambda x: sess.run(None, {"image": x})
    try:
        import openvino as ov

        core = ov.Core()
        model = core.compile_model(core.read_model(path), "CPU",
                                   {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})
        request = model.create_infer_request()
        out[f"openvino {ov.__version__}"] = lambda x: request.infer({0: x})
    except ImportError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    det = bgad.Detector(variant="bgad", seed=0, steps=30, rpag_per_anomaly=2, progress=False)
    det.fit(textures(rng, 12), textures(rng, 2, defect=True))
    images = np.stack(textures(rng, 12) + textures(rng, 4, defect=True))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(det.export_onnx(os.path.join(tmp, "det.onnx")))
        print(f"Detector predict (Lite0 256², strides 8/16), 16 uint8 RGB images at 256², best of {args.rounds} "
              f"interleaved rounds; engine OpenBLAS {bench_backbone.engine_blas_core()}, "
              f"vector kernels {bgad.vector_kernels()}; load average {os.getloadavg()[0]:.1f}")
        for threads in [int(t) for t in args.threads.split(",")]:
            bgad.set_num_threads(threads)
            runtimes = peers(path, threads)
            ref = det.score_images(list(images))
            for name, fn in runtimes.items():  # the graph gives the engine's scores
                score = fn(images[:4])
                s = score[1] if isinstance(score, list) else score["pred_score"]
                assert np.allclose(s, ref[:4], rtol=1e-4, atol=1e-4), (name, s, ref[:4])
            for batch in (1, 16):
                calls = 16 // batch
                chunks = [images[i:i + batch] for i in range(0, 16, batch)]
                state = {"i": 0}

                def one(f):
                    def call():
                        f(chunks[state["i"] % len(chunks)])
                        state["i"] += 1
                    return call

                fns = {"bgad engine": one(lambda x: det.predict(list(x)))}
                fns.update({k: one(f) for k, f in runtimes.items()})
                per_round = {k: [] for k in fns}
                for _ in range(args.rounds):
                    for k, r in bench_backbone.best_rates(fns, batch, 1, calls).items():
                        per_round[k].append(r)
                eng = per_round["bgad engine"]
                line = f"threads {threads}, batch {batch:2d}: bgad {max(eng):6.1f} img/s ({min(eng):.1f}-{max(eng):.1f})"
                for k in runtimes:
                    r = per_round[k]
                    ratios = [e / p for e, p in zip(eng, r)]
                    line += (f" | {k} {max(r):6.1f} img/s ({min(r):.1f}-{max(r):.1f}) -> "
                             f"{max(eng) / max(r):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}x)")
                print(line, flush=True)


if __name__ == "__main__":
    main()
