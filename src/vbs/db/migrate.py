"""Bring a database schema up to date with Alembic, programmatically.

``upgrade(url)`` runs ``alembic upgrade heads`` against the migrations packaged
in ``vbs/db/migrations`` (no ``alembic.ini`` at runtime). It is called at every
start of ``vbs serve`` and by every ``vbs admin`` command, so it must be:

* idempotent: a database already at every head is left untouched;
* safe when two processes start at once. PostgreSQL: the whole upgrade runs
  in one transaction holding a transaction-level advisory lock
  (``pg_advisory_xact_lock``), and PostgreSQL DDL is transactional, so the
  second process waits, then finds every head applied. SQLite: an exclusive
  ``flock`` on ``<db file>.migrate.lock`` serialises processes on one host
  (SQLite files are never shared across hosts).

Branches: one Alembic branch per area, each root revision carrying
``branch_labels`` (``identity`` -> ``identity_0001``); cross-area foreign keys
declare ``depends_on``. ``heads`` applies all of them. For developers,
:func:`alembic_config` returns a Config usable with ``alembic.command``
(e.g. ``command.revision(cfg, "msg", head="identity@head")``).
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from vbs.db.session import Database

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "applied_revisions",
    "current_heads",
    "is_current",
    "script_heads",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Stable 63-bit key for pg_advisory_xact_lock, derived from a fixed name.
_PG_LOCK_KEY = zlib.crc32(b"vbs.db.migrate") * 2654435761 % (2**63)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations.

    With ``connection`` the migrations run on it (inside the caller's
    transaction); ``env.py`` never opens connections of its own then.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def upgrade(url: str) -> None:
    """Apply every pending migration of every branch (``upgrade heads``)."""
    db = Database(url)
    try:
        if db.is_sqlite:
            with _sqlite_file_lock(url), db.engine.begin() as conn:
                command.upgrade(alembic_config(conn), "heads")
        else:
            with db.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                command.upgrade(alembic_config(conn), "heads")
    finally:
        db.dispose()


def current_heads(url: str) -> set[str]:
    """Revision ids the database is at (empty before the first upgrade)."""
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        db.dispose()


def applied_revisions(url: str) -> set[str]:
    """Every revision the database has, including those only implied by
    ``depends_on`` (Alembic drops a dependency from ``alembic_version`` once a
    revision of another branch depends on it)."""
    heads = current_heads(url)
    if not heads:
        return set()
    script = ScriptDirectory.from_config(alembic_config())
    return {r.revision for r in script.iterate_revisions(tuple(heads), "base")}


def is_current(url: str) -> bool:
    """True when every branch head of the packaged migrations is applied."""
    return script_heads() <= applied_revisions(url)


def script_heads() -> set[str]:
    """Head revision ids of the packaged migrations (one per branch)."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())
