"""The ``vbs`` command: one entry point, one module per command family.

``vbs repo ...`` (repository tools, no service), ``vbs serve`` / ``vbs admin ...``
(the service and its data dir), and the client commands talking to a running
service. Each family module exposes ``register(subparsers)``; ``main`` wires them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

# module name -> registers these top-level commands
FAMILIES = ("repo", "serve", "admin", "client", "benchmark", "background", "db")

SOLE_FAMILY = {
    "repo": "repo",
    "serve": "serve",
    "admin": "admin",
    "benchmark": "benchmark",
    "worker": "background",
    "scheduler": "background",
    "db": "db",
}
"""Commands that are the only ones their family registers: for these the
parser is built from that family alone. Why: importing every family (the
HTTP client, the service's settings) cost a 3 s ``vbs repo backup`` 0.07 s."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or only the family of ``command`` (see SOLE_FAMILY)."""
    parser = argparse.ArgumentParser(prog="vbs", description="Volume Backup Service")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    only = SOLE_FAMILY.get(command or "")
    for name in FAMILIES if only is None else (only,):
        try:
            module = importlib.import_module(f"vbs.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vbs.cli.{name}":
                continue  # family not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # numpy is only used for sorted-array searches, never for linear algebra:
    # OpenBLAS's thread pool (started at import) only costs CPU here.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
