"""RetryingBackend: retries transient failures only, with capped full-jitter backoff.

The inner backend is a small hand-written fake: a transient 503 cannot be
provoked on demand from a real store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vbs.errors import BackendError, ObjectNotFound, TransientBackendError
from vbs.repository.backends import Backend, ObjectInfo, RetryingBackend


class FlakyBackend:
    """In-memory Backend whose next ``failures`` calls raise ``error``.

    ``list_fail_after`` makes a listing fail after yielding that many items
    (once per queued failure), to imitate a connection dropped mid-listing.
    """

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.failures = failures
        self.error = error or TransientBackendError("503 SlowDown")
        self.calls = 0
        self.list_fail_after: int | None = None
        self.closed = False

    @property
    def location(self) -> str:
        return "memory://flaky"

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self._maybe_fail()
        self.objects[key] = bytes(data)

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        self._maybe_fail()
        if key not in self.objects:
            raise ObjectNotFound(key)
        data = self.objects[key][offset:]
        return data if length is None else data[:length]

    def exists(self, key: str) -> bool:
        self._maybe_fail()
        return key in self.objects

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.calls += 1
        for number, key in enumerate(sorted(self.objects)):
            if self.failures > 0 and number == self.list_fail_after:
                self.failures -= 1
                raise self.error
            if key.startswith(prefix):
                yield ObjectInfo(key=key, size=len(self.objects[key]), mtime=0.0)

    def delete(self, key: str) -> None:
        self._maybe_fail()
        self.objects.pop(key, None)

    def close(self) -> None:
        self.closed = True


def _retrying(
    inner: FlakyBackend, attempts: int = 5, **kwargs: float
) -> tuple[RetryingBackend, list[float]]:
    delays: list[float] = []
    backend: Backend = inner
    return RetryingBackend(backend, attempts=attempts, sleep=delays.append, **kwargs), delays


def test_no_failure_means_one_call_and_no_sleep() -> None:
    inner = FlakyBackend()
    backend, delays = _retrying(inner)
    backend.put("k", b"v")
    assert backend.get("k") == b"v"
    assert inner.calls == 2
    assert delays == []


def test_transient_failures_are_retried_until_success() -> None:
    inner = FlakyBackend(failures=3)
    backend, delays = _retrying(inner)
    backend.put("k", b"value")
    assert inner.objects == {"k": b"value"}
    assert inner.calls == 4
    assert len(delays) == 3


@pytest.mark.parametrize("operation", ["put", "get", "exists", "delete"])
def test_every_operation_retries(operation: str) -> None:
    inner = FlakyBackend()
    inner.objects["k"] = b"v"
    inner.failures = 2
    backend, delays = _retrying(inner)
    calls: dict[str, Callable[[], object]] = {
        "put": lambda: backend.put("k", b"v"),
        "get": lambda: backend.get("k", 0, 1),
        "exists": lambda: backend.exists("k"),
        "delete": lambda: backend.delete("k"),
    }
    calls[operation]()
    assert inner.calls == 3
    assert len(delays) == 2


def test_gives_up_after_attempts_and_reraises_the_last_error() -> None:
    errors = [TransientBackendError(f"failure {n}") for n in range(10)]

    class Sequenced(FlakyBackend):
        def _maybe_fail(self) -> None:
            self.calls += 1
            raise errors[self.calls - 1]

    inner = Sequenced()
    backend, delays = _retrying(inner, attempts=4)
    with pytest.raises(TransientBackendError) as caught:
        backend.get("k")
    assert caught.value is errors[3]
    assert inner.calls == 4
    assert len(delays) == 3


@pytest.mark.parametrize(
    "error",
    [ObjectNotFound("gone"), BackendError("403 AccessDenied"), ValueError("bad key")],
    ids=["not-found", "permanent", "value-error"],
)
def test_permanent_errors_pass_through_at_once(error: Exception) -> None:
    inner = FlakyBackend(failures=5, error=error)
    backend, delays = _retrying(inner)
    with pytest.raises(type(error)) as caught:
        backend.put("k", b"v")
    assert caught.value is error
    assert inner.calls == 1
    assert delays == []


def test_missing_key_is_not_retried() -> None:
    inner = FlakyBackend()
    backend, delays = _retrying(inner)
    with pytest.raises(ObjectNotFound):
        backend.get("absent")
    assert inner.calls == 1
    assert delays == []


def test_delays_are_full_jitter_under_an_exponential_cap() -> None:
    inner = FlakyBackend(failures=1000)
    backend, delays = _retrying(inner, attempts=12, base_delay=0.5, max_delay=3.0)
    for _ in range(20):
        with pytest.raises(TransientBackendError):
            backend.exists("k")
    assert len(delays) == 20 * 11
    for run in range(20):
        for retry, delay in enumerate(delays[run * 11 : run * 11 + 11]):
            assert 0.0 <= delay <= min(3.0, 0.5 * 2**retry)
    # Full jitter: delays are spread out, not a fixed schedule.
    assert len({round(d, 6) for d in delays}) > 100
    assert max(delays) > 1.0


def test_attempts_of_one_disables_retrying() -> None:
    inner = FlakyBackend(failures=1)
    backend, delays = _retrying(inner, attempts=1)
    with pytest.raises(TransientBackendError):
        backend.put("k", b"v")
    assert inner.calls == 1
    assert delays == []


@pytest.mark.parametrize("attempts", [0, -1])
def test_invalid_attempts_rejected(attempts: int) -> None:
    with pytest.raises(ValueError):
        RetryingBackend(FlakyBackend(), attempts=attempts)


def test_list_failing_midway_is_restarted_without_duplicates() -> None:
    inner = FlakyBackend()
    inner.objects = {f"k{n}": b"x" * n for n in range(6)}
    inner.failures = 2
    inner.list_fail_after = 3
    backend, delays = _retrying(inner)
    keys = [info.key for info in backend.list()]
    assert keys == [f"k{n}" for n in range(6)]
    assert inner.calls == 3
    assert len(delays) == 2


def test_list_gives_up_after_attempts() -> None:
    inner = FlakyBackend()
    inner.objects = {"a": b"", "b": b""}
    inner.failures = 10
    inner.list_fail_after = 1
    backend, delays = _retrying(inner, attempts=3)
    seen: list[str] = []
    with pytest.raises(TransientBackendError):
        for info in backend.list():
            seen.append(info.key)
    assert seen == ["a"]
    assert inner.calls == 3
    assert len(delays) == 2


def test_list_passes_the_prefix() -> None:
    inner = FlakyBackend()
    inner.objects = {"p/a": b"", "p/b": b"", "q/c": b""}
    backend, _ = _retrying(inner)
    assert sorted(info.key for info in backend.list("p/")) == ["p/a", "p/b"]


def test_location_and_close_delegate() -> None:
    inner = FlakyBackend()
    backend, _ = _retrying(inner)
    assert backend.location == "memory://flaky"
    assert backend.inner is inner
    backend.close()
    assert inner.closed
