"""ONNX export: the exported graph, run by ONNX Runtime and OpenVINO, gives the engine's
maps, scores and decisions on images not used in training; every backbone variant and
several stride sets export; the tensors the engine hands out are its own numbers.

Skipped when onnx / onnxruntime / openvino are missing (requirements-test.txt installs them)."""

import hashlib
import sys

import numpy as np
import pytest

import bgad
from bgad import BGADError, weights
from bgad.cli import main as cli_main
from bgad.detector import Detector

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

FAST = dict(steps=40, rpag_per_anomaly=2, real_repeats=2, progress=False)


def textures(rng, n, size, defect=False):
    """Noisy gray-brown textures; with `defect`, a bright or dark blob of random size/place."""
    out = []
    for _ in range(n):
        base = rng.integers(90, 140, (size, size, 3), dtype=np.uint8)
        base[..., 2] = base[..., 2] // 2 + 40
        if defect:
            h, w = rng.integers(size // 8, size // 3, 2)
            y, x = rng.integers(0, size - h), rng.integers(0, size - w)
            base[y:y + h, x:x + w] = rng.choice([10, 250])
        out.append(base)
    return out


def fit_detector(size=64, strides=(8, 16), backbone="lite0", steps=40, seed=0):
    rng = np.random.default_rng(seed)
    det = Detector(variant="bgad", seed=seed, image_size=size, strides=list(strides), backbone=backbone,
                   **dict(FAST, steps=steps))
    det.fit(textures(rng, 10, size), textures(rng, 2, size, defect=True))
    return det


def held_out(size, seed=99):
    """Images the detector never saw: normal textures, defects, and extremes."""
    rng = np.random.default_rng(seed)
    extremes = [np.zeros((size, size, 3), np.uint8), rng.integers(0, 256, (size, size, 3), dtype=np.uint8)]
    return np.stack(textures(rng, 4, size) + textures(rng, 4, size, defect=True) + extremes)


def engine(det, images):
    preds = det.predict(list(images))
    return (np.stack([p.anomaly_map for p in preds]), np.array([p.score for p in preds]),
            np.array([p.is_anomalous for p in preds]))


def ort_run(path, images):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(["anomaly_map", "pred_score", "pred_label"], {"image": images})


def assert_same(det, images, outputs):
    emap, escore, elabel = engine(det, images)
    amap, ascore, alabel = outputs
    assert amap.shape == emap.shape and amap.dtype == np.float32
    rng_ = float(emap.max() - emap.min())
    assert rng_ > 0
    assert np.abs(amap - emap).max() <= 1e-3 * rng_, (np.abs(amap - emap).max(), rng_)
    np.testing.assert_allclose(ascore, escore, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(alabel, bool), elabel)
    assert elabel.any() and not elabel.all(), "the held-out set should hold both decisions"


@pytest.fixture(scope="module")
def fitted():
    return fit_detector()


@pytest.fixture(scope="module")
def exported(fitted, tmp_path_factory):
    return fitted.export_onnx(tmp_path_factory.mktemp("onnx") / "det.onnx")


def test_onnxruntime_gives_the_engines_maps_scores_and_decisions(fitted, exported):
    images = held_out(64)
    assert_same(fitted, images, ort_run(exported, images))
    # a batch and the images one by one give the same numbers (dynamic N)
    one = ort_run(exported, images[3:4])
    np.testing.assert_allclose(one[1], ort_run(exported, images)[1][3:4], rtol=1e-6)


def test_openvino_reads_the_file_and_gives_the_same_scores(fitted, exported):
    ov = pytest.importorskip("openvino")
    images = held_out(64)
    core = ov.Core()
    # f32: on CPUs with bfloat16 units OpenVINO's default precision is bf16 (scores off by %)
    model = core.compile_model(core.read_model(str(exported)), "CPU",
                               {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2})
    r = model(images)
    assert_same(fitted, images, (r["anomaly_map"], r["pred_score"], r["pred_label"]))


def test_graph_is_checker_clean_with_metadata(fitted, exported):
    m = onnx.load(str(exported))
    onnx.checker.check_model(m, full_check=True)
    assert all(o.version <= 17 for o in m.opset_import)
    meta = {p.key: p.value for p in m.metadata_props}
    assert float(meta["image_threshold"]) == fitted.image_threshold_
    assert float(meta["pixel_threshold"]) == fitted.pixel_threshold_
    assert meta["input_size"] == "64" and meta["strides"] == "8,16"
    assert meta["variant"] == "bgad" and meta["backbone"] == "lite0"
    assert meta["bgad_version"] == bgad.__version__
    assert meta["source_sha256"] == hashlib.sha256(fitted.to_bytes()).hexdigest()
    assert [i.name for i in m.graph.input] == ["image"]
    assert [o.name for o in m.graph.output] == ["anomaly_map", "pred_score", "pred_label"]


def test_log_domain_score_where_the_sum_underflows(fitted, tmp_path):
    """References raised by 100 divide every normality by e^100, so Σ underflows float32
    everywhere; the exact log-domain score must then be the engine's score + 100."""
    from bgad.onnx_export import build_model

    t = fitted.tensors()
    t["calibration.references"] = t["calibration.references"] + np.float32(100)
    path = tmp_path / "shifted.onnx"
    path.write_bytes(build_model(t, {"strides": "8,16"}).SerializeToString())
    images = held_out(64)
    _, score, _ = ort_run(path, images)
    _, escore, _ = engine(fitted, images)
    assert np.isfinite(score).all()
    np.testing.assert_allclose(score, escore + 100, rtol=0, atol=2e-3)


@pytest.mark.parametrize("backbone,strides,size", [
    ("lite0", (4,), 64),
    ("lite0", (16, 32), 64),
    ("lite0", (4, 8, 16, 32), 72),   # odd grids (9, 5, 3) and asymmetric 'SAME' pads
    ("lite1", (8, 16), 64),
    ("lite2", (8, 16), 80),
])
def test_every_variant_and_stride_set_exports_and_matches(backbone, strides, size, tmp_path):
    if backbone != "lite0":
        try:
            weights.prepare(backbone)
        except BGADError as e:
            pytest.skip(f"{backbone} weights not installed: {e}")
    det = fit_detector(size, strides, backbone, steps=15)
    path = det.export_onnx(tmp_path / "d.onnx")
    images = held_out(size)
    emap, escore, elabel = engine(det, images)
    amap, ascore, alabel = ort_run(path, images)
    assert np.abs(amap - emap).max() <= 1e-3 * float(emap.max() - emap.min())
    np.testing.assert_allclose(ascore, escore, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(alabel, elabel)


def test_tensors_are_the_engines_numbers(fitted):
    t = fitted.tensors()
    # the positional condition as bgad.positional_encoding builds it (grids 8×8 and 4×4 at 64²)
    for lvl, g in enumerate((8, 4)):
        assert list(t[f"levels.{lvl}.grid"]) == [g, g]
        np.testing.assert_array_equal(t[f"levels.{lvl}.condition"], bgad.positional_encoding(g, g))
    # the folded affine of each block from its raw parameters (σ = 0.2·log(1 + e^(g/2)))
    for k in range(8):
        q = f"levels.1.flow.module_list.{k}."
        g = t[q + "global_scale"].astype(np.float64).reshape(-1)
        sigma = 0.2 * np.log1p(np.exp(g / 2))
        wp = t[q + "w_perm"].astype(np.float64)
        np.testing.assert_allclose(t[q + "affine.matrix"], sigma[:, None] * wp.T, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(t[q + "affine.offset"], t[q + "global_offset"].reshape(-1) @ wp.T, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(t[q + "affine.log_scale_sum"][0], np.log(sigma).sum(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(wp @ wp.T, np.eye(wp.shape[0]), atol=1e-5)
    # align-corners tables: src = d·(in − 1)/(out − 1)
    src = np.arange(64) * np.float32(7 / 63)
    np.testing.assert_array_equal(t["levels.0.map.rows.lower"], np.minimum(np.floor(src), 7))
    np.testing.assert_allclose(t["levels.0.map.rows.weight"], src - np.floor(src), atol=1e-6)
    assert t["backbone.stem.weight"].shape == (3, 3, 3, 32)
    np.testing.assert_array_equal(t["config.strides"], [8, 16])
    assert t["calibration.image_threshold"][0] == np.float32(fitted.image_threshold_)


def test_export_errors_are_clear(tmp_path, fitted, monkeypatch):
    with pytest.raises(BGADError, match="not fitted"):
        Detector(image_size=64).export_onnx(tmp_path / "x.onnx")
    with pytest.raises(BGADError, match="directory"):
        fitted.export_onnx(tmp_path)
    import ctypes
    from bgad import detector as native

    with pytest.raises(BGADError, match="outside"):
        native.check(native._tensor(fitted._handle, 10**6, None, 0, ctypes.byref(ctypes.c_int64())))
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
    with pytest.raises(BGADError, match=r"pip install 'bgad\[onnx\]'"):
        fitted.export_onnx(tmp_path / "y.onnx")
    assert not (tmp_path / "y.onnx").exists()


def test_cli_export(fitted, tmp_path, capsys):
    model = tmp_path / "m.bgad"
    fitted.save(model)
    out = tmp_path / "m.onnx"
    assert cli_main(["export", str(model), "--format", "onnx", "--out", str(out)]) == 0
    assert "anomaly_map" in capsys.readouterr().out
    images = held_out(64)
    assert_same(fitted, images, ort_run(out, images))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # atomic: no leftovers
    old = tmp_path / "m13.onnx"  # the oldest opset the exporter writes runs too
    assert cli_main(["export", str(model), "--out", str(old), "--opset", "13"]) == 0
    assert {o.version for o in onnx.load(str(old)).opset_import} == {13}
    assert_same(fitted, images, ort_run(old, images))
    assert cli_main(["export", str(tmp_path / "missing.bgad"), "--out", str(tmp_path / "n.onnx")]) == 2
    assert not (tmp_path / "n.onnx").exists()
