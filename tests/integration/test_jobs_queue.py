"""The job queue on real SQLite and PostgreSQL: claim atomicity, resources, leases, retries.

Also holds the helpers the other ``test_jobs_*`` modules import (``JobsDb``,
``FakeClock``, ``jobs_db``, ``wait_until``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import vbs.db.models_jobs  # noqa: F401 - registers the jobs table
from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.db.base import Base
from vbs.db.migrate import upgrade
from vbs.db.models_identity import Domain, Project
from vbs.db.session import Database
from vbs.jobs import (
    WORKER_LOST,
    InvalidJob,
    JobRecord,
    JobStatus,
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

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LEASE = 60.0


@dataclass
class JobsDb:
    db: Database
    url: str
    project_id: str

    def enqueue(self, job_type: str = "bksCreateBackup", **kw: Any) -> JobRecord:
        kw.setdefault("entities", {"volume_id": "v"})
        kw.setdefault("payload", {"secret": "x"})
        with self.db.session() as session:
            return enqueue(session, project_id=self.project_id, job_type=job_type, **kw)

    def get(self, job_id: str) -> JobRecord:
        with self.db.session() as session:
            job = get(session, job_id)
        assert job is not None
        return job


class FakeClock:
    """A settable clock shared by threads: ``clock()`` -> aware UTC datetime."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after a generous ``timeout`` (not a timing test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


def make_jobs_db(url: str) -> JobsDb:
    upgrade(url)
    db = Database(url)
    project_id = uuid.uuid4().hex
    with db.session() as session:
        session.add(Domain(id="default", name="Default"))
        session.flush()
        session.add(Project(id=project_id, domain_id="default", name="p"))
    return JobsDb(db, url, project_id)


@pytest.fixture
def jobs_db(fresh_database_url: str) -> Iterator[JobsDb]:  # noqa: F811
    jdb = make_jobs_db(fresh_database_url)
    try:
        yield jdb
    finally:
        jdb.db.dispose()


# --------------------------------------------------------------------------- schema


def test_model_matches_migration(jobs_db: JobsDb) -> None:
    with jobs_db.db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(ctx, Base.metadata) if "jobs" in repr(d)]
    assert diffs == []


# --------------------------------------------------------------------------- basics


def test_enqueue_get_list_and_project_scoping(jobs_db: JobsDb) -> None:
    job_id = str(uuid.uuid4()).upper()
    job = jobs_db.enqueue(job_id=job_id, resource_key="volume:1", now=T0)
    assert job.id == job_id.lower()
    assert job.status is JobStatus.INIT and job.attempts == 0 and job.begin_time is None
    with jobs_db.db.session() as s:
        assert get(s, job_id) == job  # upper-case form finds the canonical id
        assert get(s, job.id, project_id=jobs_db.project_id) == job
        assert get(s, job.id, project_id="0" * 32) is None
        assert get(s, "not-a-uuid") is None
        assert [j.id for j in list_jobs(s, project_id=jobs_db.project_id)] == [job.id]
        assert list_jobs(s, statuses=["RUNNING"]) == []
    with pytest.raises(InvalidJob), jobs_db.db.session() as s:
        enqueue(s, project_id=jobs_db.project_id, job_type="t",
                entities={"n": 1}, payload={})  # type: ignore[dict-item]


def test_enqueue_is_part_of_the_callers_transaction(jobs_db: JobsDb) -> None:
    with pytest.raises(RuntimeError), jobs_db.db.session() as s:
        job = enqueue(s, project_id=jobs_db.project_id, job_type="t", entities={}, payload={})
        raise RuntimeError("caller fails after enqueue")
    with jobs_db.db.session() as s:
        assert get(s, job.id) is None


