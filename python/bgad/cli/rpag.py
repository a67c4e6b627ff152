"""``bgad rpag ...``: write RPAG pseudo anomalies and a contact sheet (``bgad.rpag``'s own options)."""

from __future__ import annotations

from typing import List

HELP = "write RPAG pseudo anomalies and a contact sheet (see `bgad rpag --help`)"


def run(argv: List[str]) -> int:
    """Runs ``python -m bgad.rpag`` with ``argv``; returns its exit status."""
    from .. import rpag

    return rpag.main(argv)
