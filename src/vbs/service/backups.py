"""Backup use cases: create, restore, delete, show, list, admin actions.

Each submitting use case runs in the caller's unit of work and either does
everything (status changes, backup row, job row) or nothing: the job is
enqueued in the same transaction, so a crash can never leave a backup
``creating`` without a job that will finish it (vbs-api §2.10). Volume
status changes are compare-and-set updates, so two requests racing for one
volume cannot both win: the loser gets the documented error.

Rules and their codes (vbs-api §2.11, §4, §10): create needs the volume
``available`` or ``in-use`` (0012), existing (0021), not busy (0013); restore
needs the backup ``available``/``error_restoring`` (0089) and the target
``available`` (0205; ``error`` 0202), large enough (0209), not busy (0206);
delete needs ``available``/``error``/``error_restoring``/``error_deleting``
(0105), no live export (0105, :mod:`vbs.service.exports`) and not an image
source (0113).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vbs.config import QuotaSettings
from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.models_volumes import Snapshot, Volume
from vbs.jobs import queue as jobs
from vbs.service import codes
from vbs.service.access import writable_backup
from vbs.service.backup_records import BackupRecord, Family, backup_record, refuse
from vbs.service.backup_rules import Tag
from vbs.service.exports import refuse_if_exported
from vbs.service.quotas import enforce_backup_quota
from vbs.service.shares import drop_backup_shares, has_shares, owner_for_reader
from vbs.service.volumes import transition_volume

__all__ = [
    "CREATE_JOB",
    "DELETABLE",
    "DELETE_JOB",
    "RESTORABLE",
    "RESTORE_JOB",
    "Submitted",
    "create_backup",
    "delete_backup",
    "get_backup",
    "latest_available",
    "restore_backup",
]

CREATE_JOB = "bksCreateBackup"
DELETE_JOB = "bksDeleteBackup"
RESTORE_JOB = "bksRestoreBackup"
BACKUPABLE_VOLUME = frozenset({"available", "in-use"})
RESTORABLE = frozenset({"available", "error_restoring"})
DELETABLE = frozenset({"available", "error", "error_restoring", "error_deleting"})
GIB = 1024**3


@dataclass(frozen=True)
class Submitted:
    """A backup record and the job that acts on it."""

    backup: BackupRecord
    job_id: str


def _volume(session: Session, project_id: str, volume_id: str) -> Volume | None:
    row = session.get(Volume, volume_id)
    if row is None or row.project_id != project_id:
        return None
    return row


def _busy_with_backup(session: Session, volume_id: str) -> bool:
    q = select(func.count()).select_from(Backup).where(
        Backup.volume_id == volume_id, Backup.status == "creating"
    )
    return bool(session.scalar(q))


def latest_available(session: Session, volume_id: str, *, exclude: str = "") -> Backup | None:
    """The newest available backup of a volume: the parent of the next one."""
    q = (
        select(Backup)
        .where(Backup.volume_id == volume_id, Backup.status == "available", Backup.id != exclude)
        .order_by(Backup.created_at.desc())
        .limit(1)
    )
    return session.scalars(q).first()


def create_backup(
    session: Session,
    *,
    family: Family,
    project_id: str,
    user_id: str | None,
    volume_id: str,
    name: str | None,
    description: str | None = None,
    snapshot_id: str | None = None,
    tags: Sequence[Tag] = (),
    metadata: Mapping[str, str] | None = None,
    container: str | None = None,
    availability_zone: str | None = None,
    full: bool = False,
    source: str = "vbs",
    policy_id: str | None = None,
    quota_defaults: QuotaSettings | None = None,
) -> Submitted:
    """Record a backup ``creating`` and enqueue the job that takes it.

    The project's quota is enforced here, after the row is flushed and under
    the project's quota lock (:mod:`vbs.service.quotas`), so every creation
    path gets it race-free. ``quota_defaults`` is ``settings.quotas``: the
    limits of projects the admin gave none (None: unlimited).
    """
    vol = _volume(session, project_id, volume_id)
    if vol is None:
        refuse(family, codes.VB_VOLUME_NOT_FOUND, f"Volume {volume_id} could not be found.")
    if snapshot_id is not None:
        snap = session.get(Snapshot, snapshot_id)
        if snap is None or snap.project_id != project_id or getattr(snap, "internal", False):
            refuse(family, codes.VB_VOLUME_NOT_FOUND, f"Snapshot {snapshot_id} could not be found.")
        if snap.volume_id != volume_id:
            refuse(family, codes.VB_MALFORMED_BODY,
                   f"Snapshot {snapshot_id} is not a snapshot of volume {volume_id}.")
        if snap.status != "available":
            refuse(family, codes.VB_VOLUME_STATUS_INVALID,
                   f"Snapshot {snapshot_id} is {snap.status}, it must be available.")
    previous = vol.status
    if _busy_with_backup(session, volume_id) or previous == "backing-up":
        refuse(family, codes.VB_VOLUME_BACKUP_IN_PROGRESS,
               f"Volume {volume_id} is already being backed up.")
    if previous not in BACKUPABLE_VOLUME:
        refuse(family, codes.VB_VOLUME_STATUS_INVALID,
               f"Volume {volume_id} is {previous}; it must be available or in-use.")
    if not transition_volume(session, volume_id, {previous}, "backing-up"):
        refuse(family, codes.VB_VOLUME_BACKUP_IN_PROGRESS,
               f"Volume {volume_id} changed status concurrently; try again.")
    parent = latest_available(session, volume_id)
    now = utcnow()
    backup_id = str(uuid.uuid4())
    row = Backup(
        id=backup_id,
        project_id=project_id,
        user_id=user_id,
        volume_id=volume_id,
        snapshot_id=snapshot_id,
        name=name,
        description=description,
        status="creating",
        size_gb=vol.size_gb,
        volume_size_bytes=vol.size_bytes,
        object_count=0,
        stored_bytes=0,
        container=container,
        availability_zone=availability_zone or getattr(vol, "availability_zone", None),
        is_incremental=parent is not None and not full,
        parent_id=parent.id if parent is not None else None,
        bootable=bool(getattr(vol, "bootable", False)),
        progress=0,
        source=source,
        policy_id=policy_id,
        image_source=False,
        meta=dict(metadata or {}),
        tags=[{"key": t.key, "value": t.value} for t in tags],
        created_at=now,
        updated_at=now,
        data_timestamp=now,
    )
    session.add(row)
    session.flush()
    enforce_backup_quota(session, family, project_id, quota_defaults, new_backup_gb=vol.size_gb)
    job = jobs.enqueue(
        session,
        project_id=project_id,
        job_type=CREATE_JOB,
        entities={
            "backup_id": backup_id,
            "volume_id": volume_id,
            "snapshot_id": snapshot_id or "",
            "bks_create_volume_name": name or "",
        },
        payload={"previous_volume_status": previous, "full": full},
        resource_key=f"volume:{volume_id}",
        progress_total=vol.size_bytes,  # the engine reads the whole volume
    )
    return Submitted(backup_record(row), job.id)


def _load(session: Session, family: Family, project_id: str, backup_id: str,
          missing: codes.ApiCode) -> Backup:
    row = session.get(Backup, backup_id)
    if row is None or row.project_id != project_id or row.status == "deleted":
        refuse(family, missing, f"Backup {backup_id} could not be found.")
    return row


def get_backup(session: Session, family: Family, project_id: str, backup_id: str) -> BackupRecord:
    """A backup the project owns, or one shared with it (docs/decisions.md)."""
    owner = owner_for_reader(session, backup_id, project_id)
    return backup_record(_load(session, family, owner, backup_id, codes.VB_BACKUP_NOT_FOUND))


def _set_backup_status(session: Session, backup_id: str, expected: frozenset[str],
                       new: str) -> bool:
    res = session.execute(
        update(Backup)
        .where(Backup.id == backup_id, Backup.status.in_(expected))
        .values(status=new, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(res, "rowcount", 0))


def restore_backup(
    session: Session,
    *,
    family: Family,
    project_id: str,
    backup_id: str,
    volume_id: str,
) -> Submitted:
    """Mark backup ``restoring`` and volume ``restoring-backup``; enqueue the job.

    A project the backup is shared with may restore it into its own volumes
    (docs/decisions.md); the job is the caller's, the data the owner's.
    """
    owner = owner_for_reader(session, backup_id, project_id)
    row = _load(session, family, owner, backup_id, codes.VB_RESTORE_TARGET_NOT_FOUND)
    if row.status not in RESTORABLE:
        refuse(family, codes.VB_RESTORE_BACKUP_NOT_AVAILABLE,
               f"Backup {backup_id} is {row.status}; it must be available.")
    vol = _volume(session, project_id, volume_id)
    if vol is None:
        refuse(family, codes.VB_RESTORE_VOLUME_NOT_FOUND, f"Volume {volume_id} could not be found.")
    if vol.status == "error":
        refuse(family, codes.VB_RESTORE_VOLUME_ERROR, f"Volume {volume_id} is in error.")
    if _busy_with_backup(session, volume_id) or vol.status == "backing-up":
        refuse(family, codes.VB_RESTORE_VOLUME_BACKUP_IN_PROGRESS,
               f"Volume {volume_id} is being backed up.")
    if vol.status != "available":
        refuse(family, codes.VB_RESTORE_VOLUME_NOT_AVAILABLE,
               f"Volume {volume_id} is {vol.status}; it must be available.")
    if vol.size_bytes < row.volume_size_bytes:
        refuse(family, codes.VB_RESTORE_VOLUME_TOO_SMALL,
               f"Volume {volume_id} ({vol.size_gb} GiB) is smaller than backup {backup_id} "
               f"({row.size_gb} GiB).")
    if not transition_volume(session, volume_id, {"available"}, "restoring-backup"):
        refuse(family, codes.VB_RESTORE_VOLUME_NOT_AVAILABLE,
               f"Volume {volume_id} changed status concurrently; try again.")
    if not _set_backup_status(session, backup_id, RESTORABLE, "restoring"):
        refuse(family, codes.VB_RESTORE_BACKUP_NOT_AVAILABLE,
               f"Backup {backup_id} changed status concurrently; try again.")
    job = jobs.enqueue(
        session,
        project_id=project_id,
        job_type=RESTORE_JOB,
        entities={"backup_id": backup_id, "volume_id": volume_id},
        payload={},
        resource_key=f"volume:{volume_id}",
        progress_total=row.volume_size_bytes,  # the engine writes the whole volume
    )
    session.refresh(row)
    return Submitted(backup_record(row), job.id)


def delete_backup(
    session: Session,
    *,
    family: Family,
    project_id: str,
    backup_id: str,
    force: bool = False,
) -> Submitted:
    """Mark the backup ``deleting`` and enqueue the job that removes it.

    ``force`` (admin force-delete, openstack-compat §5.8) also accepts
    ``creating`` and ``restoring``. A recipient of a share may not delete the
    backup (403); the owner's delete of a shared backup: see :func:`_drop_shares`.
    """
    row = writable_backup(session, family, project_id, backup_id, "delete")
    allowed = DELETABLE | ({"creating", "restoring", "deleting"} if force else frozenset())
    if row.status not in allowed:
        refuse(family, codes.VB_DELETE_INVALID,
               f"Backup {backup_id} is {row.status}; it cannot be deleted now.")
    if row.image_source:
        refuse(family, codes.VB_BACKUP_HAS_IMAGE, f"Backup {backup_id} is used by an image.")
    if not _set_backup_status(session, backup_id, frozenset(allowed), "deleting"):
        refuse(family, codes.VB_DELETE_INVALID,
               f"Backup {backup_id} changed status concurrently; try again.")
    refuse_if_exported(session, family, backup_id)
    _drop_shares(session, family, backup_id, force=force)
    job = jobs.enqueue(
        session,
        project_id=project_id,
        job_type=DELETE_JOB,
        entities={"backup_id": backup_id, "volume_id": row.volume_id},
        payload={"forced": force},
        resource_key=f"backup:{backup_id}",
        # A delete drops the manifest at once (space is freed later by GC):
        # its progress is the backup's size, done when the job ends.
        progress_total=row.volume_size_bytes,
    )
    session.refresh(row)
    return Submitted(backup_record(row), job.id)


def _drop_shares(session: Session, family: Family, backup_id: str, *, force: bool) -> None:
    """Shares of a backup being deleted (docs/decisions.md, owner's delete refused).

    The owner's delete is refused (``VolumeBackup.0105`` / ``badRequest``)
    while the backup is shared: recipients may restore it, so pulling it away
    must be an explicit cancel (``DELETE .../os-vendor-backup-sharing/{id}
    ?is_backup_id=true``) first. An admin's forced delete cancels the shares
    (vbs-api §2.11). Called after the ``deleting`` compare-and-set, which
    serialises with share creation (:mod:`vbs.service.shares`), so a share
    committed concurrently is seen here.
    """
    if not has_shares(session, backup_id):
        return
    if not force:
        refuse(family, codes.VB_DELETE_INVALID,
               f"Backup {backup_id} is shared with other projects; cancel its shares "
               f"first (DELETE /v2/{{project_id}}/os-vendor-backup-sharing/{backup_id}"
               f"?is_backup_id=true).")
    drop_backup_shares(session, backup_id)


def reset_status(session: Session, family: Family, project_id: str, backup_id: str,
                 status: str) -> bool:
    """Admin reset-status: set any status without side effects (Cinder semantics).

    Only on the caller's own backups: an admin of a project a backup is
    shared with gets 403 like any recipient (:func:`writable_backup`).
    """
    writable_backup(session, family, project_id, backup_id, "reset the status of")
    res = session.execute(
        update(Backup).where(Backup.id == backup_id, Backup.project_id == project_id)
        .values(status=status, updated_at=utcnow())
    )
    return bool(getattr(res, "rowcount", 0))
