"""Which OpenBLAS kernels the CPU's feature flags allow, for an OpenBLAS older than the CPU.

OpenBLAS built with DYNAMIC_ARCH (Debian, Ubuntu) chooses its kernels from the CPU model
at load time. Releases older than the CPU may not know it and fall back to the generic
SSE3 ("Prescott") kernels: on a recent Xeon, Debian 12's OpenBLAS 0.3.21 runs sgemm about
4x slower than it can. Newer releases (the wheel's scipy-openblas32) fall back on the
feature flags themselves. For a library that links the system OpenBLAS, the loader
(:mod:`bgad._native`) sets ``OPENBLAS_CORETYPE`` to :func:`choose_openblas_coretype` before
loading it, unless the user has set it; the choice is safe on any CPU that has the flags:
AVX-512 (F, CD, BW, DQ, VL) -> "SkylakeX", AVX2 + FMA -> "Haswell".
"""

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
