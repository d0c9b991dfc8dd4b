"""Encryption, authentication and chunk ids.

* Blobs (chunks and manifest pages inside packs) are AES-256-GCM encrypted with
  the project's data key; the AAD binds the blob header and the chunk id.
* Sealed objects (index files, manifest roots, pack headers, project keys, GC
  records) are AES-256-GCM with the AAD binding header and object name.
* Chunk ids are BLAKE3 keyed with the project's id key, so equal plaintext
  dedups inside one project and nothing can be learned across projects.

Nonces are 96 random bits per encryption (os.urandom). With random nonces one
key must not encrypt more than 2**32 messages; at 64 KiB chunks that is
256 TiB of unique data per project before its data key must be rotated
(documented limit of format v1).

Every object is thread-safe: compressors are per thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import blake3
import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vbs.errors import CorruptObject
from vbs.repository import format as fmt

__all__ = ["BlobCodec", "DecodedBlob", "EncodedBlobs", "Sealer", "chunk_hasher"]

ZSTD_LEVEL = 1


def chunk_hasher(id_key: bytes) -> blake3.blake3:
    """A keyed BLAKE3 hasher template; ``.copy()`` is cheaper than re-keying."""
    return blake3.blake3(key=id_key)


class Sealer:
    """Seals and opens small standalone objects with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != fmt.KEY_SIZE:
            raise ValueError("sealing key must be 32 bytes")
        self._aead = AESGCM(key)
        self._local = threading.local()

    def _cctx(self) -> zstandard.ZstdCompressor:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return c

    def seal(self, kind: int, name: str, plaintext: bytes, *, compress: bool = True) -> bytes:
        flags = 0
        body = plaintext
        if compress:
            body = self._cctx().compress(plaintext)
            flags = 1
        header = fmt.SEALED_HEADER.pack(fmt.SEALED_MAGIC, fmt.FORMAT_VERSION, kind, flags, 0)
        nonce = os.urandom(fmt.NONCE_SIZE)
        ct = self._aead.encrypt(nonce, body, header + name.encode())
        return header + nonce + ct

    def open(self, kind: int, name: str, data: bytes) -> bytes:
        """Authenticate and decrypt; raises CorruptObject naming the object."""
        hs = fmt.SEALED_HEADER.size
        if len(data) < hs + fmt.NONCE_SIZE + fmt.TAG_SIZE:
            raise CorruptObject(f"{name}: truncated ({len(data)} bytes)")
        magic, version, got_kind, flags, _ = fmt.SEALED_HEADER.unpack_from(data)
        if magic != fmt.SEALED_MAGIC:
            raise CorruptObject(f"{name}: bad magic {magic!r}")
        if version != fmt.FORMAT_VERSION:
            raise CorruptObject(f"{name}: unsupported object version {version}")
        if got_kind != kind:
            raise CorruptObject(f"{name}: object kind {got_kind}, expected {kind}")
        nonce = data[hs : hs + fmt.NONCE_SIZE]
        try:
            body = self._aead.decrypt(nonce, data[hs + fmt.NONCE_SIZE :], data[:hs] + name.encode())
        except InvalidTag:
            raise CorruptObject(f"{name}: authentication failed (corrupt or wrong key)") from None
        if flags & 1:
            try:
                body = zstandard.ZstdDecompressor().decompress(body)
            except zstandard.ZstdError as exc:
                raise CorruptObject(f"{name}: bad compressed payload: {exc}") from None
        return body


class DecodedBlob:
    """The plaintext of one blob with its type."""

    __slots__ = ("blob_type", "plaintext")

    def __init__(self, blob_type: int, plaintext: bytes) -> None:
        self.blob_type = blob_type
        self.plaintext = plaintext


@dataclass(frozen=True)
class EncodedBlobs:
    """Blobs back to back in ``buffer``; ``spans`` holds (offset, length,
    plaintext length) of each, in the order of the chunks given."""

    buffer: bytearray
    spans: list[tuple[int, int, int]]


