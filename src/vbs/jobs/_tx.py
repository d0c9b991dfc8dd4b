"""Transaction and time helpers shared by the queue's write operations."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.session import Database
from vbs.jobs.errors import InvalidJob

__all__ = ["now_utc", "resource_lock_key", "write_session"]


def now_utc(now: dt.datetime | None) -> dt.datetime:
    """``now`` in UTC (the real time when None); naive datetimes are refused."""
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise InvalidJob("now must be timezone-aware")
    return now.astimezone(dt.UTC)


@contextmanager
def write_session(db: Database) -> Iterator[Session]:
    """A write transaction; on SQLite it takes the write lock up front.

    A deferred SQLite transaction that reads and then writes can fail with
    SQLITE_BUSY without waiting when another writer committed meanwhile;
    ``BEGIN IMMEDIATE`` waits (busy_timeout) instead and makes reads current.
    """
    with db.session() as session:
        if db.is_sqlite:
            session.execute(text("BEGIN IMMEDIATE"))
        yield session


def resource_lock_key(resource_key: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_xact_lock`` on a resource."""
    digest = hashlib.blake2b(resource_key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
