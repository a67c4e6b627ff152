"""Progress bar and clean Ctrl-C for long native calls that take a ``bgad_progress_fn``.

Used as::

    with NativeProgress(enabled, "Detector fit") as p:
        status = native_fit(..., p.callback, None)
    p.raise_pending("Detector fit")   # KeyboardInterrupt / the callback's own error
    check(status)

A SIGINT handler (main thread only) merely records the request, so it can never be lost
inside the native call; the next callback returns non-zero and the engine stops cleanly.
Any exception inside the callback is caught (it must never unwind through C frames) and
cancels as well; it is re-raised by :meth:`NativeProgress.raise_pending`.
"""

from __future__ import annotations

import math
import signal
from typing import Any, Optional

from .model import PROGRESS_FN


class NativeProgress:
    """Context manager giving a ``callback`` for the engine: tqdm bar + cancellation.

    Args:
        enabled: show a tqdm bar (when tqdm is installed).
        desc: the bar's label.
    """

    def __init__(self, enabled: bool, desc: str):
        self.enabled = enabled
        self.desc = desc
        self.interrupted = False
        self.error: Optional[BaseException] = None
        self._bar = None
        self._previous = None
        self.callback = PROGRESS_FN(self._on_progress)

    def _on_progress(self, step: int, total: int, loss: float, _user: Any) -> int:
        try:
            bar = self._bar
            if bar is not None:
                if bar.total != total:
                    bar.total = total
                bar.update(step - bar.n)
                if (step % 20 == 0 or step == total) and math.isfinite(loss):
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        except KeyboardInterrupt:
            self.interrupted = True
        except BaseException as exc:  # never let an exception unwind through the C frames
            self.error = exc
        return 1 if (self.interrupted or self.error is not None) else 0

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.interrupted = True

    def __enter__(self) -> "NativeProgress":
        if self.enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=0, desc=self.desc, unit="step")
            except ImportError:
                self._bar = None
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: an exception in the callback cancels instead
            self._previous = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def raise_pending(self, what: str) -> None:
        """Raises KeyboardInterrupt after a Ctrl-C, or the callback's own exception."""
        if self.interrupted:
            raise KeyboardInterrupt(f"{what} interrupted")
        if self.error is not None:
            raise self.error


__all__ = ["NativeProgress"]
