"""``vbs quota show``: the project's backup quotas and usage (vbs-api §4.5).

``-1`` means unlimited; ``backup_gigabytes`` counts GB.
"""

from __future__ import annotations

import argparse
from typing import Any

from vbs.cli.client_base import command, leaf
from vbs.cli.client_http import Client
from vbs.cli.client_output import print_table

__all__ = ["register"]

COLUMNS = ("type", "quota", "used", "reserved")


def register(sub: Any) -> None:
    p = sub.add_parser("quota", help="backup quotas of the project")
    actions = p.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True
    c = leaf(actions, "show", "show quotas and usage")
    c.set_defaults(func=command(_show))


def _show(client: Client, args: argparse.Namespace) -> int:
    reply = client.vbs("GET", "cloudbackups/quota")
    resources = (reply.get("quotas") or {}).get("resources", [])
    rows = [{**r, "quota": "unlimited" if r.get("quota") == -1 else r.get("quota")}
            for r in resources]
    print_table(args, reply, COLUMNS, rows, title="quotas")
    return 0
