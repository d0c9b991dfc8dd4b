"""Backup records and the errors of the backup use cases.

A :class:`BackupRecord` is a frozen copy of a ``backups`` row (never an ORM
object); the API layer turns it into the renderers' ``BackupView``. Rule violations
are raised with the code of the API family that asked (:class:`Family`): the
VBS extension answers ``VolumeBackup.*`` codes, the native API Cinder faults.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from vbs.db.models_backups import Backup
from vbs.errors import ServiceError
from vbs.service.backup_rules import Tag
from vbs.service.codes import NATIVE_BAD_REQUEST, NATIVE_NOT_FOUND, ApiCode

__all__ = ["BackupRecord", "Family", "backup_record", "dependent_parents", "refuse"]


class Family(enum.Enum):
    """Which API family is asking: decides the error codes."""

    VBS = "vbs"
    NATIVE = "native"


def refuse(family: Family, vbs_code: ApiCode, message: str | None = None) -> NoReturn:
    """Raise a rule violation in the family's wire code.

    The native API maps every 404-class VBS code to ``itemNotFound`` and all
    other client errors to ``badRequest`` (Cinder's InvalidBackup/InvalidVolume).
    """
    text = message or vbs_code.message
    if family is Family.VBS:
        raise ServiceError(text, vbs_code.code, vbs_code.status)
    native = NATIVE_NOT_FOUND if vbs_code.status == 404 else NATIVE_BAD_REQUEST
    raise ServiceError(text, native.code, native.status if vbs_code.status < 500 else 500)


@dataclass(frozen=True)
class BackupRecord:
    id: str
    project_id: str
    user_id: str | None
    volume_id: str
    snapshot_id: str | None
    name: str | None
    description: str | None
    status: str
    fail_reason: str | None
    size_gb: int
    volume_size_bytes: int
    object_count: int
    stored_bytes: int
    container: str | None
    availability_zone: str | None
    is_incremental: bool
    parent_id: str | None
    bootable: bool
    progress: int
    source: str
    policy_id: str | None
    image_source: bool
    metadata: tuple[tuple[str, str], ...]
    tags: tuple[Tag, ...]
    created_at: dt.datetime
    updated_at: dt.datetime | None
    data_timestamp: dt.datetime
    change_tracking: str | None = None
    """``fiemap``, ``hints`` or ``none`` once the backup was taken; None before."""
    bytes_read: int = 0
    bytes_new: int = 0
    chunks_sampled: int = 0
    has_dependent_backups: bool = False
    """An incremental backup (``is_incremental``) names this one as its parent."""


_GONE = ("deleting", "deleted", "error")


def dependent_parents(session: Session, backup_ids: Iterable[str]) -> set[str]:
    """Which of ``backup_ids`` have an incremental backup taken on top of them."""
    ids = list(backup_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(Backup.parent_id).distinct()
        .where(Backup.parent_id.in_(ids), Backup.is_incremental.is_(True),
               Backup.status.not_in(_GONE))
    )
    return {str(pid) for (pid,) in rows}


def backup_record(row: Backup, has_dependents: bool | None = None) -> BackupRecord:
    """A frozen copy of ``row``; ``has_dependents`` is looked up when not given
    (lists pass it, computed for the whole page with :func:`dependent_parents`)."""
    if has_dependents is None:
        session = object_session(row)
        has_dependents = session is not None and row.id in dependent_parents(session, [row.id])
    return BackupRecord(
        id=row.id,
        project_id=row.project_id,
        user_id=row.user_id,
        volume_id=row.volume_id,
        snapshot_id=row.snapshot_id,
        name=row.name,
        description=row.description,
        status=row.status,
        fail_reason=row.fail_reason,
        size_gb=row.size_gb,
        volume_size_bytes=row.volume_size_bytes,
        object_count=row.object_count,
        stored_bytes=row.stored_bytes,
        container=row.container,
        availability_zone=row.availability_zone,
        is_incremental=row.is_incremental,
        parent_id=row.parent_id,
        bootable=row.bootable,
        progress=row.progress,
        source=row.source,
        policy_id=row.policy_id,
        image_source=row.image_source,
        metadata=tuple(sorted((str(k), str(v)) for k, v in (row.meta or {}).items())),
        tags=tuple(Tag(str(t["key"]), str(t.get("value", ""))) for t in (row.tags or [])),
        created_at=row.created_at,
        updated_at=row.updated_at,
        data_timestamp=row.data_timestamp,
        change_tracking=row.change_tracking,
        bytes_read=int(row.bytes_read or 0),
        bytes_new=int(row.bytes_new or 0),
        chunks_sampled=int(row.chunks_sampled or 0),
        has_dependent_backups=has_dependents,
    )
