"""vbs.db.read_cache on real SQLite files: a stored result is served only
while no connection, process or this connection itself has changed the database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from vbs.db.read_cache import MAX_ENTRIES, cached_read
from vbs.db.session import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    with database.session() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    yield database
    database.dispose()


class Reader:
    """``SELECT count(*)`` through cached_read, counting real computations."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.computed = 0

    def __call__(self, key: str = "count") -> int:
        with self.db.session() as s:
            def compute() -> int:
                self.computed += 1
                return int(s.execute(text("SELECT count(*) FROM t")).scalar_one())
            return cached_read(s, key, compute)


def _insert(db: Database, value: int) -> None:
    with db.session() as s:
        s.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})


def test_an_unchanged_database_is_read_once(db: Database) -> None:
    read = Reader(db)
    assert [read(), read(), read()] == [0, 0, 0]
    assert read.computed == 1
    assert read("other key") == 0 and read.computed == 2


def test_a_commit_on_the_same_pooled_connection_is_seen(db: Database) -> None:
    read = Reader(db)
    assert read() == 0
    _insert(db, 1)  # the pool hands the same connection back: total_changes moves
    assert read() == 1
    assert read.computed == 2


def test_a_commit_by_another_connection_is_seen(db: Database, tmp_path: Path) -> None:
    read = Reader(db)
    assert read() == 0
    other = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        _insert(other, 1)  # data_version moves for every other connection
    finally:
        other.dispose()
    assert read() == 1


def test_a_commit_by_another_process_is_seen(db: Database, tmp_path: Path) -> None:
    read = Reader(db)
    assert read() == 0
    subprocess.run([sys.executable, "-c",
                    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                    "c.execute('INSERT INTO t VALUES (7)'); c.commit()",
                    str(tmp_path / "cache.db")], check=True)
    assert read() == 1
    assert read() == 1 and read.computed == 2


def test_a_rolled_back_write_only_costs_a_new_read(db: Database) -> None:
    read = Reader(db)
    assert read() == 0
    with pytest.raises(RuntimeError), db.session() as s:
        s.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("roll back")
    assert read() == 0 and read.computed == 2


def test_a_read_inside_a_write_that_rolls_back_is_not_kept(db: Database) -> None:
    read = Reader(db)
    assert read() == 0
    with pytest.raises(RuntimeError), db.session() as s:
        s.execute(text("INSERT INTO t VALUES (1)"))
        assert cached_read(s, "count", lambda: int(
            s.execute(text("SELECT count(*) FROM t")).scalar_one())) == 1  # its own row
        raise RuntimeError("roll back")
    assert read() == 0  # not the 1 the rolled-back transaction saw


def test_a_plain_read_opens_no_transaction(db: Database) -> None:
    """The cache serves only outside write transactions; a read session must
    not look like one, or nothing would ever be reused."""
    with db.session() as s:
        s.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert not s.connection().connection.dbapi_connection.in_transaction


def test_a_result_computed_while_a_commit_landed_is_not_served_again(db: Database,
                                                               tmp_path: Path) -> None:
    other = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    computed = 0

    def racing(s: object) -> int:
        nonlocal computed
        computed += 1
        _insert(other, computed)  # lands between the stamp before and after
        return 0

    try:
        for _ in range(2):
            with db.session() as s:
                cached_read(s, "racing", lambda s=s: racing(s))
    finally:
        other.dispose()
    assert computed == 2


def test_an_exception_is_not_stored(db: Database) -> None:
    calls = 0

    def failing() -> int:
        nonlocal calls
        calls += 1
        raise LookupError("no such marker")

    for _ in range(2):
        with pytest.raises(LookupError), db.session() as s:
            cached_read(s, "failing", failing)
    assert calls == 2


def test_entries_per_connection_are_bounded(db: Database) -> None:
    read = Reader(db)
    for i in range(MAX_ENTRIES + 5):
        read(f"k{i}")
    with db.session() as s:
        info = s.connection().connection.info["vbs.read_cache"]
    assert len(info[1]) <= MAX_ENTRIES


@pytest.mark.postgres
def test_postgresql_always_computes() -> None:
    database = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        calls = 0

        def compute() -> int:
            nonlocal calls
            calls += 1
            return 1

        for _ in range(3):
            with database.session() as s:
                assert cached_read(s, "k", compute) == 1
        assert calls == 3
    finally:
        database.dispose()
