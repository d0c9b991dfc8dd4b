"""Incrementals that read only what changed, and changed blocks between backups.

A backup with a parent manifest and a :class:`ChangeSet` (byte ranges that
may differ from the parent's source, from FIEMAP or from user hints) reads
only the chunks intersecting those ranges, plus a guard sample of the others
(:mod:`vbs.engine.guard`), and takes every other id from the parent:

* a manifest page with no changed and no sampled chunk is the parent's page,
  reused by id without being loaded;
* any other page is loaded from the parent, the changed and sampled chunks
  are read and processed by the ordinary per-chunk pipeline
  (:func:`vbs.engine.backup._process_segment`: zero check, hash, dedup,
  compress, encrypt, pack), and the page is rebuilt and stored (deduplicated
  like any page);
* a sampled chunk whose id differs from the parent's raises
  :class:`GuardMismatch`: the caller discards the shortcut and reads the
  whole volume.

The result is an ordinary, complete manifest: restore, verify, GC and the
changed-blocks diff never know how it was made.

:func:`changed_blocks` computes the byte ranges in which two backups of one
volume differ from their manifests alone: pages with equal ids are skipped
whole, others are compared id by id. No chunk data is read.
"""

from __future__ import annotations

import json
import os
import queue
import random
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from vbs.errors import ConfigError, SourceError
from vbs.repository import format as fmt
from vbs.repository.index import ChunkIndex
from vbs.repository.manifest import ManifestRoot, split_page
from vbs.repository.repo import ProjectStore

from .common import CancelToken, ProgressFn
from .guard import GuardPolicy, sample_unchanged

__all__ = [
    "ChangeSet",
    "ChangeSource",
    "ChangedOutcome",
    "GuardMismatch",
    "chunk_runs",
    "changed_blocks",
    "parse_change_hints",
    "run_changed",
]

ChangeSource = Literal["fiemap", "hints"]

SegmentFn = Callable[[bytearray | None, int], list[bytes]]
"""process(buffer or None for a hole, length) -> ids: the per-chunk pipeline."""


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Byte ranges ``(offset, length)``, sorted and merged, that may have
    changed since the parent backup's source; ``source`` says who said so."""

    ranges: tuple[tuple[int, int], ...]
    source: ChangeSource

    @classmethod
    def build(cls, ranges: Iterable[tuple[int, int]], source: ChangeSource) -> ChangeSet:
        merged: list[tuple[int, int]] = []
        for off, length in sorted((int(o), int(n)) for o, n in ranges if n > 0):
            if off < 0:
                raise ValueError(f"negative offset {off} in changed ranges")
            if merged and off <= merged[-1][0] + merged[-1][1]:
                last_off, last_len = merged[-1]
                merged[-1] = (last_off, max(last_len, off + length - last_off))
            else:
                merged.append((off, length))
        return cls(tuple(merged), source)

    @property
    def changed_bytes(self) -> int:
        return sum(n for _, n in self.ranges)


class GuardMismatch(Exception):
    """A sampled "unchanged" chunk differs from the parent: the ranges were wrong."""

    def __init__(self, chunk_no: int, offset: int) -> None:
        super().__init__(f"chunk {chunk_no} (volume offset {offset}) changed although "
                         "the change tracking reported it unchanged")
        self.chunk_no = chunk_no
        self.offset = offset


@dataclass(frozen=True, slots=True)
class ChangedOutcome:
    """What a changed-ranges pass produced and how much it had to look at."""

    page_ids: list[bytes]
    chunks_changed: int
    chunks_sampled: int
    pages_reused: int
    chunks_zero: int


