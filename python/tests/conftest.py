"""Shared pytest configuration: the package is imported from the source tree when not installed."""

import sys
from pathlib import Path

_src = Path(__file__).resolve().parents[1]
if str(_src) not in sys.path:
    sys.path.insert(0, str(_src))
