"""Restore: write a backup's chunks to a file or block device, byte for byte.

Zero chunks are left as holes in regular files (a new target is created
sparse; in an existing file they are punched with fallocate) and written as
zeros on block devices. Every chunk is authenticated and re-hashed before it
is written (see reader.py); a corrupt or missing chunk stops the restore with
an error naming the chunk and its volume offset. The target is fsynced
before success is reported.

Chunks are written in runs of up to 1 MiB with ``O_DIRECT`` where the target
allows it (vbs.direct_io): on a fresh target the page-cache first touch of
every new page, not decryption or decompression, bounded restore time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import threading
import time
from dataclasses import dataclass

from vbs.direct_io import OffsetWriter
from vbs.errors import TargetError
from vbs.repository.index import ChunkIndex
from vbs.repository.manifest import ManifestRoot
from vbs.repository.repo import ProjectStore

from .common import CancelToken, ProgressFn
from .memory import keep_freed_memory
from .reader import Geometry, plan_groups, read_backup
from .restore_procs import StartMethod, restore_on_processes

__all__ = ["RestoreStats", "restore"]

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
ZERO_WRITE = 1024 * 1024

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_fallocate.restype = ctypes.c_int


@dataclass(frozen=True)
class RestoreStats:
    volume_size: int
    bytes_written: int
    chunks_written: int
    seconds: float


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate a range (reads back as zeros); False if the fs cannot."""
    rc: int = _fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)
    return rc == 0


def _write_zeros(fd: int, offset: int, length: int) -> None:
    zeros = bytes(min(ZERO_WRITE, length))
    end = offset + length
    while offset < end:
        n = os.pwrite(fd, zeros[: min(len(zeros), end - offset)], offset)
        offset += n


def restore(
    store: ProjectStore,
    backup_id: str,
    target: str | os.PathLike[str] | int,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    index: ChunkIndex | None = None,
    workers: int = 4,
    processes: int = 1,
    start_method: StartMethod = "forkserver",
) -> RestoreStats:
    """Restore backup ``backup_id`` into ``target``.

    A missing target path is created as a sparse file of the volume size. An
    existing regular file smaller than the volume is grown; a block device
    (or file) must be at least the volume size. Bytes beyond the volume size
    in a larger target are left as they were. ``target`` may also be an open
    writable descriptor (the caller verified what it is, e.g. an imported
    volume, and keeps ownership; the engine works on a duplicate).

    ``workers`` is more than the core count on purpose: direct writes block
    their thread until the device has the data, and the other threads keep
    decrypting and decompressing meanwhile.

    With ``processes`` > 1 and a repository other processes can read (a
    local directory), chunks are decoded and written by that many worker
    processes started with ``start_method`` instead of ``workers`` threads
    (:mod:`vbs.engine.restore_procs` says why, and when ``fork`` is safe).
    """
    t0 = time.monotonic()
    keep_freed_memory()
    root = store.load_manifest(backup_id)
    if index is None:
        index = store.load_index()
    if isinstance(target, int):
        path = f"descriptor {target}"
        fd, fresh = _check_target(os.dup(target), path, root), False
    else:
        path = os.fspath(target)
        fd, fresh = _open_target(path, root)
    try:
        is_reg = stat.S_ISREG(os.fstat(fd).st_mode)
        written = [0, 0]
        wlock = threading.Lock()
        cs = root.chunk_size

        def zero_sink(first: int, count: int) -> None:
            if fresh:
                return
            off = first * cs
            length = min(count * cs, root.volume_size - off)
            if not (is_reg and _punch_hole(fd, off, length)):
                _write_zeros(fd, off, length)

        done = [0]

        def on_progress(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(min(done[0], root.volume_size), root.volume_size)

        try:
            if processes > 1 and store.packs.shareable and os.path.exists(f"/proc/self/fd/{fd}"):
                res = restore_on_processes(
                    plan_groups(store, root, index, zero_sink=zero_sink),
                    packs=store.packs,
                    codec=store.codec,
                    fd=fd,
                    geometry=Geometry.of(root),
                    processes=processes,
                    start_method=start_method,
                    cancel=cancel or CancelToken(),
                    progress=on_progress,
                )
                written[0], written[1] = res.bytes_written, res.chunks_written
            else:
                # Only the threads write through this process's own writer
                # (workers open theirs): no idle direct descriptor otherwise.
                out = OffsetWriter(fd, path)

                def sink(plaintext: bytes, chunk_nos: list[int]) -> None:
                    for no in chunk_nos:
                        out.write(no * cs, plaintext)
                    with wlock:
                        written[0] += len(plaintext) * len(chunk_nos)
                        written[1] += len(chunk_nos)

                try:
                    read_backup(
                        store,
                        root,
                        index,
                        sink,
                        zero_sink=zero_sink,
                        cancel=cancel,
                        progress=on_progress,
                        workers=workers,
                    )
                    out.flush()
                finally:
                    out.close()
            os.fsync(fd)
        except OSError as exc:
            raise TargetError(f"writing {path}: {exc.strerror}") from None
        if progress is not None:
            progress(root.volume_size, root.volume_size)
        return RestoreStats(root.volume_size, written[0], written[1], time.monotonic() - t0)
    finally:
        os.close(fd)


def _open_target(path: str, root: ManifestRoot) -> tuple[int, bool]:
    """Open or create the target; the flag says it was created (all holes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            os.ftruncate(fd, root.volume_size)
        except OSError:
            os.close(fd)
            raise
        return fd, True
    except FileExistsError:
        pass
    except OSError as exc:
        raise TargetError(f"cannot create {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise TargetError(f"cannot open {path}: {exc.strerror}") from None
    return _check_target(fd, path, root), False


def _check_target(fd: int, path: str, root: ManifestRoot) -> int:
    """Grow a small regular file to the volume size; refuse a small device.
    Closes ``fd`` on failure."""
    try:
        st = os.fstat(fd)
        size = os.lseek(fd, 0, os.SEEK_END)
        if stat.S_ISREG(st.st_mode):
            if size < root.volume_size:
                os.ftruncate(fd, root.volume_size)
        elif size < root.volume_size:
            raise TargetError(
                f"target {path} holds {size} bytes, the backup needs {root.volume_size}"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd
