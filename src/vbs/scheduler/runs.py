"""One run of a policy: a task per associated disk, each submitted through the port.

Used by the scheduler for each slot and by "run now" (vbs-api §7.8). A run
creates one :class:`PolicyTask` per disk associated with the policy
(vbs-api §2.14): the port queues a ``bksCreateBackup`` job for a backup named
``autobk_`` + 4 lowercase hex characters, and the task starts ``WAITING``
with the job and backup ids. When the port refuses, the task records why
instead of failing the run:

==========================================  =============  ==================
port raised (``ServiceError.api_code``)     task status    task ``code``
==========================================  =============  ==================
``VolumeBackup.0013`` (disk busy)           SKIP           VolumeBackup.0013
``VolumeBackup.0080``/``0081``/``0040``     EXECUTE_FAIL   AutoBackup.0218
``VolumeBackup.0084`` (snapshot quota)      EXECUTE_FAIL   AutoBackup.0217
anything else (disk gone, bad status, ...)  EXECUTE_FAIL   the port's code
an unexpected exception (logged)            EXECUTE_FAIL   AutoBackup.1700
==========================================  =============  ==================

Each submission runs in a SAVEPOINT, so a port failing half-way leaves
nothing behind. Callers must have written in the transaction before
calling :func:`run_policy` (the scheduler's claim UPDATE, run-now's touch of
the policy row): pysqlite only emits ``BEGIN`` before a write, and a
SAVEPOINT outside a transaction would commit on release.

Codes are plain strings here because the scheduler sits below the service
layer; a unit test checks them against ``vbs.service.codes``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from vbs.db.models_policies import PolicyResource, PolicyTag, PolicyTask
from vbs.errors import ServiceError
from vbs.scheduler.ports import BackupPort

__all__ = [
    "ACTIVE_TASK_STATUSES",
    "CODE_BACKUP_QUOTA",
    "CODE_EXECUTE_FAILED",
    "CODE_SNAPSHOT_QUOTA",
    "TASK_STATUSES",
    "PolicyRef",
    "backup_name",
    "expire_tasks",
    "finish_task",
    "mark_task_running",
    "policy_tags",
    "record_missed_slots",
    "run_policy",
]

log = logging.getLogger(__name__)

TASK_STATUSES = ("RUNNING", "EXECUTE_TIMEOUT", "WAITING", "EXECUTE_FAIL", "EXECUTE_SUCCESS",
                 "SKIP")
"""Task statuses of vbs-api §7.9."""
ACTIVE_TASK_STATUSES = ("WAITING", "RUNNING")
"""A policy with tasks in these statuses is "executing" (``AutoBackup.0225``)."""

CODE_BACKUP_QUOTA = "AutoBackup.0218"
CODE_SNAPSHOT_QUOTA = "AutoBackup.0217"
CODE_EXECUTE_FAILED = "AutoBackup.1700"
_BUSY = "VolumeBackup.0013"
_QUOTA_MAP = {"VolumeBackup.0080": CODE_BACKUP_QUOTA, "VolumeBackup.0081": CODE_BACKUP_QUOTA,
              "VolumeBackup.0040": CODE_BACKUP_QUOTA, "VolumeBackup.0084": CODE_SNAPSHOT_QUOTA}


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """The identity of the policy a run belongs to."""

    id: str
    project_id: str


def backup_name() -> str:
    """``autobk_`` + 4 lowercase hex characters (vbs-api §2.14)."""
    return "autobk_" + secrets.token_hex(2)


def _volumes(session: Session, policy_id: str) -> Sequence[str]:
    return session.execute(
        select(PolicyResource.volume_id).where(PolicyResource.policy_id == policy_id)
        .order_by(PolicyResource.created_at, PolicyResource.volume_id)
    ).scalars().all()


def policy_tags(session: Session, policy_id: str) -> list[tuple[str, str]]:
    """The policy's tags in insertion order; the backup service copies them onto
    every backup the policy creates (vbs-api §2.13)."""
    rows = session.execute(
        select(PolicyTag.key, PolicyTag.value).where(PolicyTag.policy_id == policy_id)
        .order_by(PolicyTag.position)
    ).all()
    return [(k, v) for k, v in rows]


def run_policy(session: Session, port: BackupPort, policy: PolicyRef, *, now: dt.datetime,
               trigger: str, slot_at: dt.datetime | None = None) -> list[PolicyTask]:
    """Create and submit one task per associated disk; returns the tasks (flushed)."""
    tasks = []
    for volume_id in _volumes(session, policy.id):
        task = PolicyTask(
            id=str(uuid.uuid4()), policy_id=policy.id, project_id=policy.project_id,
            volume_id=volume_id, status="WAITING", trigger=trigger, slot_at=slot_at,
            backup_name=backup_name(), created_at=now,
        )
        try:
            with session.begin_nested():
                job_id, backup_id = port.submit_policy_backup(
                    session, project_id=policy.project_id, volume_id=volume_id,
                    policy_id=policy.id, backup_name=task.backup_name)
            task.vbs_job_id, task.backup_id = job_id, backup_id
        except ServiceError as exc:
            task.status = "SKIP" if exc.api_code == _BUSY else "EXECUTE_FAIL"
            task.code = _QUOTA_MAP.get(exc.api_code, exc.api_code or CODE_EXECUTE_FAILED)
            task.message = exc.message
            task.finished_at = now
        except Exception as exc:  # a port bug must not cost the other disks their run
            log.exception("policy %s: submitting a backup of %s failed", policy.id, volume_id)
            task.status, task.code, task.finished_at = "EXECUTE_FAIL", CODE_EXECUTE_FAILED, now
            task.message = f"Submitting the backup failed: {type(exc).__name__}."
        session.add(task)
        tasks.append(task)
    session.flush()
    return tasks


def record_missed_slots(session: Session, policy: PolicyRef, *, first: dt.datetime,
                        last: dt.datetime, now: dt.datetime, grace: dt.timedelta) -> int:
    """One ``SKIP`` task per disk saying which slots were missed and why; returns the count.

    Used when the scheduler was not running at ``first`` (and possibly later
    slots up to ``last``) and the grace window to catch up has passed.
    """
    span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    message = (f"Scheduled run(s) at {span} missed: the scheduler was not running and the "
               f"catch-up window of {int(grace.total_seconds())} s has passed.")
    volumes = _volumes(session, policy.id)
    for volume_id in volumes:
        session.add(PolicyTask(
            id=str(uuid.uuid4()), policy_id=policy.id, project_id=policy.project_id,
            volume_id=volume_id, status="SKIP", trigger="missed", slot_at=first,
            backup_name=backup_name(), message=message, created_at=now, finished_at=now,
        ))
    session.flush()
    return len(volumes)


def mark_task_running(session: Session, *, vbs_job_id: str) -> None:
    """The backup job of a task started: ``WAITING`` -> ``RUNNING``."""
    session.execute(update(PolicyTask).where(PolicyTask.vbs_job_id == vbs_job_id,
                                             PolicyTask.status == "WAITING")
                    .values(status="RUNNING").execution_options(synchronize_session=False))


def finish_task(session: Session, *, vbs_job_id: str, succeeded: bool, now: dt.datetime,
                code: str | None = None, message: str | None = None) -> None:
    """The backup job of a task ended. A task already ``EXECUTE_TIMEOUT`` still
    gets its final status: the backup did complete (or fail) after all."""
    values: dict[str, object] = {"status": "EXECUTE_SUCCESS" if succeeded else "EXECUTE_FAIL",
                                 "finished_at": now}
    if not succeeded:
        values["code"] = code or CODE_EXECUTE_FAILED
        values["message"] = message or "The backup job failed."
    session.execute(update(PolicyTask).where(PolicyTask.vbs_job_id == vbs_job_id)
                    .values(**values).execution_options(synchronize_session=False))


def expire_tasks(session: Session, *, now: dt.datetime, timeout: dt.timedelta,
                 keep: dt.timedelta) -> tuple[int, int]:
    """Housekeeping: tasks unfinished after ``timeout`` become ``EXECUTE_TIMEOUT``;
    tasks older than ``keep`` are deleted (listed for 30 days, vbs-api §7.9 [D47]).
    Returns (timed out, deleted)."""
    timed_out = cast(CursorResult[Any], session.execute(
        update(PolicyTask).where(PolicyTask.status.in_(ACTIVE_TASK_STATUSES),
                                 PolicyTask.created_at < now - timeout)
        .values(status="EXECUTE_TIMEOUT", code=CODE_EXECUTE_FAILED, finished_at=now,
                message=f"Not finished within {int(timeout.total_seconds())} s.")
        .execution_options(synchronize_session=False)
    )).rowcount
    deleted = cast(CursorResult[Any], session.execute(
        delete(PolicyTask).where(PolicyTask.created_at < now - keep)
        .execution_options(synchronize_session=False)
    )).rowcount
    return int(timed_out or 0), int(deleted or 0)
