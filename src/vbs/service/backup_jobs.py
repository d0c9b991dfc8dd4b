"""Job handlers for backup create, restore and delete, run by the job workers.

Each handler is written to be re-run: after a crash the queue resumes the
job under a new lease (``ctx.resumed``) and the handler continues from what
is durable, never from what it remembers:

* create: if the manifest root of the backup already exists in the
  repository, the data part is done and only the records are finalised;
  otherwise the backup is taken again (chunks already written are
  deduplicated, so a resumed run costs little). An internal snapshot made
  by an earlier attempt (its id is in the job checkpoint) is reused; any
  other internal snapshot of the volume (one whose copy was interrupted
  before its id was checkpointed) is removed, row and partial file. A run
  that finds the backup already finalised still drops its snapshot.
  Packs a killed run stored but had not indexed yet are adopted first
  (:func:`vbs.repository.adopt.adopt_unindexed_packs`), so their chunks are
  not uploaded again.
* restore: rewriting a volume is idempotent; it simply runs again.
* delete: removing a root that is already gone is fine; the row goes last.

Records move only after the repository is durable: a backup becomes
``available`` after its manifest root is stored (repository format §7).
A failure that is not transient marks the backup ``error`` (or
``error_restoring`` / ``error_deleting``), puts the volume back, and fails
the job with the VBS code of the step that failed. A transient failure
(storage answering 503, dropped connections) is left to the queue's retry
with backoff, except on the job's last attempt, where it is handled like a
permanent one: the job and the backup end with the storage error as reason,
never a backup stuck ``creating`` or shown ``available`` without its data.

Every manifest root carries the backup's record (``meta["vbs.record"]``,
JSON: name, description, tags, metadata, volume, source, times, ...) so
``vbs admin recover --from-repository`` can rebuild the row from the
repository alone (:mod:`vbs.service.recovery`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.models_identity import Project
from vbs.db.models_jobs import Job
from vbs.db.models_volumes import Snapshot, Volume
from vbs.db.session import Database
from vbs.engine.backup import backup as engine_backup
from vbs.engine.guard import GuardPolicy
from vbs.engine.restore import restore as engine_restore
from vbs.errors import BackupNotFound, Cancelled, ServiceError, VbsError
from vbs.jobs import JobContext, JobHandler
from vbs.repository.adopt import adopt_unindexed_packs
from vbs.repository.repo import Repository
from vbs.service import codes
from vbs.service.backups import CREATE_JOB, DELETE_JOB, RESTORE_JOB
from vbs.service.change_tracking import (
    adopt_base,
    plan_changes,
    release_backup_base,
    release_base_snapshot,
)
from vbs.service.recovery import RECORD_META
from vbs.service.volume_records import volume_record
from vbs.service.volume_snapshots import (
    create_snapshot,
    delete_snapshot,
    get_snapshot,
    snapshot_path,
)
from vbs.service.volumes import transition_volume, volume_path
from vbs.volumes import FileVolumeDriver, ImportedVolumeChanged
from vbs.volumes.layout import TEMP_PREFIX, snapshots_dir

__all__ = ["BackupRuntime", "handlers", "reconcile"]

log = logging.getLogger(__name__)

PolicyHook = Callable[..., Any]


@dataclass
class BackupRuntime:
    """What the handlers need, wired once by the composition root."""

    db: Database
    repository: Repository
    driver: FileVolumeDriver
    engine_workers: int = 4  # restore threads, as the engine's default (S3 restores)
    backup_workers: int | None = None
    """Threads of one backup; None: the engine's default (cores + 1)."""
    restore_processes: int = 1
    """Worker processes a restore decodes on (``jobs.restore_processes``), forked
    from a fork server: this process runs other jobs on other threads."""
    policy_hook: PolicyHook | None = None
    """``after_policy_backup(session, *, project_id, policy_id, volume_id, vbs_job_id,
    succeeded, now, code, message)`` from the scheduler, set when policies run."""
    task_started: Callable[..., Any] | None = None
    """``mark_task_running(session, *, vbs_job_id)`` from the scheduler."""
    on_deleted: Callable[[str], None] | None = None
    """Called with the project id after a backup's root was removed (GC trigger)."""
    adopt_min_age: float = 0.0
    """Seconds an unindexed pack must have existed before a resumed backup adopts it
    (the lease length: a younger pack may belong to another live backup)."""
    extra: dict[str, Any] = field(default_factory=dict)
    change_tracking: bool = True
    """Diff reflink snapshots against the volume's base and read only what changed."""
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    """How many unchanged chunks a changed-ranges backup verifies."""


