"""bgad.BGAD and the BGAD losses against independent numpy computations.

Covers docs/METHOD.md: the explicit boundary (exact β-quantile, ties), the BG-SPP loss and its
gradient (closed form + finite differences, empty sets, focal weights), calibrated scoring
(bilinear align_corners upsampling, thresholds with FPR ≤ β on the training normals),
a controlled synthetic problem where BGAD beats NFAD on seen anomalies, determinism,
save/load, batching, corrupt files and bad input.
"""

import ctypes
import struct
import sys

import numpy as np
import pytest

import bgad
from fake_tqdm import install_interrupting_tqdm
from bgad import BGAD, BGADError, metrics
from bgad._native import check, function, ptr

_boundaries = function("bgad_explicit_boundaries")
_loss = function("bgad_boundary_guided_loss")
_focal = function("bgad_focal_weights")


def native_boundaries(ell, labels, beta, tau=0.1, alpha=10.0):
    ell = np.ascontiguousarray(ell, np.float32)
    labels = np.ascontiguousarray(labels, np.uint8)
    bn, ba = ctypes.c_float(), ctypes.c_float()
    check(_boundaries(ptr(ell, ctypes.c_float), ptr(labels, ctypes.c_uint8), ell.size, beta, tau, alpha,
                      ctypes.byref(bn), ctypes.byref(ba)))
    return bn.value, ba.value


def native_loss(ell, labels, bounds, wn, wa, semi_push, alpha, lam):
    ell = np.ascontiguousarray(ell, np.float32)
    labels = np.ascontiguousarray(labels, np.uint8)
    parts = np.zeros(4, np.float64)
    grad = np.zeros(ell.size, np.float32)
    bn, ba = bounds if bounds is not None else (0.0, 0.0)
    wn = None if wn is None else np.ascontiguousarray(wn, np.float32)
    wa = None if wa is None else np.ascontiguousarray(wa, np.float32)
    check(_loss(ptr(ell, ctypes.c_float), ptr(labels, ctypes.c_uint8), ell.size, int(bounds is not None), bn, ba,
                None if wn is None else ptr(wn, ctypes.c_float), None if wa is None else ptr(wa, ctypes.c_float),
                int(semi_push), alpha, lam, ptr(parts, ctypes.c_double), ptr(grad, ctypes.c_float)))
    return parts, grad


# ---------------------------------------------------------------- boundary and losses


