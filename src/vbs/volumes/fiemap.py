"""FIEMAP: where a file's bytes physically are, as the filesystem reports it.

``ioctl(FS_IOC_FIEMAP)`` (linux/fiemap.h) returns the file's *extents*:
logical offset, physical offset on the device, length and flags. Reflink
clones (``FICLONE``) share physical extents with their source until one side
is written, when the filesystem copies on write and the written range gets
new physical blocks. Comparing the extent maps of two snapshots of the same
volume therefore tells which byte ranges may differ without reading them
(:mod:`vbs.volumes.changes`).

Only regular files on filesystems that implement FIEMAP answer; everything
else raises :class:`FiemapUnsupported` and the caller treats the changes as
unknown.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass

__all__ = [
    "EXTENT_UNTRUSTED",
    "FIEMAP_EXTENT_LAST",
    "FIEMAP_EXTENT_UNWRITTEN",
    "FS_IOC_FIEMAP",
    "Extent",
    "FiemapUnsupported",
    "file_extents",
]

FS_IOC_FIEMAP = 0xC020660B  # _IOWR('f', 11, struct fiemap)
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNKNOWN = 0x2
FIEMAP_EXTENT_DELALLOC = 0x4
FIEMAP_EXTENT_ENCODED = 0x8
FIEMAP_EXTENT_NOT_ALIGNED = 0x100
FIEMAP_EXTENT_DATA_INLINE = 0x200
FIEMAP_EXTENT_DATA_TAIL = 0x400
FIEMAP_EXTENT_UNWRITTEN = 0x800
EXTENT_UNTRUSTED = (
    FIEMAP_EXTENT_UNKNOWN
    | FIEMAP_EXTENT_DELALLOC
    | FIEMAP_EXTENT_ENCODED
    | FIEMAP_EXTENT_NOT_ALIGNED
    | FIEMAP_EXTENT_DATA_INLINE
    | FIEMAP_EXTENT_DATA_TAIL
)
"""Flags meaning the physical address does not identify the data on its own
(not yet allocated, compressed, packed with other files' tails): such extents
are always reported as changed."""

_HEADER = struct.Struct("=QQIIII")  # fm_start, fm_length, fm_flags, mapped, count, reserved
_EXTENT = struct.Struct("=QQQQQIIII")  # logical, physical, length, 2x reserved64, flags, 3x res
_BATCH = 1024
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS,
                          errno.EBADR})


class FiemapUnsupported(Exception):
    """The file or its filesystem cannot report extents (the answer is "unknown")."""


@dataclass(frozen=True, slots=True)
class Extent:
    """One mapped range of a file: ``[logical, logical + length)`` at ``physical``."""

    logical: int
    physical: int
    length: int
    flags: int


def file_extents(fd: int, size: int) -> list[Extent]:
    """The sorted extents of ``fd`` within ``[0, size)`` (holes are simply absent).

    Asks with ``FIEMAP_FLAG_SYNC`` so dirty pages are allocated first (the
    callers read immutable snapshots, for which this is a no-op). Raises
    FiemapUnsupported when the ioctl is not implemented for this file.
    """
    out: list[Extent] = []
    start = 0
    buf_len = _HEADER.size + _BATCH * _EXTENT.size
    while start < size:
        buf = bytearray(buf_len)
        _HEADER.pack_into(buf, 0, start, size - start, FIEMAP_FLAG_SYNC, 0, _BATCH, 0)
        try:
            fcntl.ioctl(fd, FS_IOC_FIEMAP, buf, True)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                raise FiemapUnsupported(os.strerror(exc.errno or 0)) from None
            raise
        mapped = _HEADER.unpack_from(buf, 0)[3]
        if mapped == 0:
            break
        last_flags = 0
        for i in range(mapped):
            logical, physical, length, _r1, _r2, flags, _a, _b, _c = _EXTENT.unpack_from(
                buf, _HEADER.size + i * _EXTENT.size
            )
            last_flags = flags
            if logical >= size or length == 0:
                continue
            out.append(Extent(logical, physical, min(length, size - logical), flags))
        if last_flags & FIEMAP_EXTENT_LAST:
            break
        nxt = out[-1].logical + out[-1].length if out else size
        if nxt <= start:  # defensive: a filesystem that does not advance
            raise FiemapUnsupported("FIEMAP did not advance")
        start = nxt
    return out
