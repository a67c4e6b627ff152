"""Issue #19 (hardening) through Python: files judged by their header before they are read,
corrupt detector configurations as BGADError, the weight cache verified by digest, the mode
of saved files, and kill -9 during save never leaving a damaged file."""

import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import bgad
from bgad import BGADError, weights
from bgad.detector import Detector
from bgad.model import BGAD


@pytest.fixture(scope="module")
def detector_bytes():
    rng = np.random.default_rng(0)
    normals = [rng.integers(60, 120, (48, 48, 3), dtype=np.uint8) for _ in range(6)]
    det = Detector(image_size=32, steps=8, rpag_per_anomaly=0, variant="nfad", feature_batch=8, progress=False)
    det.fit(normals)
    return det.to_bytes()


def _sparse(path: Path, head: bytes, size: int) -> Path:
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def _detector_file(json_bytes: bytes) -> bytes:
    body = struct.pack("<I", len(json_bytes)) + json_bytes + b"\0"
    head = b"BGADDET\0" + struct.pack("<IIQ", 2, 0, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head))


def test_huge_files_with_a_valid_magic_are_refused_from_their_header(tmp_path):
    huge = 1_900_000_000
    cases = [
        (lambda p: BGAD.load(p), b"BGADMODL" + struct.pack("<IIQ", 2, 0, huge - 32)),
        (lambda p: Detector.load(p), b"BGADDET\0" + struct.pack("<IIQ", 2, 0, huge - 28)),
        (lambda p: BGAD.load(p), b"BGADMODL" + struct.pack("<IIQ", 2, 0, 12)),  # declares 12 bytes
    ]
    for i, (load, head) in enumerate(cases):
        path = _sparse(tmp_path / f"huge{i}", head, huge)
        start = time.perf_counter()
        with pytest.raises(BGADError) as err:
            load(path)
        assert err.value.status == 3, str(err.value)
        assert time.perf_counter() - start < 1.0, "the file was read"


@pytest.mark.parametrize("text,word", [
    (b'{"feature_batch": 0}', "feature_batch"), (b'{"image_size": 200000}', "image_size"),
    (b'{"batch_size": 0}', "batch_size"), (b'{"image_size": 64', "JSON"), (b"[1]", "object"),
    (b'{"strides": "8"}', "strides"), (b"\xff\xfe{}", "JSON"), (b"[" * 5000, "nesting"),
    (b'{"backbone": "resnet"}', "backbone"), (b'{"seed": -1}', "seed"),
])
def test_corrupt_detector_configurations_are_bgad_errors(tmp_path, text, word):
    path = tmp_path / "det.bgad"
    path.write_bytes(_detector_file(text))
    with pytest.raises(BGADError) as err:
        Detector.load(path)
    assert err.value.status == 3 and word in str(err.value), str(err.value)
    with pytest.raises(BGADError):
        Detector.from_bytes(_detector_file(text))


def test_a_doctored_weight_cache_is_replaced_by_the_official_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("BGAD_CACHE_DIR", str(tmp_path))
    v = weights.variant("lite0")
    official = weights.prepare("lite0")
    assert official.parent == tmp_path
    assert weights.sha256_of(official) == v.weights_sha256
    # Plant weights with one value changed and a valid header and checksum.
    blob = bytearray(official.read_bytes())
    blob[-4:] = struct.pack("<f", 42.0)
    blob[24:28] = struct.pack("<I", zlib.crc32(bytes(blob[32:])))
    official.write_bytes(bytes(blob))
    assert not weights.verified(official, "lite0")
    again = weights.prepare("lite0")
    assert weights.sha256_of(again) == v.weights_sha256, "the doctored file was used"
    # A special file in its place is not read (and is not verified).
    assert not weights.verified("/dev/zero", "lite0")


def test_the_detector_reports_its_backbone_digest(detector_bytes):
    det = Detector.from_bytes(detector_bytes)
    digest = det.backbone_sha256_
    assert len(digest) == 64
    assert weights.official_variant(digest) is weights.variant("lite0")
    assert weights.official_variant("0" * 64) is None
    with pytest.raises(BGADError):
        _ = Detector(progress=False).backbone_sha256_


