"""Validated tokens, remembered by one API process for a few seconds.

Every authenticated request validated its token with a database query (a
join of token, user, project and domains: ~1 ms of the ~4 ms a request may
cost to keep p99 under 50 ms on two cores). :class:`TokenCache` keeps the
:class:`~vbs.identity.TokenInfo` of tokens that validated, keyed by the
token's SHA-256 (the bearer string itself is not kept), for
``auth.token_cache_seconds`` (default 2; 0 turns the cache off).
keystonemiddleware does the same for OpenStack services, for 300 s.

What a cached entry may get wrong, and for how long (docs/operations.md):

================================  ==============================================
change                            seen by requests to
================================  ==============================================
the token expires                 every process at once: each hit re-checks
                                  ``expires_at``
``DELETE /v3/auth/tokens``        the process that revoked it at once; its
                                  siblings of ``vbs serve --processes N`` at once
                                  (a shared revocation counter, below); other
                                  hosts within ``token_cache_seconds``
anything else (user or project    every process within ``token_cache_seconds``
disabled in the database)
================================  ==============================================

Only successful validations are kept: an unknown, revoked or expired token
always reaches the database, so its error (missing/expired/invalid) is the
database's.

:class:`RevocationCounter` is 8 bytes of shared memory that ``vbs serve
--processes N`` maps before it forks: a process that revokes a token bumps
it, and every process's cache forgets everything when it sees the value
change (revocations are rare; a miss costs one query).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mmap
import struct
import threading
import time
from collections.abc import Callable

from vbs.db.base import utcnow
from vbs.identity import TokenInfo

__all__ = ["DEFAULT_MAX_ENTRIES", "RevocationCounter", "TokenCache"]

DEFAULT_MAX_ENTRIES = 10_000
"""Distinct live tokens kept per process; the oldest entry goes first beyond it."""

_COUNTER = struct.Struct("=Q")


class RevocationCounter:
    """A number shared by the processes forked after it was made (``MAP_SHARED``).

    Increments are read-modify-write without a lock: two processes revoking
    at the same instant may both write the same new value, which is still a
    change every reader sees, and a change is all a reader looks for.
    """

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _COUNTER.size)

    def value(self) -> int:
        value: int = _COUNTER.unpack_from(self._map)[0]
        return value

    def bump(self) -> None:
        _COUNTER.pack_into(self._map, 0, (self.value() + 1) & 0xFFFF_FFFF_FFFF_FFFF)


class TokenCache:
    """Tokens that validated less than ``ttl`` seconds ago (module docstring).

    Thread-safe: the API's thread pool and event loop both call it.
    ``clock`` (monotonic seconds) and ``now`` (aware UTC) are injectable so
    the bounds can be tested without sleeping.
    """

    def __init__(self, ttl: float, *, revocations: RevocationCounter | None = None,
                 max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], dt.datetime] = utcnow) -> None:
        self.ttl = ttl
        self.revocations = revocations
        self.max_entries = max_entries
        self._clock = clock
        self._now = now
        self._entries: dict[bytes, tuple[float, TokenInfo]] = {}
        self._seen = revocations.value() if revocations is not None else 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8")).digest()

    def get(self, token: str) -> TokenInfo | None:
        """The cached info of ``token``, or None (never cached, too old, expired,
        or a sibling process revoked some token since)."""
        if self.ttl <= 0:
            return None
        key = self._key(token)
        with self._lock:
            if self.revocations is not None:
                seen = self.revocations.value()
                if seen != self._seen:
                    self._entries.clear()
                    self._seen = seen
                    return None
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored, info = entry
            if self._clock() - stored >= self.ttl or info.expires_at <= self._now():
                del self._entries[key]
                return None
            return info

    def put(self, token: str, info: TokenInfo) -> None:
        """Remember a token the database just validated."""
        if self.ttl <= 0:
            return
        key = self._key(token)
        with self._lock:
            self._entries.pop(key, None)  # re-insert: the dict's order is the age order
            self._entries[key] = (self._clock(), info)
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def forget(self, token: str) -> None:
        """``token`` was revoked: drop it here and tell the sibling processes."""
        with self._lock:
            self._entries.pop(self._key(token), None)
        if self.revocations is not None:
            # This process clears too when it next looks: a sibling's bump may
            # have come just before ours, and its revocation must not be lost.
            self.revocations.bump()

    def __len__(self) -> int:
        return len(self._entries)
