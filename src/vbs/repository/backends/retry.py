"""Retry wrapper: repeats backend calls that failed with a transient error.

Retrying lives here, once, instead of inside each backend (restic's
``backend/retry``). Only :class:`~vbs.errors.TransientBackendError` is
retried; permanent errors (ObjectNotFound, BackendError, ValueError) pass
through at once, because repeating them only delays the report.

Every Backend operation is safe to repeat: put is atomic and idempotent (a
repeated put rewrites the same bytes), get/exists/list only read, delete of
a missing key succeeds. So a call whose first attempt actually succeeded on
the server but lost its answer is harmless to repeat.

Backoff is exponential with full jitter (AWS architecture blog,
"Exponential Backoff And Jitter"): before retry *n* (0-based) the wrapper
sleeps ``uniform(0, min(max_delay, base_delay * 2**n))``, which spreads
many clients hitting a throttled store instead of having them retry in step.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from vbs.errors import TransientBackendError
from vbs.repository.backends.base import Backend, ObjectInfo

__all__ = ["RetryingBackend"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")


class RetryingBackend:
    """A Backend that retries the transient failures of *inner*.

    *attempts* is the total number of tries per call (1 disables retrying).
    After the last failed attempt the last TransientBackendError is raised.
    *sleep* is injectable so tests can record delays instead of waiting.
    Thread-safe if *inner* is: the wrapper keeps no per-call state.
    """

    def __init__(
        self,
        inner: Backend,
        *,
        attempts: int = 5,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        if base_delay < 0 or max_delay < 0:
            raise ValueError("base_delay and max_delay must be >= 0")
        self._inner = inner
        self._attempts = attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    @property
    def inner(self) -> Backend:
        """The wrapped backend."""
        return self._inner

    @property
    def location(self) -> str:
        return self._inner.location

    def _delay(self, retry: int) -> float:
        """Full-jitter delay before 0-based *retry*."""
        cap = min(self._max_delay, self._base_delay * (2**retry))
        return random.uniform(0.0, cap)

    def _backoff(self, retry: int, what: str, error: TransientBackendError) -> None:
        delay = self._delay(retry)
        _log.warning(
            "%s on %s failed (attempt %d of %d), retrying in %.2fs: %s",
            what,
            self._inner.location,
            retry + 1,
            self._attempts,
            delay,
            error,
        )
        self._sleep(delay)

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        for retry in range(self._attempts):
            try:
                return fn()
            except TransientBackendError as exc:
                if retry + 1 >= self._attempts:
                    raise
                self._backoff(retry, what, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self._call(f"put {key!r}", lambda: self._inner.put(key, data))

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(f"get {key!r}", lambda: self._inner.get(key, offset, length))

    def exists(self, key: str) -> bool:
        return self._call(f"exists {key!r}", lambda: self._inner.exists(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Retry a listing that fails part-way by listing again from the start.

        Keys already yielded are remembered and skipped on the next attempt,
        so the caller still sees each key once. The remembered set costs one
        string per object listed under *prefix*.
        """
        seen: set[str] = set()
        retry = 0
        while True:
            try:
                for info in self._inner.list(prefix):
                    if info.key in seen:
                        continue
                    seen.add(info.key)
                    yield info
                return
            except TransientBackendError as exc:
                if retry + 1 >= self._attempts:
                    raise
                self._backoff(retry, f"list {prefix!r}", exc)
                retry += 1

    def delete(self, key: str) -> None:
        self._call(f"delete {key!r}", lambda: self._inner.delete(key))

    def close(self) -> None:
        self._inner.close()

    def __repr__(self) -> str:
        return f"RetryingBackend({self._inner!r}, attempts={self._attempts})"
