"""Backup records to renderer views for the native backup routers.

The service returns :class:`~vbs.service.backup_records.BackupRecord`
(frozen copies of rows); the renderers of :mod:`vbs.api.schemas.render` take a
:class:`~vbs.api.schemas.backups.BackupView`. The mapping lives in the API
layer because the view is a wire concern and the service must not import the
API (imports point down, STYLE §6).
"""

from __future__ import annotations

import functools

import orjson

from vbs.api.responses import dumps
from vbs.api.schemas.backups import BackupView, ChangeTrackingView, LinkContext, ServiceMetadata
from vbs.api.schemas.render import render_backup_detail, render_backup_summary
from vbs.frozen import assemble, field_names
from vbs.service.backup_records import BackupRecord

__all__ = ["DEDUP_COMPRESS", "RENDERED_ITEMS", "backup_item_json", "to_view"]

DEDUP_COMPRESS = 3
"""``service_metadata.DL``: the repository always deduplicates and compresses (vbs-api §3.4)."""


_VIEW = field_names(BackupView)
_SERVICE_METADATA = field_names(ServiceMetadata)
_CHANGE_TRACKING = field_names(ChangeTrackingView)


def to_view(r: BackupRecord) -> BackupView:
    """Every field any backup representation needs (vbs-api §3.3, §3.4).

    ``size`` is the source disk in GiB [D25]; ``BackupSize`` is the bytes the
    backup added to the repository, omitted while unknown (0). Built with
    :func:`vbs.frozen.assemble` in the classes' field order (a list page
    makes 100 of each; tests/unit/test_backup_views.py checks it against
    the constructors).
    """
    change_tracking = None if r.change_tracking is None else assemble(
        ChangeTrackingView, _CHANGE_TRACKING,
        (r.change_tracking, r.bytes_read, r.bytes_new, r.chunks_sampled))
    service_metadata = assemble(ServiceMetadata, _SERVICE_METADATA, (
        r.bootable, r.progress, None, r.stored_bytes or None, DEDUP_COMPRESS, None, None))
    return assemble(BackupView, _VIEW, (
        r.id, r.project_id, r.volume_id, r.status, r.size_gb, r.created_at,
        r.data_timestamp, r.name, r.description, r.snapshot_id, r.availability_zone,
        r.container, r.object_count, r.fail_reason, r.updated_at, r.is_incremental,
        r.has_dependent_backups, r.user_id, r.metadata, None, r.tags, service_metadata,
        change_tracking,
    ))


RENDERED_ITEMS = 4096
"""How many rendered list items each API process keeps: about 0.8 KiB of
JSON and a frozen record of about 2.5 KiB each, so about 14 MiB when full."""


@functools.lru_cache(maxsize=RENDERED_ITEMS)
def backup_item_json(record: BackupRecord, ctx: LinkContext, version: tuple[int, int],
                     detail: bool) -> orjson.Fragment:
    """One list item's JSON, reused while nothing it is made of changes.

    Rendering a list page's 100 backups (views, dictionaries, 300 timestamps,
    JSON) cost more CPU than the query that found them, and a polled list
    serves the same rows again and again. The key is *everything* the bytes
    are a function of: the whole frozen record (every column the query read,
    ``has_dependent_backups`` included), the link context (public root,
    family, project) and the microversion, so an entry can never be stale:
    a row that changed in any way is a different key, and the entry of its
    old state is simply not asked for again and ages out of the LRU. What
    stays uncached is what decides *which* rows a page holds: the query runs
    every time.
    """
    view = to_view(record)
    body = (render_backup_detail(view, ctx, version) if detail
            else render_backup_summary(view, ctx))
    # A copy of exact size: orjson hands out its 8 KiB working buffer for a
    # reply of ~0.8 KiB, ten times the memory for as long as the entry lives.
    return orjson.Fragment(bytes(memoryview(dumps(body))))
