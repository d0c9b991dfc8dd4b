"""The chunk index: chunk id -> (pack, offset, length), in compact sorted arrays.

The index is a cache of what the pack headers say. It is stored as *index
files* (sealed lists of packs with their entries) and loaded into numpy
arrays sorted by chunk id, so 10 million chunks cost about 45 bytes each
(32-byte id + pack number + offset + length + plaintext length + type:
~450 MB) instead of hundreds of bytes per Python object. Lookups are binary
searches (``numpy.searchsorted``), done in batches by the backup pipeline.

Chunks added while a backup runs go to a small *overlay* dict that is merged
into the arrays whenever it grows past ``OVERLAY_LIMIT`` entries, so memory
stays bounded by the number of unique chunks in the project, never by the
volume size.

A chunk id may appear in several packs (two backups racing, or a repack
before the old pack is deleted); any copy is valid, the index keeps one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from vbs.errors import CorruptObject
from vbs.repository import format as fmt

__all__ = [
    "ENTRY_DTYPE",
    "ChunkIndex",
    "Located",
    "Location",
    "parse_index_file",
    "serialize_index_file",
]

OVERLAY_LIMIT = 200_000

ENTRY_DTYPE = np.dtype(
    [
        ("id", "S32"),
        ("type", "u1"),
        ("flags", "u1"),
        ("reserved", "<u2"),
        ("offset", "<u4"),
        ("length", "<u4"),
        ("plain", "<u4"),
    ]
)
assert ENTRY_DTYPE.itemsize == fmt.PACK_ENTRY.size


@dataclass(frozen=True, slots=True)
class Location:
    pack_id: str
    offset: int
    length: int
    plain_len: int
    blob_type: int


@dataclass(frozen=True, slots=True)
class Located:
    """:meth:`ChunkIndex.locate_many`'s answer: arrays parallel to the query.

    ``pack_no`` indexes ``packs`` (pack ids in hex); entries whose ``found``
    is False hold zeros.
    """

    found: np.ndarray
    pack_no: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    blob_type: np.ndarray
    packs: list[str]


def parse_index_file(plaintext: bytes, name: str) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (pack id hex, entries array) from an index file's plaintext."""
    pos, n = 0, len(plaintext)
    while pos < n:
        if pos + fmt.INDEX_PACK.size > n:
            raise CorruptObject(f"index {name}: truncated pack record")
        pack_raw, count = fmt.INDEX_PACK.unpack_from(plaintext, pos)
        pos += fmt.INDEX_PACK.size
        end = pos + count * fmt.PACK_ENTRY.size
        if end > n:
            raise CorruptObject(f"index {name}: truncated entries")
        yield pack_raw.hex(), np.frombuffer(plaintext, dtype=ENTRY_DTYPE, count=count, offset=pos)
        pos = end


