"""The bad-input table of docs/ROBUSTNESS.md, reproducible: every malformed input below goes
through the Python API or straight through the C ABI (ctypes with raw pointers, as a C
program calls it), and the library's answer is printed as a Markdown table. Then kill -9
during save (the file must always load and equal the detector saved) and 8 threads on one
detector (results equal to the serial ones).

Run: make robustness  (or BGAD_LIBRARY=.build/release/libbgad.so PYTHONPATH=python python3 bench/robustness.py
[--kills 30])

A row is "expected" when the library answers with a BGADError (Python) / an error status
and message (C), or succeeds where the input is legal; anything else (another exception
type, a crash, an error without a message) is marked UNEXPECTED and makes the script exit 1.
"""

import argparse
import ctypes
import os
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

import bgad
from bgad import BGADError, io, weights
from bgad._native import lib
from bgad.detector import Detector
from bgad.flow import Flow
from bgad.model import BGAD

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
from test_hardening import kill_during_save  # noqa: E402  (one implementation of the kill test)

ROWS = []
UNEXPECTED = []
TMP = []  # the scratch folder, shown as $TMP in messages


def case(interface, what, fn):
    """Runs one bad input and records the library's answer."""
    try:
        result = fn()
        answer = f"accepted ({result})" if result is not None else "accepted"
    except BGADError as e:
        msg = str(e).replace("|", "\\|").replace("\n", " ")
        if TMP:
            msg = msg.replace(TMP[0], "$TMP")
        msg = f"{msg[:110]}{'…' if len(msg) > 110 else ''}"
        if interface == "C":
            answer = f"status {e.status}: {msg}"
        else:
            answer = f"BGADError {e.status or '(raised in Python)'}: {msg}"
        if not msg:
            UNEXPECTED.append(what)
    except Exception as e:  # anything but BGADError is a defect
        answer = f"UNEXPECTED {type(e).__name__}: {e}"
        UNEXPECTED.append(what)
    ROWS.append((interface, what, answer))


def c_call(name, argtypes, *args):
    """Calls C entry point `name`; returns 'status n: message' or raises BGADError for a table row."""
    fn = getattr(lib, name)
    fn.argtypes, fn.restype = argtypes, ctypes.c_int
    status = fn(*args)
    if status != 0:
        message = (lib.bgad_last_error() or b"").decode()
        if not message:
            raise RuntimeError(f"status {status} without a message")
        raise BGADError(message, status)
    return "status 0"


def detector_file(json_text: bytes, version: int = 2, fitted: bytes = b"\0") -> bytes:
    body = struct.pack("<I", len(json_text)) + json_text + fitted
    head = b"BGADDET\0" + struct.pack("<IIQ", version, 0, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head))


