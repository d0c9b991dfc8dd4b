"""The change-tracking base of a volume: the snapshot its last backup was read from.

After a successful backup read from an internal (reflink) snapshot, that
snapshot is kept as the volume's *base* (``volumes.cbt_base_snapshot_id``)
together with the backup taken from it (``cbt_base_backup_id``). The next
backup of the volume, whose parent is that backup, diffs its own new
snapshot against the base (:meth:`FileVolumeDriver.changed_ranges`) and
reads only what changed. Lifecycle:

==============================  ==============================================
event                           base
==============================  ==============================================
backup succeeded (internal      the new snapshot becomes the base, in the same
snapshot)                       transaction that makes the backup available;
                                the old base is deleted afterwards
backup succeeded (user          the old base is released (the next parent is
snapshot)                       the new backup, which has no base)
backup failed / cancelled       the old base stays; the new snapshot is dropped
guard mismatch                  no base (the old one is released, the new
                                snapshot dropped) and ``cbt_full_next`` is set:
                                the next backup is a full read (which clears it)
change tracking disabled        no diff, no new base; the old one is released
                                by the next successful backup
base backup deleted             the base is released
volume deleted                  the base is deleted with the volume
==============================  ==============================================

A base costs the blocks the volume has overwritten since that backup (the
filesystem keeps the old copies for the snapshot), see docs/operations.md.

Concurrency: create jobs hold the volume (one at a time per volume); the
backup delete job and volume deletion clear the columns with conditional
UPDATEs (``WHERE cbt_base_backup_id = :id``), so a create job that just
installed a newer base is never undone by them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_volumes import Snapshot, Volume
from vbs.db.session import Database
from vbs.engine.changed import ChangeSet
from vbs.service.volume_snapshots import delete_snapshot
from vbs.volumes import FileVolumeDriver, SnapshotHandle, SnapshotMethod
from vbs.volumes.errors import SnapshotNotFound

__all__ = ["BaseState", "adopt_base", "base_state", "plan_changes", "release_backup_base",
           "release_base_snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BaseState:
    """A volume's change-tracking columns as one consistent read."""

    snapshot_id: str | None
    backup_id: str | None
    full_next: bool


def base_state(db: Database, volume_id: str) -> BaseState:
    with db.session() as s:
        vol = s.get(Volume, volume_id)
        if vol is None:
            return BaseState(None, None, False)
        return BaseState(vol.cbt_base_snapshot_id, vol.cbt_base_backup_id,
                         bool(vol.cbt_full_next))


def _handle(s: Session, driver: FileVolumeDriver, snapshot_id: str) -> SnapshotHandle | None:
    row = s.get(Snapshot, snapshot_id)
    if row is None or row.status != "available" or row.method is None:
        return None
    try:
        path = driver.snapshot_path(snapshot_id)
    except SnapshotNotFound:
        return None
    method: SnapshotMethod = "reflink" if row.method == "reflink" else "copy"
    return SnapshotHandle(snapshot_id, path, path.stat().st_size, method)


def plan_changes(db: Database, driver: FileVolumeDriver, volume_id: str, parent_id: str | None,
                 new_snapshot_id: str) -> tuple[ChangeSet | None, str]:
    """The changed ranges of ``new_snapshot_id`` against the volume's base, or None.

    The second value says why there are none ("" when there are): no
    parent, a base of another backup, a forced full read, a copy snapshot.
    """
    state = base_state(db, volume_id)
    if parent_id is None:
        return None, "no parent backup"
    if state.full_next:
        return None, "the guard caught a mismatch last time: full read"
    if state.snapshot_id is None or state.backup_id != parent_id:
        return None, "no base snapshot for the parent backup"
    with db.session() as s:
        base = _handle(s, driver, state.snapshot_id)
        new = _handle(s, driver, new_snapshot_id)
    if base is None or new is None:
        return None, "base snapshot lost"
    ranges = driver.changed_ranges(base, new)
    if ranges is None:
        return None, "the filesystem cannot tell what changed (no reflink/FIEMAP)"
    return ChangeSet.build(ranges, "fiemap"), ""


def adopt_base(s: Session, volume_id: str, backup_id: str, snapshot_id: str | None,
               *, full_next: bool) -> str | None:
    """In the caller's transaction: make ``snapshot_id`` (None: nothing) the base of
    the volume for ``backup_id``. Returns the previous base snapshot to release."""
    vol = s.get(Volume, volume_id)
    if vol is None:
        return None
    old = vol.cbt_base_snapshot_id
    vol.cbt_base_snapshot_id = snapshot_id
    vol.cbt_base_backup_id = backup_id if snapshot_id is not None else None
    vol.cbt_full_next = full_next
    return old if old != snapshot_id else None


def release_base_snapshot(db: Database, driver: FileVolumeDriver, snapshot_id: str) -> None:
    """Delete a former base snapshot (row and file); failures only logged.

    A leftover is an internal snapshot no volume names as its base, which the
    next backup of the volume removes (``_discard_orphan_snapshots``).
    """
    with db.session() as s:
        row = s.get(Snapshot, snapshot_id)
        if row is None:
            return
        project_id = row.project_id
    try:
        with db.session() as s:
            delete_snapshot(s, driver, project_id, snapshot_id, include_internal=True)
    except Exception:  # noqa: BLE001 - see docstring
        log.warning("could not remove former base snapshot %s", snapshot_id, exc_info=True)


def release_backup_base(db: Database, driver: FileVolumeDriver, backup_id: str) -> None:
    """The backup ``backup_id`` is gone: release the base kept for it, if any."""
    with db.session() as s:
        snap_id = s.scalar(select(Volume.cbt_base_snapshot_id)
                           .where(Volume.cbt_base_backup_id == backup_id))
        if snap_id is None:
            return
        s.execute(
            update(Volume).where(Volume.cbt_base_backup_id == backup_id)
            .values(cbt_base_snapshot_id=None, cbt_base_backup_id=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    release_base_snapshot(db, driver, snap_id)
