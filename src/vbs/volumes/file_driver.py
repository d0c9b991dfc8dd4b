"""FileVolumeDriver: volumes as sparse raw image files in one directory.

Layout and id rules are in :mod:`vbs.volumes.layout`; the concurrency table
is in the package docstring. Snapshots are reflink clones when the
filesystem supports ``FICLONE`` (XFS with reflink=1, btrfs, bcachefs, ...),
otherwise hole-preserving copies. The root must be a local filesystem that
supports ``link(2)`` and ``flock(2)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from vbs.volumes.base import SnapshotHandle, SnapshotMethod, VolumeHandle
from vbs.volumes.changes import changed_ranges
from vbs.volumes.durable import fsync_dir, publish_noreplace, temp_path
from vbs.volumes.errors import (
    InvalidVolumeSize,
    SnapshotExists,
    SnapshotNotFound,
    UnsupportedOperation,
    VolumeExists,
    VolumeIOError,
    VolumeNotFound,
)
from vbs.volumes.layout import (
    TEMP_PREFIX,
    lock_file,
    registry_file,
    snapshot_file,
    snapshots_dir,
    validate_id,
    volume_file,
)
from vbs.volumes.registry import ImportIdentity, load_identities, load_registry, save_registry
from vbs.volumes.sparse import copy_extents, fd_size, try_reflink
from vbs.volumes.verified_open import open_imported

__all__ = ["FileVolumeDriver"]


@contextlib.contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn unexpected OSErrors into VolumeIOError naming the action; keep the cause."""
    try:
        yield
    except OSError as exc:
        raise VolumeIOError(f"{action}: {exc.strerror or exc}", exc.errno) from exc


def _check_size(size_bytes: object, what: str = "size") -> int:
    if not isinstance(size_bytes, int) or isinstance(size_bytes, bool) or size_bytes <= 0:
        raise InvalidVolumeSize(f"{what} must be a positive int of bytes, got {size_bytes!r}")
    return size_bytes


