"""Composition root: the one place that wires settings, database and API.

Order at start: :func:`prepare_data_dir` (directories), :func:`migrate`
(schema at every head), :func:`bootstrap_admin` (first-start identities),
:func:`build_context` (objects the API uses), then ``create_app``. Other
layers plug their objects into :class:`vbs.api.app.AppContext` here (the
repository, the volume driver, the job queue) as they come to exist; no
module below reads settings on its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vbs.api.app import AppContext, create_app
from vbs.api.token_cache import RevocationCounter
from vbs.config import Settings
from vbs.db.base import utcnow
from vbs.db.migrate import upgrade
from vbs.db.session import Database
from vbs.engine.guard import GuardPolicy
from vbs.errors import ConfigError, RepositoryExists, RepositoryNotFound
from vbs.fsutil import atomic_write
from vbs.identity import bootstrap_identity
from vbs.repository.backends import open_backend
from vbs.repository.repo import Repository
from vbs.runtime import Runtime

if TYPE_CHECKING:
    from vbs.export import NbdServer

__all__ = [
    "bootstrap_admin",
    "build_app",
    "build_context",
    "build_export_server",
    "build_runtime",
    "master_key",
    "open_repository",
    "migrate",
    "migrate_or_check",
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


def migrate_or_check(settings: Settings) -> None:
    """At start-up: migrate (``database.migrate_on_start``, the default), or
    refuse to start on a schema that ``vbs db upgrade`` has not brought up to date.

    Scale-out deployments run the migrations once, from one place, before
    rolling out processes of a new version; a process that found an old
    schema would otherwise fail later, on the first query of a new column.
    """
    if settings.database.migrate_on_start:
        upgrade(settings.database.url)
        return
    from vbs.db.migrate import is_current

    if not is_current(settings.database.url):
        raise ConfigError("the database schema is not up to date: run `vbs db upgrade` "
                          "(database.migrate_on_start is false)")


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


def master_key(settings: Settings) -> bytes:
    """The repository master key file: created on first start (32 random bytes,
    mode 0600, written durably) unless the operator provided one."""
    path = settings.repository.master_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, os.urandom(32), mode=0o600)
    return path.read_bytes()


def open_repository(settings: Settings) -> Repository:
    """Open the configured repository with the master key, creating it on first start.

    The chunk size is taken from settings only here, at creation; afterwards
    the repository's own config (and each manifest) is the authority.
    """
    r = settings.repository
    backend = open_backend(r.location, endpoint_url=r.endpoint_url, region=r.region,
                           access_key=r.access_key, secret_key=r.secret_key, create=True)
    key = master_key(settings)
    try:
        return Repository.open(backend, key_file_bytes=key)
    except RepositoryNotFound:
        try:
            return Repository.init(backend, key_file_bytes=key, chunk_size=r.chunk_size)
        except RepositoryExists:  # another process initialised it meanwhile
            return Repository.open(backend, key_file_bytes=key)


def build_context(settings: Settings, db: Database | None = None,
                  repository: Repository | None = None,
                  revocations: RevocationCounter | None = None) -> AppContext:
    """The API's context: database, volume store, repository, policy port;
    ``revocations`` is shared by the processes of ``vbs serve --processes N``."""
    from vbs.service.backup_port import ServiceBackupPort
    from vbs.volumes import FileVolumeDriver

    return AppContext(
        settings=settings,
        db=db or Database(settings.database.url),
        # Built-in volume store: sparse files under settings.volumes.root.
        volume_driver=FileVolumeDriver(settings.volumes.root),
        repository=repository,
        backup_port=ServiceBackupPort(settings),
        revocations=revocations,
    )


def build_app(settings: Settings, db: Database | None = None,
              repository: Repository | None = None,
              revocations: RevocationCounter | None = None) -> FastAPI:
    """Context plus app, for ``vbs serve`` and in-process tests."""
    return create_app(build_context(settings, db, repository, revocations))


def build_runtime(settings: Settings, ctx: AppContext, *, workers: bool = True,
                  scheduler: bool = True, exports: bool = True) -> Runtime:
    """Job workers, policy scheduler, maintenance and (with ``exports`` and
    ``settings.exports.enabled``) the NBD export server of one process.

    Processes without the API (a separate worker or scheduler) pass
    ``exports=False``: exports are served next to the API that records them."""
    from vbs.jobs import Worker
    from vbs.scheduler.leadership import LeaderScheduler
    from vbs.scheduler.retention import after_policy_backup
    from vbs.scheduler.runs import mark_task_running
    from vbs.scheduler.scheduler import Scheduler
    from vbs.service.backup_jobs import BackupRuntime, handlers
    from vbs.volumes import FileVolumeDriver

    repo = ctx.repository
    assert isinstance(repo, Repository)
    assert isinstance(ctx.volume_driver, FileVolumeDriver)
    port = ctx.backup_port
    assert port is not None
    runtime = Runtime(db=ctx.db, repository=repo, worker=None)

    def hook(session: Session, **kw: object) -> object:
        return after_policy_backup(session, port, **kw)  # type: ignore[arg-type]

    rt = BackupRuntime(db=ctx.db, repository=repo, driver=ctx.volume_driver,
                       policy_hook=hook, task_started=mark_task_running,
                       on_deleted=runtime.project_changed,
                       change_tracking=settings.change_tracking.enabled,
                       guard=GuardPolicy(settings.change_tracking.verify_fraction,
                                         settings.change_tracking.verify_minimum,
                                         settings.change_tracking.verify_unchanged),
                       adopt_min_age=settings.jobs.lease_seconds / 2,
                       restore_processes=settings.jobs.restore_processes)
    if workers and settings.jobs.workers > 0:
        backoff = settings.jobs.retry_backoff_seconds
        runtime.worker = Worker(ctx.db, handlers(rt), concurrency=settings.jobs.workers,
                                lease_seconds=float(settings.jobs.lease_seconds),
                                retry_backoff=(backoff, max(backoff, 300.0)))
    if scheduler:
        sched = settings.scheduler
        runtime.scheduler = LeaderScheduler(
            Scheduler(ctx.db, port, utcnow), ctx.db, tick_seconds=sched.tick_seconds,
            lease_seconds=sched.lease_seconds)
    if exports and settings.exports.enabled:
        runtime.export_server = build_export_server(settings, ctx)
        runtime.context = ctx
    return runtime


def build_export_server(settings: Settings, ctx: AppContext) -> NbdServer:
    """The NBD export server over the service's ``backup_exports`` table (not started)."""
    from vbs.export import NbdServer
    from vbs.service.exports import DbCatalog

    e = settings.exports
    assert isinstance(ctx.repository, Repository)
    return NbdServer(ctx.repository, DbCatalog(ctx.db, e.overlay_dir), host=e.host,
                     port=e.port, cache_bytes=e.cache_mib * 1024 * 1024)
