"""bgad: supervised anomaly detection with BGAD (explicit boundary guided semi-push-pull
contrastive learning, Yao et al., CVPR 2023) on a fast Swift engine, no PyTorch needed.

Modules:
    metrics  -- image AUROC, average precision, pixel AUROC, AU-PRO, F1-optimal threshold.
    backbone -- the built-in ImageNet EfficientNet-Lite0 feature extractor; image resize.
    weights  -- conversion and caching of the backbone's pretrained weights.
"""

from . import _blas  # noqa: F401  (before _native: selects OpenBLAS kernels, see _blas.py)
from ._native import BGADError, version as native_version
from . import metrics
from . import backbone, weights

__version__ = "0.1.0"

if native_version() != __version__:  # pragma: no cover - a mismatched build
    import warnings

    warnings.warn(
        f"bgad {__version__} loaded native library version {native_version()}", RuntimeWarning
    )


def set_num_threads(n: int) -> None:
    """Sets the number of threads used by the engine's BLAS kernels (OpenBLAS)."""
    from ._native import check, declare
    import ctypes

    check(declare("bgad_set_num_threads", [ctypes.c_int32])(int(n)))


def get_num_threads() -> int:
    """Number of threads used by the engine's BLAS kernels."""
    from ._native import declare
    import ctypes

    return int(declare("bgad_get_num_threads", [], ctypes.c_int32)())


__all__ = ["BGADError", "metrics", "backbone", "weights", "set_num_threads", "get_num_threads", "__version__"]
