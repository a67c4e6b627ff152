"""One meaning per name: the renamed keywords and functions, and their deprecated old names
(kept for one release, each with a DeprecationWarning naming the new one)."""

import argparse
import json
import warnings

import numpy as np
import pytest

import bgad
from bgad import BGADError, Detector, rpag, visualize
from bgad.cli import common
from bgad.detector import _free, _new_handle, _read_config


def _engine_config(det):
    """The configuration the engine builds from a Detector's parameters (read back from it)."""
    h = _new_handle(det._params)
    try:
        return _read_config(h)
    finally:
        _free(h)


def test_detector_strides_and_its_deprecated_old_name_levels():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name warns about nothing
        det = Detector(strides=(16, 32), progress=False)
    assert det.get_params()["strides"] == (16, 32) and "levels" not in det.get_params()
    with pytest.warns(DeprecationWarning, match=r"levels= is deprecated.*use strides="):
        old = Detector(levels=(16, 32), progress=False)
    assert old.get_params() == det.get_params() and _engine_config(old)["strides"] == (16, 32)
    with pytest.warns(DeprecationWarning, match="levels="):
        old.set_params(levels=(8,))
    assert old.get_params()["strides"] == (8,)
    with pytest.raises(BGADError, match="strides= only"):
        Detector(levels=(8,), strides=(16,))


def test_detector_pickled_with_levels_loads_with_strides():
    state = Detector(strides=(8,), progress=False).__getstate__()
    state["params"] = {"levels": (8,)}  # what a Detector pickled before the rename holds
    det = Detector.__new__(Detector)
    with pytest.warns(DeprecationWarning):
        det.__setstate__(state)
    assert det.get_params()["strides"] == (8,)


def test_training_batch_and_backbone_batch_are_two_names():
    det = Detector(batch_size=8, feature_batch=4, progress=False)
    cfg = _engine_config(det)
    assert cfg["batch_size"] == 8 and cfg["feature_batch"] == 4
    defaults = Detector().get_params()
    assert defaults["batch_size"] == bgad.model.DEFAULTS["batch_size"] or defaults["batch_size"] >= 1
    assert Detector(batch_size=8).get_params()["feature_batch"] == defaults["feature_batch"]


def test_backbone_features_strides_and_levels(tmp_path):
    net = bgad.backbone.EfficientNetLite0()  # the weight package is a test requirement
    img = np.random.default_rng(0).integers(0, 256, (2, 40, 48), dtype=np.uint8)
    new = net.features(img, strides=(8,), size=32)
    with pytest.warns(DeprecationWarning, match=r"EfficientNetLite.features: levels= is deprecated"):
        old = net.features(img, levels=(8,), size=32)
    np.testing.assert_array_equal(new[0], old[0])
    x = np.zeros((1, 3, 32, 32), np.float32)
    with pytest.warns(DeprecationWarning, match="features_preprocessed"):
        np.testing.assert_array_equal(net.features_preprocessed(x, levels=(16,))[0],
                                      net.features_preprocessed(x, strides=(16,))[0])
    assert bgad.backbone.DEFAULT_LEVELS == bgad.backbone.DEFAULT_STRIDES == (4, 8, 16)


def test_two_overlays_two_names():
    img = np.zeros((6, 6), np.uint8)
    mask = np.zeros((6, 6), np.uint8)
    mask[2:4, 2:4] = 1
    outline = rpag.mask_outline(img, mask)
    assert outline.shape == (6, 6, 3) and (outline[..., 0] == 255).sum() == 4  # a 2x2 defect is its own outline
    amap = np.linspace(0, 1, 36, dtype=np.float32).reshape(6, 6)
    heat = visualize.heatmap_overlay(img, amap, 0.0, 1.0)
    with pytest.warns(DeprecationWarning, match=r"bgad\.rpag\.overlay is deprecated.*bgad\.rpag\.mask_outline"):
        np.testing.assert_array_equal(rpag.overlay(img, mask), outline)
    with pytest.warns(DeprecationWarning, match=r"bgad\.visualize\.overlay is deprecated.*heatmap_overlay"):
        np.testing.assert_array_equal(visualize.overlay(img, amap, 0.0, 1.0), heat)


def test_cli_strides_option_and_its_deprecated_old_name(capsys):
    p = argparse.ArgumentParser()
    common.add_training_args(p)
    assert common.strides_from_args(p.parse_args(["--strides", "8,16"])) == (8, 16)
    assert capsys.readouterr().err == ""
    assert common.strides_from_args(p.parse_args(["--levels", "16"])) == (16,)
    assert "--levels is deprecated" in capsys.readouterr().err
    assert common.strides_from_args(p.parse_args([])) is None
    with pytest.raises(BGADError, match="--strides only"):
        common.strides_from_args(p.parse_args(["--levels", "8", "--strides", "8"]))
    det = common.detector_from_args(p.parse_args(["--strides", "16", "--quiet"]))
    assert det.get_params()["strides"] == (16,)


def test_dask_predict_batch_and_its_deprecated_old_name():
    from bgad import dask as bdask

    with pytest.warns(DeprecationWarning, match=r"bgad\.dask\.score: batch_size= is deprecated.*predict_batch="):
        assert bdask._predict_batch(32, {"batch_size": 4}, "bgad.dask.score") == 4
    assert bdask._predict_batch(5, {}, "bgad.dask.score") == 5
    with pytest.raises(TypeError, match="unexpected keyword argument 'bach_size'"):
        bdask.score(b"", [], bach_size=4)


def test_model_defaults_come_from_the_engine():
    """bgad.model.DEFAULTS is the engine's bgad_model_default_params, and a fresh native
    model reports the same values through bgad_model_get_param (an independent path)."""
    import ctypes

    from bgad._native import check, function

    defaults = bgad.model.DEFAULTS
    create, free, get = function("bgad_model_create"), function("bgad_model_free"), function("bgad_model_get_param")
    channels = (ctypes.c_int64 * 1)(4)
    h = ctypes.c_void_p()
    check(create(1, channels, ctypes.byref(h)))
    try:
        for name, value in defaults.items():
            buf = ctypes.create_string_buffer(64)
            needed = ctypes.c_int64()
            check(get(h, name.encode(), buf, 64, ctypes.byref(needed)))
            text = buf.value.decode()
            assert text == ("true" if value is True else "false" if value is False else str(value)), name
    finally:
        free(h)
    assert json.loads(json.dumps(defaults)) == defaults
    assert {"lr", "beta", "batch_size", "variant", "focal"} <= set(defaults)
    assert isinstance(defaults["batch_size"], int) and isinstance(defaults["lr"], float)
