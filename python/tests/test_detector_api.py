"""bgad.Detector as a thin wrapper: parameters (scikit-learn conventions), pickling to other
processes, old files, the two input routes (paths / buffers), errors and Ctrl-C."""

import json
import multiprocessing
import os
import pickle
import struct
import sys
import zlib

import numpy as np
import pytest

import bgad
from bgad import BGADError
from bgad.datasets import MVTecFolder
from bgad.detector import Detector, read_image

from fake_tqdm import install_interrupting_tqdm
from test_datasets import make_mvtec

FAST = dict(image_size=64, steps=40, rpag_per_anomaly=2, progress=False)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = make_mvtec(tmp_path_factory.mktemp("mvtec") / "widget", np.random.default_rng(2), good=10, per_type=3)
    return MVTecFolder(root).split("multi", n_known=2, seed=0)


@pytest.fixture(scope="module")
def fitted(split):
    return Detector(seed=1, **FAST).fit(split.train_normal, split.known_anomalies, split.known_masks)


# ------------------------------------------------------------------ parameters


def _engine_config():
    """The engine's configuration keys and defaults, read straight from the C ABI."""
    import ctypes

    from bgad._native import lib

    h = ctypes.c_void_p()
    assert lib.bgad_detector_create(b"{}", ctypes.byref(h)) == 0
    needed = ctypes.c_int64()
    lib.bgad_detector_config(h, None, ctypes.c_int64(0), ctypes.byref(needed))
    buf = ctypes.create_string_buffer(needed.value)
    assert lib.bgad_detector_config(h, buf, ctypes.c_int64(needed.value), ctypes.byref(needed)) == 0
    lib.bgad_detector_free(h)
    return json.loads(buf.value.decode())


def test_get_params_are_the_engine_configuration_plus_progress():
    cfg = _engine_config()
    params = Detector().get_params()
    assert set(params) == set(cfg) | {"progress"}  # the parameter names are the engine's keys
    assert tuple(params["strides"]) == tuple(cfg["strides"])
    for k, v in cfg.items():
        if k != "strides":
            assert params[k] == v, k
    # given values override the defaults, and get_params(deep=False) is the same dict
    det = Detector(variant="nfad", seed=7, strides=(16,), lr=1e-3, progress=False)
    p = det.get_params(deep=False)
    assert p["variant"] == "nfad" and p["seed"] == 7 and p["strides"] == (16,) and p["lr"] == 1e-3
    assert p["progress"] is False
    assert det.get_params(deep=True) == p


def test_set_params_and_sklearn_clone(split):
    from sklearn.base import clone

    det = Detector(seed=3, **FAST)
    assert det.set_params(seed=4, variant="bgad_wo") is det
    assert det.get_params()["seed"] == 4 and det.get_params()["variant"] == "bgad_wo"
    twin = clone(det)  # scikit-learn checks that every parameter is passed through unchanged
    assert twin is not det and twin.get_params() == det.get_params()
    assert not twin.is_fitted
    with pytest.raises(BGADError, match="no_such_knob"):
        det.set_params(no_such_knob=1)
    assert "no_such_knob" not in det.get_params()  # a refused set_params changes nothing
    # a clone of a fitted detector is unfitted, with the same parameters; fitted, it scores the same
    a = Detector(seed=5, **FAST).fit(split.train_normal, split.known_anomalies, split.known_masks)
    b = clone(a)
    assert not b.is_fitted
    b.fit(split.train_normal, split.known_anomalies, split.known_masks)
    np.testing.assert_array_equal(a.score_images(split.test), b.score_images(split.test))


@pytest.mark.parametrize("params, name", [
    ({"no_such_knob": 1}, "no_such_knob"),
    ({"variant": "patchcore"}, "variant"),
    ({"strides": (5,)}, "strides"),
    ({"image_size": 8}, "image_size"),
    ({"foreground": "sky"}, "foreground"),
    ({"lr": "fast"}, "lr"),
])
def test_bad_parameters_are_named(params, name):
    with pytest.raises(BGADError, match=name):
        Detector(**params)


# ------------------------------------------------------------------ pickling


def _scores_in_child(payload, images):
    det = pickle.loads(payload)
    return os.getpid(), det.score_images(images).tolist(), det.get_params()


def test_pickle_by_value_scores_identically_in_another_process(fitted, split):
    payload = pickle.dumps(fitted)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter and a fresh library
    with ctx.Pool(1) as pool:
        pid, scores, params = pool.apply(_scores_in_child, (payload, split.test))
    assert pid != os.getpid()
    np.testing.assert_array_equal(np.array(scores), fitted.score_images(split.test))
    assert params == fitted.get_params()
    # an unfitted detector pickles its parameters
    back = pickle.loads(pickle.dumps(Detector(seed=9, progress=False)))
    assert back.get_params()["seed"] == 9 and not back.is_fitted


