"""The job worker on real SQLite and PostgreSQL, with real threads.

Leases expire through an injected clock (``FakeClock``); waits are bounded
polls, never timing assertions.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any

import pytest

from tests.integration.test_jobs_queue import (
    LEASE,
    T0,
    FakeClock,
    JobsDb,
    jobs_db,  # noqa: F401 - fixture
    wait_until,
)
from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.errors import Cancelled, ServiceError, TransientBackendError, VolumeError
from vbs.jobs import (
    INTERNAL_ERROR,
    JobContext,
    JobStatus,
    Worker,
    claim,
    heartbeat,
    list_jobs,
    on_start_recover,
)

pytestmark = pytest.mark.slow


def test_four_workers_run_each_job_once_and_one_per_resource(
    jobs_db: JobsDb,  # noqa: F811
) -> None:
    keys = [f"volume:{n}" for n in range(5)]
    ids = set()
    for i in range(200):
        key = keys[i % 5] if i % 2 else None
        ids.add(jobs_db.enqueue(resource_key=key).id)
    runs: Counter[str] = Counter()
    busy: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()

    def handler(ctx: JobContext) -> dict[str, str]:
        key = ctx.job.resource_key
        with lock:
            runs[ctx.job.id] += 1
            if key is not None:
                if key in busy:
                    overlaps.append(key)
                busy.add(key)
        with lock:
            busy.discard(key or "")
        return {"owner": ctx.owner}

    workers = [Worker(jobs_db.db, {"bksCreateBackup": handler}, worker_id=f"w{n}",
                      concurrency=2, poll_interval=0.02) for n in range(4)]
    for w in workers:
        w.start()
    try:
        def all_done() -> bool:
            with jobs_db.db.session() as s:
                return not list_jobs(s, statuses=["INIT", "RUNNING"], limit=1)
        wait_until(all_done, timeout=300, what="all 200 jobs finished")
    finally:
        for w in workers:
            assert w.stop(timeout=60)
    assert set(runs) == ids and set(runs.values()) == {1}
    assert overlaps == []
    with jobs_db.db.session() as s:
        jobs = list_jobs(s, limit=1000)
    assert {j.status for j in jobs} == {JobStatus.SUCCESS}
    assert len({j.entities["owner"].split("/")[0] for j in jobs}) >= 2


def test_progress_is_readable_while_running_and_heartbeats_keep_the_lease(
    jobs_db: JobsDb,  # noqa: F811
) -> None:
    job = jobs_db.enqueue()
    release = threading.Event()
    seen_cancel: list[bool] = []

    def handler(ctx: JobContext) -> None:
        ctx.progress(50, 100)
        assert release.wait(120)
        seen_cancel.append(ctx.cancel.cancelled)
        return None

    worker = Worker(jobs_db.db, {"bksCreateBackup": handler}, lease_seconds=LEASE,
                    heartbeat_interval=0.05, progress_interval=0.05)
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    try:
        wait_until(lambda: jobs_db.get(job.id).progress_done == 50, what="progress 50/100")
        running = jobs_db.get(job.id)
        assert running.status is JobStatus.RUNNING and running.progress_total == 100
        first_expiry = running.lease_expires_at
        wait_until(lambda: jobs_db.get(job.id).lease_expires_at != first_expiry,
                   what="a heartbeat without progress")
    finally:
        release.set()
        runner.join(120)
    assert seen_cancel == [False]
    assert jobs_db.get(job.id).status is JobStatus.SUCCESS


def test_lost_lease_cancels_the_handler_and_its_outcome_is_dropped(
    jobs_db: JobsDb,  # noqa: F811
) -> None:
    job = jobs_db.enqueue()
    started = threading.Event()
    clock = FakeClock()

    def handler(ctx: JobContext) -> dict[str, str]:
        started.set()
        wait_until(lambda: ctx.cancel.cancelled, what="cancel after lease loss")
        assert ctx.lease_lost
        assert not ctx.checkpoint({"late": True})
        return {"stale": "result"}

    worker = Worker(jobs_db.db, {"bksCreateBackup": handler}, lease_seconds=LEASE,
                    heartbeat_interval=0.05, clock=clock)
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    try:
        assert started.wait(60)
        taken = claim(jobs_db.db, "other", lease_seconds=LEASE,
                      now=T0 + dt.timedelta(seconds=LEASE + 1))
        assert taken is not None and taken.resumed and taken.attempts == 2
    finally:
        runner.join(120)
    after = jobs_db.get(job.id)
    assert after.status is JobStatus.RUNNING and after.lease_owner == "other"
    assert "stale" not in after.entities and after.checkpoint is None
    assert heartbeat(jobs_db.db, job.id, "other", lease_seconds=LEASE)


def test_resume_after_expiry_with_injected_clock(jobs_db: JobsDb) -> None:  # noqa: F811
    job = jobs_db.enqueue(now=T0)
    crashed = claim(jobs_db.db, "crashed-worker", lease_seconds=LEASE, now=T0)
    assert crashed is not None
    assert heartbeat(jobs_db.db, job.id, "crashed-worker", lease_seconds=LEASE,
                     checkpoint={"offset": 4096}, now=T0)
    clock = FakeClock(T0 + dt.timedelta(seconds=10))
    seen: list[tuple[bool, int, Any]] = []

    def handler(ctx: JobContext) -> dict[str, str]:
        seen.append((ctx.resumed, ctx.job.attempts, ctx.job.checkpoint))
        return {"backup_id": "b1"}

    worker = Worker(jobs_db.db, {"bksCreateBackup": handler}, clock=clock, lease_seconds=LEASE)
    assert worker.run_once() is None  # lease still live
    clock.advance(LEASE)
    assert [j.id for j in on_start_recover(jobs_db.db, now=clock())] == [job.id]
    assert jobs_db.get(job.id).status is JobStatus.RUNNING  # nothing reset
    done = worker.run_once()
    assert done is not None and done.status is JobStatus.SUCCESS
    assert seen == [(True, 2, {"offset": 4096})]
    assert done.entities["backup_id"] == "b1" and done.begin_time == T0


def test_transient_errors_retry_with_backoff_then_succeed(jobs_db: JobsDb) -> None:  # noqa: F811
    job = jobs_db.enqueue(max_attempts=3)
    clock = FakeClock()
    calls: list[int] = []

    def handler(ctx: JobContext) -> dict[str, str]:
        calls.append(ctx.job.attempts)
        if len(calls) < 3:
            raise TransientBackendError("S3 said 503")
        return {"done": "yes"}

    worker = Worker(jobs_db.db, {"bksCreateBackup": handler}, clock=clock,
                    retry_backoff=(10.0, 15.0))
    first = worker.run_once()
    assert first is not None and first.status is JobStatus.INIT
    assert first.run_after == T0 + dt.timedelta(seconds=10)
    assert worker.run_once() is None  # backing off
    clock.advance(10)
    second = worker.run_once()
    assert second is not None and second.status is JobStatus.INIT
    assert worker.run_once() is None
    clock.advance(15)  # capped backoff
    third = worker.run_once()
    assert third is not None and third.status is JobStatus.SUCCESS
    assert calls == [1, 2, 3] and third.entities["done"] == "yes"
    assert third.error_code is None and third.id == job.id


def test_errors_map_to_fail_codes(jobs_db: JobsDb) -> None:  # noqa: F811
    def service_error(ctx: JobContext) -> None:
        raise ServiceError("Taking the snapshot failed", api_code="VolumeBackup.0017")

    def vbs_error(ctx: JobContext) -> None:
        raise VolumeError("volume vanished")

    def crash(ctx: JobContext) -> None:
        raise KeyError("secret detail")

    def bad_entities(ctx: JobContext) -> Any:
        return {"n": 1}

    handlers = {"svc": service_error, "vol": vbs_error, "crash": crash, "bad": bad_entities}
    expected = {
        "svc": ("VolumeBackup.0017", "Taking the snapshot failed"),
        "vol": ("vbs.volume", "volume vanished"),
        "crash": (INTERNAL_ERROR, "internal error (KeyError)"),
        "bad": ("vbs.jobs.invalid", "job entities must be a mapping of strings to strings"),
    }
    worker = Worker(jobs_db.db, handlers)
    for job_type, (code, reason) in expected.items():
        job = jobs_db.enqueue(job_type)
        ended = worker.run_once()
        assert ended is not None and ended.id == job.id
        assert (ended.status, ended.error_code, ended.fail_reason) == (
            JobStatus.FAIL, code, reason)
        assert ended.end_time is not None


def test_graceful_stop_cancels_and_releases_for_resume(jobs_db: JobsDb) -> None:  # noqa: F811
    job = jobs_db.enqueue()
    started = threading.Event()

    def stoppable(ctx: JobContext) -> None:
        started.set()
        wait_until(lambda: ctx.cancel.cancelled, what="stop to cancel")
        ctx.cancel.check()

    worker = Worker(jobs_db.db, {"bksCreateBackup": stoppable}, concurrency=1,
                    poll_interval=0.02)
    worker.start()
    assert started.wait(60)
    assert worker.stop(timeout=60)
    released = jobs_db.get(job.id)
    assert released.status is JobStatus.RUNNING and released.lease_owner is None
    assert released.attempts == 0

    seen: list[bool] = []

    def finisher(ctx: JobContext) -> None:
        seen.append(ctx.resumed)

    done = Worker(jobs_db.db, {"bksCreateBackup": finisher}).run_once()
    assert done is not None and done.status is JobStatus.SUCCESS and seen == [True]
    assert done.attempts == 1


def test_cancelled_outside_stop_is_a_failure(jobs_db: JobsDb) -> None:  # noqa: F811
    jobs_db.enqueue()

    def handler(ctx: JobContext) -> None:
        raise Cancelled("operation cancelled")

    ended = Worker(jobs_db.db, {"bksCreateBackup": handler}).run_once()
    assert ended is not None and ended.status is JobStatus.FAIL
    assert ended.error_code == "vbs.engine.cancelled"
