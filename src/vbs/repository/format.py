"""Repository format v1: every magic value, struct layout and size in one place.

NEVER CHANGE anything in this module for format version 1. A change of any
constant or layout here is a new format version, with a new entry in
``docs/repository-format.md`` ("Changes") and a reader for the old one.
``tests/unit/test_repository_format.py`` pins every size.

All integers are little-endian. Terms are those of docs/repository-format.md:
*blob* (one encrypted chunk or manifest page inside a pack), *pack* (a file of
blobs followed by its encrypted header), *sealed object* (a small encrypted
object stored on its own: index files, manifest roots, project keys, GC
records).
"""

from __future__ import annotations

import struct
from typing import Final

__all__ = [
    "BLOB_FLAG_COMPRESSED",
    "BLOB_HEADER",
    "BLOB_OVERHEAD",
    "BLOB_TYPE_DATA",
    "BLOB_TYPE_PAGE",
    "CHUNK_ID_SIZE",
    "CHUNK_SIZE_DEFAULT",
    "CHUNK_SIZE_MAX",
    "CHUNK_SIZE_MIN",
    "CONFIG_MAGIC",
    "FORMAT_VERSION",
    "INDEX_ENTRY",
    "INDEX_PACK",
    "KEY_SIZE",
    "NONCE_SIZE",
    "PACK_ENTRY",
    "PACK_HEADER",
    "PACK_MAGIC",
    "PACK_TARGET_DEFAULT",
    "PACK_TRAILER",
    "PACK_TRAILER_MAGIC",
    "PAGE_ENTRIES",
    "SEALED_HEADER",
    "SEALED_KIND_GC",
    "SEALED_KIND_INDEX",
    "SEALED_KIND_MANIFEST",
    "SEALED_KIND_PACK_HEADER",
    "SEALED_KIND_PROJECT_KEY",
    "SEALED_KIND_QUARANTINE",
    "SEALED_MAGIC",
    "TAG_SIZE",
    "ZERO_ID",
]

FORMAT_VERSION: Final = 1

# --- sizes ------------------------------------------------------------------
CHUNK_ID_SIZE: Final = 32  # keyed BLAKE3-256 of the chunk plaintext
KEY_SIZE: Final = 32  # AES-256 keys and BLAKE3 keys
NONCE_SIZE: Final = 12  # AES-GCM nonce, random per encryption
TAG_SIZE: Final = 16  # AES-GCM authentication tag
CHUNK_SIZE_DEFAULT: Final = 64 * 1024
CHUNK_SIZE_MIN: Final = 16 * 1024
CHUNK_SIZE_MAX: Final = 4 * 1024 * 1024
PACK_TARGET_DEFAULT: Final = 32 * 1024 * 1024
PAGE_ENTRIES: Final = 4096  # chunk ids per manifest page (last page may hold fewer)

# The manifest marks an all-zero chunk (or a hole) with this id instead of
# storing it. A keyed BLAKE3 output equal to it has probability 2**-256.
ZERO_ID: Final = bytes(CHUNK_ID_SIZE)

# --- repository config (plaintext JSON object at key "config") ---------------
CONFIG_MAGIC: Final = "vbs-repository"

# --- packs -------------------------------------------------------------------
PACK_MAGIC: Final = b"VBSPACK\x01"  # 8 bytes: magic + format version
PACK_TRAILER_MAGIC: Final = b"VBSPEND\x01"

# Pack header (first 8 bytes of every pack file): magic.
PACK_HEADER: Final = struct.Struct("<8s")

# Blob header, the authenticated (AAD) prefix of every blob in a pack:
#   offset size type  field
#   0      1    u8    blob type (BLOB_TYPE_*)
#   1      1    u8    flags (BLOB_FLAG_*)
#   2      2    u16   reserved, zero
#   4      4    u32   plaintext length (before compression)
# followed by nonce[12] and AES-256-GCM ciphertext (+16-byte tag) of the
# stored bytes (zstd frame when compressed, else the plaintext). The AAD is the
# 8 header bytes followed by the 32-byte chunk id, binding the blob to its id.
BLOB_HEADER: Final = struct.Struct("<BBHI")
BLOB_TYPE_DATA: Final = 0
BLOB_TYPE_PAGE: Final = 1
BLOB_FLAG_COMPRESSED: Final = 0x01
BLOB_OVERHEAD: Final = BLOB_HEADER.size + NONCE_SIZE + TAG_SIZE  # 36 bytes

# One entry of a pack's own header and of index files:
#   0   32  bytes  chunk id
#   32  1   u8     blob type
#   33  1   u8     flags
#   34  2   u16    reserved, zero
#   36  4   u32    offset of the blob in the pack
#   40  4   u32    stored length of the blob (header + nonce + ciphertext + tag)
#   44  4   u32    plaintext length
PACK_ENTRY: Final = struct.Struct("<32sBBHIII")  # 48 bytes

# Pack trailer, the last 16 bytes of a pack file:
#   0   4   u32  length of the sealed pack header that precedes the trailer
#   4   4   u32  number of entries in it
#   8   8   bytes PACK_TRAILER_MAGIC
PACK_TRAILER: Final = struct.Struct("<II8s")

# Index file plaintext: a sequence of
#   INDEX_PACK (pack id, entry count) followed by that many PACK_ENTRY records.
INDEX_PACK: Final = struct.Struct("<32sI")  # 36 bytes
INDEX_ENTRY: Final = PACK_ENTRY

# --- sealed objects ------------------------------------------------------------
# Sealed object layout:
#   0   4   bytes SEALED_MAGIC
#   4   1   u8    format version (1)
#   5   1   u8    kind (SEALED_KIND_*)
#   6   1   u8    flags (bit 0: plaintext is a zstd frame)
#   7   1   u8    reserved, zero
#   8   12  bytes nonce
#   20  n   bytes AES-256-GCM ciphertext + tag
# AAD = the 8 header bytes + the object's name (UTF-8), so an object cannot be
# moved to another key or reinterpreted as another kind without detection.
SEALED_MAGIC: Final = b"VBSS"
SEALED_HEADER: Final = struct.Struct("<4sBBBB")  # 8 bytes
SEALED_KIND_PROJECT_KEY: Final = 1
SEALED_KIND_INDEX: Final = 2
SEALED_KIND_MANIFEST: Final = 3
SEALED_KIND_PACK_HEADER: Final = 4
SEALED_KIND_GC: Final = 5
SEALED_KIND_QUARANTINE: Final = 6