def test_claim_runs_oldest_first_and_lifecycle(jobs_db: JobsDb) -> None:
    first = jobs_db.enqueue(now=T0)
    second = jobs_db.enqueue(now=T0 + dt.timedelta(seconds=1))
    got = claim(jobs_db.db, "w1", lease_seconds=LEASE, now=T0 + dt.timedelta(seconds=2))
    assert got is not None and got.id == first.id
    assert got.status is JobStatus.RUNNING and got.attempts == 1 and not got.resumed
    assert got.lease_owner == "w1" and got.begin_time == T0 + dt.timedelta(seconds=2)
    assert heartbeat(jobs_db.db, first.id, "w1", lease_seconds=LEASE, progress=(5, 10),
                     checkpoint={"step": 1}, now=T0 + dt.timedelta(seconds=3))
    assert not heartbeat(jobs_db.db, first.id, "intruder", lease_seconds=LEASE)
    assert not complete(jobs_db.db, first.id, "intruder")
    assert complete(jobs_db.db, first.id, "w1", entities_update={"backup_id": "b"},
                    now=T0 + dt.timedelta(seconds=4))
    done = jobs_db.get(first.id)
    assert done.status is JobStatus.SUCCESS
    assert done.entities == {"volume_id": "v", "backup_id": "b"}
    assert (done.progress_done, done.progress_total, done.checkpoint) == (5, 10, {"step": 1})
    assert done.end_time == T0 + dt.timedelta(seconds=4)
    assert not heartbeat(jobs_db.db, first.id, "w1", lease_seconds=LEASE)  # finished
    assert not fail(jobs_db.db, first.id, "w1", error_code="x", reason="late")
    got2 = claim(jobs_db.db, "w2", lease_seconds=LEASE, types=["other"], now=T0)
    assert got2 is None
    got2 = claim(jobs_db.db, "w2", lease_seconds=LEASE, types=["bksCreateBackup"], now=T0)
    assert got2 is not None and got2.id == second.id
    assert fail(jobs_db.db, second.id, "w2", error_code="VolumeBackup.0017", reason="snap")
    failed = jobs_db.get(second.id)
    assert (failed.status, failed.error_code, failed.fail_reason) == (
        JobStatus.FAIL, "VolumeBackup.0017", "snap")
    assert claim(jobs_db.db, "w3", lease_seconds=LEASE, now=T0) is None


# --------------------------------------------------------------------------- concurrency


def test_200_jobs_4_threads_each_claimed_exactly_once(jobs_db: JobsDb) -> None:
    ids = {jobs_db.enqueue(now=T0 + dt.timedelta(microseconds=i)).id for i in range(200)}
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run(worker: str) -> None:
        try:
            barrier.wait()
            while (job := claim(jobs_db.db, worker, lease_seconds=LEASE)) is not None:
                with lock:
                    claimed.append((job.id, worker))
                assert complete(jobs_db.db, job.id, worker)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    counts = Counter(job_id for job_id, _ in claimed)
    assert set(counts) == ids and set(counts.values()) == {1}
    with jobs_db.db.session() as s:
        assert {j.status for j in list_jobs(s, limit=1000)} == {JobStatus.SUCCESS}
        assert all(j.attempts == 1 for j in list_jobs(s, limit=1000))


def test_resource_key_serialises_jobs(jobs_db: JobsDb) -> None:
    a1 = jobs_db.enqueue(resource_key="volume:1", now=T0)
    a2 = jobs_db.enqueue(resource_key="volume:1", now=T0 + dt.timedelta(seconds=1))
    b1 = jobs_db.enqueue(resource_key="volume:2", now=T0 + dt.timedelta(seconds=2))
    free = jobs_db.enqueue(now=T0 + dt.timedelta(seconds=3))
    now = T0 + dt.timedelta(seconds=10)
    got = [claim(jobs_db.db, f"w{n}", lease_seconds=LEASE, now=now) for n in range(4)]
    assert [j.id if j else None for j in got] == [a1.id, b1.id, free.id, None]
    # A RUNNING job with an expired lease still holds its resource: it is resumed first.
    later = now + dt.timedelta(seconds=LEASE + 1)
    resumed = claim(jobs_db.db, "w9", lease_seconds=LEASE, now=later)
    assert resumed is not None and resumed.resumed
    assert claim(jobs_db.db, "w9b", lease_seconds=LEASE, now=later) is not None  # b1 or free
    while (extra := claim(jobs_db.db, "wx", lease_seconds=LEASE, now=later)) is not None:
        assert extra.id != a2.id
    assert complete(jobs_db.db, a1.id, "w9")
    nxt = claim(jobs_db.db, "w10", lease_seconds=LEASE, now=later)
    assert nxt is not None and nxt.id == a2.id


# --------------------------------------------------------------------------- leases


