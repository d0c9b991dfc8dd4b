"""to_view builds views positionally (vbs.frozen.assemble): the fields must land right."""

from __future__ import annotations

import datetime as dt
from dataclasses import FrozenInstanceError, fields

import pytest

from vbs.api.routers.backups_views import DEDUP_COMPRESS, to_view
from vbs.api.schemas.backups import BackupView, ChangeTrackingView, ServiceMetadata
from vbs.service.backup_records import BackupRecord
from vbs.service.backup_rules import Tag

AT = dt.datetime(2024, 3, 5, 10, 15, 42, 123456, tzinfo=dt.UTC)


def _record(**over: object) -> BackupRecord:
    values: dict[str, object] = {f.name: f"<{f.name}>" for f in fields(BackupRecord)}
    values.update(size_gb=3, volume_size_bytes=3 << 30, object_count=48, stored_bytes=12345,
                  is_incremental=True, bootable=True, progress=42, image_source=False,
                  metadata=(("a", "1"),), tags=(Tag("env", "prod"),), created_at=AT,
                  updated_at=AT + dt.timedelta(seconds=1), data_timestamp=AT,
                  change_tracking="fiemap", bytes_read=10, bytes_new=5, chunks_sampled=2,
                  has_dependent_backups=True)
    values.update(over)
    return BackupRecord(**values)  # type: ignore[arg-type]


def _by_keyword(r: BackupRecord) -> BackupView:
    """The view as the constructors build it, field by field by name."""
    return BackupView(
        id=r.id, project_id=r.project_id, volume_id=r.volume_id, status=r.status,
        size=r.size_gb, created_at=r.created_at, data_timestamp=r.data_timestamp,
        name=r.name, description=r.description, snapshot_id=r.snapshot_id,
        availability_zone=r.availability_zone, container=r.container,
        object_count=r.object_count, fail_reason=r.fail_reason, updated_at=r.updated_at,
        is_incremental=r.is_incremental, has_dependent_backups=r.has_dependent_backups,
        user_id=r.user_id, metadata=r.metadata, tags=r.tags,
        service_metadata=ServiceMetadata(bootable=r.bootable, progress=r.progress,
                                         backup_size=r.stored_bytes or None,
                                         dedup_compress=DEDUP_COMPRESS),
        change_tracking=None if r.change_tracking is None else ChangeTrackingView(
            change_tracking=r.change_tracking, bytes_read=r.bytes_read,
            bytes_new=r.bytes_new, chunks_sampled=r.chunks_sampled),
    )


@pytest.mark.parametrize("over", [
    {},
    {"change_tracking": None, "bytes_read": 0, "bytes_new": 0, "chunks_sampled": 0},
    {"stored_bytes": 0, "updated_at": None, "has_dependent_backups": False},
])
def test_view_fields_land_where_the_constructor_puts_them(over: dict[str, object]) -> None:
    record = _record(**over)
    view = to_view(record)
    expected = _by_keyword(record)
    assert view == expected
    for f in fields(BackupView):
        assert getattr(view, f.name) == getattr(expected, f.name), f.name
    assert view.size == 3 and view.encryption_key_id is None
    with pytest.raises(FrozenInstanceError):
        view.status = "deleted"  # type: ignore[misc]
