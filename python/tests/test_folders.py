"""The user's own folders: listing images (folders, globs, list files), masks matched by stem,
any format (PNG natively, JPEG/BMP/TIFF through Pillow, 16-bit), ``Detector.fit_folders`` and
``bgad fit --normal … --anomalous … --masks …`` end to end, and the errors of bad inputs."""

import struct
from pathlib import Path

import numpy as np
import pytest

from bgad import BGADError, io
from bgad.cli import main as cli_main
from bgad.detector import Detector

PIL = pytest.importorskip("PIL.Image")

FAST = dict(image_size=64, steps=30, rpag_per_anomaly=2, progress=False)


def _png(path: Path, array) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_png(path, array)
    return str(path)


def _jpeg(path: Path, array) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.fromarray(array).save(path, quality=95)
    return str(path)


# ---------------------------------------------------------------------- listing


def test_list_images_folder_glob_and_list_file(tmp_path):
    a = _png(tmp_path / "good" / "b.png", np.zeros((4, 4), np.uint8))
    b = _jpeg(tmp_path / "good" / "sub" / "a.JPG", np.zeros((8, 8, 3), np.uint8))
    _png(tmp_path / "good" / ".hidden.png", np.zeros((4, 4), np.uint8))   # dot files are skipped
    (tmp_path / "good" / "notes.txt").write_text("not an image")           # other files too
    assert io.list_images(tmp_path / "good") == sorted([a, b])
    assert io.list_images(str(tmp_path / "good" / "*.png")) == [a]
    assert io.list_images(str(tmp_path / "good" / "**" / "*")) == sorted([a, b])
    listing = tmp_path / "list.txt"
    listing.write_text("# the good ones\n\ngood/sub/a.JPG\n" + a + "\n")  # relative to the list's folder, absolute
    assert io.list_images(listing) == sorted([str(tmp_path / "good" / "sub" / "a.JPG"), a])
    assert io.list_images([str(tmp_path / "good" / "*.png"), listing]) == sorted(
        {a, str(tmp_path / "good" / "sub" / "a.JPG")})
    assert io.list_images(a) == [a]


def test_list_images_errors_name_the_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BGADError, match="empty holds no image file"):
        io.list_images(tmp_path / "empty")
    with pytest.raises(BGADError, match="no such folder, image or list file"):
        io.list_images(tmp_path / "missing")
    with pytest.raises(BGADError, match="pattern .* holds no image"):
        io.list_images(str(tmp_path / "*.png"))
    (tmp_path / "l.txt").write_text("x.png\n")
    with pytest.raises(BGADError, match=r"l.txt, line 1: no such image file: x.png"):
        io.list_images(tmp_path / "l.txt")
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(BGADError, match="not an image file"):
        io.list_images(tmp_path / "data.csv")


def test_masks_are_paired_by_stem(tmp_path):
    images = ["/d/a.jpg", "/d/b.png", "/d/c.png"]
    assert io.pair_masks(images, ["/m/a_mask.png", "/m/b.png"]) == ["/m/a_mask.png", "/m/b.png", None]
    with pytest.raises(BGADError, match="mask /m/z.png matches no anomalous image"):
        io.pair_masks(images, ["/m/z.png"])
    with pytest.raises(BGADError, match="two masks for /d/a.jpg"):
        io.pair_masks(images, ["/m/a.png", "/m/a_mask.png"])
    with pytest.raises(BGADError, match="share the stem 'a'"):
        io.pair_masks(["/d/a.png", "/e/a.jpg"], [])


# ---------------------------------------------------------------------- formats