def test_bytes_and_file_round_trips_agree(fitted, split, tmp_path):
    fitted.save(tmp_path / "d.bgad")
    assert (tmp_path / "d.bgad").read_bytes() == fitted.to_bytes()
    again = Detector.from_bytes(fitted.to_bytes(), progress=False)
    np.testing.assert_array_equal(again.score_images(split.test), fitted.score_images(split.test))
    assert (again.image_threshold_, again.pixel_threshold_) == (fitted.image_threshold_, fitted.pixel_threshold_)
    with pytest.raises(BGADError):
        Detector.from_bytes(fitted.to_bytes()[:-9])


def _write_v1(path, params, model_bytes):
    """The format version 1 writer of the previous Python Detector (a test fixture):
    magic, version, JSON header, the BGAD model file, CRC-32 of everything before."""
    header = {"detector": params, "backbone": {"name": "efficientnet-lite0", "source_sha256": None}}
    head = json.dumps(header).encode()
    body = b"BGADDET\x00" + struct.pack("<II", 1, len(head)) + head + struct.pack("<Q", len(model_bytes)) + model_bytes
    body += struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    path.write_bytes(body)


def test_old_python_format_version_1_is_refused_by_name(tmp_path):
    rng = np.random.default_rng(0)
    model = bgad.BGAD(meta_epochs=1, sub_epochs=1, progress=False).fit([rng.normal(size=(4, 8, 4, 4)).astype(np.float32)])
    model.save(tmp_path / "m.bin")
    params = {"variant": "bgad", "seed": 0, "image_size": 256, "real_repeats": 5, "rpag_per_anomaly": 10,
              "foreground": "otsu", "batch_size": 16, "levels": [8, 16], "meta_epochs": 4}
    _write_v1(tmp_path / "old.bgad", params, (tmp_path / "m.bin").read_bytes())
    with pytest.raises(BGADError, match="format version 1") as err:
        Detector.load(tmp_path / "old.bgad")
    assert err.value.status == 3


# ------------------------------------------------------------------ inputs


def test_paths_and_buffers_fit_and_predict_identically(split, tmp_path):
    a = Detector(seed=2, **FAST).fit(split.train_normal, split.known_anomalies, split.known_masks)  # PNG paths
    masks = [None if m is None else read_image(m) for m in split.known_masks]
    b = Detector(seed=2, **FAST).fit([read_image(p) for p in split.train_normal],
                                     [read_image(p) for p in split.known_anomalies], masks)  # buffers
    sa = a.score_images(split.test)
    np.testing.assert_array_equal(sa, b.score_images(split.test))
    np.testing.assert_array_equal(sa, a.score_images([read_image(p) for p in split.test]))
    # a format other than PNG goes through Pillow: a lossless TIFF gives the PNG's numbers
    from PIL import Image

    tif = tmp_path / "x.tiff"
    Image.fromarray(read_image(split.test[0])).save(tif)
    assert a.score_images([tif])[0] == sa[0]


def test_predict_maps_scores_and_decisions(fitted, split):
    rng = np.random.default_rng(4)
    imgs = [rng.integers(0, 255, (64, 64), dtype=np.uint8),  # the model size: the map is the model's map
            rng.integers(0, 255, (40, 90, 3), dtype=np.uint8),
            rng.integers(0, 255, (101, 33), dtype=np.uint8)]
    preds = fitted.predict(imgs)
    assert [p.anomaly_map.shape for p in preds] == [(64, 64), (40, 90), (101, 33)]
    # the image score −log(min Σ) orders images as the map's maximum S_max − min Σ does
    s_max = preds[0].anomaly_map.max() + np.exp(-preds[0].score)
    for p in preds[1:]:
        assert (p.score > preds[0].score) == (s_max - np.exp(-p.score) > preds[0].anomaly_map.max())
    t = fitted.image_threshold_
    assert all(p.is_anomalous == (p.score > t) for p in preds)
    one = fitted.predict(imgs[1])  # a single array is one image
    assert len(one) == 1 and one[0].score == preds[1].score
    np.testing.assert_array_equal(one[0].anomaly_map, preds[1].anomaly_map)  # bgad.h: identical numbers
    no_maps = fitted.predict(imgs, maps=False)
    assert [p.score for p in no_maps] == [p.score for p in preds] and all(p.anomaly_map is None for p in no_maps)
    # calibration: the image threshold flags at most a fraction beta of the training normals
    beta = fitted.get_params()["beta"]
    assert np.mean(fitted.score_images(split.train_normal) > t) <= beta