def handlers(rt: BackupRuntime) -> dict[str, JobHandler]:
    return {
        CREATE_JOB: lambda ctx: _create(rt, ctx),
        RESTORE_JOB: lambda ctx: _restore(rt, ctx),
        DELETE_JOB: lambda ctx: _delete(rt, ctx),
    }


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, VbsError) else f"{type(exc).__name__}: {exc}"


def _retry_later(ctx: JobContext, exc: VbsError) -> bool:
    """A transient error while the queue still has an attempt to retry with."""
    return exc.transient and ctx.job.attempts < ctx.job.max_attempts


def _record_meta(row: Backup, project_name: str | None) -> str:
    doc = {
        "name": row.name, "description": row.description, "user_id": row.user_id,
        "volume_id": row.volume_id, "snapshot_id": row.snapshot_id,
        "size_gb": row.size_gb, "volume_size_bytes": row.volume_size_bytes,
        "container": row.container, "availability_zone": row.availability_zone,
        "is_incremental": row.is_incremental, "parent_id": row.parent_id,
        "bootable": row.bootable, "source": row.source, "policy_id": row.policy_id,
        "metadata": row.meta or {}, "tags": row.tags or [],
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "data_timestamp": row.data_timestamp.isoformat() if row.data_timestamp else None,
        "project_name": project_name,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


# --- create ---------------------------------------------------------------------------


def _create(rt: BackupRuntime, ctx: JobContext) -> dict[str, str] | None:
    job = ctx.job
    backup_id = job.entities["backup_id"]
    previous = str(job.payload.get("previous_volume_status", "available"))
    with rt.db.session() as s:
        row = s.get(Backup, backup_id)
        finished = row is None or row.status != "creating"
        if row is not None and not finished:
            project_id, volume_id = row.project_id, row.volume_id
            user_snapshot = row.snapshot_id
            name = row.name or ""
            policy_id = row.policy_id
            parent_id = row.parent_id
            project = s.get(Project, row.project_id)
            record = _record_meta(row, project.name if project is not None else None)
    if finished:
        # Force-deleted meanwhile, or finalised by an earlier run that died
        # before it dropped its internal snapshot: drop that snapshot now.
        _drop_internal_snapshot(rt, ctx, job.project_id)
        return None
    if policy_id and rt.task_started is not None:
        with rt.db.session() as s:
            rt.task_started(s, vbs_job_id=job.id)  # policy task WAITING -> RUNNING
    internal_snapshot: str | None = None
    full = bool(job.payload.get("full", False))
    guard_message: str | None = None
    try:
        store = rt.repository.project(project_id)
        try:
            root = store.load_manifest(backup_id)
            stats = dict(root.stats)
            tracking = root.meta.get("change_tracking", "none")
        except BackupNotFound:
            cold = False
            if user_snapshot:
                with rt.db.session() as s:
                    path = snapshot_path(rt.driver, get_snapshot(s, project_id, user_snapshot))
            else:
                internal_snapshot = _internal_snapshot(rt, ctx, project_id, volume_id)
                path = rt.driver.snapshot_path(internal_snapshot)
                with rt.db.session() as s:
                    made = get_snapshot(s, project_id, internal_snapshot, include_internal=True)
                # A fresh reflink clone has none of the volume's page cache:
                # read it around the cache (a fresh copy's pages are cached).
                cold = made.method == "reflink"
            if job.resumed:
                adopted = adopt_unindexed_packs(store, min_age_seconds=rt.adopt_min_age)
                if adopted.packs:
                    log.info("backup %s resumed: indexed %d packs (%d chunks) an earlier "
                             "run stored", backup_id, adopted.packs, adopted.chunks)
            if parent_id is not None:
                try:
                    store.load_manifest(parent_id)
                except BackupNotFound:
                    parent_id = None
            changes, why = None, "read from a user snapshot"
            if internal_snapshot is not None:
                why = "a full backup was asked for"
                if rt.change_tracking and not full:
                    changes, why = plan_changes(rt.db, rt.driver, volume_id, parent_id,
                                                internal_snapshot)
            if changes is None:
                log.info("backup %s of volume %s: full read (%s)", backup_id, volume_id, why)
            result = engine_backup(
                store, path, backup_id=backup_id, name=name, source_id=volume_id,
                parent_id=parent_id, meta={"volume_id": volume_id, RECORD_META: record},
                progress=ctx.progress, cancel=ctx.cancel, workers=rt.backup_workers,
                changes=changes, guard=rt.guard, cold_source=cold,
            )
            stats = result.stats.as_dict()
            tracking, guard_message = result.change_tracking, result.guard_message
    except Cancelled:
        raise  # the worker is stopping: the job is released and resumed later
    except VbsError as exc:
        if _retry_later(ctx, exc):
            raise
        _fail_create(rt, ctx, backup_id, volume_id, previous, internal_snapshot, policy_id, exc)
        raise ServiceError(_reason(exc), codes.VB_BACKUP_CREATE_FAILED.code, 500) from exc
    except Exception as exc:
        _fail_create(rt, ctx, backup_id, volume_id, previous, internal_snapshot, policy_id, exc)
        raise ServiceError(_reason(exc), codes.VB_BACKUP_CREATE_FAILED.code, 500) from exc
    # The engine's counters stay with the job (never shown to clients): the
    # service's metrics (vbs.api.metrics) sum them from the database.
    snap = internal_snapshot or (ctx.job.checkpoint or {}).get("internal_snapshot_id")
    ctx.checkpoint({**({"internal_snapshot_id": snap} if snap else {}), "stats": stats})
    with rt.db.session() as s:
        s.execute(
            update(Backup)
            .where(Backup.id == backup_id, Backup.status == "creating")
            .values(
                status="available",
                object_count=int(stats.get("chunks_total", 0)) - int(stats.get("chunks_zero", 0)),
                stored_bytes=int(stats.get("bytes_new_stored", 0)),
                progress=100,
                parent_id=parent_id,
                updated_at=utcnow(),
                change_tracking=tracking,
                bytes_read=int(stats.get("bytes_read", 0)),
                bytes_new=int(stats.get("bytes_new_plain", 0)),
                chunks_sampled=int(stats.get("chunks_sampled", 0)),
            )
            .execution_options(synchronize_session=False)
        )
        mismatch = bool(stats.get("guard_mismatch", 0))
        old_base = adopt_base(s, volume_id, backup_id,
                              None if mismatch or not rt.change_tracking
                              else _base_candidate(s, ctx, user_snapshot),
                              full_next=mismatch)
        transition_volume(s, volume_id, {"backing-up"}, previous)
        if policy_id and rt.policy_hook is not None:
            rt.policy_hook(s, project_id=project_id, policy_id=policy_id, volume_id=volume_id,
                           vbs_job_id=job.id, succeeded=True, now=utcnow())
    _drop_internal_snapshot(rt, ctx, project_id)
    if old_base is not None:
        release_base_snapshot(rt.db, rt.driver, old_base)
    out = {
        "backup_id": backup_id,
        "change_tracking": tracking,
        "bytes_read": str(int(stats.get("bytes_read", 0))),
        "bytes_new": str(int(stats.get("bytes_new_plain", 0))),
        "chunks_sampled": str(int(stats.get("chunks_sampled", 0))),
        "chunks_changed": str(int(stats.get("chunks_changed", 0))),
    }
    if stats.get("guard_mismatch", 0):
        out["guard"] = guard_message or "mismatch: the changed ranges were wrong; full read"
        log.warning("backup %s of volume %s: %s; the next backup reads everything",
                    backup_id, volume_id, out["guard"])
    return out


def _base_candidate(s: Any, ctx: JobContext, user_snapshot: str | None) -> str | None:
    """The internal reflink snapshot this job read, which becomes the volume's base."""
    if user_snapshot:
        return None
    row = s.get(Job, ctx.job.id)
    snap_id = (row.checkpoint or {}).get("internal_snapshot_id") if row else None
    if not snap_id:
        return None
    snap = s.get(Snapshot, str(snap_id))
    if snap is None or snap.method != "reflink" or snap.status != "available":
        return None  # a copy as base would cost a whole volume of space for nothing
    return str(snap.id)


def _internal_snapshot(rt: BackupRuntime, ctx: JobContext, project_id: str,
                       volume_id: str) -> str:
    """The snapshot this job reads: reused from the checkpoint on a resumed run."""
    known = (ctx.job.checkpoint or {}).get("internal_snapshot_id")
    reuse: str | None = None
    if known:
        with rt.db.session() as s, contextlib.suppress(ServiceError):
            snap = get_snapshot(s, project_id, str(known), include_internal=True)
            if snap.status == "available":
                reuse = snap.id
    _discard_orphan_snapshots(rt, project_id, volume_id, keep=reuse)
    if reuse is not None:
        return reuse
    with rt.db.session() as s:
        made = create_snapshot(s, rt.driver, project_id, volume_id, name="vbs-backup",
                               internal=True)
    ctx.checkpoint({"internal_snapshot_id": made.id})
    return made.id


def _discard_orphan_snapshots(rt: BackupRuntime, project_id: str, volume_id: str,
                              keep: str | None) -> None:
    """Remove the volume's internal snapshots other than ``keep``, rows and files.

    Only create jobs make internal snapshots, and this job holds the volume
    (its resource key admits one running job per volume), so any other one
    was left by an earlier run that died: a kill during the copy leaves a
    ``creating`` row, whose id never reached the checkpoint, and a partial
    ``.tmp-<id>-*`` file; a kill during a delete leaves ``deleting``. Left
    alone they would hold disk space and block deleting the volume forever.
    """
    with rt.db.session() as s:
        ids = list(s.scalars(
            select(Snapshot.id).where(Snapshot.volume_id == volume_id,
                                      Snapshot.internal.is_(True))
        ).all())
        base = s.scalar(select(Volume.cbt_base_snapshot_id).where(Volume.id == volume_id))
        ids = [i for i in ids if i not in (keep, base)]
        if ids:
            s.execute(
                update(Snapshot)
                .where(Snapshot.id.in_(ids), Snapshot.status.in_(("creating", "deleting")))
                .values(status="error", updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    for snap_id in ids:
        log.info("removing internal snapshot %s left by an interrupted backup", snap_id)
        for tmp in snapshots_dir(rt.driver.root).glob(f"{TEMP_PREFIX}{snap_id}-*"):
            tmp.unlink(missing_ok=True)
        with rt.db.session() as s:
            delete_snapshot(s, rt.driver, project_id, snap_id, include_internal=True)


def _drop_internal_snapshot(rt: BackupRuntime, ctx: JobContext, project_id: str) -> None:
    snap_id = (ctx.job.checkpoint or {}).get("internal_snapshot_id")
    with rt.db.session() as s:
        # The checkpoint written by this run is not in ctx.job: look it up.
        row = s.get(Job, ctx.job.id)
        snap_id = (row.checkpoint or {}).get("internal_snapshot_id") if row else snap_id
    if not snap_id:
        return
    with rt.db.session() as s:
        if s.scalar(select(Volume.id).where(Volume.cbt_base_snapshot_id == str(snap_id))):
            return  # kept as the volume's change-tracking base
    try:
        with rt.db.session() as s:
            delete_snapshot(s, rt.driver, project_id, str(snap_id), include_internal=True)
    except Exception:  # noqa: BLE001 - a leftover snapshot is cleaned up by reconcile
        log.warning("could not remove internal snapshot %s", snap_id, exc_info=True)


def _fail_create(rt: BackupRuntime, ctx: JobContext, backup_id: str, volume_id: str,
                 previous: str, internal_snapshot: str | None, policy_id: str | None,
                 exc: BaseException) -> None:
    with rt.db.session() as s:
        s.execute(
            update(Backup)
            .where(Backup.id == backup_id, Backup.status == "creating")
            .values(status="error", fail_reason=_reason(exc)[:1024], updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        # a swapped imported volume is not the volume any more: error, not back to use
        swapped = ImportedVolumeChanged in (type(exc), type(exc.__cause__))
        after = "error" if swapped else previous
        transition_volume(s, volume_id, {"backing-up"}, after)
        if policy_id and rt.policy_hook is not None:
            row = s.get(Backup, backup_id)
            rt.policy_hook(s, project_id=row.project_id if row else "", policy_id=policy_id,
                           volume_id=volume_id, vbs_job_id=ctx.job.id, succeeded=False,
                           now=utcnow(), code=codes.VB_BACKUP_CREATE_FAILED.code,
                           message=_reason(exc)[:255])
    with rt.db.session() as s:
        row = s.get(Backup, backup_id)
        project_id = row.project_id if row else ""
    if project_id:
        _drop_internal_snapshot(rt, ctx, project_id)


# --- restore --------------------------------------------------------------------------


def _restore(rt: BackupRuntime, ctx: JobContext) -> dict[str, str] | None:
    backup_id = ctx.job.entities["backup_id"]
    volume_id = ctx.job.entities["volume_id"]
    with rt.db.session() as s:
        row = s.get(Backup, backup_id)
        vol = s.get(Volume, volume_id)
        if row is None or vol is None or row.status != "restoring":
            return None
        project_id = row.project_id
        imported = bool(vol.imported)
        target: Path = volume_path(rt.driver, volume_record(vol))
    try:
        store = rt.repository.project(project_id)
        if imported:  # verified open: never write through a swapped path (issue 8)
            fd = rt.driver.open_volume(volume_id, os.O_WRONLY)
            try:
                engine_restore(store, backup_id, fd, progress=ctx.progress, cancel=ctx.cancel,
                               workers=rt.engine_workers, processes=rt.restore_processes,
                               start_method="forkserver")
            finally:
                os.close(fd)
        else:
            engine_restore(store, backup_id, target, progress=ctx.progress,
                           cancel=ctx.cancel, workers=rt.engine_workers,
                           processes=rt.restore_processes, start_method="forkserver")
    except Cancelled:
        raise
    except Exception as exc:
        if isinstance(exc, VbsError) and _retry_later(ctx, exc):
            raise
        with rt.db.session() as s:
            if isinstance(exc, ImportedVolumeChanged):  # the backup is fine; the volume not
                _set(s, backup_id, "restoring", "available", None)
                transition_volume(s, volume_id, {"restoring-backup"}, "error")
            else:
                _set(s, backup_id, "restoring", "error_restoring", _reason(exc))
                transition_volume(s, volume_id, {"restoring-backup"}, "error_restoring")
        raise ServiceError(_reason(exc), codes.VB_RESTORE_WRITE_FAILED.code, 500) from exc
    with rt.db.session() as s:
        _set(s, backup_id, "restoring", "available", None)
        transition_volume(s, volume_id, {"restoring-backup"}, "available")
    return {"backup_id": backup_id, "volume_id": volume_id}


def _set(s: Any, backup_id: str, expected: str, new: str, reason: str | None) -> None:
    values: dict[str, Any] = {"status": new, "updated_at": utcnow()}
    if reason is not None:
        values["fail_reason"] = reason[:1024]
    s.execute(
        update(Backup).where(Backup.id == backup_id, Backup.status == expected).values(**values)
        .execution_options(synchronize_session=False)
    )


# --- delete ---------------------------------------------------------------------------


def _delete(rt: BackupRuntime, ctx: JobContext) -> dict[str, str] | None:
    backup_id = ctx.job.entities["backup_id"]
    with rt.db.session() as s:
        row = s.get(Backup, backup_id)
        if row is None:
            return None
        project_id = row.project_id
    store = rt.repository.project(project_id)
    try:
        with contextlib.suppress(BackupNotFound):
            store.delete_manifest(backup_id)
    except Exception as exc:
        if isinstance(exc, VbsError) and exc.transient:
            raise
        with rt.db.session() as s:
            _set(s, backup_id, "deleting", "error_deleting", _reason(exc))
        raise ServiceError(_reason(exc), codes.VB_DELETE_FAILED.code, 500) from exc
    with rt.db.session() as s:
        s.execute(delete(Backup).where(Backup.id == backup_id))
    release_backup_base(rt.db, rt.driver, backup_id)
    if rt.on_deleted is not None:
        rt.on_deleted(project_id)
    return {"backup_id": backup_id}


# --- reconciliation -------------------------------------------------------------------


_FAILED_STATE = {"creating": "error", "restoring": "error_restoring", "deleting": "error_deleting"}
_JOB_FOR = {"creating": CREATE_JOB, "restoring": RESTORE_JOB, "deleting": DELETE_JOB}


def reconcile(db: Database, *, now: dt.datetime | None = None) -> int:
    """Backups left in a transitional status by a job that ended FAIL without
    its handler running to the end (e.g. the queue gave up after workers were
    lost) get their error status; their volumes are put back. Returns how
    many were fixed. Never touches a backup whose job is INIT or RUNNING."""
    fixed = 0
    with db.session() as s:
        rows = s.scalars(
            select(Backup).where(Backup.status.in_(tuple(_FAILED_STATE)))
        ).all()
        for row in rows:
            jobs = [
                j for j in s.scalars(
                    select(Job).where(Job.job_type == _JOB_FOR[row.status])
                    .order_by(Job.created_at.desc()).limit(50)
                ).all()
                if (j.entities or {}).get("backup_id") == row.id
            ]
            if not jobs or jobs[0].status not in ("FAIL", "SUCCESS"):
                continue
            reason = jobs[0].fail_reason or "the job ended without finishing the backup"
            _set(s, row.id, row.status, _FAILED_STATE[row.status], reason)
            if row.status == "creating":
                prev = str((jobs[0].payload or {}).get("previous_volume_status", "available"))
                transition_volume(s, row.volume_id, {"backing-up"}, prev)
            elif row.status == "restoring":
                target = (jobs[0].entities or {}).get("volume_id", "")
                transition_volume(s, target, {"restoring-backup"}, "error_restoring")
            fixed += 1
    return fixed
