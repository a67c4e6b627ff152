"""The package's error class and its deprecation helper: pure Python, no native import, so
that :mod:`bgad.weights` can use them when it runs as a plain script (without the library)."""

from __future__ import annotations

import warnings
from typing import Any, Dict, Mapping


class BGADError(RuntimeError):
    """An error reported by the bgad engine (bad input, bad file, cancellation...).

    Attributes:
        status: the engine's status code (see ``bgad.h``), or 0 for errors raised by the
            Python layer itself.
    """

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def renamed_keywords(params: Dict[str, Any], renames: Mapping[str, str], where: str, stacklevel: int = 3) -> Dict[str, Any]:
    """``params`` with each deprecated keyword of ``renames`` (old name → new name) moved to
    its new name, with a :class:`DeprecationWarning` naming both (the old names are kept
    for one release). Giving both names is an error."""
    out = dict(params)
    for old, new in renames.items():
        if old not in out:
            continue
        if new in out:
            raise BGADError(f"{where}: give {new}= only ({old}= is its deprecated old name)")
        warnings.warn(f"{where}: {old}= is deprecated and will be removed in the next release; use {new}=",
                      DeprecationWarning, stacklevel=stacklevel)
        out[new] = out.pop(old)
    return out


def deprecated_alias(function: Any, old_name: str, where: str) -> Any:
    """A function that warns (:class:`DeprecationWarning`) that ``old_name`` is the old name
    of ``function`` in module ``where``, then calls it (kept for one release)."""
    import functools

    @functools.wraps(function)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{where}.{old_name} is deprecated and will be removed in the next release; "
                      f"use {where}.{function.__name__}", DeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated old name of :func:`{where}.{function.__name__}` (removed in the next release)."
    return alias
