"""Disaster recovery: rebuild backup records from the repository alone.

The repository is the truth (DESIGN: "the database holds the API's records;
the repository is the truth"). Every manifest root names its project, backup
id, volume size, chunk size, parent and creation time, and since the
scale-out round also the backup's record (``meta["vbs.record"]``, written by
:mod:`vbs.service.backup_jobs`): name, description, tags, metadata, source
volume, snapshot, policy, user, times and the project's name.

:func:`recover_from_repository` walks every project of the repository and
every manifest root, and inserts a backup row ``available`` for each one
the database does not have (rows present are left as they are, so running
it twice, or on a database that kept part of its rows, is safe). A
project missing from the database is created with its original id and name
(a name already taken by another id gets ``-recovered-<id8>``), in the
default domain; users, passwords and role assignments are not in the
repository and are recreated by the operator (``vbs admin user create``).

What the repository cannot tell: edits made after a backup was taken (a
later rename or tag change), volumes (their rows; the data of a backup is
restorable to a new volume), policies, shares and quotas. Roots written
before records were stored yield a row from the root alone (name, volume
id, size, parent, time).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.models_identity import Project
from vbs.db.session import Database
from vbs.errors import BackupNotFound, CorruptObject, VbsError
from vbs.identity import DEFAULT_DOMAIN_ID, ensure_default_domain
from vbs.repository.manifest import ManifestRoot
from vbs.repository.repo import Repository

__all__ = ["RECORD_META", "RecoveryReport", "recover_from_repository"]

RECORD_META = "vbs.record"
GIB = 1 << 30


@dataclass
class RecoveryReport:
    """What a recovery pass found and did."""

    projects_created: list[str] = field(default_factory=list)
    backups_recovered: int = 0
    backups_present: int = 0
    unreadable: list[str] = field(default_factory=list)
    """``project/backup: reason`` for manifest roots that could not be read."""


def _time(value: Any, fallback: dt.datetime) -> dt.datetime:
    if not isinstance(value, str):
        return fallback
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _record(root: ManifestRoot) -> dict[str, Any]:
    raw = root.meta.get(RECORD_META)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _row(project_id: str, root: ManifestRoot) -> Backup:
    rec = _record(root)
    created = _time(root.created, utcnow())
    stats = root.stats
    return Backup(
        id=root.backup_id,
        project_id=project_id,
        user_id=rec.get("user_id"),
        volume_id=str(rec.get("volume_id") or root.meta.get("volume_id") or root.source_id),
        snapshot_id=rec.get("snapshot_id"),
        name=rec.get("name", root.name or None),
        description=rec.get("description"),
        status="available",
        size_gb=int(rec.get("size_gb") or math.ceil(root.volume_size / GIB)),
        volume_size_bytes=root.volume_size,
        object_count=int(stats.get("chunks_total", 0)) - int(stats.get("chunks_zero", 0)),
        stored_bytes=int(stats.get("bytes_new_stored", 0)),
        container=rec.get("container"),
        availability_zone=rec.get("availability_zone"),
        is_incremental=bool(rec.get("is_incremental", root.parent_id is not None)),
        parent_id=root.parent_id,
        bootable=bool(rec.get("bootable", False)),
        progress=100,
        source=str(rec.get("source") or "vbs"),
        policy_id=rec.get("policy_id"),
        meta=dict(rec.get("metadata") or {}),
        tags=list(rec.get("tags") or []),
        created_at=_time(rec.get("created_at"), created),
        updated_at=utcnow(),
        data_timestamp=_time(rec.get("data_timestamp"), created),
    )


def _ensure_project(db: Database, project_id: str, name: str | None,
                    report: RecoveryReport) -> None:
    with db.session() as s:
        ensure_default_domain(s)
        if s.get(Project, project_id) is not None:
            return
        wanted = name or project_id
        taken = s.execute(
            select(Project.id).where(Project.domain_id == DEFAULT_DOMAIN_ID,
                                     Project.name == wanted)
        ).first()
        if taken is not None:
            wanted = f"{wanted}-recovered-{project_id[:8]}"
        s.add(Project(id=project_id, domain_id=DEFAULT_DOMAIN_ID, name=wanted,
                      description="recovered from the repository", enabled=True))
    report.projects_created.append(f"{project_id} ({wanted})")


def recover_from_repository(db: Database, repository: Repository, *,
                            dry_run: bool = False) -> RecoveryReport:
    """Insert a row for every manifest root the database lacks (see module doc)."""
    report = RecoveryReport()
    for project_id in repository.projects():
        store = repository.project(project_id)
        roots: list[ManifestRoot] = []
        for backup_id in store.backup_ids():
            try:
                roots.append(store.load_manifest(backup_id))
            except (BackupNotFound, CorruptObject) as exc:
                report.unreadable.append(f"{project_id}/{backup_id}: {exc.message}")
            except VbsError as exc:
                report.unreadable.append(f"{project_id}/{backup_id}: {exc.message}")
        if not roots:
            continue
        with db.session() as s:
            known = set(s.scalars(
                select(Backup.id).where(Backup.id.in_([r.backup_id for r in roots]))
            ).all())
        missing = [r for r in roots if r.backup_id not in known]
        report.backups_present += len(known)
        if not missing or dry_run:
            report.backups_recovered += len(missing)
            continue
        names = [_record(r).get("project_name") for r in missing]
        _ensure_project(db, project_id, next((n for n in names if n), None), report)
        # Parents first is not needed (parent_id is no foreign key); oldest first
        # keeps created_at order for readers of the table.
        with db.session() as s:
            for root in sorted(missing, key=lambda r: r.created):
                s.add(_row(project_id, root))
        report.backups_recovered += len(missing)
    return report