def test_expired_lease_is_resumed_and_old_owner_loses(jobs_db: JobsDb) -> None:
    job = jobs_db.enqueue(now=T0)
    assert claim(jobs_db.db, "w1", lease_seconds=LEASE, now=T0) is not None
    assert heartbeat(jobs_db.db, job.id, "w1", lease_seconds=LEASE, checkpoint={"at": 7},
                     now=T0 + dt.timedelta(seconds=30))
    assert claim(jobs_db.db, "w2", lease_seconds=LEASE,
                 now=T0 + dt.timedelta(seconds=89)) is None  # renewed until T0+90
    with jobs_db.db.session() as s:
        assert [j.id for j in expired_running(s, now=T0 + dt.timedelta(seconds=91))] == [job.id]
    taken = claim(jobs_db.db, "w2", lease_seconds=LEASE, now=T0 + dt.timedelta(seconds=91))
    assert taken is not None and taken.id == job.id
    assert taken.resumed and taken.attempts == 2 and taken.lease_losses == 1
    assert taken.checkpoint == {"at": 7} and taken.begin_time == T0
    assert not heartbeat(jobs_db.db, job.id, "w1", lease_seconds=LEASE, checkpoint={"at": 0})
    assert not complete(jobs_db.db, job.id, "w1")
    assert jobs_db.get(job.id).checkpoint == {"at": 7}
    assert complete(jobs_db.db, job.id, "w2")


def test_max_attempts_exhausted_by_lost_leases_ends_fail(jobs_db: JobsDb) -> None:
    job = jobs_db.enqueue(max_attempts=2, now=T0)
    step = dt.timedelta(seconds=LEASE + 1)
    assert claim(jobs_db.db, "w1", lease_seconds=LEASE, now=T0) is not None
    again = claim(jobs_db.db, "w2", lease_seconds=LEASE, now=T0 + step)
    assert again is not None and again.resumed and again.attempts == 2
    assert claim(jobs_db.db, "w3", lease_seconds=LEASE, now=T0 + 2 * step) is None
    ended = jobs_db.get(job.id)
    assert ended.status is JobStatus.FAIL and ended.error_code == WORKER_LOST
    assert ended.fail_reason is not None and "worker lost 2 times" in ended.fail_reason
    assert ended.end_time == T0 + 2 * step and ended.lease_losses == 2


def test_retry_until_max_attempts_then_fail(jobs_db: JobsDb) -> None:
    job = jobs_db.enqueue(max_attempts=2, now=T0)
    assert claim(jobs_db.db, "w1", lease_seconds=LEASE, now=T0) is not None
    assert fail(jobs_db.db, job.id, "w1", error_code="e", reason="flaky", retry=True,
                retry_after=30, now=T0)
    back = jobs_db.get(job.id)
    assert back.status is JobStatus.INIT and back.run_after == T0 + dt.timedelta(seconds=30)
    assert back.error_code is None and back.end_time is None
    assert claim(jobs_db.db, "w2", lease_seconds=LEASE, now=T0 + dt.timedelta(seconds=29)) is None
    again = claim(jobs_db.db, "w2", lease_seconds=LEASE, now=T0 + dt.timedelta(seconds=30))
    assert again is not None and again.attempts == 2 and not again.resumed
    assert fail(jobs_db.db, job.id, "w2", error_code="e", reason="flaky", retry=True)
    ended = jobs_db.get(job.id)
    assert ended.status is JobStatus.FAIL and ended.error_code == "e"
    assert ended.fail_reason == "flaky (gave up after 2 attempts)"


def test_release_hands_the_job_to_the_next_claim_as_resumed(jobs_db: JobsDb) -> None:
    job = jobs_db.enqueue(max_attempts=1, now=T0)
    assert claim(jobs_db.db, "w1", lease_seconds=LEASE, now=T0) is not None
    assert release(jobs_db.db, job.id, "w1", now=T0 + dt.timedelta(seconds=1))
    taken = claim(jobs_db.db, "w2", lease_seconds=LEASE, now=T0 + dt.timedelta(seconds=1))
    assert taken is not None and taken.resumed and taken.attempts == 1
    assert taken.lease_losses == 0


def test_purge_finished_only_removes_old_finished_jobs(jobs_db: JobsDb) -> None:
    old = jobs_db.enqueue(now=T0)
    running = jobs_db.enqueue(now=T0 + dt.timedelta(seconds=1))
    assert claim(jobs_db.db, "w", lease_seconds=LEASE, now=T0) is not None
    assert complete(jobs_db.db, old.id, "w", now=T0)
    assert claim(jobs_db.db, "w2", lease_seconds=LEASE, now=T0) is not None
    later = T0 + dt.timedelta(days=31)
    assert purge_finished(jobs_db.db, dt.timedelta(days=30), now=T0) == 0
    assert purge_finished(jobs_db.db, dt.timedelta(days=30), now=later) == 1
    with jobs_db.db.session() as s:
        assert get(s, old.id) is None and get(s, running.id) is not None
