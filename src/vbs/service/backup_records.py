"""Backup records and the errors of the backup use cases.

A :class:`BackupRecord` is a frozen copy of a ``backups`` row (never an ORM
object); the API layer turns it into the renderers' ``BackupView``. Rule violations
are raised with the code of the API family that asked (:class:`Family`): the
VBS extension answers ``VolumeBackup.*`` codes, the native API Cinder faults.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session, aliased, object_session

from vbs.db.models_backups import Backup
from vbs.errors import ServiceError
from vbs.frozen import assemble, field_names
from vbs.service.backup_rules import Tag
from vbs.service.codes import NATIVE_BAD_REQUEST, NATIVE_NOT_FOUND, ApiCode

__all__ = [
    "RECORD_COLUMNS",
    "BackupRecord",
    "Family",
    "backup_record",
    "dependent_parents",
    "has_dependents_column",
    "record_from_values",
    "refuse",
]


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


def _dependent(child: Any) -> tuple[ColumnElement[bool], ...]:
    """``child`` counts as a dependent of its parent (the one rule for both forms below)."""
    return (child.is_incremental.is_(True), child.status.not_in(_GONE))


def dependent_parents(session: Session, backup_ids: Iterable[str]) -> set[str]:
    """Which of ``backup_ids`` have an incremental backup taken on top of them."""
    ids = list(backup_ids)
    if not ids:
        return set()
    rows = session.execute(
        select(Backup.parent_id).distinct()
        .where(Backup.parent_id.in_(ids), *_dependent(Backup))
    )
    return {str(pid) for (pid,) in rows}


def has_dependents_column() -> ColumnElement[bool]:
    """SQL for "this ``Backup`` row has a dependent", to select next to
    :data:`RECORD_COLUMNS`: a page learns it in its own query (one
    ``ix_backups_parent_id`` probe a row) instead of a second one."""
    child = aliased(Backup)
    return exists().where(child.parent_id == Backup.id, *_dependent(child))


_COPIED = (
    "id", "project_id", "user_id", "volume_id", "snapshot_id", "name", "description",
    "status", "fail_reason", "size_gb", "volume_size_bytes", "object_count", "stored_bytes",
    "container", "availability_zone", "is_incremental", "parent_id", "bootable", "progress",
    "source", "policy_id", "image_source",
)
"""The leading :class:`BackupRecord` fields, taken from the row as they are."""
RECORD_COLUMNS: tuple[str, ...] = (
    *_COPIED, "meta", "tags", "created_at", "updated_at", "data_timestamp",
    "change_tracking", "bytes_read", "bytes_new", "chunks_sampled",
)
"""Every ``Backup`` attribute, in the order :func:`record_from_values` reads them:
a query selecting these columns hands its rows straight to it."""
_N = len(_COPIED)
_FIELDS = field_names(BackupRecord)


def _new_record(*values: Any) -> BackupRecord:
    """``BackupRecord(*values)`` (its field order is RECORD_COLUMNS', tested),
    without the frozen ``__init__``'s cost (:mod:`vbs.frozen`)."""
    return assemble(BackupRecord, _FIELDS, values)


def record_from_values(values: Sequence[Any], has_dependents: bool) -> BackupRecord:
    """A record from one row's values in :data:`RECORD_COLUMNS` order.

    The one constructor of records: lists call it on plain result rows
    (positional access; reading 31 attributes of a SQLAlchemy ``Row`` by name
    cost 9 µs a row), :func:`backup_record` on an ORM object's values.
    """
    (meta, tags, created_at, updated_at, data_timestamp, change_tracking, bytes_read,
     bytes_new, chunks_sampled) = values[_N:]
    return _new_record(
        *values[:_N],
        tuple(sorted((str(k), str(v)) for k, v in meta.items())) if meta else (),
        tuple(Tag(str(t["key"]), str(t.get("value", ""))) for t in tags) if tags else (),
        created_at,
        updated_at,
        data_timestamp,
        change_tracking,
        int(bytes_read or 0),
        int(bytes_new or 0),
        int(chunks_sampled or 0),
        has_dependents,
    )


def backup_record(row: Backup, has_dependents: bool | None = None) -> BackupRecord:
    """A frozen copy of ``row``; ``has_dependents`` is looked up when not given
    (lists pass it, computed for the whole page with :func:`dependent_parents`)."""
    if has_dependents is None:
        session = object_session(row)
        has_dependents = session is not None and row.id in dependent_parents(session, [row.id])
    return record_from_values([getattr(row, key) for key in RECORD_COLUMNS], has_dependents)
