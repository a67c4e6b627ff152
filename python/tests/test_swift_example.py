"""The Swift example (examples/swift: a package that depends on this one by path and calls the
engine's ``Detector`` through its Swift API) scores the same PNG with the same saved detector as
Python's ``bgad.Detector`` and the C example, and gets the same numbers.

The program is built by ``make swift-example`` (part of ``make test``), which passes its path in
``BGAD_SWIFT_EXAMPLE``. Without the variable the test is skipped (no Swift toolchain needed to
run the rest of the suite); with it, a missing program is a failure.
"""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import assert_example_scores_like_python


@pytest.fixture(scope="module")
def example():
    path = os.environ.get("BGAD_SWIFT_EXAMPLE")
    if not path:
        pytest.skip("BGAD_SWIFT_EXAMPLE is not set (make swift-example builds the program and sets it)")
    program = Path(path)
    assert program.is_file() and os.access(program, os.X_OK), f"BGAD_SWIFT_EXAMPLE={path}: no such program"
    return program


def _run(example, *args):
    return subprocess.run([str(example), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_swift_example_scores_like_python(saved, example):
    path, probes = saved
    # The same engine code on the same file: equal to float rounding of the printout; the
    # Swift example also prints the map's size and peak.
    for fields, expected in assert_example_scores_like_python(lambda *args: _run(example, *args), path, probes,
                                                               maps=True):
        size, peak = fields["map"].split(", max ")
        assert tuple(int(v) for v in size.split("x")) == expected.anomaly_map.shape
        assert float(peak) == pytest.approx(float(expected.anomaly_map.max()), rel=1e-5)


def test_swift_example_reports_errors(saved, example, tmp_path):
    path, probes = saved
    assert _run(example).returncode == 2
    missing = _run(example, tmp_path / "missing.bgad", probes[0])
    assert missing.returncode == 1 and "missing.bgad" in missing.stderr
    not_png = _run(example, path, path)
    assert not_png.returncode == 1 and "PNG" in not_png.stderr
