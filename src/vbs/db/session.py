"""Engine and session factory for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout so the API, the job workers and
the scheduler of one process (and a second process during tests) can share
the file; every connection enables foreign keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Database", "load_json"]


def load_json(text: str | bytes) -> Any:
    """JSON columns as read: orjson (a page of 100 backups decodes 200 of
    them), or the stdlib decoder for what orjson refuses and the stdlib wrote
    (``NaN``, ``Infinity``), so every stored value still reads back."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _private_sqlite_files(url: str) -> None:
    """Create the SQLite file 0600 (and tighten an existing one and its
    ``-wal``/``-shm``): it holds password hashes and token digests.

    SQLite creates ``-wal`` and ``-shm`` with the database file's mode, so a
    0600 database keeps its companions 0600 too.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for item in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with suppress(FileNotFoundError):
            os.chmod(item, 0o600)


class Database:
    """Owns one SQLAlchemy engine and hands out sessions.

    ``url`` is an SQLAlchemy URL: ``sqlite:///path/vbs.db`` or
    ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        if url.startswith("sqlite"):
            _private_sqlite_files(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "json_deserializer": load_json}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            database = make_url(url).database
            if database and database != ":memory:" and "mode=memory" not in url:
                # Enough pooled connections for the API's concurrent requests:
                # an overflow connection is closed on return and the next one
                # pays connect + pragmas again. (In-memory SQLite has no pool.)
                kwargs["pool_size"] = 10
                kwargs["max_overflow"] = 20
                # The connection returned last is handed out next: its SQLite
                # page cache and its vbs.db.read_cache entries are the warm
                # ones (first in, first out rotated every request through
                # all ten, each re-reading after every commit elsewhere).
                kwargs["pool_use_lifo"] = True
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        s = self._factory()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()
