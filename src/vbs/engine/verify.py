"""Verify: read stored data back and report typed findings.

``verify_backup`` reads every chunk one backup references (authenticating it
and re-hashing it to its id), exactly as a restore would, without writing.
``verify_project`` scans every pack of the project (framing, pack id, every
blob), cross-checks the index against the packs, and checks that every
backup's manifest and chunk references resolve.

Verify never deletes anything. Corrupt blob locations are *quarantined*
(recorded under ``quarantine/``): the index then ignores those copies, so the
next backup that meets the same data stores a good copy again.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import blake3

from vbs.errors import BackupNotFound, ChunkMissing, CorruptObject, ObjectNotFound, VbsError
from vbs.repository import format as fmt
from vbs.repository import layout
from vbs.repository.index import ChunkIndex
from vbs.repository.pack import parse_pack
from vbs.repository.repo import ProjectStore

from .common import CancelToken
from .reader import iter_manifest, read_backup

__all__ = ["Finding", "FindingKind", "verify_backup", "verify_project"]


class FindingKind(enum.StrEnum):
    MISSING_CHUNK = "missing_chunk"  # a manifest references a chunk no index knows
    CORRUPT_CHUNK = "corrupt_chunk"  # a blob fails authentication, length or id check
    CORRUPT_MANIFEST = "corrupt_manifest"  # root or page unreadable
    MISSING_PACK = "missing_pack"  # the index names a pack that does not exist
    CORRUPT_PACK = "corrupt_pack"  # pack framing, header or id wrong
    UNINDEXED_PACK = "unindexed_pack"  # a pack no index names (harmless: left by a crash)

    @property
    def is_error(self) -> bool:
        return self is not FindingKind.UNINDEXED_PACK


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    subject: str  # backup id or pack id
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "subject": self.subject, "detail": self.detail}


def verify_backup(
    store: ProjectStore,
    backup_id: str,
    *,
    index: ChunkIndex | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelToken | None = None,
    workers: int = 2,
) -> list[Finding]:
    """Findings for one backup; an empty list means every chunk reads back intact."""
    findings: list[Finding] = []
    try:
        root = store.load_manifest(backup_id)
    except BackupNotFound:
        raise
    except CorruptObject as exc:
        return [Finding(FindingKind.CORRUPT_MANIFEST, backup_id, exc.message)]
    if index is None:
        index = store.load_index()

    def on_error(exc: VbsError) -> None:
        kind = (
            FindingKind.MISSING_CHUNK
            if isinstance(exc, ChunkMissing)
            else FindingKind.CORRUPT_CHUNK
        )
        findings.append(Finding(kind, backup_id, exc.message))

    done = [0]

    def on_progress(n: int) -> None:
        done[0] += n
        if progress:
            progress(min(done[0], root.volume_size), root.volume_size)

    try:
        read_backup(
            store,
            root,
            index,
            lambda _p, _n: None,
            cancel=cancel,
            progress=on_progress,
            workers=workers,
            on_error=on_error,
        )
    except (ChunkMissing, CorruptObject) as exc:  # a manifest page itself is bad
        findings.append(Finding(FindingKind.CORRUPT_MANIFEST, backup_id, exc.message))
    return findings


def verify_project(
    store: ProjectStore,
    *,
    quarantine: bool = True,
    cancel: CancelToken | None = None,
) -> list[Finding]:
    """Check every pack, the index and every manifest of a project."""
    cancel = cancel or CancelToken()
    findings: list[Finding] = []
    index = store.load_index()
    indexed = {p: entries for p, entries in index.iter_packs()}
    prefix = layout.packs_prefix(store.project)
    present: set[str] = set()
    bad_locations: list[dict[str, object]] = []
    for info in store.backend.list(prefix):
        cancel.check()
        pack_hex = info.key.rsplit("/", 1)[-1]
        present.add(pack_hex)
        try:
            data = store.backend.get(info.key)
        except ObjectNotFound:
            continue  # deleted by a concurrent GC
        if blake3.blake3(data).hexdigest() != pack_hex:
            findings.append(
                Finding(FindingKind.CORRUPT_PACK, pack_hex, "content does not match the pack id")
            )
        try:
            raw = parse_pack(data, store.sealer, pack_hex)
        except CorruptObject as exc:
            findings.append(Finding(FindingKind.CORRUPT_PACK, pack_hex, exc.message))
            continue
        if pack_hex not in indexed:
            findings.append(Finding(FindingKind.UNINDEXED_PACK, pack_hex, "no index file names it"))
        for i in range(0, len(raw), fmt.PACK_ENTRY.size):
            cid, _bt, _fl, _r, off, length, _pl = fmt.PACK_ENTRY.unpack_from(raw, i)
            try:
                store.codec.decode(
                    cid, data[off : off + length], where=f"pack {pack_hex} offset {off}"
                )
            except CorruptObject as exc:
                findings.append(Finding(FindingKind.CORRUPT_CHUNK, pack_hex, exc.message))
                bad_locations.append({"chunk": cid.hex(), "pack": pack_hex, "offset": off})
    for pack_hex in sorted(set(indexed) - present):
        findings.append(
            Finding(FindingKind.MISSING_PACK, pack_hex, "named by the index but absent")
        )
    for backup_id in store.backup_ids():
        cancel.check()
        try:
            root = store.load_manifest(backup_id)
            for first, ids in iter_manifest(store, root, index):
                for i, cid in enumerate(ids):
                    if cid != fmt.ZERO_ID and index.lookup(cid) is None:
                        offset = (first + i) * root.chunk_size
                        detail = f"chunk {cid.hex()} (volume offset {offset}) is in no index"
                        findings.append(Finding(FindingKind.MISSING_CHUNK, backup_id, detail))
        except (CorruptObject, ChunkMissing) as exc:
            findings.append(Finding(FindingKind.CORRUPT_MANIFEST, backup_id, exc.message))
    if quarantine and bad_locations:
        record_quarantine(store, bad_locations)
    return findings


def record_quarantine(store: ProjectStore, locations: list[dict[str, object]]) -> None:
    key = layout.quarantine_key(store.project, uuid.uuid4().hex)
    body = json.dumps({"locations": locations}).encode()
    store.backend.put(key, store.sealer.seal(fmt.SEALED_KIND_QUARANTINE, key, body))