def test_bad_input_is_a_clear_error(fitted, split, tmp_path):
    with pytest.raises(BGADError, match="not fitted"):
        Detector(progress=False).predict(split.test[:1])
    with pytest.raises(BGADError, match="not fitted"):
        Detector(progress=False).save(tmp_path / "x.bgad")
    with pytest.raises(BGADError, match="uint8"):
        fitted.predict([np.zeros((8, 8), np.float32)])
    with pytest.raises(BGADError, match="shape"):
        fitted.predict([np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(BGADError, match="not found"):
        fitted.predict([str(tmp_path / "missing.png")])
    with pytest.raises(BGADError, match="at least one normal"):
        Detector(**FAST).fit([])
    with pytest.raises(BGADError, match="masks"):
        Detector(**FAST).fit(split.train_normal, split.known_anomalies, [None])
    wrong = np.ones((5, 5), np.uint8)  # a mask must have its image's size
    with pytest.raises(BGADError):
        Detector(**FAST).fit(split.train_normal, split.known_anomalies, [wrong, wrong])
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(BGADError):
        Detector(**FAST).fit(split.train_normal + [str(tmp_path / "bad.png")])


@pytest.mark.parametrize("how", ["exception", "signal"])
def test_interrupt_cancels_fit_cleanly(monkeypatch, split, fitted, how):
    install_interrupting_tqdm(monkeypatch, how)
    det = Detector(seed=1, **{**FAST, "progress": True})
    with pytest.raises(KeyboardInterrupt):
        det.fit(split.train_normal, split.known_anomalies, split.known_masks)
    assert not det.is_fitted
    # a fitted detector stays as it was when a second fit is cancelled
    before = fitted.score_images(split.test)
    fitted.progress = True
    try:
        with pytest.raises(KeyboardInterrupt):
            fitted.fit(split.train_normal)
    finally:
        fitted.progress = False
    np.testing.assert_array_equal(fitted.score_images(split.test), before)
    monkeypatch.delitem(sys.modules, "tqdm.auto")
    det.set_params(progress=False).fit(split.train_normal, split.known_anomalies, split.known_masks)
    assert det.is_fitted


@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_detector_with_another_backbone_fits_saves_and_scores(name, tmp_path):
    from bgad import weights

    if not weights.available(name):
        pytest.skip(f"the {name} weight package is not installed")
    rng = np.random.default_rng(7)
    normals = [rng.integers(90, 130, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    det = Detector(backbone=name, image_size=64, steps=10, blocks=2, rpag_per_anomaly=0, progress=False)
    det.fit(normals)
    assert det.get_params()["backbone"] == name
    det.save(tmp_path / "d.bgad")
    again = Detector.load(tmp_path / "d.bgad")
    assert again.get_params()["backbone"] == name
    np.testing.assert_array_equal(again.score_images(normals), det.score_images(normals))
    # a weight file of another variant is refused, naming both
    with pytest.raises(BGADError, match="Lite0"):
        Detector(backbone=name, weights=str(weights.prepare("lite0")), image_size=64, steps=10,
                 progress=False).fit(normals)


def test_paths_are_decoded_in_parallel_in_order_with_errors_named(tmp_path):
    """Detector.predict decodes a batch of paths on several threads: same images in the same
    order as one by one, the first unreadable file raises naming it, and a forked child
    decodes with a pool of its own."""
    from bgad.detector import _read_images, read_image

    rng = np.random.default_rng(3)
    paths = []
    for i in range(9):
        p = tmp_path / f"im{i}.png"
        bgad.io.write_png(str(p), rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8))
        paths.append(str(p))
    old = bgad.get_num_threads()
    bgad.set_num_threads(2)
    try:
        mixed = paths[:4] + [read_image(paths[4])] + paths[5:]
        for a, b in zip(_read_images(mixed), [read_image(p) for p in paths]):
            np.testing.assert_array_equal(a, b)
        with pytest.raises(bgad.BGADError, match="missing.png"):
            _read_images(paths[:3] + [str(tmp_path / "missing.png")] + paths[3:])
        pid = os.fork()
        if pid == 0:  # the child: decode again, exit 0 on success
            ok = all(np.array_equal(a, read_image(p)) for a, p in zip(_read_images(paths), paths))
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        bgad.set_num_threads(old)
