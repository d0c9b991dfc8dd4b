"""Scale-out on PostgreSQL + S3: separate API, worker and scheduler processes,
each of which may die at any moment without losing or duplicating work.

One deployment for the module (tests run in order and leave it whole):
PostgreSQL database, a SeaweedFS bucket reached through a fault-injecting
proxy, ``vbs db upgrade``, API ``a`` (``--processes 2``) and API ``b``, two
``vbs worker`` and two ``vbs scheduler`` processes sharing one data dir
(the shared-volume-directory topology). Volumes are 1 GiB sparse files with
a little data, so a hundred backups stay quick.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tests.support.api import ProjectClient
from tests.support.deployment import Deployment, Proc, pids_of
from tests.support.faultproxy import FaultProxy
from tests.support.seaweedfs import SeaweedS3
from tests.support.server import RunningServer, _PgDatabases
from tests.support.volumes import KIB, MIB, content_digest

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.slow]

CREATE = "bksCreateBackup"


class Cluster:
    def __init__(self, dep: Deployment, proxy: FaultProxy, pg: _PgDatabases) -> None:
        self.dep = dep
        self.proxy = proxy
        self.pg = pg
        self.api_a: RunningServer
        self.api_b: RunningServer
        self.a: ProjectClient
        self.b: ProjectClient
        self.workers: list[Proc] = []
        self.schedulers: list[Proc] = []

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = self.dep.engine()
        try:
            with engine.begin() as conn:
                result = conn.execute(text(query), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def job(self, job_id: str) -> Any:
        rows = self.sql("SELECT * FROM jobs WHERE id = :id", id=job_id)
        return rows[0]

    def worker_logs(self) -> str:
        return "".join(p.log() for p in self.dep.procs if p.name.startswith("worker"))

    def start_worker(self) -> Proc:
        proc = self.dep.start(f"worker-{len(self.workers) + 1}", "worker")
        self.workers.append(proc)
        return proc

    def start_scheduler(self) -> Proc:
        proc = self.dep.start(f"scheduler-{len(self.schedulers) + 1}", "scheduler")
        self.schedulers.append(proc)
        return proc

    def live_workers(self) -> list[Proc]:
        return [w for w in self.workers if w.alive()]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedS3) -> Iterator[Cluster]:
    pg = _PgDatabases()
    url = pg.create()
    target = urlsplit(seaweedfs.endpoint_url)
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 80)
    dep = Deployment(tmp_path_factory.mktemp("scaleout"), url, seaweedfs,
                     seaweedfs.new_bucket(), proxy)
    c = Cluster(dep, proxy, pg)
    try:
        upgrade = dep.cli("db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stderr
        assert "scaleout_0001" in upgrade.stdout
        c.api_a = dep.api("api-a", processes=2)
        c.api_b = dep.api("api-b")
        c.start_worker()
        c.start_worker()
        c.start_scheduler()
        c.start_scheduler()
        c.a = ProjectClient(c.api_a)
        c.b = ProjectClient(c.api_b)
        yield c
    finally:
        dep.close()
        proxy.close()
        pg.drop_all()


def write(path: Path, offset: int, seed: int, length: int = 64 * KIB) -> None:
    data = (seed.to_bytes(8, "little") * (length // 8))
    data = bytes(b ^ (i * 37 & 0xFF) for i, b in enumerate(data[:4096])) + data[4096:]
    with open(path, "r+b") as f:
        os.pwrite(f.fileno(), os.urandom(16) + data[16:], offset)


def fill_random(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        done = 0
        while done < size:
            n = min(4 * MIB, size - done)
            os.pwrite(f.fileno(), os.urandom(n), done)
            done += n


def backup(api: ProjectClient, volume: str, name: str) -> str:
    r = api("POST", "/v2/{p}/cloudbackups", json={"backup": {"volume_id": volume, "name": name}})
    assert r.status_code == 200, r.text
    return str(r.json()["job_id"])


def wait_job(c: Cluster, job_id: str, timeout: float = 120, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        row = c.job(job_id)
        if row.status in ("SUCCESS", "FAIL"):
            return row
        assert time.monotonic() < deadline, f"job {job_id} still {row.status}"
        time.sleep(poll)


def wait_for(what: str, check: Any, timeout: float = 60, poll: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def pack_entries(repo: Any, project: str) -> dict[str, list[bytes]]:
    """pack id -> data chunk ids it holds, read from every pack's own header.

    Manifest pages are left out: two backups running at once may both store
    the same page (all holes, say), which is no duplicated work of one job."""
    from vbs.repository import format as fmt
    from vbs.repository import layout
    from vbs.repository.adopt import _header

    store = repo.project(project)
    out = {}
    for o in store.backend.list(layout.packs_prefix(project)):
        pack = o.key.rsplit("/", 1)[-1]
        raw = _header(store, pack, o.size)
        out[pack] = [raw[i:i + 32] for i in range(0, len(raw), fmt.PACK_ENTRY.size)
                     if raw[i + 32] == fmt.BLOB_TYPE_DATA]
    return out


def pack_names(repo: Any, project: str) -> set[str]:
    """The project's pack ids (one listing; cheap enough to poll)."""
    from vbs.repository import layout

    return {o.key.rsplit("/", 1)[-1] for o in repo.backend.list(layout.packs_prefix(project))}


