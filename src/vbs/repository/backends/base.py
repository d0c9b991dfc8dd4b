"""The storage backend interface of the chunk repository, and key validation.

A backend is a flat key -> bytes store: a directory or an S3 bucket. It knows
nothing of packs, manifests or encryption; the repository decides what the
keys mean (one shared layout module names them) and what the bytes are.

Errors (all from :mod:`vbs.errors`; no raw ``OSError`` or botocore error ever
leaves a backend):

========================  =========  =============================================
error                     permanent  raised for
========================  =========  =============================================
``ValueError``            yes        an invalid key, prefix, offset or length (a bug
                                     in the caller, never retried)
``ObjectNotFound``        yes        ``get`` of a key that does not exist
``TransientBackendError`` no         timeouts, refused / reset connections, HTTP 5xx,
                                     throttling (SlowDown, 503, 429), EIO / ESTALE
``BackendError``          yes        everything else: permission denied, other 4xx,
                                     bad credentials, missing bucket, disk full
========================  =========  =============================================

Only ``TransientBackendError`` is worth retrying; :class:`RetryingBackend`
does exactly that and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vbs.fsutil import TEMP_PREFIX

if TYPE_CHECKING:
    from vbs.direct_io import AlignedBuffer

__all__ = [
    "ObjectWriter",
    "RangeViewBackend",
    "StreamingBackend",
    "MAX_KEY_BYTES",
    "MAX_SEGMENT_BYTES",
    "Backend",
    "ObjectInfo",
    "validate_key",
    "validate_prefix",
]

MAX_KEY_BYTES = 1024
"""Longest key in UTF-8 bytes (the S3 limit)."""

MAX_SEGMENT_BYTES = 200
"""Longest key segment in UTF-8 bytes: a segment is a file name in the local
backend, and its temporary file name must still fit in NAME_MAX (255)."""


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as seen by :meth:`Backend.list`.

    ``key`` is relative to the backend (never includes an S3 prefix),
    ``size`` is in bytes, ``mtime`` is the last-modified time in epoch
    seconds (S3: upload time, one-second resolution; local: file mtime).
    """

    key: str
    size: int
    mtime: float


def _check_chars(text: str, what: str) -> None:
    if "\\" in text:
        raise ValueError(f"{what} {text!r}: backslashes are not allowed")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"{what} {text!r}: NUL and control characters are not allowed")


def _check_segment(segment: str, key: str, what: str) -> None:
    if segment in ("", ".", ".."):
        raise ValueError(f"{what} {key!r}: empty, '.' and '..' segments are not allowed")
    if segment.startswith(TEMP_PREFIX):
        raise ValueError(f"{what} {key!r}: segments starting with {TEMP_PREFIX!r} are reserved")
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        raise ValueError(f"{what} {key!r}: a segment is longer than {MAX_SEGMENT_BYTES} bytes")


