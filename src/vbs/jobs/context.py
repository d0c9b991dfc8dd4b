"""What a handler sees while it runs a job: :class:`JobContext`, and the lease keeper.

One :class:`JobContext` per run. Its lease keeper is a background thread
that renews the lease every ``heartbeat_interval`` (even when the handler
reports nothing) and writes the latest progress at most every
``progress_interval``, so ``progress()`` never touches the database from the
handler's thread. When a renewal is refused (the job was taken over) the
context's ``cancel`` token is set and stays set; the handler must stop.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from vbs.db.session import Database
from vbs.engine.common import CancelToken
from vbs.jobs import queue
from vbs.jobs.records import JobRecord

__all__ = ["Clock", "JobContext"]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
"""Returns the current time as an aware UTC datetime (injectable for tests)."""


class JobContext:
    """The running job as its handler sees it.

    * ``job``: the record as claimed (``attempts`` counts this run).
    * ``resumed``: this run took over a job whose previous run lost its lease
      (crash, kill -9, network partition) or was stopped gracefully; the
      handler must clean up or continue from ``job.checkpoint``.
    * ``cancel``: a :class:`vbs.engine.common.CancelToken`, set when the lease
      is lost or the worker stops; pass it to the engine.
    * ``progress(done, total)``: cheap, call it as often as you like.
    * ``checkpoint(state)``: durably records a safe point (synchronous).
    """

    def __init__(
        self,
        db: Database,
        job: JobRecord,
        owner: str,
        *,
        lease_seconds: float,
        heartbeat_interval: float,
        progress_interval: float,
        clock: Clock,
    ) -> None:
        self.job = job
        self.resumed = job.resumed
        self.cancel = CancelToken()
        self._db = db
        self._owner = owner
        self._lease_seconds = lease_seconds
        self._heartbeat_interval = heartbeat_interval
        self._progress_interval = progress_interval
        self._clock = clock
        self._lost = threading.Event()
        self._done = threading.Event()
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._progress: tuple[int, int] | None = None
        self._progress_written: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    @property
    def lease_lost(self) -> bool:
        """True once the job was taken over by another worker."""
        return self._lost.is_set()

    @property
    def owner(self) -> str:
        """The lease owner id of this run."""
        return self._owner

    def progress(self, done: int, total: int) -> None:
        """Record bytes done / total; written by the lease keeper within ~progress_interval."""
        with self._state_lock:
            self._progress = (int(done), int(total))

    def checkpoint(self, state: Mapping[str, Any]) -> bool:
        """Durably store ``state`` (JSON) as the resume point.

        False when it was not stored: the lease is lost (``cancel`` is then set)
        or the database did not answer (the handler may try again later).
        """
        return self._beat(checkpoint=dict(state))

    # -- lease keeper ---------------------------------------------------------

    def _pending_progress(self) -> tuple[int, int] | None:
        with self._state_lock:
            return self._progress if self._progress != self._progress_written else None

    def _beat(self, *, checkpoint: Mapping[str, Any] | None = None) -> bool:
        with self._write_lock:
            if self._lost.is_set():
                return False
            progress = self._pending_progress()
            try:
                ok = queue.heartbeat(
                    self._db, self.job.id, self._owner, lease_seconds=self._lease_seconds,
                    progress=progress, checkpoint=checkpoint, now=self._clock(),
                )
            except SQLAlchemyError:
                # The database may come back before the lease expires; if it
                # does not, another worker takes over and the next beat says so.
                log.warning("heartbeat of job %s failed", self.job.id, exc_info=True)
                return checkpoint is None
            if not ok:
                log.warning("job %s: lease lost by %s, cancelling", self.job.id, self._owner)
                self._lost.set()
                self.cancel.cancel()
                return False
            if progress is not None:
                with self._state_lock:
                    self._progress_written = progress
            return True

    def _keep_lease(self) -> None:
        tick = max(0.01, min(self._heartbeat_interval, self._progress_interval))
        last_beat = time.monotonic()
        while not self._done.wait(tick):
            due = time.monotonic() - last_beat >= self._heartbeat_interval
            if due or self._pending_progress() is not None:
                last_beat = time.monotonic()
                if not self._beat():
                    return

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._keep_lease, name=f"vbs-lease-{self.job.id[:8]}", daemon=True
        )
        self._thread.start()

    def _stop(self) -> None:
        """Stop the lease keeper and flush the last progress (if still owned)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if not self._lost.is_set() and self._pending_progress() is not None:
            self._beat()
