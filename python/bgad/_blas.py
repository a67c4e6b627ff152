"""Picks OpenBLAS's CPU kernels before the engine loads OpenBLAS.

OpenBLAS built with DYNAMIC_ARCH (Debian, Ubuntu) chooses its kernels from the CPU
model at load time. Releases older than the CPU do not know it and fall back to the
generic SSE3 ("Prescott") kernels: on a recent Xeon Debian 12's OpenBLAS 0.3.21 runs
sgemm about 4x slower than it can. When the user has not chosen (``OPENBLAS_CORETYPE``
unset), this module chooses from the CPU's feature flags, which is safe on any CPU that
has them: AVX-512 (F, CD, BW, DQ, VL) -> "SkylakeX", AVX2 + FMA -> "Haswell".
It must run before ``libbgad.so`` (and with it OpenBLAS) is loaded.
"""

import os
import platform


def choose_openblas_coretype() -> str:
    """The OpenBLAS core type the CPU flags allow ("" when unknown or not x86-64 Linux)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
            else:
                return ""
    except OSError:
        return ""
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return ""


if "OPENBLAS_CORETYPE" not in os.environ:
    _core = choose_openblas_coretype()
    if _core:
        os.environ["OPENBLAS_CORETYPE"] = _core
