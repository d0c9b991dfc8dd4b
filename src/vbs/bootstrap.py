"""Composition root: the one place that wires settings, database and API.

Order at start: :func:`prepare_data_dir` (directories), :func:`migrate`
(schema at every head), :func:`bootstrap_admin` (first-start identities),
:func:`build_context` (objects the API uses), then ``create_app``. Other
layers plug their objects into :class:`vbs.api.app.AppContext` here (the
repository, the volume driver, the job queue) as they come to exist; no
module below reads settings on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vbs.api.app import AppContext, create_app
from vbs.config import Settings
from vbs.db.migrate import upgrade
from vbs.db.session import Database
from vbs.identity import bootstrap_identity

__all__ = [
    "bootstrap_admin",
    "build_app",
    "build_context",
    "migrate",
    "prepare_data_dir",
    "retry_on_conflict",
]

T = TypeVar("T")


def prepare_data_dir(settings: Settings) -> None:
    """Create the data dir (mode 0700: it holds keys and the admin password)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def migrate(settings: Settings) -> None:
    """Bring the database schema up to date (idempotent, concurrency-safe)."""
    upgrade(settings.database.url)


def retry_on_conflict(db: Database, work: Callable[[Session], T], attempts: int = 5) -> T:
    """Run ``work`` in a unit of work, retrying when a concurrent writer won a race.

    Two processes starting at once on one database both see "no admin yet"
    and both insert; the loser gets a unique violation (or, on SQLite, a
    busy snapshot). Its retry then finds the winner's committed rows.
    """
    for attempt in range(1, attempts + 1):
        try:
            with db.session() as session:
                return work(session)
        except (IntegrityError, OperationalError):
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def bootstrap_admin(db: Database, admin_password: str | None) -> str | None:
    """Create default domain, ``admin`` project and user; return a generated password.

    Safe when several processes start together: only the one that created
    the admin user gets a generated password back.
    """
    return retry_on_conflict(db, lambda session: bootstrap_identity(session, admin_password))


def build_context(settings: Settings, db: Database | None = None) -> AppContext:
    """The API's context. Later: open repository, job queue here."""
    from vbs.volumes import FileVolumeDriver

    return AppContext(
        settings=settings,
        db=db or Database(settings.database.url),
        # Built-in volume store: sparse files under settings.volumes.root.
        volume_driver=FileVolumeDriver(settings.volumes.root),
    )


def build_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """Context plus app, for ``vbs serve`` and in-process tests."""
    return create_app(build_context(settings, db))
