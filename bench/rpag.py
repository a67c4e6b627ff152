"""Benchmark of the image side: RPAG samples/s and PNG decode MB/s against peers.

    PYTHONPATH=python python bench/rpag.py [--seconds 3] [--contact-sheet OUT.png]

1. RPAG on 256×256 RGB images: bgad.rpag.RPAG.generate against the same augment-and-paste
   written with albumentations + OpenCV (the authors' augmentation list, Otsu foreground
   with morphological clean-up, in-place or per-region moved paste), measured in the same
   run, once with the authors' slot probabilities and once with every drawn slot firing.
   The peer is skipped (reported as such) when albumentations/cv2 are not importable.
2. PNG decoding: bgad.io.read_png against Pillow (np.asarray(Image.open(p))) on the same
   files (synthetic 1024×1024 RGB and 300×300 gray, plus ELPV cells when installed), in MB/s
   of decoded pixels.
With --contact-sheet, also writes an RPAG contact sheet from real ELPV solar cells
(pip install elpv-dataset) with a programmatically drawn crack as the known defect.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import bgad  # noqa: E402
from bgad import io, rpag  # noqa: E402


def rate(fn, seconds):
    """Calls fn() repeatedly for about `seconds`; returns calls per second."""
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def synthetic_scene(rng, size=256):
    """A textured object on a darker background, a defective copy, its mask."""
    yy, xx = np.indices((size, size))
    obj = (yy - size / 2) ** 2 / (0.35 * size) ** 2 + (xx - size / 2) ** 2 / (0.4 * size) ** 2 <= 1
    base = np.where(obj, 170, 40) + 12 * np.sin(xx / 5.0) + rng.normal(0, 6, (size, size))
    normal = np.clip(np.stack([base, base * 0.9, base * 0.8], axis=2), 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[30:36, 20:70] = 1
    mask[150:175, 160:170] = 1
    anomaly = normal.copy()
    anomaly[mask == 1] = (30, 20, 90)
    return normal, anomaly, mask


# ----------------------------------------------------------------- the peer

def make_peer(always):
    import albumentations as A
    import cv2

    def p(x):
        return 1.0 if always else x

    pool = [
        A.RandomRotate90(p=p(0.5)),
        A.OneOf([A.HorizontalFlip(p=1), A.VerticalFlip(p=1), A.Compose([A.HorizontalFlip(p=1), A.VerticalFlip(p=1)])], p=p(0.5)),
        A.Transpose(p=p(0.5)),
        A.OpticalDistortion(distort_limit=1.0, p=1.0),
        A.GaussNoise(p=p(0.2)),
        A.OneOf([A.MotionBlur(p=0.2), A.MedianBlur(blur_limit=3, p=0.1), A.Blur(blur_limit=3, p=0.1)], p=p(0.2)),
        A.Affine(translate_percent=(-0.0625, 0.0625), scale=(0.8, 1.2), rotate=(-45, 45), border_mode=cv2.BORDER_REFLECT_101, p=p(0.2)),
        A.OneOf([A.OpticalDistortion(p=0.3), A.GridDistortion(p=0.1)], p=p(0.2)),
        A.OneOf([A.CLAHE(clip_limit=2), A.Sharpen(), A.Emboss(), A.RandomBrightnessContrast()], p=p(0.3)),
        A.HueSaturationValue(p=p(0.3)),
    ]
    rng = np.random.default_rng(0)
    kernel = np.ones((3, 3), np.uint8)

    def foreground(img):
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        fg = (gray > t) if (border > t).mean() <= 0.5 else (gray <= t)
        fg = fg.astype(np.uint8)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
        n, lab = cv2.connectedComponents(1 - fg, connectivity=8)
        touching = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        holes = ~np.isin(lab, touching)
        fg[holes] = 1
        return fg

    def generate(normal, anomaly, mask):
        idx = rng.choice(len(pool), 3, replace=False)
        aug = A.Compose([pool[i] for i in idx])
        r = aug(image=anomaly, mask=mask)
        aimg, amask = r["image"], r["mask"]
        fg = foreground(normal)
        out = normal.copy()
        area = int(amask.sum())
        overlap = int((amask & fg).sum())
        if 3 * overlap >= 2 * area:
            out[amask == 1] = aimg[amask == 1]
            return out, amask
        n, lab, stats, cents = cv2.connectedComponentsWithStats(amask, connectivity=8)
        out_mask = np.zeros_like(amask)
        fy, fx = np.nonzero(fg)
        h, w = amask.shape
        for k in range(1, n):
            x0, y0, bw, bh, _ = stats[k]
            cx, cy = int(round(cents[k][0])), int(round(cents[k][1]))
            j = rng.integers(len(fy))
            dx = int(np.clip(fx[j] - cx, -x0, w - x0 - bw))
            dy = int(np.clip(fy[j] - cy, -y0, h - y0 - bh))
            ys, xs = np.nonzero(lab == k)
            out[ys + dy, xs + dx] = aimg[ys, xs]
            out_mask[ys + dy, xs + dx] = 1
        return out, out_mask

    return generate


# ----------------------------------------------------------------- ELPV contact sheet

def crack_mask(rng, size, length=140):
    """A plausible crack: a jittered random walk with one branch, 1–2 pixels wide."""
    mask = np.zeros((size, size), np.uint8)

    def walk(y, x, angle, steps):
        for _ in range(steps):
            angle += rng.normal(0, 0.18)
            y, x = y + np.sin(angle), x + np.cos(angle)
            iy, ix = int(round(y)), int(round(x))
            if not (1 <= iy < size - 1 and 1 <= ix < size - 1):
                return y, x, angle
            mask[iy, ix] = 1
            if rng.random() < 0.5:
                mask[iy + 1, ix] = 1
        return y, x, angle

    y, x = rng.uniform(0.3 * size, 0.7 * size, 2)
    a = rng.uniform(0, 2 * np.pi)
    y1, x1, a1 = walk(y, x, a, length // 2)
    walk(y, x, a + np.pi, length // 2)
    walk(y1, x1, a1 + rng.choice([-0.8, 0.8]), length // 4)
    return mask


def elpv_contact_sheet(out_path, seed=0, rows=8):
    import elpv_dataset
    from scipy import ndimage

    root = Path(elpv_dataset.__file__).resolve().parent / "data"
    lines = [l.split() for l in (root / "labels.csv").read_text().splitlines() if l.strip()]
    normals = [root / p for p, prob, kind in lines if float(prob) == 0.0 and kind == "mono"][:40]
    # defective cells exposed like the normal ones (EL brightness varies a lot between cells)
    level = np.median([io.read_png(p, "gray").mean() for p in normals])
    candidates = [root / p for p, prob, kind in lines if float(prob) == 1.0 and kind == "mono"][:80]
    defective = sorted(candidates, key=lambda p: abs(io.read_png(p, "gray").mean() - level))[:4]
    rng = np.random.default_rng(seed)
    tmp = Path(tempfile.mkdtemp(prefix="bgad-elpv-"))
    anomaly_paths, mask_paths = [], []
    for i, p in enumerate(defective):
        img = io.read_png(p, "gray").astype(np.float64)
        m = crack_mask(rng, img.shape[0])
        # a dark crack with a soft edge, drawn into the defective cell
        soft = ndimage.gaussian_filter(m.astype(float), 0.7)
        soft = soft / soft.max()
        img = img * (1 - 0.75 * soft)
        ap, mp = tmp / f"a{i}.png", tmp / f"a{i}_mask.png"
        io.write_png(ap, np.clip(img, 0, 255).astype(np.uint8))
        io.write_png(mp, (ndimage.binary_dilation(m, np.ones((3, 3))) * 255).astype(np.uint8))
        anomaly_paths.append(ap)
        mask_paths.append(mp)
    res = rpag.write_samples(normals, anomaly_paths, mask_paths, tmp / "out", n=rows, seed=seed, sheet_rows=rows)
    os.replace(res["contact_sheet"], out_path)
    return out_path


# ----------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--contact-sheet", default=None, help="write an ELPV RPAG contact sheet to this PNG")
    args = ap.parse_args()
    bgad.set_num_threads(1)
    rng = np.random.default_rng(0)
    normal, anomaly, mask = synthetic_scene(rng)

    print("RPAG, 256x256 RGB, one thread")
    for always in (False, True):
        label = "always-apply" if always else "authors' probabilities"
        gen = rpag.RPAG(seed=0, always_apply=always)
        ours = rate(lambda: gen.generate(normal, anomaly, mask), args.seconds)
        try:
            import cv2

            cv2.setNumThreads(1)
            peer = make_peer(always)
            theirs = rate(lambda: peer(normal, anomaly, mask), args.seconds)
            print(f"  {label:24s} bgad {ours:8.1f} samples/s | albumentations+OpenCV {theirs:8.1f} samples/s | ratio {ours / theirs:5.2f}x")
        except ImportError as exc:
            print(f"  {label:24s} bgad {ours:8.1f} samples/s | peer skipped ({exc})")

    print("PNG decode (MB/s of decoded pixels)")
    try:
        from PIL import Image
    except ImportError:
        Image = None
    tmp = Path(tempfile.mkdtemp(prefix="bgad-bench-"))
    files = {}
    big = np.clip(np.add.outer(np.arange(1024), np.arange(1024))[:, :, None] / 8 + rng.normal(0, 8, (1024, 1024, 3)), 0, 255).astype(np.uint8)
    io.write_png(tmp / "rgb1024.png", big)
    files["synthetic 1024x1024 RGB"] = [tmp / "rgb1024.png"]
    io.write_png(tmp / "gray300.png", big[:300, :300, 0])
    files["synthetic 300x300 gray"] = [tmp / "gray300.png"]
    try:
        import elpv_dataset

        root = Path(elpv_dataset.__file__).resolve().parent / "data" / "images"
        files["ELPV 300x300 gray cells (50)"] = sorted(root.glob("*.png"))[:50]
    except ImportError:
        pass
    for label, paths in files.items():
        nbytes = sum(io.read_png(p).nbytes for p in paths)
        ours = rate(lambda: [io.read_png(p) for p in paths], args.seconds) * nbytes / 1e6
        if Image is None:
            print(f"  {label:30s} bgad {ours:8.1f} MB/s | Pillow not importable")
            continue
        theirs = rate(lambda: [np.asarray(Image.open(p)) for p in paths], args.seconds) * nbytes / 1e6
        print(f"  {label:30s} bgad {ours:8.1f} MB/s | Pillow {theirs:8.1f} MB/s | ratio {ours / theirs:5.2f}x")

    if args.contact_sheet:
        print("contact sheet:", elpv_contact_sheet(args.contact_sheet))


if __name__ == "__main__":
    main()
