"""Scheduler leadership through a database lease: any number of schedulers
may run, one of them (the *leader*) ticks.

A lease is a row of the ``leases`` table (name ``scheduler``): ``owner`` and
``expires_at``. :func:`acquire` takes or renews it with one conditional
``UPDATE ... WHERE name = ? AND (owner = me OR expires_at < now)``, inserting
the row when it does not exist yet; the database decides who won (PostgreSQL
re-checks the WHERE after the row lock, SQLite serialises writers, a
concurrent INSERT loses on the primary key). :class:`LeaderScheduler` runs a
:class:`~vbs.scheduler.scheduler.Scheduler` only while it holds the lease,
renewing it every ``renew_seconds`` (a third of the lease by default) and
deleting it on a clean stop, so a stopped leader hands over at once and a
killed one after ``lease_seconds``.

Leadership is an efficiency and clarity measure, not the correctness
guarantee: a leader that stalls past its lease (a long GC pause, a frozen
VM) may tick once more beside its successor, and a slot still fires once
because every slot is claimed with the conditional ``UPDATE`` of
``next_run_at`` described in :mod:`vbs.scheduler.scheduler`.

=================================  ===========================================
overlapping operations             what makes it safe
=================================  ===========================================
two schedulers acquire at once     one conditional UPDATE / INSERT wins
leader stalls, successor ticks     slot claims are conditional UPDATEs
leader stops cleanly               lease row deleted: next acquire wins
leader killed (-9)                 lease expires after ``lease_seconds`` (at
                                   once when the dead owner was on this host)
database restarted                 acquire fails, logged; retried next round;
                                   no tick without a renewed lease
=================================  ===========================================
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from vbs.db.base import utcnow
from vbs.db.models_leases import Lease
from vbs.db.session import Database
from vbs.scheduler.scheduler import Scheduler

__all__ = ["LeaderScheduler", "SCHEDULER_LEASE", "acquire", "holder", "release"]

log = logging.getLogger(__name__)

SCHEDULER_LEASE = "scheduler"


def _dead_local(owner: str) -> bool:
    """True when ``owner`` (``host:pid:nonce``) names a process of this host that is gone."""
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(db: Database, name: str, owner: str, *, lease_seconds: float,
            now: dt.datetime | None = None) -> bool:
    """Take or renew lease ``name`` for ``owner``; True when ``owner`` holds it now.

    A lease held by a process of this host that no longer exists (the
    embedded ``vbs serve`` killed and started again) is taken over at once
    instead of after its expiry.
    """
    stamp = now or utcnow()
    expires = stamp + dt.timedelta(seconds=lease_seconds)
    with db.session() as session:
        current = session.execute(
            select(Lease.owner).where(Lease.name == name)).scalar_one_or_none()
        takeover = Lease.expires_at < stamp
        if current is not None and current != owner and _dead_local(current):
            takeover = takeover | (Lease.owner == current)
        result = cast(CursorResult[Any], session.execute(
            update(Lease)
            .where(Lease.name == name, (Lease.owner == owner) | takeover)
            .values(owner=owner, expires_at=expires, renewed_at=stamp)
            .execution_options(synchronize_session=False)
        ))
        if result.rowcount == 1:
            return True
        if session.get(Lease, name) is not None:
            return False
    try:
        with db.session() as session:
            session.add(Lease(name=name, owner=owner, expires_at=expires, acquired_at=stamp,
                              renewed_at=stamp))
    except (IntegrityError, OperationalError):
        return False  # another process inserted it first
    return True


def release(db: Database, name: str, owner: str) -> bool:
    """Give lease ``name`` up if ``owner`` holds it; True when a row was removed."""
    with db.session() as session:
        result = cast(CursorResult[Any], session.execute(
            delete(Lease).where(Lease.name == name, Lease.owner == owner)
            .execution_options(synchronize_session=False)
        ))
        return bool(result.rowcount == 1)


def holder(db: Database, name: str, *, now: dt.datetime | None = None) -> str | None:
    """The owner of a live lease ``name``, or None."""
    stamp = now or utcnow()
    with db.session() as session:
        row = session.execute(select(Lease).where(Lease.name == name)).scalar_one_or_none()
        if row is None or row.expires_at < stamp:
            return None
        return row.owner


class LeaderScheduler:
    """Runs ``scheduler.tick()`` every ``tick_seconds`` while holding the lease.

    Same ``start()``/``stop()`` shape as :class:`Scheduler`, so the runtime
    treats both alike. ``is_leader`` is what the last acquire said.
    """

    def __init__(self, scheduler: Scheduler, db: Database, *, tick_seconds: float = 30.0,
                 lease_seconds: float = 30.0, renew_seconds: float | None = None,
                 owner: str | None = None, name: str = SCHEDULER_LEASE) -> None:
        self.scheduler = scheduler
        self.db = db
        self.name = name
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.tick_seconds = tick_seconds
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds or lease_seconds / 3
        self.is_leader = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vbs-scheduler-leader",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking and hand the lease back at once (no wait for expiry)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.is_leader:
            try:
                release(self.db, self.name, self.owner)
                log.info("scheduler %s: leadership released", self.owner)
            except SQLAlchemyError:
                log.warning("scheduler %s: could not release the lease; it expires in %ss",
                            self.owner, self.lease_seconds)
            self.is_leader = False

    def step(self, last_tick: float | None) -> float | None:
        """One round: renew/acquire, tick when due; returns the time of the last tick."""
        try:
            leader = acquire(self.db, self.name, self.owner, lease_seconds=self.lease_seconds)
        except SQLAlchemyError as exc:
            log.warning("scheduler %s: lease check failed (%s); not ticking",
                        self.owner, type(exc).__name__)
            leader = False
        if leader != self.is_leader:
            log.info("scheduler %s: %s", self.owner,
                     "became leader" if leader else "is standby (another scheduler leads)")
            self.is_leader = leader
        if not leader:
            return None
        now = time.monotonic()
        if last_tick is not None and now - last_tick < self.tick_seconds:
            return last_tick
        try:
            self.scheduler.tick()
        except Exception:  # keep scheduling; the next tick retries
            log.exception("scheduler tick failed")
        return now

    def _loop(self) -> None:
        last: float | None = None
        while not self._stop.is_set():
            last = self.step(last)
            self._stop.wait(min(self.renew_seconds, self.tick_seconds))
