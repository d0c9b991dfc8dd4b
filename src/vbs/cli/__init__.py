"""The ``vbs`` command: one entry point, one module per command family.

``vbs repo ...`` (repository tools, no service), ``vbs serve`` / ``vbs admin ...``
(the service and its data dir), and the client commands talking to a running
service. Each family module exposes ``register(subparsers)``; ``main`` wires them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# module name -> registers these top-level commands
FAMILIES = ("repo", "serve", "admin", "client", "benchmark", "background", "db")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vbs", description="Volume Backup Service")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in FAMILIES:
        try:
            module = importlib.import_module(f"vbs.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"vbs.cli.{name}":
                continue  # family not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
