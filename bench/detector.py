"""Benchmark of the product: PNG files → image scores + anomaly maps at the images' own
size, and one fit — ``bgad.Detector`` (the engine) against the same pipeline in PyTorch +
FrEIA 0.2, in the same run, same threads.

Pipeline (both sides): decode the PNG, resize to 256² (bilinear, antialiased — Pillow for
the peer), gray → RGB, (p − 127) / 128, EfficientNet-Lite0 features at strides 8 and 16
(the peer: ``bench/backbone.py``'s PyTorch Lite0 from the same converted weights,
channels-last), one 8-block conditional flow per level on the positional encoding (the
peer: ``bench/train.py``'s FrEIA flows and training loop), per-level likelihood maps
→ normalised, upsampled to 256², summed → anomaly map; image score = its maximum;
decision = score > threshold; the map resized bilinearly to the image's own size.

Fit: N normal PNGs + K known anomalies (whole-image masks, each used 5 times, RPAG off on
both sides: RPAG's own speed is ``bench/rpag.py``'s), 2 meta-epochs × 1 sub-epoch (phase
1 then phase 2, batches of 32 images, chunks of 4096 vectors), then the calibration (the
reference log-likelihoods and the score maps of the training normals for the thresholds).

Protocol: interleaved rounds, a 0.3 s pause before each side (lets the other side's
spinning threads sleep), each side's best round counts. Batch 1 = 16 calls of one image
in a row (a single-image caller's steady rate); batch 16 = one call of 16 images.

    PYTHONPATH=python python3 bench/detector.py [--threads 2] [--rounds 5] [--normals 100] [--known 5]

Data: ELPV solar cells (300×300 gray PNGs, ``elpv-dataset``) when installed, otherwise
synthetic 300×300 PNGs. Goals: predict ≥ 2.5× PyTorch at batch 1, ≥ 3.5× at batch 16;
fit ≥ 2×.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import backbone as bench_backbone  # noqa: E402  (sets the BLAS thread variables, adds python/ to the path)
import train as bench_train  # noqa: E402

import numpy as np  # noqa: E402

import bgad  # noqa: E402
from bgad import weights as W  # noqa: E402

SIZE = 256
STRIDES = (8, 16)
#: Index of each stride's map among the PyTorch Lite0's outputs (strides 4, 8, 16).
TORCH_LEVEL = {4: 0, 8: 1, 16: 2}
REPEATS = 5


def data(n_normal, n_known, tmp):
    """(normal paths, anomalous paths, 16 test paths, source name)."""
    try:
        split = bgad.datasets.elpv("general", n_known, seed=0)
        return split.train_normal[:n_normal], split.known_anomalies, split.test[::67][:16], "ELPV 300x300 gray"
    except Exception:  # elpv-dataset not installed
        rng = np.random.default_rng(0)
        paths = []
        for i in range(n_normal + n_known + 16):
            img = rng.integers(40, 90, (300, 300), dtype=np.uint8)
            if n_normal <= i < n_normal + n_known:
                img[100:160, 120:200] = 230
            p = os.path.join(tmp, f"{i:04d}.png")
            bgad.io.write_png(p, img)
            paths.append(p)
        return paths[:n_normal], paths[n_normal:n_normal + n_known], paths[n_normal + n_known:], "synthetic 300x300 gray"


class TorchPipeline:
    """The Detector's pipeline in PyTorch + FrEIA (see the module docstring)."""

    def __init__(self, tensors):
        import torch

        self.torch = torch
        self.net = bench_backbone.torch_module(tensors, W.variant("lite0")).to(memory_format=torch.channels_last)
        self.flows = [bench_train.peer_flow(c).eval() for c in (40, 112)]
        self.pes = {}
        self.refs = [0.0, 0.0]
        self.threshold = math.inf

    def _input(self, paths):
        from PIL import Image

        torch = self.torch
        batch = []
        for p in paths:
            with Image.open(p) as im:
                batch.append(np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)))
        x = (torch.from_numpy(np.stack(batch)).float() - 127.0) / 128.0
        return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last), [Image.open(p).size[::-1] for p in paths]

    def features(self, paths):
        """Per level (N, C, h, w) float32 numpy arrays, in batches of 16 images."""
        chunks = []
        for s in range(0, len(paths), 16):
            x, _ = self._input(paths[s:s + 16])
            with self.torch.inference_mode():
                f = self.net(x)
            chunks.append([f[TORCH_LEVEL[st]].contiguous().numpy() for st in STRIDES])
        return [np.concatenate(level) for level in zip(*chunks)]

    def _pe(self, h, w):
        if (h, w) not in self.pes:
            self.pes[(h, w)] = bench_train.peer_pos_encoding(h, w).reshape(128, -1).t().contiguous()
        return self.pes[(h, w)]

    def score_maps(self, feats):
        """(N, 256, 256) anomaly maps from per-level torch features (N, C, h, w)."""
        torch = self.torch
        F = torch.nn.functional
        total = None
        for l, f in enumerate(feats):
            n, c, h, w = f.shape
            e = f.permute(0, 2, 3, 1).reshape(-1, c)
            cond = self._pe(h, w).repeat(n, 1)
            z, jac = self.flows[l](e, c=[cond])
            lp = bench_train.peer_logp(c, z, jac).reshape(n, 1, h, w)
            prob = torch.exp(lp - self.refs[l])
            up = F.interpolate(prob, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
            total = up if total is None else total + up
        return (float(len(feats)) - total)[:, 0]  # S_max − summed normality (each level ≤ 1 on the normals)

    def predict(self, paths):
        torch = self.torch
        F = torch.nn.functional
        x, sizes = self._input(paths)
        with torch.inference_mode():
            f = self.net(x)
            maps = self.score_maps([f[TORCH_LEVEL[s]] for s in STRIDES])
            scores = maps.reshape(len(paths), -1).amax(1)
            decisions = scores > self.threshold
            out = [F.interpolate(m[None, None], size=hw, mode="bilinear", align_corners=False)[0, 0].numpy()
                   for m, hw in zip(maps, sizes)]
        return scores.numpy(), decisions.numpy(), out

    def fit(self, normal, anomalous):
        torch = self.torch
        torch.manual_seed(0)
        fn = self.features(normal)
        fa = self.features([p for p in anomalous for _ in range(REPEATS)])
        masks = np.ones((fa[0].shape[0], SIZE, SIZE), np.uint8)
        self.flows, self.refs = bench_train.peer_fit(fn, fa, masks, sub_epochs=1, meta_epochs=2)
        for fl in self.flows:
            fl.eval()
        with torch.inference_mode():  # calibration: maps of the training normals → thresholds
            maps = torch.cat([self.score_maps([torch.from_numpy(a[s:s + 16]) for a in fn])
                              for s in range(0, len(normal), 16)])
            self.threshold = float(torch.quantile(maps.reshape(len(normal), -1).amax(1), 0.99))
            flat = maps.reshape(-1)
            self.pixel_threshold = float(torch.kthvalue(flat, max(1, int(0.99 * flat.numel()))).values)


def best_times(fns, rounds):
    """Best wall time of each callable over interleaved rounds (one warm-up call each)."""
    for fn in fns.values():
        fn()
    best = {k: math.inf for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            time.sleep(0.3)
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved predict rounds (best counts)")
    ap.add_argument("--fit-rounds", type=int, default=2, help="interleaved fit rounds (best counts)")
    ap.add_argument("--normals", type=int, default=100, help="normal images of the fit")
    ap.add_argument("--known", type=int, default=5, help="known anomalies of the fit")
    ap.add_argument("--no-fit", action="store_true", help="predict only")
    args = ap.parse_args()
    bgad.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="bgad-bench-")
    normal, anomalous, test, source = data(args.normals, args.known, tmp)
    settings = dict(strides=STRIDES, image_size=SIZE, steps=0, meta_epochs=2, sub_epochs=1, warmup_epochs=0, lr=2e-4,
                    real_repeats=REPEATS, rpag_per_anomaly=0, seed=0, progress=False)
    det = bgad.Detector(**settings)
    try:
        import torch

        torch.set_num_threads(args.threads)
        import FrEIA  # noqa: F401

        peer = TorchPipeline(W.decode(W.prepare().read_bytes()))
        peer_name = f"PyTorch {torch.__version__} + FrEIA 0.2"
    except ImportError:
        peer = None
        peer_name = "PyTorch + FrEIA not importable"
    print(f"Detector benchmark: {source}, strides {STRIDES}, {SIZE}², {args.threads} threads; peer: {peer_name}")
    print(f"engine vector kernels: {bgad.vector_kernels()}; OpenBLAS: {bench_backbone.engine_blas_core()}")

    if not args.no_fit:
        fns = {"bgad": lambda: bgad.Detector(**settings).fit(normal, anomalous)}
        if peer is not None:
            fns["peer"] = lambda: TorchPipeline.fit(peer, normal, anomalous)
        best = {k: math.inf for k in fns}
        for _ in range(args.fit_rounds):  # no warm-up: a fit is long enough
            for k, fn in fns.items():
                time.sleep(0.3)
                t = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - t)
        line = (f"fit ({len(normal)} normal + {len(anomalous)}×{REPEATS} anomalous PNGs, 2 meta-epochs × 1, "
                f"best of {args.fit_rounds}): bgad {best['bgad']:.2f} s")
        if peer is not None:
            line += f" | peer {best['peer']:.2f} s | {best['peer'] / best['bgad']:.2f}x (goal >= 2x)"
        print(line, flush=True)

    det.fit(normal, anomalous)
    if peer is not None and args.no_fit:
        peer.threshold = 0.0
    for batch, goal in ((1, 2.5), (16, 3.5)):
        calls = 16 // batch
        groups = [test[i * batch:(i + 1) * batch] for i in range(calls)]

        def engine():
            for g in groups:
                det.predict(g)

        fns = {"bgad": engine}
        if peer is not None:
            def torch_side():
                for g in groups:
                    peer.predict(g)

            fns["peer"] = torch_side
        best = best_times(fns, args.rounds)
        line = f"predict batch {batch:2d} (16 PNGs → scores + maps at 300²): bgad {16 / best['bgad']:6.1f} img/s"
        if peer is not None:
            line += f" | peer {16 / best['peer']:6.1f} img/s | {best['peer'] / best['bgad']:.2f}x (goal >= {goal}x)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
