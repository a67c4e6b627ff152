"""Protocols: ELPV counts and invariants, MVTec-layout folders, their errors."""

from pathlib import Path

import numpy as np
import pytest

from bgad import BGADError
from bgad.datasets import MVTecFolder, elpv



def _have_elpv():
    try:
        import elpv_dataset  # noqa: F401
        return True
    except ImportError:
        return False


needs_elpv = pytest.mark.skipif(not _have_elpv(), reason="elpv-dataset not installed")


@needs_elpv
def test_elpv_counts_match_the_literature():
    s = elpv("general", n_known=0)
    assert len(s.train_normal) == 1131
    assert int((s.test_labels == 0).sum()) == 377
    assert int((s.test_labels == 1).sum()) == 715
    assert s.info == {"n_train_normal": 1131, "n_test_normal": 377, "n_anomalous": 715}


@needs_elpv
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_elpv_general_known_anomalies_never_in_test(seed):
    s = elpv("general", n_known=10, seed=seed)
    assert len(s.known_anomalies) == 10
    assert not set(s.known_anomalies) & set(s.test)
    assert not set(s.train_normal) & set(s.test)
    assert int((s.test_labels == 1).sum()) == 705
    # seeded: same seed, same split; other seed, other anomalies
    assert elpv("general", n_known=10, seed=seed).known_anomalies == s.known_anomalies
    assert elpv("general", n_known=10, seed=seed + 10).known_anomalies != s.known_anomalies


@needs_elpv
@pytest.mark.parametrize("cls, other", [("mono", "poly"), ("poly", "mono")])
def test_elpv_hard_setting_removes_the_whole_seen_class(cls, other):
    s = elpv("hard", n_known=10, hard_class=cls)
    assert set(s.known_types) == {cls}
    assert set(t for t in s.test_types if t != "good") == {other}
    assert not set(s.known_anomalies) & set(s.test)


def _write_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_mvtec(root: Path, rng, types=("crack", "scratch"), per_type=4, good=6, size=32):
    for i in range(good):
        _write_png(root / "train" / "good" / f"{i:03d}.png", rng.integers(0, 80, (size, size), dtype=np.uint8))
    for i in range(3):
        _write_png(root / "test" / "good" / f"{i:03d}.png", rng.integers(0, 80, (size, size), dtype=np.uint8))
    for t in types:
        for i in range(per_type):
            img = rng.integers(0, 80, (size, size), dtype=np.uint8)
            mask = np.zeros((size, size), np.uint8)
            mask[8:14, 10:20] = 255
            img[mask > 0] = 250
            _write_png(root / "test" / t / f"{i:03d}.png", img)
            _write_png(root / "ground_truth" / t / f"{i:03d}_mask.png", mask)
    return root


def test_mvtec_multi_protocol_spreads_known_over_types_and_removes_them(tmp_path):
    root = make_mvtec(tmp_path / "cat", np.random.default_rng(0))
    data = MVTecFolder(root)
    assert data.defect_types == ["crack", "scratch"]
    s = data.split("multi", n_known=4, seed=3)
    assert sorted(s.known_types) == ["crack", "crack", "scratch", "scratch"]
    assert not set(s.known_anomalies) & set(s.test)
    assert len(s.test) == 3 + 8 - 4
    assert all((m is None) == (lab == 0) for m, lab in zip(s.test_masks, s.test_labels))
    assert data.split("multi", n_known=4, seed=3).known_anomalies == s.known_anomalies


def test_mvtec_one_class_protocol_removes_the_whole_type(tmp_path):
    root = make_mvtec(tmp_path / "cat", np.random.default_rng(0))
    s = MVTecFolder(root).split("one-class", n_known=2, defect_type="crack")
    assert set(s.known_types) == {"crack"}
    assert set(s.test_types) == {"good", "scratch"}


def test_mvtec_layout_errors_name_the_problem(tmp_path):
    with pytest.raises(BGADError, match="does not exist"):
        MVTecFolder(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    with pytest.raises(BGADError, match="train/good is missing"):
        MVTecFolder(tmp_path / "bad")
    root = make_mvtec(tmp_path / "cat", np.random.default_rng(0))
    (root / "ground_truth" / "crack" / "001_mask.png").unlink()
    with pytest.raises(BGADError, match="missing mask"):
        MVTecFolder(root)
    root2 = make_mvtec(tmp_path / "cat2", np.random.default_rng(0))
    with pytest.raises(BGADError, match="defect type"):
        MVTecFolder(root2).split("one-class", n_known=2, defect_type="dent")
    with pytest.raises(BGADError, match="exceeds"):
        MVTecFolder(root2).split("multi", n_known=99)
