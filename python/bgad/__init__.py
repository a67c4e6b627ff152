"""bgad: supervised anomaly detection with BGAD (explicit boundary guided semi-push-pull
contrastive learning, Yao et al., CVPR 2023) on a fast Swift engine, no PyTorch needed.

Modules:
    metrics  -- image AUROC, average precision, pixel AUROC, AU-PRO, F1-optimal threshold.
    flow     -- the conditional normalizing flow (``bgad.Flow``) and ``bgad.positional_encoding``.
    io       -- PNG reading and writing (every colour type and bit depth, atomic writes).
    rpag     -- RandAugment-based pseudo anomaly generation, foreground masks.
    backbone -- the built-in ImageNet EfficientNet-Lite0 feature extractor; image resize.
    weights  -- conversion and caching of the backbone's pretrained weights.
    model    -- BGAD on feature maps: training, calibrated anomaly maps, model files (bgad.BGAD).
    detector -- images in, anomaly maps out (bgad.Detector, the engine's detector).
    datasets, evaluation, visualize; cli -- the ``bgad`` command (fit, predict, evaluate, demo, rpag).
"""


from . import _blas  # noqa: F401  (OpenBLAS kernel choice for a system OpenBLAS, applied by _native)
from ._native import BGADError, version as native_version
from . import metrics
from . import flow
from .flow import Flow, positional_encoding
from . import io, rpag
from . import backbone, weights
from . import model
from .model import BGAD
from . import datasets, evaluation, visualize
from .detector import Detector, Prediction

__version__ = "0.1.0"

if native_version() != __version__:  # pragma: no cover - a mismatched build
    import warnings

    warnings.warn(
        f"bgad {__version__} loaded native library version {native_version()}", RuntimeWarning
    )


def set_num_threads(n: int) -> None:
    """Sets the number of threads used by the engine's BLAS kernels (OpenBLAS), 1 to 64."""
    from ._native import BGADError, check, declare
    import ctypes

    if int(n) != n or not -2**31 <= int(n) < 2**31:  # ctypes would wrap it silently
        raise BGADError(f"number of threads must lie in 1...64, got {n!r}")
    check(declare("bgad_set_num_threads", [ctypes.c_int32])(int(n)))


def get_num_threads() -> int:
    """Number of threads used by the engine's BLAS kernels."""
    from ._native import declare
    import ctypes

    return int(declare("bgad_get_num_threads", [], ctypes.c_int32)())


def gemm_counters(reset: bool = False):
    """``(calls, seconds)``: the engine's ``cblas_sgemm`` calls since the last reset and the
    time spent in them, summed over threads (for benchmarks). ``reset=True`` zeroes both
    after reading."""
    from ._native import check, declare
    import ctypes

    calls, ns = ctypes.c_int64(), ctypes.c_int64()
    fn = declare("bgad_gemm_counters", [ctypes.POINTER(ctypes.c_int64)] * 2 + [ctypes.c_int32])
    check(fn(ctypes.byref(calls), ctypes.byref(ns), 1 if reset else 0))
    return int(calls.value), ns.value * 1e-9


def vector_kernels() -> str:
    """Which build of the engine's own kernels runs: ``"avx512"`` (CPUs with AVX-512: the
    1×1 convolutions, the flow's products and the depthwise convolutions run the engine's
    AVX-512 kernels, with AVX2 + FMA for the rest), ``"avx2"`` (AVX2 + FMA; matrix products
    through OpenBLAS; forced on an AVX-512 CPU by ``BGAD_SIMD=avx2``) or ``"baseline"`` (SSE2;
    forced by ``BGAD_SIMD=baseline``). ``BGAD_SIMD`` is read when the library loads."""
    from ._native import declare
    import ctypes

    return declare("bgad_vector_kernels", [], ctypes.c_char_p)().decode()


__all__ = [
    "BGADError", "BGAD", "Detector", "Prediction", "Flow", "positional_encoding",
    "metrics", "flow", "io", "rpag", "backbone", "weights", "model", "datasets", "evaluation", "visualize",
    "set_num_threads", "get_num_threads", "gemm_counters", "vector_kernels", "__version__",
]
