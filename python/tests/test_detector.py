"""End to end: images → bgad.Detector (the engine's detector) → save/load → predict → evaluate, and the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bgad
from bgad import BGADError
from bgad.cli import main as cli_main
from bgad.datasets import MVTecFolder
from bgad.detector import Detector

from test_datasets import make_mvtec

FAST = dict(image_size=64, steps=40, rpag_per_anomaly=2, progress=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_mvtec(tmp_path_factory.mktemp("mvtec") / "widget", np.random.default_rng(1), good=12, per_type=4)


@pytest.fixture(scope="module")
def fitted(folder):
    split = MVTecFolder(folder).split("multi", n_known=2, seed=0)
    det = Detector(variant="bgad", seed=0, **FAST)
    det.fit(split.train_normal, split.known_anomalies, split.known_masks)
    return det, split


def test_fit_predict_gives_maps_at_each_images_size(fitted):
    det, split = fitted
    preds = det.predict(split.test)
    assert len(preds) == len(split.test)
    for p in preds:
        assert p.anomaly_map.shape == (32, 32) and p.anomaly_map.dtype == np.float32
        assert np.isfinite(p.anomaly_map).all() and np.isfinite(p.score)
        assert p.is_anomalous == (p.score > det.image_threshold_)
    # an image of another size gets a map of its own size
    odd = np.random.default_rng(0).integers(0, 80, (45, 70), dtype=np.uint8)
    (p,) = det.predict([odd])
    assert p.anomaly_map.shape == (45, 70)


def test_predict_is_deterministic_and_independent_of_batch(fitted):
    det, split = fitted
    all_scores = det.score_images(split.test)
    one_by_one = np.array([det.predict([path])[0].score for path in split.test[:4]])
    np.testing.assert_array_equal(all_scores[:4], one_by_one)
    np.testing.assert_array_equal(all_scores, det.score_images(split.test))


def test_save_load_round_trip_scores_identically(fitted, tmp_path):
    det, split = fitted
    path = tmp_path / "det.bgad"
    det.save(path)
    det2 = Detector.load(path)
    det2.progress = False
    np.testing.assert_array_equal(det.score_images(split.test), det2.score_images(split.test))
    assert det2.get_params()["variant"] == "bgad" and det2.get_params()["image_size"] == 64
    # a corrupted or truncated file is refused with a clear error
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.bgad").write_bytes(bytes(data))
    with pytest.raises(BGADError) as err:
        Detector.load(tmp_path / "bad.bgad")
    assert err.value.status == 3  # format error
    (tmp_path / "short.bgad").write_bytes(path.read_bytes()[:100])
    with pytest.raises(BGADError):
        Detector.load(tmp_path / "short.bgad")
    (tmp_path / "foreign.bgad").write_bytes(b"hello world, not a model")
    with pytest.raises(BGADError) as err:
        Detector.load(tmp_path / "foreign.bgad")
    assert err.value.status == 3
    with pytest.raises(BGADError) as err:
        Detector.load(tmp_path / "missing.bgad")
    assert err.value.status == 2  # I/O error


def test_seed_makes_training_reproducible(folder):
    split = MVTecFolder(folder).split("multi", n_known=2, seed=0)
    a = Detector(seed=3, **FAST).fit(split.train_normal, split.known_anomalies, split.known_masks)
    b = Detector(seed=3, **FAST).fit(split.train_normal, split.known_anomalies, split.known_masks)
    np.testing.assert_array_equal(a.score_images(split.test), b.score_images(split.test))


def test_cli_fit_predict_evaluate(folder, tmp_path):
    model = tmp_path / "m.bgad"
    common = ["--n-known", "2", "--image-size", "64", "--meta-epochs", "2", "--sub-epochs", "1", "--rpag", "1", "--quiet"]
    assert cli_main(["fit", str(folder), "--out", str(model), *common]) == 0
    assert model.is_file()
    out = tmp_path / "pred"
    assert cli_main(["predict", str(model), str(folder / "test" / "crack"), "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "scores.json").read_text())
    assert len(rows) == 4 and all(np.isfinite(r["score"]) for r in rows)
    assert len(list((out / "overlays").glob("*.png"))) == 4
    js = tmp_path / "eval.json"
    assert cli_main(["evaluate", str(folder), "--model", str(model), "--n-known", "2", "--json", str(js), "--quiet"]) == 0
    res = json.loads(js.read_text())["results"]["BGAD"]
    for key in ("image_auroc", "pixel_auroc", "au_pro", "image_ap", "f1"):
        assert 0.0 <= res[key] <= 1.0


def test_cli_errors_are_clear(tmp_path, capsys):
    assert cli_main(["fit", str(tmp_path / "missing"), "--out", str(tmp_path / "m.bgad")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "flat").mkdir()
    assert cli_main(["evaluate", str(tmp_path / "flat")]) == 2
    assert "train/good is missing" in capsys.readouterr().err
    assert cli_main(["predict", str(tmp_path / "none.bgad"), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_python_m_bgad_help_runs():
    r = subprocess.run([sys.executable, "-m", "bgad", "--help"], capture_output=True, text=True,
                       cwd=Path(__file__).parent, env={**__import__("os").environ, "PYTHONPATH": str(Path(bgad.__file__).parents[1])})
    assert r.returncode == 0 and "demo" in r.stdout and "evaluate" in r.stdout
