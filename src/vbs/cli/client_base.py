"""What every client command shares: its options and its error handling.

:func:`leaf` adds an action parser with the connection options and
``--json``; :func:`command` turns ``action(client, args) -> int`` into an
argparse ``func`` that builds the :class:`Client`, runs the action and maps
failures to one stderr line and an exit code::

    0  success
    1  API error            vbs: <code>: <message>
    2  usage / config       vbs: missing OS_AUTH_URL ...
    3  authentication       vbs: authentication failed: <message>
    4  not found (404)      vbs: <code>: <message>
    5  waited-for job FAIL  vbs: job <id> failed: <error_code>: <fail_reason>
  130  interrupted (a job being waited for keeps running)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from vbs.cli.client_http import (
    EXIT_USAGE,
    Client,
    ClientError,
    JobFailed,
    add_connection_options,
    credentials_from,
)
from vbs.cli.client_output import print_doc
from vbs.errors import ConfigError

__all__ = ["Action", "command", "key_value", "leaf"]

Action = Callable[[Client, argparse.Namespace], int]


def leaf(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A client action parser with ``--json`` and the connection options."""
    p: argparse.ArgumentParser = actions.add_parser(name, help=help_text,
                                                    description=help_text)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_connection_options(p)
    return p


def command(action: Action) -> Callable[[argparse.Namespace], int]:
    """Wrap ``action`` with the client's connection and exit-code rules."""

    def run(args: argparse.Namespace) -> int:
        try:
            client = Client(credentials_from(args))
            return action(client, args)
        except JobFailed as exc:
            if args.json:
                print_doc(exc.job)
            print(f"vbs: {exc.line()}", file=sys.stderr)
            return exc.exit_code
        except ClientError as exc:
            print(f"vbs: {exc.line()}", file=sys.stderr)
            return exc.exit_code
        except ConfigError as exc:
            print(f"vbs: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("vbs: interrupted (server-side jobs keep running)", file=sys.stderr)
            return 130

    return run


def key_value(items: list[str] | None, what: str) -> list[dict[str, str]]:
    """``["k=v", ...]`` as ``[{"key": k, "value": v}]``; ConfigError (exit 2) if malformed."""
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} must look like KEY=VALUE, got {item!r}")
        out.append({"key": key, "value": value})
    return out
