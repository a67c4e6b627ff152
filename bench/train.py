"""Benchmark of BGAD training on feature maps: engine vs PyTorch + FrEIA.

Workload: the feature maps of 200 images at the built-in backbone's shapes
(24×64×64, 40×32×32, 112×16×16) — 180 normal images and 20 known anomalous images with
256×256 masks (a random rectangle each). The timed job is a whole ``fit`` with
``meta_epochs=2`` (no warm-up) and ``--sub-epochs`` passes per meta-epoch (default 1;
the authors use 8): meta-epoch 0 = phase 1 (180 normal images, ML loss), meta-epoch 1 =
phase 2 (all 200 images, ML + λ·BG-SPP with focal weighting) — so one meta-epoch of
each phase — batches of 32 images, chunks of 4096 vectors, one Adam state per level,
then the calibration pass over the 180 training normal images.

The peer, when ``torch`` and ``FrEIA`` (0.2) are importable, is the authors' training
loop written in PyTorch on FrEIA's ``AllInOneBlock`` × 8 (conditional, clamp 1.9,
subnet Linear→ReLU→Linear, soft permutation, softplus global affine) doing the same
work: same phases, chunking, losses, per-level Adam, and a calibration pass
(log-likelihood of every training normal position). Both use 2 threads; each side runs
in its own subprocess, so each peak RSS is its own.

Printed: wall time of each side, the ratio (goal ≥ 1.5× faster), peak RSS (goal ≤ 2 GB).

Run:  PYTHONPATH=python python3 bench/train.py  [--sub-epochs N] [--threads T] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np

SHAPES = [(24, 64, 64), (40, 32, 32), (112, 16, 16)]
N_NORMAL, N_ANOMALOUS, IMAGE = 180, 20, 256
THREADS = 2


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    normal = [np.abs(rng.normal(size=(N_NORMAL, c, h, w))).astype(np.float32) for c, h, w in SHAPES]
    anomalous = [np.abs(rng.normal(size=(N_ANOMALOUS, c, h, w))).astype(np.float32) for c, h, w in SHAPES]
    masks = np.zeros((N_ANOMALOUS, IMAGE, IMAGE), np.uint8)
    for i in range(N_ANOMALOUS):
        y, x = rng.integers(0, IMAGE - 64, 2)
        hh, ww = rng.integers(16, 64, 2)
        masks[i, y:y + hh, x:x + ww] = 1
        for l, (c, h, w) in enumerate(SHAPES):
            s = IMAGE // h
            sub = masks[i, ::s, ::s].astype(bool)
            anomalous[l][i][:, sub] += 1.5
    return normal, anomalous, masks


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- engine


def run_engine(sub_epochs):
    import bgad

    bgad.set_num_threads(THREADS)
    normal, anomalous, masks = make_data()
    t0 = time.perf_counter()
    bgad.BGAD(meta_epochs=2, sub_epochs=sub_epochs, warmup_epochs=0, progress=False, seed=0).fit(
        normal, anomalous, masks)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------- peer (PyTorch + FrEIA 0.2)


def peer_flow(dim):
    """BGAD's flow in FrEIA 0.2: 8 conditional AllInOneBlocks on the 128-d positional condition."""
    import torch
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    def subnet(cin, cout):
        return torch.nn.Sequential(torch.nn.Linear(cin, 2 * cin), torch.nn.ReLU(), torch.nn.Linear(2 * cin, cout))

    inn = Ff.SequenceINN(dim)
    for _ in range(8):
        inn.append(Fm.AllInOneBlock, cond=0, cond_shape=(128,), subnet_constructor=subnet,
                   affine_clamping=1.9, global_affine_type="SOFTPLUS", permute_soft=True)
    return inn


def peer_pos_encoding(h, w, d=128):
    """The authors' 2-D sinusoidal positional encoding, (d, h, w)."""
    import torch

    pe = torch.zeros(d, h, w)
    half = d // 2
    div = torch.exp(torch.arange(0.0, half, 2) * -(math.log(1e4) / half))
    pw = torch.arange(0.0, w).unsqueeze(1)
    ph = torch.arange(0.0, h).unsqueeze(1)
    pe[0:half:2] = torch.sin(pw * div).t().unsqueeze(1).repeat(1, h, 1)
    pe[1:half:2] = torch.cos(pw * div).t().unsqueeze(1).repeat(1, h, 1)
    pe[half::2] = torch.sin(ph * div).t().unsqueeze(2).repeat(1, 1, w)
    pe[half + 1::2] = torch.cos(ph * div).t().unsqueeze(2).repeat(1, 1, w)
    return pe


def peer_logp(dim, z, jac):
    """log p(x) / C of a flow's output."""
    import torch

    return (-0.5 * dim * math.log(2 * math.pi) - 0.5 * torch.sum(z ** 2, 1) + jac) / dim