def parse_change_hints(data: bytes, volume_size: int) -> ChangeSet:
    """Parse a hints file: ``rbd diff --format=json`` output or ``[[offset, length], ...]``.

    ``rbd diff`` lists ``{"offset", "length", "exists"}`` objects; both
    ``exists`` values are changes (``false`` is a discarded, now zero,
    extent). Ranges must lie within the source (ConfigError otherwise).
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"changed ranges: not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise ConfigError("changed ranges: expected a JSON list")
    out: list[tuple[int, int]] = []
    for i, item in enumerate(doc):
        if isinstance(item, dict):
            off, length = item.get("offset"), item.get("length")
        elif isinstance(item, list) and len(item) == 2:
            off, length = item
        else:
            raise ConfigError(f"changed ranges: item {i} is neither [offset, length] nor "
                              "an rbd diff object")
        if not _is_count(off) or not _is_count(length):
            raise ConfigError(f"changed ranges: item {i}: offset and length must be "
                              "non-negative integers")
        assert isinstance(off, int) and isinstance(length, int)
        if off + length > volume_size:
            raise ConfigError(f"changed ranges: item {i} ({off}+{length}) ends beyond the "
                              f"source ({volume_size} bytes)")
        out.append((off, length))
    return ChangeSet.build(out, "hints")


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def chunk_runs(changes: ChangeSet, chunk_size: int, chunk_count: int,
               parent_size: int, size: int) -> list[tuple[int, int]]:
    """Sorted, disjoint ``(first chunk, count)`` runs intersecting the changes.

    When the volume size differs from the parent's, every chunk from the one
    holding the old (or new) end onwards is changed too: its length differs.
    """
    runs: list[tuple[int, int]] = []

    def add(first: int, end: int) -> None:
        end = min(end, chunk_count)
        if end <= first:
            return
        if runs and first <= runs[-1][0] + runs[-1][1]:
            f0, n0 = runs[-1]
            runs[-1] = (f0, max(n0, end - f0))
        else:
            runs.append((first, end - first))

    for off, length in changes.ranges:
        add(off // chunk_size, -(-(off + length) // chunk_size))
    if parent_size != size:
        tail = min(parent_size, size) // chunk_size
        if runs and runs[-1][0] + runs[-1][1] > tail:
            # merge the tail run into the runs it overlaps
            keep = [r for r in runs if r[0] + r[1] <= tail]
            first = min([tail] + [r[0] for r in runs if r[0] + r[1] > tail])
            runs = keep
            add(first, chunk_count)
        else:
            add(tail, chunk_count)
    return runs


def _page_runs(runs: list[tuple[int, int]], lo: int, hi: int, start: int) -> tuple[
        list[tuple[int, int]], int]:
    """The parts of ``runs`` inside ``[lo, hi)``, scanning from index ``start``."""
    out: list[tuple[int, int]] = []
    i = start
    while i < len(runs) and runs[i][0] < hi:
        f, n = runs[i]
        a, b = max(f, lo), min(f + n, hi)
        if b > a:
            out.append((a, b - a))
        if f + n <= hi:
            i += 1
        else:
            break
    return out, i


def run_changed(
    fd: int,
    size: int,
    store: ProjectStore,
    index: ChunkIndex,
    parent: ManifestRoot,
    changes: ChangeSet,
    guard: GuardPolicy,
    process: SegmentFn,
    store_page: Callable[[bytes], bytes],
    count_read: Callable[[int], None],
    *,
    segment_chunks: int,
    workers: int,
    progress: ProgressFn | None,
    cancel: CancelToken,
    rng: random.Random | None = None,
) -> ChangedOutcome:
    """Build the manifest pages of ``fd`` from ``parent`` plus the changed chunks.

    ``process`` is the per-chunk pipeline (run on a pool), ``store_page``
    stores a rebuilt page and returns its id, ``count_read`` is told every
    byte read. Raises GuardMismatch on the first sampled chunk whose id
    differs from the parent's (in-flight work is finished first).
    """
    cs = store.chunk_size
    count = -(-size // cs)
    pe = fmt.PAGE_ENTRIES
    runs = chunk_runs(changes, cs, count, parent.volume_size, size)
    changed_chunks = sum(n for _, n in runs)
    # Chunks that exist with the same length in both: the ones a sample may verify.
    eligible = min(parent.chunk_count, count)
    if parent.volume_size != size:
        eligible = min(parent.volume_size, size) // cs
    samples = sample_unchanged(runs, eligible, guard, rng).tolist()
    sample_runs = [(int(c), 1) for c in samples]
    zero_pages: dict[int, bytes] = {}

    def zero_page_id(n: int) -> bytes:
        if n not in zero_pages:
            zero_pages[n] = store.codec.chunk_id(fmt.ZERO_ID * n)
        return zero_pages[n]

    def parent_entries(p: int) -> list[bytes]:
        if p >= len(parent.page_ids):
            return []
        n = min(pe, parent.chunk_count - p * pe)
        pid = parent.page_ids[p]
        if pid == zero_page_id(n):
            return [fmt.ZERO_ID] * n
        ids = split_page(store.load_page(pid, index, where=f"parent {parent.backup_id} page {p}"))
        if len(ids) != n:
            raise SourceError(f"parent {parent.backup_id} page {p}: {len(ids)} ids, want {n}")
        return ids

    zeros = int(parent.stats.get("chunks_zero", 0))
    seg_len = cs * segment_chunks
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(workers * 3 + 1):
        free.put(bytearray(seg_len))

    def run(buf: bytearray | None, length: int) -> list[bytes]:
        try:
            return process(buf, length)
        finally:
            if buf is not None:
                free.put(buf)

    page_ids: list[bytes] = []
    reused = 0
    ri = si = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vbs-changed") as pool:
        for p in range(-(-count // pe)):
            cancel.check()
            lo, hi = p * pe, min(count, (p + 1) * pe)
            mine, ri = _page_runs(runs, lo, hi, ri)
            checks, si = _page_runs(sample_runs, lo, hi, si)
            same_len = p < len(parent.page_ids) and min(pe, parent.chunk_count - lo) == hi - lo
            if not mine and not checks and same_len:
                page_ids.append(parent.page_ids[p])
                reused += 1
                continue
            old = parent_entries(p)
            entries = old[: hi - lo] + [fmt.ZERO_ID] * max(0, hi - lo - len(old))
            pending: list[tuple[int, Future[list[bytes]]]] = []
            try:
                for first, n in sorted(mine + checks):
                    for c0 in range(first, first + n, segment_chunks):
                        nc = min(segment_chunks, first + n - c0)
                        pos = c0 * cs
                        length = min(nc * cs, size - pos)
                        if not _has_data(fd, pos, length, size):
                            # a hole reads as zeros: no read, no trip through the pool
                            entries[c0 - lo : c0 - lo + nc] = [fmt.ZERO_ID] * nc
                            continue
                        buf = free.get()
                        try:
                            got = os.preadv(fd, [memoryview(buf)[:length]], pos)
                        except OSError as exc:
                            free.put(buf)
                            raise SourceError(
                                f"read error at offset {pos}: {exc.strerror}") from None
                        if got != length:
                            free.put(buf)
                            raise SourceError(
                                f"short read at offset {pos}: source changed size?")
                        count_read(length)
                        pending.append((c0, pool.submit(run, buf, length)))
                for c0, fut in pending:
                    for k, cid in enumerate(fut.result()):
                        entries[c0 - lo + k] = cid
            except BaseException:
                for _, fut in pending:
                    fut.cancel()
                raise
            for c, _n in checks:
                if entries[c - lo] != old[c - lo]:
                    raise GuardMismatch(c, c * cs)
            zeros += entries.count(fmt.ZERO_ID) - old.count(fmt.ZERO_ID)
            if old and len(old) == len(entries) and entries == old:
                page_ids.append(parent.page_ids[p])
            else:
                page_ids.append(store_page(b"".join(entries)))
            if progress is not None:
                progress(min(size, hi * cs), size)
    # A shrunk volume: the parent pages past the new end no longer count.
    for p in range(len(page_ids), len(parent.page_ids)):
        zeros -= parent_entries(p).count(fmt.ZERO_ID)
    if progress is not None:
        progress(size, size)
    return ChangedOutcome(page_ids, changed_chunks, len(samples), reused, zeros)


def _has_data(fd: int, pos: int, length: int, size: int) -> bool:
    """False only when ``[pos, pos + length)`` is one hole (reads as zeros)."""
    try:
        nxt = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as exc:
        return exc.errno != 6  # ENXIO: only holes up to the end; else assume data
    return nxt < pos + length


# --- changed blocks between two backups -------------------------------------------------


def _iter_changed(store: ProjectStore, index: ChunkIndex, base: ManifestRoot,
                  root: ManifestRoot, from_chunk: int) -> Iterator[int]:
    """Chunk numbers of ``root`` (>= from_chunk) whose id differs from ``base``'s."""
    pe = fmt.PAGE_ENTRIES
    for p in range(from_chunk // pe, len(root.page_ids)):
        lo = p * pe
        n = min(pe, root.chunk_count - lo)
        base_n = max(0, min(pe, base.chunk_count - lo))
        if p < len(base.page_ids) and base_n == n and base.page_ids[p] == root.page_ids[p]:
            continue
        new = split_page(store.load_page(root.page_ids[p], index,
                                         where=f"backup {root.backup_id} page {p}"))
        old: list[bytes] = []
        if p < len(base.page_ids):
            old = split_page(store.load_page(base.page_ids[p], index,
                                             where=f"backup {base.backup_id} page {p}"))
        for k in range(max(0, from_chunk - lo), n):
            if k >= len(old) or old[k] != new[k]:
                yield lo + k


def changed_blocks(
    store: ProjectStore,
    index: ChunkIndex,
    base: ManifestRoot,
    root: ManifestRoot,
    *,
    marker: int = 0,
    limit: int = 1000,
) -> tuple[list[tuple[int, int]], int | None]:
    """Up to ``limit`` merged byte ranges of ``root`` that differ from ``base``,
    starting at byte ``marker``, and the marker of the next page (None at the end).

    Granularity is the chunk size (both backups must share it); ranges end
    at ``root.volume_size``. A chunk is changed when its id differs, or when
    ``base`` has no chunk at that number (a grown volume).
    """
    if base.chunk_size != root.chunk_size:
        raise ValueError("the two backups have different chunk sizes")
    cs = root.chunk_size
    out: list[tuple[int, int]] = []
    start: int | None = None
    prev = -2
    for c in _iter_changed(store, index, base, root, marker // cs):
        if start is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            out.append((start, prev))
            if len(out) > limit:
                break
        start = prev = c
    if start is not None and len(out) <= limit:
        out.append((start, prev))
    ranges = [(max(a * cs, marker), min(root.volume_size, (b + 1) * cs)) for a, b in out]
    blocks = [(a, b - a) for a, b in ranges if b > a]
    if len(blocks) > limit:
        return blocks[:limit], blocks[limit][0]
    return blocks, None