def validate_key(key: str) -> str:
    """Return *key* unchanged if it is a valid object key, else raise ValueError.

    A key is a relative, "/"-separated name such as
    ``projects/p1/data/ab/abcdef...``. Rejected: non-strings, the empty key,
    a leading or trailing "/", empty, "." or ".." segments, backslashes, NUL
    and other control characters, segments starting with the reserved
    temporary-file prefix, segments over MAX_SEGMENT_BYTES and keys over
    MAX_KEY_BYTES. The same rules hold for every backend, so a key that works
    on a directory works on S3 and cannot escape the directory root.
    """
    if not isinstance(key, str):
        raise ValueError(f"key must be a str, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")
    if key.startswith("/"):
        raise ValueError(f"key {key!r}: must be relative (no leading '/')")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"key {key[:40]!r}...: longer than {MAX_KEY_BYTES} bytes")
    _check_chars(key, "key")
    for segment in key.split("/"):
        _check_segment(segment, key, "key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return *prefix* unchanged if it is a valid listing prefix, else raise ValueError.

    A prefix is any leading part of a valid key: "" (everything), a complete
    directory such as ``projects/p1/`` or a partial name such as
    ``projects/p1/data/a``. Its complete segments follow :func:`validate_key`;
    the last, partial one may be anything a segment may start with.
    """
    if not isinstance(prefix, str):
        raise ValueError(f"prefix must be a str, not {type(prefix).__name__}")
    if not prefix:
        return prefix
    if prefix.startswith("/"):
        raise ValueError(f"prefix {prefix!r}: must be relative (no leading '/')")
    if len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"prefix {prefix[:40]!r}...: longer than {MAX_KEY_BYTES} bytes")
    _check_chars(prefix, "prefix")
    *complete, _partial = prefix.split("/")
    for segment in complete:
        _check_segment(segment, prefix, "prefix")
    return prefix


class Backend(Protocol):
    """A flat, thread-safe key -> bytes store holding the repository's objects.

    Every method may be called from many threads at once, and several
    processes (or hosts, for S3) may use the same location concurrently.
    Keys are validated with :func:`validate_key` (ValueError if invalid)
    before anything touches storage. Objects are immutable in practice (packs
    and manifests are content-addressed) but overwrites are allowed and
    atomic. See the module docstring for which errors are permanent.
    """

    @property
    def location(self) -> str:
        """Human-readable place of the store, e.g. ``/srv/vbs/repo`` or ``s3://bucket/prefix``.

        For messages and logs only; contains no credentials.
        """
        ...

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store *data* under *key*, atomically and durably.

        Readers see the whole object or nothing, never a prefix of it; an
        existing object is replaced atomically (readers see the old or the
        new content). When ``put`` returns, the object survives a crash of
        this host. A failed ``put`` leaves no partial object behind and may
        simply be repeated: put is idempotent. Raises TransientBackendError
        when repeating may help, BackendError otherwise.
        """
        ...

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """Return *length* bytes of the object at *key* starting at *offset*.

        ``length=None`` reads to the end. A range reaching past the end of
        the object returns only the bytes that exist: possibly fewer than
        *length*, and ``b""`` if *offset* is at or beyond the end. Callers
        that need an exact length compare ``len()``. Raises ObjectNotFound
        if the key is absent, ValueError for a negative offset or length.
        """
        ...

    def exists(self, key: str) -> bool:
        """Return True if an object is stored at *key* (a complete one, never a temp file)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with *prefix* (plain string prefix).

        Recursive (``"projects/p1/"`` lists everything below it), in no
        particular order, each key once. Never yields temporary files of
        puts in progress or left by a crash. Objects put or deleted while
        the listing runs may or may not appear. Errors are raised from the
        iteration, not from the call.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object at *key*; idempotent, a missing key is not an error.

        When ``delete`` returns the removal is durable, so a reference
        removed before its data never comes back after a crash.
        """
        ...

    def close(self) -> None:
        """Release connections and pools. The backend must not be used afterwards."""
        ...


class ObjectWriter(Protocol):
    """An object being streamed into a backend: ``write`` pieces, then ``commit``
    under its final key (atomic like :meth:`Backend.put`) or ``abort``."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def commit(self, key: str) -> None: ...

    def abort(self) -> None: ...


@runtime_checkable
class StreamingBackend(Protocol):
    """Optional extension of :class:`Backend` for objects too large to buffer
    (packs): the key may be chosen after the data is written, because a pack's
    name is the hash of its content."""

    def open_writer(self) -> ObjectWriter: ...


@runtime_checkable
class RangeViewBackend(Protocol):
    """Optional extension of :class:`Backend` for bulk range reads that are
    read once (restore, verify): the bytes land in the caller's reusable
    aligned buffer instead of a new ``bytes`` each time (local directories
    read them with ``O_DIRECT``)."""

    def read_range_view(
        self, key: str, offset: int, length: int, buf: AlignedBuffer
    ) -> memoryview: ...
