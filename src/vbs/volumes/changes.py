"""Changed ranges between two snapshots of one volume, from their extent maps.

On a reflink filesystem (XFS with ``reflink=1``, btrfs, bcachefs) a snapshot
made with ``FICLONE`` shares every physical extent with its volume; later
writes to the volume are copied on write into new extents. Two snapshots of
the same volume therefore hold the same data at a logical offset whenever
both map that offset to the same physical block, or both have a hole there.
Everything else is reported as *changed*: different physical blocks, data on
one side and a hole on the other (holes punched or filled), extents whose
flags make the address meaningless (delayed allocation, inline data, ...)
and unwritten-versus-written differences. Over-reporting costs reads; it
never loses data. Under-reporting cannot happen as long as nobody writes to
a snapshot in place (snapshots are mode 0400 and the driver never opens them
for writing).

:func:`changed_ranges` answers ``None`` ("unknown") when it cannot tell:
FIEMAP unsupported, files on different filesystems, or two snapshots that
share no extent at all although both hold data (copies, not clones).
"""

from __future__ import annotations

import os
from pathlib import Path

from vbs.volumes.fiemap import (
    EXTENT_UNTRUSTED,
    FIEMAP_EXTENT_UNWRITTEN,
    Extent,
    FiemapUnsupported,
    file_extents,
)

__all__ = ["changed_ranges", "diff_extents", "merge_ranges"]


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort ``(offset, length)`` ranges and merge overlapping or touching ones."""
    out: list[tuple[int, int]] = []
    for off, length in sorted(r for r in ranges if r[1] > 0):
        if out and off <= out[-1][0] + out[-1][1]:
            last_off, last_len = out[-1]
            out[-1] = (last_off, max(last_len, off + length - last_off))
        else:
            out.append((off, length))
    return out


def _segments(extents: list[Extent], size: int) -> list[tuple[int, int, Extent | None]]:
    """Cover ``[0, size)`` with (start, end, extent-or-None for a hole), in order."""
    out: list[tuple[int, int, Extent | None]] = []
    pos = 0
    for e in extents:
        if e.logical > pos:
            out.append((pos, e.logical, None))
        start = max(pos, e.logical)
        end = min(size, e.logical + e.length)
        if end > start:
            out.append((start, end, e))
            pos = end
    if pos < size:
        out.append((pos, size, None))
    return out


def _same(a: Extent | None, b: Extent | None, at: int) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if (a.flags | b.flags) & EXTENT_UNTRUSTED:
        return False
    if (a.flags ^ b.flags) & FIEMAP_EXTENT_UNWRITTEN:
        return False
    return a.physical + (at - a.logical) == b.physical + (at - b.logical)


def diff_extents(
    base: list[Extent], new: list[Extent], base_size: int, new_size: int
) -> list[tuple[int, int]]:
    """Byte ranges of ``[0, new_size)`` where the two extent maps differ (merged).

    Bytes beyond ``base_size`` (a grown volume) are changed; a shrunk
    volume has no bytes beyond ``new_size`` to report.
    """
    common = min(base_size, new_size)
    sa, sb = _segments(base, common), _segments(new, common)
    changed: list[tuple[int, int]] = []
    i = j = 0
    pos = 0
    while pos < common:
        a_start, a_end, a = sa[i]
        b_start, b_end, b = sb[j]
        end = min(a_end, b_end)
        if not _same(a, b, pos):
            changed.append((pos, end - pos))
        pos = end
        if a_end == end:
            i += 1
        if b_end == end:
            j += 1
    if new_size > common:
        changed.append((common, new_size - common))
    return merge_ranges(changed)


def changed_ranges(
    base_snapshot: Path, new_snapshot: Path, *, clones: bool = False
) -> list[tuple[int, int]] | None:
    """Byte ranges in which ``new_snapshot`` may differ from ``base_snapshot``.

    Both are snapshot files of the same volume. ``None`` means "unknown":
    the caller must read everything. ``clones=True`` says the caller knows
    both were made with FICLONE (so two maps sharing nothing mean the whole
    volume was rewritten, not that the files are copies).
    """
    try:
        fa = os.open(base_snapshot, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fb = os.open(new_snapshot, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(fa)
        return None
    try:
        sta, stb = os.fstat(fa), os.fstat(fb)
        if sta.st_dev != stb.st_dev:
            return None
        try:
            ea = file_extents(fa, sta.st_size)
            eb = file_extents(fb, stb.st_size)
        except FiemapUnsupported:
            return None
        if not clones and ea and eb and not _shares_any(ea, eb):
            return None  # copies, not clones: the maps say nothing
        return diff_extents(ea, eb, sta.st_size, stb.st_size)
    finally:
        os.close(fa)
        os.close(fb)


def _shares_any(a: list[Extent], b: list[Extent]) -> bool:
    """True if some physical block is in both maps (sweep over physical order)."""
    pa = sorted((e.physical, e.physical + e.length) for e in a)
    pb = sorted((e.physical, e.physical + e.length) for e in b)
    i = j = 0
    while i < len(pa) and j < len(pb):
        if pa[i][0] < pb[j][1] and pb[j][0] < pa[i][1]:
            return True
        if pa[i][1] <= pb[j][1]:
            i += 1
        else:
            j += 1
    return False
