"""bgad: supervised anomaly detection with BGAD (explicit boundary guided semi-push-pull
contrastive learning, Yao et al., CVPR 2023) on a fast Swift engine, no PyTorch needed.

Modules, in the order of the data flow (and of the sections of ``bgad.h``):
    (Library) this package: ``set_num_threads``, ``gemm_counters``, ``vector_kernels``,
             ``__version__``; ``_native`` loads ``libbgad.so`` and holds every C signature.
    io       -- Image: reading (PNG, JPEG/BMP/TIFF), masks, gray → RGB, resize, PNG writing,
                listing users' folders.
    rpag     -- RPAG: RandAugment-based pseudo anomaly generation, foreground masks.
    backbone -- Backbone: the built-in ImageNet EfficientNet-Lite feature extractors;
                weights -- conversion and caching of their pretrained weights.
    flow     -- Flow: the conditional normalizing flow (``bgad.Flow``), ``positional_encoding``.
    model    -- Model: BGAD on feature maps: training, calibrated anomaly maps, model files (bgad.BGAD).
    detector -- Detector: images in, anomaly maps out (bgad.Detector, the engine's detector).
    metrics  -- Metrics: image AUROC, average precision, pixel AUROC, AU-PRO, F1-optimal threshold.
    datasets, evaluation, visualize, dask, onnx_export; cli -- the ``bgad`` command (fit,
    predict, evaluate, demo, rpag, export, fit-many).
"""


from . import _blas  # noqa: F401  (OpenBLAS kernel choice for a system OpenBLAS, applied by _native)
from ._native import BGADError, version as native_version
from . import io
from . import rpag
from . import backbone, weights
from . import flow
from .flow import Flow, positional_encoding
from . import model
from .model import BGAD
from . import detector
from .detector import Detector, Prediction
from . import metrics
from . import datasets, evaluation, visualize


def _read_version() -> str:
    """The repository's ``VERSION`` file: copied into an installed package, else the source
    tree's (the engine embeds the same file when it is compiled)."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for path in (here / "VERSION", here.parent.parent / "VERSION"):
        if path.is_file():
            return path.read_text().strip()
    raise ImportError(f"VERSION not found in {here} nor in the source tree: the bgad installation is incomplete")


__version__ = _read_version()

if native_version() != __version__:  # pragma: no cover - a mismatched build
    import warnings

    warnings.warn(
        f"bgad {__version__} loaded native library version {native_version()}", RuntimeWarning
    )


def set_num_threads(n: int) -> None:
    """Sets the number of threads used by the engine's BLAS kernels (OpenBLAS), 1 to 64."""
    from ._native import BGADError, check, function

    if int(n) != n or not -2**31 <= int(n) < 2**31:  # ctypes would wrap it silently
        raise BGADError(f"number of threads must lie in 1...64, got {n!r}")
    check(function("bgad_set_num_threads")(int(n)))


def get_num_threads() -> int:
    """Number of threads used by the engine's BLAS kernels."""
    from ._native import function

    return int(function("bgad_get_num_threads")())


def gemm_counters(reset: bool = False):
    """``(calls, seconds)``: the engine's ``cblas_sgemm`` calls since the last reset and the
    time spent in them, summed over threads (for benchmarks). ``reset=True`` zeroes both
    after reading."""
    from ._native import check, function
    import ctypes

    calls, ns = ctypes.c_int64(), ctypes.c_int64()
    fn = function("bgad_gemm_counters")
    check(fn(ctypes.byref(calls), ctypes.byref(ns), 1 if reset else 0))
    return int(calls.value), ns.value * 1e-9


def vector_kernels() -> str:
    """Which build of the engine's own kernels runs: ``"avx512"`` (CPUs with AVX-512: the
    1×1 convolutions, the flow's products and the depthwise convolutions run the engine's
    AVX-512 kernels, with AVX2 + FMA for the rest), ``"avx2"`` (AVX2 + FMA; matrix products
    through OpenBLAS; forced on an AVX-512 CPU by ``BGAD_SIMD=avx2``) or ``"baseline"`` (SSE2;
    forced by ``BGAD_SIMD=baseline``). ``BGAD_SIMD`` is read when the library loads."""
    from ._native import function

    return function("bgad_vector_kernels")().decode()


__all__ = [
    "set_num_threads", "get_num_threads", "gemm_counters", "vector_kernels", "__version__", "BGADError",
    "io", "rpag", "backbone", "weights", "flow", "Flow", "positional_encoding", "model", "BGAD",
    "detector", "Detector", "Prediction", "metrics", "datasets", "evaluation", "visualize",
]
