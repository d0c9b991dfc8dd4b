"""``vbs admin volume``: register existing images/devices and list volumes.

Like the rest of ``vbs admin`` it works on a data dir's database directly
(no server needed, safe while one runs: SQLite WAL or PostgreSQL for the
rows, the driver's ``flock`` for the volume store):

* ``vbs admin volume import PATH --project P [--name N]`` registers an
  existing image file or block device under one of
  ``settings.volumes.import_roots`` (``[volumes] import_roots`` in the
  config file or ``VBS_VOLUMES__IMPORT_ROOTS``, ``os.pathsep``-separated or
  a JSON list) and prints only the new volume id;
* ``vbs admin volume list [--project P]`` prints one volume per line.

A refused import exits 1 with the reason (path, roots, rule) on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register_volume"]


def register_volume(families: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``volume`` object to ``vbs admin`` (called by :mod:`vbs.cli.admin`)."""
    from vbs.cli.admin import _guard

    volume = families.add_parser("volume", help="volumes of the built-in volume store")
    vcmd = volume.add_subparsers(dest="admin_command", metavar="ACTION")
    vcmd.required = True
    p = vcmd.add_parser(
        "import", parents=[common],
        help="register an existing image file or block device, print the volume id",
    )
    p.add_argument("path", type=Path, help="file or block device under an allowed import root")
    p.add_argument("--project", required=True, help="project name or id")
    p.add_argument("--name", default=None)
    p.add_argument("--description", default=None)
    p.set_defaults(func=_guard(_volume_import))
    p = vcmd.add_parser("list", parents=[common], help="list volumes")
    p.add_argument("--project", default=None, help="only this project (name or id)")
    p.set_defaults(func=_guard(_volume_list))


def _volume_import(args: argparse.Namespace) -> int:
    from vbs.cli.admin import _open
    from vbs.config import load_settings
    from vbs.identity import find_project
    from vbs.service.volumes import import_existing
    from vbs.volumes import FileVolumeDriver

    settings = load_settings(args.config, args.data_dir)
    db = _open(args)
    try:
        with db.session() as session:
            project = find_project(session, args.project)
            record = import_existing(
                session, FileVolumeDriver(settings.volumes.root), args.path, project.id,
                args.name, settings.volumes.import_roots, description=args.description,
            )
    finally:
        db.dispose()
    print(record.id)
    return 0


def _volume_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from vbs.cli.admin import _open, _print_table
    from vbs.db.models_identity import Project
    from vbs.db.models_volumes import Volume
    from vbs.identity import find_project

    db = _open(args)
    try:
        with db.session() as session:
            query = (select(Volume, Project.name).join(Project, Project.id == Volume.project_id)
                     .order_by(Volume.created_at, Volume.id))
            if args.project is not None:
                query = query.where(Volume.project_id == find_project(session, args.project).id)
            rows = [
                (v.id, project_name, v.name or "", v.status, str(v.size_gb),
                 v.external_path or "")
                for v, project_name in session.execute(query)
            ]
    finally:
        db.dispose()
    _print_table(("id", "project", "name", "status", "size_gb", "imported_from"), rows)
    return 0
