"""The built-in volume store as the rest of the service sees it.

Use cases over the ``volumes`` / ``snapshots`` tables and the
:class:`~vbs.volumes.FileVolumeDriver` that holds the bytes: create, get,
list, delete, import, snapshot, and the status compare-and-set the backup
and restore jobs use (:func:`transition_volume`). Every function takes an
SQLAlchemy ``Session`` from the caller and returns frozen records
(:mod:`vbs.service.volume_records`), never ORM objects. Snapshot use cases
live in :mod:`vbs.service.volume_snapshots` and are re-exported here.

Units of work
-------------
Functions that only touch rows (``get_*``, ``list_*``, ``transition_*``,
``import_existing``, plain ``create_volume``) never commit: the caller's
unit of work does. Functions whose disk work can take long —
``create_volume`` from a snapshot, ``create_snapshot``, ``delete_volume``,
``delete_snapshot`` — **commit the given session** around the driver call, so
no database write transaction (on SQLite: the whole database's write lock)
is held while data is copied or unlinked. Call them with a session that has
no other pending work.

Concurrency
-----------
==========================================  ========================================
operations that overlap                     what makes it safe
==========================================  ========================================
transition_volume  vs  transition_volume    one ``UPDATE ... WHERE status IN``; the
(and vs delete_volume, create_snapshot)     second writer waits for the first's
                                            commit and re-checks: exactly one wins
delete_volume  vs  create_snapshot          both write the volume row first; the
                                            loser sees ``deleting`` (snapshot
                                            refused) or the committed ``creating``
                                            snapshot (delete refused)
delete_volume  vs  delete_volume            compare-and-set to ``deleting``
delete_snapshot  vs  delete_snapshot        compare-and-set to ``deleting``
create_volume from S  vs  delete_snapshot   driver: the open fd keeps S readable;
                                            if the delete came first the new
                                            volume ends in ``error``
copy snapshot  vs  restore into the volume  NOT prevented here: the restore job
                                            should refuse while the volume has a
                                            ``creating`` snapshot (list_snapshots)
==========================================  ========================================

A crash between the commits leaves rows in ``creating`` or ``deleting``;
:func:`recover_interrupted` turns them into ``error`` / ``error_deleting``
(safe only when no other process works on the store).
"""

from __future__ import annotations

import errno
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_volumes import VOLUME_STATUSES, Snapshot, Volume
from vbs.service.codes import NATIVE_BAD_REQUEST
from vbs.service.listing import DB_MAX_INT, ListRules, PageRequest
from vbs.service.volume_import import AVAILABILITY_ZONE, GIB, import_existing
from vbs.service.volume_records import (
    InvalidVolumeInput,
    MarkerNotFound,
    Page,
    SnapshotRecord,
    SnapshotRecordNotFound,
    VolumeImportRefused,
    VolumeRecord,
    VolumeRecordNotFound,
    VolumeStateConflict,
    check_metadata,
    check_text,
    compare_and_set,
    fetch_page,
    load_snapshot_row,
    load_volume_row,
    volume_record,
)
from vbs.service.volume_snapshots import (
    SNAPSHOT_DELETABLE,
    SNAPSHOT_LIST,
    SnapshotFilters,
    create_snapshot,
    delete_snapshot,
    get_snapshot,
    list_snapshots,
    snapshot_path,
    transition_snapshot,
)
from vbs.volumes import (
    FileVolumeDriver,
    InvalidVolumeSize,
    SnapshotNotFound,
    VolumeIOError,
)

__all__ = [
    "AVAILABILITY_ZONE",
    "DELETABLE",
    "FORCE_DELETABLE",
    "GIB",
    "SNAPSHOT_DELETABLE",
    "SNAPSHOT_LIST",
    "VOLUME_LIST",
    "InvalidVolumeInput",
    "MarkerNotFound",
    "Page",
    "SnapshotFilters",
    "SnapshotRecord",
    "SnapshotRecordNotFound",
    "VolumeFilters",
    "VolumeImportRefused",
    "VolumeRecord",
    "VolumeRecordNotFound",
    "VolumeStateConflict",
    "create_snapshot",
    "create_volume",
    "delete_snapshot",
    "delete_volume",
    "get_snapshot",
    "get_volume",
    "import_existing",
    "list_snapshots",
    "list_volumes",
    "recover_interrupted",
    "snapshot_path",
    "transition_snapshot",
    "transition_volume",
    "volume_path",
]

