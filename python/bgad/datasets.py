"""Data sets and evaluation protocols: ELPV (from the PyPI package ``elpv-dataset``) and
folders in the MVTec AD layout (MVTec AD, BTAD, MPDD and users' own data).

Every protocol returns a :class:`Split`: file paths for the normal training images, the
few known anomalies (with their masks), and the test set with labels. Known anomalies are
never in the test set; every random choice is seeded.

MVTec layout::

    <root>/train/good/*.png
    <root>/test/good/*.png
    <root>/test/<defect_type>/*.png
    <root>/ground_truth/<defect_type>/<stem>_mask.png
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ._native import BGADError
from .io import IMAGE_SUFFIXES  # noqa: F401  (re-exported: the loaders' image file suffixes)


@dataclass
class Split:
    """One train/test split of a protocol.

    Attributes:
        train_normal: paths of the normal training images.
        known_anomalies: paths of the known anomalous training images.
        known_masks: a mask path per known anomaly, or ``None`` (use the whole image).
        known_types: defect type of each known anomaly.
        test: paths of the test images.
        test_labels: 0 (normal) / 1 (anomalous) per test image.
        test_masks: a mask path per test image, or ``None`` (normal image, or no masks).
        test_types: ``"good"`` or the defect type of each test image.
        name: a short description of the protocol and its parameters.
    """

    train_normal: List[str]
    known_anomalies: List[str]
    known_masks: List[Optional[str]]
    known_types: List[str]
    test: List[str]
    test_labels: np.ndarray
    test_masks: List[Optional[str]]
    test_types: List[str]
    name: str = ""
    info: Dict[str, object] = field(default_factory=dict)

    def summary(self) -> str:
        """One line with the counts of the split."""
        n_anom = int(self.test_labels.sum())
        return (
            f"{self.name}: {len(self.train_normal)} train normal, {len(self.known_anomalies)} known anomalies "
            f"({', '.join(sorted(set(self.known_types))) or 'none'}), test {len(self.test) - n_anom} normal + "
            f"{n_anom} anomalous ({', '.join(sorted(set(t for t in self.test_types if t != 'good'))) or 'none'})"
        )


# --------------------------------------------------------------------------- ELPV


def elpv_root() -> Path:
    """Folder of the ELPV data shipped by the PyPI package ``elpv-dataset``."""
    try:
        import elpv_dataset  # type: ignore
    except ImportError:
        raise BGADError(
            "the ELPV data set needs the PyPI package 'elpv-dataset' (pip install elpv-dataset)"
        ) from None
    root = Path(elpv_dataset.__file__).resolve().parent / "data"
    if not (root / "labels.csv").is_file():
        raise BGADError(f"elpv-dataset is installed but {root / 'labels.csv'} is missing")
    return root


def elpv_table(root: Optional[Path] = None):
    """All ELPV cells: ``(paths, defect_probability, module_type)`` as numpy arrays."""
    root = Path(root) if root is not None else elpv_root()
    paths, probs, types = [], [], []
    with open(root / "labels.csv") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 3:
                continue
            paths.append(str(root / parts[0]))
            probs.append(float(parts[1]))
            types.append(parts[2])
    return np.array(paths), np.array(probs), np.array(types)


def elpv(
    setting: str = "general",
    n_known: int = 10,
    seed: int = 0,
    hard_class: str = "mono",
    split_seed: int = 42,
    root: Optional[Path] = None,
) -> Split:
    """The ELPV protocol of the open-set supervised AD literature (DRA, AHL).

    Normal = defect probability 0, anomalous = probability 1 (1/3 and 2/3 left out);
    anomaly classes = module type (mono, poly). Normal cells are split 75 % / 25 % with a
    permutation seeded by ``split_seed`` (1,131 train, 377 test normal; 715 anomalous).

    Args:
        setting: ``"general"`` — ``n_known`` known anomalies drawn from all anomalous cells
            and removed from the test set; ``"hard"`` — drawn from ``hard_class`` only, and
            every cell of that class removed from the test set (unseen classes only).
        n_known: number of known anomalies (K).
        seed: seed of the draw of the known anomalies.
        hard_class: the seen class of the hard setting (``"mono"`` or ``"poly"``).
        split_seed: seed of the normal train/test permutation.
    ELPV has no pixel masks: the known anomalies get ``None`` (whole-image mask).
    """
    if setting not in ("general", "hard"):
        raise BGADError(f"ELPV setting must be 'general' or 'hard', got {setting!r}")
    if n_known < 0:
        raise BGADError(f"n_known must be >= 0, got {n_known}")
    paths, probs, types = elpv_table(root)
    normal = np.flatnonzero(probs == 0.0)
    anomalous = np.flatnonzero(probs == 1.0)
    perm = np.random.default_rng(split_seed).permutation(len(normal))
    n_train = int(round(0.75 * len(normal)))
    train_idx = np.sort(normal[perm[:n_train]])
    test_normal = np.sort(normal[perm[n_train:]])
    rng = np.random.default_rng(seed)
    if setting == "general":
        pool = anomalous
    else:
        if hard_class not in set(types.tolist()):
            raise BGADError(f"hard_class must be one of {sorted(set(types.tolist()))}, got {hard_class!r}")
        pool = anomalous[types[anomalous] == hard_class]
    if n_known > len(pool):
        raise BGADError(f"n_known={n_known} exceeds the {len(pool)} available anomalies")
    known = np.sort(rng.choice(pool, size=n_known, replace=False)) if n_known else np.array([], int)
    if setting == "general":
        test_anom = np.setdiff1d(anomalous, known)
    else:
        test_anom = anomalous[types[anomalous] != hard_class]
    test = np.r_[test_normal, test_anom]
    labels = np.r_[np.zeros(len(test_normal), np.int64), np.ones(len(test_anom), np.int64)]
    return Split(
        train_normal=paths[train_idx].tolist(),
        known_anomalies=paths[known].tolist(),
        known_masks=[None] * len(known),
        known_types=types[known].tolist(),
        test=paths[test].tolist(),
        test_labels=labels,
        test_masks=[None] * len(test),
        test_types=["good"] * len(test_normal) + types[test_anom].tolist(),
        name=f"ELPV {setting} K={n_known} seed={seed}" + (f" seen={hard_class}" if setting == "hard" else ""),
        info={"n_train_normal": len(train_idx), "n_test_normal": len(test_normal), "n_anomalous": len(anomalous)},
    )


# --------------------------------------------------------------------------- MVTec layout


def _images_in(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class MVTecFolder:
    """A category folder in the MVTec AD layout.

    Args:
        root: the category folder (holding ``train/``, ``test/``, ``ground_truth/``).
    Raises:
        BGADError: naming what is missing when the layout is wrong (no ``train/good``,
            no ``test``, a defect image without its ``<stem>_mask.png``).
    """

    def __init__(self, root: os.PathLike | str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise BGADError(f"data folder {self.root} does not exist")
        good = self.root / "train" / "good"
        if not good.is_dir():
            raise BGADError(f"{self.root} is not in the MVTec layout: {good} is missing")
        self.train_good = _images_in(good)
        if not self.train_good:
            raise BGADError(f"{good} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        test = self.root / "test"
        if not test.is_dir():
            raise BGADError(f"{self.root} is not in the MVTec layout: {test} is missing")
        self.test_good: List[Path] = _images_in(test / "good") if (test / "good").is_dir() else []
        self.defects: Dict[str, List[Path]] = {}
        self.masks: Dict[Path, Path] = {}
        for d in sorted(p for p in test.iterdir() if p.is_dir() and p.name != "good"):
            images = _images_in(d)
            if not images:
                continue
            self.defects[d.name] = images
            for img in images:
                mask = self.root / "ground_truth" / d.name / f"{img.stem}_mask.png"
                if not mask.is_file():
                    raise BGADError(f"missing mask for {img}: expected {mask}")
                self.masks[img] = mask

    @property
    def defect_types(self) -> List[str]:
        """Names of the defect types (folders of ``test/`` other than ``good``)."""
        return list(self.defects)

    def split(self, protocol: str = "multi", n_known: int = 10, defect_type: Optional[str] = None, seed: int = 0) -> Split:
        """A train/test split with known anomalies taken from ``test/``.

        Args:
            protocol: ``"multi"`` — ``n_known`` anomalies spread evenly over the defect types
                (round robin, each type shuffled by ``seed``), removed from the test set;
                ``"one-class"`` — the known anomalies come from ``defect_type`` only, and
                ALL of that type is removed from the test set (the others are unseen).
            n_known: number of known anomalies (0 = unsupervised).
            defect_type: the seen type of the one-class protocol.
            seed: seed of the choice.
        """
        rng = np.random.default_rng(seed)
        if protocol not in ("multi", "one-class"):
            raise BGADError(f"protocol must be 'multi' or 'one-class', got {protocol!r}")
        if n_known < 0:
            raise BGADError(f"n_known must be >= 0, got {n_known}")
        known: List[Path] = []
        removed_types: set = set()
        if protocol == "multi":
            pools = {t: [imgs[i] for i in rng.permutation(len(imgs))] for t, imgs in self.defects.items()}
            total = sum(len(v) for v in pools.values())
            if n_known > total:
                raise BGADError(f"n_known={n_known} exceeds the {total} anomalous test images")
            types = list(pools)
            k = 0
            while len(known) < n_known:
                t = types[k % len(types)]
                if pools[t]:
                    known.append(pools[t].pop(0))
                k += 1
        else:
            if defect_type is None:
                raise BGADError(f"the one-class protocol needs defect_type, one of {self.defect_types}")
            if defect_type not in self.defects:
                raise BGADError(f"defect type {defect_type!r} not found; have {self.defect_types}")
            pool = self.defects[defect_type]
            if n_known > len(pool):
                raise BGADError(f"n_known={n_known} exceeds the {len(pool)} images of {defect_type!r}")
            known = [pool[i] for i in sorted(rng.choice(len(pool), n_known, replace=False))]
            removed_types = {defect_type}
        known_set = set(known)
        test, labels, masks, ttypes = [], [], [], []
        for p in self.test_good:
            test.append(str(p)); labels.append(0); masks.append(None); ttypes.append("good")
        for t, imgs in self.defects.items():
            if t in removed_types:
                continue
            for p in imgs:
                if p in known_set:
                    continue
                test.append(str(p)); labels.append(1); masks.append(str(self.masks[p])); ttypes.append(t)
        type_of = {p: t for t, imgs in self.defects.items() for p in imgs}
        return Split(
            train_normal=[str(p) for p in self.train_good],
            known_anomalies=[str(p) for p in known],
            known_masks=[str(self.masks[p]) for p in known],
            known_types=[type_of[p] for p in known],
            test=test,
            test_labels=np.array(labels, np.int64),
            test_masks=masks,
            test_types=ttypes,
            name=f"{self.root.name} {protocol} K={n_known} seed={seed}" + (f" seen={defect_type}" if defect_type else ""),
        )


__all__ = ["Split", "elpv", "elpv_root", "elpv_table", "MVTecFolder", "IMAGE_SUFFIXES"]
