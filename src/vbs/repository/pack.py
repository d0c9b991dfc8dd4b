"""Pack files: many blobs in one object, followed by their encrypted header.

A pack is ``PACK_MAGIC | blob* | sealed header | trailer`` (layout in
format.py). The header lists (chunk id, type, flags, offset, length,
plaintext length) for every blob, sealed with the project's data key, so the
index can always be rebuilt from the packs alone. The pack id is the unkeyed
BLAKE3 of the whole pack, in hex; it names the object.
"""

from __future__ import annotations

from collections.abc import Sequence

import blake3

from vbs.errors import CorruptObject
from vbs.repository import format as fmt
from vbs.repository.backends.base import ObjectWriter
from vbs.repository.crypto import Sealer

__all__ = ["PACK_HEADER_NAME", "PackBuilder", "parse_pack", "parse_pack_trailer"]

PACK_HEADER_NAME = "pack-header"


class PackBuilder:
    """Accumulates encoded blobs; not thread-safe (the caller serialises ``add``).

    With a ``writer`` (a backend's streaming writer) the pack goes straight to
    storage as blobs arrive and never sits in memory; without one, the bytes
    are collected and returned by :meth:`finish`. Either way the pack id is
    hashed incrementally.
    """

    __slots__ = ("_entries", "_hasher", "_parts", "_writer", "size")

    def __init__(self, writer: ObjectWriter | None = None) -> None:
        self._writer = writer
        self._parts: list[bytes | bytearray | memoryview] = []
        self._entries = bytearray()
        self._hasher = blake3.blake3(max_threads=1)
        self.size = 0
        self._emit(fmt.PACK_MAGIC)

    def __len__(self) -> int:
        return len(self._entries) // fmt.PACK_ENTRY.size

    @property
    def writer(self) -> ObjectWriter | None:
        return self._writer

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        self._hasher.update(data)
        if self._writer is not None:
            self._writer.write(data)
        else:
            self._parts.append(data)
        self.size += len(data)

    def add(self, chunk_id: bytes, blob_type: int, plain_len: int, blob: bytes | bytearray) -> int:
        """Append a blob; returns its offset in the pack."""
        offset = self.size
        flags = blob[1]
        self._entries += fmt.PACK_ENTRY.pack(
            chunk_id, blob_type, flags, 0, offset, len(blob), plain_len
        )
        self._emit(blob)
        return offset

    def add_many(
        self,
        chunk_ids: Sequence[bytes],
        blob_type: int,
        buffer: bytes | bytearray | memoryview,
        spans: Sequence[tuple[int, int, int]],
    ) -> None:
        """Append blobs laid out back to back in ``buffer`` (BlobCodec.encode_many):
        one hash update and one write for all of them; ``spans`` gives each
        blob's (offset in buffer, length, plaintext length)."""
        base = self.size
        expect = 0
        for cid, (off, length, plain) in zip(chunk_ids, spans, strict=True):
            if off != expect:
                raise ValueError("blobs must be contiguous and in order")
            self._entries += fmt.PACK_ENTRY.pack(
                cid, blob_type, buffer[off + 1], 0, base + off, length, plain
            )
            expect = off + length
        if expect != len(buffer):
            raise ValueError("spans do not cover the buffer")
        self._emit(buffer)

    def finish(self, sealer: Sealer) -> tuple[str, bytes | None, bytes]:
        """Seal the header; returns (pack id hex, pack bytes or None when
        streamed, entry records). A streamed pack still has to be committed."""
        entries = bytes(self._entries)
        header = sealer.seal(fmt.SEALED_KIND_PACK_HEADER, PACK_HEADER_NAME, entries)
        self._emit(header)
        self._emit(fmt.PACK_TRAILER.pack(len(header), len(self), fmt.PACK_TRAILER_MAGIC))
        pack_id = self._hasher.hexdigest()
        data = None if self._writer is not None else b"".join(self._parts)
        self._parts = []
        return pack_id, data, entries


def parse_pack_trailer(tail: bytes, pack_size: int, name: str) -> tuple[int, int]:
    """From the last 16 bytes: (offset of the sealed header, entry count)."""
    if len(tail) < fmt.PACK_TRAILER.size or pack_size < len(fmt.PACK_MAGIC) + fmt.PACK_TRAILER.size:
        raise CorruptObject(f"pack {name}: too short")
    hlen, count, magic = fmt.PACK_TRAILER.unpack_from(tail, len(tail) - fmt.PACK_TRAILER.size)
    if magic != fmt.PACK_TRAILER_MAGIC:
        raise CorruptObject(f"pack {name}: bad trailer magic")
    start = pack_size - fmt.PACK_TRAILER.size - hlen
    if start < len(fmt.PACK_MAGIC):
        raise CorruptObject(f"pack {name}: header length out of range")
    return start, count


def parse_pack(data: bytes, sealer: Sealer, name: str) -> bytes:
    """Check a whole pack's framing and return its entry records (PACK_ENTRY * n)."""
    if data[: len(fmt.PACK_MAGIC)] != fmt.PACK_MAGIC:
        raise CorruptObject(f"pack {name}: bad magic")
    start, count = parse_pack_trailer(data[-fmt.PACK_TRAILER.size :], len(data), name)
    entries = sealer.open(
        fmt.SEALED_KIND_PACK_HEADER,
        PACK_HEADER_NAME,
        data[start : len(data) - fmt.PACK_TRAILER.size],
    )
    if len(entries) != count * fmt.PACK_ENTRY.size:
        raise CorruptObject(f"pack {name}: header lists {len(entries)} bytes for {count} entries")
    for i in range(count):
        _, _, _, _, off, length, _ = fmt.PACK_ENTRY.unpack_from(entries, i * fmt.PACK_ENTRY.size)
        if off < len(fmt.PACK_MAGIC) or off + length > start:
            raise CorruptObject(f"pack {name}: entry {i} outside the blob area")
    return entries
