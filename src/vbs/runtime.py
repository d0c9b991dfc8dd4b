"""The background parts of one ``vbs serve`` process: job workers, the policy
scheduler and maintenance (reconciliation, garbage collection, job purging).

Built by :func:`vbs.bootstrap.build_runtime`; ``start()`` after the app is
built, ``stop()`` when the server exits. Nothing here starts at import time.
Maintenance runs every ``interval`` seconds in one daemon thread:

* ``reconcile``: backups left ``creating``/``restoring``/``deleting`` by a job
  the queue ended FAIL (workers lost too often) get their error status;
* garbage collection of projects whose backups were deleted since the last
  pass (two-phase, so a pass only condemns and a later one frees);
* purging finished jobs older than the retention (30 days, vbs-api §2.10).

The NBD export server (``export_server``, when ``exports.enabled``) listens
from ``start()`` to ``stop()``; its own sweeper ends expired exports.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from vbs.db.session import Database
from vbs.errors import LockConflict
from vbs.jobs import Worker, purge_finished
from vbs.repository.gc import GcPolicy, collect
from vbs.repository.repo import Repository
from vbs.service.backup_jobs import reconcile

__all__ = ["Runtime"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    db: Database
    repository: Repository
    worker: Worker | None
    scheduler: Any | None = None
    export_server: Any | None = None
    """The NBD export server (:mod:`vbs.export`); started with the runtime."""
    context: Any | None = None
    """The app's context: gets ``export_server`` once it listens."""
    interval: float = 30.0
    gc_policy: GcPolicy = field(default_factory=GcPolicy)
    job_retention: dt.timedelta = dt.timedelta(days=30)
    _dirty: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def project_changed(self, project_id: str) -> None:
        """A backup of ``project_id`` was deleted: collect garbage there soon."""
        with self._lock:
            self._dirty.add(project_id)

    def start(self) -> None:
        reconcile(self.db)
        if self.export_server is not None:
            try:
                self.export_server.start()
                if self.context is not None:
                    self.context.export_server = self.export_server
            except OSError as exc:
                log.error("NBD export server cannot listen on %s: %s; exports are off",
                          self.export_server.address(), exc)
                self.export_server = None
        if self.worker is not None:
            self.worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        self._thread = threading.Thread(target=self._loop, name="vbs-maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self.export_server is not None:
            self.export_server.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.worker is not None:
            self.worker.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def maintain(self) -> None:
        """One maintenance pass (also called by tests)."""
        reconcile(self.db)
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        for project_id in sorted(dirty):
            try:
                status = collect(self.repository.project(project_id), self.gc_policy)
                if status.records_pending or status.condemned_packs:
                    self.project_changed(project_id)  # come back to sweep
            except LockConflict:
                self.project_changed(project_id)
            except Exception:  # noqa: BLE001 - maintenance must go on
                log.exception("garbage collection of project %s failed", project_id)
        purge_finished(self.db, self.job_retention)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.maintain()
            except Exception:  # noqa: BLE001
                log.exception("maintenance pass failed")
