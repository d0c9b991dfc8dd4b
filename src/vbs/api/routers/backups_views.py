"""Backup records to renderer views for the native backup routers.

The service returns :class:`~vbs.service.backup_records.BackupRecord`
(frozen copies of rows); the renderers of :mod:`vbs.api.schemas.render` take a
:class:`~vbs.api.schemas.backups.BackupView`. The mapping lives in the API
layer because the view is a wire concern and the service must not import the
API (imports point down, STYLE §6).
"""

from __future__ import annotations

from vbs.api.schemas.backups import BackupView, ChangeTrackingView, ServiceMetadata
from vbs.service.backup_records import BackupRecord

__all__ = ["DEDUP_COMPRESS", "to_view"]

DEDUP_COMPRESS = 3
"""``service_metadata.DL``: the repository always deduplicates and compresses (vbs-api §3.4)."""


def to_view(r: BackupRecord) -> BackupView:
    """Every field any backup representation needs (vbs-api §3.3, §3.4).

    ``size`` is the source disk in GiB [D25]; ``BackupSize`` is the bytes the
    backup added to the repository, omitted while unknown (0).
    """
    return BackupView(
        id=r.id,
        project_id=r.project_id,
        volume_id=r.volume_id,
        status=r.status,
        size=r.size_gb,
        created_at=r.created_at,
        data_timestamp=r.data_timestamp,
        name=r.name,
        description=r.description,
        snapshot_id=r.snapshot_id,
        availability_zone=r.availability_zone,
        container=r.container,
        object_count=r.object_count,
        fail_reason=r.fail_reason,
        updated_at=r.updated_at,
        is_incremental=r.is_incremental,
        has_dependent_backups=r.has_dependent_backups,
        user_id=r.user_id,
        metadata=r.metadata,
        tags=r.tags,
        service_metadata=ServiceMetadata(
            bootable=r.bootable,
            progress=r.progress,
            backup_size=r.stored_bytes or None,
            dedup_compress=DEDUP_COMPRESS,
        ),
        change_tracking=None if r.change_tracking is None else ChangeTrackingView(
            r.change_tracking, r.bytes_read, r.bytes_new, r.chunks_sampled),
    )