def serialize_index_file(packs: Iterable[tuple[str, bytes]]) -> bytes:
    """Index file plaintext from (pack id hex, raw PACK_ENTRY records) pairs."""
    out = bytearray()
    for pack_hex, entries in packs:
        out += fmt.INDEX_PACK.pack(bytes.fromhex(pack_hex), len(entries) // fmt.PACK_ENTRY.size)
        out += entries
    return bytes(out)


class ChunkIndex:
    """Sorted arrays plus a bounded overlay; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.packs: list[str] = []
        self._pack_pos: dict[str, int] = {}
        self._ids = np.empty(0, dtype="S32")
        self._pack = np.empty(0, dtype="<u4")
        self._rec = np.empty(0, dtype=ENTRY_DTYPE)
        self._overlay: dict[bytes, tuple[int, int, int, int, int]] = {}
        self._pending: list[tuple[int, np.ndarray]] = []

    # -- building ---------------------------------------------------------------
    def _pack_number(self, pack_hex: str) -> int:
        n = self._pack_pos.get(pack_hex)
        if n is None:
            n = self._pack_pos[pack_hex] = len(self.packs)
            self.packs.append(pack_hex)
        return n

    def add_entries(self, pack_hex: str, entries: np.ndarray) -> None:
        """Queue a pack's entries (bulk load); call ``merge`` when done."""
        with self._lock:
            self._pending.append((self._pack_number(pack_hex), entries))

    def add_pack(self, pack_hex: str, raw_entries: bytes) -> None:
        """Make a just-written pack's chunks findable at once (overlay)."""
        arr = np.frombuffer(raw_entries, dtype=ENTRY_DTYPE)
        with self._lock:
            p = self._pack_number(pack_hex)
            for rec in arr.tolist():
                self._overlay[rec[0].ljust(32, b"\0")] = (p, rec[4], rec[5], rec[6], rec[1])
            if len(self._overlay) > OVERLAY_LIMIT:
                self._merge_locked()

    def merge(self) -> None:
        with self._lock:
            self._merge_locked()

    def _merge_locked(self) -> None:
        parts_rec = [self._rec]
        parts_pack = [self._pack]
        for p, arr in self._pending:
            parts_rec.append(arr)
            parts_pack.append(np.full(len(arr), p, dtype="<u4"))
        if self._overlay:
            ov = np.empty(len(self._overlay), dtype=ENTRY_DTYPE)
            ovp = np.empty(len(self._overlay), dtype="<u4")
            for i, (cid, (p, off, ln, pl, bt)) in enumerate(self._overlay.items()):
                ov[i] = (cid, bt, 0, 0, off, ln, pl)
                ovp[i] = p
            parts_rec.append(ov)
            parts_pack.append(ovp)
        self._pending = []
        self._overlay = {}
        rec = np.concatenate(parts_rec)
        pack = np.concatenate(parts_pack)
        order = np.argsort(rec["id"], kind="stable")
        rec, pack = rec[order], pack[order]
        if len(rec) > 1:
            keep = np.ones(len(rec), dtype=bool)
            keep[1:] = rec["id"][1:] != rec["id"][:-1]
            rec, pack = rec[keep], pack[keep]
        self._rec = np.ascontiguousarray(rec)
        self._ids = self._rec["id"]
        self._pack = pack

    # -- queries ------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return len(self._ids) + len(self._overlay)

    def lookup(self, chunk_id: bytes) -> Location | None:
        with self._lock:
            hit = self._overlay.get(chunk_id)
            if hit is not None:
                p, off, ln, pl, bt = hit
                return Location(self.packs[p], off, ln, pl, bt)
            ids = self._ids
            i = int(np.searchsorted(ids, chunk_id))
            if i < len(ids) and ids[i] == chunk_id.rstrip(b"\0"):
                r = self._rec[i]
                return Location(
                    self.packs[int(self._pack[i])],
                    int(r["offset"]),
                    int(r["length"]),
                    int(r["plain"]),
                    int(r["type"]),
                )
            return None

    def contains_many(self, chunk_ids: list[bytes]) -> list[bool]:
        """Batch membership test (one vectorised search for the sorted part)."""
        with self._lock:
            ids = self._ids
            if len(ids):
                q = np.array(chunk_ids, dtype="S32")
                pos = np.searchsorted(ids, q)
                pos[pos >= len(ids)] = 0
                found = (ids[pos] == q).tolist()
            else:
                found = [False] * len(chunk_ids)
            ov = self._overlay
            return [f or (c in ov) for f, c in zip(found, chunk_ids, strict=True)]

    def locate_many(self, chunk_ids: np.ndarray) -> Located:
        """Where each id (an S32 array) is: one vectorised search instead of a
        :meth:`lookup` per chunk (restore locates every chunk of a volume)."""
        n = len(chunk_ids)
        with self._lock:
            # ``packs`` only ever grows: the list itself (not a copy) stays valid.
            ids, rec, pack, packs = self._ids, self._rec, self._pack, self.packs
            found = np.zeros(n, dtype=bool)
            pack_no = np.zeros(n, dtype="<u4")
            offset = np.zeros(n, dtype="<u4")
            length = np.zeros(n, dtype="<u4")
            btype = np.zeros(n, dtype="u1")
            if len(ids) and n:
                pos = np.searchsorted(ids, chunk_ids)
                pos[pos >= len(ids)] = 0
                found = ids[pos] == chunk_ids
                hit = rec[pos]
                pack_no = np.where(found, pack[pos], 0).astype("<u4")
                offset = np.where(found, hit["offset"], 0).astype("<u4")
                length = np.where(found, hit["length"], 0).astype("<u4")
                btype = np.where(found, hit["type"], 0).astype("u1")
            if self._overlay:
                for i in np.flatnonzero(~found).tolist():
                    got = self._overlay.get(bytes(chunk_ids[i]).ljust(fmt.CHUNK_ID_SIZE, b"\0"))
                    if got is not None:
                        p, off, ln, _pl, bt = got
                        found[i], pack_no[i], offset[i], length[i], btype[i] = True, p, off, ln, bt
        return Located(found, pack_no, offset, length, btype, packs)

    def packs_of(self, chunk_ids: np.ndarray) -> list[str | None]:
        """For each id (an S32 array), the pack the index holds it in, or None."""
        self.merge()
        with self._lock:
            ids, pack, packs = self._ids, self._pack, self.packs
            if not len(ids) or not len(chunk_ids):
                return [None] * len(chunk_ids)
            pos = np.searchsorted(ids, chunk_ids)
            pos[pos >= len(ids)] = 0
            hit = ids[pos] == chunk_ids
            return [
                packs[int(p)] if h else None
                for p, h in zip(pack[pos].tolist(), hit.tolist(), strict=True)
            ]

    def iter_packs(self) -> Iterator[tuple[str, np.ndarray]]:
        """(pack id, entries) of every indexed pack; merges the overlay first."""
        self.merge()
        with self._lock:
            rec, pack, packs = self._rec, self._pack, list(self.packs)
        if not len(rec):
            return
        order = np.argsort(pack, kind="stable")
        pack_sorted = pack[order]
        bounds = np.flatnonzero(np.diff(pack_sorted)) + 1
        for grp in np.split(order, bounds):
            yield packs[int(pack[grp[0]])], rec[grp]

    def chunk_ids(self) -> np.ndarray:
        self.merge()
        with self._lock:
            return self._ids.copy()
