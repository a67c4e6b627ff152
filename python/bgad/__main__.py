"""``python -m bgad`` runs the command line (see :mod:`bgad.cli`)."""

import sys

from .cli import main

sys.exit(main())
