"""The C example (examples/c/score.c) scores a PNG with a saved detector exactly as Python's
``bgad.Detector`` does: both read the same file (the ``saved`` fixture of conftest.py, which the
Swift example's test reads too). The test compiles the example against the
header and library the suite runs on (the source tree's, or the installed wheel's)."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bgad import _native
from conftest import assert_example_scores_like_python, fixture_path, header_path


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """examples/c/score.c compiled against bgad.h and the loaded libbgad.so."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    source = Path(__file__).resolve().parents[2] / "examples" / "c" / "score.c"
    if not source.is_file():
        source = fixture_path("score.c")
    lib = Path(_native.lib_path).resolve()
    out = tmp_path_factory.mktemp("c_example") / "score"
    subprocess.run([cc, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{header_path().parent}", str(source),
                    f"-L{lib.parent}", "-lbgad", f"-Wl,-rpath,{lib.parent}", "-o", str(out)], check=True)
    return out


def _run(example, *args):
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    return subprocess.run([str(example), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)


def test_c_example_scores_like_python(saved, example):
    path, probes = saved
    assert_example_scores_like_python(lambda *args: _run(example, *args), path, probes)


def test_c_example_reports_errors(saved, example, tmp_path):
    path, probes = saved
    assert _run(example).returncode == 2
    missing = _run(example, tmp_path / "missing.bgad", probes[0])
    assert missing.returncode == 1 and "missing.bgad" in missing.stderr
    corrupt = tmp_path / "corrupt.bgad"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    corrupt.write_bytes(bytes(data))
    bad = _run(example, corrupt, probes[0])
    assert bad.returncode == 1 and "checksum" in bad.stderr
    not_png = _run(example, path, path)
    assert not_png.returncode == 1 and "PNG" in not_png.stderr
