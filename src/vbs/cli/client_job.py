"""``vbs job show ID [--wait]``: the state of an asynchronous job (vbs-api §4.4).

Backups, restores and deletions started through the VBS extension API, and
each backup a policy run starts, are jobs. ``--wait`` follows the job with a
progress bar and exits 5 if it ends ``FAIL``; without ``--wait`` showing a
failed job is a successful command (exit 0).
"""

from __future__ import annotations

import argparse
from typing import Any

from vbs.cli.client_base import command, leaf
from vbs.cli.client_http import Client
from vbs.cli.client_output import print_object
from vbs.cli.client_wait import add_wait_options, job_progress, wait_for_job

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("job", help="asynchronous jobs (backup, restore, delete)")
    actions = p.add_subparsers(dest="client_action", metavar="ACTION")
    actions.required = True

    c = leaf(actions, "show", "show a job")
    c.add_argument("job_id")
    add_wait_options(c)
    c.set_defaults(func=command(_show))


def _show(client: Client, args: argparse.Namespace) -> int:
    job = wait_for_job(client, args.job_id, args) if args.wait else client.job(args.job_id)
    print_object(args, job, _rows(job), title="job")
    return 0


def _rows(job: dict[str, Any]) -> dict[str, Any]:
    done, total = job_progress(job)
    rows: dict[str, Any] = {k: job.get(k) for k in ("job_id", "job_type", "status")}
    for key, value in sorted((job.get("entities") or {}).items()):
        rows[f"entities.{key}"] = value
    rows["progress"] = f"{done}/{total} bytes" if total else None
    for k in ("begin_time", "end_time", "error_code", "fail_reason"):
        rows[k] = job.get(k)
    return rows