def test_read_any_formats_and_16_bit(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for suffix in (".bmp", ".tif"):  # lossless: the very pixels
        p = tmp_path / f"x{suffix}"
        PIL.fromarray(rgb).save(p)
        np.testing.assert_array_equal(io.read_any(p), rgb)
    jpg = _jpeg(tmp_path / "x.jpg", rgb)
    with PIL.open(jpg) as im:
        np.testing.assert_array_equal(io.read_any(jpg), np.asarray(im.convert("RGB")))
    # 16-bit gray: the most significant byte, as the engine's PNG decoder does
    deep = rng.integers(0, 65536, (10, 12), dtype=np.uint16)
    PIL.fromarray(deep).save(tmp_path / "d.tif")
    np.testing.assert_array_equal(io.read_any(tmp_path / "d.tif"), (deep >> 8).astype(np.uint8))
    PIL.fromarray(deep).save(tmp_path / "d.png")
    np.testing.assert_array_equal(io.read_any(tmp_path / "d.png"), (deep >> 8).astype(np.uint8))
    # gray + alpha and palette
    PIL.fromarray(rgb).convert("P").save(tmp_path / "p.bmp")
    assert io.read_any(tmp_path / "p.bmp").shape == (20, 30, 3)
    assert io.image_shape(jpg) == (20, 30) and io.image_shape(tmp_path / "d.png") == (10, 12)


def test_read_any_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(BGADError, match="bad.jpg: cannot be decoded") as err:
        io.read_any(bad)
    assert err.value.status == 3
    with pytest.raises(BGADError, match="image file not found: .*none.tif"):
        io.read_any(tmp_path / "none.tif")
    # a header claiming 30,000 × 30,000 is refused before decoding (no 2.7 GB allocation)
    header = struct.pack("<2sIHHI", b"BM", 54 + 16, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 30000, 30000, 1, 24, 0, 0, 2835, 2835, 0, 0)
    (tmp_path / "huge.bmp").write_bytes(header + bytes(16))
    with pytest.raises(BGADError, match=r"huge.bmp: .*exceeds"):
        io.read_any(tmp_path / "huge.bmp")


# ---------------------------------------------------------------------- fitting on folders


def _user_folders(root: Path, rng, size=48):
    """good/ of mixed PNG and JPEG, gray and RGB; defects/ with masks/ named a.png or a_mask.png
    (one defect without a mask)."""
    for i in range(10):
        img = rng.integers(0, 80, (size, size + 8 * (i % 2)), dtype=np.uint8)
        if i % 3 == 0:
            _jpeg(root / "good" / f"g{i}.jpg", np.repeat(img[..., None], 3, axis=2))
        elif i % 3 == 1:
            _png(root / "good" / f"g{i}.png", np.repeat(img[..., None], 3, axis=2))
        else:
            _png(root / "good" / f"g{i}.png", img)
    for i in range(3):
        img = rng.integers(0, 80, (size, size), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        mask[10:20, 12:30] = 255
        img[mask > 0] = 250
        if i == 0:
            _jpeg(root / "defects" / "d0.jpg", img)
            _png(root / "masks" / "d0_mask.png", mask)
        elif i == 1:
            _png(root / "defects" / "d1.png", img)
            _png(root / "masks" / "d1.png", mask)
        else:
            _png(root / "defects" / "d2.png", img)  # no mask: the whole image
    return root


def test_fit_folders_equals_fit_on_the_paired_lists(tmp_path):
    root = _user_folders(tmp_path, np.random.default_rng(3))
    det = Detector(seed=0, **FAST).fit_folders(root / "good", root / "defects", root / "masks")
    assert det.skipped_ == []
    ref = Detector(seed=0, **FAST).fit(
        io.list_images(root / "good"), io.list_images(root / "defects"),
        [str(root / "masks" / "d0_mask.png"), str(root / "masks" / "d1.png"), None])
    probe = io.list_images(root / "good")[:3] + io.list_images(root / "defects")
    np.testing.assert_array_equal(det.score_images(probe), ref.score_images(probe))
    # a mask of another pairing trains another model: the pairing matters
    other = Detector(seed=0, **FAST).fit(
        io.list_images(root / "good"), io.list_images(root / "defects"),
        [None, str(root / "masks" / "d1.png"), str(root / "masks" / "d0_mask.png")])
    assert not np.array_equal(det.score_images(probe), other.score_images(probe))


def test_bgad_fit_on_mixed_png_jpeg_folders_end_to_end(tmp_path, capsys):
    root = _user_folders(tmp_path, np.random.default_rng(4))
    out = tmp_path / "m.bgad"
    status = cli_main(["fit", "--normal", str(root / "good"), "--anomalous", str(root / "defects"),
                       "--masks", str(root / "masks"), "--steps", "30", "--image-size", "64", "--rpag", "2",
                       "--quiet", "--out", str(out)])
    assert status == 0 and out.is_file()
    det = Detector.load(out, progress=False)
    rng = np.random.default_rng(9)
    clean = [rng.integers(0, 80, (48, 48), dtype=np.uint8) for _ in range(4)]
    broken = []
    for c in clean:
        b = c.copy()
        b[10:20, 12:30] = 250
        broken.append(b)
    scores = det.score_images(clean + broken)
    assert scores[4:].min() > scores[:4].max()  # the known defect kind is found on new images
    # globs and list files on the command line too
    (tmp_path / "good.txt").write_text("\n".join(io.list_images(root / "good")))
    status = cli_main(["fit", "--normal", str(tmp_path / "good.txt"), "--anomalous", str(root / "defects" / "*.png"),
                       "--steps", "5", "--image-size", "64", "--quiet", "--out", str(tmp_path / "m2.bgad")])
    assert status == 0


def test_fit_folders_bad_inputs_are_named(tmp_path, capsys):
    root = _user_folders(tmp_path, np.random.default_rng(5))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BGADError, match="empty holds no image"):
        Detector(**FAST).fit_folders(tmp_path / "empty")
    # a mask of another size, naming both files
    _png(root / "masks2" / "d1.png", np.zeros((20, 20), np.uint8))
    with pytest.raises(BGADError, match=r"mask .*masks2/d1.png is 20×20 but its image .*d1.png is 48×48"):
        Detector(**FAST).fit_folders(root / "good", root / "defects", root / "masks2")
    # a mask matching no defect
    _png(root / "masks3" / "zz.png", np.zeros((48, 48), np.uint8))
    with pytest.raises(BGADError, match="masks3/zz.png matches no anomalous image"):
        Detector(**FAST).fit_folders(root / "good", root / "defects", root / "masks3")
    # a corrupt image: an error naming it, or skipped and listed with skip_bad
    (root / "good" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (root / "good" / "broken2.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(BGADError, match="broken"):
        Detector(**FAST).fit_folders(root / "good")
    det = Detector(**FAST).fit_folders(root / "good", root / "defects", root / "masks", skip_bad=True)
    assert sorted(Path(p).name for p, _ in det.skipped_) == ["broken.png", "broken2.jpg"]
    assert det.is_fitted
    status = cli_main(["fit", "--normal", str(root / "good"), "--skip-bad", "--steps", "5", "--image-size", "64",
                       "--quiet", "--out", str(tmp_path / "s.bgad")])
    printed = capsys.readouterr().out
    assert status == 0 and "skipped" in printed and "broken2.jpg" in printed
    status = cli_main(["fit", "--normal", str(root / "good"), "--steps", "5", "--image-size", "64", "--quiet",
                       "--out", str(tmp_path / "s.bgad")])
    assert status == 2 and "broken" in capsys.readouterr().err


def test_odd_images_are_handled_or_refused_by_name(tmp_path):
    """1×1, 16-bit, gray+alpha, RGBA, palette and gray JPEG images train together; a PNG whose
    header claims 30,000 × 30,000 is refused before decoding, naming the file."""
    import zlib

    rng = np.random.default_rng(6)
    good = tmp_path / "good"
    _png(good / "tiny.png", np.full((1, 1), 40, np.uint8))
    PIL.fromarray(rng.integers(0, 65536, (40, 40), dtype=np.uint16)).save(good / "deep.png")
    PIL.fromarray(rng.integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA").save(good / "rgba.png")
    PIL.fromarray(rng.integers(0, 256, (40, 40, 2), dtype=np.uint8), "LA").save(good / "la.png")
    PIL.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).convert("P").save(good / "pal.png")
    _jpeg(good / "gray.jpg", rng.integers(0, 256, (40, 40), dtype=np.uint8))
    det = Detector(**FAST).fit_folders(good)
    assert det.is_fitted and det.skipped_ == []
    # the same list as arrays gives the same detector: every format decodes as read_any says
    ref = Detector(**FAST).fit([io.read_any(p) for p in io.list_images(good)])
    probe = [rng.integers(0, 256, (40, 40), dtype=np.uint8)]
    np.testing.assert_array_equal(det.score_images(probe), ref.score_images(probe))

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = (30000).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    huge = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")
    (good / "huge.png").write_bytes(huge)
    with pytest.raises(BGADError, match=r"huge.png: .*30000×30000 exceeds the limit"):
        Detector(**FAST).fit_folders(good)
    det = Detector(**FAST).fit_folders(good, skip_bad=True)
    assert [Path(p).name for p, _ in det.skipped_] == ["huge.png"]


def test_tiled_training_with_defect_strips_and_masks(tmp_path):
    """bgad on strips: tiles of a defect image whose mask is empty are left out, RPAG pastes
    on tiles; the known defect kind is found on new strips."""
    rng = np.random.default_rng(7)

    def strip(defect):
        img = rng.integers(0, 60, (48, 400), dtype=np.uint8)
        mask = np.zeros(img.shape, np.uint8)
        if defect is not None:
            img[10:22, defect:defect + 12] = 230
            mask[10:22, defect:defect + 12] = 255
        return img, mask

    for i in range(8):
        _png(tmp_path / "good" / f"g{i}.png", strip(None)[0])
    for i, x in enumerate((30, 200, 350)):
        img, mask = strip(x)
        _png(tmp_path / "bad" / f"b{i}.png", img)
        _png(tmp_path / "masks" / f"b{i}_mask.png", mask)
    det = Detector(seed=0, image_size=48, steps=60, rpag_per_anomaly=2, progress=False)
    det.fit_folders(tmp_path / "good", tmp_path / "bad", tmp_path / "masks")
    new = [strip(None)[0] for _ in range(4)] + [strip(int(x))[0] for x in rng.integers(0, 380, 4)]
    scores = det.score_images(new)
    assert scores[4:].min() > scores[:4].max(), scores
    # a mask without any defect pixel is an error naming it
    _png(tmp_path / "masks2" / "b0.png", np.zeros((48, 400), np.uint8))
    with pytest.raises(BGADError, match=r"mask 0 \(.*masks2/b0.png\) has no defect pixel"):
        Detector(seed=0, image_size=48, steps=5, progress=False).fit_folders(
            tmp_path / "good", tmp_path / "bad", tmp_path / "masks2")