DELETABLE = frozenset({"available", "error", "error_restoring", "error_deleting"})
"""Statuses from which a volume may be deleted (Cinder rules, plus a retry
from ``error_deleting``)."""
FORCE_DELETABLE = DELETABLE | {"creating", "in-use"}
"""With ``force`` (admin): also stuck creations and attached volumes, never a
volume a backup or restore job holds."""

_SORT_COLUMNS = {
    "name": Volume.name,
    "status": Volume.status,
    "size": Volume.size_gb,
    "id": Volume.id,
    "created_at": Volume.created_at,
    "updated_at": Volume.updated_at,
    "bootable": Volume.bootable,
    "availability_zone": Volume.availability_zone,
}

VOLUME_LIST = ListRules(
    invalid=NATIVE_BAD_REQUEST,
    sort_keys=frozenset(_SORT_COLUMNS),
    sort_key_aliases={"display_name": "name"},
)
"""Paging and sort rules of ``GET /volumes[/detail]``."""


@dataclass(frozen=True, slots=True)
class VolumeFilters:
    """Filters a non-admin may use: exact ``name``/``status``/``bootable``/
    ``availability_zone``/``size``, and ``name_contains`` (Cinder's ``name~``,
    case-insensitive substring)."""

    name: str | None = None
    name_contains: str | None = None
    status: str | None = None
    bootable: bool | None = None
    availability_zone: str | None = None
    size: int | None = None


def _check_size(size_gb: object) -> int:
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or size_gb < 1:
        raise InvalidVolumeInput(
            f"Invalid input received: size must be an integer (GiB) >= 1, got {size_gb!r}."
        )
    if size_gb > DB_MAX_INT:
        raise InvalidVolumeInput(
            f"Invalid input received: size must be an integer (GiB) <= {DB_MAX_INT}, "
            f"got {size_gb}."
        )
    return size_gb


def _check_zone(zone: str | None) -> str:
    if zone is None or zone == AVAILABILITY_ZONE:
        return AVAILABILITY_ZONE
    raise InvalidVolumeInput(
        f"Invalid input received: Availability zone '{zone}' is invalid "
        f"(this service has only '{AVAILABILITY_ZONE}')."
    )


def create_volume(
    session: Session,
    driver: FileVolumeDriver,
    project_id: str,
    size_gb: int | None,
    name: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    *,
    user_id: str | None = None,
    availability_zone: str | None = None,
    snapshot_id: str | None = None,
    bootable: bool = False,
) -> VolumeRecord:
    """Create a volume (a sparse file of ``size_gb`` GiB); returns it ``available``.

    Without ``snapshot_id`` everything happens in the caller's unit of work
    (the file is created before the caller commits; creating an empty
    sparse file is quick). With ``snapshot_id`` the volume starts as a copy
    of that (non-internal, ``available``) snapshot; ``size_gb`` defaults to
    the snapshot's and may not be smaller; the row is committed as
    ``creating`` before the copy and as ``available`` (or ``error``) after.

    Raises :class:`InvalidVolumeInput` for bad size, name, description,
    metadata or zone, :class:`SnapshotRecordNotFound`,
    :class:`VolumeStateConflict` for a snapshot that is not available.
    """
    name = check_text("name", name)
    description = check_text("description", description)
    meta = check_metadata(metadata)
    zone = _check_zone(availability_zone)
    source = None
    if snapshot_id is not None:
        source = load_snapshot_row(session, project_id, snapshot_id, include_internal=False)
        if source.status != "available":
            raise VolumeStateConflict(
                f"Invalid snapshot: Originating snapshot {source.id} status must be "
                f"available, but is {source.status}."
            )
        if size_gb is None:
            size_gb = source.size_gb
    size_gb = _check_size(size_gb)
    if source is not None and size_gb < source.size_gb:
        raise InvalidVolumeInput(
            f"Invalid input received: Volume size '{size_gb}'GB cannot be smaller than the "
            f"snapshot size {source.size_gb}GB."
        )
    now = utcnow()
    row = Volume(
        id=str(uuid.uuid4()), project_id=project_id, user_id=user_id, name=name,
        description=description, size_gb=size_gb, size_bytes=size_gb * GIB, status="creating",
        driver="file", imported=False, external_path=None, bootable=bootable,
        availability_zone=zone, snapshot_id=None if source is None else source.id,
        attached_to=None, meta=meta, created_at=now, updated_at=now,
    )
    session.add(row)
    if source is None:
        session.flush()
        try:
            driver.create(row.id, row.size_bytes)
        except InvalidVolumeSize as exc:
            raise InvalidVolumeInput(f"Invalid input received: {exc.message}") from exc
        except VolumeIOError as exc:
            if exc.errno != errno.EFBIG:
                raise
            raise InvalidVolumeInput(
                f"Invalid input received: the volume store's filesystem cannot hold a "
                f"volume of {size_gb} GiB (file too large)."
            ) from exc
        row.status = "available"
        session.flush()
        return volume_record(row)
    session.commit()
    try:
        driver.create_from_snapshot(row.id, source.id, row.size_bytes)
    except Exception as exc:
        _mark(session, Volume, row.id, "error")
        if isinstance(exc, SnapshotNotFound):
            raise SnapshotRecordNotFound(
                f"Snapshot {source.id} could not be found (deleted while volume {row.id} "
                "was being created from it; the volume is in error)."
            ) from exc
        raise
    row.status = "available"
    row.updated_at = utcnow()
    session.commit()
    return volume_record(row)