def peer_fit(normal, anomalous, masks, sub_epochs, lr=2e-4, meta_epochs=2):
    """The authors' BGAD training loop in PyTorch + FrEIA on feature maps.

    ``normal`` / ``anomalous``: one (N, C, H, W) float32 array per level; ``masks``:
    (M, H_img, W_img) uint8. Meta-epoch 0 is phase 1 (normal images, ML loss), the others
    phase 2 (all images, ML + BG-SPP with focal weighting), ``sub_epochs`` passes each,
    batches of 32 images, chunks of 4096 vectors, one Adam per level at a constant ``lr``;
    then the calibration pass (log-likelihood of every training normal position).
    Returns (flows, per-level reference log-likelihoods).
    """
    import torch
    import torch.nn.functional as F

    shapes = [a.shape[1:] for a in normal]
    n_normal, n_anomalous = normal[0].shape[0], anomalous[0].shape[0]
    image = masks.shape[1:]

    def focal_normal(l):
        x = l / 10
        return torch.where(x > -0.2, torch.ones_like(x), 11.7 * (1 - torch.exp(x)).clamp_min(0).sqrt() * x.abs())

    def focal_abnormal(l):
        x = l / 10
        return torch.where(x <= -1, torch.ones_like(x), 0.53 * (1 + torch.exp(x)) ** 2 / x.abs().clamp_min(0.01))

    def chunks(total, chunk=4096):
        k = max(1, (total + chunk // 2) // chunk)
        return [(total * i // k, total * (i + 1) // k) for i in range(k)]

    flows = [peer_flow(c) for c, _, _ in shapes]
    opts = [torch.optim.Adam(f.parameters(), lr=lr) for f in flows]
    feats = [torch.from_numpy(np.concatenate([a, b])) for a, b in zip(normal, anomalous)]
    mask_t = torch.cat([torch.zeros(n_normal, 1, *image), torch.from_numpy(masks).float().unsqueeze(1)])
    pes = [peer_pos_encoding(h, w) for _, h, w in shapes]
    log_sigmoid = torch.nn.LogSigmoid()

    def train_pass(phase, n_images):
        order = torch.randperm(n_images)
        for s in range(0, n_images, 32):
            idx = order[s:s + 32]
            for l, (c, h, w) in enumerate(shapes):
                e = feats[l][idx].permute(0, 2, 3, 1).reshape(-1, c)
                m = F.interpolate(mask_t[idx], size=(h, w), mode="nearest").reshape(-1)
                p = pes[l].unsqueeze(0).repeat(len(idx), 1, 1, 1).permute(0, 2, 3, 1).reshape(-1, 128)
                perm = torch.randperm(e.shape[0])
                for a, b in chunks(e.shape[0]):
                    pi = perm[a:b]
                    e_b, p_b, m_b = e[pi], p[pi], m[pi]
                    z, jac = flows[l](e_b, c=[p_b])
                    lp = peer_logp(c, z, jac)
                    ld = lp.detach()
                    if phase == 1:
                        loss = -log_sigmoid(lp).mean()
                    elif m_b.sum() == 0:
                        loss = (-log_sigmoid(lp) * focal_normal(ld)).mean()
                    else:
                        nw, aw = focal_normal(ld), focal_abnormal(ld)
                        nl, al = lp[m_b == 0], lp[m_b == 1]
                        loss_ml = (-log_sigmoid(nl) * nw[m_b == 0]).mean()
                        k = int(nl.shape[0] * 0.01)
                        bn = torch.sort(nl.detach())[0][k] / 10
                        ba = bn - 0.1
                        sn, sa = nl / 10, al / 10
                        pull, push = sn <= bn, sa >= ba
                        ln = ((bn - sn[pull]) * nw[m_b == 0][pull]).mean() if pull.any() else lp.sum() * 0
                        la = ((sa[push] - ba) * aw[m_b == 1][push]).mean() if push.any() else lp.sum() * 0
                        loss = loss_ml + ln + la
                    opts[l].zero_grad()
                    loss.backward()
                    opts[l].step()

    def calibrate():
        """Log-likelihood of every training normal position; reference = max per level."""
        with torch.no_grad():
            refs = []
            for l, (c, h, w) in enumerate(shapes):
                cond = pes[l].reshape(128, -1).t()
                best = -math.inf
                for i in range(n_normal):
                    z, jac = flows[l](feats[l][i].reshape(c, -1).t(), c=[cond])
                    best = max(best, float(peer_logp(c, z, jac).max()))
                refs.append(best)
        return refs

    for meta in range(meta_epochs):
        phase, n_images = (1, n_normal) if meta == 0 else (2, n_normal + n_anomalous)
        for _ in range(sub_epochs):
            train_pass(phase, n_images)
    return flows, calibrate()


def run_peer(sub_epochs):
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    normal, anomalous, masks = make_data()
    t0 = time.perf_counter()
    peer_fit(normal, anomalous, masks, sub_epochs)
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}


def _set_threads(n):
    global THREADS
    THREADS = n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sub-epochs", type=int, default=1)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--threads", type=int, default=THREADS, help="threads of each side (default 2)")
    ap.add_argument("--side", choices=["engine", "peer"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    _set_threads(args.threads)
    if args.side:
        fn = run_engine if args.side == "engine" else run_peer
        print(json.dumps(fn(args.sub_epochs)))
        return

    def side(name):
        out = subprocess.run([sys.executable, __file__, "--side", name, "--sub-epochs", str(args.sub_epochs),
                              "--threads", str(THREADS)],
                             capture_output=True, text=True, env=os.environ)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"BGAD fit, {N_NORMAL} normal + {N_ANOMALOUS} anomalous images, levels {SHAPES}: "
          f"phase 1 + phase 2 meta-epochs × {args.sub_epochs} sub-epoch(s) + calibration, {THREADS} threads")
    eng = side("engine")
    print(f"engine: {eng['seconds']:.2f} s, peak RSS {eng['peak_rss_mb']:.0f} MB")
    if args.no_peer:
        return
    try:
        import torch  # noqa: F401
        import FrEIA  # noqa: F401
    except ImportError:
        print("peer: torch/FrEIA not importable, ratio not measured")
        return
    peer = side("peer")
    print(f"PyTorch+FrEIA 0.2: {peer['seconds']:.2f} s, peak RSS {peer['peak_rss_mb']:.0f} MB")
    print(f"speed-up engine vs PyTorch+FrEIA: {peer['seconds'] / eng['seconds']:.2f}x (goal >= 1.5x); "
          f"engine peak RSS {eng['peak_rss_mb']:.0f} MB (goal <= 2048 MB)")


if __name__ == "__main__":
    main()
