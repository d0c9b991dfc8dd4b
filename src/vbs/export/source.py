"""A backup as a read-only block device, read from the repository on demand.

Opening loads the manifest root and the project's chunk index (the index is
what a restore loads too). A read maps its byte range to chunk numbers; the
manifest page holding each chunk's id is loaded on first use and kept in a
small LRU. Zero chunks (``ZERO_ID``) are answered with zeros without any
read. Other chunks come from a bounded LRU of plaintexts; the ones missing
are fetched with one ranged read per run of nearby blobs of one pack, and
every blob is authenticated and re-hashed to its id by the codec before a
byte of it is served, exactly as restore does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from vbs.errors import ChunkMissing, CorruptObject, TargetError
from vbs.repository import format as fmt
from vbs.repository.index import ChunkIndex, Location
from vbs.repository.manifest import ManifestRoot
from vbs.repository.repo import ProjectStore

__all__ = ["DEFAULT_CACHE_BYTES", "BackupSource"]

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
PAGE_CACHE = 64
MAX_GAP = 256 * 1024
MAX_RANGE = 8 * 1024 * 1024


@dataclass(frozen=True)
class _Want:
    no: int
    chunk_id: bytes
    loc: Location


class BackupSource:
    """Read-only view of one backup. Thread-safe."""

    writable = False

    def __init__(self, store: ProjectStore, backup_id: str, *,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, index: ChunkIndex | None = None) -> None:
        self.store = store
        self.root: ManifestRoot = store.load_manifest(backup_id)
        self.index = index if index is not None else store.load_index()
        self.chunk_size = self.root.chunk_size
        self.cache_bytes = cache_bytes
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self._chunks: OrderedDict[bytes, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        self.fetched_blobs = 0
        """Blobs read from the backend so far (for tests and the benchmark)."""

    @property
    def size(self) -> int:
        return self.root.volume_size

    # -- manifest ---------------------------------------------------------------
    def chunk_id(self, no: int) -> bytes:
        """The id of chunk ``no`` (``ZERO_ID`` for a zero chunk)."""
        p, i = divmod(no, fmt.PAGE_ENTRIES)
        with self._lock:
            page = self._pages.get(p)
            if page is not None:
                self._pages.move_to_end(p)
        if page is None:
            where = f"backup {self.root.backup_id} page {p}"
            page = self.store.load_page(self.root.page_ids[p], self.index, where=where)
            expected = min(fmt.PAGE_ENTRIES, self.root.chunk_count - p * fmt.PAGE_ENTRIES)
            if len(page) != expected * fmt.CHUNK_ID_SIZE:
                raise CorruptObject(f"{where}: {len(page)} bytes, want {expected} ids")
            with self._lock:
                self._pages[p] = page
                while len(self._pages) > PAGE_CACHE:
                    self._pages.popitem(last=False)
        n = fmt.CHUNK_ID_SIZE
        return page[i * n : (i + 1) * n]

    def _chunk_len(self, no: int) -> int:
        if no == self.root.chunk_count - 1:
            return self.root.volume_size - no * self.chunk_size
        return self.chunk_size

    # -- reads ------------------------------------------------------------------
    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        cs = self.chunk_size
        first, last = offset // cs, (offset + length - 1) // cs
        plain: dict[int, bytes] = {}
        wants: list[_Want] = []
        for no in range(first, last + 1):
            cid = self.chunk_id(no)
            if cid == fmt.ZERO_ID:
                continue
            with self._lock:
                hit = self._chunks.get(cid)
                if hit is not None:
                    self._chunks.move_to_end(cid)
            if hit is not None:
                plain[no] = hit
                continue
            loc = self.index.lookup(cid)
            if loc is None:
                raise ChunkMissing(f"chunk {cid.hex()} (volume offset {no * cs}) is in no index")
            wants.append(_Want(no, cid, loc))
        if wants:
            plain.update(self._fetch(wants))
        out = bytearray()
        for no in range(first, last + 1):
            data = plain.get(no)
            lo = max(offset, no * cs) - no * cs
            hi = min(offset + length, no * cs + self._chunk_len(no)) - no * cs
            out += data[lo:hi] if data is not None else bytes(hi - lo)
        return bytes(out)

    def _fetch(self, wants: list[_Want]) -> dict[int, bytes]:
        """Read, authenticate and cache the wanted chunks, coalescing ranges."""
        wants.sort(key=lambda w: (w.loc.pack_id, w.loc.offset))
        groups: list[list[_Want]] = []
        for w in wants:
            if groups:
                g = groups[-1]
                a, b = g[0].loc, g[-1].loc
                if (b.pack_id == w.loc.pack_id and w.loc.offset >= b.offset
                        and w.loc.offset - (b.offset + b.length) <= MAX_GAP
                        and w.loc.offset + w.loc.length - a.offset <= MAX_RANGE):
                    g.append(w)
                    continue
            groups.append([w])
        out: dict[int, bytes] = {}
        for g in groups:
            start = g[0].loc.offset
            end = max(w.loc.offset + w.loc.length for w in g)
            data = memoryview(self.store.read_pack_range(g[0].loc.pack_id, start, end - start))
            for w in g:
                where = f"volume offset {w.no * self.chunk_size}, pack {w.loc.pack_id}"
                rel = w.loc.offset - start
                blob = self.store.codec.decode(w.chunk_id, data[rel : rel + w.loc.length],
                                               where=where)
                if blob.blob_type != fmt.BLOB_TYPE_DATA:
                    raise CorruptObject(f"chunk {w.chunk_id.hex()} ({where}): not a data blob")
                if len(blob.plaintext) != self._chunk_len(w.no):
                    raise CorruptObject(
                        f"chunk {w.chunk_id.hex()} ({where}): {len(blob.plaintext)} bytes, "
                        f"expected {self._chunk_len(w.no)}")
                out[w.no] = blob.plaintext
                self._remember(w.chunk_id, blob.plaintext)
        with self._lock:
            self.fetched_blobs += len(wants)
        return out

    def _remember(self, cid: bytes, plaintext: bytes) -> None:
        with self._lock:
            if cid in self._chunks:
                return
            self._chunks[cid] = plaintext
            self._cached += len(plaintext)
            while self._cached > self.cache_bytes and self._chunks:
                _, old = self._chunks.popitem(last=False)
                self._cached -= len(old)

    def extents(self, offset: int, length: int) -> list[tuple[int, bool]]:
        """(length, is_zero) runs; a run ends at a zero/data boundary."""
        cs = self.chunk_size
        end = offset + length
        runs: list[tuple[int, bool]] = []
        pos = offset
        while pos < end:
            no = pos // cs
            zero = self.chunk_id(no) == fmt.ZERO_ID
            nxt = min(end, no * cs + self._chunk_len(no))
            if runs and runs[-1][1] == zero:
                runs[-1] = (runs[-1][0] + nxt - pos, zero)
            else:
                runs.append((nxt - pos, zero))
            pos = nxt
            if len(runs) > 1024:
                break
        return runs

    def is_zero(self, no: int) -> bool:
        return self.chunk_id(no) == fmt.ZERO_ID

    def write(self, offset: int, data: bytes) -> None:
        raise TargetError("a backup source is read-only")  # never called: writable False

    def flush(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._pages.clear()
            self._cached = 0
