"""bgad: supervised anomaly detection with BGAD (explicit boundary guided semi-push-pull
contrastive learning, Yao et al., CVPR 2023) on a fast Swift engine, no PyTorch needed.

Modules:
    metrics  -- image AUROC, average precision, pixel AUROC, AU-PRO, F1-optimal threshold.
    flow     -- the conditional normalizing flow (``bgad.Flow``) and ``bgad.positional_encoding``.
    model    -- BGAD on feature maps: training, calibrated anomaly maps, model files (bgad.BGAD).
"""

import os as _os


def _choose_blas_kernels() -> None:
    """Points OpenBLAS at its AVX2/AVX-512 kernels when the CPU has them.

    OpenBLAS picks its kernels from the CPU model when it is loaded; on CPUs it does not
    know (new models, VMs reporting a generic "Intel Xeon Processor") it falls back to the
    SSE3 "Prescott" kernels, about 6× slower. ``OPENBLAS_CORETYPE`` must be set before the
    library is loaded, so this runs before ``_native`` loads libbgad. A value set by the
    user is kept.
    """
    if "OPENBLAS_CORETYPE" in _os.environ:
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return
    flags = set(flags)
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= flags:
        _os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif {"avx2", "fma"} <= flags:
        _os.environ["OPENBLAS_CORETYPE"] = "Haswell"


_choose_blas_kernels()

from ._native import BGADError, version as native_version  # noqa: E402
from . import metrics
from . import flow
from .flow import Flow, positional_encoding
from . import model
from .model import BGAD

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


__all__ = ["BGAD", "BGADError", "metrics", "flow", "Flow", "positional_encoding", "model", "set_num_threads", "get_num_threads", "__version__"]
