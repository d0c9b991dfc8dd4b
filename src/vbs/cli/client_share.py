"""``vbs share create|list|show|count|delete``: backups shared between projects.

vbs-api §6 (``/v2/{project}/os-vendor-backup-sharing``). The owner shares
and cancels; the recipient sees shares addressed to it with ``--to-me``.
"""

from __future__ import annotations

import argparse
from typing import Any

from vbs.cli.client_base import command, leaf
from vbs.cli.client_http import Client
from vbs.cli.client_output import print_doc, print_object, print_table

__all__ = ["register"]

PATH = "os-vendor-backup-sharing"
COLUMNS = ("id", "backup_id", "backup_name", "from_project_id", "to_project_id", "created_at")


def _filters(c: argparse.ArgumentParser) -> None:
    c.add_argument("--to-me", action="store_true", help="shares addressed to this project")
    c.add_argument("--backup", dest="backup_id", default=None)
    c.add_argument("--to-project", dest="to_project_id", default=None)
    c.add_argument("--from-project", dest="from_project_id", default=None)


def register(sub: Any) -> None:
    p = sub.add_parser("share", help="share backups with other projects")
    actions = p.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True

    c = leaf(actions, "create", "share a backup with other projects")
    c.add_argument("backup_id")
    c.add_argument("--to", dest="to_project_ids", action="append", required=True,
                   metavar="PROJECT_ID", help="recipient project (repeatable, up to 10)")
    c.set_defaults(func=command(_create))

    c = leaf(actions, "list", "list shares made by (or, with --to-me, to) this project")
    _filters(c)
    c.set_defaults(func=command(_list))

    c = leaf(actions, "count", "count shares (same filters as list)")
    _filters(c)
    c.set_defaults(func=command(_count))

    c = leaf(actions, "show", "show one share and its backup")
    c.add_argument("share_id")
    c.set_defaults(func=command(_show))

    c = leaf(actions, "delete", "cancel a share (or every share of a backup)")
    c.add_argument("share_id", metavar="ID")
    c.add_argument("--all-of-backup", action="store_true",
                   help="ID is a backup: cancel all of its shares")
    c.set_defaults(func=command(_delete))


def _query(args: argparse.Namespace) -> dict[str, Any]:
    q: dict[str, Any] = {k: getattr(args, k) for k in
                         ("backup_id", "to_project_id", "from_project_id") if getattr(args, k)}
    if args.to_me:
        q["share_to_me"] = "true"
    return q


def _create(client: Client, args: argparse.Namespace) -> int:
    reply = client.vbs("POST", PATH, json={"shared": {"backup_id": args.backup_id,
                                                      "to_project_ids": args.to_project_ids}})
    shares = reply.get("shared", [])
    print_table(args, shares, COLUMNS, shares, title="shares")
    return 0


def _list(client: Client, args: argparse.Namespace) -> int:
    shares = client.vbs("GET", f"{PATH}/detail", params=_query(args)).get("shared", [])
    rows = [{**s, "backup_name": (s.get("backup") or {}).get("name")} for s in shares]
    print_table(args, shares, COLUMNS, rows, title="shares")
    return 0


def _count(client: Client, args: argparse.Namespace) -> int:
    reply = client.vbs("GET", f"{PATH}/count", params=_query(args))
    if args.json:
        print_doc(reply)
    else:
        print(reply.get("count"))
    return 0


def _show(client: Client, args: argparse.Namespace) -> int:
    share = client.vbs("GET", f"{PATH}/{args.share_id}")["shared"]
    rows = {k: v for k, v in share.items() if k != "backup"}
    for k, v in (share.get("backup") or {}).items():
        if k in ("name", "status", "volume_id", "size", "created_at"):
            rows[f"backup.{k}"] = v
    print_object(args, share, rows, title="share")
    return 0


def _delete(client: Client, args: argparse.Namespace) -> int:
    params = {"is_backup_id": "true"} if args.all_of_backup else None
    client.vbs("DELETE", f"{PATH}/{args.share_id}", params=params)
    what = "all shares of backup" if args.all_of_backup else "share"
    if args.json:
        print_doc({"id": args.share_id, "deleted": True, "is_backup_id": args.all_of_backup})
    else:
        print(f"cancelled {what} {args.share_id}")
    return 0