@pytest.mark.parametrize("seed", range(40))
def test_normal_boundary_is_exact_beta_quantile_of_normal_values(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    if seed % 2:
        ell = rng.integers(-5, 3, n).astype(np.float32)  # heavy ties
    else:
        ell = rng.normal(-3, 2, n).astype(np.float32)
    labels = (rng.random(n) < 0.2).astype(np.uint8)
    labels[0] = 0
    beta = [0.0, 0.01, 0.05, 0.5, 0.999][seed % 5]
    bn, ba = native_boundaries(ell, labels, beta, tau=0.1, alpha=10.0)
    normal = np.sort(ell[labels == 0])
    k = int(np.floor(normal.size * beta))
    assert bn == np.float32(normal[k]) / np.float32(10)
    assert ba == pytest.approx(bn - 0.1, abs=1e-7)


def test_boundary_without_normal_vectors_is_an_error():
    with pytest.raises(BGADError, match="no normal"):
        native_boundaries(np.zeros(3), np.ones(3), 0.05)


def numpy_focal(ell):
    x = ell.astype(np.float64) / 10
    with np.errstate(invalid="ignore"):
        wn = np.where(x > -0.2, 1.0, 11.7 * np.sqrt(1 - np.exp(x)) * np.abs(x))
        wa = np.where(x <= -1, 1.0, 0.53 * (1 + np.exp(x)) ** 2 / np.maximum(np.abs(x), 0.01))
    return wn, wa


def test_focal_weights_match_the_authors_formulas():
    ell = np.linspace(-30, 5, 701).astype(np.float32)
    wn, wa = np.zeros_like(ell), np.zeros_like(ell)
    check(_focal(ptr(ell, ctypes.c_float), ell.size, ptr(wn, ctypes.c_float), ptr(wa, ctypes.c_float)))
    en, ea = numpy_focal(ell)
    np.testing.assert_allclose(wn, en, rtol=1e-5)
    np.testing.assert_allclose(wa, ea, rtol=1e-5)


def numpy_loss(ell, labels, bounds, wn, wa, semi_push, alpha, lam):
    """L = L_ml + λ (L_n + L_a) from the equations, in float64; empty means are 0."""
    ell = ell.astype(np.float64)
    wn = np.ones_like(ell) if wn is None else wn.astype(np.float64)
    wa = np.ones_like(ell) if wa is None else wa.astype(np.float64)
    normal = labels == 0
    ml = np.mean(wn[normal] * np.logaddexp(0, -ell[normal])) if normal.any() else 0.0
    if bounds is None:
        return ml
    bn, ba = (float(b) for b in bounds)
    s = ell / alpha
    pull = normal & (s <= bn)
    ln = np.mean(wn[pull] * (bn - s[pull])) if pull.any() else 0.0
    push = (labels == 1) & (s >= ba) if semi_push else np.zeros_like(normal)
    la = np.mean(wa[push] * (s[push] - ba)) if push.any() else 0.0
    return ml + lam * (ln + la)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("focal", [False, True])
def test_bgspp_loss_and_gradient_match_numpy_and_finite_differences(seed, focal):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    ell = rng.uniform(-14, 3, n).astype(np.float32)
    labels = (rng.random(n) < 0.3).astype(np.uint8)
    alpha, lam = 10.0, float(rng.uniform(0.5, 2))
    bounds = native_boundaries(ell, labels, 0.2) if (labels == 0).any() else (-0.4, -0.5)
    # keep ℓ' away from the kinks so that central differences are valid
    s = ell / alpha
    near = (np.abs(s - bounds[0]) < 1e-3) | (np.abs(s - bounds[1]) < 1e-3)
    ell[near] += 0.05
    wn, wa = numpy_focal(ell) if focal else (None, None)
    for b, push in [(bounds, True), (bounds, False), (None, False)]:
        parts, grad = native_loss(ell, labels, b, wn, wa, push, alpha, lam)
        expected = numpy_loss(ell, labels, b, wn, wa, push, alpha, lam)
        assert parts[0] == pytest.approx(expected, rel=1e-6, abs=1e-9)
        assert parts[0] == pytest.approx(parts[1] + lam * (parts[2] + parts[3]), rel=1e-12, abs=1e-12)
        h = 1e-5
        for i in range(n):
            up, dn = ell.astype(np.float64), ell.astype(np.float64)
            up[i] += h
            dn[i] -= h
            fd = (numpy_loss(up, labels, b, wn, wa, push, alpha, lam)
                  - numpy_loss(dn, labels, b, wn, wa, push, alpha, lam)) / (2 * h)
            assert grad[i] == pytest.approx(fd, rel=1e-4, abs=1e-6), (i, b, push)


def test_empty_sets_contribute_zero_not_nan():
    ell = np.array([-1, -2, -3, -9, -8], np.float32)
    labels = np.array([0, 0, 0, 1, 1], np.uint8)
    # b_n below every normal ℓ' (no semi-pull), b_a above every abnormal ℓ' (no semi-push)
    parts, grad = native_loss(ell, labels, (-0.5, -0.6), None, None, True, 10.0, 1.0)
    assert np.all(np.isfinite(parts)) and parts[2] == 0 and parts[3] == 0
    assert parts[0] == pytest.approx(np.mean(np.logaddexp(0, -ell[:3].astype(np.float64))), rel=1e-7)
    assert grad[3] == 0 and grad[4] == 0
    # only abnormal vectors: L_ml and L_n are empty
    parts, grad = native_loss(np.array([-1.0, -2.0]), np.array([1, 1]), (-0.5, -0.6), None, None, True, 10.0, 1.0)
    assert parts[1] == 0 and parts[2] == 0 and parts[3] == pytest.approx(((-0.1 + 0.6) + (-0.2 + 0.6)) / 2, rel=1e-6)
    np.testing.assert_allclose(grad, [0.05, 0.05], rtol=1e-6)


# ---------------------------------------------------------------- the estimator

C, H, W = 8, 8, 8


def synthetic(rng, n, direction=None, magnitude=0.0):
    """Normal vectors N(0, I); anomalies: a 3×3 patch shifted by magnitude·direction."""
    x = rng.normal(size=(n, C, H, W)).astype(np.float32)
    masks = np.zeros((n, H, W), np.uint8)
    if direction is not None:
        for i in range(n):
            y0, x0 = rng.integers(0, H - 3, 2)
            masks[i, y0:y0 + 3, x0:x0 + 3] = 1
            sel = masks[i].astype(bool)
            x[i][:, sel] += magnitude * direction[:, None]
    return x, masks


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(0)
    normal = [rng.normal(size=(12, 8, 8, 8)).astype(np.float32), rng.normal(size=(12, 16, 4, 4)).astype(np.float32)]
    anomalous = [rng.normal(size=(3, 8, 8, 8)).astype(np.float32) + 2, rng.normal(size=(3, 16, 4, 4)).astype(np.float32)]
    masks = np.zeros((3, 32, 32), np.uint8)
    masks[:, 8:20, 8:20] = 1
    return normal, anomalous, masks


def small_model(**kw):
    params = dict(meta_epochs=3, sub_epochs=2, batch_size=4, chunk_size=128, lr=1e-3, beta=0.05, progress=False)
    params.update(kw)
    return BGAD(**params)


@pytest.fixture(scope="module")
def trained(small_data):
    normal, anomalous, masks = small_data
    return small_model().fit(normal, anomalous, masks)


def test_bgad_beats_nfad_on_seen_anomalies_and_is_not_worse_on_unseen():
    rng = np.random.default_rng(0)
    u = np.eye(C, dtype=np.float32)[0]
    v = np.eye(C, dtype=np.float32)[1]
    normal, _ = synthetic(rng, 64)
    seen, seen_masks = synthetic(rng, 8, u, 2.0)
    test_normal, _ = synthetic(rng, 16)
    test_seen, test_seen_masks = synthetic(rng, 16, u, 2.0)
    test_unseen, test_unseen_masks = synthetic(rng, 16, v, 3.0)
    clean = np.zeros((16, H, W), np.uint8)
    auc = {}
    for variant in ["bgad", "nfad"]:
        model = BGAD(variant=variant, meta_epochs=6, sub_epochs=4, batch_size=8, chunk_size=512, lr=1e-3,
                     beta=0.05, seed=1, progress=False).fit([normal], [seen], seen_masks)

        def pixel_auc(features, masks):
            maps = model.score_maps([np.concatenate([test_normal, features])], (H, W))
            return metrics.pixel_roc_auc(np.concatenate([clean, masks]), maps)

        auc[variant] = (pixel_auc(test_seen, test_seen_masks), pixel_auc(test_unseen, test_unseen_masks))
    assert auc["bgad"][0] >= auc["nfad"][0] + 0.08, auc  # seen anomalies: clearly better
    assert auc["bgad"][1] >= auc["nfad"][1] - 0.02, auc  # unseen anomalies: not worse


def test_variants_train_and_bgad_wo_ignores_anomalies(small_data):
    normal, anomalous, masks = small_data
    a = small_model(variant="bgad_wo").fit(normal, anomalous, masks).score_maps(normal, 16)
    b = small_model(variant="bgad_wo").fit(normal, image_size=masks.shape[1:]).score_maps(normal, 16)
    np.testing.assert_array_equal(a, b)
    c = small_model(variant="nfad").fit(normal, anomalous, masks).score_maps(normal, 16)
    assert not np.array_equal(a, c)
    d = small_model(variant="bgad").fit(normal, anomalous, masks).score_maps(normal, 16)
    assert not np.array_equal(c, d)


def test_same_seed_gives_identical_scores_and_another_seed_does_not(small_data, trained):
    normal, anomalous, masks = small_data
    again = small_model().fit(normal, anomalous, masks)
    np.testing.assert_array_equal(again.score_maps(normal, 32), trained.score_maps(normal, 32))
    other = small_model(seed=5).fit(normal, anomalous, masks)
    assert not np.array_equal(other.score_maps(normal, 32), trained.score_maps(normal, 32))


def test_single_image_scores_equal_batched_scores(small_data, trained):
    normal, anomalous, _ = small_data
    feats = [np.concatenate([a, b]) for a, b in zip(normal, anomalous)]
    batched = trained.score_maps(feats, (20, 28))
    for i in range(feats[0].shape[0]):
        single = trained.score_maps([f[i:i + 1] for f in feats], (20, 28))
        np.testing.assert_array_equal(single[0], batched[i])
    scores = trained.score_images(feats, (20, 28))
    for i in range(feats[0].shape[0]):
        assert trained.score_images([f[i:i + 1] for f in feats], (20, 28))[0] == scores[i]
    # Same order as the map's maximum: score = −log(S_max − max map) up to float rounding.
    s_max = trained.max_normality_
    np.testing.assert_allclose(scores, -np.log(s_max - batched.reshape(len(batched), -1).max(1).astype(np.float64)),
                               rtol=0, atol=1e-4)


def align_corners_bilinear(grid, out_h, out_w):
    """Independent numpy bilinear resize with align_corners=True."""
    h, w = grid.shape
    ys = np.arange(out_h) * ((h - 1) / (out_h - 1) if out_h > 1 else 0.0)
    xs = np.arange(out_w) * ((w - 1) / (out_w - 1) if out_w > 1 else 0.0)
    y0 = np.minimum(np.floor(ys).astype(int), h - 1)
    x0 = np.minimum(np.floor(xs).astype(int), w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    dy, dx = (ys - y0)[:, None], (xs - x0)[None, :]
    g = grid.astype(np.float64)
    return ((1 - dy) * ((1 - dx) * g[y0][:, x0] + dx * g[y0][:, x1]) + dy * ((1 - dx) * g[y1][:, x0] + dx * g[y1][:, x1]))


def test_anomaly_map_is_smax_minus_summed_upsampled_normality(small_data, trained):
    normal, _, _ = small_data
    ells = trained.log_likelihoods(normal)
    refs, s_max = trained.references_, trained.max_normality_
    maps = trained.score_maps(normal, (32, 24))
    for i in range(3):
        total = sum(align_corners_bilinear(np.exp(e[i].astype(np.float64) - r), 32, 24) for e, r in zip(ells, refs))
        np.testing.assert_allclose(maps[i], s_max - total, atol=2e-5)


def test_default_thresholds_flag_at_most_beta_of_training_normals(small_data, trained):
    normal, _, masks = small_data
    assert trained.calibration_size_ == masks.shape[1:]
    beta = trained.threshold_beta_
    assert beta == 0.05
    maps = trained.score_maps(normal)
    assert (maps > trained.pixel_threshold_).mean() <= beta
    scores = trained.score_images(normal)
    assert (scores > trained.image_threshold_).mean() <= beta
    # the thresholds are the explicit boundary: the normality at index ⌊n·β⌋ (ascending)
    normality = np.sort((trained.max_normality_ - maps).ravel())
    k = int(np.floor(normality.size * beta))
    assert trained.pixel_threshold_ == pytest.approx(trained.max_normality_ - normality[k], abs=1e-5)
    assert np.max(maps) <= trained.max_normality_ + 1e-6 and np.min(maps) >= -1e-6
    np.testing.assert_array_equal(trained.predict(normal), scores > trained.image_threshold_)
    np.testing.assert_array_equal(trained.predict_maps(normal), maps > trained.pixel_threshold_)


def test_save_load_gives_bitwise_identical_scores_and_params(tmp_path, small_data, trained):
    normal, anomalous, _ = small_data
    path = tmp_path / "model.bgad"
    trained.save(path)
    loaded = BGAD.load(path, progress=False)
    feats = [np.concatenate([a, b]) for a, b in zip(normal, anomalous)]
    np.testing.assert_array_equal(loaded.score_maps(feats, 32), trained.score_maps(feats, 32))
    assert loaded.get_params() == trained.get_params()
    assert loaded.pixel_threshold_ == trained.pixel_threshold_
    assert loaded.image_threshold_ == trained.image_threshold_
    assert not list(tmp_path.glob("*.tmp-*"))  # atomic write leaves no temp file


def test_corrupt_truncated_foreign_and_newer_files_raise_clear_errors(tmp_path, trained):
    path = tmp_path / "model.bgad"
    trained.save(path)
    data = path.read_bytes()
    cases = {
        "truncated": (data[: len(data) // 2], "truncated"),
        "header-only": (data[:20], "truncated"),
        "corrupted": (data[:200] + bytes([data[200] ^ 0x40]) + data[201:], "corrupted"),
        "foreign": (b"\x89PNG\r\n\x1a\n" + data[8:], "not a bgad model"),
        "newer": (data[:8] + struct.pack("<I", 99) + data[12:], "newer|upgrade"),
        "empty": (b"", "not a bgad model"),
    }
    for name, (content, pattern) in cases.items():
        bad = tmp_path / f"{name}.bgad"
        bad.write_bytes(content)
        with pytest.raises(BGADError, match=pattern):
            BGAD.load(bad)
    with pytest.raises(BGADError, match="cannot open"):
        BGAD.load(tmp_path / "missing.bgad")


def test_bad_input_raises_bgad_errors(small_data, trained):
    normal, anomalous, masks = small_data
    with pytest.raises(BGADError, match="4 dimensions"):
        small_model().fit([normal[0][0]])
    with pytest.raises(BGADError, match="NaN"):
        bad = normal[0].copy()
        bad[1, 2, 3, 4] = np.nan
        small_model().fit([bad, normal[1]])
    with pytest.raises(BGADError, match="images"):
        small_model().fit([normal[0], normal[1][:5]])
    with pytest.raises(BGADError, match="channels"):
        trained.score_maps([normal[0][:, :4], normal[1]])
    with pytest.raises(BGADError, match="levels"):
        trained.score_maps([normal[0]])
    with pytest.raises(BGADError, match="anomaly_masks"):
        small_model().fit(normal, anomalous, masks[:2])
    with pytest.raises(BGADError, match="0 \\(normal\\) or 1"):
        small_model().fit(normal, anomalous, masks * 3)
    with pytest.raises(BGADError, match="grid"):
        small_model().fit(normal, [anomalous[0][:, :, :4], anomalous[1]], masks)
    with pytest.raises(BGADError, match="variant"):
        small_model(variant="nope").fit(normal)
    with pytest.raises(BGADError, match="beta"):
        small_model(beta=1.5).fit(normal)
    with pytest.raises(BGADError, match="unknown"):
        BGAD(betta=0.1)
    with pytest.raises(BGADError, match="not trained"):
        small_model().score_maps(normal)
    with pytest.raises(BGADError, match="infinite"):
        bad = normal[1].copy()
        bad[0, 0, 0, 0] = np.inf
        trained.score_maps([normal[0], bad])


@pytest.mark.parametrize("how", ["exception", "signal"])
def test_interrupt_cancels_training_cleanly(monkeypatch, small_data, how):
    normal, _, _ = small_data

    install_interrupting_tqdm(monkeypatch, how)
    model = small_model(progress=True)
    with pytest.raises(KeyboardInterrupt):
        model.fit(normal)
    with pytest.raises(BGADError, match="not trained"):
        model.score_maps(normal)
    # the same estimator trains normally afterwards
    monkeypatch.delitem(sys.modules, "tqdm.auto")
    model.set_params(progress=False).fit(normal)
    assert model.score_maps(normal).shape == (12, 8, 8)


def test_get_params_reports_the_authors_defaults():
    p = BGAD().get_params()
    assert p["meta_epochs"] == 25 and p["sub_epochs"] == 8 and p["lr"] == 2e-4 and p["batch_size"] == 32
    assert p["chunk_size"] == 4096 and p["beta"] == 0.01 and p["tau"] == 0.1 and p["alpha_n"] == 10
    assert p["lam"] == 1 and p["focal"] is True and p["variant"] == "bgad" and p["blocks"] == 8 and p["clamp"] == 1.9


def test_out_of_range_sizes_are_errors_not_crashes(small_data):
    normal, _, _ = small_data
    with pytest.raises(BGADError, match="chunk_size"):
        small_model(chunk_size=10**12).fit(normal)
    with pytest.raises(BGADError, match="batch_size"):
        small_model(batch_size=0).fit(normal)
    with pytest.raises(BGADError, match="calibration size"):
        small_model(meta_epochs=50).fit(normal, image_size=(10**6, 10**6))  # refused before training
    model = small_model(batch_size=10**6, meta_epochs=1, sub_epochs=1).fit(normal)  # larger than the data
    assert model.score_maps(normal).shape == (12, 8, 8)


def log_domain_image_scores(model, feats, size):
    """Independent reference of the image score −log(min Σ) in float64 (no underflow above e^-700)."""
    ells, refs = model.log_likelihoods(feats), model.references_
    out = []
    for i in range(feats[0].shape[0]):
        total = sum(align_corners_bilinear(np.exp(e[i].astype(np.float64) - r), *size) for e, r in zip(ells, refs))
        out.append(-np.log(total.min()))
    return np.array(out)


def test_image_scores_keep_the_order_of_strong_defects_that_tie_in_the_map(small_data, trained):
    normal, _, _ = small_data
    # Ever stronger corruption of one normal image: the log-likelihoods fall far below the
    # references, exp(ℓ − ref) underflows in float32 and every map saturates at S_max.
    base = [f[:1] for f in normal]
    feats = [np.concatenate([b * k + k for k in (3.0, 5.0, 8.0, 12.0)]).astype(np.float32) for b in base]
    size = (32, 32)
    maps = trained.score_maps(feats, size)
    map_max = maps.reshape(len(maps), -1).max(1)
    assert len(set(map_max.tolist())) < len(map_max), "the old image score (max of the map) should tie here"
    scores = trained.score_images(feats, size)
    assert len(set(scores.tolist())) == len(scores), "image scores must not tie"
    ref = log_domain_image_scores(trained, feats, size)
    assert np.isfinite(ref).all() and (ref > 80).any(), "the case must reach the float32 underflow range"
    np.testing.assert_allclose(scores, ref, rtol=1e-6, atol=1e-4)
    assert list(np.argsort(scores)) == list(np.argsort(ref))


def test_image_threshold_is_on_the_image_score_scale(small_data, trained):
    normal, _, _ = small_data
    size = trained.calibration_size_
    scores = log_domain_image_scores(trained, normal, size)
    k = int(np.floor(len(scores) * trained.threshold_beta_))
    # anomalous iff score > threshold flags at most ⌊n·β⌋ training images; the threshold is the
    # (k+1)-th largest training score.
    assert trained.image_threshold_ == pytest.approx(np.sort(scores)[::-1][k], abs=1e-4)


def test_step_budget_schedule_does_not_depend_on_the_image_count():
    rng = np.random.default_rng(3)
    steps = {}
    for n in (5, 40):
        normal = [rng.normal(size=(n, 8, 8, 8)).astype(np.float32), rng.normal(size=(n, 16, 4, 4)).astype(np.float32)]
        model = BGAD(steps=60, batch_size=4, chunk_size=64, lr=1e-3, progress=False).fit(normal)
        hist = model.history_
        steps[n] = [int(h["step"][-1]) for h in hist]
        for h in hist:
            assert np.all(np.diff(h["step"]) > 0) and set(np.unique(h["phase"])) <= {1.0, 2.0}
            assert np.all(np.isfinite(h["loss"])) and np.all(np.isfinite(h["normal_log_likelihood"]))
    # 4 images of 64 positions = 256 vectors = 4 chunks per batch at level 0, 1 at level 1:
    # 60 steps of the finest level → 15 batches, whichever the image count.
    assert steps[5] == steps[40] == [60, 15]


def test_history_survives_save_and_load(tmp_path, small_data):
    normal, anomalous, masks = small_data
    model = small_model(steps=40).fit(normal, anomalous, masks)
    hist = model.history_
    assert [len(h["step"]) for h in hist] == [len(h["step"]) for h in hist] and len(hist[0]["step"]) >= 10
    phases = hist[0]["phase"]
    assert phases[0] == 1 and phases[-1] == 2 and np.all(np.diff(phases) >= 0)
    # Phase 2 of BGAD with anomalies evaluates the boundaries: b_a = b_n − τ.
    p2 = (phases == 2) & np.isfinite(hist[0]["normal_boundary"])
    assert p2.any()
    # In ℓ units: b_a · α_n = (b_n − τ) · α_n, with τ = 0.1 and α_n = 10.
    np.testing.assert_allclose(hist[0]["abnormal_boundary"][p2], hist[0]["normal_boundary"][p2] - 1.0, atol=1e-5)
    model.save(tmp_path / "m.bgad")
    loaded = BGAD.load(tmp_path / "m.bgad")
    for a, b in zip(hist, loaded.history_):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(model.separation_, loaded.separation_)


def _separation_from_history(h):
    """Independent numpy version of the separation statistic (bgad.h, bgad_model_separation)."""
    ok = ((h["phase"] == 2) & np.isfinite(h["abnormal_log_likelihood"]) & np.isfinite(h["normal_boundary"])
          & np.isfinite(h["abnormal_boundary"]))
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return np.nan
    tail = idx[idx.size - max(1, idx.size // 4):]
    gap = np.sum(h["normal_log_likelihood"][tail] - h["abnormal_log_likelihood"][tail])
    margin = np.sum(h["normal_boundary"][tail] - h["abnormal_boundary"][tail])
    return gap / margin if margin > 0 else np.nan


def test_separation_is_the_last_quarter_gap_in_margins(small_data):
    normal, anomalous, masks = small_data
    model = small_model(steps=40).fit(normal, anomalous, masks)
    expected = [_separation_from_history(h) for h in model.history_]
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(model.separation_, expected, rtol=1e-12)
    # Without known anomalies (NFAD) there is nothing to separate: NaN, and no warning.
    nfad = small_model(steps=40, variant="nfad").fit(normal)
    assert np.all(np.isnan(nfad.separation_)) and nfad.training_warning() is None


def test_training_warning_names_the_level_and_the_budget(monkeypatch, small_data):
    normal, anomalous, masks = small_data
    model = small_model(steps=40).fit(normal, anomalous, masks)
    assert model.separation_.shape == (2,)
    # Every level within one margin: warn, naming the best level and a doubled budget.
    monkeypatch.setattr(BGAD, "separation_", property(lambda self: np.array([0.3, 0.6])))
    message = model.training_warning()
    assert message is not None and "level 1" in message and "0.60" in message and "steps=80" in message
    monkeypatch.setattr(BGAD, "separation_", property(lambda self: np.array([0.3, np.nan])))
    assert "level 0" in model.training_warning()
    # One level beyond the margin is enough: no warning.
    monkeypatch.setattr(BGAD, "separation_", property(lambda self: np.array([0.3, 2.5])))
    assert model.training_warning() is None
    monkeypatch.setattr(BGAD, "separation_", property(lambda self: np.array([np.nan, np.nan])))
    assert model.training_warning() is None
