"""Durable job queue on the database: the ``jobs`` table *is* the queue.

Nouns:

* **job** - one asynchronous operation (§2.10: ``bksCreateBackup``,
  ``bksDeleteBackup``, ``bksRestoreBackup``), INIT -> RUNNING -> SUCCESS | FAIL.
  ``entities`` are shown to clients; ``payload`` (handler parameters) and
  ``checkpoint`` (the handler's last safe point) never are.
* **claim** - a worker atomically takes the oldest claimable job and becomes
  its lease owner.
* **lease** - ownership until ``lease_expires_at``, renewed by heartbeats.
  A RUNNING job whose lease expired is *resumed* by the next claim
  (``resumed`` true, ``attempts`` + 1); it is never reset to INIT. After
  ``max_attempts`` it ends FAIL ("worker lost N times").
* **resource key** - e.g. ``volume:<id>``; at most one RUNNING job per key.
* **handler** - ``(JobContext) -> dict[str, str] | None`` run by a
  :class:`Worker` thread; it gets progress, checkpoint and a cancel token.

Concurrency (what may overlap, and what makes it safe):

==============================  ==================================================
operations                      safe because
==============================  ==================================================
claim / claim (any processes)   PostgreSQL: ``FOR UPDATE SKIP LOCKED`` on the
                                candidate; SQLite: ``BEGIN IMMEDIATE`` + conditional
                                UPDATE whose rowcount is checked
claim / claim, same resource    PostgreSQL: advisory xact lock on the key, then a
                                re-check in a fresh snapshot; SQLite: one writer
claim (takeover) / heartbeat    both are conditional on the row's current owner;
                                the database serialises them, the loser sees it
heartbeat / complete / fail     only the current owner's conditional writes apply
enqueue / anything              a new INIT row, visible once the caller commits
purge / running jobs            purge deletes SUCCESS/FAIL rows only
==============================  ==================================================

Lease owner ids are unique per claim, so two runs of one job never share one.
"""

from __future__ import annotations

from vbs.jobs.context import Clock, JobContext
from vbs.jobs.errors import INTERNAL_ERROR, WORKER_LOST, InvalidJob, JobError, UnknownJobType
from vbs.jobs.queue import (
    claim,
    complete,
    enqueue,
    expired_running,
    fail,
    get,
    heartbeat,
    list_jobs,
    purge_finished,
    release,
)
from vbs.jobs.records import JobRecord, JobStatus, JobType, canonical_job_id
from vbs.jobs.worker import JobHandler, Worker, on_start_recover

__all__ = [
    "INTERNAL_ERROR",
    "WORKER_LOST",
    "Clock",
    "InvalidJob",
    "JobContext",
    "JobError",
    "JobHandler",
    "JobRecord",
    "JobStatus",
    "JobType",
    "UnknownJobType",
    "Worker",
    "canonical_job_id",
    "claim",
    "complete",
    "enqueue",
    "expired_running",
    "fail",
    "get",
    "heartbeat",
    "list_jobs",
    "on_start_recover",
    "purge_finished",
    "release",
]