def test_saved_files_take_the_umask_keep_an_existing_mode_and_errors_name_the_path(detector_bytes, tmp_path, monkeypatch):
    det = Detector.from_bytes(detector_bytes)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-tmpdir"))  # nothing is staged there
    old = os.umask(0o027)
    try:
        path = tmp_path / "det.bgad"
        det.save(path)
        assert path.stat().st_mode & 0o777 == 0o640
        path.chmod(0o604)
        det.save(path)
        assert path.stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old)
    assert Detector.load(path).to_bytes() == detector_bytes
    target = tmp_path / "missing" / "det.bgad"
    with pytest.raises(BGADError) as err:
        det.save(target)
    assert err.value.status == 2 and str(target) in str(err.value)
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(BGADError) as err:
            det.save(locked / "det.bgad")
        assert "locked" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.bgad"], "no temporary file left"


_SAVER = textwrap.dedent("""
    import sys, bgad
    from bgad.detector import Detector
    data = open(sys.argv[1], 'rb').read()
    det = Detector.from_bytes(data)
    print('ready', flush=True)
    while True:
        det.save(sys.argv[2])
""")


def kill_during_save(detector_bytes: bytes, folder: Path, kills: int, seed: int = 0):
    """Starts a process that saves a detector to one path in a loop and kills it with SIGKILL
    `kills` times at random moments; the path holds a complete save from the start, and after
    each kill it must load and hold exactly the detector. Returns (kills, loads that
    succeeded, temporary files left behind)."""
    src = folder / "src.bgad"
    src.write_bytes(detector_bytes)
    target = folder / "target.bgad"
    Detector.from_bytes(detector_bytes).save(target)
    rng = np.random.default_rng(seed)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(bgad.__file__).resolve().parents[1])] + sys.path)
    good = 0
    for _ in range(kills):
        p = subprocess.Popen([sys.executable, "-c", _SAVER, str(src), str(target)], stdout=subprocess.PIPE, env=env)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.0, 0.5)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        assert target.read_bytes() == detector_bytes, "a damaged or partial file"
        Detector.load(target)
        good += 1
    leftovers = [n.name for n in folder.iterdir() if ".tmp-" in n.name]
    return kills, good, leftovers


def test_kill_9_during_save_never_leaves_a_damaged_file(detector_bytes, tmp_path):
    kills, good, leftovers = kill_during_save(detector_bytes, tmp_path, kills=8)
    assert good == kills
    # Leftover temporaries carry the recognisable prefix and are removed by a later save once old.
    for name in leftovers:
        assert name.startswith("target.bgad.tmp-") and len(name) == len("target.bgad.tmp-") + 6
        os.utime(tmp_path / name, (time.time() - 7200, time.time() - 7200))
    Detector.from_bytes(detector_bytes).save(tmp_path / "target.bgad")
    assert [n.name for n in tmp_path.iterdir() if ".tmp-" in n.name] == []


@pytest.mark.parametrize("params,name", [({"batch_size": 0}, "batch_size"), ({"feature_batch": 0}, "feature_batch"),
                                         ({"image_size": 200000}, "image_size"), ({"steps": -1}, "steps"),
                                         ({"lr": float("nan")}, "lr"), ({"beta": float("inf")}, "beta")])
def test_out_of_range_detector_settings_are_refused_at_construction(params, name):
    with pytest.raises(BGADError, match=name):
        Detector(progress=False, **params)


def test_eight_threads_on_one_detector_give_the_serial_results(detector_bytes):
    from conftest import run_in_threads

    det = Detector.from_bytes(detector_bytes)
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 255, (40 + k, 50, 3), dtype=np.uint8) for k in range(8)]
    serial = [det.predict([im])[0] for im in images]
    results = [None] * 8

    def work(k):
        for _ in range(3):
            (p,) = det.predict([images[k]])
            assert results[k] is None or results[k][0] == p.score
            results[k] = (p.score, p.anomaly_map)

    run_in_threads(8, work)
    for k in range(8):
        assert results[k][0] == serial[k].score
        np.testing.assert_array_equal(results[k][1], serial[k].anomaly_map)


@pytest.mark.parametrize("image", [None, 3, 2.5, [[1, 2], [3, 4]], object()])
def test_images_that_are_neither_arrays_nor_paths_are_bgad_errors(detector_bytes, image):
    det = Detector.from_bytes(detector_bytes)
    with pytest.raises(BGADError, match="uint8 array or a path"):
        det.predict([image])
