"""Reading a backup's chunks back, grouped by pack for few, large reads.

Used by restore (which writes each chunk to its volume offsets) and by
verify (which only checks them). A backup is walked in *windows* of manifest
pages so memory stays bounded for any volume size; inside a window the
needed blobs are sorted by (pack, offset) and fetched as coalesced ranges on
a pool of threads. Every blob is authenticated and its plaintext re-hashed
to its id before the sink sees it, so wrong data never reaches a target.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vbs.direct_io import AlignedBuffer
from vbs.errors import ChunkMissing, CorruptObject, ObjectNotFound, VbsError
from vbs.repository import format as fmt
from vbs.repository.crypto import BlobCodec
from vbs.repository.index import ChunkIndex
from vbs.repository.manifest import ManifestRoot, split_page
from vbs.repository.repo import ProjectStore

from .common import CancelToken

__all__ = [
    "ChunkSink",
    "Geometry",
    "PackRangeReader",
    "ZeroSink",
    "decode_group",
    "iter_manifest",
    "plan_groups",
    "read_backup",
]

PAGES_PER_WINDOW = 4
MAX_GAP = 512 * 1024
MAX_RANGE = 16 * 1024 * 1024
NEAR_CHUNKS = 16
"""Blobs are read together only when they also land near each other in the
volume: restoring scattered chunks (an incremental's) in volume order keeps
the target's block allocation sequential, which costs far less system time."""

ChunkSink = Callable[[bytes, list[int]], None]
"""sink(plaintext, chunk numbers): called from pool threads, concurrently."""

ZeroSink = Callable[[int, int], None]
"""zero_sink(first chunk number, count): a run of zero chunks, in order."""


@dataclass(frozen=True, slots=True)
class _Blob:
    """One distinct chunk of a window: where it is in its pack, where it goes."""

    chunk_id: bytes
    offset: int
    length: int
    chunk_nos: list[int]


@dataclass(slots=True)
class _Group:
    """Blobs of one pack read with a single range request."""

    pack_id: str
    start: int
    end: int
    first_no: int
    blobs: list[_Blob]


def iter_manifest(
    store: ProjectStore, root: ManifestRoot, index: ChunkIndex
) -> Iterator[tuple[int, list[bytes]]]:
    """(first chunk number, ids) for each page of a backup, in order."""
    for first, page in _iter_pages(store, root, index):
        yield first, split_page(page)


def _iter_pages(
    store: ProjectStore, root: ManifestRoot, index: ChunkIndex
) -> Iterator[tuple[int, bytes]]:
    """(first chunk number, raw page: ids back to back) for each page, checked."""
    for p, page_id in enumerate(root.page_ids):
        page = store.load_page(page_id, index, where=f"backup {root.backup_id} page {p}")
        first = p * fmt.PAGE_ENTRIES
        expected = min(fmt.PAGE_ENTRIES, root.chunk_count - first)
        if len(page) % fmt.CHUNK_ID_SIZE or len(page) // fmt.CHUNK_ID_SIZE != expected:
            raise CorruptObject(
                f"backup {root.backup_id} page {p}: {len(page) / fmt.CHUNK_ID_SIZE:g} ids, "
                f"want {expected}"
            )
        yield first, page


def _zero_runs(zero: np.ndarray, first: int) -> list[tuple[int, int]]:
    """(first chunk number, count) of each run of True in ``zero``."""
    edges = np.diff(np.concatenate(([0], zero.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(first + a, b - a) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _group(blobs: list[tuple[int, int, int, int, _Blob]], packs: list[str]) -> list[_Group]:
    """Coalesce blobs sorted by (pack, offset) into range reads.

    Blobs are read together only when they are close in the pack (gap,
    range limits) and also land near each other in the volume (see
    NEAR_CHUNKS). Each item is (pack number, offset, end, first chunk no, blob).
    """
    out: list[_Group] = []
    cur: _Group | None = None
    cur_pack = prev_end = prev_no = -1
    for pack_no, off, end, no, blob in blobs:
        if (
            cur is not None
            and pack_no == cur_pack
            and off - prev_end <= MAX_GAP
            and end - cur.start <= MAX_RANGE
            and 0 <= no - prev_no <= NEAR_CHUNKS
        ):
            cur.blobs.append(blob)
            cur.end = max(cur.end, end)
            cur.first_no = min(cur.first_no, no)
        else:
            cur = _Group(packs[pack_no], off, end, no, [blob])
            out.append(cur)
            cur_pack = pack_no
        prev_end, prev_no = end, no
    return out


def _plan_window(
    raw: bytes,
    first: int,
    index: ChunkIndex,
    cs: int,
    on_missing: Callable[[ChunkMissing], None],
) -> tuple[list[tuple[int, int]], list[_Group]]:
    """Zero runs and range reads for the chunks of a few pages, vectorised.

    Why numpy: a restore touches every chunk of the volume; per-chunk
    lookups and objects in Python held the GIL longer than decrypting did.
    """
    ids = np.frombuffer(raw, dtype="S32")
    zero = ids == b""  # ZERO_ID: an S32 value ignores trailing NUL bytes
    runs = _zero_runs(zero, first)
    nz = np.flatnonzero(~zero)
    if not len(nz):
        return runs, []
    uniq, first_at, inverse, counts = np.unique(
        ids[nz], return_index=True, return_inverse=True, return_counts=True
    )
    loc = index.locate_many(uniq)
    uniq_raw = uniq.tobytes()  # full 32-byte ids (item access would strip NULs)
    first_no = nz[first_at] + first
    if not loc.found.all():
        for u in np.flatnonzero(~loc.found)[np.argsort(first_no[~loc.found])].tolist():
            cid = uniq_raw[u * fmt.CHUNK_ID_SIZE : (u + 1) * fmt.CHUNK_ID_SIZE]
            on_missing(ChunkMissing(
                f"chunk {cid.hex()} (volume offset {int(first_no[u]) * cs}) is in no index"
            ))
    # chunk numbers of each distinct id, in volume order
    nos = (nz[np.argsort(inverse, kind="stable")] + first).tolist()
    bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
    order = np.lexsort((loc.offset, loc.pack_no))
    order = order[loc.found[order]]
    items = []
    for u, p, off, ln, no in zip(
        order.tolist(),
        loc.pack_no[order].tolist(),
        loc.offset[order].tolist(),
        loc.length[order].tolist(),
        first_no[order].tolist(),
        strict=True,
    ):
        cid = uniq_raw[u * fmt.CHUNK_ID_SIZE : (u + 1) * fmt.CHUNK_ID_SIZE]
        items.append((p, off, off + ln, no, _Blob(cid, off, ln, nos[bounds[u] : bounds[u + 1]])))
    groups = _group(items, loc.packs)
    # Ranges are read per pack but submitted in volume order, so the target
    # is written front to back even when a pack interleaves two regions.
    groups.sort(key=lambda g: g.first_no)
    return runs, groups


def read_backup(
    store: ProjectStore,
    root: ManifestRoot,
    index: ChunkIndex,
    sink: ChunkSink,
    *,
    zero_sink: ZeroSink | None = None,
    cancel: CancelToken | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 2,
    on_error: Callable[[VbsError], None] | None = None,
) -> None:
    """Feed every non-zero chunk of ``root`` to ``sink``; zero runs to ``zero_sink``.

    Raises ChunkMissing (a chunk in no index) or CorruptObject (a blob that
    fails authentication, length or id checks), naming the chunk and the
    volume offset, before the sink is called for that chunk. With
    ``on_error`` set (verify), such errors are reported to it instead and the
    walk goes on with the next chunk.
    """
    cancel = cancel or CancelToken()
    geometry = Geometry.of(root)
    local = threading.local()
    buffers: list[AlignedBuffer] = []
    buffers_lock = threading.Lock()

    def buffer() -> AlignedBuffer:
        buf: AlignedBuffer | None = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = AlignedBuffer()
            with buffers_lock:
                buffers.append(buf)
        return buf

    def fetch(group: _Group) -> int:
        cancel.check()
        return decode_group(store, store.codec, group, geometry, buffer(), sink, on_error)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vbs-read") as pool:
        try:
            _drive(store, root, index, pool, fetch, zero_sink, cancel, progress, workers, on_error)
        except BaseException:
            cancel.cancel()
            raise
        finally:
            pool.shutdown(wait=True)
            for buf in buffers:
                buf.close()


@dataclass(frozen=True, slots=True)
class Geometry:
    """What checking a chunk's length needs: the chunk size and the last chunk."""

    chunk_size: int
    last_no: int
    last_len: int

    @classmethod
    def of(cls, root: ManifestRoot) -> Geometry:
        cs = root.chunk_size
        last_no = root.chunk_count - 1
        last_len = root.volume_size - last_no * cs if root.chunk_count else 0
        return cls(cs, last_no, last_len)


class PackRangeReader(Protocol):
    """Where a group's bytes come from: a ProjectStore, or a worker process's
    :class:`~vbs.repository.repo.PackRanges`."""

    def read_pack_range_view(self, pack_hex: str, start: int, length: int,
                             buf: AlignedBuffer) -> memoryview: ...


def decode_group(
    packs: PackRangeReader,
    codec: BlobCodec,
    group: _Group,
    geometry: Geometry,
    buf: AlignedBuffer,
    sink: ChunkSink,
    on_error: Callable[[VbsError], None] | None = None,
) -> int:
    """Read one group's range, check and decode each blob, hand it to ``sink``.

    Returns the volume bytes the group covers. Without ``on_error`` the first
    bad blob raises (restore); with it every bad blob is reported and skipped
    (verify). Shared by the pool threads of :func:`read_backup` and the worker
    processes of :mod:`vbs.engine.restore_procs`.
    """
    cs, last_no, last_len = geometry.chunk_size, geometry.last_no, geometry.last_len
    first = group.blobs[0]
    try:
        data = packs.read_pack_range_view(group.pack_id, group.start,
                                          group.end - group.start, buf)
    except (CorruptObject, ObjectNotFound) as exc:
        where0 = f"volume offset {first.chunk_nos[0] * cs}, pack {group.pack_id}"
        err = CorruptObject(f"chunk {first.chunk_id.hex()} ({where0}): {exc}")
        if on_error is None:
            raise err from None
        for b in group.blobs:
            on_error(
                CorruptObject(
                    f"chunk {b.chunk_id.hex()} (volume offset {b.chunk_nos[0] * cs}, "
                    f"pack {group.pack_id}): pack unreadable: {exc}"
                )
            )
        return sum(len(b.chunk_nos) for b in group.blobs) * cs
    done = 0
    for b in group.blobs:
        rel = b.offset - group.start
        view = data[rel : rel + b.length]
        try:
            try:
                blob = codec.decode(b.chunk_id, view)
            except CorruptObject:
                # Errors are rare: only now pay for the message's context.
                codec.decode(b.chunk_id, view, where=_where(b, group, cs))
                raise
            plain = blob.plaintext
            if blob.blob_type != fmt.BLOB_TYPE_DATA:
                raise CorruptObject(
                    f"chunk {b.chunk_id.hex()} ({_where(b, group, cs)}): not a data blob"
                )
            if len(plain) != cs or (b.chunk_nos[-1] == last_no and last_len != cs):
                for no in b.chunk_nos:
                    want_len = last_len if no == last_no else cs
                    if len(plain) != want_len:
                        raise CorruptObject(
                            f"chunk {b.chunk_id.hex()} (volume offset {no * cs}): "
                            f"{len(plain)} bytes, expected {want_len}"
                        )
        except CorruptObject as exc:
            if on_error is None:
                raise
            on_error(exc)
            continue
        sink(plain, b.chunk_nos)
        done += len(b.chunk_nos) * cs
    return done


def _where(b: _Blob, group: _Group, cs: int) -> str:
    return f"volume offset {b.chunk_nos[0] * cs}, pack {group.pack_id}"


def plan_groups(
    store: ProjectStore,
    root: ManifestRoot,
    index: ChunkIndex,
    *,
    zero_sink: ZeroSink | None = None,
    on_error: Callable[[VbsError], None] | None = None,
) -> Iterator[_Group]:
    """The range reads of a whole backup, window by window, in volume order.

    Zero runs go to ``zero_sink`` as they are found (merged across windows);
    a chunk in no index raises ChunkMissing, or goes to ``on_error``.
    """
    cs = root.chunk_size
    pages = _iter_pages(store, root, index)
    exhausted = False
    zero_start = zero_end = -1  # the zero run still open at a window's end

    def on_missing(exc: ChunkMissing) -> None:
        if on_error is None:
            raise exc
        on_error(exc)

    while not exhausted:
        raw: list[bytes] = []
        first = -1
        for _ in range(PAGES_PER_WINDOW):
            nxt = next(pages, None)
            if nxt is None:
                exhausted = True
                break
            if first < 0:
                first = nxt[0]
            raw.append(nxt[1])
        if not raw:
            break
        runs, groups = _plan_window(b"".join(raw), first, index, cs, on_missing)
        if zero_sink is not None:
            for start, count in runs:
                if start == zero_end:
                    zero_end += count
                    continue
                if zero_start >= 0:
                    zero_sink(zero_start, zero_end - zero_start)
                zero_start, zero_end = start, start + count
        yield from groups
    if zero_start >= 0 and zero_sink is not None:
        zero_sink(zero_start, zero_end - zero_start)


def _drive(
    store: ProjectStore,
    root: ManifestRoot,
    index: ChunkIndex,
    pool: ThreadPoolExecutor,
    fetch: Callable[[_Group], int],
    zero_sink: ZeroSink | None,
    cancel: CancelToken,
    progress: Callable[[int], None] | None,
    workers: int,
    on_error: Callable[[VbsError], None] | None,
) -> None:
    pending: set[Future[int]] = set()
    for group in plan_groups(store, root, index, zero_sink=zero_sink, on_error=on_error):
        cancel.check()
        while len(pending) >= workers * 2:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                n = f.result()
                if progress:
                    progress(n)
        pending.add(pool.submit(fetch, group))
    for f in pending:
        n = f.result()
        if progress:
            progress(n)