def assert_no_chunk_stored_twice(repo: Any, project: str) -> dict[str, list[bytes]]:
    packs = pack_entries(repo, project)
    counts = Counter(cid for ids in packs.values() for cid in ids)
    twice = [cid.hex() for cid, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} chunks stored in more than one pack"
    return packs


def restored_digest(repo: Any, project: str, backup_id: str, target: Path,
                    index: Any = None) -> str:
    from vbs.engine.restore import restore

    target.unlink(missing_ok=True)
    restore(repo.project(project), backup_id, target, index=index)
    try:
        return content_digest(target)
    finally:
        target.unlink()


# --------------------------------------------------------------------------- roles


def test_roles_report_readiness_and_one_scheduler_leads(cluster: Cluster) -> None:
    c = cluster
    api_ready = c.dep.proc_of(c.api_a.process.pid).ready()
    assert api_ready["roles"] == ["api"] and api_ready["processes"] == 2
    assert len(pids_of(c.dep.proc_of(c.api_a.process.pid))) == 2
    for w in c.workers:
        doc = w.ready()
        assert doc["roles"] == ["worker"] and doc["pid"] == w.pid and doc["worker_id"]
        assert re.search(r"vbs-worker\[\d+\] INFO vbs.process: vbs worker starting: "
                         r"database=postgresql\+psycopg://postgres@", w.log())
        assert "vbs worker ready" in w.log()
    ids = {s.ready()["scheduler_id"] for s in c.schedulers}
    rows = wait_for("a leader", lambda: c.sql("SELECT owner FROM leases WHERE name = 'scheduler'"))
    assert len(rows) == 1 and rows[0].owner in ids
    wait_for("one 'became leader' line",
             lambda: sum("became leader" in s.log() for s in c.schedulers) == 1, timeout=10)

    # A process started on a schema `vbs db upgrade` has not brought up to date refuses.
    empty = c.pg.create()
    config = c.dep.write_config(empty, c.dep.workdir / "empty.toml")
    r = c.dep.cli("worker", config=config)
    assert r.returncode == 1 and "run `vbs db upgrade`" in r.stderr, r.stderr


# --------------------------------------------------------------------------- 100 backups


