"""bgad.rpag: augmentations move image and mask together, foreground masks (Otsu equal
to scikit-image), and the RPAG rules: exact masks, the 2/3 foreground rule, seeding."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.filters import threshold_otsu

import bgad
from bgad import BGADError, io, rpag

EIGHT = np.ones((3, 3), int)


def marked(shape, y, x, size=5, channels=None, background=0):
    """An image with one bright square marker and the mask of that square."""
    h, w = shape
    img = np.full((h, w) if channels is None else (h, w, channels), background, np.uint8)
    mask = np.zeros((h, w), np.uint8)
    img[y : y + size, x : x + size] = 255
    mask[y : y + size, x : x + size] = 1
    return img, mask


def centroid(weights):
    ys, xs = np.indices(weights.shape)
    total = weights.sum()
    return np.array([(ys * weights).sum() / total, (xs * weights).sum() / total])


# ------------------------------------------------------------------- augmentations

@pytest.mark.parametrize("name", ["rotate90", "flip", "transpose"])
@pytest.mark.parametrize("seed", range(6))
def test_exact_geometric_augmentations_equal_numpy(name, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (23, 23, 3), dtype=np.uint8)
    mask = (rng.random((23, 23)) < 0.3).astype(np.uint8)
    out, out_mask = rpag.RPAG(seed=seed).augment(name, img, mask)
    if name == "rotate90":
        candidates = [lambda a, k=k: np.rot90(a, k) for k in range(4)]
    elif name == "flip":
        candidates = [np.fliplr, np.flipud, lambda a: a[::-1, ::-1]]
    else:
        candidates = [lambda a: np.swapaxes(a, 0, 1)]
    matches = [f for f in candidates if np.array_equal(f(img), out)]
    assert matches, "output is none of the expected permutations"
    assert any(np.array_equal(f(mask), out_mask) for f in matches)


@pytest.mark.parametrize("name", rpag.GEOMETRIC)
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("channels", [None, 3])
def test_geometric_augmentation_moves_marker_in_image_and_mask_to_the_same_place(name, seed, channels):
    rng = np.random.default_rng(100 + seed)
    y, x = rng.integers(20, 40, 2)
    img, mask = marked((64, 64), y, x, channels=channels)
    gen = rpag.RPAG(seed=seed)
    out, out_mask = gen.augment(name, img, mask)
    assert out.shape == img.shape and out_mask.shape == mask.shape
    assert set(np.unique(out_mask)) <= {0, 1} and out_mask.sum() > 0
    intensity = out.astype(float) if channels is None else out[..., 0].astype(float)
    # bilinear (image) and nearest (mask) sample the same source positions: the marker's
    # centres of mass agree to within a pixel, and the image is bright where the mask is set
    assert np.abs(centroid(intensity) - centroid(out_mask.astype(float))).max() < 1.0
    assert intensity[out_mask == 1].min() >= 64
    assert intensity[out_mask == 0].max() <= 192


@pytest.mark.parametrize("name", [n for n in rpag.AUGMENTATIONS if n not in rpag.GEOMETRIC])
def test_photometric_augmentations_keep_the_mask_and_change_pixels(name):
    rng = np.random.default_rng(1)
    base = (np.add.outer(np.arange(48), np.arange(48)) * 2).astype(np.uint8)
    img = np.stack([base, base[::-1], 255 - base], axis=2)
    img[10:20, 10:30] = rng.integers(0, 256, (10, 20, 3))
    mask = (rng.random((48, 48)) < 0.2).astype(np.uint8)
    gen = rpag.RPAG(seed=3)
    changed = False
    for _ in range(5):
        out, out_mask = gen.augment(name, img, mask)
        np.testing.assert_array_equal(out_mask, mask)
        changed |= not np.array_equal(out, img)
    assert changed


def test_unknown_augmentation_is_rejected():
    with pytest.raises(BGADError, match="unknown augmentation"):
        rpag.RPAG().augment("solarize", np.zeros((4, 4), np.uint8))


# ------------------------------------------------------------------- foreground

@pytest.mark.parametrize("seed", range(25))
def test_otsu_threshold_equals_scikit_image(seed):
    rng = np.random.default_rng(seed)
    kind = seed % 5
    if kind == 0:
        img = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    elif kind == 1:  # bimodal
        img = np.where(rng.random((60, 60)) < 0.3, rng.normal(60, 12, (60, 60)), rng.normal(170, 20, (60, 60)))
        img = np.clip(img, 0, 255).astype(np.uint8)
    elif kind == 2:  # few distinct values
        img = rng.choice(np.array([3, 90, 91, 200], np.uint8), (30, 30))
    elif kind == 3:  # narrow range
        img = rng.integers(100, 104, (25, 25)).astype(np.uint8)
    else:  # two values
        img = rng.choice(np.array([10, 240], np.uint8), (16, 16))
    assert rpag.otsu_threshold(img) == int(threshold_otsu(img))


def test_otsu_threshold_of_constant_image_is_its_value():
    assert rpag.otsu_threshold(np.full((5, 5), 77, np.uint8)) == 77 == int(threshold_otsu(np.full((5, 5), 77, np.uint8)))


@pytest.mark.parametrize("object_bright", [True, False])
@pytest.mark.parametrize("channels", [None, 3])
def test_foreground_polarity_is_automatic(object_bright, channels):
    rng = np.random.default_rng(0)
    obj = np.zeros((96, 128), bool)
    obj[20:70, 30:100] = True
    lo, hi = (40, 200) if object_bright else (200, 40)
    img = np.where(obj, hi, lo) + rng.integers(-10, 11, obj.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if channels:
        img = np.stack([img] * 3, axis=2)
    np.testing.assert_array_equal(rpag.foreground_mask(img), obj.astype(np.uint8))


def test_foreground_cleanup_removes_specks_and_fills_holes():
    img = np.full((80, 80), 30, np.uint8)
    yy, xx = np.indices(img.shape)
    ring = ((yy - 40) ** 2 + (xx - 40) ** 2 <= 25**2) & ((yy - 40) ** 2 + (xx - 40) ** 2 >= 10**2)
    img[ring] = 220
    img[5, 5] = 220  # an isolated speck
    fg = rpag.foreground_mask(img)
    disk = (yy - 40) ** 2 + (xx - 40) ** 2 <= 25**2
    assert fg[5, 5] == 0
    assert fg[40, 40] == 1  # the hole of the ring is filled
    assert (fg.astype(bool) ^ disk).sum() <= 0.03 * disk.sum()


def test_whole_mode_and_constant_image():
    img = np.random.default_rng(0).integers(0, 256, (10, 12), dtype=np.uint8)
    assert rpag.foreground_mask(img, "whole").all()
    assert rpag.foreground_mask(np.full((8, 8), 5, np.uint8)).all()
    with pytest.raises(BGADError, match="otsu"):
        rpag.foreground_mask(img, "magic")


# ------------------------------------------------------------------- RPAG

def scene(rng, channels=None, size=96, defect_at=(30, 30)):
    """A bright object on a dark background, a defect image and mask."""
    shape = (size, size) if channels is None else (size, size, channels)
    normal = np.full(shape, 25, np.uint8)
    normal[16:80, 16:80] = 180
    normal = np.clip(normal.astype(int) + rng.integers(-5, 6, shape), 0, 255).astype(np.uint8)
    anomaly = normal.copy()
    mask = np.zeros((size, size), np.uint8)
    y, x = defect_at
    mask[y : y + 12, x : x + 3] = 1          # a crack
    mask[y + 20 : y + 25, x + 20 : x + 26] = 1  # a blob
    anomaly[mask == 1] = 60 if channels is None else (60, 20, 200)
    return normal, anomaly, mask


def check_exact(normal, out, mask, d):
    """Output = normal off the mask; on the mask = the augmented pixel named by `source`."""
    h, w = mask.shape
    assert set(np.unique(mask)) <= {0, 1}
    np.testing.assert_array_equal(mask == 1, d["source"] >= 0)
    off = mask == 0
    np.testing.assert_array_equal(out[off], normal[off])
    src = d["source"][mask == 1]
    aug_flat = d["augmented_image"].reshape(h * w, -1)
    np.testing.assert_array_equal(out[mask == 1].reshape(len(src), -1), aug_flat[src])
    assert d["augmented_mask"].reshape(-1)[src].all()  # only defect pixels are pasted


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("channels", [None, 3])
def test_output_differs_from_normal_exactly_on_mask_and_equals_augmented_defect(seed, channels):
    rng = np.random.default_rng(seed)
    normal, anomaly, mask = scene(rng, channels, defect_at=(5, 5) if seed % 2 else (30, 30))
    out, m, d = rpag.RPAG(seed=seed, always_apply=seed % 3 == 0).generate(normal, anomaly, mask, return_details=True)
    assert out.shape == normal.shape and out.dtype == np.uint8
    check_exact(normal, out, m, d)
    assert 1 <= len(d["operations"]) + 1 and len(d["operations"]) <= 3
    if d["pasted_in_place"]:
        np.testing.assert_array_equal(m, d["augmented_mask"])
        np.testing.assert_array_equal(d["source"][m == 1], np.flatnonzero(m))


def rounded_centre(region):
    ys, xs = np.nonzero(region)
    n = len(ys)
    return (2 * ys.sum() + n) // (2 * n), (2 * xs.sum() + n) // (2 * n)


@pytest.mark.parametrize("seed", range(40))
def test_foreground_rule(seed):
    """In place iff ≥ 2/3 of the augmented defect lies on the foreground; otherwise each
    8-connected region is shifted rigidly so that its centre lands on a foreground point."""
    rng = np.random.default_rng(seed)
    normal, anomaly, mask = scene(rng, None, defect_at=(4, 4) if seed % 2 else (30, 30))
    fg = np.zeros(mask.shape, np.uint8)
    y0, x0 = rng.integers(10, 60, 2)
    fg[y0 : y0 + 30, x0 : x0 + 30] = 1
    gen = rpag.RPAG(seed=seed, always_apply=True)
    out, m, d = gen.generate(normal, anomaly, mask, foreground=fg, return_details=True)
    check_exact(normal, out, m, d)
    aug = d["augmented_mask"].astype(bool)
    area, overlap = aug.sum(), (aug & (fg == 1)).sum()
    assert d["pasted_in_place"] == (3 * overlap >= 2 * area)
    if d["pasted_in_place"]:
        return
    labels, count = ndimage.label(aug, structure=EIGHT)
    h, w = mask.shape
    src = d["source"]
    dst_y, dst_x = np.nonzero(src >= 0)
    s_y, s_x = np.divmod(src[src >= 0], w)
    for k in range(1, count + 1):
        region = labels == k
        sel = region[s_y, s_x]
        # the pixels of region k that survive (not overwritten by a later region)
        if not sel.any():
            continue
        shifts = set(zip(dst_y[sel] - s_y[sel], dst_x[sel] - s_x[sel]))
        assert len(shifts) == 1, "a region must move rigidly"
        dy, dx = shifts.pop()
        cy, cx = rounded_centre(region)
        ys, xs = np.nonzero(region)
        # when some foreground point keeps the region inside, the centre lands on one
        feasible = fg.copy()
        feasible[: cy - ys.min(), :] = 0
        feasible[h - (ys.max() - cy) :, :] = 0
        feasible[:, : cx - xs.min()] = 0
        feasible[:, w - (xs.max() - cx) :] = 0
        if feasible.any():
            assert fg[cy + dy, cx + dx] == 1
        assert 0 <= ys.min() + dy and ys.max() + dy < h and 0 <= xs.min() + dx and xs.max() + dx < w


def test_defect_fully_on_foreground_is_pasted_in_place_with_its_augmented_mask():
    rng = np.random.default_rng(0)
    normal, anomaly, mask = scene(rng)
    out, m, d = rpag.RPAG(seed=1).generate(normal, anomaly, mask, foreground=np.ones_like(mask), return_details=True)
    assert d["pasted_in_place"]
    np.testing.assert_array_equal(m, d["augmented_mask"])


def test_same_seed_same_output_and_different_seeds_differ():
    rng = np.random.default_rng(0)
    normal, anomaly, mask = scene(rng, 3, defect_at=(4, 4))
    runs = []
    for seed in (7, 7, 8):
        gen = rpag.RPAG(seed=seed, always_apply=True)
        runs.append([gen.generate(normal, anomaly, mask) for _ in range(4)])
    for (a, am), (b, bm) in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(am, bm)
    assert any(not np.array_equal(a, c) for (a, _), (c, _) in zip(runs[0], runs[2]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(anomaly=np.zeros((8, 9), np.uint8)), "shape"),
        (dict(anomaly_mask=np.zeros((8, 8), np.uint8)), "empty"),
        (dict(anomaly_mask=np.ones((8, 7), np.uint8)), "anomaly_mask"),
        (dict(normal=np.zeros((8, 8), np.float32)), "uint8"),
        (dict(normal=np.zeros((8, 8, 4), np.uint8)), "shape"),
        (dict(foreground=np.ones((3, 3), np.uint8)), "foreground"),
        (dict(anomaly_mask=np.full((8, 8), np.nan)), "NaN"),
    ],
)
def test_bad_inputs_raise_bgad_error(kwargs, message):
    args = dict(normal=np.zeros((8, 8), np.uint8), anomaly=np.zeros((8, 8), np.uint8), anomaly_mask=np.eye(8, dtype=np.uint8))
    args.update(kwargs)
    with pytest.raises(BGADError, match=message):
        rpag.RPAG().generate(**args)


def test_write_samples_and_command_line(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "normal").mkdir()
    for i in range(3):
        normal, anomaly, mask = scene(rng)
        io.write_png(tmp_path / "normal" / f"{i}.png", normal)
    io.write_png(tmp_path / "a.png", anomaly)
    io.write_png(tmp_path / "a_mask.png", mask * 255)
    res = rpag.write_samples(tmp_path / "normal", [tmp_path / "a.png"], [tmp_path / "a_mask.png"], tmp_path / "out", n=5, seed=3)
    assert len(res["images"]) == 5
    for ip, mp in zip(res["images"], res["masks"]):
        img, m = io.read_png(ip), io.read_png(mp)
        assert img.shape == (96, 96) and set(np.unique(m)) <= {0, 255} and m.any()
    sheet = io.read_png(res["contact_sheet"])
    assert sheet.ndim == 3 and sheet.shape[0] > 96 * 5
    # reproducible
    res2 = rpag.write_samples(tmp_path / "normal", [tmp_path / "a.png"], [tmp_path / "a_mask.png"], tmp_path / "out2", n=5, seed=3)
    for a, b in zip(res["images"], res2["images"]):
        np.testing.assert_array_equal(io.read_png(a), io.read_png(b))
    env_py = Path(__file__).resolve().parents[1]
    help_out = subprocess.run([sys.executable, "-m", "bgad.rpag", "--help"], capture_output=True, text=True, cwd=env_py)
    assert help_out.returncode == 0 and "--normal" in help_out.stdout
    run = subprocess.run(
        [sys.executable, "-m", "bgad.rpag", "--normal", str(tmp_path / "normal"), "--anomalies", str(tmp_path / "a.png"),
         "--masks", str(tmp_path / "a_mask.png"), "--out", str(tmp_path / "cli"), "--n", "2"],
        capture_output=True, text=True, cwd=env_py,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "cli" / "rpag_00001_mask.png").exists()


@pytest.mark.parametrize("channels", [None, 3])
def test_median_and_box_blur_equal_scipy_with_mirrored_border(channels):
    rng = np.random.default_rng(9)
    shape = (31, 40) if channels is None else (31, 40, 3)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    size = (3, 3) if channels is None else (3, 3, 1)
    out, _ = rpag.RPAG().augment("median_blur", img)
    np.testing.assert_array_equal(out, ndimage.median_filter(img, size=size, mode="mirror"))
    out, _ = rpag.RPAG().augment("box_blur", img)
    ref = np.floor(ndimage.uniform_filter(img.astype(np.float64), size=size, mode="mirror") + 0.5)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.97  # float32 sums may round a .5 case
