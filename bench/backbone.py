"""Benchmark: EfficientNet-Lite0/1/2 features (strides 4, 8, 16) at 256 x 256, images/s.

Peers, measured in the same run with the same weights and the same thread count:
  (a) numpy -- the same network written here with numpy (channels-last, im2col for the
      stem, matmul for 1x1 convolutions, shifted-slice sums for the depthwise ones);
  (b) PyTorch CPU eager (when torch is importable) -- an equivalent nn.Module built here
      from the converted weights (NCHW, explicit asymmetric 'SAME' padding via F.pad).
All three take the same preprocessed float input and stop after the stride-16 level
(Lite0: block 10; Lite1 and Lite2: block 14).

Protocol: the implementations are timed in interleaved rounds; in each round each one
processes 16 images -- 16 calls of one image at batch 1, one call of 16 at batch 16 --
after a 0.3 s pause that lets the previous peer's spinning BLAS/OpenMP threads go to sleep.
Each keeps its best round. Batch 1 is thus steady-state streaming, which is what a
single-image caller sees (a lone call after a pause would charge PyTorch for waking its
OpenMP threads and flatter the engine).

    python bench/backbone.py [--backbone lite0|lite1|lite2] [--threads 2] [--repeats 7]

Prints one line per (implementation, batch) and the ratios bgad / peer.
Goals: >= 1.5x PyTorch, >= 3x numpy, >= 20 images/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_THREADS = "2"
for i, a in enumerate(sys.argv):
    if a == "--threads" and i + 1 < len(sys.argv):
        _THREADS = sys.argv[i + 1]
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = _THREADS  # before numpy / torch load their BLAS

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import bgad  # noqa: E402
from bgad import weights as W  # noqa: E402



def same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


class NumpyLite:
    """EfficientNet-Lite (``variant``) up to the stride-16 level in numpy, channels-last, batched."""

    def __init__(self, tensors, variant):
        self.level_blocks = {variant.levels[s][0] for s in (4, 8, 16)}
        self.deepest = variant.levels[16][0]
        it = iter(tensors)
        self.stem = (next(it).reshape(27, 32), next(it))
        self.blocks = []
        for k, s, e, cin, cout in variant.blocks:
            exp = (next(it), next(it)) if e != 1 else None
            dw = (next(it), next(it))
            proj = (next(it), next(it))
            self.blocks.append((k, s, cin == cout and s == 1, exp, dw, proj))

    def __call__(self, x):  # x: (N, H, W, 3)
        n, h, w, _ = x.shape
        oh, pt, pb = same(h, 3, 2)
        ow, pl, pr = same(w, 3, 2)
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        cols = np.empty((n, oh, ow, 3, 3, 3), np.float32)
        for ky in range(3):
            for kx in range(3):
                cols[:, :, :, ky, kx] = xp[:, ky:ky + 2 * oh:2, kx:kx + 2 * ow:2]
        y = np.clip(cols.reshape(-1, 27) @ self.stem[0] + self.stem[1], 0, 6).reshape(n, oh, ow, 32)
        feats = []
        for i, (k, s, skip, exp, dw, proj) in enumerate(self.blocks[:self.deepest + 1]):
            x_in = y
            if exp is not None:
                c = exp[0].shape[1]
                y = np.clip(y.reshape(-1, y.shape[3]) @ exp[0] + exp[1], 0, 6).reshape(y.shape[:3] + (c,))
            _, h, w, c = y.shape
            oh, pt, pb = same(h, k, s)
            ow, pl, pr = same(w, k, s)
            yp = np.pad(y, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
            acc = np.empty((n, oh, ow, c), np.float32)
            acc[...] = dw[1]
            for ky in range(k):
                for kx in range(k):
                    acc += yp[:, ky:ky + s * oh:s, kx:kx + s * ow:s] * dw[0][ky, kx]
            np.clip(acc, 0, 6, out=acc)
            y = (acc.reshape(-1, c) @ proj[0] + proj[1]).reshape(n, oh, ow, -1)
            if skip:
                y += x_in
            if i in self.level_blocks:
                feats.append(y.transpose(0, 3, 1, 2))
        return feats


def torch_module(tensors, variant):
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SameConv(nn.Module):
        """Conv2d with TF 'SAME' padding: the conv's own (symmetric) padding at stride 1,
        an explicit asymmetric F.pad only where TF pads asymmetrically (stride 2)."""

        def __init__(self, w, b, stride, groups):
            super().__init__()
            k = w.shape[2]
            pad = (k - 1) // 2 if stride == 1 else 0
            self.conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], k, stride, pad, groups=groups, bias=True)
            self.conv.weight.data = torch.from_numpy(np.ascontiguousarray(w))
            self.conv.bias.data = torch.from_numpy(np.ascontiguousarray(b))
            self.k, self.s = k, stride

        def forward(self, x):
            if self.k > 1 and self.s > 1:
                _, ph0, ph1 = same(x.shape[2], self.k, self.s)
                _, pw0, pw1 = same(x.shape[3], self.k, self.s)
                x = F.pad(x, (pw0, pw1, ph0, ph1))
            return self.conv(x)

    level_blocks = {variant.levels[s][0] for s in (4, 8, 16)}
    deepest = variant.levels[16][0]

    class Lite(nn.Module):
        def __init__(self):
            super().__init__()
            it = iter(tensors)
            w = next(it)
            self.stem = SameConv(w.transpose(3, 2, 0, 1), next(it), 2, 1)
            self.blocks = nn.ModuleList()
            self.meta = []
            for k, s, e, cin, cout in variant.blocks[:deepest + 1]:
                layers = nn.ModuleList()
                if e != 1:
                    we = next(it)
                    layers.append(SameConv(we.T[:, :, None, None], next(it), 1, 1))
                wd = next(it)
                layers.append(SameConv(wd.transpose(2, 0, 1)[:, None], next(it), s, wd.shape[2]))
                wp = next(it)
                layers.append(SameConv(wp.T[:, :, None, None], next(it), 1, 1))
                self.blocks.append(layers)
                self.meta.append((e != 1, s == 1 and cin == cout))

        def forward(self, x):
            x = F.relu6(self.stem(x))
            feats = []
            for i, (layers, (has_exp, skip)) in enumerate(zip(self.blocks, self.meta)):
                h = x
                j = 0
                if has_exp:
                    h = F.relu6(layers[0](h))
                    j = 1
                h = F.relu6(layers[j](h))
                h = layers[j + 1](h)
                x = h + x if skip else h
                if i in level_blocks:
                    feats.append(x)
            return feats

    return Lite().eval()


def engine_blas_core():
    import ctypes

    try:
        lib = ctypes.CDLL("libopenblas.so.0")  # the copy libbgad.so loaded
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode() + f" (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})"
    except (OSError, AttributeError):
        return "unknown"


def numpy_blas():
    try:
        import threadpoolctl

        info = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        return ", ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture', '')}" for i in info) or "unknown"
    except ImportError:
        return "unknown"


def best_rates(fns, batch, rounds, calls=1):
    """Best images/s of each function in ``fns`` (name -> callable).

    The machine may be shared, so the peers are measured interleaved: every round runs
    each function ``calls`` times in a row (steady state, as when a stream of images is
    processed one call at a time), after a pause that lets the previous peer's spinning
    BLAS/OpenMP threads go to sleep, and each keeps its best round. One warm-up call each
    first.
    """
    for fn in fns.values():
        fn()
    best = {name: 0.0 for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(0.3)
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            best[name] = max(best[name], batch * calls / (time.perf_counter() - t))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="lite0",
                    help="lite0, lite1, lite2, or several separated by commas (measured in the same rounds; "
                         "the numpy peer then is left out)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (best one counts)")
    args = ap.parse_args()
    bgad.set_num_threads(args.threads)
    variants = [W.variant(name) for name in args.backbone.split(",")]
    ref = np.load(os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "efficientnet-lite0", "chelsea_input_256.npy"))
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    nets = {}
    for v in variants:
        net = bgad.backbone.EfficientNetLite(v.name)
        tensors = W.decode(net.weights_path.read_bytes(), v.name)
        tnets = None
        if torch is not None:
            tnets = (torch_module(tensors, v), torch_module(tensors, v).to(memory_format=torch.channels_last))
        nets[v.name] = (net, NumpyLite(tensors, v) if len(variants) == 1 else None, tnets)
    names = ", ".join(v.display_name for v in variants)
    print(f"{names} features (strides 4, 8, 16) at 256x256, {args.threads} threads, "
          f"best of {args.repeats} interleaved rounds")
    print(f"engine vector kernels: {bgad.vector_kernels()}; engine OpenBLAS kernels: {engine_blas_core()}; numpy BLAS: {numpy_blas()}")
    for batch in (1, 16):
        x = np.ascontiguousarray(np.repeat(ref[None], batch, 0))  # NCHW
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        fns, diffs = {}, {}
        for name, (net, npnet, tnets) in nets.items():
            ours = net.features_preprocessed(x)
            fns[f"bgad {name}"] = lambda net=net: net.features_preprocessed(x)
            if npnet is not None:
                diffs[f"numpy {name}"] = max(float(np.abs(a - b).max()) for a, b in zip(ours, npnet(x_nhwc[:1])))
                fns[f"numpy {name}"] = lambda npnet=npnet: npnet(x_nhwc)
            if tnets is not None:
                xt = torch.from_numpy(x)
                xcl = xt.contiguous(memory_format=torch.channels_last)
                with torch.inference_mode():
                    diffs[f"torch {name}"] = max(float(np.abs(a[:1] - b.numpy()).max()) for a, b in zip(ours, tnets[0](xt[:1])))

                def run_torch(net_, inp):
                    with torch.inference_mode():
                        net_(inp)

                fns[f"torch NCHW {name}"] = lambda t=tnets[0], xt=xt: run_torch(t, xt)
                fns[f"torch channels_last {name}"] = lambda t=tnets[1], xcl=xcl: run_torch(t, xcl)
        r = best_rates(fns, batch, args.repeats, calls=16 // batch)
        for name in nets:
            line = f"batch {batch:2d} {name}: bgad {r[f'bgad {name}']:7.1f} img/s"
            if f"numpy {name}" in r:
                line += (f" | numpy {r[f'numpy {name}']:6.1f} img/s "
                         f"({r[f'bgad {name}'] / r[f'numpy {name}']:4.1f}x, max|diff| {diffs[f'numpy {name}']:.1e})")
            if torch is not None:
                nchw, cl = r[f"torch NCHW {name}"], r[f"torch channels_last {name}"]
                r_t = max(nchw, cl)  # the stronger format is the peer
                line += (f" | torch {torch.__version__} {r_t:6.1f} img/s ({r[f'bgad {name}'] / r_t:4.2f}x; "
                         f"NCHW {nchw:.1f}, channels_last {cl:.1f}; max|diff| {diffs[f'torch {name}']:.1e})")
            else:
                line += " | torch not importable"
            print(line, flush=True)


if __name__ == "__main__":
    main()
