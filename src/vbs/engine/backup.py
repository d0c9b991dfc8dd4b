"""Backup: read a volume, keep what is new, write packs, index and manifest.

Pipeline (bounded; peak memory does not depend on the volume size)::

    main thread            pool of `workers` threads          `uploaders` threads
    ----------------       -------------------------------    -------------------
    find holes (SEEK_DATA)  split segment into chunks          put pack (durable)
    read segment (4 MiB) -> zero check, keyed BLAKE3,     ->   index overlay += pack
    (window of segments)    batch index lookup, zstd,          every 4 packs: index file
    ids in volume order  <- AES-GCM, append to pack
    -> manifest pages

Write ordering (docs/repository-format.md, "Write and read ordering"):
packs are durable before any index file names them; index files are durable
before the manifest root that references their chunks; the manifest root is
written last. A crash at any point leaves at most unreferenced packs and
index entries, which GC removes after its grace period; the next backup
dedups against whatever was indexed.

Only chunks absent from the project index (and not already claimed by
another worker of this backup) are compressed, encrypted and uploaded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import mmap
import os
import queue
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import cast

import numpy as np

from vbs.direct_io import SourceReader
from vbs.errors import SourceError
from vbs.repository import format as fmt
from vbs.repository.backends.base import ObjectWriter
from vbs.repository.crypto import BlobCodec, EncodedBlobs
from vbs.repository.index import ChunkIndex
from vbs.repository.manifest import ManifestRoot
from vbs.repository.pack import PackBuilder
from vbs.repository.repo import ProjectStore

from .changed import ChangedOutcome, ChangeSet, GuardMismatch, run_changed
from .common import CancelToken, ProgressFn, RepositoryLock, open_block_or_file
from .guard import GuardPolicy
from .memory import keep_freed_memory

__all__ = ["BackupResult", "BackupStats", "backup"]

log = logging.getLogger(__name__)

SEGMENT_CHUNKS = 64
HOLE_SPAN_CHUNKS = 16 * fmt.PAGE_ENTRIES
"""Longest run of hole chunks handled as one step (a hole costs no read at all)."""
INDEX_EVERY_PACKS = 4


@dataclass(frozen=True)
class BackupStats:
    volume_size: int = 0
    bytes_read: int = 0
    chunks_total: int = 0
    chunks_zero: int = 0
    chunks_new: int = 0
    chunks_dedup: int = 0
    bytes_new_plain: int = 0
    bytes_new_stored: int = 0
    packs_written: int = 0
    pages_total: int = 0
    pages_new: int = 0
    chunks_changed: int = 0
    """Chunks intersecting the changed ranges (0 for a full read)."""
    chunks_sampled: int = 0
    """Unchanged chunks read anyway by the guard (:mod:`vbs.engine.guard`)."""
    pages_reused: int = 0
    """Parent manifest pages taken whole without being loaded."""
    guard_mismatch: int = 0
    """1 when a sampled chunk differed and the backup fell back to a full read."""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items() if k != "seconds"}


@dataclass(frozen=True)
class BackupResult:
    root: ManifestRoot
    stats: BackupStats
    change_tracking: str = "none"
    """How unchanged data was found: ``fiemap``, ``hints`` or ``none`` (full read)."""
    guard_message: str | None = None
    """Why the changed ranges were discarded, when the guard caught a mismatch."""


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes_read = 0
        self.zero = 0
        self.new = 0
        self.dedup = 0
        self.new_plain = 0
        self.new_stored = 0
        self.packs = 0
        self.pages_new = 0


@dataclass
class _Pack:
    """A finished pack on its way to storage (streamed: only ``writer`` to commit)."""

    pack_hex: str
    data: bytes | None
    entries: bytes
    writer: ObjectWriter | None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


class _PackWriter:
    """Collects blobs into packs and uploads them on background threads.

    Each thread fills its own pack (no lock around the writes, which stream to
    storage); ``claim_missing`` makes sure one chunk id is encoded once per
    backup even when two workers meet it at the same time.
    """

    def __init__(
        self,
        store: ProjectStore,
        index: ChunkIndex,
        counters: _Counters,
        uploaders: int,
        cancel: CancelToken | None = None,
    ) -> None:
        self.cancel = cancel or CancelToken()
        self.store = store
        self.index = index
        self.counters = counters
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open: list[PackBuilder] = []
        self._claimed: set[bytes] = set()
        self._queue: queue.Queue[_Pack | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._aborting = False
        self._written: list[tuple[str, bytes]] = []
        self._written_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._upload_loop, name=f"vbs-upload-{i}", daemon=True)
            for i in range(uploaders)
        ]
        for t in self._threads:
            t.start()

    def check(self) -> None:
        if self._error is not None:
            raise self._error

    def claim_missing(self, ids: list[bytes]) -> list[bool]:
        """For each id: True if this caller must store it (absent and now claimed)."""
        present = self.index.contains_many(ids)
        out = []
        with self._lock:
            for cid, p in zip(ids, present, strict=True):
                if p or cid in self._claimed:
                    out.append(False)
                else:
                    self._claimed.add(cid)
                    out.append(True)
        return out

    def _new_builder(self) -> PackBuilder:
        builder = PackBuilder(self.store.open_pack_writer())
        with self._lock:
            self._open.append(builder)
        self._local.builder = builder
        return builder

    def _builder(self) -> PackBuilder:
        builder: PackBuilder | None = getattr(self._local, "builder", None)
        return builder if builder is not None else self._new_builder()

    def _ship_if_full(self, builder: PackBuilder) -> None:
        if builder.size >= self.store.pack_target:
            with self._lock:
                self._open.remove(builder)
            self._local.builder = None
            self._ship(builder)

    def add(self, chunk_id: bytes, blob_type: int, plain_len: int, blob: bytes | bytearray) -> None:
        builder = self._builder()
        builder.add(chunk_id, blob_type, plain_len, blob)
        self._ship_if_full(builder)

    def add_many(self, chunk_ids: list[bytes], blob_type: int, blobs: EncodedBlobs) -> None:
        """Append one segment's blobs to this thread's pack, one write per pack
        they land in: a pack is cut where ``add`` would have cut it, so packs
        keep their target size (GC frees whole packs; restore reads by pack)."""
        view = memoryview(blobs.buffer)
        spans = blobs.spans
        start = 0
        while start < len(spans):
            builder = self._builder()
            room = self.store.pack_target - builder.size
            stop = start
            while stop < len(spans) and room > 0:
                room -= spans[stop][1]
                stop += 1
            base = spans[start][0]
            end = spans[stop - 1][0] + spans[stop - 1][1]
            builder.add_many(chunk_ids[start:stop], blob_type, view[base:end],
                             [(off - base, n, plain) for off, n, plain in spans[start:stop]])
            self._ship_if_full(builder)
            start = stop

    def _ship(self, builder: PackBuilder) -> None:
        pack_hex, data, entries = builder.finish(self.store.sealer)
        item = _Pack(pack_hex, data, entries, builder.writer)
        while True:
            try:
                self.check()
                # Waiting for a free uploader can take a whole pack's upload time:
                # a stop must not wait for the rest of the volume to be stored.
                self.cancel.check()
            except BaseException:
                item.abort()
                raise
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _upload_loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._aborting:
                    return
                continue
            if item is None:
                return
            if self._error is not None:
                item.abort()
                continue
            pack_hex, entries = item.pack_hex, item.entries
            try:
                if item.writer is not None:
                    self.store.commit_pack(item.writer, pack_hex)
                else:
                    assert item.data is not None
                    self.store.put_pack(pack_hex, item.data)
                self.index.add_pack(pack_hex, entries)
                with self._lock:
                    for i in range(0, len(entries), fmt.PACK_ENTRY.size):
                        self._claimed.discard(entries[i : i + fmt.CHUNK_ID_SIZE])
                with self._written_lock:
                    self._written.append((pack_hex, entries))
                    self.counters.packs += 1
                    batch = None
                    if len(self._written) >= INDEX_EVERY_PACKS:
                        batch, self._written = self._written, []
                if batch:
                    self.store.write_index(batch)
            except BaseException as exc:  # noqa: BLE001 - reported by check()
                self._error = exc

    def finish(self) -> None:
        """Flush the last pack, wait for every upload, write the last index file."""
        with self._lock:
            remaining, self._open = self._open, []
        for last in remaining:  # the producing threads have all finished
            if len(last):
                self._ship(last)
            elif last.writer is not None:
                last.writer.abort()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self.check()
        with self._written_lock:
            batch, self._written = self._written, []
        if batch:
            self.store.write_index(batch)

    def abort(self) -> None:
        self._error = self._error or RuntimeError("backup aborted")
        # Uploaders leave once the queue is empty (no stop markers: a marker
        # stolen back from the one-slot queue while draining it used to leave
        # an uploader waiting forever, and a SIGTERM'd worker past its grace).
        self._aborting = True
        with self._lock:
            remaining, self._open = self._open, []
        for builder in remaining:
            if builder.writer is not None:
                builder.writer.abort()
        while True:  # packs still queued are never uploaded
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.abort()
        for t in self._threads:
            t.join(timeout=30)
        # Packs already stored are durable: name them in an index file so the
        # run that resumes this backup (after a stop or a failure) dedups
        # against them instead of uploading their chunks again.
        with self._written_lock:
            batch, self._written = self._written, []
        if batch:
            with contextlib.suppress(Exception):
                self.store.write_index(batch)


def _next_data(fd: int, pos: int, size: int) -> int:
    """Offset of the next data at or after pos, or size when only holes remain."""
    try:
        return os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == 6:  # ENXIO: no more data
            return size
        return pos  # SEEK_DATA unsupported (block devices, some fs): assume data


def _process_segment(
    buf: bytearray | mmap.mmap | None,
    length: int,
    chunk_size: int,
    codec: BlobCodec,
    writer: _PackWriter,
    counters: _Counters,
) -> list[bytes]:
    """Chunk ids of one segment, storing the chunks not yet in the repository."""
    n = -(-length // chunk_size)
    if buf is None:
        with counters.lock:
            counters.zero += n
        return [fmt.ZERO_ID] * n
    mv = memoryview(buf)[:length]
    full = length // chunk_size
    # One vectorised pass finds the all-zero chunks of the whole segment
    # (max, not any: any() first casts every word to bool, twice the time).
    words = np.frombuffer(buf, dtype=np.uint64, count=full * (chunk_size // 8))
    flags: list[bool] = []
    if full:
        flags = cast(list[bool], (words.reshape(full, chunk_size // 8).max(axis=1) != 0).tolist())
    if full < n:
        flags.append(any(mv[full * chunk_size :]))
    ids: list[bytes] = []
    todo: list[tuple[bytes, memoryview]] = []
    zeros = 0
    for i in range(n):
        if not flags[i]:
            ids.append(fmt.ZERO_ID)
            zeros += 1
            continue
        chunk = mv[i * chunk_size : (i + 1) * chunk_size]
        cid = codec.chunk_id(chunk)
        ids.append(cid)
        todo.append((cid, chunk))
    new_plain = new_stored = new = 0
    if todo:
        must = writer.claim_missing([t[0] for t in todo])
        sel = [t for t, m in zip(todo, must, strict=True) if m]
        if sel:
            # One call per segment, not per chunk: every call into zstd, the
            # RNG or the pack writer hands the GIL over and back, and with
            # three workers on two cores those hand-overs were a third of
            # each worker's time (py-spy --threads --idle).
            cids = [t[0] for t in sel]
            blobs = codec.encode_many(cids, fmt.BLOB_TYPE_DATA, [t[1] for t in sel])
            writer.add_many(cids, fmt.BLOB_TYPE_DATA, blobs)
            new = len(sel)
            new_plain = sum(span[2] for span in blobs.spans)
            new_stored = len(blobs.buffer)
    with counters.lock:
        counters.zero += zeros
        counters.new += new
        counters.dedup += len(todo) - new
        counters.new_plain += new_plain
        counters.new_stored += new_stored
    return ids


def backup(
    store: ProjectStore,
    source: str | os.PathLike[str],
    *,
    backup_id: str | None = None,
    name: str = "",
    source_id: str = "",
    parent_id: str | None = None,
    meta: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    index: ChunkIndex | None = None,
    workers: int | None = None,
    uploaders: int = 2,
    changes: ChangeSet | None = None,
    guard: GuardPolicy | None = None,
    source_name: str | None = None,
    cold_source: bool = False,
) -> BackupResult:
    """Back up ``source`` (a file or block device) into ``store``.

    The manifest records ``source_name`` as the source, else the absolute
    path of ``source`` (a relative path says nothing once the shell is gone).

    ``index`` may be a cached, already loaded index of the project (it is
    updated in place); otherwise it is loaded from the repository. The
    parent, when given, must exist in the project and have the same chunk size.

    With a parent and ``changes`` (byte ranges that may differ from the
    parent's source) only the chunks intersecting them and a ``guard``
    sample of the others are read (:mod:`vbs.engine.changed`); a sampled
    mismatch falls back to a full read, reported in ``guard_message``.

    ``cold_source`` says nothing has the source's pages in cache (a reflink
    snapshot made for this backup): a full read then goes around the page
    cache (:class:`vbs.direct_io.SourceReader`).

    ``workers`` defaults to one more than the core count: a worker also
    writes its pack (direct I/O, blocking until the device has the bytes),
    and the others keep hashing and compressing meanwhile; more threads than
    that hand the GIL around. On 2 cores, two series of 4 alternating backups
    of the bench image took a median 4.16 and 4.99 s (6.78 and 7.76 CPU-s)
    with 3 workers, 4.37 and 5.42 s (7.18 and 8.03 CPU-s) with 4. Two
    uploaders, so one pack's slow fsync (or PUT) does not stall the rest:
    with one, a same-run comparison once waited 8 s on it.
    """
    t0 = time.monotonic()
    keep_freed_memory()
    if workers is None:
        workers = (os.cpu_count() or 1) + 1
    backup_id = backup_id or uuid.uuid4().hex
    cancel = cancel or CancelToken()
    chunk_size = store.chunk_size
    parent: ManifestRoot | None = None
    if parent_id is not None:
        parent = store.load_manifest(parent_id)
        if parent.chunk_size != chunk_size:
            raise SourceError(f"parent {parent_id} has chunk size {parent.chunk_size}")
    try:
        fd, size = open_block_or_file(os.fspath(source), os.O_RDONLY)
    except OSError as exc:
        raise SourceError(f"cannot open source {os.fspath(source)!r}: {exc.strerror}") from None
    counters = _Counters()
    lock = RepositoryLock(store, "backup").acquire()
    try:
        if index is None:
            index = store.load_index()
        writer = _PackWriter(store, index, counters, uploaders, cancel)
        tracking, guard_message, changed = "none", None, None
        try:
            if changes is not None and parent is not None:
                try:
                    changed = _run_changed(fd, size, store, index, parent, changes,
                                           guard or GuardPolicy(), writer, counters, workers,
                                           progress, cancel)
                    tracking = changes.source
                except GuardMismatch as exc:
                    guard_message = f"guard: {exc}; read the whole volume instead"
                    log.warning("backup %s of %s: %s", backup_id, os.fspath(source),
                                guard_message)
                    counters.zero = counters.dedup = 0
            if changed is not None:
                page_ids = changed.page_ids
            else:
                page_ids = _run_pipeline(fd, size, store, writer, counters, workers,
                                         progress, cancel, cold_source)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        stats = BackupStats(
            volume_size=size,
            bytes_read=counters.bytes_read,
            chunks_total=-(-size // chunk_size),
            chunks_zero=counters.zero if changed is None else changed.chunks_zero,
            chunks_new=counters.new,
            chunks_dedup=counters.dedup,
            bytes_new_plain=counters.new_plain,
            bytes_new_stored=counters.new_stored,
            packs_written=counters.packs,
            pages_total=len(page_ids),
            pages_new=counters.pages_new,
            chunks_changed=0 if changed is None else changed.chunks_changed,
            chunks_sampled=0 if changed is None else changed.chunks_sampled,
            pages_reused=0 if changed is None else changed.pages_reused,
            guard_mismatch=int(guard_message is not None),
            seconds=time.monotonic() - t0,
        )
        meta = {**(meta or {}), "change_tracking": tracking}
        root = ManifestRoot(
            backup_id=backup_id,
            project=store.project,
            volume_size=size,
            chunk_size=chunk_size,
            created=dt.datetime.now(dt.UTC).isoformat(),
            page_ids=tuple(page_ids),
            name=name,
            source=source_name if source_name is not None else os.path.abspath(source),
            source_id=source_id,
            parent_id=parent_id,
            stats=stats.as_dict(),
            meta=meta,
        )
        store.store_manifest(root)
        return BackupResult(root, stats, tracking, guard_message)
    finally:
        os.close(fd)
        lock.release()


def _run_pipeline(
    fd: int,
    size: int,
    store: ProjectStore,
    writer: _PackWriter,
    counters: _Counters,
    workers: int,
    progress: ProgressFn | None,
    cancel: CancelToken,
    cold_source: bool = False,
) -> list[bytes]:
    chunk_size = store.chunk_size
    codec = store.codec
    seg_len = chunk_size * SEGMENT_CHUNKS
    page_ids: list[bytes] = []
    page = bytearray()
    page_bytes = fmt.PAGE_ENTRIES * fmt.CHUNK_ID_SIZE
    window: deque[tuple[int, Future[list[bytes]]]] = deque()
    max_window = workers * 2

    def take_one() -> None:
        nonlocal page
        seg_size, fut = window.popleft()
        ids = fut.result()
        writer.check()
        data = memoryview(b"".join(ids))
        while data:  # whole slices, not one id at a time: 1 TiB is 16 M ids
            room = page_bytes - len(page)
            page += data[:room]
            data = data[room:]
            if len(page) == page_bytes:
                page_ids.append(_store_page(bytes(page), codec, writer, counters))
                page = bytearray()
        done = min(size, (len(page_ids) * fmt.PAGE_ENTRIES + len(page) // 32) * chunk_size)
        if progress is not None:
            progress(done, size)

    pos = 0
    next_data = 0
    reader = SourceReader(fd, cold=cold_source)
    free: queue.SimpleQueue[bytearray | mmap.mmap] = queue.SimpleQueue()
    for _ in range(max_window + workers + 1):
        free.put(reader.buffer(seg_len))

    def run(buf: bytearray | mmap.mmap | None, length: int) -> list[bytes]:
        try:
            return _process_segment(buf, length, chunk_size, codec, writer, counters)
        finally:
            if buf is not None:
                free.put(buf)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vbs-chunk") as pool:
        try:
            while pos < size:
                cancel.check()
                writer.check()
                length = min(seg_len, size - pos)
                if next_data < pos:
                    next_data = _next_data(fd, pos, size)
                buf: bytearray | mmap.mmap | None = None
                if next_data < pos + length:
                    buf = free.get()
                    try:
                        got = reader.read_into(buf, length, pos)
                    except OSError as exc:
                        raise SourceError(f"read error at offset {pos}: {exc.strerror}") from None
                    if got != length:
                        raise SourceError(f"short read at offset {pos}: source changed size?")
                    counters.bytes_read += length
                    window.append((length, pool.submit(run, buf, length)))
                else:  # a hole: its ids are known without a trip through the pool
                    if next_data >= size:
                        length = min(size - pos, HOLE_SPAN_CHUNKS * chunk_size)
                    else:
                        length = max(length, min(next_data - pos, HOLE_SPAN_CHUNKS * chunk_size)
                                     // chunk_size * chunk_size)
                    done_ids: Future[list[bytes]] = Future()
                    done_ids.set_result(_process_segment(None, length, chunk_size, codec,
                                                         writer, counters))
                    window.append((length, done_ids))
                pos += length
                while len(window) >= max_window:
                    take_one()
            while window:
                take_one()
        except BaseException:
            cancel.cancel()
            for _, fut in window:
                fut.cancel()
            raise
        finally:
            reader.close()
    if page:
        page_ids.append(_store_page(bytes(page), codec, writer, counters))
    if progress is not None:
        progress(size, size)
    return page_ids


def _run_changed(
    fd: int,
    size: int,
    store: ProjectStore,
    index: ChunkIndex,
    parent: ManifestRoot,
    changes: ChangeSet,
    guard: GuardPolicy,
    writer: _PackWriter,
    counters: _Counters,
    workers: int,
    progress: ProgressFn | None,
    cancel: CancelToken,
) -> ChangedOutcome:
    """The changed-ranges pass, wired to this module's per-chunk pipeline."""
    codec = store.codec
    chunk_size = store.chunk_size

    def count_read(n: int) -> None:
        counters.bytes_read += n

    def process(buf: bytearray | None, length: int) -> list[bytes]:
        ids = _process_segment(buf, length, chunk_size, codec, writer, counters)
        writer.check()
        return ids

    return run_changed(
        fd, size, store, index, parent, changes, guard, process,
        lambda page: _store_page(page, codec, writer, counters), count_read,
        segment_chunks=SEGMENT_CHUNKS, workers=workers, progress=progress, cancel=cancel,
    )


def _store_page(page: bytes, codec: BlobCodec, writer: _PackWriter, counters: _Counters) -> bytes:
    pid = codec.chunk_id(page)
    if writer.claim_missing([pid])[0]:
        writer.add(pid, fmt.BLOB_TYPE_PAGE, len(page), codec.encode(pid, fmt.BLOB_TYPE_PAGE, page))
        counters.pages_new += 1
    return pid
