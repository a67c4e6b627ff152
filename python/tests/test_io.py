"""bgad.io: PNG decoding of every colour type and bit depth, bit-exact against files
written here byte by byte (numpy + zlib), cross-checked with Pillow; errors on bad files."""

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from bgad import BGADError, io

# ----------------------------------------------------------------- a tiny PNG writer

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(samples: np.ndarray, bit_depth: int, filter_type: int) -> bytes:
    """Rows of an (h, w, s) sample array as filtered scanlines (filter 0 None, 1 Sub, 2 Up)."""
    h, w, s = samples.shape
    out = bytearray()
    prior = None
    for y in range(h):
        row = samples[y].reshape(-1)
        if bit_depth == 16:
            raw = row.astype(">u2").tobytes()
        elif bit_depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:
            per = 8 // bit_depth
            padded = np.zeros(((row.size + per - 1) // per) * per, np.uint16)
            padded[: row.size] = row
            groups = padded.reshape(-1, per)
            shifts = (8 - bit_depth * (np.arange(per) + 1)).astype(np.uint16)
            raw = (groups << shifts).sum(axis=1).astype(np.uint8).tobytes()
        raw = np.frombuffer(raw, np.uint8).astype(np.int32)
        bpp = max(1, s * bit_depth // 8)
        if filter_type == 1:
            left = np.concatenate([np.zeros(bpp, np.int32), raw[:-bpp]])
            line = (raw - left) % 256
        elif filter_type == 2:
            up = prior if prior is not None else np.zeros_like(raw)
            line = (raw - up) % 256
        else:
            line = raw
        prior = raw
        out.append(filter_type)
        out += line.astype(np.uint8).tobytes()
    return bytes(out)


def png_bytes(samples, color_type, bit_depth, palette=None, trns=None, interlace=False, filter_type=0, gamma=None):
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, s = samples.shape
    assert s == SAMPLES[color_type]
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", ihdr)]
    if gamma is not None:
        parts.append(chunk(b"gAMA", struct.pack(">I", gamma)))
    if palette is not None:
        parts.append(chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes()))
    if trns is not None:
        parts.append(chunk(b"tRNS", trns))
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += pack_rows(sub, bit_depth, filter_type)
    else:
        raw = pack_rows(samples, bit_depth, filter_type)
    # two IDAT chunks, to exercise chunk boundaries
    z = zlib.compress(raw, 9)
    half = len(z) // 2
    parts += [chunk(b"IDAT", z[:half]), chunk(b"IDAT", z[half:]), chunk(b"IEND", b"")]
    return b"".join(parts)


def luma(rgb):
    rgb = rgb.astype(np.uint32)
    return ((19595 * rgb[..., 0] + 38470 * rgb[..., 1] + 7471 * rgb[..., 2] + 0x8000) >> 16).astype(np.uint8)


def to8(samples, bit_depth):
    """The documented normalisation to 8 bits: high byte of 16-bit, bit replication below 8."""
    samples = np.asarray(samples, np.int64)
    if bit_depth == 16:
        return (samples >> 8).astype(np.uint8)
    if bit_depth == 8:
        return samples.astype(np.uint8)
    return (samples * 255 // ((1 << bit_depth) - 1)).astype(np.uint8)


CASES = [(0, d) for d in (1, 2, 4, 8, 16)] + [(2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8), (4, 8), (4, 16), (6, 8), (6, 16)]


def make_case(rng, color_type, bit_depth, h, w):
    s = SAMPLES[color_type]
    top = (1 << bit_depth) - 1
    samples = rng.integers(0, top + 1, (h, w, s), dtype=np.int64)
    samples[0, 0] = top  # extremes present
    samples[-1, -1] = 0
    palette = None
    if color_type == 3:
        palette = rng.integers(0, 256, (top + 1, 3))
    return samples, palette


def expected(samples, color_type, bit_depth, palette):
    """(gray, rgb) expected from the raw samples by the documented rules."""
    if color_type == 3:
        rgb = np.asarray(palette, np.uint8)[samples[..., 0]]
        return luma(rgb), rgb
    v = to8(samples, bit_depth)
    if color_type in (0, 4):
        g = v[..., 0]
        return g, np.repeat(g[..., None], 3, axis=2)
    rgb = v[..., :3]
    return luma(rgb), rgb


@pytest.mark.parametrize("color_type,bit_depth", CASES)
@pytest.mark.parametrize("interlace", [False, True])
def test_decode_is_bit_exact_for_every_colour_type_and_bit_depth(color_type, bit_depth, interlace, tmp_path):
    rng = np.random.default_rng(color_type * 100 + bit_depth + 7 * interlace)
    for h, w, filt in [(1, 1, 0), (3, 5, 1), (13, 17, 2), (37, 9, 0)]:
        samples, palette = make_case(rng, color_type, bit_depth, h, w)
        trns = None
        if color_type == 3:
            trns = bytes(rng.integers(0, 256, 2).astype(np.uint8))
        elif color_type == 0:
            trns = struct.pack(">H", 0)
        data = png_bytes(samples, color_type, bit_depth, palette, trns, interlace, filt, gamma=45455 if filt else None)
        path = tmp_path / f"c{color_type}_{bit_depth}_{h}x{w}.png"
        path.write_bytes(data)
        gray, rgb = expected(samples, color_type, bit_depth, palette)
        np.testing.assert_array_equal(io.read_png(path, "gray"), gray)
        np.testing.assert_array_equal(io.read_png(path, "rgb"), rgb)
        native = io.read_png(path)
        np.testing.assert_array_equal(native, gray if color_type in (0, 4) else rgb)
        assert native.dtype == np.uint8


@pytest.mark.parametrize("color_type,bit_depth", [c for c in CASES if c[1] <= 8])
def test_decode_agrees_with_pillow_for_8_bit_and_below(color_type, bit_depth, tmp_path):
    rng = np.random.default_rng(5 + color_type * 10 + bit_depth)
    samples, palette = make_case(rng, color_type, bit_depth, 19, 23)
    path = tmp_path / "p.png"
    path.write_bytes(png_bytes(samples, color_type, bit_depth, palette, filter_type=1))
    with Image.open(path) as im:
        ref_rgb = np.array(im.convert("RGB"))
        ref_gray = np.array(im.convert("RGB").convert("L"))
    np.testing.assert_array_equal(io.read_png(path, "rgb"), ref_rgb)
    np.testing.assert_array_equal(io.read_png(path, "gray"), ref_gray)


def test_16_bit_rgb_keeps_high_byte_like_pillow(tmp_path):
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 65536, (11, 7, 3))
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(samples, 2, 16))
    with Image.open(path) as im:
        np.testing.assert_array_equal(io.read_png(path, "rgb"), np.array(im.convert("RGB")))
    np.testing.assert_array_equal(io.read_png(path, "rgb"), (samples >> 8).astype(np.uint8))


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (64, 65), (5, 4, 3), (33, 31, 3)])
def test_write_then_read_round_trip_and_pillow_reads_it(shape, tmp_path):
    a = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "w.png"
    io.write_png(path, a)
    np.testing.assert_array_equal(io.read_png(path), a)
    with Image.open(path) as im:
        np.testing.assert_array_equal(np.array(im), a)
    assert [p.name for p in tmp_path.iterdir()] == ["w.png"]  # no temporary file left


