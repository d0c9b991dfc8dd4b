"""Manifests: what one backup is made of.

A backup's *manifest* is a small *root* (a sealed JSON object at
``projects/<p>/backups/<id>``) plus *pages*. A page is the concatenation of up
to PAGE_ENTRIES 32-byte chunk ids (ZERO_ID for an all-zero chunk or a hole),
one per chunk of the volume in order; pages are stored as blobs of type page
in packs, content-addressed like data chunks. A page that did not change
since the parent backup has the same id, so it costs nothing to store again:
a nightly backup of a large volume writes only the pages that changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vbs.errors import CorruptObject
from vbs.repository import format as fmt

__all__ = ["ManifestRoot", "page_count", "split_page"]

ROOT_MAGIC = "vbs-manifest"


def page_count(volume_size: int, chunk_size: int) -> int:
    chunks = -(-volume_size // chunk_size)
    return -(-chunks // fmt.PAGE_ENTRIES)


def split_page(page: bytes) -> list[bytes]:
    if len(page) % fmt.CHUNK_ID_SIZE:
        raise CorruptObject(f"manifest page of {len(page)} bytes is not a list of ids")
    n = fmt.CHUNK_ID_SIZE
    return [page[i : i + n] for i in range(0, len(page), n)]


@dataclass(frozen=True)
class ManifestRoot:
    """The root object of one backup. Everything needed to restore it."""

    backup_id: str
    project: str
    volume_size: int
    chunk_size: int
    created: str  # ISO 8601 UTC
    page_ids: tuple[bytes, ...]
    name: str = ""
    source: str = ""
    source_id: str = ""
    parent_id: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def chunk_count(self) -> int:
        return -(-self.volume_size // self.chunk_size)

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "magic": ROOT_MAGIC,
            "version": fmt.FORMAT_VERSION,
            "backup_id": self.backup_id,
            "project": self.project,
            "volume_size": self.volume_size,
            "chunk_size": self.chunk_size,
            "created": self.created,
            "page_ids": [p.hex() for p in self.page_ids],
            "name": self.name,
            "source": self.source,
            "source_id": self.source_id,
            "parent_id": self.parent_id,
            "stats": self.stats,
            "meta": self.meta,
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes, name: str = "manifest") -> ManifestRoot:
        try:
            doc = json.loads(data)
            if doc["magic"] != ROOT_MAGIC or doc["version"] != fmt.FORMAT_VERSION:
                raise CorruptObject(f"{name}: bad magic or version")
            root = cls(
                backup_id=str(doc["backup_id"]),
                project=str(doc["project"]),
                volume_size=int(doc["volume_size"]),
                chunk_size=int(doc["chunk_size"]),
                created=str(doc["created"]),
                page_ids=tuple(bytes.fromhex(p) for p in doc["page_ids"]),
                name=str(doc.get("name", "")),
                source=str(doc.get("source", "")),
                source_id=str(doc.get("source_id", "")),
                parent_id=doc.get("parent_id"),
                stats={str(k): int(v) for k, v in doc.get("stats", {}).items()},
                meta={str(k): str(v) for k, v in doc.get("meta", {}).items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptObject(f"{name}: malformed manifest root: {exc}") from None
        if root.volume_size < 0 or not (
            fmt.CHUNK_SIZE_MIN <= root.chunk_size <= fmt.CHUNK_SIZE_MAX
        ):
            raise CorruptObject(f"{name}: volume or chunk size out of range")
        if len(root.page_ids) != page_count(root.volume_size, root.chunk_size):
            raise CorruptObject(f"{name}: {len(root.page_ids)} pages for the volume size")
        if any(len(p) != fmt.CHUNK_ID_SIZE for p in root.page_ids):
            raise CorruptObject(f"{name}: bad page id")
        return root
