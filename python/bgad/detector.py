"""``bgad.Detector``: images in, anomaly maps out.

The pipeline (each stage is the Swift engine):
backbone (EfficientNet-Lite0, strides 4/8/16) → RPAG pseudo anomalies (training only) →
BGAD model (one conditional flow per level, explicit boundary, calibrated scoring).

Example::

    det = bgad.Detector(variant="bgad", seed=0)
    det.fit(normal_paths, anomalous_images=defect_paths, anomaly_masks=mask_paths)
    for p in det.predict(test_paths):
        print(p.score, p.is_anomalous, p.anomaly_map.shape)
    det.save("model.bgad"); det2 = bgad.Detector.load("model.bgad")
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from ._native import BGADError

ImageLike = Union[str, os.PathLike, np.ndarray]

_MAGIC = b"BGADDET\x00"

#: BGAD hyper-parameters of the Detector unless given: a budget of optimizer steps that does
#: not depend on the number of images (docs/TRAINING.md), lr 2e-3.
SHORT_RECIPE = {"steps": 1500, "lr": 2e-3}
#: Backbone strides the recipe uses as feature levels (the paper's stride-4 level holds
#: 76 % of the vectors and adds cost but no accuracy on ELPV).
RECIPE_LEVELS = (8, 16)
_FORMAT_VERSION = 1


@dataclass
class Prediction:
    """The result for one image.

    Attributes:
        score: image anomaly score (max of the anomaly map at the model resolution).
        anomaly_map: ``(H, W)`` float32 anomaly map at the input image's size.
        is_anomalous: ``score > threshold`` with the model's calibrated threshold.
    """

    score: float
    anomaly_map: np.ndarray
    is_anomalous: bool


def _tqdm(iterable, total=None, desc=None, enabled=True):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm  # type: ignore
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


def read_image(src: ImageLike, mode: Optional[str] = None) -> np.ndarray:
    """Reads an image: a uint8 array is returned as is; a path is decoded (PNG by the
    engine, other formats through Pillow). ``mode`` = ``"gray"``, ``"rgb"`` or ``None``
    (as stored)."""
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8:
            raise BGADError(f"image arrays must be uint8, got {src.dtype}")
        if src.ndim not in (2, 3) or (src.ndim == 3 and src.shape[2] not in (1, 3)):
            raise BGADError(f"image arrays must be (H, W) or (H, W, 3), got shape {src.shape}")
        img = src[..., 0] if src.ndim == 3 and src.shape[2] == 1 else src
    else:
        path = Path(src)
        if not path.is_file():
            raise BGADError(f"image file not found: {path}")
        if path.suffix.lower() == ".png":
            from . import io

            img = io.read_png(str(path))
        else:
            try:
                from PIL import Image  # type: ignore
            except ImportError:
                raise BGADError(f"{path}: only PNG is read natively; install Pillow for {path.suffix} files") from None
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB" if im.mode not in ("L", "I;16", "I") else "L"))
            if img.dtype != np.uint8:
                img = (img >> 8).astype(np.uint8)
    if mode == "gray" and img.ndim == 3:
        img = np.round(img @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
    elif mode == "rgb" and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img)


def read_mask(src: Union[ImageLike, None], shape) -> np.ndarray:
    """A binary uint8 mask (1 = defect) from a path or array; ``None`` → whole image."""
    if src is None:
        return np.ones(shape, np.uint8)
    m = read_image(src) if not isinstance(src, np.ndarray) or src.dtype == np.uint8 else np.asarray(src)
    if m.ndim == 3:
        m = m.max(axis=2)
    return (np.asarray(m) > 0).astype(np.uint8)


class Detector:
    """BGAD anomaly detector on images, with the built-in EfficientNet-Lite0 backbone.

    Args:
        variant: ``"bgad"`` (default), ``"bgad_wo"`` (no anomalies, semi-pull only) or
            ``"nfad"`` (ML loss only, the unsupervised baseline).
        seed: seed of every random choice (RPAG, shuffling, initialisation).
        image_size: side of the square model input (images are resized to it).
        real_repeats: how often each real known anomaly is repeated in training (authors: 5).
        rpag_per_anomaly: RPAG samples generated per known anomaly (authors: 10; 0 = off).
        foreground: foreground rule for RPAG pasting: ``"otsu"`` or ``"whole"``.
        levels: backbone strides used as feature levels (default ``(8, 16)``; the paper uses
            ``(4, 8, 16)``, whose stride-4 level holds 76 % of the vectors).
        progress: show tqdm progress bars.
        batch_size: images per backbone call.
        **hyperparameters: passed to :class:`bgad.BGAD`. Defaults here are the short CPU
            recipe validated on ELPV (``meta_epochs=4, sub_epochs=2, lr=2e-3,
            warmup_epochs=1``, see docs/ELPV.md) instead of the authors' 25 × 8 epochs at
            lr 2e-4; every other hyper-parameter keeps the authors' default.
    """

    def __init__(
        self,
        variant: str = "bgad",
        seed: int = 0,
        image_size: int = 256,
        real_repeats: int = 5,
        rpag_per_anomaly: int = 10,
        foreground: str = "otsu",
        levels: Sequence[int] = RECIPE_LEVELS,
        progress: bool = True,
        batch_size: int = 16,
        **hyperparameters: Any,
    ):
        if variant not in ("bgad", "bgad_wo", "nfad"):
            raise BGADError(f"variant must be 'bgad', 'bgad_wo' or 'nfad', got {variant!r}")
        if image_size < 32:
            raise BGADError(f"image_size must be >= 32, got {image_size}")
        self.variant = variant
        self.seed = int(seed)
        self.image_size = int(image_size)
        self.real_repeats = int(real_repeats)
        self.rpag_per_anomaly = int(rpag_per_anomaly)
        self.foreground = foreground
        self.progress = progress
        self.batch_size = int(batch_size)
        self.levels = tuple(int(v) for v in levels)
        if not self.levels or any(v not in (4, 8, 16, 32) for v in self.levels):
            raise BGADError(f"levels must be backbone strides among 4, 8, 16, 32, got {levels!r}")
        self.hyperparameters = {**SHORT_RECIPE, **hyperparameters}
        self._backbone = None
        self.model = None

    # ------------------------------------------------------------------ pieces

    @property
    def backbone(self):
        """The feature extractor (created on first use)."""
        if self._backbone is None:
            from .backbone import EfficientNetLite0

            self._backbone = EfficientNetLite0()
        return self._backbone

    def get_params(self) -> Dict[str, Any]:
        """The detector's parameters (and the BGAD model's, once fitted)."""
        params = {
            "variant": self.variant,
            "seed": self.seed,
            "image_size": self.image_size,
            "real_repeats": self.real_repeats,
            "rpag_per_anomaly": self.rpag_per_anomaly,
            "foreground": self.foreground,
            "batch_size": self.batch_size,
            "levels": list(self.levels),
            **self.hyperparameters,
        }
        if self.model is not None:
            params["model"] = self.model.get_params()
        return params

    def _prepare(self, src: ImageLike) -> np.ndarray:
        from .backbone import resize

        img = read_image(src)
        if img.shape[:2] != (self.image_size, self.image_size):
            img = resize(img, (self.image_size, self.image_size), mode="bilinear")
        return img

    def _features(self, images: Sequence[np.ndarray], desc: str) -> List[np.ndarray]:
        """Backbone features of prepared images, batched; a list of (N, C, H, W) per level."""
        chunks: List[List[np.ndarray]] = []
        starts = range(0, len(images), self.batch_size)
        for s in _tqdm(starts, total=len(starts), desc=desc, enabled=self.progress):
            batch = images[s : s + self.batch_size]
            same_kind = [np.repeat(b[..., None], 3, 2) if b.ndim == 2 else b for b in batch]
            chunks.append(self.backbone.features(np.stack(same_kind), levels=self.levels, size=self.image_size))
        return [np.concatenate([c[level] for c in chunks]) for level in range(len(chunks[0]))]

    # ------------------------------------------------------------------ training

    def fit(
        self,
        normal_images: Sequence[ImageLike],
        anomalous_images: Optional[Sequence[ImageLike]] = None,
        anomaly_masks: Optional[Sequence[Union[ImageLike, None]]] = None,
    ) -> "Detector":
        """Trains on normal images and (optionally) a few known anomalies with masks.

        Args:
            normal_images: paths or uint8 arrays of good parts.
            anomalous_images: paths or arrays of known defects (ignored by ``nfad``/``bgad_wo``).
            anomaly_masks: one mask per anomalous image (path, array, or ``None`` = the whole
                image is anomalous). Omitted → whole-image masks.
        Returns:
            self.
        """
        from .model import BGAD

        if len(normal_images) == 0:
            raise BGADError("fit needs at least one normal image")
        anomalous_images = list(anomalous_images or [])
        if anomaly_masks is None:
            anomaly_masks = [None] * len(anomalous_images)
        anomaly_masks = list(anomaly_masks)
        if len(anomaly_masks) != len(anomalous_images):
            raise BGADError(
                f"got {len(anomalous_images)} anomalous images but {len(anomaly_masks)} masks"
            )
        normals = [self._prepare(p) for p in _tqdm(normal_images, total=len(normal_images), desc="reading", enabled=self.progress)]
        normal_feats = self._features(normals, "features (normal)")

        anomalous_feats, masks = None, None
        if anomalous_images and self.variant == "bgad":
            from .backbone import resize

            anoms, anom_masks = [], []
            for img_src, mask_src in zip(anomalous_images, anomaly_masks):
                img = self._prepare(img_src)
                if mask_src is None:
                    mask = np.ones((self.image_size, self.image_size), np.uint8)
                else:
                    mask = read_mask(mask_src, None)
                    if mask.shape != (self.image_size, self.image_size):
                        mask = resize(mask, (self.image_size, self.image_size), mode="nearest")
                anoms.append(img)
                anom_masks.append(mask)
            train_imgs, train_masks = [], []
            for img, mask in zip(anoms, anom_masks):
                train_imgs += [img] * self.real_repeats
                train_masks += [mask] * self.real_repeats
            if self.rpag_per_anomaly > 0:
                from .rpag import RPAG

                gen = RPAG(seed=self.seed)
                rng = np.random.default_rng(self.seed)
                for img, mask in zip(anoms, anom_masks):
                    for _ in range(self.rpag_per_anomaly):
                        normal = normals[int(rng.integers(len(normals)))]
                        a, n = img, normal
                        if a.ndim != n.ndim:
                            a = np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a
                            n = np.repeat(n[..., None], 3, 2) if n.ndim == 2 else n
                        fg = None if self.foreground == "otsu" else np.ones(n.shape[:2], np.uint8)
                        new_img, new_mask = gen.generate(n, a, mask, foreground=fg)
                        if new_mask.any():
                            train_imgs.append(new_img)
                            train_masks.append(new_mask)
            anomalous_feats = self._features(train_imgs, "features (anomalous)")
            masks = np.stack(train_masks).astype(np.uint8)

        model = BGAD(variant=self.variant, seed=self.seed, progress=self.progress, **self.hyperparameters)
        model.fit(normal_feats, anomalous_feats, masks, image_size=self.image_size)
        self.model = model
        return self

    # ------------------------------------------------------------------ scoring

    def _require_fitted(self):
        if self.model is None:
            raise BGADError("this Detector is not fitted: call fit() or Detector.load()")

    def score_images(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Image anomaly scores (higher = more anomalous) as a float64 array."""
        return np.array([p.score for p in self.predict(images, maps=False)])

    def predict(self, images: Union[ImageLike, Sequence[ImageLike]], maps: bool = True) -> List[Prediction]:
        """Scores images (paths or uint8 arrays of any size).

        A single uint8 array is one image when it is ``(H, W)`` or ``(H, W, 1 | 3)``; any
        other array is a batch along its first axis. A stack of gray images whose width is
        1 or 3 is therefore read as one image: pass a list to be unambiguous.

        Returns:
            one :class:`Prediction` per image; ``anomaly_map`` is at the image's own size
            (``None`` when ``maps=False``).
        """
        from .backbone import resize

        self._require_fitted()
        if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim in (2, 3) and not (images.ndim == 3 and images.shape[2] not in (1, 3))):
            images = [images]
        results: List[Prediction] = []
        starts = range(0, len(images), self.batch_size)
        for s in _tqdm(starts, total=len(starts), desc="predict", enabled=self.progress):
            originals = [read_image(p) for p in images[s : s + self.batch_size]]
            prepared = []
            for img in originals:
                x = img if img.shape[:2] == (self.image_size, self.image_size) else resize(img, (self.image_size, self.image_size), mode="bilinear")
                prepared.append(np.repeat(x[..., None], 3, 2) if x.ndim == 2 else x)
            feats = self.backbone.features(np.stack(prepared), levels=self.levels, size=self.image_size)
            amaps = self.model.score_maps(feats, (self.image_size, self.image_size))
            scores = amaps.reshape(len(amaps), -1).max(axis=1)
            threshold = self.model.image_threshold_
            for img, amap, score in zip(originals, amaps, scores):
                full = None
                if maps:
                    full = amap if img.shape[:2] == amap.shape else resize(amap.astype(np.float32), img.shape[:2], mode="bilinear")
                results.append(Prediction(float(score), full, bool(score > threshold)))
        return results

    # ------------------------------------------------------------------ persistence

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes one file holding everything needed to score (atomically: temp + rename).

        Layout: magic, format version, JSON header (detector parameters, backbone identity),
        the BGAD model file, CRC32 of everything before it.
        """
        self._require_fitted()
        path = Path(path)
        header = {
            "detector": {k: v for k, v in self.get_params().items() if k != "model"},
            "backbone": {"name": "efficientnet-lite0", "source_sha256": getattr(self.backbone, "source_sha256", None)},
        }
        with tempfile.TemporaryDirectory() as tmp:
            mpath = Path(tmp) / "model.bin"
            self.model.save(mpath)
            model_bytes = mpath.read_bytes()
        head = json.dumps(header).encode()
        body = _MAGIC + struct.pack("<II", _FORMAT_VERSION, len(head)) + head + struct.pack("<Q", len(model_bytes)) + model_bytes
        body += struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
        fd, tmpname = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmpname, path)
        except BaseException:
            try:
                os.unlink(tmpname)
            except OSError:
                pass
            raise

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Detector":
        """Loads a detector written by :meth:`save`; a corrupt or foreign file raises BGADError."""
        from .model import BGAD

        path = Path(path)
        if not path.is_file():
            raise BGADError(f"detector file not found: {path}")
        data = path.read_bytes()
        if len(data) < len(_MAGIC) + 12 or not data.startswith(_MAGIC):
            raise BGADError(f"{path} is not a bgad detector file (bad magic)")
        if struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]) & 0xFFFFFFFF:
            raise BGADError(f"{path} is corrupt (checksum mismatch) or truncated")
        version, hlen = struct.unpack("<II", data[8:16])
        if version > _FORMAT_VERSION:
            raise BGADError(f"{path} has format version {version}; this bgad reads up to {_FORMAT_VERSION}")
        header = json.loads(data[16 : 16 + hlen])
        (mlen,) = struct.unpack("<Q", data[16 + hlen : 24 + hlen])
        model_bytes = data[24 + hlen : 24 + hlen + mlen]
        if len(model_bytes) != mlen:
            raise BGADError(f"{path} is truncated")
        params = dict(header["detector"])
        det = cls(**{k: params.pop(k) for k in list(params) if k in ("variant", "seed", "image_size", "real_repeats", "rpag_per_anomaly", "foreground", "batch_size", "levels")}, **params)
        with tempfile.TemporaryDirectory() as tmp:
            mpath = Path(tmp) / "model.bin"
            mpath.write_bytes(model_bytes)
            det.model = BGAD.load(mpath, progress=False)
        return det


__all__ = ["Detector", "Prediction", "read_image", "read_mask"]
