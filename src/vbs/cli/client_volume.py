"""``vbs volume create|list|show|delete``: the disks backups are taken of.

Talks to the block-storage endpoint (``/v3/{project}/volumes``,
openstack-compat §6.1). Creation is synchronous on VBS: the reply already
says ``available``.
"""

from __future__ import annotations

import argparse
from typing import Any

from vbs.cli.client_base import command, leaf
from vbs.cli.client_http import Client
from vbs.cli.client_output import print_doc, print_object, print_table

__all__ = ["register"]

COLUMNS = ("id", "name", "status", "size", "created_at")


def register(sub: Any) -> None:
    p = sub.add_parser("volume", help="volumes (disks) of the project")
    actions = p.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True

    c = leaf(actions, "create", "create a volume")
    c.add_argument("--size", type=int, required=True,
                   help="size in GiB (2**30 bytes), as the API counts it")
    c.add_argument("--name", default=None)
    c.add_argument("--description", default=None)
    c.set_defaults(func=command(_create))

    c = leaf(actions, "list", "list volumes")
    c.add_argument("--name", default=None, help="exact name")
    c.add_argument("--status", default=None)
    c.set_defaults(func=command(_list))

    c = leaf(actions, "show", "show one volume")
    c.add_argument("volume_id")
    c.set_defaults(func=command(_show))

    c = leaf(actions, "delete", "delete a volume (its backups are kept)")
    c.add_argument("volume_id")
    c.set_defaults(func=command(_delete))


def _create(client: Client, args: argparse.Namespace) -> int:
    volume: dict[str, Any] = {"size": args.size}
    if args.name is not None:
        volume["name"] = args.name
    if args.description is not None:
        volume["description"] = args.description
    body = client.cinder("POST", "volumes", json={"volume": volume})
    print_object(args, body["volume"], _brief(body["volume"]), title="volume")
    return 0


def _list(client: Client, args: argparse.Namespace) -> int:
    params = {k: v for k, v in (("name", args.name), ("status", args.status)) if v}
    volumes: list[dict[str, Any]] = []
    body = client.cinder("GET", "volumes/detail", params=params)
    while True:
        volumes.extend(body.get("volumes", []))
        nxt = [link["href"] for link in body.get("volumes_links") or []
               if link.get("rel") == "next"]
        if not nxt:
            break
        body = client.cinder("GET", nxt[0])
    print_table(args, volumes, COLUMNS, volumes, title="volumes")
    return 0


def _show(client: Client, args: argparse.Namespace) -> int:
    body = client.cinder("GET", f"volumes/{args.volume_id}")
    print_object(args, body["volume"], _brief(body["volume"]), title="volume")
    return 0


def _delete(client: Client, args: argparse.Namespace) -> int:
    client.cinder("DELETE", f"volumes/{args.volume_id}")
    if args.json:
        print_doc({"id": args.volume_id, "deleted": True})
    else:
        print(f"deleted volume {args.volume_id}")
    return 0


def _brief(v: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "status", "size", "availability_zone", "bootable", "description",
            "created_at", "updated_at")
    return {k: v.get(k) for k in keys}
