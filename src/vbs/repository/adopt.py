"""Adopting unindexed packs: how a resumed backup avoids storing chunks twice.

A backup writes packs first and names them in an index file only every few
packs (and at its end). A worker killed in between leaves packs that are
durable and complete but in no index file, so the next run's dedup would not
see them and would upload their chunks again. :func:`adopt_unindexed_packs`
reads the sealed header of each such pack (the pack describes itself,
repository-format §3) and writes one index file for them; the resumed backup
then loads an index that contains them and uploads only what is really new.

Which packs are adopted: listed under the project's ``packs/``, in no index
file, in no pending GC condemnation record (GC decides about those), and at
least ``min_age_seconds`` old, so that a pack another backup of the project
wrote a moment ago (its index file is on the way) is left to that backup.
Indexing a pack twice would be harmless anyway: index loading keeps one
location per chunk id.

Concurrency: this only adds an index file naming durable packs, the same
write a backup makes; GC already handles "an orphan got indexed after it was
condemned" by keeping re-indexed packs (see :mod:`vbs.repository.gc`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from vbs.errors import CorruptObject, ObjectNotFound
from vbs.repository import format as fmt
from vbs.repository import layout
from vbs.repository.pack import PACK_HEADER_NAME, parse_pack_trailer
from vbs.repository.repo import ProjectStore

__all__ = ["AdoptReport", "adopt_unindexed_packs"]


@dataclass(frozen=True)
class AdoptReport:
    """What one adoption pass indexed (and what it could not read)."""

    packs: int = 0
    chunks: int = 0
    unreadable: int = 0


def _condemned(store: ProjectStore) -> set[str]:
    out: set[str] = set()
    for o in store.backend.list(layout.gc_prefix(store.project)):
        try:
            doc = json.loads(store.sealer.open(fmt.SEALED_KIND_GC, o.key,
                                               store.backend.get(o.key)))
        except ObjectNotFound:
            continue
        out.update(str(p) for p in doc["packs"])
    return out


def _header(store: ProjectStore, pack_hex: str, size: int) -> bytes:
    key = layout.pack_key(store.project, pack_hex)
    tail = store.backend.get(key, max(0, size - fmt.PACK_TRAILER.size))
    start, count = parse_pack_trailer(tail, size, pack_hex)
    sealed = store.backend.get(key, start, size - fmt.PACK_TRAILER.size - start)
    entries = store.sealer.open(fmt.SEALED_KIND_PACK_HEADER, PACK_HEADER_NAME, sealed)
    if len(entries) != count * fmt.PACK_ENTRY.size:
        raise CorruptObject(f"pack {pack_hex}: header does not match its trailer")
    return entries


def adopt_unindexed_packs(store: ProjectStore, *, min_age_seconds: float = 0.0,
                          now: float | None = None) -> AdoptReport:
    """Index the project's durable packs that no index file names (see module doc)."""
    stamp = time.time() if now is None else now
    indexed = {p for p, _ in store.load_index().iter_packs()}
    candidates = [
        o for o in store.backend.list(layout.packs_prefix(store.project))
        if o.key.rsplit("/", 1)[-1] not in indexed and stamp - o.mtime >= min_age_seconds
    ]
    if not candidates:
        return AdoptReport()
    condemned = _condemned(store)
    found: list[tuple[str, bytes]] = []
    unreadable = 0
    for o in candidates:
        pack_hex = o.key.rsplit("/", 1)[-1]
        if pack_hex in condemned:
            continue
        try:
            found.append((pack_hex, _header(store, pack_hex, o.size)))
        except (ObjectNotFound, CorruptObject):
            unreadable += 1  # gone meanwhile, or damaged: verify reports it, never us
    if found:
        store.write_index(found)
    chunks = sum(len(e) // fmt.PACK_ENTRY.size for _, e in found)
    return AdoptReport(packs=len(found), chunks=chunks, unreadable=unreadable)
