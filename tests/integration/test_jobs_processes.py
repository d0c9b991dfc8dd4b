"""The job queue across real processes: two worker processes share one database,
and a worker killed with SIGKILL mid-job is resumed by another after its lease
expires (through an injected clock), ending SUCCESS with nothing left RUNNING.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_jobs_queue import (
    JobsDb,
    jobs_db,  # noqa: F401 - fixture
    wait_until,
)
from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.db.base import utcnow
from vbs.jobs import JobContext, JobStatus, Worker, list_jobs

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import os, sys, time
from vbs.db.session import Database
from vbs.jobs import Worker, list_jobs

url, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
db = Database(url)

def record(ctx):
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (ctx.job.id + "\n").encode())
    os.close(fd)
    return {"pid": str(os.getpid())}

def hang(ctx):
    assert ctx.checkpoint({"offset": 65536})
    ctx.progress(65536, 1 << 20)
    with open(out, "w") as fh:
        fh.write(ctx.job.id)
    while True:  # a stuck handler that ignores cancel: only SIGKILL ends it
        time.sleep(0.05)

handler = record if mode == "count" else hang
worker = Worker(db, {"bksCreateBackup": handler}, concurrency=2, poll_interval=0.05,
                lease_seconds=30, heartbeat_interval=0.2, progress_interval=0.05)
worker.start()
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    with db.session() as s:
        if not list_jobs(s, statuses=["INIT", "RUNNING"], limit=1):
            break
    time.sleep(0.1)
worker.stop(timeout=60)
"""


def _spawn(url: str, mode: str, out: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VBS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])
    return subprocess.Popen([sys.executable, "-c", CHILD, url, mode, str(out)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_worker_processes_run_each_job_once(jobs_db: JobsDb, tmp_path: Path) -> None:  # noqa: F811
    ids = {jobs_db.enqueue().id for _ in range(200)}
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_spawn(jobs_db.url, "count", log) for log in logs]
    for proc in procs:
        _out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    runs = Counter(line for log in logs if log.exists() for line in log.read_text().split())
    assert set(runs) == ids and set(runs.values()) == {1}
    with jobs_db.db.session() as s:
        jobs = list_jobs(s, limit=1000)
    assert {j.status for j in jobs} == {JobStatus.SUCCESS}
    assert all(j.attempts == 1 for j in jobs)


def test_kill_9_mid_job_then_another_worker_resumes_it(jobs_db: JobsDb, tmp_path: Path) -> None:  # noqa: F811
    job = jobs_db.enqueue(payload={"volume": "v1"})
    marker = tmp_path / "started"
    proc = _spawn(jobs_db.url, "hang", marker)
    try:
        wait_until(lambda: marker.exists() and marker.read_text() == job.id, timeout=120,
                   what="the child to start the job")
        wait_until(lambda: jobs_db.get(job.id).progress_done == 65536, what="child progress")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    orphan = jobs_db.get(job.id)
    assert orphan.status is JobStatus.RUNNING and orphan.checkpoint == {"offset": 65536}

    seen: list[tuple[bool, int, object]] = []

    def finish(ctx: JobContext) -> dict[str, str]:
        seen.append((ctx.resumed, ctx.job.attempts, ctx.job.checkpoint))
        ctx.progress(1 << 20, 1 << 20)
        return {"backup_id": "b1"}

    # Instead of sleeping out the 30 s lease, the new worker's clock runs ahead.
    ahead = dt.timedelta(minutes=5)
    worker = Worker(jobs_db.db, {"bksCreateBackup": finish}, clock=lambda: utcnow() + ahead)
    done = worker.run_once()
    assert done is not None and done.id == job.id
    assert done.status is JobStatus.SUCCESS and done.lease_losses == 1
    assert done.progress_done == 1 << 20 and done.entities["backup_id"] == "b1"
    assert seen == [(True, 2, {"offset": 65536})]
    with jobs_db.db.session() as s:
        assert list_jobs(s, statuses=["INIT", "RUNNING"]) == []