def reseal_model(blob: bytes) -> bytes:
    """A model file with its payload length and CRC made to match (a doctored but 'valid' file)."""
    payload = blob[32:]
    return blob[:16] + struct.pack("<QI", len(payload), zlib.crc32(payload)) + blob[28:32] + payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--update-doc", metavar="PATH",
                    help="also replace the text between the robustness markers of PATH (docs/ROBUSTNESS.md)")
    args = ap.parse_args()
    lines = []

    def say(text=""):
        print(text)
        lines.append(text)

    tmp = Path(tempfile.mkdtemp(prefix="bgad-robustness-"))
    TMP.append(str(tmp))
    rng = np.random.default_rng(0)
    normals = [rng.integers(60, 120, (48, 48, 3), dtype=np.uint8) for _ in range(6)]
    det = Detector(image_size=32, steps=8, rpag_per_anomaly=0, variant="nfad", feature_batch=8, progress=False)
    det.fit(normals)
    good = det.to_bytes()
    det.save(tmp / "good.bgad")
    feats = [rng.normal(size=(4, c, 4, 4)).astype(np.float32) for c in (4, 6)]
    model = BGAD([4, 6], progress=False, blocks=2, meta_epochs=1, sub_epochs=1, batch_size=4, chunk_size=16)
    model.fit(feats)
    model.save(tmp / "good.model")
    good_model = (tmp / "good.model").read_bytes()

    def write(name, data):
        (tmp / name).write_bytes(data)
        return tmp / name

    def sparse(name, head, size):
        with open(tmp / name, "wb") as f:
            f.write(head)
            f.truncate(size)
        return tmp / name

    os.mkfifo(tmp / "fifo")
    P = "Python"

    # ---- Detector files
    for what, path in [
        ("Detector.load: missing file", tmp / "missing.bgad"),
        ("Detector.load: a directory", tmp),
        ("Detector.load: /dev/zero", "/dev/zero"),
        ("Detector.load: a FIFO without writer", tmp / "fifo"),
        ("Detector.load: empty file", write("empty", b"")),
        ("Detector.load: text file", write("text", b"hello world, not a detector")),
        ("Detector.load: first half of a valid file", write("half", good[: len(good) // 2])),
        ("Detector.load: one bit flipped in the weights", write("flip", good[:5000] + bytes([good[5000] ^ 4]) + good[5001:])),
        ("Detector.load: valid file + 1 trailing byte", write("trail", good + b"\0")),
        ("Detector.load: valid CRC, JSON cut short", write("j1", detector_file(b'{"image_size": 6'))),
        ("Detector.load: valid CRC, image_size 200000", write("j2", detector_file(b'{"image_size": 200000}'))),
        ("Detector.load: valid CRC, feature_batch 0", write("j3", detector_file(b'{"feature_batch": 0}'))),
        ("Detector.load: valid CRC, batch_size 0", write("j4", detector_file(b'{"batch_size": 0}'))),
        ("Detector.load: valid CRC, 5000 nested arrays", write("j5", detector_file(b"[" * 5000))),
        ("Detector.load: valid CRC, not UTF-8", write("j6", detector_file(b"\xff\xfe\xfd"))),
        ("Detector.load: valid CRC, JSON array", write("j7", detector_file(b"[1, 2]"))),
        ("Detector.load: valid CRC, unknown key", write("j8", detector_file(b'{"evil": 1}'))),
        ("Detector.load: valid CRC, lr = 1e999", write("j9", detector_file(b'{"lr": 1e999}'))),
        ("Detector.load: valid CRC, fitted flag 7", write("j10", detector_file(b"{}", fitted=b"\7"))),
        ("Detector.load: valid CRC, weights claim 2^62 bytes",
         write("j11", detector_file(b"{}", fitted=b"\1" + struct.pack("<I", 5) + b"lite0" + bytes(4) + struct.pack("<Q", 1 << 62)))),
        ("Detector.load: format version 1 (old Python)", write("v1", detector_file(b"{}", version=1))),
        ("Detector.load: format version 99", write("v99", detector_file(b"{}", version=99))),
        ("Detector.load: 1.9 GB sparse file, valid header", sparse("huge", b"BGADDET\0" + struct.pack("<IIQ", 2, 0, 1_900_000_000 - 28), 1_900_000_000)),
        ("Detector.load: header declares 1 kB, file 1.9 GB", sparse("lying", b"BGADDET\0" + struct.pack("<IIQ", 2, 0, 1000), 1_900_000_000)),
        ("Detector.load: path with NUL", str(tmp / "good.bgad") + "\0.x"),
        ("Detector.load: empty path", ""),
    ]:
        case(P, what, lambda p=path: (Detector.load(p), None)[1])
    case(P, "Detector.from_bytes: b''", lambda: (Detector.from_bytes(b""), None)[1])
    case(P, "Detector.from_bytes: 3 random MB", lambda: (Detector.from_bytes(rng.bytes(3 << 20)), None)[1])

    # ---- Model files (bgad.BGAD)
    def altered(find: bytes, replace: bytes) -> bytes:
        i = good_model.index(find, 32)
        return reseal_model(good_model[:i] + replace + good_model[i + len(find):])

    clamp_text = struct.pack("<I", 5) + b"clamp" + struct.pack("<I", 3) + b"1.9"
    flow_head = struct.pack("<IIf", 2, 128, 1.9)
    levels = struct.pack("<III", 2, 4, 6)
    for what, data in [
        ("BGAD.load: clamp text altered (1.9 → 1.7), CRC fixed", altered(clamp_text, clamp_text[:-1] + b"7")),
        ("BGAD.load: flow header clamp 1.9 → 2.5, CRC fixed", altered(flow_head, struct.pack("<IIf", 2, 128, 2.5))),
        ("BGAD.load: level 0 channels 4 → 4096, CRC fixed", altered(levels, struct.pack("<III", 2, 4096, 6))),
        ("BGAD.load: level 0 channels 4 → 8192, CRC fixed", altered(levels, struct.pack("<III", 2, 8192, 6))),
        ("BGAD.load: flow blocks 2 → 64, CRC fixed", altered(flow_head, struct.pack("<IIf", 64, 128, 1.9))),
        ("BGAD.load: flow condition dim 128 → 4096, CRC fixed", altered(flow_head, struct.pack("<IIf", 2, 4096, 1.9))),
        ("BGAD.load: valid file truncated by 7 bytes", good_model[:-7]),
        ("BGAD.load: format version 3", good_model[:8] + struct.pack("<I", 3) + good_model[12:]),
        ("BGAD.load: payload byte flipped (CRC mismatch)", good_model[:100] + bytes([good_model[100] ^ 1]) + good_model[101:]),
    ]:
        case(P, what, lambda d=data, w=what: (BGAD.load(write("m" + str(abs(hash(w))), d)), None)[1])
    case(P, "BGAD.load: 1.9 GB sparse file, valid header",
         lambda: (BGAD.load(sparse("hugem", b"BGADMODL" + struct.pack("<IIQ", 2, 0, 1_900_000_000 - 32), 1_900_000_000)), None)[1])
    case(P, "BGAD.load: /dev/zero", lambda: (BGAD.load("/dev/zero"), None)[1])

    # ---- Construction and prediction
    for params in [dict(batch_size=0), dict(feature_batch=0), dict(image_size=8), dict(image_size=200000),
                   dict(strides=[5]), dict(strides=[16, 8]), dict(lr=float("nan")), dict(variant="x"),
                   dict(steps=-1), dict(foreground="sky"), dict(backbone="resnet"), dict(blocks=0), dict(clamp=0)]:
        case(P, f"Detector({', '.join(f'{k}={v!r}' for k, v in params.items())})",
             lambda p=params: (Detector(progress=False, **p), None)[1])
    fitted = Detector.from_bytes(good)
    case(P, "predict before fit", lambda: Detector(progress=False).predict([normals[0]]))
    for what, img in [("float64 image", np.zeros((32, 32))), ("(H, W, 4) image", np.zeros((32, 32, 4), np.uint8)),
                      ("(0, 0) image", np.zeros((0, 0), np.uint8)), ("(1, 1, 1, 1) image", np.zeros((1, 1, 1, 1), np.uint8)),
                      ("40000 × 2 image", np.zeros((40000, 2), np.uint8)), ("None", None), ("a string that is no file", "nofile.png"),
                      ("bool image", np.zeros((8, 8), bool)), ("text file as image", str(write("t.png", b"not png")))]:
        case(P, f"predict: {what}", lambda i=img: (fitted.predict([i]), None)[1])
    case(P, "fit: no images", lambda: Detector(progress=False).fit([]))
    case(P, "fit: 2 anomalies, 1 mask", lambda: Detector(progress=False).fit(normals, normals[:2], [np.zeros((48, 48), np.uint8)]))
    case(P, "fit: mask of another shape", lambda: Detector(progress=False).fit(normals, normals[:1], [np.zeros((5, 5), np.uint8)]))

    # ---- PNG
    bomb = zlib.compress(b"\0" * (12000 * 12001), 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 12000, 12000, 8, 0, 0, 0, 0)
    bomb_png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", bomb) + chunk(b"IEND", b"")
    huge_ihdr = struct.pack(">IIBBBBB", 1 << 30, 1 << 30, 8, 0, 0, 0, 0)
    for what, data in [
        ("read_png: 12000² zeros in 140 kB (bomb)", bomb_png),
        ("read_png: IHDR 2^30 × 2^30", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", huge_ihdr) + chunk(b"IEND", b"")),
        ("read_png: signature only", b"\x89PNG\r\n\x1a\n"),
        ("read_png: valid PNG cut in half", bomb_png[:len(bomb_png) // 2]),
        ("read_png: text file", b"not a png at all"),
    ]:
        case(P, what, lambda d=data, w=what: (io.read_png(write("p" + str(abs(hash(w))) + ".png", d)), None)[1])
    case(P, "read_png: /dev/zero", lambda: io.read_png("/dev/zero"))
    case(P, "read_png: a directory", lambda: io.read_png(tmp))
    case(P, "write_png: into a missing folder", lambda: io.write_png(tmp / "no" / "x.png", np.zeros((4, 4), np.uint8)))
    case(P, "write_png: path with NUL", lambda: io.write_png(str(tmp / "a.png") + "\0.x", np.zeros((4, 4), np.uint8)))
    case(P, "write_png: float image", lambda: io.write_png(tmp / "f.png", np.zeros((4, 4), np.float32)))
    case(P, "write_png: 4 channels", lambda: io.write_png(tmp / "f.png", np.zeros((4, 4, 4), np.uint8)))
    case(P, "Detector.save: into a missing folder", lambda: fitted.save(tmp / "no" / "d.bgad"))
    case(P, "Detector.save: onto a directory", lambda: fitted.save(tmp))

    # ---- Flow and threads
    flow = Flow(8, cond_dim=4, blocks=2)
    cond = np.zeros((1, 4), np.float32)
    case(P, "Flow.train_step: x = 1e30 (loss overflows)", lambda: flow.train_step(np.full((16, 8), 1e30, np.float32), np.zeros((16, 4), np.float32), 1e-3))
    case(P, "Flow.log_prob: NaN in x", lambda: flow.log_prob(np.full((2, 8), np.nan, np.float32), np.zeros((2, 4), np.float32)))
    case(P, "Flow.log_prob: x of width 7", lambda: flow.log_prob(np.zeros((2, 7), np.float32), np.zeros((2, 4), np.float32)))
    case(P, "Flow(dim=1)", lambda: (Flow(1), None)[1])
    case(P, "Flow(dim=100000)", lambda: (Flow(100000), None)[1])
    case(P, "set_num_threads(0)", lambda: bgad.set_num_threads(0))
    case(P, "set_num_threads(1000)", lambda: bgad.set_num_threads(1000))

    # ---- Weight cache
    def doctored_cache():
        os.environ["BGAD_CACHE_DIR"] = str(tmp / "cache")
        path = weights.prepare("lite0")
        blob = bytearray(path.read_bytes())
        blob[-4:] = struct.pack("<f", 42.0)
        blob[24:28] = struct.pack("<I", zlib.crc32(bytes(blob[32:])))
        path.write_bytes(bytes(blob))
        weights.prepare("lite0")
        ok = weights.verified(path, "lite0")
        del os.environ["BGAD_CACHE_DIR"]
        return "replaced by the official conversion" if ok else "USED"

    case(P, "weights.prepare: cache file with one weight changed, CRC fixed", doctored_cache)

    # ---- C ABI (ctypes, raw pointers)
    C = "C"
    vp, cp, i64, i32 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int32
    out = ctypes.c_void_p()
    i64p = ctypes.POINTER(ctypes.c_int64)
    a, b_, c_ = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
    case(C, "bgad_detector_load(NULL, &out)", lambda: c_call("bgad_detector_load", [cp, vp], None, ctypes.addressof(out)))
    case(C, "bgad_detector_load(path, NULL)", lambda: c_call("bgad_detector_load", [cp, vp], str(tmp / "good.bgad").encode(), None))
    case(C, "bgad_detector_load(\"/dev/zero\")", lambda: c_call("bgad_detector_load", [cp, vp], b"/dev/zero", ctypes.addressof(out)))
    case(C, "bgad_detector_from_bytes(NULL, 5)", lambda: c_call("bgad_detector_from_bytes", [vp, i64, vp], None, 5, ctypes.addressof(out)))
    buf = ctypes.create_string_buffer(good)
    case(C, "bgad_detector_from_bytes(buf, -1)", lambda: c_call("bgad_detector_from_bytes", [vp, i64, vp], ctypes.addressof(buf), -1, ctypes.addressof(out)))
    case(C, "bgad_detector_from_bytes(buf, len − 1)", lambda: c_call("bgad_detector_from_bytes", [vp, i64, vp], ctypes.addressof(buf), len(good) - 1, ctypes.addressof(out)))
    case(C, "bgad_detector_predict(NULL, …)", lambda: c_call("bgad_detector_predict", [vp, vp, i64, vp, vp, vp], None, None, 1, None, None, None))
    score, decision = ctypes.c_double(), ctypes.c_int32()
    sp, dp = ctypes.addressof(score), ctypes.addressof(decision)
    case(C, "bgad_detector_predict(det, images=NULL, n=1)", lambda: c_call("bgad_detector_predict", [vp, vp, i64, vp, vp, vp], fitted._handle, None, 1, sp, dp, None))
    pixels = ctypes.create_string_buffer(16)
    img = (ctypes.c_int64 * 4)(ctypes.addressof(pixels), 1 << 40, 1 << 40, 3)
    case(C, "bgad_detector_predict: image 2^40 × 2^40", lambda: c_call("bgad_detector_predict", [vp, vp, i64, vp, vp, vp], fitted._handle, ctypes.addressof(img), 1, sp, dp, None))
    img2 = (ctypes.c_int64 * 4)(ctypes.addressof(pixels), 4, 4, 2)
    case(C, "bgad_detector_predict: 2-channel image", lambda: c_call("bgad_detector_predict", [vp, vp, i64, vp, vp, vp], fitted._handle, ctypes.addressof(img2), 1, sp, dp, None))
    case(C, "bgad_detector_predict: n = -1", lambda: c_call("bgad_detector_predict", [vp, vp, i64, vp, vp, vp], fitted._handle, ctypes.addressof(img2), -1, sp, dp, None))
    case(C, "bgad_detector_config(det, NULL, -1, &needed)", lambda: c_call("bgad_detector_config", [vp, vp, i64, vp], fitted._handle, None, -1, ctypes.addressof(a)))
    case(C, "bgad_detector_create(\"{not json\")", lambda: c_call("bgad_detector_create", [cp, vp], b"{not json", ctypes.addressof(out)))
    unfitted = ctypes.c_void_p()
    c_call("bgad_detector_create", [cp, vp], b"{}", ctypes.addressof(unfitted))
    case(C, "bgad_detector_backbone_sha256(unfitted detector)", lambda: c_call("bgad_detector_backbone_sha256", [vp, vp], unfitted, ctypes.addressof(ctypes.create_string_buffer(65))))
    img3 = (ctypes.c_int64 * 4)(ctypes.addressof(ctypes.create_string_buffer(48)), 4, 4, 3)
    case(C, "bgad_detector_predict(unfitted detector)", lambda: c_call("bgad_detector_predict", [vp, vp, i64, vp, vp, vp], unfitted, ctypes.addressof(img3), 1, sp, dp, None))
    case(C, "bgad_detector_save(det, \"/nonexistent/x\")", lambda: c_call("bgad_detector_save", [vp, cp], fitted._handle, b"/nonexistent/x"))
    case(C, "bgad_model_load(\"/dev/zero\")", lambda: c_call("bgad_model_load", [cp, vp], b"/dev/zero", ctypes.addressof(out)))
    case(C, "bgad_model_create(n=2, channels={1, 2^40})", lambda: c_call("bgad_model_create", [i64, vp, vp], 2, ctypes.addressof((ctypes.c_int64 * 2)(1, 1 << 40)), ctypes.addressof(out)))
    case(C, "bgad_backbone_feature_shape(INT64_MAX, INT64_MAX, 8)", lambda: c_call("bgad_backbone_feature_shape", [i64, i64, i32, vp, vp, vp], 2**63 - 1, 2**63 - 1, 8, ctypes.addressof(a), ctypes.addressof(b_), ctypes.addressof(c_)))
    case(C, "bgad_backbone_load(\"/dev/zero\")", lambda: c_call("bgad_backbone_load", [cp, vp], b"/dev/zero", ctypes.addressof(out)))
    case(C, "bgad_set_num_threads(65)", lambda: c_call("bgad_set_num_threads", [i32], 65))
    case(C, "bgad_png_decode_info(NULL, 10)", lambda: c_call("bgad_png_decode_info", [vp, i64, i32, vp, vp, vp], None, 10, 0, ctypes.addressof(a), ctypes.addressof(b_), ctypes.addressof(c_)))
    case(C, "bgad_png_decode_info(bomb)", lambda: c_call("bgad_png_decode_info", [cp, i64, i32, vp, vp, vp], bomb_png, len(bomb_png), 0, ctypes.addressof(a), ctypes.addressof(b_), ctypes.addressof(c_)))
    case(C, 'bgad_png_write(path "")', lambda: c_call("bgad_png_write", [cp, vp, i64, i64, i64, i32], b"", ctypes.addressof(ctypes.create_string_buffer(16)), 4, 4, 1, 6))
    case(C, "bgad_png_write(pixels NULL)", lambda: c_call("bgad_png_write", [cp, vp, i64, i64, i64, i32], str(tmp / "n.png").encode(), None, 4, 4, 1, 6))
    case(C, "bgad_flow_create(dim=2^40)", lambda: c_call("bgad_flow_create", [i64, i64, i64, ctypes.c_float, ctypes.c_uint64, vp], 1 << 40, 4, 2, 1.9, 0, ctypes.addressof(out)))
    case(C, "bgad_flow_create(clamp=NaN)", lambda: c_call("bgad_flow_create", [i64, i64, i64, ctypes.c_float, ctypes.c_uint64, vp], 8, 4, 2, float("nan"), 0, ctypes.addressof(out)))
    case(C, "bgad_roc_auc(n = -5)", lambda: c_call("bgad_roc_auc", [vp, vp, i64, vp], None, None, -5, ctypes.addressof(ctypes.c_double())))
    case(C, "bgad_resize_bilinear_u8(2^31 × 2^31)", lambda: c_call("bgad_resize_bilinear_u8", [vp, i64, i64, i64, vp, i64, i64], ctypes.addressof(ctypes.create_string_buffer(4)), 1 << 31, 1 << 31, 1, ctypes.addressof(ctypes.create_string_buffer(4)), 2, 2))

    # ---- Table
    say("| # | via | input | answer |")
    say("|---|---|---|---|")
    for k, (via, what, answer) in enumerate(ROWS, 1):
        say(f"| {k} | {via} | {what} | {answer} |")
    say(f"\n{len(ROWS)} inputs ({sum(r[0] == P for r in ROWS)} Python, {sum(r[0] == C for r in ROWS)} C); "
          f"unexpected answers: {len(UNEXPECTED)} {UNEXPECTED}")

    # ---- kill -9 during save
    kdir = tmp / "kills"
    kdir.mkdir()
    t0 = time.perf_counter()
    kills, ok, left = kill_during_save(good, kdir, kills=args.kills, seed=1)
    say(f"\n**kill -9 during save:** {kills} kills, the file loaded and equalled the saved detector after {ok} of them, "
          f"0 damaged or partial; {len(left)} temporary files left by the killed writers (prefix target.bgad.tmp-), "
          f"{time.perf_counter() - t0:.0f} s")

    # ---- 8 threads on one detector
    images = [rng.integers(0, 255, (40 + k, 50, 3), dtype=np.uint8) for k in range(8)]
    serial = [fitted.predict([im])[0] for im in images]
    results = [[] for _ in range(8)]

    def work(k):
        for _ in range(5):
            (p,) = fitted.predict([images[k]])
            results[k].append((p.score, p.anomaly_map))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    same = sum(s == serial[k].score and np.array_equal(m, serial[k].anomaly_map) for k in range(8) for s, m in results[k])
    say(f"\n**8 threads on one detector:** 8 threads × 5 predictions (different images): {same} of 40 equal the serial "
        f"results bit for bit")
    if args.update_doc:
        doc = Path(args.update_doc)
        text = doc.read_text()
        begin, end = "<!-- robustness:begin -->", "<!-- robustness:end -->"
        i, j = text.index(begin) + len(begin), text.index(end)
        doc.write_text(text[:i] + "\n" + "\n".join(lines) + "\n" + text[j:])
    return 1 if UNEXPECTED or same != 40 or ok != kills else 0


if __name__ == "__main__":
    sys.exit(main())
