"""A stand-in for ``tqdm.auto`` that interrupts a native fit once, as Ctrl-C would (test helper)."""

import os
import signal
import sys
import types


def install_interrupting_tqdm(monkeypatch, how: str, at: int = 3) -> None:
    """Replaces ``tqdm.auto`` in ``sys.modules``: each bar, when its count first reaches
    ``at``, raises KeyboardInterrupt inside the progress callback (``how="exception"``) or
    sends the process a real SIGINT (``how="signal"``). Undo with
    ``monkeypatch.delitem(sys.modules, "tqdm.auto")``."""

    class FakeBar:
        def __init__(self, iterable=None, total=0, **kw):
            self.total, self.n, self.fired = total, 0, False

        def update(self, k):
            self.n += k
            if self.n >= at and not self.fired:
                self.fired = True
                if how == "exception":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C during training

        def set_postfix(self, **kw):
            pass

        def close(self):
            pass

    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
