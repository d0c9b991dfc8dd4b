"""``vbs backup create|list|show|restore|delete|diff``.

``create``, ``restore`` and ``delete`` use the VBS extension API
(``/v2/{project}/cloudbackups``, vbs-api §4.1–§4.3): each starts a job and
prints its id, or with ``--wait`` follows it to the end (see
:mod:`vbs.cli.client_wait`). ``list`` and ``show`` read the native v3 API
(``/v3/{project}/backups``, §5.3–§5.4) through the block-storage endpoint;
``show`` lists the ``os-vbs-backup-attr:*`` vendor attributes (how the
backup was read) under their short names. ``diff`` pages through
``GET /v2/{project}/cloudbackups/{id}/changed_blocks``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from vbs.cli.client_base import command, key_value, leaf
from vbs.cli.client_export import register_actions as register_export_actions
from vbs.cli.client_http import Client
from vbs.cli.client_output import print_doc, print_object, print_table
from vbs.cli.client_wait import add_wait_options, wait_for_job

__all__ = ["register"]

VENDOR = "os-vbs-backup-attr:"
COLUMNS = ("id", "name", "status", "volume_id", "size", "is_incremental", "created_at")
READ_VERSION = {"OpenStack-API-Version": "volume 3.64"}
"""Reads ask for 3.64 so backups come with ``metadata`` (3.43+), ``tags`` and
``user_id``: everything that can be written is shown back."""


def register(sub: Any) -> None:
    p = sub.add_parser("backup", help="backups of volumes")
    actions = p.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True

    c = leaf(actions, "create", "back up a volume (starts a job)")
    c.add_argument("volume_id")
    c.add_argument("--name", default=None,
                   help="1-64 of [A-Za-z0-9_-], not starting with 'auto' "
                        "(default: vbs-YYYYmmdd-HHMMSS)")
    c.add_argument("--description", default=None)
    c.add_argument("--snapshot", dest="snapshot_id", default=None,
                   help="back up this snapshot of the volume instead of a new one")
    c.add_argument("--tag", action="append", metavar="KEY=VALUE", help="repeatable")
    c.add_argument("--full", action="store_true", help="force a full (not incremental) backup")
    add_wait_options(c)
    c.set_defaults(func=command(_create))

    c = leaf(actions, "list", "list backups")
    c.add_argument("--volume", dest="volume_id", default=None)
    c.add_argument("--status", default=None)
    c.add_argument("--name", default=None, help="exact name")
    c.add_argument("--limit", type=int, default=None, help="at most this many")
    c.set_defaults(func=command(_list))

    c = leaf(actions, "show", "show one backup")
    c.add_argument("backup_id")
    c.set_defaults(func=command(_show))

    c = leaf(actions, "diff", "byte ranges in which BACKUP differs from BASE (same volume)")
    c.add_argument("base_id", metavar="BASE")
    c.add_argument("backup_id", metavar="BACKUP")
    c.set_defaults(func=command(_diff))

    c = leaf(actions, "restore", "overwrite a volume with a backup (starts a job)")
    c.add_argument("backup_id")
    c.add_argument("--volume", dest="volume_id", required=True,
                   help="target volume: available and at least the backup's size")
    add_wait_options(c)
    c.set_defaults(func=command(_restore))

    c = leaf(actions, "delete", "delete a backup (starts a job)")
    c.add_argument("backup_id")
    add_wait_options(c)
    c.set_defaults(func=command(_delete))

    register_export_actions(actions)  # export, exports, export-*, mount, unmount


def _started(client: Client, args: argparse.Namespace, job_id: str,
             done: str) -> dict[str, Any] | None:
    """Without ``--wait``: print the job id. With it: wait, print ``done``."""
    if not args.wait:
        if args.json:
            print_doc({"job_id": job_id})
        else:
            print(f"job {job_id} started; follow it with: vbs job show {job_id} --wait")
        return None
    job = wait_for_job(client, job_id, args)
    if args.json:
        print_doc(job)
    else:
        print(done.format_map(_Fields({**job.get("entities", {}), "job_id": job_id})))
    return job


class _Fields(dict[str, Any]):
    """Template values; an entity the job lacks prints as ``?``."""

    def __missing__(self, key: str) -> str:
        return "?"


def _create(client: Client, args: argparse.Namespace) -> int:
    name = args.name or dt.datetime.now(dt.UTC).strftime("vbs-%Y%m%d-%H%M%S")
    backup: dict[str, Any] = {"volume_id": args.volume_id, "name": name}
    if args.description is not None:
        backup["description"] = args.description
    if args.snapshot_id:
        backup["snapshot_id"] = args.snapshot_id
    tags = key_value(args.tag, "--tag")
    if tags:
        backup["tags"] = tags
    if args.full:
        backup["extend_param"] = {"FullBackup": "true"}
    body = client.vbs("POST", "cloudbackups", json={"backup": backup})
    _started(client, args, body["job_id"], "backup {backup_id} of volume {volume_id} "
                                           "is available (job {job_id})")
    return 0


def _list(client: Client, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {k: v for k, v in (("volume_id", args.volume_id),
                                               ("status", args.status),
                                               ("name", args.name)) if v}
    if args.limit:
        params["limit"] = args.limit
    backups: list[dict[str, Any]] = []
    body = client.cinder("GET", "backups/detail", params=params, headers=READ_VERSION)
    while True:
        backups.extend(body.get("backups", []))
        nxt = [link["href"] for link in body.get("backups_links") or []
               if link.get("rel") == "next"]
        if not nxt or (args.limit and len(backups) >= args.limit):
            break
        body = client.cinder("GET", nxt[0], headers=READ_VERSION)
    if args.limit:
        backups = backups[: args.limit]
    print_table(args, backups, COLUMNS, backups, title="backups")
    return 0


def _show(client: Client, args: argparse.Namespace) -> int:
    backup = client.cinder("GET", f"backups/{args.backup_id}", headers=READ_VERSION)["backup"]
    shown = {k.removeprefix(VENDOR): v for k, v in backup.items() if k != "links"}
    if isinstance(shown.get("tags"), list):  # one line per table cell: k=v, ...
        shown["tags"] = ", ".join(f"{t.get('key')}={t.get('value')}" for t in shown["tags"])
    if isinstance(shown.get("metadata"), dict):
        shown["metadata"] = ", ".join(f"{k}={v}" for k, v in sorted(shown["metadata"].items()))
    print_object(args, backup, shown, title="backup")
    return 0


def _diff(client: Client, args: argparse.Namespace) -> int:
    blocks: list[dict[str, int]] = []
    marker: int | None = 0
    page: dict[str, Any] = {}
    while marker is not None:
        page = client.vbs("GET", f"cloudbackups/{args.backup_id}/changed_blocks",
                          params={"base_backup_id": args.base_id, "marker": marker})
        blocks.extend(page["changed_blocks"])
        marker = page["next_marker"]
    doc = {"changed_blocks": blocks, "block_size": page.get("block_size"),
           "volume_size": page.get("volume_size"), "next_marker": None}
    rows = [{"offset": b["offset"], "length": b["length"]} for b in blocks]
    print_table(args, doc, ("offset", "length"), rows,
                title=f"{sum(b['length'] for b in blocks)} bytes changed in {len(blocks)} ranges")
    return 0


def _restore(client: Client, args: argparse.Namespace) -> int:
    body = client.vbs("POST", f"cloudbackups/{args.backup_id}/restore",
                      json={"restore": {"volume_id": args.volume_id}})
    _started(client, args, body["job_id"],
             f"restored backup {args.backup_id} to volume {args.volume_id} (job {{job_id}})")
    return 0


def _delete(client: Client, args: argparse.Namespace) -> int:
    body = client.vbs("POST", f"cloudbackups/{args.backup_id}")
    _started(client, args, body["job_id"], f"deleted backup {args.backup_id} (job {{job_id}})")
    return 0
