"""Scheduler leadership through the ``leases`` table, on SQLite and PostgreSQL:
one of several schedulers ticks; a clean stop hands over at once, a dead
leader after its lease."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import fresh_database_url  # noqa: F401 - fixture
from vbs.db.migrate import upgrade
from vbs.db.session import Database
from vbs.scheduler.leadership import LeaderScheduler, acquire, holder, release


class CountingScheduler:
    """Stands in for Scheduler: counts ticks (the slot logic is tested elsewhere)."""

    def __init__(self) -> None:
        self.ticks = 0

    def tick(self, now: Any = None) -> None:
        self.ticks += 1


@pytest.fixture
def db(fresh_database_url: str) -> Iterator[Database]:  # noqa: F811
    upgrade(fresh_database_url)
    database = Database(fresh_database_url)
    yield database
    database.dispose()


def test_one_owner_at_a_time_and_takeover_after_expiry(db: Database) -> None:
    t0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    assert acquire(db, "scheduler", "a", lease_seconds=10, now=t0)
    assert not acquire(db, "scheduler", "b", lease_seconds=10, now=t0 + dt.timedelta(seconds=5))
    assert acquire(db, "scheduler", "a", lease_seconds=10, now=t0 + dt.timedelta(seconds=5))
    assert holder(db, "scheduler", now=t0 + dt.timedelta(seconds=14)) == "a"  # renewed
    late = t0 + dt.timedelta(seconds=16)
    assert holder(db, "scheduler", now=late) is None
    assert acquire(db, "scheduler", "b", lease_seconds=10, now=late)
    assert not acquire(db, "scheduler", "a", lease_seconds=10, now=late)  # a lost it
    assert not release(db, "scheduler", "a")
    assert release(db, "scheduler", "b")
    assert acquire(db, "scheduler", "a", lease_seconds=10, now=late)


def test_concurrent_acquires_elect_exactly_one(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    won: list[str] = []
    barrier = threading.Barrier(6)

    def race(owner: str) -> None:
        barrier.wait()
        if acquire(db, "race", owner, lease_seconds=30, now=now):
            won.append(owner)

    threads = [threading.Thread(target=race, args=(f"s{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and holder(db, "race", now=now) == won[0]


def test_only_the_leader_ticks_and_a_clean_stop_hands_over(db: Database) -> None:
    first, second = CountingScheduler(), CountingScheduler()
    a = LeaderScheduler(first, db, tick_seconds=0.0, lease_seconds=30, owner="a")  # type: ignore[arg-type]
    b = LeaderScheduler(second, db, tick_seconds=0.0, lease_seconds=30, owner="b")  # type: ignore[arg-type]
    last_a = last_b = None
    for _ in range(5):
        last_a = a.step(last_a)
        last_b = b.step(last_b)
    assert (a.is_leader, b.is_leader) == (True, False)
    assert first.ticks == 5 and second.ticks == 0
    a.stop()
    assert holder(db, "scheduler") is None
    b.step(None)
    assert b.is_leader and second.ticks == 1


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(db: Database) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = f"{socket.gethostname()}:{int(gone.stdout)}:0000"
    alive = f"{socket.gethostname()}:{1}:0000"  # pid 1 always exists
    now = dt.datetime.now(dt.UTC)
    assert acquire(db, "scheduler", alive, lease_seconds=60, now=now)
    assert not acquire(db, "scheduler", "me", lease_seconds=60, now=now)
    assert release(db, "scheduler", alive)
    assert acquire(db, "scheduler", dead, lease_seconds=60, now=now)
    assert acquire(db, "scheduler", "me", lease_seconds=60, now=now)
    assert holder(db, "scheduler", now=now) == "me"