def get_volume(session: Session, project_id: str | None, volume_id: str) -> VolumeRecord:
    """The volume, or :class:`VolumeRecordNotFound` (404).

    ``project_id=None`` skips the project check (trusted internal callers
    only, e.g. a job worker holding a project-checked id).
    """
    return volume_record(load_volume_row(session, project_id, volume_id))


def list_volumes(
    session: Session,
    project_id: str,
    page: PageRequest,
    filters: VolumeFilters | None = None,
    *,
    with_count: bool = False,
) -> Page[VolumeRecord]:
    """One page of the project's volumes, filtered, sorted and paged in SQL.

    ``page`` comes from ``parse_page_request(query, VOLUME_LIST)``. An
    unknown marker is :class:`MarkerNotFound` (404); the last item's id as
    marker yields an empty page.
    """
    f = filters or VolumeFilters()
    scope = [Volume.project_id == project_id]
    query = select(Volume).where(*scope)
    if f.name is not None:
        query = query.where(Volume.name == f.name)
    if f.name_contains is not None:
        query = query.where(
            func.lower(Volume.name).contains(f.name_contains.lower(), autoescape=True)
        )
    if f.status is not None:
        query = query.where(Volume.status == f.status)
    if f.bootable is not None:
        query = query.where(Volume.bootable.is_(f.bootable))
    if f.availability_zone is not None:
        query = query.where(Volume.availability_zone == f.availability_zone)
    if f.size is not None:
        query = query.where(Volume.size_gb == f.size)
    rows, has_more, count = fetch_page(
        session, query, Volume, _SORT_COLUMNS, page, scope, with_count=with_count
    )
    return Page(tuple(volume_record(r) for r in rows), has_more, count)


