"""Reuse a read's result on SQLite while the database has not changed.

A list page is read far more often than the backups under it change
(dashboards and scripts poll it), and on the embedded SQLite default its
query, 100 wide rows through the driver and the ORM's type processing,
was the largest part of what the request cost. A cache is only as good as
its change stamp, and SQLite has an exact one per connection:

* ``PRAGMA data_version`` changes whenever *another* connection, in this
  process or any other, has committed a change since this connection last
  looked (it is checked at the start of each read transaction, and stays
  fixed inside one);
* ``sqlite3.Connection.total_changes`` counts the rows *this* connection
  has inserted, updated or deleted (committed or not), which the pragma
  does not see.

Together they say "the database this connection reads is the one it read
before", so a result stored under a stamp is the result the same query
would give again, whatever table was written (a share, a child backup, a
status). Results live in the pooled DBAPI connection's ``info`` dict:
each connection has its own stamp, and a connection is used by one thread
at a time. A result is stored under the stamp read *before* computing it:
if a commit lands meanwhile, the result may be newer than the stamp says,
never older, and the connection's next stamp differs anyway (data_version
only moves forward), so it is not served again. Other databases
(PostgreSQL) have no such stamp here; for them :func:`cached_read` just
computes.

Never inside a transaction with uncommitted writes on this connection: a
result could hold rows a rollback then takes back, and neither number of
the stamp moves back with them, so such a read is computed and not kept.

Only for pure reads of the database whose results are immutable (frozen
records, tuples): a hit hands the same objects to every caller.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from typing import TypeVar, cast

from sqlalchemy.orm import Session

__all__ = ["MAX_ENTRIES", "cached_read"]

T = TypeVar("T")

MAX_ENTRIES = 4
"""Results kept per connection for its current stamp; when full the
connection's entries are dropped. A list page of 100 records is about
250 KiB, so a process's 30 pooled SQLite connections hold at most about
30 MiB; with last-in first-out pooling one or two of them serve the reads."""

_INFO_KEY = "vbs.read_cache"
_MISS = object()


def _stamp(dbapi_connection: sqlite3.Connection) -> tuple[int, int]:
    (version,) = dbapi_connection.execute("PRAGMA data_version").fetchone()
    return int(version), int(dbapi_connection.total_changes)


def cached_read(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or its earlier result for ``key`` on this session's
    connection while the database is unchanged (module docstring).

    ``key`` must name everything ``compute`` depends on besides the
    database (the project, the parsed query); an exception is never stored.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return compute()
    pooled = connection.connection
    dbapi_connection = cast(sqlite3.Connection, pooled.dbapi_connection)
    if dbapi_connection.in_transaction:
        # This connection has written and not yet committed (the driver opens
        # a transaction at the first write, never for a read): a result read
        # now may include rows a rollback takes back, which no stamp shows.
        return compute()
    before = _stamp(dbapi_connection)
    stamp, entries = pooled.info.get(_INFO_KEY, (None, None))
    if stamp == before and entries is not None:
        hit = entries.get(key, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[no-any-return]
    else:
        entries = {}
        pooled.info[_INFO_KEY] = (before, entries)
    value = compute()
    if len(entries) >= MAX_ENTRIES:
        entries.clear()
    entries[key] = value
    return value
