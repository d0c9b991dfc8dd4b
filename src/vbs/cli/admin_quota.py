"""``vbs admin quota``: per-project backup quotas (vbs-api §2.15).

Like the rest of ``vbs admin`` it works on a data dir's database directly
(no server needed, safe while one runs: the change takes the project's
quota lock, :mod:`vbs.service.quotas`):

* ``vbs admin quota set PROJECT [--backups N] [--gigabytes G]`` sets the
  project's limits; ``-1`` means unlimited and ``default`` returns a limit to
  the settings default (``quotas.default_backups`` /
  ``quotas.default_gigabytes``). An option left out keeps its value.
* ``vbs admin quota show PROJECT`` prints the effective limits and usage,
  one ``type quota used source`` line per resource (``source`` is
  ``project`` or ``default``).

Lowering a limit below current usage is allowed: existing backups stay,
new ones are refused.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register_quota"]


def _limit(raw: str) -> int | None:
    """``default`` -> None (settings default); otherwise an integer >= -1."""
    if raw.lower() == "default":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'default', got {raw!r}") from None
    if value < -1:
        raise argparse.ArgumentTypeError(f"must be -1 (unlimited) or >= 0, got {value}")
    return value


def register_quota(families: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``quota`` object to ``vbs admin`` (called by :mod:`vbs.cli.admin`)."""
    from vbs.cli.admin import _guard

    quota = families.add_parser("quota", help="per-project backup quotas")
    qcmd = quota.add_subparsers(dest="admin_command", metavar="ACTION")
    qcmd.required = True
    p = qcmd.add_parser("set", parents=[common], help="set a project's backup quotas")
    p.add_argument("project", help="project name or id")
    p.add_argument("--backups", type=_limit, default=argparse.SUPPRESS,
                   help="maximum number of backups (-1 unlimited, 'default')")
    p.add_argument("--gigabytes", type=_limit, default=argparse.SUPPRESS,
                   help="maximum GiB of backups (-1 unlimited, 'default')")
    p.set_defaults(func=_guard(_quota_set))
    p = qcmd.add_parser("show", parents=[common], help="show a project's quotas and usage")
    p.add_argument("project", help="project name or id")
    p.set_defaults(func=_guard(_quota_show))


def _quota_set(args: argparse.Namespace) -> int:
    from vbs.cli.admin import _open
    from vbs.identity import find_project
    from vbs.service.quotas import KEEP, set_project_quota

    if not hasattr(args, "backups") and not hasattr(args, "gigabytes"):
        print("vbs admin: give --backups and/or --gigabytes", file=sys.stderr)
        return 2
    db = _open(args)
    try:
        with db.session() as session:
            project = find_project(session, args.project)
            set_project_quota(session, project.id,
                              backups=getattr(args, "backups", KEEP),
                              gigabytes=getattr(args, "gigabytes", KEEP))
    finally:
        db.dispose()
    return _quota_show(args)


def _quota_show(args: argparse.Namespace) -> int:
    from vbs.cli.admin import _open, _print_table
    from vbs.config import load_settings
    from vbs.identity import find_project
    from vbs.service.quotas import backup_usage, project_overrides

    settings = load_settings(args.config, args.data_dir)
    db = _open(args)
    try:
        with db.session() as session:
            project = find_project(session, args.project)
            usage = backup_usage(session, project.id, settings.quotas)
            own_backups, own_gigabytes = project_overrides(session, project.id)
    finally:
        db.dispose()

    def source(own: int | None) -> str:
        return "default" if own is None else "project"

    _print_table(("type", "quota", "used", "source"), [
        ("backups", str(usage.backups_limit), str(usage.backups), source(own_backups)),
        ("backup_gigabytes", str(usage.gigabytes_limit), str(usage.gigabytes),
         source(own_gigabytes)),
    ])
    return 0
