"""The job queue operations on the ``jobs`` table.

Every function takes the database (or, for reads and :func:`enqueue`, a
session) explicitly and an optional ``now`` (an aware UTC datetime) so tests
and workers can inject a clock. ``worker_id`` is the *lease owner id*: it must
be unique per claim (``Worker`` derives a fresh one for every claim), so two
runs of one job can never both pass as the owner.

Ownership: a claim makes the caller the owner of a RUNNING job until it
finishes it (complete/fail/release) or until another claim takes the job over
after the lease expired. An owner whose lease expired but was not taken over
yet may still renew it; the database decides who won, never the clock alone.

How claims stay correct under concurrency (SKIP LOCKED and advisory locks on
PostgreSQL, BEGIN IMMEDIATE and conditional UPDATEs on SQLite) is tabled in
the :mod:`vbs.jobs` docstring.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from vbs.db.models_jobs import Job
from vbs.db.session import Database
from vbs.jobs import _wake
from vbs.jobs._tx import now_utc as _now
from vbs.jobs._tx import resource_lock_key as _resource_lock_key
from vbs.jobs._tx import write_session as _write_session
from vbs.jobs.errors import WORKER_LOST, InvalidJob
from vbs.jobs.reads import expired_running, get, list_jobs
from vbs.jobs.records import JobRecord, JobStatus, canonical_job_id, check_entities

__all__ = [
    "claim",
    "complete",
    "enqueue",
    "expired_running",
    "fail",
    "get",
    "heartbeat",
    "list_jobs",
    "purge_finished",
    "release",
]

_RUNNING = JobStatus.RUNNING.value
_INIT = JobStatus.INIT.value
_MAX_CANDIDATES = 64
"""Candidates one claim examines before giving up (rows blocked by their resource)."""


def enqueue(
    session: Session,
    *,
    project_id: str,
    job_type: str,
    entities: Mapping[str, str],
    payload: Mapping[str, Any],
    resource_key: str | None = None,
    max_attempts: int = 3,
    job_id: str | None = None,
    now: dt.datetime | None = None,
    progress_total: int = 0,
) -> JobRecord:
    """Add an INIT job in the caller's transaction and return it.

    ``progress_total`` is the expected amount of work (bytes) when known, so
    clients show a full progress bar before the worker first reports.

    Nothing is committed here: the caller creates e.g. the backup row and its
    job in one transaction, so a job never exists without its resource or
    vice versa. ``payload`` must be JSON-serialisable.
    """
    if max_attempts < 1:
        raise InvalidJob("max_attempts must be at least 1")
    if not job_type:
        raise InvalidJob("job_type must not be empty")
    if job_id is None:
        job_id = str(uuid.uuid4())
    canonical = canonical_job_id(job_id)
    if canonical is None:
        raise InvalidJob(f"job id {job_id!r} is not a UUID")
    stamp = _now(now)
    row = Job(
        id=canonical,
        project_id=project_id,
        job_type=job_type,
        status=_INIT,
        entities=check_entities(dict(entities)),
        payload=dict(payload),
        checkpoint=None,
        resource_key=resource_key,
        progress_done=0,
        progress_total=max(0, int(progress_total)),
        attempts=0,
        max_attempts=max_attempts,
        lease_losses=0,
        resumed=False,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(row)
    session.flush()
    _wake.notify_on_commit(session)
    return JobRecord.from_row(row)


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        and_(Job.status == _INIT, or_(Job.run_after.is_(None), Job.run_after <= now)),
        and_(
            Job.status == _RUNNING,
            Job.lease_expires_at < now,
            Job.attempts < Job.max_attempts,
        ),
    )


def _fail_exhausted(session: Session, now: dt.datetime) -> None:
    """End RUNNING jobs whose lease expired and that have no attempt left.

    Runs at every claim, for every job type, so a crash-looping job ends FAIL
    with a reason instead of staying RUNNING forever.
    """
    stmt = (
        select(Job)
        .where(
            Job.status == _RUNNING,
            Job.lease_expires_at < now,
            Job.attempts >= Job.max_attempts,
        )
        .limit(_MAX_CANDIDATES)
        .with_for_update(skip_locked=True)
    )
    for row in session.execute(stmt).scalars():
        losses = row.lease_losses + (1 if row.lease_owner is not None else 0)
        row.status = JobStatus.FAIL.value
        row.lease_losses = losses
        row.error_code = WORKER_LOST
        row.fail_reason = (
            f"worker lost {losses} times (attempt {row.attempts} of "
            f"{row.max_attempts}); giving up"
        )
        row.lease_expires_at = None
        row.end_time = now
        row.updated_at = now
    session.flush()


def _resource_busy(session: Session, db: Database, job_id: str, resource_key: str) -> bool:
    """True when another job on ``resource_key`` is RUNNING (live or expired lease).

    An expired RUNNING job still blocks its resource: it is resumed first, so
    a new job never starts on a volume that a crashed run left half-done.
    """
    if not db.is_sqlite:
        got = session.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"),
            {"key": _resource_lock_key(resource_key)},
        ).scalar_one()
        if not got:
            return True
    other = session.execute(
        select(Job.id)
        .where(Job.resource_key == resource_key, Job.status == _RUNNING, Job.id != job_id)
        .limit(1)
    ).first()
    return other is not None


def claim(
    db: Database,
    worker_id: str,
    *,
    lease_seconds: float,
    types: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> JobRecord | None:
    """Take the oldest claimable job and make ``worker_id`` its lease owner.

    Claimable: INIT and past its ``run_after``, or RUNNING with an expired
    lease and attempts left (a *resume*: ``resumed`` becomes true and
    ``lease_losses`` grows when the lease had an owner). Jobs whose resource
    has another RUNNING job are skipped. The claimed job is RUNNING, with
    ``attempts`` + 1 and ``begin_time`` set on the first claim. Returns None
    when nothing is claimable.
    """
    stamp = _now(now)
    expires = stamp + dt.timedelta(seconds=lease_seconds)
    type_list = list(types) if types is not None else None
    with _write_session(db) as session:
        _fail_exhausted(session, stamp)
        tried: list[str] = []
        for _ in range(_MAX_CANDIDATES):
            stmt = select(Job.id, Job.resource_key).where(_claimable(stamp))
            if type_list is not None:
                stmt = stmt.where(Job.job_type.in_(type_list))
            if tried:
                stmt = stmt.where(Job.id.not_in(tried))
            stmt = stmt.order_by(Job.created_at, Job.id).limit(1)
            if not db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            candidate = session.execute(stmt).first()
            if candidate is None:
                return None
            job_id, resource_key = candidate
            tried.append(job_id)
            if resource_key is not None and _resource_busy(session, db, job_id, resource_key):
                continue
            taking_over = and_(Job.status == _RUNNING, Job.lease_owner.is_not(None))
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, _claimable(stamp))
                .values(
                    resumed=case((Job.status == _RUNNING, True), else_=False),
                    lease_losses=Job.lease_losses + case((taking_over, 1), else_=0),
                    status=_RUNNING,
                    lease_owner=worker_id,
                    lease_expires_at=expires,
                    attempts=Job.attempts + 1,
                    begin_time=func.coalesce(Job.begin_time, stamp),
                    run_after=None,
                    updated_at=stamp,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            row = session.execute(
                select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
            ).scalar_one()
            return JobRecord.from_row(row)
        return None


def heartbeat(
    db: Database,
    job_id: str,
    worker_id: str,
    *,
    lease_seconds: float,
    progress: tuple[int, int] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Extend the lease (and store progress / checkpoint) if ``worker_id`` still owns it.

    False means the job was taken over or finished: the caller must stop
    working on it at once; nothing it sends is stored.
    """
    stamp = _now(now)
    values: dict[str, Any] = {
        "lease_expires_at": stamp + dt.timedelta(seconds=lease_seconds),
        "updated_at": stamp,
    }
    if progress is not None:
        done, total = progress
        values["progress_done"] = int(done)
        values["progress_total"] = int(total)
    if checkpoint is not None:
        values["checkpoint"] = dict(checkpoint)
    with _write_session(db) as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == _RUNNING, Job.lease_owner == worker_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _owned(session: Session, job_id: str, worker_id: str) -> Job | None:
    return session.execute(
        select(Job)
        .where(Job.id == job_id, Job.status == _RUNNING, Job.lease_owner == worker_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def complete(
    db: Database,
    job_id: str,
    worker_id: str,
    *,
    entities_update: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Finish an owned job as SUCCESS, merging ``entities_update`` into its entities.

    False (and no change) when ``worker_id`` does not own the job any more.
    """
    stamp = _now(now)
    extra = check_entities(dict(entities_update or {}))
    with _write_session(db) as session:
        row = _owned(session, job_id, worker_id)
        if row is None:
            return False
        row.entities = {**(row.entities or {}), **extra}
        row.status = JobStatus.SUCCESS.value
        row.lease_expires_at = None
        row.end_time = stamp
        row.updated_at = stamp
        return True


def fail(
    db: Database,
    job_id: str,
    worker_id: str,
    *,
    error_code: str,
    reason: str,
    retry: bool = False,
    retry_after: float = 0.0,
    now: dt.datetime | None = None,
) -> bool:
    """End an owned job as FAIL, or with ``retry`` put it back to INIT.

    A retry is granted while ``attempts < max_attempts``; the job becomes INIT
    with ``run_after = now + retry_after`` (backoff), keeps its checkpoint and
    begin_time. Otherwise the job ends FAIL with ``error_code`` and ``reason``
    (noting the exhausted attempts when a retry was asked for). False (and no
    change) when ``worker_id`` does not own the job any more.
    """
    stamp = _now(now)
    with _write_session(db) as session:
        row = _owned(session, job_id, worker_id)
        if row is None:
            return False
        row.updated_at = stamp
        row.lease_expires_at = None
        if retry and row.attempts < row.max_attempts:
            row.status = _INIT
            row.lease_owner = None
            row.resumed = False
            row.run_after = stamp + dt.timedelta(seconds=max(0.0, retry_after))
            return True
        if retry:
            reason = f"{reason} (gave up after {row.attempts} attempts)"
        row.status = JobStatus.FAIL.value
        row.error_code = error_code
        row.fail_reason = reason
        row.end_time = stamp
        return True


def release(
    db: Database, job_id: str, worker_id: str, *, now: dt.datetime | None = None
) -> bool:
    """Give an owned job back after a graceful stop, for another worker to resume.

    The job stays RUNNING (it is never reset: its resource may be half-done)
    with an already expired lease and no owner, so the next claim resumes it
    with ``resumed`` true. The interrupted run does not count as an attempt
    (``attempts`` - 1) and not as a lost lease.
    """
    stamp = _now(now)
    with _write_session(db) as session:
        row = _owned(session, job_id, worker_id)
        if row is None:
            return False
        row.lease_owner = None
        row.lease_expires_at = stamp - dt.timedelta(microseconds=1)
        row.attempts = max(0, row.attempts - 1)
        row.updated_at = stamp
        return True


def purge_finished(
    db: Database, older_than: dt.timedelta, *, now: dt.datetime | None = None
) -> int:
    """Delete SUCCESS/FAIL jobs that ended more than ``older_than`` ago; returns the count.

    §2.10 keeps jobs at least 30 days; the caller passes the configured age.
    """
    cutoff = _now(now) - older_than
    with _write_session(db) as session:
        result = session.execute(
            delete(Job)
            .where(
                Job.status.in_([JobStatus.SUCCESS.value, JobStatus.FAIL.value]),
                Job.end_time < cutoff,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
