"""Images of any shape: the engine covers strips and large images with square tiles at the
model resolution (``tiling``), so a small defect that squashing erases is found; maps come
back at full size; a batch scores as the images one by one; old files keep ``tiling="off"``."""

import numpy as np
import pytest

from bgad import BGADError
from bgad.detector import Detector

SIZE = 64
H, W = 64, 512  # a strip, aspect 8: tiled by "auto"


def _strip(rng, defect=None, noise=4, h=H, w=W):
    """Vertical stripes of period 2 (40/215) under a random smooth illumination and coarse
    blotches, plus noise; ``defect`` = (y, x) of a 14×14 patch without stripes, at their local mean:
    squashing the width by 8 averages stripes and patch to the same gray."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    light = (rng.uniform(-12, 12) + 8 * np.sin(2 * np.pi * xx / w * rng.uniform(0.5, 2) + rng.uniform(0, 6.3))
             + 6 * np.sin(2 * np.pi * yy / h + rng.uniform(0, 6.3)))
    img = np.where(xx.astype(int) % 2 == 1, 215.0, 40.0)
    if defect is not None:
        y, x = defect
        img[y:y + 14, x:x + 14] = 127.5
    blotches = np.kron(rng.normal(0, 6, (h // 4, w // 8)), np.ones((4, 8)))  # coarse, survives squashing
    img = img + light + blotches + rng.normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def detectors():
    rng = np.random.default_rng(0)
    normal = [_strip(rng) for _ in range(16)]
    common = dict(variant="nfad", image_size=SIZE, steps=300, seed=0, progress=False)
    tiled = Detector(tiling="auto", **common).fit(normal)
    squashed = Detector(tiling="off", **common).fit(normal)
    return tiled, squashed


def test_a_small_defect_in_a_strip_is_found_tiled_and_lost_squashed(detectors):
    tiled, squashed = detectors
    rng = np.random.default_rng(1)
    good = [_strip(rng) for _ in range(6)]
    bad = [_strip(rng, defect=(int(rng.integers(5, 50)), int(rng.integers(5, 490)))) for _ in range(6)]
    t = tiled.score_images(good + bad)
    s = squashed.score_images(good + bad)
    assert t[6:].min() > t[:6].max(), t          # tiled: every defect above every good strip

    def auroc(v):
        return np.mean([[b > g for g in v[:6]] for b in v[6:]])

    assert auroc(t) == 1.0
    # squashed: the stripes and the patch average to the same gray, the defect is lost in
    # the blotches (a few gray levels at its edges remain): near chance
    assert auroc(s) < 0.8, s


def test_a_small_defect_in_a_large_image_is_found_tiled_and_lost_squashed():
    """512 × 512 at image_size 64: the short side exceeds 4 model inputs, so "auto" tiles."""
    rng = np.random.default_rng(5)
    side = 512
    normal = [_strip(rng, h=side, w=side) for _ in range(6)]
    common = dict(variant="nfad", image_size=SIZE, steps=300, seed=0, progress=False)
    tiled = Detector(**common).fit(normal)
    squashed = Detector(tiling="off", **common).fit(normal)
    good = [_strip(rng, h=side, w=side) for _ in range(5)]
    bad = [_strip(rng, defect=tuple(int(v) for v in rng.integers(5, 490, 2)), h=side, w=side) for _ in range(5)]
    t, s = tiled.score_images(good + bad), squashed.score_images(good + bad)
    assert t[5:].min() > t[:5].max(), t
    assert np.mean([[b > g for g in s[:5]] for b in s[5:]]) < 0.8, s


def test_tiled_maps_are_full_size_and_point_at_the_defect(detectors):
    tiled, _ = detectors
    rng = np.random.default_rng(2)
    img = _strip(rng, defect=(30, 300))
    (p,) = tiled.predict([img])
    assert p.anomaly_map.shape == (H, W) and np.isfinite(p.anomaly_map).all()
    y, x = np.unravel_index(np.argmax(p.anomaly_map), p.anomaly_map.shape)
    assert 30 - 8 <= y < 44 + 8 and 300 - 8 <= x < 314 + 8, (y, x)
    # RGB and gray of the same strip, a tall strip, a large image: full-size maps
    rgb = np.repeat(img[..., None], 3, axis=2)
    np.testing.assert_array_equal(tiled.predict([rgb])[0].anomaly_map, p.anomaly_map)
    for shape in [(W, H), (300, 300), (1, 1), (3, 700)]:
        (q,) = tiled.predict([rng.integers(0, 255, shape, dtype=np.uint8)])
        assert q.anomaly_map.shape == shape and np.isfinite(q.score)


def test_tiled_batch_equals_one_by_one(detectors):
    tiled, _ = detectors
    rng = np.random.default_rng(3)
    images = [_strip(rng, defect=(10, 100)), rng.integers(0, 255, (80, 90), dtype=np.uint8), _strip(rng),
              rng.integers(0, 255, (700, 64), dtype=np.uint8)]
    together = tiled.predict(images)
    for img, p in zip(images, together):
        (q,) = tiled.predict([img])
        assert q.score == p.score
        np.testing.assert_array_equal(q.anomaly_map, p.anomaly_map)


def test_tiling_setting_is_saved_and_checked(detectors, tmp_path):
    tiled, squashed = detectors
    tiled.save(tmp_path / "t.bgad")
    assert Detector.load(tmp_path / "t.bgad").get_params()["tiling"] == "auto"
    squashed.save(tmp_path / "s.bgad")
    assert Detector.load(tmp_path / "s.bgad").get_params()["tiling"] == "off"
    with pytest.raises(BGADError, match="tiling must be 'auto', 'on' or 'off'"):
        Detector(tiling="sometimes")
    # a thin line needs more tiles than allowed: a clear error, not an enormous allocation
    with pytest.raises(BGADError, match="needs .* tiles"):
        tiled.predict([np.zeros((1, 30000), np.uint8)])


def _with_config(data: bytes, edit) -> bytes:
    """A detector file's bytes with its configuration JSON edited (lengths and CRC fixed):
    the layout of DetectorFile.swift (magic, version, reserved, body length, u32 + JSON, ..., CRC)."""
    import json
    import struct
    import zlib

    n = struct.unpack_from("<I", data, 24)[0]
    config = json.loads(data[28:28 + n])
    new = json.dumps(edit(config)).encode()
    body = struct.pack("<I", len(new)) + new + data[28 + n:-4]
    head = data[:16] + struct.pack("<Q", len(body))
    out = head + body
    return out + struct.pack("<I", zlib.crc32(out) & 0xFFFFFFFF)


def test_files_written_before_tiling_load_with_tiling_off(detectors):
    tiled, _ = detectors
    data = tiled.to_bytes()
    assert Detector.from_bytes(_with_config(data, lambda c: c)).get_params()["tiling"] == "auto"  # the edit is exact
    old = Detector.from_bytes(_with_config(data, lambda c: {k: v for k, v in c.items() if k != "tiling"}), progress=False)
    off = Detector.from_bytes(_with_config(data, lambda c: {**c, "tiling": "off"}), progress=False)
    assert old.get_params()["tiling"] == "off"
    strip = _strip(np.random.default_rng(4), defect=(20, 200))
    (a,), (b,), (t,) = old.predict([strip]), off.predict([strip]), tiled.predict([strip])
    assert a.score == b.score and np.array_equal(a.anomaly_map, b.anomaly_map)
    assert a.score != t.score  # tiling changes the numbers: the old file kept its behaviour
