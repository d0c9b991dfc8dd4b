"""Changed blocks between two backups of one volume (like EBS ListChangedBlocks).

``GET /v2/{p}/cloudbackups/{backup_id}/changed_blocks?base_backup_id=ID``
answers the byte ranges in which ``backup_id`` differs from
``base_backup_id``, computed from the two manifests alone
(:func:`vbs.engine.changed.changed_blocks`: pages with equal ids are skipped
whole, no chunk data is read). Both backups must be readable by the caller
(own, or shared with it: the same rule as every read of a backup), be
``available`` and belong to the same volume.

Paging: ``limit`` ranges per answer (1–1000, default 1000, larger values are
clamped), ``marker`` the byte offset to start at (``next_marker`` of the
previous answer); ranges are merged runs of changed chunks, ``block_size``
is the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from vbs.engine.changed import changed_blocks as diff_manifests
from vbs.errors import BackupNotFound
from vbs.repository.repo import Repository
from vbs.service.backup_records import BackupRecord, Family
from vbs.service.backups import get_backup
from vbs.service.codes import VB_BACKUP_NOT_FOUND, VB_RESTORE_BACKUP_NOT_AVAILABLE, ApiCode, fail

__all__ = [
    "MAX_LIMIT",
    "VB_CHANGED_BLOCKS_BAD_QUERY",
    "VB_CHANGED_BLOCKS_OTHER_VOLUME",
    "ChangedBlocks",
    "ChangedBlocksQuery",
    "list_changed_blocks",
    "parse_changed_blocks_query",
]

MAX_LIMIT = 1000

VB_CHANGED_BLOCKS_BAD_QUERY = ApiCode(
    "VolumeBackup.0301", 400, "base_backup_id, limit or marker is missing or invalid."
)
VB_CHANGED_BLOCKS_OTHER_VOLUME = ApiCode(
    "VolumeBackup.0302", 400, "The two backups are of different volumes."
)


@dataclass(frozen=True, slots=True)
class ChangedBlocksQuery:
    base_backup_id: str
    limit: int = MAX_LIMIT
    marker: int = 0


@dataclass(frozen=True, slots=True)
class ChangedBlocks:
    blocks: tuple[tuple[int, int], ...]
    block_size: int
    volume_size: int
    next_marker: int | None


def _int(raw: str | None, name: str, default: int, minimum: int) -> int:
    if raw is None:
        return default
    text = raw.strip()
    if not text.isdigit() or len(text) > 19:
        fail(VB_CHANGED_BLOCKS_BAD_QUERY, f"{name} must be an integer >= {minimum}, got {raw!r}.")
    value = int(text)
    if value < minimum:
        fail(VB_CHANGED_BLOCKS_BAD_QUERY, f"{name} must be an integer >= {minimum}, got {raw!r}.")
    return value


def parse_changed_blocks_query(base_backup_id: str | None, limit: str | None,
                               marker: str | None) -> ChangedBlocksQuery:
    """Validate the query string; every violation is 400 VolumeBackup.0301."""
    if not base_backup_id or not base_backup_id.strip():
        fail(VB_CHANGED_BLOCKS_BAD_QUERY, "base_backup_id is required.")
    return ChangedBlocksQuery(
        base_backup_id=base_backup_id.strip(),
        limit=min(MAX_LIMIT, _int(limit, "limit", MAX_LIMIT, 1)),
        marker=_int(marker, "marker", 0, 0),
    )


def _readable(session: Session, project_id: str, backup_id: str) -> BackupRecord:
    rec = get_backup(session, Family.VBS, project_id, backup_id)
    if rec.status not in ("available", "restoring"):
        fail(VB_RESTORE_BACKUP_NOT_AVAILABLE,
             f"Backup {backup_id} is {rec.status}; it must be available.")
    return rec


def list_changed_blocks(session: Session, repository: Repository, project_id: str,
                        backup_id: str, query: ChangedBlocksQuery) -> ChangedBlocks:
    """One page of the ranges in which ``backup_id`` differs from the base."""
    rec = _readable(session, project_id, backup_id)
    base = _readable(session, project_id, query.base_backup_id)
    if base.volume_id != rec.volume_id:
        fail(VB_CHANGED_BLOCKS_OTHER_VOLUME,
             f"Backup {query.base_backup_id} is of volume {base.volume_id}, backup "
             f"{backup_id} of volume {rec.volume_id}.")
    if base.project_id != rec.project_id:
        fail(VB_CHANGED_BLOCKS_OTHER_VOLUME, "The two backups belong to different projects.")
    store = repository.project(rec.project_id)
    try:
        root = store.load_manifest(backup_id)
        base_root = store.load_manifest(query.base_backup_id)
    except BackupNotFound:
        fail(VB_BACKUP_NOT_FOUND, f"Backup {backup_id} has no data in the repository.")
    if query.marker > root.volume_size:
        fail(VB_CHANGED_BLOCKS_BAD_QUERY,
             f"marker {query.marker} is beyond the volume size {root.volume_size}.")
    if base_root.chunk_size != root.chunk_size:
        fail(VB_CHANGED_BLOCKS_OTHER_VOLUME, "The two backups have different block sizes.")
    index = store.load_index()
    blocks, nxt = diff_manifests(store, index, base_root, root, marker=query.marker,
                                 limit=query.limit)
    return ChangedBlocks(tuple(blocks), root.chunk_size, root.volume_size, nxt)
