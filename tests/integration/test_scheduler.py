"""The scheduler on real SQLite and PostgreSQL with an in-memory fake BackupPort.

* 90 simulated days of three schedules x three retention rules, checked day by
  day against an independent oracle of which backups must exist;
* two schedulers ticking the same database fire every slot exactly once;
* missed slots: caught up within the grace window, skipped with a reason past it;
* run now (#29) through the service: a task per bound disk, a deleted disk
  gives a failed task with a reason, an unfinished run blocks the next (0225);
* the number of SQL statements per tick with 1,000 policies.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.db.migrate import upgrade
from vbs.db.models_identity import Domain, Project
from vbs.db.models_policies import BackupPolicy, PolicyResource, PolicyTask
from vbs.db.session import Database
from vbs.errors import ServiceError
from vbs.scheduler.ports import BackupRef
from vbs.scheduler.retention import after_policy_backup
from vbs.scheduler.scheduler import Scheduler, SchedulerSettings
from vbs.service import policies as svc
from vbs.service.policy_rules import AssociateRequest, parse_create_policy

UTC = dt.UTC
START = dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC)


# ----------------------------------------------------------------------------- fake port


@dataclass
class FakeBackup:
    id: str
    project_id: str
    volume_id: str
    policy_id: str
    name: str
    created_at: dt.datetime
    status: str
    job_id: str


class FakeBackups:
    """Backups in memory. Submitting creates a ``creating`` backup and a pending job;
    :meth:`complete_all` finishes the jobs like a worker would (and retention runs
    through :func:`after_policy_backup`); deletes complete at once."""

    def __init__(self) -> None:
        self.volumes: set[tuple[str, str]] = set()
        self.backups: dict[str, FakeBackup] = {}
        self.pending: list[str] = []
        self.lock = threading.Lock()
        self.now = START

    def volume_exists(self, session: Session, project_id: str, volume_id: str) -> bool:
        return (project_id, volume_id) in self.volumes

    def submit_policy_backup(self, session: Session, *, project_id: str, volume_id: str,
                             policy_id: str, backup_name: str) -> tuple[str, str]:
        with self.lock:
            if (project_id, volume_id) not in self.volumes:
                raise ServiceError(f"Disk {volume_id} does not exist.", "VolumeBackup.0021", 404)
            if any(b.volume_id == volume_id and b.status == "creating"
                   for b in self.backups.values()):
                raise ServiceError("An earlier backup is still being created.",
                                   "VolumeBackup.0013", 400)
            b = FakeBackup(str(uuid.uuid4()), project_id, volume_id, policy_id, backup_name,
                           self.now, "creating", str(uuid.uuid4()))
            self.backups[b.id] = b
            self.pending.append(b.id)
            return b.job_id, b.id

    def policy_backups(self, session: Session, *, project_id: str, policy_id: str,
                       volume_id: str) -> list[BackupRef]:
        with self.lock:
            return [BackupRef(b.id, b.created_at, b.status) for b in self.backups.values()
                    if (b.project_id, b.policy_id, b.volume_id) == (project_id, policy_id,
                                                                   volume_id)]

    def delete_backup(self, session: Session, *, project_id: str, backup_id: str) -> str:
        with self.lock:
            del self.backups[backup_id]
        return str(uuid.uuid4())

    def complete_all(self, db: Database, now: dt.datetime) -> None:
        while self.pending:
            b = self.backups[self.pending.pop(0)]
            b.status = "available"
            with db.session() as session:
                after_policy_backup(session, self, project_id=b.project_id,
                                    policy_id=b.policy_id, volume_id=b.volume_id,
                                    vbs_job_id=b.job_id, succeeded=True, now=now)

    def of_volume(self, volume_id: str) -> list[dt.datetime]:
        return sorted(b.created_at for b in self.backups.values() if b.volume_id == volume_id)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def db(fresh_database_url: str) -> Iterator[Database]:  # noqa: F811
    upgrade(fresh_database_url)
    database = Database(fresh_database_url)
    with database.session() as s:
        s.add(Domain(id="default", name="Default"))
        s.flush()
        s.add(Project(id="p" * 32, domain_id="default", name="demo"))
    yield database
    database.dispose()


PROJECT = "p" * 32


def _policy(db: Database, port: FakeBackups, body: dict[str, object], volumes: list[str],
            now: dt.datetime = START, limits: svc.PolicyLimits | None = None) -> str:
    with db.session() as s:
        pid = svc.create_policy(s, PROJECT, parse_create_policy(body), now=now,
                                limits=limits or svc.PolicyLimits(max_policies=-1))
    for v in volumes:
        port.volumes.add((PROJECT, v))
    if volumes:
        with db.session() as s:
            svc.associate_volumes(s, port, PROJECT, AssociateRequest(pid, tuple(volumes)),
                                  now=now, limits=svc.PolicyLimits())
    return pid


# ----------------------------------------------------------------------------- 90 days

SCHEDULES = {
    "daily": {"start_time": "02:00", "frequency": 1},
    "every3": {"start_time": "13:00,01:00", "frequency": 3},
    "weekdays": {"start_time": "22:00", "week_frequency": ["MON", "THU"]},
}
RETENTIONS = {
    "num3": {"rentention_num": 3},
    "day5": {"rentention_day": 5},
    "num2_first": {"rentention_num": 2, "remain_first_backup_of_curMonth": "Y"},
}


def _oracle_slots(kind: str, until: dt.datetime) -> list[dt.datetime]:
    """Independent formulation of §2.14 on whole hours."""
    out, t = [], START
    while t <= until:
        if kind == "daily" and t.hour == 2:
            out.append(t)
        if kind == "every3" and t.hour in (1, 13) and (t.day - 1) % 3 == 0:
            out.append(t)
        if kind == "weekdays":  # time_zone UTC+02:00: local date's weekday, local clock T+2h
            local = t + dt.timedelta(hours=2)
            if local.strftime("%a").upper() in ("MON", "THU") and (local.hour - 2) % 24 == 22:
                out.append(t)
        t += dt.timedelta(hours=1)
    return out


def _oracle_kept(slots: list[dt.datetime], retention: str) -> list[dt.datetime]:
    if not slots:
        return []
    last = slots[-1]
    if retention == "num3":
        return slots[-3:]
    if retention == "day5":
        return [s for s in slots if s >= last - dt.timedelta(days=5)]
    month = [s for s in slots if (s.year, s.month) == (last.year, last.month)]
    return sorted(set(slots[-2:]) | {month[0]})


@pytest.mark.slow
def test_ninety_days_day_by_day(db: Database) -> None:
    port = FakeBackups()
    volumes: dict[tuple[str, str], str] = {}
    for sname, sched in SCHEDULES.items():
        for rname, ret in RETENTIONS.items():
            vol = str(uuid.uuid4())
            body = {"backup_policy_name": f"{sname}-{rname}",
                    "scheduled_policy": {**sched, **ret, "status": "ON"}}
            if sname == "weekdays":
                body["time_zone"] = "UTC+02:00"
            _policy(db, port, body, [vol])
            volumes[(sname, rname)] = vol
    clock = {"now": START}
    scheduler = Scheduler(db, port, lambda: clock["now"], SchedulerSettings())
    began = time.perf_counter()
    ticks = 0
    for day in range(90):
        for half_hour in range(48):
            now = START + dt.timedelta(days=day, minutes=30 * half_hour)
            clock["now"] = port.now = now
            scheduler.tick(now)
            port.complete_all(db, now)
            ticks += 1
        end = START + dt.timedelta(days=day + 1) - dt.timedelta(seconds=1)
        for (sname, rname), vol in volumes.items():
            expected = _oracle_kept(_oracle_slots(sname, end), rname)
            assert port.of_volume(vol) == expected, (day, sname, rname)
    elapsed = time.perf_counter() - began
    print(f"\n90 simulated days, {ticks} ticks, 9 policies: {elapsed:.2f} s")
    with db.session() as s:
        statuses = set(s.execute(select(PolicyTask.status)).scalars())
    assert statuses == {"EXECUTE_SUCCESS"}


# ----------------------------------------------------------------------------- two schedulers


def test_two_schedulers_fire_each_slot_once(db: Database) -> None:
    port = FakeBackups()
    hours = ",".join(f"{h:02d}:00" for h in range(24))
    for i in range(8):
        _policy(db, port, {"backup_policy_name": f"hourly{i}", "scheduled_policy": {
            "start_time": hours, "frequency": 1, "rentention_num": 99, "status": "ON"}},
            [str(uuid.uuid4()), str(uuid.uuid4())])
    other = Database(db.url)
    try:
        a = Scheduler(db, port, lambda: START)
        b = Scheduler(other, port, lambda: START)
        fired = {"a": 0, "b": 0}
        for hour in range(1, 25):
            now = START + dt.timedelta(hours=hour, minutes=1)
            port.now = now
            barrier = threading.Barrier(2)

            def run(name: str, sched: Scheduler, at: dt.datetime = now,
                    gate: threading.Barrier = barrier) -> None:
                gate.wait()
                fired[name] += sched.tick(at).fired

            threads = [threading.Thread(target=run, args=("a", a)),
                       threading.Thread(target=run, args=("b", b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            port.complete_all(db, now)
    finally:
        other.dispose()
    assert fired["a"] + fired["b"] == 8 * 24
    with db.session() as s:
        rows = s.execute(select(PolicyTask.policy_id, PolicyTask.volume_id,
                                PolicyTask.slot_at)).all()
    assert len(rows) == 8 * 2 * 24 == len(set(rows))
    assert len(port.backups) == 8 * 2 * 24
    print(f"\nslots fired by scheduler a: {fired['a']}, by b: {fired['b']}")


# ----------------------------------------------------------------------------- missed slots


def test_missed_slots_grace_then_skip(db: Database) -> None:
    port = FakeBackups()
    vol = str(uuid.uuid4())
    pid = _policy(db, port, {"backup_policy_name": "nightly", "scheduled_policy": {
        "start_time": "02:00", "frequency": 1, "rentention_num": 10, "status": "ON"}}, [vol])
    sched = Scheduler(db, port, lambda: START, SchedulerSettings(missed_run_grace_seconds=3600))
    day = dt.timedelta(days=1)
    at = START + dt.timedelta(hours=2, minutes=30)  # 30 min late: within grace
    port.now = at
    assert sched.tick(at).fired == 1
    port.complete_all(db, at)
    at = START + 3 * day + dt.timedelta(hours=2, minutes=20)  # down for two slots
    port.now = at
    report = sched.tick(at)
    assert (report.fired, report.tasks) == (1, 2)
    port.complete_all(db, at)
    at = START + 6 * day + dt.timedelta(hours=5)  # three hours late: beyond grace
    port.now = at
    report = sched.tick(at)
    assert (report.fired, report.skipped_missed, report.tasks) == (0, 1, 1)
    with db.session() as s:
        tasks = s.execute(select(PolicyTask).order_by(PolicyTask.created_at,
                                                      PolicyTask.trigger)).scalars().all()
        policy = s.get(BackupPolicy, pid)
        assert policy is not None
        assert policy.next_run_at == START + 7 * day + dt.timedelta(hours=2)
    assert [(t.trigger, t.status, t.slot_at) for t in tasks] == [
        ("schedule", "EXECUTE_SUCCESS", START + dt.timedelta(hours=2)),
        ("missed", "SKIP", START + day + dt.timedelta(hours=2)),
        ("schedule", "EXECUTE_SUCCESS", START + 3 * day + dt.timedelta(hours=2)),
        ("missed", "SKIP", START + 4 * day + dt.timedelta(hours=2)),
    ]
    assert "2024-01-16T02:00:00+00:00 to 2024-01-17T02:00:00+00:00 missed" in tasks[1].message
    assert "2024-01-19T02:00:00+00:00 to 2024-01-21T02:00:00+00:00 missed" in tasks[3].message
    assert len(port.backups) == 2


# ----------------------------------------------------------------------------- run now


def test_execute_now_tasks_per_disk_and_deleted_disk(db: Database) -> None:
    port = FakeBackups()
    kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
    pid = _policy(db, port, {"backup_policy_name": "manual", "scheduled_policy": {
        "start_time": "02:00", "frequency": 1, "rentention_num": 2, "status": "OFF"}},
        [kept, gone])
    port.volumes.discard((PROJECT, gone))  # the disk is deleted after being bound
    with db.session() as s:
        tasks = svc.execute_policy(s, port, PROJECT, pid, now=START)
        by_vol = {t.volume_id: _summary(t) for t in tasks}
    assert by_vol[kept][:2] == ("WAITING", None) and by_vol[kept][3] is not None
    assert by_vol[gone][:2] == ("EXECUTE_FAIL", "VolumeBackup.0021")
    assert "does not exist" in by_vol[gone][2]
    with pytest.raises(ServiceError) as err, db.session() as s:
        svc.execute_policy(s, port, PROJECT, pid, now=START)
    assert err.value.api_code == "AutoBackup.0225"
    port.complete_all(db, START)
    with db.session() as s:
        assert len(svc.execute_policy(s, port, PROJECT, pid, now=START)) == 2
        statuses = sorted(s.execute(select(PolicyTask.status)).scalars())
    assert statuses == ["EXECUTE_FAIL", "EXECUTE_FAIL", "EXECUTE_SUCCESS", "WAITING"]


def _summary(t: PolicyTask) -> tuple[str, str | None, str | None, str | None]:
    return (t.status, t.code, t.message, t.vbs_job_id)


def test_busy_disk_is_skipped(db: Database) -> None:
    port = FakeBackups()
    vol = str(uuid.uuid4())
    p1 = _policy(db, port, {"backup_policy_name": "one", "scheduled_policy": {
        "start_time": "02:00", "frequency": 1, "rentention_num": 2, "status": "ON"}}, [vol])
    with db.session() as s:
        svc.execute_policy(s, port, PROJECT, p1, now=START)
    sched = Scheduler(db, port, lambda: START)
    sched.tick(START + dt.timedelta(hours=2))
    with db.session() as s:
        skip = s.execute(select(PolicyTask).where(PolicyTask.trigger == "schedule")).scalar_one()
    assert (skip.status, skip.code) == ("SKIP", "VolumeBackup.0013")


# ----------------------------------------------------------------------------- query count


def test_queries_per_tick_with_1000_policies(db: Database) -> None:
    port = FakeBackups()
    far = START + dt.timedelta(days=1, hours=2)
    due_at = START + dt.timedelta(hours=2)
    with db.session() as s:
        for i in range(1000):
            pid = str(uuid.uuid4())
            s.add(BackupPolicy(id=pid, project_id=PROJECT, name=f"p{i}", is_default=False,
                               start_time="02:00", frequency=1, rentention_num=3,
                               remain_first_backup_of_cur_month=False, status="ON",
                               created_at=START, updated_at=START,
                               next_run_at=due_at if i < 10 else far))
            if i < 10:
                vol = str(uuid.uuid4())
                port.volumes.add((PROJECT, vol))
                s.add(PolicyResource(project_id=PROJECT, volume_id=vol, policy_id=pid,
                                     created_at=START))
    sched = Scheduler(db, port, lambda: START)
    sched.tick(START)  # first tick also does housekeeping
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        sched.tick(START + dt.timedelta(minutes=1))
        idle = len(statements)
        statements.clear()
        report = sched.tick(due_at)
        busy = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert report.fired == 10
    print(f"\nSQL statements per tick with 1,000 policies: idle {idle}, "
          f"10 due (1 disk each) {busy}")
    assert idle == 1
    assert busy <= 1 + 10 * 5