def test_hundred_backups_through_two_apis_each_run_once_and_restore(
        cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    clients = [c.a, c.b]
    volumes = [clients[i % 2].volume(f"v{i}") for i in range(20)]
    made: dict[str, tuple[str, str]] = {}  # job id -> (volume, digest at backup time)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int, volume: str) -> None:
        try:
            path = c.a.volume_file(volume)
            for k in range(5):
                write(path, (k * 3 + i) * 128 * KIB, seed=i * 10 + k)
                digest = content_digest(path)
                job_id = backup(clients[(i + k) % 2], volume, f"b{i}-{k}")
                with lock:
                    made[job_id] = (volume, digest)
                row = wait_job(c, job_id, poll=0.3)
                assert row.status == "SUCCESS", (row.error_code, row.fail_reason)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, v)) for i, v in enumerate(volumes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[0]
    assert len(made) == 100

    # No job ran twice: one attempt each, never resumed, one start line in all worker logs.
    rows = c.sql("SELECT id, status, attempts, lease_losses, resumed, entities FROM jobs "
                 "WHERE job_type = :t", t=CREATE)
    ours = {r.id: r for r in rows if r.id in made}
    assert len(ours) == 100
    assert all(r.status == "SUCCESS" and r.attempts == 1 and r.lease_losses == 0
               and not r.resumed for r in ours.values())
    logs = c.worker_logs()
    starts = Counter(re.findall(r"job ([0-9a-f-]{36}) \(bksCreateBackup\) started by", logs))
    assert all(starts[j] == 1 for j in made), [j for j in made if starts[j] != 1]
    by_worker = Counter(w.name for w in c.workers for j in made if f"job {j} (" in w.log())
    assert len(by_worker) == 2, by_worker  # both workers took part

    # The repository holds exactly these backups once each, and no chunk twice.
    backup_ids = {str(r.entities["backup_id"]): made[r.id] for r in ours.values()}
    repo = c.dep.repository()
    project = c.a.project
    assert set(backup_ids) <= set(repo.project(project).backup_ids())
    assert_no_chunk_stored_twice(repo, project)
    db_rows = c.sql("SELECT id, status FROM backups WHERE id IN :ids".replace(
        ":ids", "(" + ",".join(f"'{b}'" for b in backup_ids) + ")"))
    assert {r.id for r in db_rows if r.status == "available"} == set(backup_ids)

    # Every backup restores byte-identically (engine over the S3 repository) ...
    index = repo.project(project).load_index()  # once: every restore would list ~100 files
    for backup_id, (_volume, digest) in backup_ids.items():
        assert restored_digest(repo, project, backup_id, tmp_path / "r.img", index) == digest
    # ... and through the API and a worker, on both APIs.
    for api, (backup_id, (_volume, digest)) in zip(clients, list(backup_ids.items())[:2],
                                                   strict=True):
        target = api.volume("restored")
        r = api("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                json={"restore": {"volume_id": target}})
        assert r.status_code == 200, r.text
        assert wait_job(c, r.json()["job_id"]).status == "SUCCESS"
        assert content_digest(api.volume_file(target)) == digest


# --------------------------------------------------------------------------- scheduler


def _policy(api: ProjectClient, volumes: list[str]) -> str:
    r = api("POST", "/v2/{p}/backuppolicy", json={
        "backup_policy_name": "slots", "scheduled_policy": {
            "start_time": "02:00", "frequency": 1, "status": "ON", "rentention_num": 10}})
    assert r.status_code == 200, r.text
    policy = str(r.json()["backup_policy_id"])
    r = api("POST", "/v2/{p}/backuppolicyresources", json={
        "backup_policy_id": policy,
        "resources": [{"resource_id": v, "resource_type": "volume"} for v in volumes]})
    assert r.status_code == 200 and r.json()["fail_resources"] == [], r.text
    return policy


def _fire_slot(c: Cluster, policy: str, volumes: list[str]) -> list[Any]:
    """Make the policy's next slot due now; wait until its tasks ended; return them."""
    slot = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    before = len(c.sql("SELECT id FROM backup_policy_tasks WHERE policy_id = :p", p=policy))
    c.sql("UPDATE backup_policies SET next_run_at = :t WHERE id = :p", t=slot, p=policy)

    def done() -> list[Any] | None:
        rows = c.sql("SELECT * FROM backup_policy_tasks WHERE policy_id = :p", p=policy)
        if len(rows) >= before + len(volumes) and all(
                r.status not in ("WAITING", "RUNNING") for r in rows):
            return rows
        return None

    wait_for("policy tasks", done, timeout=90, poll=0.2)
    time.sleep(2.0)  # four more ticks of every scheduler: nothing more may fire
    rows = c.sql("SELECT * FROM backup_policy_tasks WHERE policy_id = :p "
                 "ORDER BY created_at", p=policy)
    return rows[before:]


def test_policy_slots_fire_once_and_leadership_moves_when_the_leader_dies(
        cluster: Cluster) -> None:
    c = cluster
    volumes = [c.a.volume("p0"), c.a.volume("p1")]
    for i, v in enumerate(volumes):
        write(c.a.volume_file(v), 0, seed=900 + i)
    policy = _policy(c.a, volumes)

    tasks = _fire_slot(c, policy, volumes)
    assert sorted(t.volume_id for t in tasks) == sorted(volumes)
    assert all(t.status == "EXECUTE_SUCCESS" and t.trigger == "schedule" for t in tasks), tasks
    assert len({t.slot_at for t in tasks}) == 1
    (nxt,) = c.sql("SELECT next_run_at FROM backup_policies WHERE id = :p", p=policy)
    assert nxt.next_run_at > dt.datetime.now(dt.UTC)

    # Kill the leader: the standby takes the lease once it expires, and fires the next slot once.
    (lease,) = c.sql("SELECT owner FROM leases WHERE name = 'scheduler'")
    leader = next(s for s in c.schedulers if s.ready()["scheduler_id"] == lease.owner)
    leader.stop(signal.SIGKILL)
    standby = next(s for s in c.schedulers if s is not leader)
    wait_for("the standby to lead", lambda: c.sql(
        "SELECT owner FROM leases WHERE name = 'scheduler' AND owner = :o",
        o=standby.ready()["scheduler_id"]), timeout=15, poll=0.2)
    tasks = _fire_slot(c, policy, volumes)
    assert sorted(t.volume_id for t in tasks) == sorted(volumes)
    assert all(t.status == "EXECUTE_SUCCESS" for t in tasks), tasks
    c.start_scheduler()

    # A leader stopped cleanly hands the lease over at once (row deleted).
    owner = standby.ready()["scheduler_id"]
    assert standby.stop() == 0
    assert "leadership released" in standby.log()
    rows = c.sql("SELECT owner FROM leases WHERE name = 'scheduler'")
    assert all(r.owner != owner for r in rows)
    c.start_scheduler()


# --------------------------------------------------------------------------- worker faults


def _owner_proc(c: Cluster, job_id: str) -> Proc | None:
    row = c.job(job_id)
    if row.status != "RUNNING" or not row.lease_owner:
        return None
    pid = int(row.lease_owner.split(":")[1])
    return next((w for w in c.workers if w.pid == pid), None)


def test_worker_killed_mid_backup_and_mid_restore_another_finishes_without_reupload(
        cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    vol = c.b.volume("big")
    path = c.b.volume_file(vol)
    fill_random(path, 80 * MIB)
    digest = content_digest(path)
    repo = c.dep.repository()
    project = c.b.project
    before = pack_names(repo, project)

    c.proxy.set_mode("slow", rate=12 * MIB)  # ~3 s per 32 MiB pack: room to kill in between
    try:
        job_id = backup(c.b, vol, "killed")
        victim = wait_for("a worker running the job", lambda: _owner_proc(c, job_id))
        wait_for("a stored pack", lambda: pack_names(repo, project) - before,
                 timeout=60, poll=0.05)
        victim.stop(signal.SIGKILL)
        assert c.job(job_id).status == "RUNNING"  # killed mid-backup, not after it
        stored = {p: ids for p, ids in pack_entries(repo, project).items() if p not in before}
    finally:
        c.proxy.set_mode("pass")
    c.start_worker()
    row = wait_job(c, job_id)
    assert row.status == "SUCCESS", row.fail_reason
    assert row.resumed and row.attempts == 2 and row.lease_losses == 1
    assert "resumed: indexed" in c.worker_logs()
    after = assert_no_chunk_stored_twice(repo, project)
    assert set(stored) <= set(after)  # what the dead worker stored was kept and used
    backup_id = str(row.entities["backup_id"])
    assert restored_digest(repo, project, backup_id, tmp_path / "r.img") == digest

    # Mid-restore: the restore job is resumed by another worker, byte-identical in the end.
    target = c.b.volume("target")
    c.proxy.set_mode("slow", rate=12 * MIB)
    try:
        r = c.b("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                json={"restore": {"volume_id": target}})
        assert r.status_code == 200, r.text
        restore_job = r.json()["job_id"]
        victim = wait_for("a worker restoring", lambda: _owner_proc(c, restore_job))
        wait_for("restore progress", lambda: c.job(restore_job).progress_done > 0, poll=0.05)
        victim.stop(signal.SIGKILL)
    finally:
        c.proxy.set_mode("pass")
    c.start_worker()
    row = wait_job(c, restore_job)
    assert row.status == "SUCCESS" and row.resumed and row.lease_losses == 1, row.fail_reason
    assert content_digest(c.b.volume_file(target)) == digest


def test_sigterm_hands_the_running_job_back_at_once(cluster: Cluster) -> None:
    c = cluster
    vol = c.a.volume("term")
    path = c.a.volume_file(vol)
    fill_random(path, 64 * MIB)
    digest = content_digest(path)
    c.proxy.set_mode("slow", rate=8 * MIB)
    try:
        job_id = backup(c.a, vol, "handed-back")
        victim = wait_for("a worker running the job", lambda: _owner_proc(c, job_id))
        wait_for("progress", lambda: c.job(job_id).progress_done > 0, poll=0.05)
        worker_id = victim.ready()["worker_id"]
        assert victim.stop(signal.SIGTERM, timeout=30) == 0
        assert "released on stop, to be resumed" in victim.log()
        assert not victim.ready_file.exists()
        row = c.job(job_id)
        # Handed back: not owned by the stopped worker any more, no lease left to expire.
        assert row.lease_owner is None or not row.lease_owner.startswith(worker_id), row
    finally:
        c.proxy.set_mode("pass")
    c.start_worker()
    row = wait_job(c, job_id)
    assert row.status == "SUCCESS" and row.resumed and row.lease_losses == 0, row
    assert row.attempts == 1
    repo = c.dep.repository()
    assert_no_chunk_stored_twice(repo, c.a.project)
    assert restored_digest(repo, c.a.project, str(row.entities["backup_id"]),
                           c.dep.workdir / "term.img") == digest


def test_api_process_killed_mid_requests_leaves_no_half_created_records(
        cluster: Cluster) -> None:
    c = cluster
    api_proc = c.dep.proc_of(c.api_a.process.pid)
    volumes = [c.b.volume(f"k{i}") for i in range(8)]
    for i, v in enumerate(volumes):
        write(c.b.volume_file(v), 0, seed=700 + i)
    outcomes: list[int | str] = []

    def hit(v: str) -> None:
        import httpx

        api = ProjectClient(c.api_a)
        try:
            r = api("POST", "/v2/{p}/cloudbackups", json={"backup": {"volume_id": v, "name": "k"}})
            outcomes.append(r.status_code)
        except httpx.TransportError as exc:
            outcomes.append(type(exc).__name__)

    victim = pids_of(api_proc)[0]
    threads = [threading.Thread(target=hit, args=(v,)) for v in volumes]
    for t in threads[:4]:
        t.start()
    os.kill(victim, signal.SIGKILL)
    for t in threads[4:]:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 8
    # The supervisor replaced the killed process; the API answers again.
    wait_for("a replacement api process", lambda: "starting a new one" in api_proc.log(),
             timeout=20, poll=0.2)
    wait_for("requests served", lambda: ProjectClient(c.api_a)(
        "GET", "/v3/{p}/backups").status_code == 200, timeout=30, poll=0.2)
    # Every backup row has its create job and every such job its row; each ends SUCCESS.
    ids = "(" + ",".join(f"'{v}'" for v in volumes) + ")"
    backups = c.sql(f"SELECT id, volume_id FROM backups WHERE volume_id IN {ids}")
    jobs = [j for j in c.sql("SELECT id, status, entities FROM jobs WHERE job_type = :t",
                             t=CREATE) if j.entities.get("volume_id") in volumes]
    assert sorted(b.id for b in backups) == sorted(j.entities["backup_id"] for j in jobs)
    ok = sum(1 for o in outcomes if o == 200)
    lost = sum(1 for o in outcomes if isinstance(o, str))  # reset: committed or not
    assert ok <= len(backups) <= ok + lost, outcomes
    assert all(o == 200 or isinstance(o, str) for o in outcomes), outcomes
    for j in jobs:
        assert wait_job(c, j.id).status == "SUCCESS"
    status = c.sql(f"SELECT status FROM volumes WHERE id IN {ids}")
    assert {s.status for s in status} == {"available"}


# --------------------------------------------------------------------------- S3 faults


def test_s3_errors_slowness_and_drops_are_retried_then_fail_clearly(
        cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    vol = c.a.volume("flaky")
    path = c.a.volume_file(vol)
    fill_random(path, 40 * MIB)
    digest = content_digest(path)
    repo = c.dep.repository()
    project = c.a.project

    # 503s for a while, then healthy: retried with backoff, the backup succeeds.
    c.proxy.set_mode("503")
    refused = c.proxy.refused
    job_id = backup(c.a, vol, "after-503")
    wait_for("503s met", lambda: c.proxy.refused > refused + 2, timeout=30)
    time.sleep(1.0)
    c.proxy.set_mode("pass")
    row = wait_job(c, job_id)
    assert row.status == "SUCCESS", row.fail_reason
    assert restored_digest(repo, project, str(row.entities["backup_id"]),
                           tmp_path / "a.img") == digest

    # Slow, then connections dropped mid-transfer, then healthy: still one good backup.
    fill_random(path, 40 * MIB)
    digest = content_digest(path)
    c.proxy.set_mode("slow", rate=8 * MIB, delay=0.2)
    job_id = backup(c.a, vol, "after-drops")
    wait_for("the job running", lambda: c.job(job_id).status == "RUNNING", timeout=30)
    time.sleep(1.5)
    dropped = c.proxy.dropped
    c.proxy.set_mode("drop")
    wait_for("drops met", lambda: c.proxy.dropped > dropped, timeout=30)
    time.sleep(1.0)
    c.proxy.set_mode("pass")
    row = wait_job(c, job_id)
    assert row.status == "SUCCESS", row.fail_reason
    assert restored_digest(repo, project, str(row.entities["backup_id"]),
                           tmp_path / "b.img") == digest

    # An outage that lasts: the job fails with the storage error, the backup is `error`,
    # no manifest exists for it, the volume is usable again.
    c.proxy.set_mode("503")
    try:
        job_id = backup(c.a, vol, "outage")
        row = wait_job(c, job_id, timeout=120)
    finally:
        c.proxy.set_mode("pass")
    from vbs.service.codes import VB_BACKUP_CREATE_FAILED

    assert row.status == "FAIL" and row.error_code == VB_BACKUP_CREATE_FAILED.code, row
    assert row.attempts == row.max_attempts
    assert "s3 backend" in row.fail_reason, row.fail_reason
    backup_id = str(row.entities["backup_id"])
    (b,) = c.sql("SELECT status, fail_reason FROM backups WHERE id = :i", i=backup_id)
    assert b.status == "error" and "s3 backend" in b.fail_reason
    assert backup_id not in repo.project(project).backup_ids()
    (v,) = c.sql("SELECT status FROM volumes WHERE id = :i", i=vol)
    assert v.status == "available"
    r = c.a("GET", f"/v3/{{p}}/backups/{backup_id}")
    assert r.status_code == 200 and r.json()["backup"]["status"] == "error", r.text


# --------------------------------------------------------------------------- PostgreSQL restart


def test_postgresql_restart_processes_reconnect_and_carry_on(cluster: Cluster) -> None:
    c = cluster
    tool = shutil.which("pg_ctlcluster")
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                              check=False).stdout.split() if shutil.which("pg_lsclusters") else []
    if tool is None or os.geteuid() != 0 or len(clusters) < 2:
        pytest.skip("pg_ctlcluster not available as root: cannot restart PostgreSQL here")
    version, name = clusters[0], clusters[1]
    vol = c.b.volume("after-restart")
    write(c.b.volume_file(vol), 0, seed=4242)
    digest = content_digest(c.b.volume_file(vol))
    redirect = [] if Path("/run/systemd/system").is_dir() else ["--skip-systemctl-redirect"]
    r = subprocess.run([tool, *redirect, version, name, "restart", "--mode", "fast"],
                       capture_output=True, text=True, timeout=60, check=False)
    if r.returncode != 0:
        pytest.skip(f"pg_ctlcluster restart failed: {r.stderr.strip()}")
    wait_for("PostgreSQL back", lambda: _pg_up(c), timeout=30, poll=0.2)
    # Both APIs, a worker and the scheduler leadership carry on without a restart.
    job_id = None
    for api in (c.a, c.b):
        r = api("GET", "/v3/{p}/backups")
        if r.status_code != 200:  # the first request after the restart may meet a dead socket
            r = api("GET", "/v3/{p}/backups")
        assert r.status_code == 200, r.text
    job_id = backup(c.b, vol, "after-restart")
    row = wait_job(c, job_id)
    assert row.status == "SUCCESS", row.fail_reason
    repo = c.dep.repository()
    assert restored_digest(repo, c.b.project, str(row.entities["backup_id"]),
                           c.dep.workdir / "pg.img") == digest
    assert all(p.alive() for p in c.live_workers())
    wait_for("a scheduler lease", lambda: c.sql(
        "SELECT owner FROM leases WHERE name = 'scheduler' AND expires_at > now()"),
        timeout=20, poll=0.2)


def _pg_up(c: Cluster) -> bool:
    try:
        c.sql("SELECT 1")
    except Exception:  # noqa: BLE001 - still starting
        return False
    return True


# --------------------------------------------------------------------------- disaster recovery


def test_disaster_recovery_rebuilds_every_backup_from_s3(cluster: Cluster) -> None:
    c = cluster
    cols = ("id, project_id, name, description, volume_id, size_gb, volume_size_bytes, "
            "parent_id, is_incremental, tags, metadata, source, policy_id, created_at")
    before = {r.id: r for r in c.sql(f"SELECT {cols} FROM backups WHERE status = 'available'")}
    assert len(before) > 100
    fresh = c.pg.create()
    config = c.dep.write_config(fresh, c.dep.workdir / "dr.toml")
    assert c.dep.cli("db", "upgrade", config=config).returncode == 0
    r = c.dep.cli("admin", "recover", "--from-repository", config=config, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"recovered {len(before)} backups" in r.stdout, r.stdout
    again = c.dep.cli("admin", "recover", "--from-repository", config=config)
    assert "recovered 0 backups" in again.stdout and again.returncode == 0
    engine = c.dep.engine(fresh)
    try:
        with engine.begin() as conn:
            after = {row.id: row for row in conn.execute(text(f"SELECT {cols} FROM backups"))}
    finally:
        engine.dispose()
    assert set(after) == set(before)
    for backup_id, old in before.items():
        assert tuple(after[backup_id]) == tuple(old), backup_id

    # A service on the recovered database lists and restores them.
    api = c.dep.api("api-dr", config=config)
    worker = c.dep.start("worker-dr", "worker", config=config)
    try:
        client = ProjectClient(api)
        assert client.project == c.a.project  # the admin project kept its id
        r = client("GET", "/v3/{p}/backups", params={"limit": 1000})
        assert r.status_code == 200
        listed = {b["id"] for b in r.json()["backups"]}
        mine = {i for i, row in before.items() if row.project_id == client.project}
        assert mine <= listed
        backup_id = sorted(mine)[0]
        target = client.volume("dr-target")
        r = client("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                   json={"restore": {"volume_id": target}})
        assert r.status_code == 200, r.text
        job = client.wait_job(r.json()["job_id"])
        assert job["status"] == "SUCCESS", job
        repo = c.dep.repository()
        expected = restored_digest(repo, client.project, backup_id, c.dep.workdir / "dr.img")
        assert content_digest(client.volume_file(target)) == expected
    finally:
        worker.stop()
        c.dep.proc_of(api.process.pid).stop()