class BlobCodec:
    """Encodes plaintext chunks into blobs and back, for one project.

    ``encode`` compresses with zstd and keeps the compressed form only when it
    saves at least 1/32 of the size (incompressible data is stored raw and
    flagged), then encrypts. ``decode`` authenticates, decrypts, decompresses
    and checks that the plaintext hashes to the expected chunk id.
    """

    def __init__(self, data_key: bytes, id_key: bytes, *, level: int = ZSTD_LEVEL) -> None:
        self._aead = AESGCM(data_key)
        self._hasher = chunk_hasher(id_key)
        self._keys = (data_key, id_key)
        self._level = level
        self._local = threading.local()

    def __reduce__(self) -> tuple[type[BlobCodec], tuple[bytes, bytes], dict[str, int]]:
        """Pickled only to hand the codec to a restore worker process over a
        local pipe (vbs.engine.restore_procs); the keys travel with it."""
        return (BlobCodec, self._keys, {"_level": self._level})

    def __setstate__(self, state: dict[str, int]) -> None:
        self._level = state["_level"]

    @property
    def level(self) -> int:
        """The zstd level blobs are compressed at (``vbs benchmark`` measures it)."""
        return self._level

    def _cctx(self) -> zstandard.ZstdCompressor:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = zstandard.ZstdCompressor(level=self._level)
        return c

    def _dctx(self) -> zstandard.ZstdDecompressor:
        d = getattr(self._local, "d", None)
        if d is None:
            d = self._local.d = zstandard.ZstdDecompressor()
        return d

    def chunk_id(self, plaintext: bytes | memoryview) -> bytes:
        h = self._hasher.copy()
        h.update(plaintext)
        return h.digest()

    @staticmethod
    def _body(plaintext: Any, comp: Any) -> tuple[Any, int]:
        """The stored body and its flags: the compressed form only when it
        saves at least 1/32 of the size, else the plaintext, raw."""
        n = len(plaintext)
        if len(comp) <= n - (n >> 5):
            return comp, fmt.BLOB_FLAG_COMPRESSED
        return plaintext, 0

    def _seal_into(self, out: memoryview, chunk_id: bytes, blob_type: int, flags: int,
                   plain_len: int, body: Any, nonce: bytes) -> None:
        """Header, nonce and ciphertext of one blob into ``out`` (exactly its
        length): encrypted in place, no concatenation copy."""
        hs = fmt.BLOB_HEADER.size
        header = fmt.BLOB_HEADER.pack(blob_type, flags, 0, plain_len)
        out[:hs] = header
        out[hs : hs + fmt.NONCE_SIZE] = nonce
        self._aead.encrypt_into(nonce, body, header + chunk_id, out[hs + fmt.NONCE_SIZE :])

    def encode(
        self, chunk_id: bytes, blob_type: int, plaintext: bytes | memoryview
    ) -> bytearray:
        body, flags = self._body(plaintext, self._cctx().compress(plaintext))
        blob = bytearray(len(body) + fmt.BLOB_OVERHEAD)
        self._seal_into(memoryview(blob), chunk_id, blob_type, flags, len(plaintext), body,
                        os.urandom(fmt.NONCE_SIZE))
        return blob

    def encode_many(
        self, chunk_ids: Sequence[bytes], blob_type: int, chunks: Sequence[memoryview | bytes]
    ) -> EncodedBlobs:
        """``encode`` for many chunks at once, the blobs back to back in one buffer.

        Same blobs as ``encode`` would make one by one (same compression
        rule, a fresh random nonce each), but one zstd call compresses them
        all and one RNG call draws every nonce: each call into C hands the
        GIL over, and a backup's worker threads spent a third of their time
        waiting to get it back. Each blob is encrypted in place in the buffer.
        """
        k = len(chunks)
        if k == 0:
            return EncodedBlobs(bytearray(), [])
        comps = self._cctx().multi_compress_to_buffer(list(chunks), threads=1)
        nonces = os.urandom(fmt.NONCE_SIZE * k)
        bodies = [self._body(chunk, comps[i]) for i, chunk in enumerate(chunks)]
        out = bytearray(sum(len(body) for body, _ in bodies) + k * fmt.BLOB_OVERHEAD)
        view = memoryview(out)
        spans: list[tuple[int, int, int]] = []
        pos = 0
        for i, (body, flags) in enumerate(bodies):
            n = len(chunks[i])
            length = len(body) + fmt.BLOB_OVERHEAD
            self._seal_into(view[pos : pos + length], chunk_ids[i], blob_type, flags, n, body,
                            nonces[i * fmt.NONCE_SIZE : (i + 1) * fmt.NONCE_SIZE])
            spans.append((pos, length, n))
            pos += length
        return EncodedBlobs(out, spans)

    def decode(self, chunk_id: bytes, blob: bytes | memoryview, *, where: str = "") -> DecodedBlob:
        """Raises CorruptObject with ``where`` (pack/offset/volume offset) in the message.

        Works on ``blob`` in place (a memoryview into a pack range is not
        copied), and builds the error label only when there is an error:
        restore calls this once per chunk, on the pipeline's critical path.
        """
        hs = fmt.BLOB_HEADER.size
        if len(blob) < fmt.BLOB_OVERHEAD:
            raise CorruptObject(f"{_label(chunk_id, where)}: truncated blob")
        view = memoryview(blob)
        blob_type, flags, _, plain_len = fmt.BLOB_HEADER.unpack_from(view)
        nonce = view[hs : hs + fmt.NONCE_SIZE]
        try:
            body = self._aead.decrypt(nonce, view[hs + fmt.NONCE_SIZE :],
                                      bytes(view[:hs]) + chunk_id)
        except InvalidTag:
            raise CorruptObject(f"{_label(chunk_id, where)}: authentication failed") from None
        if flags & fmt.BLOB_FLAG_COMPRESSED:
            try:
                body = self._dctx().decompress(body, max_output_size=plain_len)
            except zstandard.ZstdError as exc:
                raise CorruptObject(
                    f"{_label(chunk_id, where)}: bad compressed data: {exc}"
                ) from None
        if len(body) != plain_len:
            raise CorruptObject(
                f"{_label(chunk_id, where)}: length {len(body)} != recorded {plain_len}"
            )
        if self.chunk_id(body) != chunk_id:
            raise CorruptObject(f"{_label(chunk_id, where)}: content does not match its id")
        return DecodedBlob(blob_type, body)


def _label(chunk_id: bytes, where: str) -> str:
    return f"chunk {chunk_id.hex()}" + (f" ({where})" if where else "")
