"""Snapshot use cases of the built-in volume store (openstack-compat §6.2).

Re-exported by :mod:`vbs.service.volumes`, which documents the concurrency
rules and the commit behaviour shared by all volume-store use cases. In
short: :func:`create_snapshot` and :func:`delete_snapshot` **commit the
session they are given** (before and after the driver touches the disk),
because a copy snapshot may take minutes and must not hold a database
write transaction meanwhile; pass a session with no other pending work.

Internal snapshots (``internal=True``) are made by the backup service for one
backup and deleted after it. They are invisible here unless the caller says
``include_internal=True``: the snapshots API never lists, shows or deletes
them, so a user cannot pull a snapshot out from under a running backup.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_volumes import SNAPSHOT_STATUSES, Snapshot, Volume
from vbs.service.codes import NATIVE_BAD_REQUEST
from vbs.service.listing import ListRules, PageRequest
from vbs.service.volume_records import (
    Page,
    SnapshotRecord,
    VolumeStateConflict,
    check_metadata,
    check_text,
    compare_and_set,
    fetch_page,
    load_snapshot_row,
    load_volume_row,
    snapshot_record,
)
from vbs.volumes import FileVolumeDriver, ImportedVolumeChanged, VolumeNotFound

__all__ = [
    "SNAPSHOT_DELETABLE",
    "SNAPSHOT_LIST",
    "SnapshotFilters",
    "create_snapshot",
    "delete_snapshot",
    "get_snapshot",
    "list_snapshots",
    "snapshot_path",
    "transition_snapshot",
]

SNAPSHOT_DELETABLE = frozenset({"available", "error", "error_deleting"})
"""Statuses from which a snapshot may be deleted."""

_SORT_COLUMNS = {
    "name": Snapshot.name,
    "status": Snapshot.status,
    "size": Snapshot.size_gb,
    "id": Snapshot.id,
    "created_at": Snapshot.created_at,
    "updated_at": Snapshot.updated_at,
    "volume_id": Snapshot.volume_id,
}

SNAPSHOT_LIST = ListRules(
    invalid=NATIVE_BAD_REQUEST,
    sort_keys=frozenset(_SORT_COLUMNS),
    sort_key_aliases={"display_name": "name"},
)
"""Paging and sort rules of ``GET /snapshots[/detail]``."""


@dataclass(frozen=True, slots=True)
class SnapshotFilters:
    """Exact-match filters a non-admin may use (openstack-compat §6.2)."""

    name: str | None = None
    status: str | None = None
    volume_id: str | None = None


def get_snapshot(
    session: Session, project_id: str | None, snapshot_id: str, *, include_internal: bool = False
) -> SnapshotRecord:
    """The snapshot, or :class:`SnapshotRecordNotFound` (404)."""
    return snapshot_record(
        load_snapshot_row(session, project_id, snapshot_id, include_internal=include_internal)
    )


def list_snapshots(
    session: Session,
    project_id: str,
    page: PageRequest,
    filters: SnapshotFilters | None = None,
    *,
    with_count: bool = False,
) -> Page[SnapshotRecord]:
    """One page of the project's non-internal snapshots, paged and sorted in SQL."""
    f = filters or SnapshotFilters()
    scope = [Snapshot.project_id == project_id, Snapshot.internal.is_(False)]
    query = select(Snapshot).where(*scope)
    if f.name is not None:
        query = query.where(Snapshot.name == f.name)
    if f.status is not None:
        query = query.where(Snapshot.status == f.status)
    if f.volume_id is not None:
        query = query.where(Snapshot.volume_id == f.volume_id.lower())
    rows, has_more, count = fetch_page(
        session, query, Snapshot, _SORT_COLUMNS, page, scope, with_count=with_count
    )
    return Page(tuple(snapshot_record(r) for r in rows), has_more, count)


