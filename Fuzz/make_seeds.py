"""Writes the fuzzers' seed corpora (small files; committed under Fuzz/Corpus):

- png/: tiny PNGs of every colour type and bit depth, palette, alpha, interlaced (Pillow);
- model/: a trained model file of two tiny levels (one coupling block, condition width 4)
  and an untrained one (written by the built fuzzer: `FuzzModelFile --write-seeds`);
- detector/: detector files without backbone weights (unfitted, a few configurations) and
  one whose fitted section holds a short, invalid weight blob (a fitted detector embeds
  megabytes of weights: too large for a seed).

Run (after `make fuzz-build`): python3 Fuzz/make_seeds.py
"""

import io
import subprocess
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent / "Corpus"
FUZZERS = HERE.parents[1] / ".build-fuzz" / "release"
rng = np.random.default_rng(0)


def png(name, array, mode, **kw):
    buf = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buf, "PNG", **kw)
    (HERE / "png" / name).write_bytes(buf.getvalue())


def pngs():
    g = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    png("gray8.png", g, "L")
    png("gray1.png", (g > 128), None)
    png("rgb8.png", rgb, "RGB")
    png("rgba8.png", rng.integers(0, 256, (3, 5, 4), dtype=np.uint8), "RGBA")
    png("gray_alpha.png", rng.integers(0, 256, (4, 4, 2), dtype=np.uint8), "LA")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(HERE / "png" / "palette4.png", bits=2)
    Image.fromarray(g).save(HERE / "png" / "interlaced.png", interlace=1)
    Image.fromarray(rng.integers(0, 65535, (4, 5), dtype=np.uint16)).save(HERE / "png" / "gray16.png")


def models():
    """The model seeds come from the engine (the Python API has no knob for the condition
    width, and its default of 128 makes files of 100s of kB)."""
    subprocess.run([str(FUZZERS / "FuzzModelFile"), "--write-seeds", str(HERE / "model")], check=True)


def detector_file(json_text: bytes, fitted: bytes = b"\0") -> bytes:
    body = struct.pack("<I", len(json_text)) + json_text + fitted
    head = b"BGADDET\0" + struct.pack("<IIQ", 2, 0, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head))


def detectors():
    d = HERE / "detector"
    d.joinpath("unfitted.bgad").write_bytes(detector_file(b'{"image_size": 64}'))
    d.joinpath("settings.bgad").write_bytes(detector_file(
        b'{"variant": "nfad", "strides": [8, 16, 32], "foreground": "whole", "lr": 0.001, "focal": true}'))
    model = (HERE / "model" / "trained.bgad").read_bytes()
    fitted = b"\1" + struct.pack("<I", 5) + b"lite0" + struct.pack("<I", 0) + struct.pack("<Q", 32) + b"BGADEFL0" + bytes(24) \
        + struct.pack("<Q", len(model)) + model
    d.joinpath("fitted_bad_weights.bgad").write_bytes(detector_file(b"{}", fitted))


if __name__ == "__main__":
    pngs()
    models()
    detectors()
    for f in sorted(HERE.rglob("*")):
        if f.is_file():
            print(f.relative_to(HERE), f.stat().st_size)