def test_write_accepts_bool_and_single_channel(tmp_path):
    m = np.eye(4, dtype=bool)
    io.write_png(tmp_path / "m.png", m)
    np.testing.assert_array_equal(io.read_png(tmp_path / "m.png"), m * 255)
    io.write_png(tmp_path / "c.png", np.full((3, 3, 1), 9, np.uint8))
    assert io.read_png(tmp_path / "c.png").shape == (3, 3)


def test_write_replaces_existing_file_atomically(tmp_path):
    path = tmp_path / "x.png"
    io.write_png(path, np.zeros((4, 4), np.uint8))
    io.write_png(path, np.full((6, 2, 3), 200, np.uint8))
    assert io.read_png(path).shape == (6, 2, 3)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 2, 4), np.uint8), "shape"),
        (np.zeros((0, 3), np.uint8), "empty"),
        (np.zeros((2, 2), np.float32), "uint8"),
        (np.full((2, 2), 300, np.int32), "0..255"),
    ],
)
def test_write_rejects_bad_arrays(array, message, tmp_path):
    with pytest.raises(BGADError, match=message):
        io.write_png(tmp_path / "bad.png", array)


def test_write_to_missing_folder_is_an_io_error(tmp_path):
    with pytest.raises(BGADError) as info:
        io.write_png(tmp_path / "no" / "such" / "x.png", np.zeros((2, 2), np.uint8))
    assert info.value.status == 2


def good_png():
    rng = np.random.default_rng(11)
    return png_bytes(rng.integers(0, 256, (40, 30, 3)), 2, 8, filter_type=1)


def test_missing_file_and_directory_are_io_errors(tmp_path):
    for p in [tmp_path / "missing.png", tmp_path]:
        with pytest.raises(BGADError) as info:
            io.read_png(p)
        assert info.value.status == 2


