"""Hole-aware reading and copying of raw images and block devices.

The backup engine calls :func:`data_extents` to skip holes without reading
them; the file driver uses :func:`try_reflink` and :func:`copy_extents` to
make snapshots.

A note on accuracy: ``SEEK_DATA`` / ``SEEK_HOLE`` are allowed to be
*conservative*. Filesystems that do not track holes report the whole file as
data (the generic VFS fallback), some report data at block or extent
granularity (so a 100-byte write shows up as a 4 KiB or larger extent), and
unwritten/preallocated extents (``fallocate``) may be reported as data on some
filesystems and kernels although they read as zeros. The contract is one-way:
a region reported as a hole always reads as zeros; a region reported as data
may still be all zeros. Callers must therefore still detect zero chunks in
data extents; they must never assume a data extent is non-zero.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "BLKGETSIZE64",
    "FICLONE",
    "copy_extents",
    "copy_sparse",
    "data_extents",
    "fd_size",
    "try_reflink",
]

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h
BLKGETSIZE64 = 0x80081272  # _IOR(0x12, 114, size_t), linux/fs.h, 64-bit
_COPY_BLOCK = 1 << 20
# errnos meaning "this filesystem / file type cannot do that", never "it broke".
_CLONE_UNSUPPORTED = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF}
)
_CFR_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.ENOTTY}
)
_SEEK_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.ESPIPE, errno.ENOSYS})


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, length)`` of the data regions of ``fd`` within ``[0, size)``.

    Extents are sorted, disjoint, non-empty and end at ``min(size, EOF)``: the
    part of ``[0, size)`` not covered reads as zeros (holes, or beyond EOF).
    An all-hole file yields nothing; a file without holes yields one extent.

    When the file does not support ``SEEK_DATA`` (block and character
    devices, pipes, very old filesystems) or answers nonsense (``noop_llseek``
    returning the current position), the rest of the range is yielded as one
    extent: conservative is correct, see the module note. The file position
    of ``fd`` is changed. The result describes the file *while it is being
    iterated*; use it on snapshots, not on volumes being written.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    offset = 0
    while offset < size:
        try:
            data = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data at or after offset
                return
            if exc.errno in _SEEK_UNSUPPORTED:
                yield offset, size - offset
                return
            raise
        if data < offset:  # noop_llseek and friends: hole tracking not supported
            yield offset, size - offset
            return
        if data >= size:
            return
        try:
            hole = os.lseek(fd, data, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno in _SEEK_UNSUPPORTED or exc.errno == errno.ENXIO:
                yield data, size - data
                return
            raise
        if hole <= data:  # nonsense answer: treat the rest as data
            yield data, size - data
            return
        end = min(hole, size)
        yield data, end - data
        offset = end


def fd_size(fd: int) -> int:
    """Size in bytes of a regular file or block device open as ``fd``.

    Block devices report ``st_size == 0``, so they are asked with
    ``BLKGETSIZE64``, falling back to seeking to the end.
    """
    st = os.fstat(fd)
    if not stat.S_ISBLK(st.st_mode):
        return st.st_size
    try:
        buf = fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8)
        return int(struct.unpack("Q", buf)[0])
    except OSError:
        pos = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.lseek(fd, pos, os.SEEK_SET)


def try_reflink(src_fd: int, dst_fd: int) -> bool:
    """Clone all of ``src_fd`` into ``dst_fd`` with ``ioctl(FICLONE)``; False if unsupported.

    The clone shares extents copy-on-write, costs no data I/O, sets the
    destination size and is atomic with respect to ``write(2)`` on the source
    (the kernel flushes and locks both inodes), which is what makes a reflink
    snapshot point-in-time. "Unsupported" covers: filesystem without reflink
    (EOPNOTSUPP), different filesystems (EXDEV), not a regular file (EINVAL).
    Other errors (ENOSPC, EIO) are raised.
    """
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as exc:
        if exc.errno in _CLONE_UNSUPPORTED:
            return False
        raise
    return True


def copy_extents(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy the data extents of ``src_fd`` in ``[0, size)`` to the same offsets of ``dst_fd``.

    Precondition: ``dst_fd`` reads as zeros over the range (a fresh file that
    was ``ftruncate``\\ d to ``size``), because holes are skipped and, on the
    read/write path, all-zero blocks are not written either. That keeps
    copies of sparse files sparse and turns zero ranges of a block device
    into holes of the copy. Uses ``copy_file_range`` (in-kernel, may offload)
    and falls back to ``pread``/``pwrite`` where it is not supported (block
    device sources, cross-filesystem on old kernels). A source that shrinks
    during the copy ends the copy early instead of looping.
    """
    use_cfr = True
    zero = bytes(_COPY_BLOCK)
    for start, length in list(data_extents(src_fd, size)):
        pos, end = start, start + length
        while pos < end and use_cfr:
            try:
                n = os.copy_file_range(
                    src_fd, dst_fd, min(end - pos, 1 << 30), offset_src=pos, offset_dst=pos
                )
            except OSError as exc:
                if exc.errno not in _CFR_UNSUPPORTED:
                    raise
                use_cfr = False
                break
            if n == 0:
                return
            pos += n
        while pos < end:
            buf = os.pread(src_fd, min(end - pos, _COPY_BLOCK), pos)
            if not buf:
                return
            if buf != zero[: len(buf)]:
                view = memoryview(buf)
                at = pos
                while view:
                    written = os.pwrite(dst_fd, view, at)
                    view, at = view[written:], at + written
            pos += len(buf)


def copy_sparse(src: Path, dst: Path) -> None:
    """Copy ``src`` (regular file or block device) to a new regular file ``dst``, keeping holes.

    ``dst`` must not exist (no silent overwrite). The copy has the source's
    size, is fsynced, and has holes where the source has holes (or zero
    blocks, on the read/write path). The caller fsyncs the directory if the
    new name must survive a crash. On failure ``dst`` is removed.
    """
    src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = fd_size(src_fd)
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(dst_fd, size)
            copy_extents(src_fd, dst_fd, size)
            os.fsync(dst_fd)
        except BaseException:
            os.close(dst_fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dst)
            raise
        os.close(dst_fd)
    finally:
        os.close(src_fd)
