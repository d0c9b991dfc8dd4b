"""``vbs admin recover --from-repository``: rebuild backup records after losing the database.

Procedure (docs/operations.md, "Disaster recovery"): point the settings at an
empty database and at the repository with its master key, run ``vbs db
upgrade``, then this command, then start the service. It prints what it
did; exit 0 when every manifest root was readable, 5 when some were not (the
others are recovered anyway), 1 on other errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register_recover"]


def register_recover(families: Any, common: argparse.ArgumentParser) -> None:
    """Add ``recover`` to ``vbs admin`` (called by :mod:`vbs.cli.admin`)."""
    from vbs.cli.admin import _guard

    p = families.add_parser("recover", parents=[common],
                            help="rebuild backup records from the repository (DR)")
    p.add_argument("--from-repository", action="store_true", required=True,
                   help="read every manifest root of the configured repository")
    p.add_argument("--dry-run", action="store_true", help="report, change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_guard(_recover))


def _recover(args: argparse.Namespace) -> int:
    from vbs.bootstrap import open_repository
    from vbs.cli.admin import _open
    from vbs.config import load_settings
    from vbs.service.recovery import recover_from_repository

    db = _open(args)
    settings = load_settings(args.config, args.data_dir)
    repository = open_repository(settings)
    try:
        report = recover_from_repository(db, repository, dry_run=args.dry_run)
    finally:
        repository.backend.close()
        db.dispose()
    if args.json:
        print(json.dumps({"projects_created": report.projects_created,
                          "backups_recovered": report.backups_recovered,
                          "backups_present": report.backups_present,
                          "unreadable": report.unreadable}, indent=1))
    else:
        verb = "would recover" if args.dry_run else "recovered"
        print(f"{verb} {report.backups_recovered} backups "
              f"({report.backups_present} already present)")
        for project in report.projects_created:
            print(f"created project {project}")
        for line in report.unreadable:
            print(f"unreadable: {line}", file=sys.stderr)
    return 5 if report.unreadable else 0
