"""Reading a backup's chunks back, grouped by pack for few, large reads.

Used by restore (which writes each chunk to its volume offsets) and by
verify (which only checks them). A backup is walked in *windows* of manifest
pages so memory stays bounded for any volume size; inside a window the
needed blobs are sorted by (pack, offset) and fetched as coalesced ranges on
a pool of threads. Every blob is authenticated and its plaintext re-hashed
to its id before the sink sees it, so wrong data never reaches a target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from vbs.errors import ChunkMissing, CorruptObject, ObjectNotFound, VbsError
from vbs.repository import format as fmt
from vbs.repository.index import ChunkIndex, Location
from vbs.repository.manifest import ManifestRoot, split_page
from vbs.repository.repo import ProjectStore

from .common import CancelToken

__all__ = ["ChunkSink", "ZeroSink", "iter_manifest", "read_backup"]

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


@dataclass(frozen=True)
class _Want:
    chunk_id: bytes
    loc: Location
    chunk_nos: list[int]


def iter_manifest(
    store: ProjectStore, root: ManifestRoot, index: ChunkIndex
) -> Iterator[tuple[int, list[bytes]]]:
    """(first chunk number, ids) for each page of a backup, in order."""
    for p, page_id in enumerate(root.page_ids):
        page = store.load_page(page_id, index, where=f"backup {root.backup_id} page {p}")
        ids = split_page(page)
        first = p * fmt.PAGE_ENTRIES
        expected = min(fmt.PAGE_ENTRIES, root.chunk_count - first)
        if len(ids) != expected:
            raise CorruptObject(
                f"backup {root.backup_id} page {p}: {len(ids)} ids, want {expected}"
            )
        yield first, ids


def _ranges(wants: list[_Want]) -> list[list[_Want]]:
    wants.sort(key=lambda w: (w.loc.pack_id, w.loc.offset))
    out: list[list[_Want]] = []
    for w in wants:
        if out:
            last = out[-1]
            first, prev = last[0], last[-1]
            if (
                prev.loc.pack_id == w.loc.pack_id
                and w.loc.offset - (prev.loc.offset + prev.loc.length) <= MAX_GAP
                and w.loc.offset + w.loc.length - first.loc.offset <= MAX_RANGE
                and w.loc.offset >= prev.loc.offset
                and 0 <= w.chunk_nos[0] - prev.chunk_nos[0] <= NEAR_CHUNKS
            ):
                last.append(w)
                continue
        out.append([w])
    return out


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
    cs = root.chunk_size
    last_no = root.chunk_count - 1
    last_len = root.volume_size - last_no * cs if root.chunk_count else 0

    def fetch(group: list[_Want]) -> int:
        cancel.check()
        first = group[0].loc
        end = max(w.loc.offset + w.loc.length for w in group)
        where0 = f"volume offset {group[0].chunk_nos[0] * cs}, pack {first.pack_id}"
        try:
            data = store.read_pack_range(first.pack_id, first.offset, end - first.offset)
        except (CorruptObject, ObjectNotFound) as exc:
            err = CorruptObject(f"chunk {group[0].chunk_id.hex()} ({where0}): {exc}")
            if on_error is None:
                raise err from None
            for w in group:
                on_error(
                    CorruptObject(
                        f"chunk {w.chunk_id.hex()} (volume offset {w.chunk_nos[0] * cs}, "
                        f"pack {w.loc.pack_id}): pack unreadable: {exc}"
                    )
                )
            return sum(len(w.chunk_nos) for w in group) * cs
        mv = memoryview(data)
        done = 0
        for w in group:
            rel = w.loc.offset - first.offset
            where = f"volume offset {w.chunk_nos[0] * cs}, pack {w.loc.pack_id}"
            try:
                blob = store.codec.decode(w.chunk_id, mv[rel : rel + w.loc.length], where=where)
                if blob.blob_type != fmt.BLOB_TYPE_DATA:
                    raise CorruptObject(f"chunk {w.chunk_id.hex()} ({where}): not a data blob")
                for no in w.chunk_nos:
                    want_len = last_len if no == last_no else cs
                    if len(blob.plaintext) != want_len:
                        raise CorruptObject(
                            f"chunk {w.chunk_id.hex()} (volume offset {no * cs}): "
                            f"{len(blob.plaintext)} bytes, expected {want_len}"
                        )
            except CorruptObject as exc:
                if on_error is None:
                    raise
                on_error(exc)
                continue
            sink(blob.plaintext, w.chunk_nos)
            done += len(w.chunk_nos) * cs
        return done

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vbs-read") as pool:
        try:
            _drive(store, root, index, pool, fetch, zero_sink, cancel, progress, workers, on_error)
        except BaseException:
            cancel.cancel()
            raise


def _drive(
    store: ProjectStore,
    root: ManifestRoot,
    index: ChunkIndex,
    pool: ThreadPoolExecutor,
    fetch: Callable[[list[_Want]], int],
    zero_sink: ZeroSink | None,
    cancel: CancelToken,
    progress: Callable[[int], None] | None,
    workers: int,
    on_error: Callable[[VbsError], None] | None,
) -> None:
    cs = root.chunk_size
    pending: set[Future[int]] = set()
    pages = iter_manifest(store, root, index)
    exhausted = False
    zero_start: int | None = None
    while not exhausted:
        wants: dict[bytes, _Want] = {}
        for _ in range(PAGES_PER_WINDOW):
            nxt = next(pages, None)
            if nxt is None:
                exhausted = True
                break
            first, ids = nxt
            for i, cid in enumerate(ids):
                no = first + i
                if cid == fmt.ZERO_ID:
                    if zero_start is None:
                        zero_start = no
                    continue
                if zero_start is not None:
                    if zero_sink is not None:
                        zero_sink(zero_start, no - zero_start)
                    zero_start = None
                w = wants.get(cid)
                if w is None:
                    loc = index.lookup(cid)
                    if loc is None:
                        missing = ChunkMissing(
                            f"chunk {cid.hex()} (volume offset {no * cs}) is in no index"
                        )
                        if on_error is None:
                            raise missing
                        on_error(missing)
                        continue
                    wants[cid] = _Want(cid, loc, [no])
                else:
                    w.chunk_nos.append(no)
        # Ranges are read per pack but submitted in volume order, so the target
        # is written front to back even when a pack interleaves two regions.
        groups = _ranges(list(wants.values()))
        groups.sort(key=lambda g: min(w.chunk_nos[0] for w in g))
        for group in groups:
            cancel.check()
            while len(pending) >= workers * 2:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    n = f.result()
                    if progress:
                        progress(n)
            pending.add(pool.submit(fetch, group))
    if zero_start is not None and zero_sink is not None:
        zero_sink(zero_start, root.chunk_count - zero_start)
    for f in pending:
        n = f.result()
        if progress:
            progress(n)
