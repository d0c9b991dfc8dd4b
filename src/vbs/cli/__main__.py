"""``python -m vbs.cli`` runs the ``vbs`` command."""

from __future__ import annotations

import sys

from vbs.cli import main

sys.exit(main())
