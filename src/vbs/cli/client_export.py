"""``vbs backup export|exports|export-renew|export-end|export-volume|mount|unmount``.

Exports (``/v2/{project}/cloudbackups/{id}/exports``, docs/operations.md
"Exports") serve a backup over NBD. ``mount`` makes a read-only export,
attaches it with ``nbdfuse`` as a file, loop-attaches that file read-only
(partitions scanned) and mounts the filesystem (or ``--partition N``)
read-only; ``unmount`` undoes every step and ends the export. Both need root
and FUSE (see :mod:`vbs.cli.mount`).
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from vbs.cli.client_base import command, leaf
from vbs.cli.client_http import Client, ClientError
from vbs.cli.client_output import print_object, print_table

__all__ = ["register_actions"]

COLUMNS = ("id", "uri", "writable", "expires_at")


def register_actions(actions: Any) -> None:
    """Add the export actions to the ``vbs backup`` parser."""
    c = leaf(actions, "export", "serve a backup over NBD; prints the nbd:// URI")
    c.add_argument("backup_id")
    c.add_argument("--writable", action="store_true",
                   help="copy-on-write: writes go to an overlay on the server, never the backup")
    c.add_argument("--expires-in", type=int, default=None, metavar="SECONDS",
                   help="lifetime (default and maximum: the server's exports.ttl_seconds)")
    c.set_defaults(func=command(_export))

    c = leaf(actions, "exports", "list this project's live exports of a backup")
    c.add_argument("backup_id")
    c.set_defaults(func=command(_list))

    c = leaf(actions, "export-renew", "extend an export by its original lifetime")
    c.add_argument("backup_id")
    c.add_argument("export_id")
    c.set_defaults(func=command(_renew))

    c = leaf(actions, "export-end", "end an export (a writable one's overlay is discarded)")
    c.add_argument("backup_id")
    c.add_argument("export_id")
    c.set_defaults(func=command(_end))

    c = leaf(actions, "export-volume",
             "end a writable export and make a new volume of the backup plus its writes")
    c.add_argument("backup_id")
    c.add_argument("export_id")
    c.add_argument("--name", default=None, help="name of the new volume")
    c.set_defaults(func=command(_to_volume))

    c = leaf(actions, "mount", "mount a backup's filesystem read-only (root, FUSE, nbdfuse)")
    c.add_argument("backup_id")
    c.add_argument("mountpoint")
    c.add_argument("--partition", type=int, default=None,
                   help="mount this partition number (default: the whole disk if it holds "
                        "a filesystem, else its first partition that does)")
    c.set_defaults(func=command(_mount))

    c = leaf(actions, "unmount", "undo vbs backup mount and end its export")
    c.add_argument("mountpoint")
    c.set_defaults(func=command(_unmount))


def _path(backup_id: str, export_id: str = "") -> str:
    return f"cloudbackups/{backup_id}/exports" + (f"/{export_id}" if export_id else "")


def _create(client: Client, backup_id: str, writable: bool,
            expires_in: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"protocol": "nbd", "writable": writable}
    if expires_in is not None:
        body["expires_in"] = expires_in
    doc: dict[str, Any] = client.vbs("POST", _path(backup_id), json={"export": body})["export"]
    return doc


def _export(client: Client, args: argparse.Namespace) -> int:
    doc = _create(client, args.backup_id, args.writable, args.expires_in)
    if args.json:
        print_object(args, doc, doc, title="export")
    else:
        print(doc["uri"])
        print(f"export {doc['id']} ({'writable' if doc['writable'] else 'read-only'}) "
              f"expires at {doc['expires_at']}; end it with: "
              f"vbs backup export-end {args.backup_id} {doc['id']}")
    return 0


def _list(client: Client, args: argparse.Namespace) -> int:
    docs = client.vbs("GET", _path(args.backup_id))["exports"]
    print_table(args, docs, COLUMNS, docs, title="exports")
    return 0


def _renew(client: Client, args: argparse.Namespace) -> int:
    doc = client.vbs("POST", _path(args.backup_id, args.export_id) + "/renew")["export"]
    print_object(args, doc, doc, title="export")
    return 0


def _end(client: Client, args: argparse.Namespace) -> int:
    client.vbs("DELETE", _path(args.backup_id, args.export_id))
    if not args.json:
        print(f"ended export {args.export_id}")
    return 0


def _to_volume(client: Client, args: argparse.Namespace) -> int:
    body = {"volume": {"name": args.name}} if args.name else None
    doc = client.vbs("POST", _path(args.backup_id, args.export_id) + "/volume", json=body)
    vol = doc["volume"]
    print_object(args, vol, vol, title="volume")
    return 0


def _mount(client: Client, args: argparse.Namespace) -> int:
    from vbs.cli.mount import mount

    doc = _create(client, args.backup_id, False, None)
    try:
        state = mount(doc["uri"], args.mountpoint, partition=args.partition,
                      extra={"backup_id": args.backup_id, "export_id": doc["id"]})
    except BaseException:
        client.vbs("DELETE", _path(args.backup_id, doc["id"]))
        raise
    if args.json:
        print_object(args, state, state, title="mount")
    else:
        print(f"backup {args.backup_id} mounted read-only at {args.mountpoint} "
              f"({state['device']}; export {doc['id']} expires at {doc['expires_at']}); "
              f"undo with: vbs backup unmount {args.mountpoint}")
    return 0


def _unmount(client: Client, args: argparse.Namespace) -> int:
    from vbs.cli.mount import unmount

    state = unmount(args.mountpoint)
    backup_id, export_id = state.get("backup_id"), state.get("export_id")
    if backup_id and export_id:
        with contextlib.suppress(ClientError):  # expired or already ended
            client.vbs("DELETE", _path(str(backup_id), str(export_id)))
    if not args.json:
        print(f"unmounted {args.mountpoint}")
    return 0
