"""Failed-password rate limiting for ``POST /identity/v3/auth/tokens`` (issue 8).

Every password login costs an argon2id verification (tens of milliseconds
of CPU and 64 MiB of memory by design), so unauthenticated callers could
burn the server's CPU by guessing. :class:`LoginLimiter` counts *failed*
password attempts in a sliding window, per user (the name+domain or id as
sent) and per source address. When either count reaches its limit the
next attempt is refused with **429** (Keystone error body) and
``Retry-After`` (seconds until the oldest counted failure leaves the
window) *before* any password is verified. A success clears the user's
count (not the address's).

Defaults (``auth.*`` settings): 5 failures per user and 20 per address in
60 seconds; the address limit is higher so that one NAT or proxy shared by
many users is not locked out by one user's typos.

Limitation, on purpose: the counters live in the memory of one process.
Several API processes (scale-out) each allow the limit, and a restart
forgets the counts. That still bounds the CPU any one caller can burn per
process, which is what the limit is for; a shared table would add a write
per failed login to the database for little gain. The source address is
the TCP peer: behind a reverse proxy all callers share the proxy's address,
so raise ``auth.login_max_failures_per_address`` there.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["LoginLimiter"]

_MAX_KEYS = 100_000
"""Bound on remembered keys; the least recently failed are forgotten first."""


class LoginLimiter:
    """Sliding-window counters of failed logins (thread-safe)."""

    def __init__(self, *, per_user: int = 5, per_address: int = 20,
                 window_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, user: str, address: str) -> int | None:
        """Seconds to wait when the user or the address is over its limit, else None."""
        now = self._clock()
        waits = []
        with self._lock:
            for key, limit in ((("user", user), self.per_user),
                               (("addr", address), self.per_address)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[len(times) - limit] + self.window - now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits)))

    def failed(self, user: str, address: str) -> None:
        """Count one failed password attempt for both keys."""
        now = self._clock()
        with self._lock:
            for key in (("user", user), ("addr", address)):
                times = self._failures.setdefault(key, deque())
                times.append(now)
                self._failures.move_to_end(key)
                while len(times) > max(self.per_user, self.per_address):
                    times.popleft()
            while len(self._failures) > _MAX_KEYS:
                self._failures.popitem(last=False)

    def succeeded(self, user: str) -> None:
        """A correct password clears the user's count."""
        with self._lock:
            self._failures.pop(("user", user), None)
