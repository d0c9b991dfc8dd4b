"""Domain types of the job queue: statuses, job types and :class:`JobRecord`."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vbs.db.models_jobs import Job
from vbs.jobs.errors import InvalidJob

__all__ = ["JobRecord", "JobStatus", "JobType", "canonical_job_id", "check_entities"]


class JobStatus(StrEnum):
    """§2.10 lifecycle: INIT -> RUNNING -> SUCCESS | FAIL (INIT -> FAIL on rejection)."""

    INIT = "INIT"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"


class JobType(StrEnum):
    """Job types of the VBS API (§2.10); the queue accepts any string."""

    CREATE_BACKUP = "bksCreateBackup"
    DELETE_BACKUP = "bksDeleteBackup"
    RESTORE_BACKUP = "bksRestoreBackup"


def canonical_job_id(value: str) -> str | None:
    """The canonical lowercase UUID form of ``value``, or None if it is not a UUID.

    API paths carry arbitrary strings; anything that is not a UUID simply
    names no job.
    """
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


@dataclass(frozen=True)
class JobRecord:
    """A snapshot of one ``jobs`` row.

    ``entities`` is the client-visible result map (§2.10); ``payload`` holds
    the handler's private parameters and ``checkpoint`` its last safe point:
    neither is ever rendered to clients. ``resumed`` is true when the current
    (or last) run took over a RUNNING job whose lease had expired.
    """

    id: str
    project_id: str
    job_type: str
    status: JobStatus
    entities: dict[str, str]
    payload: dict[str, Any]
    checkpoint: dict[str, Any] | None
    resource_key: str | None
    progress_done: int
    progress_total: int
    attempts: int
    max_attempts: int
    lease_losses: int
    resumed: bool
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    run_after: dt.datetime | None
    error_code: str | None
    fail_reason: str | None
    created_at: dt.datetime
    begin_time: dt.datetime | None
    end_time: dt.datetime | None
    updated_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCESS, JobStatus.FAIL)

    @classmethod
    def from_row(cls, row: Job) -> JobRecord:
        return cls(
            id=row.id,
            project_id=row.project_id,
            job_type=row.job_type,
            status=JobStatus(row.status),
            entities=dict(row.entities or {}),
            payload=dict(row.payload or {}),
            checkpoint=dict(row.checkpoint) if row.checkpoint is not None else None,
            resource_key=row.resource_key,
            progress_done=row.progress_done,
            progress_total=row.progress_total,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            lease_losses=row.lease_losses,
            resumed=bool(row.resumed),
            lease_owner=row.lease_owner,
            lease_expires_at=row.lease_expires_at,
            run_after=row.run_after,
            error_code=row.error_code,
            fail_reason=row.fail_reason,
            created_at=row.created_at,
            begin_time=row.begin_time,
            end_time=row.end_time,
            updated_at=row.updated_at,
        )


def check_entities(entities: Any) -> dict[str, str]:
    """Entities are a flat string->string map (§2.10); anything else is refused."""
    if not isinstance(entities, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in entities.items()
    ):
        raise InvalidJob("job entities must be a mapping of strings to strings")
    return dict(entities)
