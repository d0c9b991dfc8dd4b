"""LoginLimiter: sliding window, per user and per address, Retry-After."""

from __future__ import annotations

from vbs.api.login_limit import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_user_limit_window_and_retry_after() -> None:
    clock = Clock()
    lim = LoginLimiter(per_user=3, per_address=10, window_seconds=60, clock=clock)
    for step in range(3):
        assert lim.retry_after("u", "a") is None
        lim.failed("u", "a")
        clock.now += 10 * (step == 0)
    assert lim.retry_after("u", "a") == 50  # oldest failure (t=1000) leaves at 1060
    assert lim.retry_after("other", "a") is None
    clock.now = 1060.5
    assert lim.retry_after("u", "a") is None


def test_address_limit_and_success_clears_only_the_user() -> None:
    clock = Clock()
    lim = LoginLimiter(per_user=2, per_address=3, window_seconds=60, clock=clock)
    lim.failed("u1", "a")
    lim.failed("u2", "a")
    lim.failed("u1", "a")
    assert lim.retry_after("u3", "a") == 60
    assert lim.retry_after("u3", "b") is None
    lim.succeeded("u1")
    assert lim.retry_after("u1", "b") is None
    assert lim.retry_after("u1", "a") == 60  # the address count stays