@pytest.mark.parametrize("data", [b"", b"hello world, not a png", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_non_png_and_empty_data_are_format_errors(data, tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(BGADError) as info:
        io.read_png(path)
    assert info.value.status == 3


def test_every_truncation_is_a_format_error(tmp_path):
    data = good_png()
    path = tmp_path / "t.png"
    for n in list(range(0, 80)) + list(range(80, len(data) - 12, 37)) + [len(data) - 12, len(data) - 1]:
        path.write_bytes(data[:n])
        with pytest.raises(BGADError) as info:
            io.read_png(path)
        assert info.value.status == 3, n


def test_corrupt_crc_and_compressed_data_are_format_errors(tmp_path):
    data = bytearray(good_png())
    bad_crc = bytearray(data)
    bad_crc[29] ^= 0xFF  # last byte of the IHDR CRC
    bad_idat = bytearray(data)
    idat = data.index(b"IDAT")
    bad_idat[idat + 10] ^= 0x55  # inside the compressed stream: CRC mismatch
    for blob in (bad_crc, bad_idat):
        with pytest.raises(BGADError) as info:
            io.decode_png(bytes(blob))
        assert info.value.status == 3


def test_absurd_dimensions_are_rejected_before_allocation():
    for w, h in [(100_000, 100_000), (1 << 30, 2), (20_000, 20_000)]:
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
        with pytest.raises(BGADError, match="limit|corrupt|exceeds|invalid|too large") as info:
            io.decode_png(data)
        assert info.value.status == 3


def test_random_corruptions_never_crash():
    """Each mutated file either decodes to the right shape or raises BGADError."""
    data = good_png()
    rng = np.random.default_rng(0)
    for _ in range(400):
        blob = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            blob[int(rng.integers(8, len(blob)))] = int(rng.integers(0, 256))
        try:
            out = io.decode_png(bytes(blob), "rgb")
            assert out.dtype == np.uint8 and out.ndim == 3
        except BGADError as exc:
            assert exc.status == 3


def test_bad_mode_is_rejected(tmp_path):
    with pytest.raises(BGADError, match="mode"):
        io.decode_png(good_png(), "cmyk")


def test_pillow_written_16_bit_gray_reads_as_high_byte(tmp_path):
    """Documented difference: we keep v >> 8; Pillow's I;16 -> L conversion clips at 255."""
    a = np.array([[0, 255, 256, 1000, 40000, 65535]], np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(a).save(path)
    np.testing.assert_array_equal(io.read_png(path), (a >> 8).astype(np.uint8))
    with Image.open(path) as im:
        assert np.array(im.convert("L")).tolist() == [[0, 255, 255, 255, 255, 255]]


def test_special_files_are_refused_not_read_to_the_end():
    import os
    import bgad

    for path in ("/dev/zero", "/tmp"):
        if os.path.exists(path):
            with pytest.raises(bgad.BGADError) as err:
                bgad.io.read_png(path)
            assert err.value.status == 2


def test_paths_with_a_nul_byte_are_refused_everywhere(tmp_path):
    import numpy as np
    import bgad

    bad = str(tmp_path / "a.png") + "\0.x"
    with pytest.raises(bgad.BGADError, match="NUL"):
        bgad.io.write_png(bad, np.zeros((4, 4), np.uint8))
    assert not (tmp_path / "a.png").exists()
    with pytest.raises(bgad.BGADError, match="NUL"):
        bgad.Detector.load(bad)
    with pytest.raises(bgad.BGADError, match="NUL"):
        bgad.BGAD.load(bad)


def test_one_image_module_holds_the_image_helpers():
    """read_image, read_mask, resize and to_rgb live in bgad.io; the old places name the
    same functions (no second copy)."""
    import bgad

    assert bgad.detector.read_image is bgad.io.read_image and bgad.detector.read_mask is bgad.io.read_mask
    assert bgad.backbone.resize is bgad.io.resize
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = bgad.io.to_rgb(gray)
    assert rgb.shape == (3, 4, 3) and all((rgb[..., k] == gray).all() for k in range(3))
    assert bgad.io.to_rgb(rgb) is rgb
    np.testing.assert_array_equal(bgad.io.read_image(gray, mode="rgb"), rgb)
    mask = bgad.io.read_mask(np.array([[0, 3], [7, 0]], np.uint8), None)
    np.testing.assert_array_equal(mask, [[0, 1], [1, 0]])
    np.testing.assert_array_equal(bgad.io.read_mask(None, (2, 3)), np.ones((2, 3), np.uint8))