class FileVolumeDriver:
    """Volumes at ``root/ID.img``, snapshots at ``root/snapshots/ID.img``.

    ``reflink`` chooses the snapshot method: ``None`` tries ``FICLONE`` and
    falls back to copying, ``True`` requires reflink (UnsupportedOperation if
    the filesystem or source cannot do it), ``False`` always copies. The
    constructor touches no disk; directories are created on first write.
    """

    def __init__(self, root: Path, *, reflink: bool | None = None) -> None:
        self._root = Path(root).absolute()
        self._reflink = reflink

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"FileVolumeDriver({str(self._root)!r}, reflink={self._reflink!r})"

    # -- namespace ---------------------------------------------------------

    def _ensure_dirs(self) -> None:
        for directory in (self._root, snapshots_dir(self._root)):
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                fsync_dir(directory.parent)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive namespace lock (across threads and processes): flock on ``root/.lock``.

        Held only for short metadata steps, never while data is copied.
        """
        self._ensure_dirs()
        fd = os.open(lock_file(self._root), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _imported(self) -> dict[str, Path]:
        return load_registry(registry_file(self._root))

    def is_imported(self, volume_id: str) -> bool:
        """True if the volume is a registered external file or device."""
        return validate_id(volume_id) in self._imported()

    def exists(self, volume_id: str) -> bool:
        own = volume_file(self._root, volume_id)
        return own.exists() or volume_id in self._imported()

    def path(self, volume_id: str) -> Path:
        own = volume_file(self._root, volume_id)
        external = self._imported().get(volume_id)
        if external is not None:
            return external
        if own.exists():
            return own
        raise VolumeNotFound(f"volume {volume_id} does not exist")

    def open_volume(self, volume_id: str, flags: int = os.O_RDONLY) -> int:
        """Open the volume's bytes; the caller closes the descriptor.

        An imported volume is opened only if it is still the file or device
        that was imported (:func:`vbs.volumes.verified_open.open_imported`:
        no symlink, same path, same device and inode), else
        :class:`ImportedVolumeChanged`. Use this, never ``open(path(...))``.
        """
        external = self._imported().get(validate_id(volume_id))
        if external is not None:
            identity = load_identities(registry_file(self._root)).get(volume_id)
            return open_imported(volume_id, external, identity, flags)
        own = volume_file(self._root, volume_id)
        try:
            return os.open(own, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise VolumeNotFound(f"volume {volume_id} does not exist") from exc

    def size(self, volume_id: str) -> int:
        path = self.path(volume_id)
        fd = self.open_volume(volume_id)
        with _os_errors(f"size of volume {volume_id} at {path}"):
            try:
                return fd_size(fd)
            finally:
                os.close(fd)

    # -- volumes -----------------------------------------------------------

    def create(self, volume_id: str, size_bytes: int) -> VolumeHandle:
        final = volume_file(self._root, volume_id)
        _check_size(size_bytes)
        with _os_errors(f"create volume {volume_id}"), self._locked():
            self._refuse_taken(volume_id, final)
            tmp = temp_path(self._root, volume_id)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.ftruncate(fd, size_bytes)
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
            os.close(fd)
            if not publish_noreplace(tmp, final):
                raise VolumeExists(f"volume {volume_id} already exists")
        return VolumeHandle(volume_id, final, size_bytes)

    def create_from_snapshot(
        self, volume_id: str, snapshot_id: str, size_bytes: int
    ) -> VolumeHandle:
        final = volume_file(self._root, volume_id)
        source = self.snapshot_path(snapshot_id)
        _check_size(size_bytes)
        if self.exists(volume_id):  # cheap early answer; the lock below is authoritative
            raise VolumeExists(f"volume {volume_id} already exists")
        self._ensure_dirs()
        tmp = temp_path(self._root, volume_id)
        with _os_errors(f"create volume {volume_id} from snapshot {snapshot_id}"):
            try:
                src_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise SnapshotNotFound(f"snapshot {snapshot_id} does not exist") from exc
            try:
                snap_size = fd_size(src_fd)
                if size_bytes < snap_size:
                    raise InvalidVolumeSize(
                        f"size {size_bytes} is smaller than snapshot {snapshot_id} "
                        f"({snap_size} bytes)"
                    )
                self._clone_into(src_fd, tmp, snap_size, is_block=False, grow_to=size_bytes)
            finally:
                os.close(src_fd)
            try:
                with self._locked():
                    self._refuse_taken(volume_id, final)
                    if not publish_noreplace(tmp, final):
                        raise VolumeExists(f"volume {volume_id} already exists")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return VolumeHandle(volume_id, final, size_bytes)

    def delete(self, volume_id: str) -> None:
        own = volume_file(self._root, volume_id)
        if not self._root.is_dir():
            return
        with _os_errors(f"delete volume {volume_id}"), self._locked():
            imported = self._imported()
            if imported.pop(volume_id, None) is not None:
                save_registry(registry_file(self._root), imported)
            try:
                os.unlink(own)
            except FileNotFoundError:
                return
            fsync_dir(self._root)

    def extend(self, volume_id: str, new_size_bytes: int) -> None:
        _check_size(new_size_bytes, "new size")
        if self.is_imported(volume_id):
            raise UnsupportedOperation(
                f"volume {volume_id} is imported from {self.path(volume_id)}; "
                "VBS does not resize files or devices it does not own"
            )
        own = volume_file(self._root, volume_id)
        with _os_errors(f"extend volume {volume_id}"):
            try:
                fd = os.open(own, os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise VolumeNotFound(f"volume {volume_id} does not exist") from exc
            try:
                current = os.fstat(fd).st_size
                if new_size_bytes < current:
                    raise InvalidVolumeSize(
                        f"volume {volume_id} is {current} bytes; cannot shrink to "
                        f"{new_size_bytes} (extend only grows)"
                    )
                if new_size_bytes > current:
                    os.ftruncate(fd, new_size_bytes)
                    os.fsync(fd)
            finally:
                os.close(fd)

    # -- snapshots ---------------------------------------------------------

    def snapshot(self, volume_id: str, snapshot_id: str) -> SnapshotHandle:
        final = snapshot_file(self._root, snapshot_id)
        source = self.path(volume_id)
        if final.exists():  # early answer; publish_noreplace is authoritative
            raise SnapshotExists(f"snapshot {snapshot_id} already exists")
        self._ensure_dirs()
        tmp = temp_path(final.parent, snapshot_id)
        with _os_errors(f"snapshot volume {volume_id} as {snapshot_id}"):
            src_fd = self.open_volume(volume_id)
            try:
                mode = os.fstat(src_fd).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
                    raise UnsupportedOperation(
                        f"volume {volume_id}: {source} is neither a file nor a block device"
                    )
                method, size = self._clone_into(
                    src_fd,
                    tmp,
                    fd_size(src_fd),
                    is_block=stat.S_ISBLK(mode),
                    read_only=True,
                )
            finally:
                os.close(src_fd)
            if not publish_noreplace(tmp, final):
                raise SnapshotExists(f"snapshot {snapshot_id} already exists")
        return SnapshotHandle(snapshot_id, final, size, method)

    def snapshot_path(self, snapshot_id: str) -> Path:
        final = snapshot_file(self._root, snapshot_id)
        if not final.exists():
            raise SnapshotNotFound(f"snapshot {snapshot_id} does not exist")
        return final

    def changed_ranges(
        self, base_snapshot: SnapshotHandle, new_snapshot: SnapshotHandle
    ) -> list[tuple[int, int]] | None:
        """Byte ranges of ``new_snapshot`` that may differ from ``base_snapshot``.

        Both must be snapshots of the same volume. Reflink clones are compared
        by their FIEMAP extent maps (:mod:`vbs.volumes.changes`); copies, block
        devices and filesystems without FIEMAP answer ``None`` ("unknown").
        """
        if base_snapshot.method != "reflink" or new_snapshot.method != "reflink":
            return None
        return changed_ranges(base_snapshot.path, new_snapshot.path, clones=True)

    def delete_snapshot(self, snapshot_id: str) -> None:
        final = snapshot_file(self._root, snapshot_id)
        with _os_errors(f"delete snapshot {snapshot_id}"):
            try:
                os.unlink(final)
            except FileNotFoundError:
                return
            fsync_dir(final.parent)

    # -- maintenance and internals ----------------------------------------

    def remove_temporaries(self) -> int:
        """Delete ``.tmp-*`` leftovers of interrupted operations; return how many.

        Only safe when no operation on this root is in progress (e.g. at
        service start, before workers run): in-flight operations use the same
        names.
        """
        removed = 0
        for directory in (self._root, snapshots_dir(self._root)):
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if entry.name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()
                        removed += 1
            if removed:
                fsync_dir(directory)
        return removed

    def _refuse_taken(self, volume_id: str, own: Path) -> None:
        """Under the lock: the id must be free in both namespaces (own files, registry)."""
        if own.exists() or volume_id in self._imported():
            raise VolumeExists(f"volume {volume_id} already exists")

    def _register_external(self, volume_id: str, target: Path,
                           identity: ImportIdentity | None = None) -> None:
        """Record ``target`` as volume ``volume_id``. Only for :func:`import_volume`,
        which enforces the allowlist; ``target`` must already be resolved.
        ``identity`` (device, inode, root) is re-checked on every open."""
        with _os_errors(f"register volume {volume_id}"), self._locked():
            self._refuse_taken(volume_id, volume_file(self._root, volume_id))
            imported = self._imported()
            for other, path in imported.items():
                if path == target:
                    raise VolumeExists(f"{target} is already imported as volume {other}")
            imported[volume_id] = target
            identities = load_identities(registry_file(self._root))
            if identity is not None:
                identities[volume_id] = identity
            save_registry(registry_file(self._root), imported, identities)

    def _clone_into(
        self,
        src_fd: int,
        tmp: Path,
        size: int,
        *,
        is_block: bool,
        grow_to: int = 0,
        read_only: bool = False,
    ) -> tuple[SnapshotMethod, int]:
        """Fill the new file ``tmp`` from ``src_fd``: reflink or sparse copy, then fsync.

        Returns the method and the resulting size (a reflink clones the source
        as it is at clone time, which may differ from ``size``). Removes
        ``tmp`` on failure. Snapshots are created mode 0400 as a reminder that
        they are immutable; volumes 0600.
        """
        dst_fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400 if read_only else 0o600
        )
        try:
            method: SnapshotMethod = "copy"
            if self._reflink is not False and not is_block and try_reflink(src_fd, dst_fd):
                method = "reflink"
            elif self._reflink is True:
                raise UnsupportedOperation(
                    "reflink was required but FICLONE is not supported here "
                    f"({'block device source' if is_block else 'filesystem or cross-device'})"
                )
            else:
                os.ftruncate(dst_fd, size)
                copy_extents(src_fd, dst_fd, size)
            if grow_to > os.fstat(dst_fd).st_size:
                os.ftruncate(dst_fd, grow_to)
            os.fsync(dst_fd)
            final_size = os.fstat(dst_fd).st_size
        except BaseException:
            os.close(dst_fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        os.close(dst_fd)
        return method, final_size
