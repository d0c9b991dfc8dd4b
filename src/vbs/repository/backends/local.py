"""Local directory backend: key ``a/b/c`` is the file ``<root>/a/b/c``.

Atomicity and durability come from :func:`vbs.fsutil.atomic_write` (temp
file in the same directory, fsync, rename, fsync directory), so readers see a
whole object or none, and a crash never leaves a partial object under a real
name. Concurrency needs no locks: every put writes its own randomly named
temp file and the final rename is atomic, readers hold an open descriptor on
one inode (an overwrite replaces the name, not the bytes they read), and
directory creation tolerates racing creators. That holds across threads and
across processes sharing the directory.

Objects are created with mode 0o600: a repository is private to the service
user, even though its data is encrypted.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from vbs.direct_io import AlignedBuffer, DirectDurableFile, read_range_direct
from vbs.errors import BackendError, ObjectNotFound, TransientBackendError
from vbs.fsutil import DurableFile, atomic_write, fsync_dir, is_temp_name, makedirs_durable
from vbs.repository.backends.base import ObjectInfo, validate_key, validate_prefix

__all__ = ["LocalBackend"]

_FILE_MODE = 0o600

# Errors that a later attempt may not see: I/O errors and stale handles on
# network filesystems (NFS, CIFS), timeouts, interrupted or busy resources.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.EIO,
        errno.EAGAIN,
        errno.EINTR,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
    }
)

# A path component that is a file, or a name that is a directory: the key
# does not name an object.
_NOT_AN_OBJECT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _backend_error(exc: OSError, action: str, key: str) -> BackendError:
    """Translate an OSError into the backend error tree (transient or permanent)."""
    message = f"local backend: {action} {key!r} failed: {exc.strerror or exc}"
    if exc.errno in _TRANSIENT_ERRNOS:
        return TransientBackendError(message)
    return BackendError(message)


class LocalBackend:
    """A :class:`~vbs.repository.backends.base.Backend` on a local (or mounted) directory.

    *root* need not exist yet: the first put creates it and any parent
    directories durably. Until then ``list`` yields nothing and ``get``
    raises ObjectNotFound, exactly like an empty bucket. Safe for concurrent
    use by many threads and several processes.
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def location(self) -> str:
        return str(self._root)

    @property
    def root(self) -> Path:
        """The directory holding the objects."""
        return self._root

    def _path(self, key: str) -> Path:
        return self._root / validate_key(key)

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        path = self._path(key)
        try:
            try:
                atomic_write(path, data, mode=_FILE_MODE)
            except FileNotFoundError:
                makedirs_durable(path.parent)
                atomic_write(path, data, mode=_FILE_MODE)
        except OSError as exc:
            raise _backend_error(exc, "put", key) from exc

    def open_writer(self) -> LocalObjectWriter:
        """A streaming writer (optional protocol :class:`StreamingBackend`):
        bytes go straight to a temporary file under the root; ``commit(key)``
        makes them durable under *key* as atomically as :meth:`put`. The bulk
        is written with ``O_DIRECT`` where the filesystem allows it
        (:class:`vbs.direct_io.DirectDurableFile`): packs are not read back
        soon, and page-cache writes cost a backup as much CPU as zstd."""
        try:
            makedirs_durable(self._root)
            return LocalObjectWriter(self, DirectDurableFile(self._root, mode=_FILE_MODE))
        except OSError as exc:
            raise _backend_error(exc, "put", "(stream)") from exc

    def read_range_view(self, key: str, offset: int, length: int,
                        buf: AlignedBuffer) -> memoryview:
        """Optional protocol :class:`~vbs.repository.backends.base.RangeViewBackend`:
        like ``get(key, offset, length)`` but read into the caller's reusable
        ``buf``, around the page cache unless the range is cached (see
        :func:`vbs.direct_io.read_range_direct`);
        the view is valid until ``buf`` is used again."""
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0, got {offset}, {length}")
        path = self._path(key)
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise ObjectNotFound(f"local backend: no object {key!r} in {self._root}")
            return read_range_direct(path, offset, length, buf)
        except _NOT_AN_OBJECT as exc:
            raise ObjectNotFound(f"local backend: no object {key!r} in {self._root}") from exc
        except OSError as exc:
            raise _backend_error(exc, "get", key) from exc

    def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(key)
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0 or None, got {length}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except _NOT_AN_OBJECT as exc:
            raise ObjectNotFound(f"local backend: no object {key!r} in {self._root}") from exc
        except OSError as exc:
            raise _backend_error(exc, "get", key) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ObjectNotFound(f"local backend: no object {key!r} in {self._root}")
            end = st.st_size if length is None else min(st.st_size, offset + length)
            pieces: list[bytes] = []
            position = offset
            while position < end:
                piece = os.pread(fd, end - position, position)
                if not piece:  # truncated under us; return what exists
                    break
                pieces.append(piece)
                position += len(piece)
            return b"".join(pieces)
        except OSError as exc:
            raise _backend_error(exc, "get", key) from exc
        finally:
            os.close(fd)

    def exists(self, key: str) -> bool:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise _backend_error(exc, "exists", key) from exc
        return stat.S_ISREG(st.st_mode)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        directory, _, name_start = prefix.rpartition("/")
        start = self._root / directory if directory else self._root
        return self._walk(start, directory, name_start)

    def _walk(self, start: Path, start_key: str, name_start: str) -> Iterator[ObjectInfo]:
        """Depth-first walk; only names in *start* are filtered by *name_start*.

        Directories or files that vanish during the walk (concurrent deletes)
        are skipped, not errors. Symlinks are never followed or listed.
        """
        stack: list[tuple[str, str, str]] = [(str(start), start_key, name_start)]
        while stack:
            directory, dir_key, name_filter = stack.pop()
            try:
                entries = os.scandir(directory)
            except _NOT_AN_OBJECT:
                continue
            except OSError as exc:
                raise _backend_error(exc, "list", dir_key or "/") from exc
            with entries:
                try:
                    for entry in entries:
                        name = entry.name
                        if not name.startswith(name_filter) or is_temp_name(name):
                            continue
                        key = f"{dir_key}/{name}" if dir_key else name
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                stack.append((entry.path, key, ""))
                                continue
                            if not entry.is_file(follow_symlinks=False):
                                continue
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        yield ObjectInfo(key=key, size=st.st_size, mtime=st.st_mtime)
                except OSError as exc:
                    raise _backend_error(exc, "list", dir_key or "/") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except _NOT_AN_OBJECT:
            return
        except OSError as exc:
            raise _backend_error(exc, "delete", key) from exc
        try:
            fsync_dir(path.parent)
        except OSError as exc:
            raise _backend_error(exc, "delete", key) from exc

    def close(self) -> None:
        """Nothing to release: no descriptors stay open between calls."""

    def __repr__(self) -> str:
        return f"LocalBackend({str(self._root)!r})"


class LocalObjectWriter:
    """An object being written to a LocalBackend; see ``LocalBackend.open_writer``."""

    def __init__(self, backend: LocalBackend, file: DurableFile) -> None:
        self._backend = backend
        self._file = file

    @property
    def size(self) -> int:
        return self._file.size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            self._file.abort()
            raise _backend_error(exc, "put", "(stream)") from exc

    def commit(self, key: str) -> None:
        path = self._backend._path(key)
        try:
            makedirs_durable(path.parent)
            self._file.commit(path)
        except OSError as exc:
            self._file.abort()
            raise _backend_error(exc, "put", key) from exc

    def abort(self) -> None:
        self._file.abort()
