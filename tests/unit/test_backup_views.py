"""to_view builds views positionally (vbs.frozen.assemble): the fields must land right;
the list route's cached items are the renderer's bytes and never outlive their row."""

from __future__ import annotations

import datetime as dt
from dataclasses import FrozenInstanceError, fields

import orjson
import pytest

from vbs.api.responses import dumps
from vbs.api.routers.backups_views import DEDUP_COMPRESS, backup_item_json, to_view
from vbs.api.schemas.backups import BackupView, ChangeTrackingView, LinkContext, ServiceMetadata
from vbs.api.schemas.render import render_backup_detail, render_backup_page, render_backup_summary
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


# ------------------------------------------------------------------ cached list items

CTX = LinkContext("http://vbs.example:8776", "v3", "p1")


@pytest.mark.parametrize("ctx,version,detail", [
    (CTX, (3, 64), True),
    (CTX, (3, 0), True),
    (LinkContext("http://vbs.example:8776", "v2", "p1"), (3, 0), True),
    (CTX, (3, 64), False),
])
def test_cached_item_is_the_bytes_the_renderer_gives(
        ctx: LinkContext, version: tuple[int, int], detail: bool) -> None:
    record = _record(id="b-bytes")
    view = to_view(record)
    plain = (render_backup_detail(view, ctx, version) if detail
             else render_backup_summary(view, ctx))
    page = render_backup_page([backup_item_json(record, ctx, version, detail)], ctx,
                              version=version)
    assert dumps(page) == dumps({"backups": [plain]})


def test_an_equal_record_is_served_from_the_cache_a_changed_one_is_rendered_anew() -> None:
    first = backup_item_json(_record(id="b-cache"), CTX, (3, 64), True)
    # a new, equal record (as the next page's query builds it) hits the entry
    assert backup_item_json(_record(id="b-cache"), CTX, (3, 64), True) is first
    changes: list[dict[str, object]] = [
        {"status": "deleting"}, {"has_dependent_backups": False}, {"name": "renamed"},
        {"metadata": (("a", "2"),)}, {"tags": ()},
        {"updated_at": AT + dt.timedelta(seconds=2)}, {"stored_bytes": 1},
    ]
    for change in changes:
        item = backup_item_json(_record(id="b-cache", **change), CTX, (3, 64), True)
        assert item is not first, change
        body = orjson.loads(dumps({"x": item}))["x"]
        expected = render_backup_detail(to_view(_record(id="b-cache", **change)), CTX, (3, 64))
        assert body == expected, change
    # another link context or microversion is another entry too
    other = LinkContext("https://proxy.example", "v3", "p1")
    assert orjson.loads(dumps({"x": backup_item_json(_record(id="b-cache"), other, (3, 64),
                                                     True)}))["x"]["links"][0]["href"] \
        .startswith("https://proxy.example/v3/p1/backups/b-cache")
    assert backup_item_json(_record(id="b-cache"), CTX, (3, 0), True) is not first
