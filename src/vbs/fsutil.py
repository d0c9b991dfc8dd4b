"""Durable local file writes: the one helper every VBS component uses.

A file written through :func:`atomic_write` is either entirely the old
content or entirely the new content after a crash, never a mix and never a
truncated file, and once the call returns the new content survives a power
loss. The recipe (restic ``local.Save``, ext4/XFS semantics):

1. write the data to a temporary file in the *same* directory (a rename is
   only atomic within one filesystem);
2. ``fsync`` the temporary file, so its blocks are on disk before its name is;
3. ``os.replace`` it over the final name (atomic on POSIX);
4. ``fsync`` the directory, so the new directory entry itself is durable.

Temporary files are named ``.vbs-tmp-<random>-<name>``. Names that start with
:data:`TEMP_PREFIX` are therefore reserved: listings skip them
(:func:`is_temp_name`) and repository keys may not use them. A temporary file
left behind by a crash (kill -9 between steps 1 and 3) is harmless garbage;
it is never mistaken for an object.

Nothing here raises VBS errors: callers get the plain :class:`OSError` and map
it to their own layer's error (the local backend maps it to a backend error).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "TEMP_PREFIX",
    "DurableFile",
    "atomic_write",
    "fsync_dir",
    "is_temp_name",
    "makedirs_durable",
]

TEMP_PREFIX = ".vbs-tmp-"
"""Prefix of every temporary file made by :func:`atomic_write`."""

# Keep temporary names under the common 255-byte NAME_MAX even for long names.
_MAX_NAME_IN_TEMP = 200

# Filesystems that cannot fsync a directory (some FUSE and network
# filesystems) answer EINVAL or ENOTSUP; restic ignores those too, because
# there is nothing better to do and the rename itself already happened.
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})


def is_temp_name(name: str) -> bool:
    """Return True if *name* (one path segment) is an :func:`atomic_write` temp file."""
    return name.startswith(TEMP_PREFIX)


def fsync_dir(path: Path) -> None:
    """Make the directory entries of *path* (a directory) durable.

    Needed after creating, renaming or removing a name in it: fsync of a file
    does not persist the entry that points to the file. Silently does nothing
    on filesystems that cannot fsync a directory.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def makedirs_durable(path: Path, mode: int = 0o700) -> None:
    """``mkdir -p path``, then fsync the parent of every directory it created.

    Created directories get ``mode`` (default 0700: repository directories
    hold every project's encrypted data and must not be listable by others).

    Without the parent fsync a crash can lose a freshly created directory,
    and with it every file that was durably written inside it. Safe to call
    concurrently from many threads and processes: a directory that another
    caller creates first is accepted (and its parent still synced, because
    that caller may not have synced it yet). Raises FileExistsError (or
    NotADirectoryError) if a non-directory is in the way.
    """
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        parent = current.parent
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=mode)
        except FileExistsError:
            if not directory.is_dir():
                raise
        fsync_dir(directory.parent)


def _write_all(fd: int, buffer: bytes | bytearray | memoryview) -> None:
    view = memoryview(buffer).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(
    path: Path,
    data: bytes | bytearray | memoryview | Iterable[bytes],
    *,
    mode: int = 0o644,
) -> None:
    """Durably replace the file at *path* with *data*, all or nothing.

    *data* is one buffer or an iterable of byte strings (streamed, so a large
    file never has to be in memory at once). The file gets exactly *mode*,
    regardless of the umask, and it has it from the moment it exists, so a
    0o600 key file is never readable by others, not even briefly.

    The parent directory must exist (see :func:`makedirs_durable`). On any
    failure, including an exception raised by the *data* iterable, the
    temporary file is removed, *path* keeps its previous content (or stays
    absent) and the exception propagates unchanged. Concurrent writers of the
    same path do not corrupt it: the last rename wins, whole.
    """
    path = Path(path)
    tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}-{path.name[:_MAX_NAME_IN_TEMP]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            if isinstance(data, (bytes, bytearray, memoryview)):
                _write_all(fd, data)
            else:
                for piece in data:
                    _write_all(fd, piece)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        # The original error matters more than a failed cleanup.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


class DurableFile:
    """A file written in pieces, then durably put in place: :func:`atomic_write`
    for data that arrives over time (a pack being filled), so it never has to
    sit in memory whole.

    The temporary file is created in *directory*, which must be on the same
    filesystem as the final path given to :meth:`commit` (a rename is only
    atomic within one filesystem). ``commit`` fsyncs, renames, and fsyncs the
    final directory; ``abort`` removes the temporary file. Not thread-safe.
    """

    def __init__(self, directory: Path, *, mode: int = 0o644) -> None:
        self._tmp = Path(directory) / f"{TEMP_PREFIX}{secrets.token_hex(8)}-stream"
        self._fd: int | None = os.open(
            self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode
        )
        self._mode = mode
        self.size = 0
        try:
            os.fchmod(self._fd, mode)
        except BaseException:
            self.abort()
            raise

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fd is None:
            raise ValueError("write after commit or abort")
        _write_all(self._fd, data)
        self.size += len(data)

    def commit(self, path: Path) -> None:
        """Make the content durable under *path* (replacing any old file)."""
        if self._fd is None:
            raise ValueError("commit after commit or abort")
        fd, self._fd = self._fd, None
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            raise
        fsync_dir(Path(path).parent)

    def abort(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)
