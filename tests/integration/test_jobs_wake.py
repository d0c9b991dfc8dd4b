"""A job committed in this process wakes its idle workers at once (vbs.jobs._wake).

The worker below polls once an hour: the job can only run because the commit
woke it. A rolled-back enqueue wakes nobody.
"""

from __future__ import annotations

import threading

import pytest

from tests.integration.test_jobs_queue import (
    JobsDb,
    jobs_db,  # noqa: F401 - fixture
    wait_until,
)
from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.jobs import JobContext, JobStatus, Worker, _wake, enqueue


def test_commit_wakes_a_worker_that_would_sleep_an_hour(
    jobs_db: JobsDb, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    ran = threading.Event()
    sleeping = threading.Event()
    real_wait = _wake.wait_for_new

    def wait_for_new(seen: int, timeout: float) -> None:
        sleeping.set()  # the worker found nothing and goes to sleep
        real_wait(seen, timeout)

    monkeypatch.setattr(_wake, "wait_for_new", wait_for_new)

    def handler(ctx: JobContext) -> dict[str, str]:
        ran.set()
        return {}

    worker = Worker(jobs_db.db, {"bksCreateBackup": handler}, concurrency=1,
                    poll_interval=3600.0)
    worker.start()
    try:
        assert sleeping.wait(60), "the worker never went idle"
        job = jobs_db.enqueue()
        assert ran.wait(60), "the committed job did not wake the worker"
        wait_until(lambda: jobs_db.get(job.id).status is JobStatus.SUCCESS, what="job done")
    finally:
        assert worker.stop(timeout=30)  # stop wakes the sleeping thread too


def test_generation_moves_on_commit_only(jobs_db: JobsDb) -> None:  # noqa: F811
    before = _wake.generation()
    with pytest.raises(RuntimeError), jobs_db.db.session() as session:
        enqueue(session, project_id=jobs_db.project_id, job_type="bksCreateBackup",
                entities={"volume_id": "v"}, payload={})
        raise RuntimeError("roll back")
    assert _wake.generation() == before
    jobs_db.enqueue()
    assert _wake.generation() == before + 1
