"""``vbs policy create|list|show|update|bind|unbind|run|tasks|delete`` (vbs-api §7).

A policy backs up its bound volumes on a schedule and prunes what it made.
The API has no single-policy GET, so ``show`` picks the policy out of the
list (an unknown id is ``AutoBackup.0205``, exit 4, as the server says for
the other ``{policy_id}`` paths). ``bind`` / ``unbind`` report per volume;
any volume that failed makes the command exit 1 after printing the table.
The wire spelling ``rentention_*`` is kept in ``--json`` output.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vbs.cli.client_base import command, key_value, leaf
from vbs.cli.client_http import EXIT_API, Client, NotFound
from vbs.cli.client_output import print_doc, print_object, print_table

__all__ = ["register"]

COLUMNS = ("backup_policy_id", "backup_policy_name", "status", "start_time", "interval",
           "retention", "policy_resource_count")
TASK_COLUMNS = ("job_id", "status", "resource_id", "backup_name", "created_at", "finished_at",
                "code")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _schedule_options(c: argparse.ArgumentParser, *, create: bool) -> None:
    c.add_argument("--start-time", required=create,
                   help="comma-separated whole UTC hours, e.g. 22:00,02:00")
    every = c.add_mutually_exclusive_group(required=create)
    every.add_argument("--frequency", type=int, help="every N days (1-30)")
    every.add_argument("--week-frequency", help=f"days of the week, e.g. MON,THU ({_DAYS})")
    keep = c.add_mutually_exclusive_group(required=create)
    keep.add_argument("--retention-num", type=int, help="keep the newest N backups (2-99)")
    keep.add_argument("--retention-day", type=int, help="keep backups for N days")
    c.add_argument("--keep-first-of-month", choices=("Y", "N"),
                   help="keep the month's first policy backup until the month ends")
    c.add_argument("--time-zone", help="e.g. UTC+02:00 (update: '' clears it)")


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="scheduled backup policies")
    actions = p.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True

    c = leaf(actions, "create", "create a policy")
    c.add_argument("name")
    _schedule_options(c, create=True)
    c.add_argument("--disabled", action="store_true", help="create it switched OFF")
    c.add_argument("--tag", action="append", metavar="KEY=VALUE", help="repeatable")
    c.set_defaults(func=command(_create))

    c = leaf(actions, "list", "list policies")
    c.set_defaults(func=command(_list))

    c = leaf(actions, "show", "show one policy")
    c.add_argument("policy_id")
    c.set_defaults(func=command(_show))

    c = leaf(actions, "update", "change a policy; omitted settings are kept")
    c.add_argument("policy_id")
    c.add_argument("--name")
    _schedule_options(c, create=False)
    onoff = c.add_mutually_exclusive_group()
    onoff.add_argument("--enable", dest="status", action="store_const", const="ON")
    onoff.add_argument("--disable", dest="status", action="store_const", const="OFF")
    c.set_defaults(func=command(_update))

    c = leaf(actions, "bind", "attach volumes to a policy (moves them from another)")
    c.add_argument("policy_id")
    c.add_argument("volume_ids", nargs="+", metavar="VOLUME_ID")
    c.set_defaults(func=command(_bind))

    c = leaf(actions, "unbind", "detach volumes from a policy")
    c.add_argument("policy_id")
    c.add_argument("volume_ids", nargs="+", metavar="VOLUME_ID")
    c.set_defaults(func=command(_unbind))

    c = leaf(actions, "run", "back up every bound volume now")
    c.add_argument("policy_id")
    c.set_defaults(func=command(_run))

    c = leaf(actions, "tasks", "list the backup tasks a policy ran (last 30 days)")
    c.add_argument("policy_id")
    c.add_argument("--status", default=None)
    c.add_argument("--limit", type=int, default=20)
    c.set_defaults(func=command(_tasks))

    c = leaf(actions, "delete", "delete a policy (its backups are kept)")
    c.add_argument("policy_id")
    c.set_defaults(func=command(_delete))


def _schedule(args: argparse.Namespace) -> dict[str, Any]:
    s: dict[str, Any] = {}
    if args.start_time is not None:
        s["start_time"] = args.start_time
    if args.frequency is not None:
        s["frequency"] = args.frequency
    if args.week_frequency is not None:
        s["week_frequency"] = [d.strip().upper() for d in args.week_frequency.split(",")
                               if d.strip()]
    if args.retention_num is not None:
        s["rentention_num"] = args.retention_num
    if args.retention_day is not None:
        s["rentention_day"] = args.retention_day
    if args.keep_first_of_month is not None:
        s["remain_first_backup_of_curMonth"] = args.keep_first_of_month
    return s


def _create(client: Client, args: argparse.Namespace) -> int:
    schedule = _schedule(args)
    schedule["status"] = "OFF" if args.disabled else "ON"
    body: dict[str, Any] = {"backup_policy_name": args.name, "scheduled_policy": schedule}
    if args.time_zone:
        body["time_zone"] = args.time_zone
    tags = key_value(args.tag, "--tag")
    if tags:
        body["tags"] = tags
    reply = client.vbs("POST", "backuppolicy", json=body)
    _done(args, reply, f"created policy {reply['backup_policy_id']}")
    return 0


def _list(client: Client, args: argparse.Namespace) -> int:
    policies = client.vbs("GET", "backuppolicy")["backup_policies"]
    print_table(args, policies, COLUMNS, [_flat(p) for p in policies], title="policies")
    return 0


def _show(client: Client, args: argparse.Namespace) -> int:
    policies = client.vbs("GET", "backuppolicy")["backup_policies"]
    for p in policies:
        if p.get("backup_policy_id") == args.policy_id:
            print_object(args, p, _flat(p), title="policy")
            return 0
    raise NotFound(404, "AutoBackup.0205", f"Policy {args.policy_id} does not exist.")


def _update(client: Client, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.name is not None:
        body["backup_policy_name"] = args.name
    schedule = _schedule(args)
    if args.status:
        schedule["status"] = args.status
    if schedule:
        body["scheduled_policy"] = schedule
    if args.time_zone is not None:
        body["time_zone"] = args.time_zone or None
    reply = client.vbs("PUT", f"backuppolicy/{args.policy_id}", json=body)
    _done(args, reply, f"updated policy {args.policy_id}")
    return 0


def _bind(client: Client, args: argparse.Namespace) -> int:
    resources = [{"resource_id": v, "resource_type": "volume"} for v in args.volume_ids]
    reply = client.vbs("POST", "backuppolicyresources",
                       json={"backup_policy_id": args.policy_id, "resources": resources})
    return _outcomes(args, reply)


def _unbind(client: Client, args: argparse.Namespace) -> int:
    resources = [{"resource_id": v} for v in args.volume_ids]
    reply = client.vbs("POST", f"backuppolicyresources/{args.policy_id}/deleted_resources",
                       json={"resources": resources})
    return _outcomes(args, reply)


def _run(client: Client, args: argparse.Namespace) -> int:
    client.vbs("POST", f"backuppolicy/{args.policy_id}/action")
    _done(args, {"backup_policy_id": args.policy_id, "executed": True},
          f"policy {args.policy_id} is running; see: vbs policy tasks {args.policy_id}")
    return 0


def _tasks(client: Client, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    reply = client.vbs("GET", f"backuppolicy/{args.policy_id}/backuptasks", params=params)
    print_table(args, reply, TASK_COLUMNS, reply.get("tasks", []), title="tasks")
    return 0


def _delete(client: Client, args: argparse.Namespace) -> int:
    client.vbs("DELETE", f"backuppolicy/{args.policy_id}")
    _done(args, {"backup_policy_id": args.policy_id, "deleted": True},
          f"deleted policy {args.policy_id}")
    return 0


def _done(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    if args.json:
        print_doc(doc)
    else:
        print(text)


def _outcomes(args: argparse.Namespace, reply: dict[str, Any]) -> int:
    ok = [{**r, "result": "ok"} for r in reply.get("success_resources", [])]
    failed = [{**r, "result": "failed"} for r in reply.get("fail_resources", [])]
    print_table(args, reply, ("resource_id", "result", "code", "message"), ok + failed)
    for f in failed:
        print(f"vbs: {f.get('code')}: {f.get('message')}", file=sys.stderr)
    return EXIT_API if failed else 0


def _flat(p: dict[str, Any]) -> dict[str, Any]:
    """A policy as one row: schedule and retention summarised."""
    s = p.get("scheduled_policy") or {}
    interval: str | None
    if "frequency" in s:
        interval = f"every {s['frequency']} day(s)"
    else:
        interval = ",".join(s.get("week_frequency") or []) or None
    if "rentention_num" in s:
        retention = f"newest {s['rentention_num']}"
    elif "rentention_day" in s:
        retention = f"{s['rentention_day']} day(s)"
    else:
        retention = None
    if s.get("remain_first_backup_of_curMonth") == "Y" and retention:
        retention += " + first of month"
    return {
        "backup_policy_id": p.get("backup_policy_id"),
        "backup_policy_name": p.get("backup_policy_name"),
        "status": s.get("status"),
        "start_time": s.get("start_time"),
        "interval": interval,
        "retention": retention,
        "time_zone": p.get("time_zone"),
        "policy_resource_count": p.get("policy_resource_count"),
        "tags": p.get("tags"),
    }
