"""``vbs db upgrade`` / ``vbs db status``: the schema, separately from start-up.

Scale-out deployments set ``database.migrate_on_start = false`` and run
``vbs db upgrade`` once per release, before starting processes of the new
version (start-up then only checks that the schema is current). The embedded
default keeps migrating at every start. Concurrent upgrades are safe
(an advisory lock on PostgreSQL, a file lock on SQLite).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    import os

    env_config = os.environ.get("VBS_CONFIG")
    parser = subparsers.add_parser("db", help="database schema (migrations)")
    sub = parser.add_subparsers(dest="db_command", metavar="COMMAND")
    sub.required = True
    for name, helptext, func in (
        ("upgrade", "apply every pending migration, then exit", _upgrade),
        ("status", "print applied and pending heads; exit 1 when not current", _status),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--data-dir", type=Path, default=None,
                       help="data directory (default: $VBS_DATA_DIR or ./vbs-data)")
        p.add_argument("--config", type=Path, default=Path(env_config) if env_config else None,
                       help="TOML settings file (default: $VBS_CONFIG)")
        p.set_defaults(func=func)


def _settings(args: argparse.Namespace) -> Any:
    from vbs.cli.roles import load

    return load(args, "db")


def _upgrade(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from vbs.bootstrap import migrate, prepare_data_dir
    from vbs.cli.roles import describe
    from vbs.db.migrate import current_heads

    settings = _settings(args)
    if settings is None:
        return 2
    if settings.database.url.startswith("sqlite"):
        prepare_data_dir(settings)
    try:
        migrate(settings)
        heads = sorted(current_heads(settings.database.url))
    except SQLAlchemyError as exc:
        print(f"vbs db upgrade: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"schema up to date ({describe(settings).split(' ')[0]}): {' '.join(heads)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from vbs.db.migrate import applied_revisions, script_heads

    settings = _settings(args)
    if settings is None:
        return 2
    applied = applied_revisions(settings.database.url)
    pending = sorted(script_heads() - applied)
    print("current" if not pending else "pending: " + " ".join(pending))
    return 0 if not pending else 1
