"""The format is a spec: sizes are pinned, encoders round-trip, decoders reject junk."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbs.errors import CorruptObject
from vbs.repository import format as fmt
from vbs.repository.crypto import BlobCodec, Sealer
from vbs.repository.index import ChunkIndex, parse_index_file, serialize_index_file
from vbs.repository.manifest import ManifestRoot, page_count
from vbs.repository.pack import PackBuilder, parse_pack

KEY = bytes(range(32))
ID_KEY = bytes(range(32, 64))


def test_sizes_never_change() -> None:
    assert fmt.BLOB_HEADER.size == 8
    assert fmt.BLOB_OVERHEAD == 36
    assert fmt.PACK_ENTRY.size == 48
    assert fmt.PACK_TRAILER.size == 16
    assert fmt.INDEX_PACK.size == 36
    assert fmt.SEALED_HEADER.size == 8
    assert len(fmt.PACK_MAGIC) == 8 and len(fmt.PACK_TRAILER_MAGIC) == 8
    assert fmt.PAGE_ENTRIES == 4096
    assert bytes(32) == fmt.ZERO_ID


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=70_000), compressible=st.booleans())
def test_blob_round_trip(data: bytes, compressible: bool) -> None:
    if compressible:
        data = data[:100] * 50
    codec = BlobCodec(KEY, ID_KEY)
    cid = codec.chunk_id(data)
    blob = codec.encode(cid, fmt.BLOB_TYPE_DATA, data)
    out = codec.decode(cid, blob)
    assert out.plaintext == data and out.blob_type == fmt.BLOB_TYPE_DATA
    assert len(blob) <= len(data) + fmt.BLOB_OVERHEAD


def test_incompressible_blob_is_stored_raw_and_flagged() -> None:
    codec = BlobCodec(KEY, ID_KEY)
    data = os.urandom(65536)
    blob = codec.encode(codec.chunk_id(data), fmt.BLOB_TYPE_DATA, data)
    assert blob[1] & fmt.BLOB_FLAG_COMPRESSED == 0
    assert len(blob) == len(data) + fmt.BLOB_OVERHEAD
    text = b"log line 42 ok\n" * 4000
    blob = codec.encode(codec.chunk_id(text), fmt.BLOB_TYPE_DATA, text)
    assert blob[1] & fmt.BLOB_FLAG_COMPRESSED


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=5000), pos=st.integers(min_value=0), bit=st.integers(0, 7)
)
def test_any_flipped_bit_is_detected(data: bytes, pos: int, bit: int) -> None:
    codec = BlobCodec(KEY, ID_KEY)
    cid = codec.chunk_id(data)
    blob = bytearray(codec.encode(cid, fmt.BLOB_TYPE_DATA, data))
    blob[pos % len(blob)] ^= 1 << bit
    with pytest.raises(CorruptObject, match=cid.hex()):
        codec.decode(cid, bytes(blob), where="volume offset 0")


def test_blob_bound_to_its_id() -> None:
    codec = BlobCodec(KEY, ID_KEY)
    a, b = b"a" * 100, b"b" * 100
    blob = codec.encode(codec.chunk_id(a), fmt.BLOB_TYPE_DATA, a)
    with pytest.raises(CorruptObject):
        codec.decode(codec.chunk_id(b), blob)


def test_chunk_ids_are_keyed() -> None:
    assert BlobCodec(KEY, ID_KEY).chunk_id(b"x") != BlobCodec(KEY, KEY).chunk_id(b"x")


@settings(max_examples=40, deadline=None)
@given(body=st.binary(max_size=3000), name=st.text(min_size=1, max_size=40), kind=st.integers(1, 6))
def test_sealed_round_trip_and_binding(body: bytes, name: str, kind: int) -> None:
    s = Sealer(KEY)
    sealed = s.seal(kind, name, body)
    assert s.open(kind, name, sealed) == body
    with pytest.raises(CorruptObject):
        s.open(kind, name + "x", sealed)
    with pytest.raises(CorruptObject):
        s.open(kind % 6 + 1, name, sealed)
    with pytest.raises(CorruptObject):
        Sealer(ID_KEY).open(kind, name, sealed)


ids32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(0, 1 << 40),
    name=st.text(max_size=50),
    parent=st.none() | st.text(alphabet="abcdef0123456789", min_size=1, max_size=32),
    meta=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
    data=st.data(),
)
def test_manifest_root_round_trip(
    size: int, name: str, parent: str | None, meta: dict[str, str], data: st.DataObject
) -> None:
    cs = 65536
    n = page_count(size, cs)
    pages = tuple(data.draw(st.lists(ids32, min_size=min(n, 20), max_size=min(n, 20))))
    if n > 20:
        pages = pages + (bytes(32),) * (n - 20)
    root = ManifestRoot(
        "b1",
        "proj",
        size,
        cs,
        "2026-11-27T00:00:00+00:00",
        pages,
        name=name,
        parent_id=parent,
        meta=meta,
        stats={"chunks_new": 3},
    )
    assert ManifestRoot.decode(root.encode()) == root


@pytest.mark.parametrize(
    "junk", [b"", b"{}", b"[1]", b'{"magic":"vbs-manifest","version":2}', b"\xff\xfe"]
)
def test_manifest_root_rejects_junk(junk: bytes) -> None:
    with pytest.raises(CorruptObject):
        ManifestRoot.decode(junk)


def test_manifest_root_rejects_wrong_page_count() -> None:
    root = ManifestRoot("b1", "p", 65536 * 4097, 65536, "t", (bytes(32),))
    with pytest.raises(CorruptObject, match="pages"):
        ManifestRoot.decode(root.encode())


@settings(max_examples=30, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=2000), min_size=0, max_size=30))
def test_pack_round_trip_and_index_file(chunks: list[bytes]) -> None:
    codec, sealer = BlobCodec(KEY, ID_KEY), Sealer(KEY)
    b = PackBuilder()
    offsets = {}
    for c in chunks:
        cid = codec.chunk_id(c)
        offsets[cid] = b.add(cid, fmt.BLOB_TYPE_DATA, len(c), codec.encode(cid, 0, c))
    pack_id, data, entries = b.finish(sealer)
    assert parse_pack(data, sealer, pack_id) == entries
    idx_plain = serialize_index_file([(pack_id, entries)])
    index = ChunkIndex()
    for p, arr in parse_index_file(idx_plain, "i"):
        index.add_entries(p, arr)
    index.merge()
    for c in chunks:
        cid = codec.chunk_id(c)
        loc = index.lookup(cid)
        assert loc is not None and loc.pack_id == pack_id
        assert codec.decode(cid, data[loc.offset : loc.offset + loc.length]).plaintext == c
    assert index.lookup(b"\x01" * 32) is None


@settings(max_examples=30, deadline=None)
@given(
    chunks=st.lists(
        st.tuples(st.binary(min_size=1, max_size=3000), st.booleans()), min_size=1, max_size=20
    ),
    before=st.integers(0, 3),
)
def test_blobs_encoded_many_at_once_decode_and_index_like_single_ones(
    chunks: list[tuple[bytes, bool]], before: int
) -> None:
    """encode_many + add_many (the backup's per-segment path) make the same
    pack entries, flags and plaintext as encode + add one by one, after blobs
    added singly, and every nonce is fresh."""
    codec, sealer = BlobCodec(KEY, ID_KEY), Sealer(KEY)
    data = [c[:50] * 40 if compressible else c for c, compressible in chunks]
    b = PackBuilder()
    for i in range(before):
        single = os.urandom(100 + i)
        b.add(codec.chunk_id(single), fmt.BLOB_TYPE_DATA, len(single),
              codec.encode(codec.chunk_id(single), fmt.BLOB_TYPE_DATA, single))
    ids = [codec.chunk_id(d) for d in data]
    blobs = codec.encode_many(ids, fmt.BLOB_TYPE_DATA, [memoryview(d) for d in data])
    b.add_many(ids, fmt.BLOB_TYPE_DATA, blobs.buffer, blobs.spans)
    pack_id, pack, entries = b.finish(sealer)
    assert parse_pack(pack, sealer, pack_id) == entries
    index = ChunkIndex()
    for p, arr in parse_index_file(serialize_index_file([(pack_id, entries)]), "i"):
        index.add_entries(p, arr)
    index.merge()
    nonces = set()
    for cid, d in zip(ids, data, strict=True):
        loc = index.lookup(cid)
        assert loc is not None
        blob = pack[loc.offset : loc.offset + loc.length]
        single = codec.encode(cid, fmt.BLOB_TYPE_DATA, d)
        assert blob[:fmt.BLOB_HEADER.size] == single[:fmt.BLOB_HEADER.size]  # same flags
        assert len(blob) == len(single)
        nonces.add(blob[fmt.BLOB_HEADER.size : fmt.BLOB_HEADER.size + fmt.NONCE_SIZE])
        assert codec.decode(cid, blob).plaintext == d
    assert len(nonces) == len(set(ids))


def test_encode_many_stores_incompressible_chunks_raw() -> None:
    codec = BlobCodec(KEY, ID_KEY)
    raw, text = os.urandom(65536), b"log line 42 ok\n" * 4000
    ids = [codec.chunk_id(raw), codec.chunk_id(text)]
    blobs = codec.encode_many(ids, fmt.BLOB_TYPE_DATA, [raw, text])
    (o1, n1, p1), (o2, n2, p2) = blobs.spans
    assert blobs.buffer[o1 + 1] & fmt.BLOB_FLAG_COMPRESSED == 0
    assert n1 == len(raw) + fmt.BLOB_OVERHEAD and p1 == len(raw)
    assert blobs.buffer[o2 + 1] & fmt.BLOB_FLAG_COMPRESSED and n2 < len(text) and p2 == len(text)
    assert o2 == n1 and len(blobs.buffer) == n1 + n2
    assert codec.encode_many([], fmt.BLOB_TYPE_DATA, []).spans == []


def test_pack_add_many_rejects_spans_that_do_not_tile_the_buffer() -> None:
    codec = BlobCodec(KEY, ID_KEY)
    data = [b"a" * 100, b"b" * 100]
    ids = [codec.chunk_id(d) for d in data]
    blobs = codec.encode_many(ids, fmt.BLOB_TYPE_DATA, data)
    with pytest.raises(ValueError):
        PackBuilder().add_many(ids[:1], fmt.BLOB_TYPE_DATA, blobs.buffer, blobs.spans[:1])
    with pytest.raises(ValueError):
        PackBuilder().add_many(ids[::-1], fmt.BLOB_TYPE_DATA, blobs.buffer, blobs.spans[::-1])


def test_pack_with_damaged_trailer_is_rejected() -> None:
    b = PackBuilder()
    pack_id, data, _ = b.finish(Sealer(KEY))
    with pytest.raises(CorruptObject):
        parse_pack(data[:-1] + b"X", Sealer(KEY), pack_id)
    with pytest.raises(CorruptObject):
        parse_pack(b"NOTAPACK" + data[8:], Sealer(KEY), pack_id)


def test_index_overlay_merge_and_batch_lookup() -> None:
    index = ChunkIndex()
    ids = [os.urandom(31) + b"\0" for _ in range(50)]  # trailing NUL must survive
    raw = b"".join(fmt.PACK_ENTRY.pack(i, 0, 0, 0, 8 + n, 10, 10) for n, i in enumerate(ids))
    index.add_pack("aa" * 32, raw[: 25 * 48])
    index.merge()
    index.add_pack("bb" * 32, raw[25 * 48 :])
    assert index.contains_many(ids + [b"\2" * 32]) == [True] * 50 + [False]
    assert index.lookup(ids[30]).pack_id == "bb" * 32  # type: ignore[union-attr]
    index.merge()
    assert len(index) == 50 and index.lookup(ids[3]).offset == 11  # type: ignore[union-attr]
