"""The ``jobs`` table: the durable job queue (see :mod:`vbs.jobs`).

Created by the ``jobs`` migration branch (root revision ``jobs_0001``, which
depends on ``identity_0001`` for ``projects.id``). The table *is* the queue:
workers claim rows with a lease, so there is no broker to lose messages and a
job is visible to the API the instant it is enqueued, in the same transaction
as the resource it acts on.

Only :mod:`vbs.jobs.queue` writes this table; everybody else reads
:class:`vbs.jobs.JobRecord` values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["JOB_STATUSES", "Job"]

JOB_STATUSES = ("INIT", "RUNNING", "SUCCESS", "FAIL")


class Job(Base):
    """One asynchronous operation (create/delete/restore backup, ...).

    ``entities`` is shown to clients; ``payload`` and ``checkpoint`` never are.
    ``lease_owner``/``lease_expires_at`` say which worker runs a RUNNING job
    and until when; a RUNNING job whose lease expired is resumed by the next
    claim (``resumed`` true), it is never reset to INIT.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('INIT', 'RUNNING', 'SUCCESS', 'FAIL')", name="status"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_resource_key_status", "resource_key", "status"),
        Index("ix_jobs_project_id_created_at", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """Canonical lowercase UUID string."""
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    job_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="INIT")
    entities: Mapped[dict[str, str]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    resource_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_losses: Mapped[int] = mapped_column(Integer, default=0)
    """How many times a worker lost this job (lease expired, job taken over)."""
    resumed: Mapped[bool] = mapped_column(Boolean, default=False)
    """True when the current run took over a RUNNING job whose lease expired."""
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    run_after: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Not-before time of an INIT job (retry backoff); NULL = at once."""
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fail_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    begin_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    end_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
