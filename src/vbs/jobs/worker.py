"""The worker: threads that claim jobs and run their handlers under a lease.

A handler is ``handler(ctx: JobContext) -> dict[str, str] | None``; the
returned map is merged into the job's entities on SUCCESS. How a handler's
end maps to the job:

=====================================  ============================================
handler ends with                      job becomes
=====================================  ============================================
return                                 SUCCESS (entities merged)
VbsError with ``transient``            INIT again after a backoff (``run_after``),
                                       FAIL once ``max_attempts`` are used up
other VbsError                         FAIL, error_code = ``api_code`` if set, else
                                       ``code``; fail_reason = the message
Cancelled while the worker stops       stays RUNNING, lease released: resumed by
                                       the next claim (never reset)
any other exception                    FAIL, ``vbs.jobs.internal``, traceback logged
anything, after the lease was lost     untouched: the new owner decides
=====================================  ============================================

Restart: nothing is reset at start. :func:`on_start_recover` only reports
RUNNING jobs whose lease expired; claims resume them (``resumed`` true), or
end them FAIL ("worker lost N times") when their attempts are used up.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from vbs.db.base import utcnow
from vbs.db.session import Database
from vbs.errors import Cancelled, VbsError
from vbs.jobs import _wake, queue
from vbs.jobs.context import Clock, JobContext
from vbs.jobs.errors import INTERNAL_ERROR, InvalidJob, UnknownJobType
from vbs.jobs.records import JobRecord, check_entities

__all__ = ["JobHandler", "Worker", "on_start_recover"]

log = logging.getLogger(__name__)

JobHandler = Callable[[JobContext], "dict[str, str] | None"]


def on_start_recover(db: Database, *, now: Any = None) -> list[JobRecord]:
    """Report RUNNING jobs whose lease expired (a previous worker died).

    Nothing is reset or changed: such jobs are resumed by the next claim,
    with ``resumed`` true, under a new lease; resetting them to INIT would
    lose the fact that their resource may be half-written.
    """
    with db.session() as session:
        stale = queue.expired_running(session, now=now)
    for job in stale:
        log.info("job %s (%s) lost its worker %s; it will be resumed",
                 job.id, job.job_type, job.lease_owner)
    return stale


class Worker:
    """Runs ``concurrency`` threads that claim and run jobs of the handled types.

    ``clock`` stamps every lease and timestamp (inject one to expire leases in
    tests); ``heartbeat_interval`` defaults to a third of the lease;
    ``retry_backoff`` is ``(first, maximum)`` seconds, doubling per attempt.
    """

    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, JobHandler],
        *,
        worker_id: str | None = None,
        concurrency: int = 2,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
        clock: Clock = utcnow,
        heartbeat_interval: float | None = None,
        progress_interval: float = 1.0,
        retry_backoff: tuple[float, float] = (5.0, 300.0),
    ) -> None:
        if concurrency < 1 or lease_seconds <= 0 or poll_interval <= 0:
            raise InvalidJob("concurrency, lease_seconds and poll_interval must be positive")
        self.db = db
        self.handlers = dict(handlers)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval or lease_seconds / 3
        self.progress_interval = progress_interval
        self.retry_backoff = retry_backoff
        self._claims = itertools.count(1)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: set[JobContext] = set()
        self._active_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Report stale jobs, then start the claiming threads (once)."""
        if self._threads:
            raise InvalidJob("worker already started")
        on_start_recover(self.db, now=self.clock())
        self._stopping.clear()
        for n in range(self.concurrency):
            thread = threading.Thread(target=self._loop, name=f"vbs-worker-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming, cancel running handlers and wait for them.

        Returns True when every thread ended within ``timeout``. Handlers that
        end with ``Cancelled`` release their job for another worker to resume.
        """
        self._stopping.set()
        _wake.notify()
        with self._active_lock:
            for ctx in self._active:
                ctx.cancel.cancel()
        end = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if end is None else max(0.0, end - time.monotonic()))
        alive = any(t.is_alive() for t in self._threads)
        if not alive:
            self._threads.clear()
        return not alive

    @property
    def running(self) -> int:
        """How many handlers run right now."""
        with self._active_lock:
            return len(self._active)

    def run_once(self) -> JobRecord | None:
        """Claim one job and run it in the calling thread; the job as it ended, or None."""
        return self._claim_and_run()

    # -- internals ------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            seen = _wake.generation()
            try:
                ran = self._claim_and_run() is not None
            except Exception:
                log.exception("worker %s: claim/run failed", self.worker_id)
                ran = False
            if not ran and not self._stopping.is_set():
                # a job committed by this process wakes us at once (jobs._wake)
                _wake.wait_for_new(seen, self.poll_interval)

    def _claim_and_run(self) -> JobRecord | None:
        owner = f"{self.worker_id}/{next(self._claims)}"
        job = queue.claim(self.db, owner, lease_seconds=self.lease_seconds,
                          types=list(self.handlers), now=self.clock())
        if job is None:
            return None
        self._execute(job, owner)
        with self.db.session() as session:
            return queue.get(session, job.id)

    def _execute(self, job: JobRecord, owner: str) -> None:
        ctx = JobContext(
            self.db, job, owner, lease_seconds=self.lease_seconds,
            heartbeat_interval=self.heartbeat_interval,
            progress_interval=self.progress_interval, clock=self.clock,
        )
        with self._active_lock:
            self._active.add(ctx)
        if self._stopping.is_set():
            ctx.cancel.cancel()
        log.info("job %s (%s) started by %s, attempt %d%s", job.id, job.job_type, owner,
                 job.attempts, " (resumed)" if job.resumed else "")
        ctx._start()
        result: dict[str, str] | None = None
        error: BaseException | None = None
        try:
            handler = self.handlers.get(job.job_type)
            if handler is None:
                raise UnknownJobType(f"no handler for job type {job.job_type!r}")
            result = handler(ctx)
            if result is not None:
                result = check_entities(result)
        except Exception as exc:
            error = exc
        finally:
            ctx._stop()
            with self._active_lock:
                self._active.discard(ctx)
        self._finish(ctx, result, error)

    def _backoff(self, attempts: int) -> float:
        first, maximum = self.retry_backoff
        return float(min(maximum, first * 2 ** max(0, attempts - 1)))

    def _finish(self, ctx: JobContext, result: dict[str, str] | None,
                error: BaseException | None) -> None:
        job, owner, now = ctx.job, ctx.owner, self.clock()
        if ctx.lease_lost:
            log.warning("job %s: run by %s ended after losing the lease (%s); left to the "
                        "new owner", job.id, owner, type(error).__name__ if error else "returned")
            return
        if error is None:
            done = queue.complete(self.db, job.id, owner, entities_update=result, now=now)
        elif isinstance(error, Cancelled) and self._stopping.is_set():
            log.info("job %s: released on stop, to be resumed", job.id)
            done = queue.release(self.db, job.id, owner, now=now)
        elif isinstance(error, VbsError) and error.transient:
            log.warning("job %s: transient error, will retry: %s", job.id, error.message)
            done = queue.fail(self.db, job.id, owner, error_code=_error_code(error),
                              reason=error.message, retry=True,
                              retry_after=self._backoff(job.attempts), now=now)
        elif isinstance(error, VbsError):
            log.warning("job %s failed: %s (%s)", job.id, error.message, error.code)
            done = queue.fail(self.db, job.id, owner, error_code=_error_code(error),
                              reason=error.message, now=now)
        else:
            log.error("job %s: handler crashed", job.id, exc_info=error)
            done = queue.fail(self.db, job.id, owner, error_code=INTERNAL_ERROR,
                              reason=f"internal error ({type(error).__name__})", now=now)
        if not done:
            log.warning("job %s: lease lost before the outcome was recorded", job.id)


def _error_code(error: VbsError) -> str:
    api_code = getattr(error, "api_code", None)
    return api_code if isinstance(api_code, str) and api_code else error.code
