"""Read-only queries of the job queue (re-exported by :mod:`vbs.jobs.queue`).

Reads take the caller's session, so the API can read a job in the same unit
of work as the resources it renders.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from vbs.db.models_jobs import Job
from vbs.jobs._tx import now_utc
from vbs.jobs.errors import InvalidJob
from vbs.jobs.records import JobRecord, JobStatus, canonical_job_id

__all__ = ["expired_running", "get", "list_jobs"]


def get(session: Session, job_id: str, project_id: str | None = None) -> JobRecord | None:
    """The job, or None if the id is unknown, not a UUID, or (with ``project_id``) foreign."""
    canonical = canonical_job_id(job_id)
    if canonical is None:
        return None
    row = session.execute(
        select(Job).where(Job.id == canonical).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None or (project_id is not None and row.project_id != project_id):
        return None
    return JobRecord.from_row(row)


def list_jobs(
    session: Session,
    *,
    project_id: str | None = None,
    statuses: Iterable[str] | None = None,
    job_type: str | None = None,
    resource_key: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[JobRecord]:
    """Jobs matching every given filter, newest first (admin and debugging)."""
    if limit < 1 or offset < 0:
        raise InvalidJob("limit must be positive and offset non-negative")
    stmt = select(Job)
    if project_id is not None:
        stmt = stmt.where(Job.project_id == project_id)
    if statuses is not None:
        stmt = stmt.where(Job.status.in_([JobStatus(s).value for s in statuses]))
    if job_type is not None:
        stmt = stmt.where(Job.job_type == job_type)
    if resource_key is not None:
        stmt = stmt.where(Job.resource_key == resource_key)
    stmt = stmt.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    rows = session.execute(stmt.execution_options(populate_existing=True)).scalars()
    return [JobRecord.from_row(row) for row in rows]


def expired_running(session: Session, *, now: dt.datetime | None = None) -> list[JobRecord]:
    """RUNNING jobs whose lease has expired (to be resumed, or failed if exhausted)."""
    stamp = now_utc(now)
    rows = session.execute(
        select(Job)
        .where(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < stamp)
        .order_by(Job.created_at, Job.id)
    ).scalars()
    return [JobRecord.from_row(row) for row in rows]
