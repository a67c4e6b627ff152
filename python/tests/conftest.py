"""Shared pytest configuration: which ``bgad`` the tests exercise, and where their data lives.

The suite runs in two places:

- in the source tree (``python/tests`` beside ``python/bgad``): the package is imported from
  the tree and loads the library named by ``BGAD_LIBRARY`` or the development build;
- anywhere else (CI copies ``python/tests`` to a temporary folder and runs it against the
  installed wheel): nothing is added to ``sys.path``, so ``import bgad`` finds the installed
  package and its own ``libbgad.so``.

Test data travels with the tests: :func:`fixture_path` looks in ``fixtures/`` beside this
file (where CI copies them), then in the source tree's ``Tests/Fixtures``; the C header is
the installed package's ``include/bgad.h``, or the source tree's (:func:`header_path`).
Test modules import these helpers with ``from conftest import ...``.
"""

import sys

import pytest
from pathlib import Path

TESTS = Path(__file__).resolve().parent
_SOURCE_PACKAGE = TESTS.parent / "bgad" / "__init__.py"
_REPO = TESTS.parents[1]

if _SOURCE_PACKAGE.is_file() and str(TESTS.parent) not in sys.path:
    sys.path.insert(0, str(TESTS.parent))


def fixture_path(name: str) -> Path:
    """The folder or file ``name`` of the test data (e.g. ``"efficientnet-lite0"``): under
    ``fixtures/`` beside the tests, else under the source tree's ``Tests/Fixtures``."""
    for base in (TESTS / "fixtures", _REPO / "Tests" / "Fixtures"):
        if (base / name).exists():
            return base / name
    raise FileNotFoundError(f"test data {name!r} is neither in {TESTS / 'fixtures'} "
                            f"nor in {_REPO / 'Tests' / 'Fixtures'}")


def header_path() -> Path:
    """``bgad.h``: the one installed with the package (a wheel), else the source tree's."""
    import bgad

    installed = Path(bgad.__file__).resolve().parent / "include" / "bgad.h"
    if installed.is_file():
        return installed
    source = _REPO / "CInterop" / "include" / "bgad.h"
    if source.is_file():
        return source
    raise FileNotFoundError(f"bgad.h is neither in {installed} nor in {source}")


def pytest_report_header(config):
    """One line saying which package, library and OpenBLAS kernels the run exercises."""
    import bgad
    from bgad import _native

    return (f"bgad {bgad.__version__} from {Path(bgad.__file__).parent}; library {_native.lib_path}; "
            f"OpenBLAS kernels {_native.openblas_corename() or 'unknown'}")


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """A small fitted detector saved to a file, and PNG probes of several sizes (RGB and gray,
    non-square, one with the known defect): what the C and Swift examples' tests score."""
    import numpy as np
    import bgad
    tmp = tmp_path_factory.mktemp("saved_detector")
    rng = np.random.default_rng(0)
    normals = [rng.integers(90, 130, (60 + 4 * i, 72, 3), dtype=np.uint8) for i in range(8)]
    anomaly = rng.integers(90, 130, (64, 64, 3), dtype=np.uint8)
    anomaly[20:36, 24:40] = 250
    mask = np.zeros((64, 64), np.uint8)
    mask[20:36, 24:40] = 1
    det = bgad.Detector(image_size=64, steps=30, blocks=2, real_repeats=2,
                        rpag_per_anomaly=2, seed=1, progress=False)
    det.fit(normals, anomalous_images=[anomaly], anomaly_masks=[mask])
    path = tmp / "widget.bgad"
    det.save(path)
    probes = []
    for i, img in enumerate([rng.integers(90, 130, (80, 50, 3), dtype=np.uint8), anomaly,
                             rng.integers(80, 140, (33, 91), dtype=np.uint8)]):
        p = tmp / f"probe{i}.png"
        bgad.io.write_png(str(p), img)
        probes.append(p)
    return path, probes


def assert_example_scores_like_python(run, path, probes, maps: bool = False):
    """Runs an example program (``run(detector_file, png)``: examples/c, examples/swift) on
    each probe PNG and checks the score, decision and image threshold it prints against
    :class:`bgad.Detector` on the same file (equal up to the printout's rounding). Returns
    ``[(printed fields, Python's Prediction)]`` for checks of more fields."""
    import bgad

    loaded = bgad.Detector.load(path)
    out = []
    for png in probes:
        result = run(path, png)
        assert result.returncode == 0, result.stderr
        fields = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
        score, decision, threshold = float(fields["score"]), fields["decision"], float(fields["image_threshold"])
        expected = loaded.predict([str(png)], maps=maps)[0]
        assert score == pytest.approx(expected.score, rel=1e-6, abs=0)
        assert decision == ("anomalous" if expected.is_anomalous else "normal")
        assert threshold == pytest.approx(loaded.image_threshold_, rel=1e-6, abs=0)
        assert (score > threshold) == (decision == "anomalous")
        out.append((fields, expected))
    return out


def run_in_threads(count: int, work) -> None:
    """Runs ``work(k)`` for k = 0 … count − 1 on ``count`` threads at once and waits for all."""
    import threading

    threads = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
