"""Crash safety and concurrency of the backup service, against real servers.

* Twenty backups of twenty volumes submitted at once all reach SUCCESS, and
  twenty restores submitted at once give byte-identical volumes.
* ``kill -9`` of the server while a backup job runs (during the engine, and
  during the internal snapshot copy), then a restart on the same data dir:
  the job ends SUCCESS or FAIL with a reason, no backup stays ``creating``,
  every ``available`` backup restores byte-identically, the repository
  verifies, and no internal snapshot is left behind.
* ``kill -9`` while a restore job runs: after the restart the restore ends
  SUCCESS and the volume is byte-identical.

Servers run with a short job lease (``VBS_JOBS__LEASE_SECONDS=5``) so the
restarted server resumes the interrupted job quickly. Every wait is bounded;
nothing asserts on timing. Volumes are sparse: only a few MiB hold data,
except the one a kill must interrupt (a few hundred MiB of random data, so
that the job is still running when it is killed).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, start_server
from tests.support.volumes import MIB, content_digest, make_volume

LEASE_ENV = {"VBS_JOBS__LEASE_SECONDS": "5"}
BIG_MIB = 320
"""Random data in the volume a kill interrupts: long enough to be caught mid-way."""


# --------------------------------------------------------------------------- helpers


class Api:
    """An admin client of one server; ``rebind`` follows a restarted server."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.token = server.token()
        self.project = server.project_id(self.token)
        self.http = self._client()

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, timeout=60,
                            headers={"X-Auth-Token": self.token})

    def rebind(self, server: RunningServer) -> None:
        self.http.close()
        self.server = server
        self.http = self._client()

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path.replace("{p}", self.project), **kw)

    def volume(self, name: str = "vol", size_gb: int = 1) -> str:
        r = self("POST", "/v3/{p}/volumes", json={"volume": {"size": size_gb, "name": name}})
        assert r.status_code == 202, r.text
        return str(r.json()["volume"]["id"])

    def volume_file(self, volume_id: str) -> Path:
        return self.server.data_dir / "volumes" / f"{volume_id}.img"

    def volume_status(self, volume_id: str) -> str:
        r = self("GET", f"/v3/{{p}}/volumes/{volume_id}")
        assert r.status_code == 200, r.text
        return str(r.json()["volume"]["status"])

    def backup(self, volume_id: str, name: str = "b") -> str:
        r = self("POST", "/v2/{p}/cloudbackups",
                 json={"backup": {"volume_id": volume_id, "name": name}})
        assert r.status_code == 200, r.text
        return str(r.json()["job_id"])

    def restore(self, backup_id: str, volume_id: str) -> str:
        r = self("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                 json={"restore": {"volume_id": volume_id}})
        assert r.status_code == 200, r.text
        return str(r.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        r = self("GET", f"/v1/{{p}}/jobs/{job_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def wait_job(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in ("SUCCESS", "FAIL"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.1)


def _db(server: RunningServer) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{server.data_dir / 'vbs.db'}?mode=ro", uri=True, timeout=30)


def _rows(server: RunningServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = _db(server)
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def _packs(server: RunningServer) -> int:
    """Pack files in the repository (every project)."""
    return sum(1 for _ in (server.data_dir / "repo" / "projects").glob("*/data/*/*"))


def _kill9(server: RunningServer) -> None:
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)


def _restart(server: RunningServer, env: dict[str, str]) -> RunningServer:
    """A new ``vbs serve`` on the same data dir (the old log is kept as ``.N``)."""
    assert server.process.poll() is not None, "stop or kill the old server first"
    n = 1
    while server.log_path.with_suffix(f".log.{n}").exists():
        n += 1
    server.log_path.rename(server.log_path.with_suffix(f".log.{n}"))
    return start_server(server.data_dir.parent, env=env,
                        admin_password=server.admin_password)


def _wait_for(predicate: Any, what: str, timeout: float = 120, tick: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(tick)


def _fill_mixed(path: Path, seed: int, size: int = 4 * MIB) -> str:
    """Holes, zeros, text and random data in the first ``size`` bytes of the volume."""
    tmp = path.with_name(path.name + ".gen")
    make_volume(tmp, size, seed=seed)
    with open(path, "r+b") as dst, open(tmp, "rb") as src:
        dst.write(src.read())
    tmp.unlink()
    return content_digest(path)


def _fill_random(path: Path, mib: int) -> str:
    with open(path, "r+b") as f:
        for _ in range(mib // 8):
            f.write(os.urandom(8 * MIB))
    return content_digest(path)


def _check_restores(api: Api, backups: dict[str, str]) -> None:
    """Restore every backup (id -> expected digest) into a fresh volume, all at once."""
    jobs = {}
    for backup_id in backups:
        target = api.volume("restored")
        jobs[backup_id] = (target, api.restore(backup_id, target))
    for backup_id, (target, job_id) in jobs.items():
        job = api.wait_job(job_id)
        assert job["status"] == "SUCCESS", job
        assert content_digest(api.volume_file(target)) == backups[backup_id], backup_id


def _check_repository(server: RunningServer, project: str) -> None:
    from vbs.engine.verify import verify_project
    from vbs.repository.backends import LocalBackend
    from vbs.repository.repo import Repository

    repo = Repository.open(LocalBackend(server.data_dir / "repo"),
                           key_file_bytes=(server.data_dir / "master.key").read_bytes())
    errors = [f for f in verify_project(repo.project(project), quarantine=False) if f.kind.is_error]
    assert errors == []


def _settled(server: RunningServer) -> None:
    """No backup, job, volume or internal snapshot is left in a transitional state."""
    assert _rows(server, "SELECT id, status FROM backups WHERE status IN "
                         "('creating', 'restoring', 'deleting')") == []
    assert _rows(server, "SELECT id, status FROM jobs WHERE status IN ('INIT', 'RUNNING')") == []
    assert _rows(server, "SELECT id, status FROM volumes WHERE status IN "
                         "('backing-up', 'restoring-backup')") == []
    # change-tracking bases (kept reflink snapshots of the last backup) are not leftovers
    bases = {r[0] for r in _rows(server, "SELECT cbt_base_snapshot_id FROM volumes "
                                         "WHERE cbt_base_snapshot_id IS NOT NULL")}
    assert [r for r in _rows(server, "SELECT id, status FROM snapshots WHERE internal")
            if r[0] not in bases] == []
    snapdir = server.data_dir / "volumes" / "snapshots"
    leftovers = sorted(p.name for p in snapdir.iterdir()) if snapdir.is_dir() else []
    assert [n for n in leftovers if n.removesuffix(".img") not in bases] == []


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("robust")


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    """Servers a test started (including restarts); all stopped at the end."""
    started: list[RunningServer] = []
    yield started
    for server in started:
        server.stop()


# --------------------------------------------------------------------------- concurrency


def test_twenty_backups_submitted_at_once_all_succeed(
        workdir: Path, servers: list[RunningServer]) -> None:
    server = start_server(workdir, env={"VBS_JOBS__WORKERS": "4"})
    servers.append(server)
    api = Api(server)
    volumes = [api.volume(f"v{i}") for i in range(20)]
    digests = {v: _fill_mixed(api.volume_file(v), seed=i) for i, v in enumerate(volumes)}

    with ThreadPoolExecutor(max_workers=20) as pool:
        job_ids = list(pool.map(lambda v: api.backup(v, f"c-{v[:8]}"), volumes))
    jobs = [api.wait_job(j) for j in job_ids]
    assert [j["status"] for j in jobs] == ["SUCCESS"] * 20, [j for j in jobs
                                                              if j["status"] != "SUCCESS"]
    backups = {j["entities"]["backup_id"]: digests[j["entities"]["volume_id"]] for j in jobs}
    assert len(backups) == 20
    statuses = _rows(server, "SELECT status, COUNT(*) FROM backups GROUP BY status")
    assert statuses == [("available", 20)]
    assert {api.volume_status(v) for v in volumes} == {"available"}

    _check_restores(api, backups)
    _settled(server)
    _check_repository(server, api.project)


# --------------------------------------------------------------------------- kill -9


def _job_row(server: RunningServer, job_id: str) -> tuple[str, int, int, str | None]:
    rows = _rows(server, "SELECT status, progress_done, progress_total, checkpoint FROM jobs "
                         "WHERE id = ?", job_id)
    assert rows, job_id
    status, done, total, checkpoint = rows[0]
    return str(status), int(done), int(total), None if checkpoint == "null" else checkpoint


def _kill_backup_and_recover(workdir: Path, servers: list[RunningServer], *,
                             during_snapshot: bool) -> None:
    server = start_server(workdir, env=LEASE_ENV)
    servers.append(server)
    api = Api(server)
    small = api.volume("small")
    big = api.volume("big")
    digests = {small: _fill_mixed(api.volume_file(small), seed=7),
               big: _fill_random(api.volume_file(big), BIG_MIB)}
    first = api.wait_job(api.backup(small, "before-crash"))  # a committed backup
    assert first["status"] == "SUCCESS", first
    committed = first["entities"]["backup_id"]

    def copying() -> list[tuple[Any, ...]]:
        return _rows(server, "SELECT id FROM snapshots WHERE volume_id = ? AND internal "
                             "AND status = 'creating'", big)

    job_id = api.backup(big, "interrupted")
    if during_snapshot:  # running, but the internal snapshot is not checkpointed yet
        def caught() -> bool:
            status, _done, _total, checkpoint = _job_row(server, job_id)
            assert checkpoint is None or status == "INIT", "snapshot done before the kill"
            return status == "RUNNING" and bool(copying())
    else:  # the engine has stored some packs of the volume, not all of them
        packs_before = _packs(server)

        def caught() -> bool:
            # Watch the repository, not the job's progress: the engine may
            # outrun the progress reports (about once a second).
            if _packs(server) < packs_before + 2:
                status = _job_row(server, job_id)[0]
                assert status in ("INIT", "RUNNING"), "the backup ended before the kill"
                return False
            return _job_row(server, job_id)[0] == "RUNNING"
    _wait_for(caught, "the backup job to run", tick=0.002)
    _kill9(server)
    status, _done, _total, checkpoint = _job_row(server, job_id)
    assert status == "RUNNING", "the job finished before the kill; raise BIG_MIB"
    if during_snapshot:
        assert checkpoint is None and copying()  # a half-made snapshot to clean up
    else:
        assert checkpoint is not None  # killed in the engine, after the snapshot
    assert _rows(server, "SELECT status FROM backups WHERE volume_id = ? AND name = ?",
                 big, "interrupted") == [("creating",)]

    server = _restart(server, LEASE_ENV)
    servers.append(server)
    api.rebind(server)
    job = api.wait_job(job_id)
    assert job["status"] in ("SUCCESS", "FAIL"), job
    assert _rows(server, "SELECT resumed, lease_losses FROM jobs WHERE id = ?",
                 job_id) == [(1, 1)]  # taken over, not reset
    if job["status"] == "FAIL":
        assert job["fail_reason"] and job["error_code"], job
    backup_id = job["entities"]["backup_id"]
    (backup_status,) = _rows(server, "SELECT status FROM backups WHERE id = ?", backup_id)[0]
    assert backup_status == ("available" if job["status"] == "SUCCESS" else "error")
    assert api.volume_status(big) == "available"

    available = {bid: digests[vid] for bid, vid in
                 _rows(server, "SELECT id, volume_id FROM backups WHERE status = 'available'")}
    assert committed in available  # nothing committed was lost
    _check_restores(api, available)
    _settled(server)
    _check_repository(server, api.project)
    # the service still works on the recovered volume, and it can be deleted
    again = api.wait_job(api.backup(big, "after-crash"))
    assert again["status"] == "SUCCESS", again
    r = api("DELETE", f"/v3/{{p}}/volumes/{big}")
    assert r.status_code == 202, r.text
    assert api("GET", f"/v3/{{p}}/volumes/{big}").status_code == 404


def test_kill9_during_backup_then_restart(workdir: Path, servers: list[RunningServer]) -> None:
    _kill_backup_and_recover(workdir, servers, during_snapshot=False)


def test_kill9_during_internal_snapshot_then_restart(
        workdir: Path, servers: list[RunningServer]) -> None:
    _kill_backup_and_recover(workdir, servers, during_snapshot=True)


def test_kill9_during_restore_then_restart(workdir: Path, servers: list[RunningServer]) -> None:
    server = start_server(workdir, env=LEASE_ENV)
    servers.append(server)
    api = Api(server)
    source = api.volume("source")
    digest = _fill_random(api.volume_file(source), BIG_MIB)
    job = api.wait_job(api.backup(source, "to-restore"))
    assert job["status"] == "SUCCESS", job
    backup_id = job["entities"]["backup_id"]
    target = api.volume("target")
    _fill_mixed(api.volume_file(target), seed=11)  # old content the restore must replace

    target_file = api.volume_file(target)
    allocated = target_file.stat().st_blocks
    job_id = api.restore(backup_id, target)

    def caught() -> bool:
        # The restore may outrun the job's progress reports (about once a
        # second), so watch the target being written instead.
        if target_file.stat().st_blocks * 512 < allocated * 512 + 32 * MIB:
            assert _job_row(server, job_id)[0] in ("INIT", "RUNNING"), "restore already ended"
            return False
        return _job_row(server, job_id)[0] == "RUNNING"

    _wait_for(caught, "the restore job to write", tick=0.002)
    _kill9(server)
    assert _job_row(server, job_id)[0] == "RUNNING", "restore finished before the kill"

    server = _restart(server, LEASE_ENV)
    servers.append(server)
    api.rebind(server)
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS", job
    assert _rows(server, "SELECT resumed, lease_losses FROM jobs WHERE id = ?",
                 job_id) == [(1, 1)]
    assert content_digest(api.volume_file(target)) == digest
    assert api.volume_status(target) == "available"
    assert _rows(server, "SELECT status FROM backups WHERE id = ?", backup_id) == [("available",)]
    _settled(server)