def create_snapshot(
    session: Session,
    driver: FileVolumeDriver,
    project_id: str,
    volume_id: str,
    name: str | None = None,
    description: str | None = None,
    internal: bool = False,
    force: bool = False,
    *,
    metadata: dict[str, str] | None = None,
    user_id: str | None = None,
) -> SnapshotRecord:
    """Take a point-in-time snapshot of the volume; returns it ``available``.

    Allowed volume statuses: ``available``; ``in-use`` with ``force`` (Cinder
    before 3.66) or for internal snapshots; ``backing-up`` for internal
    snapshots only (the backup job already holds the volume). Otherwise
    :class:`VolumeStateConflict`; unknown volume :class:`VolumeRecordNotFound`.

    Steps: (1) in one transaction, re-check the volume status with a row
    write and insert the snapshot ``creating``, then commit — a concurrent
    ``delete_volume`` either ran first (we see ``deleting`` and refuse) or
    waits and then sees our snapshot (and refuses); (2) the driver makes the
    copy, outside any transaction; (3) mark it ``available`` with its method
    and commit. If (2) fails the row becomes ``error`` (committed) and the
    driver's error propagates (``VolumeIOError`` is transient).

    A *copy* snapshot of a volume that is being written is not point-in-time
    (see :mod:`vbs.volumes`); quiescing is the caller's job — the backup
    service holds the volume in ``backing-up``.
    """
    name = check_text("name", name)
    description = check_text("description", description)
    meta = check_metadata(metadata)
    vid = volume_id.lower()
    allowed = {"available"}
    if force or internal:
        allowed.add("in-use")
    if internal:
        allowed.add("backing-up")
    touched = session.execute(
        update(Volume)
        .where(Volume.id == vid, Volume.project_id == project_id, Volume.status.in_(allowed))
        .values(updated_at=Volume.updated_at)
        .execution_options(synchronize_session=False)
    )
    if not getattr(touched, "rowcount", 0):
        volume = load_volume_row(session, project_id, vid)
        hint = " (use force to snapshot an in-use volume)" if volume.status == "in-use" else ""
        raise VolumeStateConflict(
            f"Invalid volume: Volume {vid} status must be {' or '.join(sorted(allowed))}, "
            f"but current status is: {volume.status}{hint}."
        )
    size_gb = session.scalar(select(Volume.size_gb).where(Volume.id == vid))
    now = utcnow()
    row = Snapshot(
        id=str(uuid.uuid4()), project_id=project_id, volume_id=vid, user_id=user_id,
        name=name, description=description, size_gb=size_gb, status="creating",
        method=None, internal=internal, meta=meta, created_at=now, updated_at=now,
    )
    session.add(row)
    session.commit()
    try:
        handle = driver.snapshot(vid, row.id)
    except Exception as exc:
        _set_status(session, row.id, "error")
        if isinstance(exc, ImportedVolumeChanged):  # issue 8: never read a swapped path
            session.execute(update(Volume).where(Volume.id == vid).values(
                status="error", updated_at=utcnow()).execution_options(
                synchronize_session=False))
            session.commit()
            raise VolumeStateConflict(
                f"Invalid volume: {exc.message}; volume {vid} is in error.") from exc
        if isinstance(exc, VolumeNotFound):
            raise VolumeStateConflict(
                f"Invalid volume: the data of volume {vid} is missing ({exc}); "
                f"snapshot {row.id} is in error."
            ) from exc
        raise
    row.status = "available"
    row.method = handle.method
    row.updated_at = utcnow()
    session.commit()
    return snapshot_record(row)


def delete_snapshot(
    session: Session,
    driver: FileVolumeDriver,
    project_id: str,
    snapshot_id: str,
    *,
    include_internal: bool = False,
) -> None:
    """Delete the snapshot's data and row.

    Status must be one of :data:`SNAPSHOT_DELETABLE`, else
    :class:`VolumeStateConflict`; it moves to ``deleting`` by compare-and-set
    (committed) so two deletes never both proceed. If the driver fails, the
    row becomes ``error_deleting`` (deletable again) and the error
    propagates. Internal snapshots need ``include_internal=True``.
    """
    sid = snapshot_id.lower()
    hidden = () if include_internal else (Snapshot.internal.is_(False),)
    if not compare_and_set(session, Snapshot, sid, SNAPSHOT_DELETABLE, "deleting", *hidden,
                           project_id=project_id):
        row = load_snapshot_row(session, project_id, sid, include_internal=include_internal)
        raise VolumeStateConflict(
            f"Invalid snapshot: Snapshot status must be available or error, but snapshot "
            f"{sid} is {row.status}."
        )
    session.commit()
    try:
        driver.delete_snapshot(sid)
    except Exception:
        _set_status(session, sid, "error_deleting")
        raise
    session.execute(delete(Snapshot).where(Snapshot.id == sid))
    session.commit()


def transition_snapshot(
    session: Session, snapshot_id: str, expected: set[str] | frozenset[str], new: str
) -> bool:
    """Atomic compare-and-set of a snapshot's status (e.g. ``available`` ->
    ``backing-up`` while a backup reads a user snapshot, and back).

    Same contract as :func:`vbs.service.volumes.transition_volume`: one
    UPDATE in the caller's unit of work, True if this call moved the row;
    the caller commits. Unknown statuses are a programming error
    (ValueError).
    """
    _check_statuses(expected, new)
    return compare_and_set(session, Snapshot, snapshot_id.lower(), expected, new)


def snapshot_path(driver: FileVolumeDriver, record: SnapshotRecord) -> Path:
    """Where the engine reads the snapshot's bytes (driver SnapshotNotFound if gone)."""
    return driver.snapshot_path(record.id)


def _check_statuses(expected: set[str] | frozenset[str], new: str) -> None:
    unknown = (set(expected) | {new}) - set(SNAPSHOT_STATUSES)
    if unknown:
        raise ValueError(f"unknown snapshot status(es): {sorted(unknown)}")


def _set_status(session: Session, snapshot_id: str, status: str) -> None:
    """Record a failure in its own transaction (the caller's was committed)."""
    session.rollback()
    session.execute(
        update(Snapshot)
        .where(Snapshot.id == snapshot_id)
        .values(status=status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
