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

from vbs.errors import SourceError
from vbs.repository import format as fmt
from vbs.repository.backends.base import ObjectWriter
from vbs.repository.crypto import BlobCodec
from vbs.repository.index import ChunkIndex
from vbs.repository.manifest import ManifestRoot
from vbs.repository.pack import PackBuilder
from vbs.repository.repo import ProjectStore

from .common import CancelToken, ProgressFn, RepositoryLock, open_block_or_file
from .memory import keep_freed_memory

__all__ = ["BackupResult", "BackupStats", "backup"]

SEGMENT_CHUNKS = 64
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
    seconds: float = 0.0

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items() if k != "seconds"}


@dataclass(frozen=True)
class BackupResult:
    root: ManifestRoot
    stats: BackupStats


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
        self, store: ProjectStore, index: ChunkIndex, counters: _Counters, uploaders: int
    ) -> None:
        self.store = store
        self.index = index
        self.counters = counters
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open: list[PackBuilder] = []
        self._claimed: set[bytes] = set()
        self._queue: queue.Queue[_Pack | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
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

    def add(self, chunk_id: bytes, blob_type: int, plain_len: int, blob: bytes) -> None:
        builder: PackBuilder | None = getattr(self._local, "builder", None)
        if builder is None:
            builder = self._new_builder()
        builder.add(chunk_id, blob_type, plain_len, blob)
        if builder.size >= self.store.pack_target:
            with self._lock:
                self._open.remove(builder)
            self._local.builder = None
            self._ship(builder)

    def _ship(self, builder: PackBuilder) -> None:
        pack_hex, data, entries = builder.finish(self.store.sealer)
        item = _Pack(pack_hex, data, entries, builder.writer)
        while True:
            try:
                self.check()
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
            item = self._queue.get()
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
        with self._lock:
            remaining, self._open = self._open, []
        for builder in remaining:
            if builder.writer is not None:
                builder.writer.abort()
        for _ in self._threads:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        for t in self._threads:
            t.join(timeout=30)


def _next_data(fd: int, pos: int, size: int) -> int:
    """Offset of the next data at or after pos, or size when only holes remain."""
    try:
        return os.lseek(fd, pos, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == 6:  # ENXIO: no more data
            return size
        return pos  # SEEK_DATA unsupported (block devices, some fs): assume data


def _process_segment(
    buf: bytearray | None,
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
    # One vectorised pass finds the all-zero chunks of the whole segment.
    nonzero = np.frombuffer(buf, dtype=np.uint64, count=full * (chunk_size // 8))
    flags: list[bool] = []
    if full:
        flags = cast(list[bool], nonzero.reshape(full, chunk_size // 8).any(axis=1).tolist())
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
        for (cid, chunk), store_it in zip(todo, must, strict=True):
            if store_it:
                blob = codec.encode(cid, fmt.BLOB_TYPE_DATA, chunk)
                writer.add(cid, fmt.BLOB_TYPE_DATA, len(chunk), blob)
                new += 1
                new_plain += len(chunk)
                new_stored += len(blob)
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
    workers: int = 2,
    uploaders: int = 2,
    source_name: str | None = None,
) -> BackupResult:
    """Back up ``source`` (a file or block device) into ``store``.

    The manifest records ``source_name`` as the source, else the absolute
    path of ``source`` (a relative path says nothing once the shell is gone).

    ``index`` may be a cached, already loaded index of the project (it is
    updated in place); otherwise it is loaded from the repository. The
    parent, when given, must exist in the project and have the same chunk size.
    """
    t0 = time.monotonic()
    keep_freed_memory()
    backup_id = backup_id or uuid.uuid4().hex
    cancel = cancel or CancelToken()
    chunk_size = store.chunk_size
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
        writer = _PackWriter(store, index, counters, uploaders)
        try:
            page_ids = _run_pipeline(fd, size, store, writer, counters, workers, progress, cancel)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        stats = BackupStats(
            volume_size=size,
            bytes_read=counters.bytes_read,
            chunks_total=-(-size // chunk_size),
            chunks_zero=counters.zero,
            chunks_new=counters.new,
            chunks_dedup=counters.dedup,
            bytes_new_plain=counters.new_plain,
            bytes_new_stored=counters.new_stored,
            packs_written=counters.packs,
            pages_total=len(page_ids),
            pages_new=counters.pages_new,
            seconds=time.monotonic() - t0,
        )
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
            meta=dict(meta or {}),
        )
        store.store_manifest(root)
        return BackupResult(root, stats)
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
) -> list[bytes]:
    chunk_size = store.chunk_size
    codec = store.codec
    seg_len = chunk_size * SEGMENT_CHUNKS
    page_ids: list[bytes] = []
    page = bytearray()
    window: deque[tuple[int, Future[list[bytes]]]] = deque()
    max_window = workers * 2

    def take_one() -> None:
        nonlocal page
        seg_size, fut = window.popleft()
        ids = fut.result()
        writer.check()
        for cid in ids:
            page += cid
            if len(page) == fmt.PAGE_ENTRIES * fmt.CHUNK_ID_SIZE:
                page_ids.append(_store_page(bytes(page), codec, writer, counters))
                page = bytearray()
        done = min(size, (len(page_ids) * fmt.PAGE_ENTRIES + len(page) // 32) * chunk_size)
        if progress is not None:
            progress(done, size)

    pos = 0
    next_data = 0
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(max_window + workers + 1):
        free.put(bytearray(seg_len))

    def run(buf: bytearray | None, length: int) -> list[bytes]:
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
                buf: bytearray | None = None
                if next_data < pos + length:
                    buf = free.get()
                    try:
                        got = os.preadv(fd, [memoryview(buf)[:length]], pos)
                    except OSError as exc:
                        raise SourceError(f"read error at offset {pos}: {exc.strerror}") from None
                    if got != length:
                        raise SourceError(f"short read at offset {pos}: source changed size?")
                    counters.bytes_read += length
                window.append((length, pool.submit(run, buf, length)))
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
    if page:
        page_ids.append(_store_page(bytes(page), codec, writer, counters))
    if progress is not None:
        progress(size, size)
    return page_ids


def _store_page(page: bytes, codec: BlobCodec, writer: _PackWriter, counters: _Counters) -> bytes:
    pid = codec.chunk_id(page)
    if writer.claim_missing([pid])[0]:
        writer.add(pid, fmt.BLOB_TYPE_PAGE, len(page), codec.encode(pid, fmt.BLOB_TYPE_PAGE, page))
        counters.pages_new += 1
    return pid
