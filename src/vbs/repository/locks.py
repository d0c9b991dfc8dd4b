"""Advisory locks of running operations, stored in the repository.

A lock is a small plaintext JSON object at ``projects/<p>/locks/<kind>-<id>``
holding its kind (``backup`` or ``gc``), creation and refresh times, host and
pid. Locks are records, not mutual exclusion: backups hold *backup* locks so
GC knows which backups may still reference chunks it condemned (see gc.py);
GC holds a *gc* lock so two GCs of one project do not run at once. A daemon
thread refreshes the lock every ``refresh_seconds``; a lock not refreshed for
``stale_seconds`` (GcPolicy.lock_stale_seconds) belongs to a dead process and
is ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from types import TracebackType

from vbs.errors import LockConflict, ObjectNotFound
from vbs.repository import layout
from vbs.repository.repo import ProjectStore

__all__ = ["LiveLock", "RepositoryLock", "exclusive", "live_locks"]


class RepositoryLock:
    """A lock object present while one operation runs (see module docstring)."""

    def __init__(self, store: ProjectStore, kind: str, *, refresh_seconds: float = 60.0) -> None:
        self.store = store
        self.kind = kind
        self.lock_id = f"{kind}-{uuid.uuid4().hex}"
        self.key = layout.lock_key(store.project, self.lock_id)
        self.created = dt.datetime.now(dt.UTC)
        self._refresh = refresh_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _doc(self) -> bytes:
        return json.dumps(
            {
                "kind": self.kind,
                "created": self.created.isoformat(),
                "refreshed": dt.datetime.now(dt.UTC).isoformat(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
            }
        ).encode()

    def acquire(self) -> RepositoryLock:
        self.store.backend.put(self.key, self._doc())
        self._thread = threading.Thread(target=self._loop, name=f"lock-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._refresh):
            try:
                self.store.backend.put(self.key, self._doc())
            except Exception:  # noqa: BLE001 - a missed refresh only ages the lock
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.store.backend.delete(self.key)

    def __enter__(self) -> RepositoryLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class LiveLock:
    __slots__ = ("created", "key", "kind")

    def __init__(self, key: str, kind: str, created: float) -> None:
        self.key, self.kind, self.created = key, kind, created


def live_locks(store: ProjectStore, now: float, stale_seconds: float) -> list[LiveLock]:
    """Every lock of the project refreshed within ``stale_seconds`` of ``now``."""
    out = []
    for o in store.backend.list(layout.locks_prefix(store.project)):
        try:
            doc = json.loads(store.backend.get(o.key))
            refreshed = dt.datetime.fromisoformat(doc["refreshed"]).timestamp()
            created = dt.datetime.fromisoformat(doc["created"]).timestamp()
            kind = str(doc["kind"])
        except (ObjectNotFound, ValueError, KeyError, TypeError):
            continue
        if now - max(refreshed, o.mtime) <= stale_seconds:
            out.append(LiveLock(o.key, kind, created))
    return out


def exclusive(
    store: ProjectStore, kind: str, now_fn: Callable[[], float], stale_seconds: float
) -> RepositoryLock:
    """Take a lock of ``kind`` that no other live lock of that kind may share."""
    lock = RepositoryLock(store, kind).acquire()
    others = [
        x
        for x in live_locks(store, now_fn(), stale_seconds)
        if x.kind == kind and x.key != lock.key
    ]
    if others:
        lock.release()
        raise LockConflict(
            f"another {kind} is running on project {store.project} ({others[0].key})"
        )
    return lock
