"""The scheduler loop: fire each due policy slot exactly once, across processes.

``Scheduler(db, port, clock, settings)`` has ``tick(now)`` (one pass, used
directly by tests with a simulated clock) and ``start()``/``stop()`` (a
daemon thread calling ``tick`` every ``settings.tick_seconds``). Nothing runs
at construction.

A tick:

1. reads the due policies — ``next_run_at <= now`` through the index on
   ``next_run_at``, at most ``batch_size`` rows, oldest slot first. One query
   however many policies exist; nothing else is scanned;
2. for each, in its own transaction, *claims* the slot with a conditional
   ``UPDATE ... SET next_run_at = <next slot after now> WHERE id = ? AND
   next_run_at = <slot read>``. Only one scheduler's UPDATE matches (PostgreSQL
   re-checks the WHERE after the row lock; SQLite serialises writers), so a
   slot fires once however many schedulers run. The loser moves on;
3. the winner, in the same transaction, runs the policy (tasks + backup jobs
   through the :class:`BackupPort`), so claim and work commit together;
4. every ``housekeeping_seconds``: tasks unfinished after
   ``task_timeout_seconds`` turn ``EXECUTE_TIMEOUT``, tasks older than
   ``task_keep_days`` are deleted.

Missed slots (the service was down): the latest slot at or before ``now``
runs once if it is at most ``missed_run_grace_seconds`` old; every earlier
missed slot — or all of them, past the grace window — is recorded as one
``SKIP`` task per disk saying why. Never more than one run per claim.

Concurrency:

=================================  ===========================================
overlapping operations             what makes it safe
=================================  ===========================================
two schedulers, same slot          conditional UPDATE of ``next_run_at``
scheduler and policy modify        modify rewrites ``next_run_at``; a claim
                                   read before the modify no longer matches
scheduler and run now (#29)        independent: both may create tasks; the
                                   port refuses a busy disk (task ``SKIP``)
scheduler and policy delete        delete removes the row; the claim matches
                                   nothing
=================================  ===========================================
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vbs.db.models_policies import BackupPolicy
from vbs.db.session import Database
from vbs.scheduler.ports import BackupPort, Clock
from vbs.scheduler.runs import PolicyRef, expire_tasks, record_missed_slots, run_policy
from vbs.scheduler.schedule import (
    Schedule,
    latest_run_at_or_before,
    next_run_after,
    parse_time_zone,
)

__all__ = ["Scheduler", "SchedulerSettings", "TickReport", "schedule_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Scheduler knobs (to become a ``[scheduler]`` settings section)."""

    tick_seconds: float = 30.0
    missed_run_grace_seconds: int = 3600
    batch_size: int = 200
    task_timeout_seconds: int = 24 * 3600
    task_keep_days: int = 30
    housekeeping_seconds: int = 300


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one tick did (for logs and tests)."""

    due: int = 0
    fired: int = 0
    skipped_missed: int = 0
    lost_race: int = 0
    tasks: int = 0


def schedule_of(policy: BackupPolicy) -> Schedule:
    """The :class:`Schedule` stored on a policy row (validated at write time)."""
    offset = parse_time_zone(policy.time_zone) if policy.time_zone else None
    hours = tuple(int(part[:2]) for part in policy.start_time.split(","))
    return Schedule(hours=hours, frequency=policy.frequency,
                    weekdays=frozenset(policy.week_frequency or ()),
                    utc_offset_minutes=offset)


@dataclass(frozen=True, slots=True)
class _Due:
    ref: PolicyRef
    slot: dt.datetime
    schedule: Schedule


class Scheduler:
    """Fires policy slots; see the module docstring."""

    def __init__(self, db: Database, port: BackupPort, clock: Clock,
                 settings: SchedulerSettings | None = None) -> None:
        self._db = db
        self._port = port
        self._clock = clock
        self._settings = settings or SchedulerSettings()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping: dt.datetime | None = None

    # ------------------------------------------------------------------ loop

    def start(self) -> None:
        """Start the background thread (idempotent). Ticks once immediately."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="vbs-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread and wait for the tick in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep scheduling; the next tick retries
                log.exception("scheduler tick failed")
            self._stop.wait(self._settings.tick_seconds)

    # ------------------------------------------------------------------ tick

    def tick(self, now: dt.datetime | None = None) -> TickReport:
        """One pass at ``now`` (default: the clock)."""
        now = now or self._clock()
        with self._db.session() as session:
            rows = session.execute(
                select(BackupPolicy)
                .where(BackupPolicy.next_run_at <= now, BackupPolicy.status == "ON")
                .order_by(BackupPolicy.next_run_at, BackupPolicy.id)
                .limit(self._settings.batch_size)
            ).scalars().all()
            due = [_Due(PolicyRef(p.id, p.project_id), p.next_run_at, schedule_of(p))
                   for p in rows if p.next_run_at is not None]
        fired = skipped = lost = tasks = 0
        for item in due:
            try:
                outcome, count = self._fire(item, now)
            except (IntegrityError, OperationalError) as exc:
                log.warning("policy %s: slot %s not fired (%s); retried next tick",
                            item.ref.id, item.slot.isoformat(), type(exc).__name__)
                continue
            fired += outcome == "fired"
            skipped += outcome == "missed"
            lost += outcome == "lost"
            tasks += count
        self._housekeeping(now)
        return TickReport(len(due), fired, skipped, lost, tasks)

    def _fire(self, item: _Due, now: dt.datetime) -> tuple[str, int]:
        grace = dt.timedelta(seconds=self._settings.missed_run_grace_seconds)
        latest = max(latest_run_at_or_before(item.schedule, now), item.slot)
        following = next_run_after(item.schedule, now)
        with self._db.session() as session:
            if not self._claim(session, item, following, now):
                return "lost", 0
            count = 0
            run_slot = latest if now - latest <= grace else None
            missed_last = latest if run_slot is None else self._before(item.schedule, latest)
            if missed_last is not None and missed_last >= item.slot:
                count += record_missed_slots(session, item.ref, first=item.slot,
                                             last=missed_last, now=now, grace=grace)
            if run_slot is None:
                return "missed", count
            tasks = run_policy(session, self._port, item.ref, now=now, trigger="schedule",
                               slot_at=run_slot)
            return "fired", count + len(tasks)

    @staticmethod
    def _before(schedule: Schedule, slot: dt.datetime) -> dt.datetime:
        return latest_run_at_or_before(schedule, slot - dt.timedelta(microseconds=1))

    @staticmethod
    def _claim(session: Session, item: _Due, following: dt.datetime, now: dt.datetime) -> bool:
        result = cast(CursorResult[Any], session.execute(
            update(BackupPolicy)
            .where(BackupPolicy.id == item.ref.id, BackupPolicy.next_run_at == item.slot,
                   BackupPolicy.status == "ON")
            .values(next_run_at=following, last_run_at=now)
            .execution_options(synchronize_session=False)
        ))
        return bool(result.rowcount == 1)

    def _housekeeping(self, now: dt.datetime) -> None:
        every = dt.timedelta(seconds=self._settings.housekeeping_seconds)
        if self._last_housekeeping is not None and now - self._last_housekeeping < every:
            return
        self._last_housekeeping = now
        with self._db.session() as session:
            expire_tasks(session, now=now,
                         timeout=dt.timedelta(seconds=self._settings.task_timeout_seconds),
                         keep=dt.timedelta(days=self._settings.task_keep_days))
