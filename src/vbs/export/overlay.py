"""Copy-on-write overlay: writes to an export land in a local file, never the repository.

The overlay is a sparse file of the volume's size plus a bitmap with one bit
per 4 KiB *block* (``<overlay>.map``). A block whose bit is set is read from
the overlay file; any other block from the backup. A write covering part of
a block first copies the block's backup bytes into the overlay (read-modify-
write), so a set bit always means "the whole block is here". Flush fsyncs
the overlay file, then writes and fsyncs the bitmap: after a crash a set bit
never points at bytes that were not written (the worst case is a lost bit,
i.e. a write not yet flushed, which NBD allows).

An overlay ends in one of two ways: :meth:`CowDevice.discard` deletes both
files; or it becomes a volume: :meth:`CowDevice.complete` copies every block
still in the backup into the overlay file, leaving it a full raw image of the
modified volume (zero chunks stay holes), and :meth:`CowDevice.write_image`
writes that image into a new (sparse) volume file instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from vbs.fsutil import atomic_write

from .source import BackupSource

__all__ = ["BLOCK", "CowDevice"]

BLOCK = 4096


class CowDevice:
    """A writable view: the backup below, the overlay on top. Thread-safe."""

    writable = True

    def __init__(self, base: BackupSource, path: Path) -> None:
        self.base = base
        self.path = path
        self.map_path = path.with_name(path.name + ".map")
        self._lock = threading.Lock()
        nblocks = (base.size + BLOCK - 1) // BLOCK
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if os.fstat(self._fd).st_size != base.size:
            os.ftruncate(self._fd, base.size)
        self._bits = bytearray((nblocks + 7) // 8)
        try:
            saved = self.map_path.read_bytes()
            if len(saved) == len(self._bits):
                self._bits[:] = saved
        except FileNotFoundError:
            pass
        self.dirty_blocks = sum(bin(b).count("1") for b in self._bits)

    @property
    def size(self) -> int:
        return self.base.size

    def _has(self, block: int) -> bool:
        return bool(self._bits[block >> 3] & (1 << (block & 7)))

    def _set(self, block: int) -> None:
        if not self._has(block):
            self._bits[block >> 3] |= 1 << (block & 7)
            self.dirty_blocks += 1

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        end = offset + length
        pos = offset
        with self._lock:
            while pos < end:
                block = pos // BLOCK
                mine = self._has(block)
                run_end = min(end, (block + 1) * BLOCK)
                while run_end < end and self._has(run_end // BLOCK) == mine:
                    run_end = min(end, run_end + BLOCK)
                if mine:
                    out += os.pread(self._fd, run_end - pos, pos)
                else:
                    out += self.base.read(pos, run_end - pos)
                pos = run_end
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        with self._lock:
            first, last = offset // BLOCK, (end - 1) // BLOCK
            for block in {first, last}:
                lo, hi = block * BLOCK, min(self.size, (block + 1) * BLOCK)
                if self._has(block) or (offset <= lo and end >= hi):
                    continue
                os.pwrite(self._fd, self.base.read(lo, hi - lo), lo)  # copy-on-write
            view = memoryview(data)
            pos = offset
            while view:
                n = os.pwrite(self._fd, view, pos)
                view, pos = view[n:], pos + n
            for block in range(first, last + 1):
                self._set(block)

    def flush(self) -> None:
        with self._lock:
            os.fsync(self._fd)
            atomic_write(self.map_path, bytes(self._bits), mode=0o600)

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        """Blocks written in the overlay count as data; the rest as the backup says."""
        base = self.base.extents(offset, length)
        if not self.dirty_blocks:
            return base
        runs: list[tuple[int, bool]] = []
        pos = offset
        for n, zero in base:
            seg_end = pos + n
            while pos < seg_end:
                step = min(seg_end, (pos // BLOCK + 1) * BLOCK) - pos
                z = zero and not self._has(pos // BLOCK)
                if runs and runs[-1][1] == z:
                    runs[-1] = (runs[-1][0] + step, z)
                else:
                    runs.append((step, z))
                pos += step
        return runs

    def complete(self) -> Path:
        """Fill in every block not written, then return the overlay path: now a
        full raw image of the modified volume. The bitmap is removed."""
        cs = self.base.chunk_size
        with self._lock:
            for no in range(self.base.root.chunk_count):
                if self.base.is_zero(no):
                    continue
                lo = no * cs
                hi = min(self.size, lo + cs)
                for block in range(lo // BLOCK, (hi + BLOCK - 1) // BLOCK):
                    if not self._has(block):
                        b_lo, b_hi = block * BLOCK, min(self.size, (block + 1) * BLOCK)
                        os.pwrite(self._fd, self.base.read(b_lo, b_hi - b_lo), b_lo)
                        self._set(block)
            os.fsync(self._fd)
            self.map_path.unlink(missing_ok=True)
        return self.path

    def write_image(self, target: Path) -> int:
        """Write the modified volume into ``target`` (an existing sparse file at
        least the volume's size, all zeros), chunk by chunk; all-zero chunks are
        skipped so they stay holes. Fsyncs; returns the bytes written."""
        cs = self.base.chunk_size
        written = 0
        fd = os.open(target, os.O_WRONLY | os.O_CLOEXEC)
        try:
            for no in range(self.base.root.chunk_count):
                lo = no * cs
                hi = min(self.size, lo + cs)
                with self._lock:
                    touched = any(self._has(b) for b in range(lo // BLOCK,
                                                              (hi + BLOCK - 1) // BLOCK))
                if not touched and self.base.is_zero(no):
                    continue
                data = self.read(lo, hi - lo)
                if data == bytes(len(data)):
                    continue
                view, pos = memoryview(data), lo
                while view:
                    n = os.pwrite(fd, view, pos)
                    view, pos = view[n:], pos + n
                written += len(data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return written

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        self.base.close()

    def discard(self) -> None:
        """Close and delete the overlay and its bitmap."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.map_path.unlink(missing_ok=True)