def delete_volume(
    session: Session,
    driver: FileVolumeDriver,
    project_id: str,
    volume_id: str,
    *,
    cascade: bool = False,
    force: bool = False,
) -> None:
    """Delete the volume's data (imports: only the registration) and its row.

    Cinder's rules: status in :data:`DELETABLE` (:data:`FORCE_DELETABLE` with
    ``force``, which the API grants to admins only), and no snapshots unless
    ``cascade``; internal snapshots (a backup in progress) and snapshots not
    in a deletable status always block. Violations raise
    :class:`VolumeStateConflict` and change nothing.

    Steps: compare-and-set to ``deleting`` plus the snapshot check, commit;
    driver deletes (snapshots first); rows deleted, commit. A driver failure
    leaves the volume (and cascaded snapshots) ``error_deleting``, committed,
    and propagates. Backups of the volume are independent and unaffected.
    """
    vid = volume_id.lower()
    allowed = FORCE_DELETABLE if force else DELETABLE
    if not compare_and_set(session, Volume, vid, allowed, "deleting", project_id=project_id):
        row = load_volume_row(session, project_id, vid)
        raise VolumeStateConflict(
            f"Invalid volume: Volume status must be {', '.join(sorted(allowed))} and must not "
            f"be migrating, attached, belong to a group, have snapshots or be disassociated "
            f"from snapshots after volume transfer; volume {vid} is {row.status}."
        )
    snaps = list(session.scalars(select(Snapshot).where(Snapshot.volume_id == vid)))
    # The change-tracking base (vbs.service.change_tracking) never blocks: it
    # goes with the volume.
    base_id = session.scalar(select(Volume.cbt_base_snapshot_id).where(Volume.id == vid))
    bases = [s for s in snaps if s.id == base_id]
    snaps = [s for s in snaps if s.id != base_id]
    blocking = [s for s in snaps if s.internal or s.status not in SNAPSHOT_DELETABLE]
    if snaps and (not cascade or blocking):
        session.rollback()
        why = (f"{len(blocking)} of them in use by a backup or busy" if blocking
               else "use cascade=true to delete them with the volume")
        raise VolumeStateConflict(
            f"Invalid volume: Volume {vid} still has {len(snaps)} dependent snapshot(s) ({why})."
        )
    snap_ids = [s.id for s in snaps + bases]
    if snap_ids:
        session.execute(
            update(Snapshot).where(Snapshot.id.in_(snap_ids))
            .values(status="deleting", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    session.commit()
    try:
        for sid in snap_ids:
            driver.delete_snapshot(sid)
        driver.delete(vid)
    except Exception:
        session.rollback()
        now = utcnow()
        if snap_ids:
            session.execute(
                update(Snapshot).where(Snapshot.id.in_(snap_ids))
                .values(status="error_deleting", updated_at=now)
                .execution_options(synchronize_session=False)
            )
        session.execute(
            update(Volume).where(Volume.id == vid)
            .values(status="error_deleting", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        raise
    session.execute(delete(Snapshot).where(Snapshot.volume_id == vid))
    session.execute(delete(Volume).where(Volume.id == vid))
    session.commit()


def transition_volume(
    session: Session, volume_id: str, expected: set[str] | frozenset[str], new: str
) -> bool:
    """Atomically move the volume to ``new`` if its status is in ``expected``.

    The backup/restore jobs use it to take and release a volume, e.g.
    ``transition_volume(s, vid, {"available", "in-use"}, "backing-up")`` then
    back to ``"available"``; ``{"available"} -> "restoring-backup"`` then
    ``"available"`` or ``"error_restoring"``. One ``UPDATE ... WHERE status
    IN (...)`` in the caller's unit of work: returns True if *this* call
    moved the row, False if the volume does not exist or was in another
    status (use :func:`get_volume` to tell which). When two callers race,
    the second waits for the first's commit and then re-checks, so exactly
    one wins. The caller commits; keep that unit of work short (on SQLite
    it holds the database write lock until the commit). Unknown statuses
    are a programming error (ValueError). No project check: callers pass
    ids they already resolved with :func:`get_volume`.
    """
    unknown = (set(expected) | {new}) - set(VOLUME_STATUSES)
    if unknown:
        raise ValueError(f"unknown volume status(es): {sorted(unknown)}")
    return compare_and_set(session, Volume, volume_id.lower(), expected, new)


def volume_path(driver: FileVolumeDriver, record: VolumeRecord) -> Path:
    """Where the engine reads or writes the volume's bytes: ``root/<id>.img``,
    or the operator's file/device for imports (driver VolumeNotFound if gone)."""
    return driver.path(record.id)


def recover_interrupted(session: Session) -> int:
    """After a crash: ``creating`` -> ``error``, ``deleting`` -> ``error_deleting``
    for volumes and snapshots; returns how many rows changed.

    Only safe when nothing else works on this database (embedded mode, at
    start, before workers run); ``error`` rows can then be deleted. Does not
    commit.
    """
    changed = 0
    for model in (Volume, Snapshot):
        for old, new in (("creating", "error"), ("deleting", "error_deleting")):
            result = session.execute(
                update(model).where(model.status == old)
                .values(status=new, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


def _mark(session: Session, model: type[Volume], ident: str, status: str) -> None:
    """Record a failure status in a fresh transaction and commit it."""
    session.rollback()
    session.execute(
        update(model).where(model.id == ident)
        .values(status=status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()

