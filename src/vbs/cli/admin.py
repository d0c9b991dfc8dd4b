"""``vbs admin``: manage projects and users directly in a data dir's database.

No server is needed: each command loads settings (``--data-dir`` /
``$VBS_DATA_DIR``, ``--config`` / ``$VBS_CONFIG``), runs migrations, and works
on the database. Output is a rich table on a terminal and plain
tab-separated lines otherwise; ``project create`` and ``user create`` print
only the new id so scripts can capture it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vbs.errors import ConfigError, VbsError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None,
                        help="data directory (default: $VBS_DATA_DIR or ./vbs-data)")
    env_config = os.environ.get("VBS_CONFIG")
    common.add_argument("--config", type=Path, default=Path(env_config) if env_config else None,
                        help="TOML settings file (default: $VBS_CONFIG)")

    admin = subparsers.add_parser("admin", help="manage projects and users (no server needed)")
    families = admin.add_subparsers(dest="admin_family", metavar="OBJECT")
    families.required = True

    project = families.add_parser("project", help="projects")
    pcmd = project.add_subparsers(dest="admin_command", metavar="ACTION")
    pcmd.required = True
    p = pcmd.add_parser("create", parents=[common], help="create a project, print its id")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.set_defaults(func=_project_create)
    p = pcmd.add_parser("list", parents=[common], help="list projects")
    p.set_defaults(func=_project_list)

    user = families.add_parser("user", help="users")
    ucmd = user.add_subparsers(dest="admin_command", metavar="ACTION")
    ucmd.required = True
    p = ucmd.add_parser("create", parents=[common], help="create a user, print its id")
    p.add_argument("name")
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password-file", type=Path,
                        help="read the password from the first line of this file")
    secret.add_argument("--password", help="the password on the command line (visible to "
                        "other local users in the process list; prefer the file, "
                        "VBS_NEW_PASSWORD or the prompt)")
    p.add_argument("--project", required=True, help="project name or id")
    p.add_argument("--role", default="member", choices=["admin", "member", "reader"])
    p.set_defaults(func=_user_create)
    p = ucmd.add_parser("list", parents=[common], help="list users")
    p.set_defaults(func=_user_list)

    from vbs.cli.admin_volume import register_volume

    register_volume(families, common)

    from vbs.cli.admin_quota import register_quota

    register_quota(families, common)

    from vbs.cli.admin_recover import register_recover

    register_recover(families, common)


def _open(args: argparse.Namespace) -> Any:
    from vbs.bootstrap import migrate, prepare_data_dir, retry_on_conflict
    from vbs.config import load_settings
    from vbs.db.session import Database
    from vbs.identity import ensure_default_domain

    settings = load_settings(args.config, args.data_dir)
    prepare_data_dir(settings)
    migrate(settings)
    db = Database(settings.database.url)
    retry_on_conflict(db, ensure_default_domain)
    return db


def _guard(func: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            rc: int = func(args)
            return rc
        except ConfigError as exc:
            print(f"vbs admin: {exc.message}", file=sys.stderr)
            return 2
        except VbsError as exc:
            print(f"vbs admin: {exc.message}", file=sys.stderr)
            return 1
    return wrapper


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        for row in rows:
            print("\t".join(row))


@_guard
def _project_create(args: argparse.Namespace) -> int:
    from vbs.identity import create_project

    db = _open(args)
    try:
        with db.session() as session:
            project = create_project(session, args.name, description=args.description)
    finally:
        db.dispose()
    print(project.id)
    return 0


@_guard
def _project_list(args: argparse.Namespace) -> int:
    from vbs.identity import list_projects

    db = _open(args)
    try:
        with db.session() as session:
            projects = list_projects(session)
    finally:
        db.dispose()
    _print_table(
        ("id", "name", "domain", "enabled"),
        [(p.id, p.name, p.domain_name, str(p.enabled).lower()) for p in projects],
    )
    return 0


def _new_password(args: argparse.Namespace) -> str:
    """The new user's password: ``--password-file``, ``--password``,
    ``VBS_NEW_PASSWORD``, else a prompt (twice) on a terminal (issue 8)."""
    if args.password_file is not None:
        try:
            lines = args.password_file.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.password_file}: {exc.strerror}") from exc
        password = lines[0] if lines else ""
    elif args.password is not None:
        password = args.password
    elif os.environ.get("VBS_NEW_PASSWORD"):
        password = os.environ["VBS_NEW_PASSWORD"]
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        raise ConfigError("no password: use --password-file FILE, VBS_NEW_PASSWORD or a "
                          "terminal for the prompt")
    if not password:
        raise ConfigError("the password is empty")
    return password


@_guard
def _user_create(args: argparse.Namespace) -> int:
    from vbs.identity import assign_role, create_user, find_project

    password = _new_password(args)  # before the database: a prompt must not hold a lock
    db = _open(args)
    try:
        with db.session() as session:
            project = find_project(session, args.project)
            user = create_user(session, args.name, password, default_project_id=project.id)
            assign_role(session, user.id, project.id, args.role)
    finally:
        db.dispose()
    print(user.id)
    return 0


@_guard
def _user_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from vbs.db.models_identity import Project, RoleAssignment
    from vbs.identity import list_users

    db = _open(args)
    try:
        with db.session() as session:
            users = list_users(session)
            grants: dict[str, list[str]] = {}
            for user_id, project_name, role in session.execute(
                select(RoleAssignment.user_id, Project.name, RoleAssignment.role)
                .join(Project, Project.id == RoleAssignment.project_id)
                .order_by(Project.name, RoleAssignment.role)
            ):
                grants.setdefault(user_id, []).append(f"{project_name}:{role}")
    finally:
        db.dispose()
    _print_table(
        ("id", "name", "domain", "enabled", "roles"),
        [(u.id, u.name, u.domain_name, str(u.enabled).lower(), ",".join(grants.get(u.id, [])))
         for u in users],
    )
    return 0
