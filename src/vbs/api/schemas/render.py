"""Render backup-family views into wire dictionaries (plain dicts, no pydantic).

Shapes (each key is always present, ``null`` when unset, vbs-api §2.3 [D20]):

* summary — ``id``, ``name``, ``links`` (vbs-api §3.2; create reply, list);
* v3 detail — vbs-api §3.3 v3 column, plus ``metadata`` and the VBS
  extension ``tags`` (``[{"key", "value"}]``) from 3.43,
  ``user_id`` from 3.56 and ``encryption_key_id`` from 3.64 when the backup
  has one (openstack-compat §5.1).  ``os-backup-project-attr:project_id`` is
  emitted at every microversion because vbs-api [D18] and its §5.4 example
  show it without a version header (Cinder gates it at 3.18, admin only);
* v2 detail — the v3.0 fields (openstack-compat §5.12) with
  ``os-bak-tenant-attr:tenant_id`` and ``service_metadata`` (vbs-api §3.3);
* share — vbs-api §3.3 share column (no links, no owner key,
  ``service_metadata`` null as in its examples);
* vendor attributes — ``os-vbs-backup-attr:change_tracking``, ``:bytes_read``,
  ``:bytes_new``, ``:chunks_sampled`` on the v2 and v3 detail once the backup
  was taken (how it was read, docs/architecture.md); never on shares;
* job — vbs-api §4.4, ``sub_jobs`` always ``null`` [D4].

Error bodies are not rendered here: :mod:`vbs.api.errors` turns any
:class:`vbs.errors.ServiceError` into the format of the request's path.

Time formats are vbs-api §2.8: backups ``…SS.ffffff`` (no zone), jobs
``…SS.sssZ``, policy tasks ``…SS.sss``; milliseconds are truncated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from vbs.api.schemas.backups import BackupView, JobView, LinkContext
from vbs.service.backup_rules import (
    METADATA_MIN_VERSION,
    WITH_COUNT_MIN_VERSION,
)

__all__ = [
    "ENCRYPTION_KEY_MIN_VERSION",
    "USER_ID_MIN_VERSION",
    "VENDOR_PREFIX",
    "backup_links",
    "format_backup_time",
    "format_job_time",
    "format_task_time",
    "render_backup_detail",
    "render_backup_detail_v2",
    "render_backup_detail_v3",
    "render_backup_for_share",
    "render_backup_list",
    "render_backup_page",
    "render_backup_summary",
    "render_job",
    "render_job_accepted",
    "render_native_restore",
    "render_service_metadata",
]

USER_ID_MIN_VERSION = (3, 56)
ENCRYPTION_KEY_MIN_VERSION = (3, 64)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def format_backup_time(moment: datetime) -> str:
    """``2024-03-05T10:15:42.123456``: backups and shares (vbs-api §2.8)."""
    if moment.tzinfo is UTC:  # as the database hands them out: drop "+00:00", convert nothing
        return moment.isoformat(timespec="microseconds")[:26]
    return _utc(moment).isoformat(timespec="microseconds")  # = %Y-%m-%dT%H:%M:%S.%f, faster


def format_job_time(moment: datetime) -> str:
    """``2024-03-05T10:15:42.123Z``: job status (vbs-api §2.8)."""
    return _utc(moment).isoformat(timespec="milliseconds") + "Z"


def format_task_time(moment: datetime) -> str:
    """``2024-03-05T10:00:00.412``: policy tasks (vbs-api §2.8)."""
    return _utc(moment).isoformat(timespec="milliseconds")


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else format_backup_time(moment)


def backup_links(backup_id: str, ctx: LinkContext) -> list[dict[str, str]]:
    """``self`` (versioned) and ``bookmark`` (unversioned) links (vbs-api §3.1, [D19])."""
    project = f"/{ctx.project_id}" if ctx.project_id else ""
    return [
        {"href": f"{ctx.root}/{ctx.family}{project}/backups/{backup_id}", "rel": "self"},
        {"href": f"{ctx.root}{project}/backups/{backup_id}", "rel": "bookmark"},
    ]


def render_service_metadata(view: BackupView) -> str:
    """The JSON *string* of vbs-api §3.4: ``bootable``, ``backupurl``,
    ``progress``, ``Type``, ``ST`` always; ``snap_id``, ``BackupSize``, ``DL``,
    ``CMKID``, ``VT`` when known [D24]."""
    meta = view.service_metadata
    doc: dict[str, Any] = {
        "bootable": meta.bootable,
        "backupurl": meta.backup_url or view.id,
        "progress": meta.progress,
        "Type": 1 if view.is_incremental else 0,
        "ST": 0,
    }
    optional = (("snap_id", view.snapshot_id), ("BackupSize", meta.backup_size),
                ("DL", meta.dedup_compress), ("CMKID", meta.cmk_id), ("VT", meta.volume_type))
    doc.update((key, value) for key, value in optional if value is not None)
    return json.dumps(doc)


def render_backup_summary(view: BackupView, ctx: LinkContext) -> dict[str, Any]:
    """vbs-api §3.2: native list item and create reply body (inside ``backup``)."""
    return {"id": view.id, "name": view.name, "links": backup_links(view.id, ctx)}


def _core(view: BackupView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "description": view.description,
        "status": view.status,
        "availability_zone": view.availability_zone,
        "volume_id": view.volume_id,
        "snapshot_id": view.snapshot_id,
        "size": view.size,
        "object_count": view.object_count,
        "container": view.container,
        "fail_reason": view.fail_reason,
        "created_at": format_backup_time(view.created_at),
        "updated_at": _optional_time(view.updated_at),
        "data_timestamp": format_backup_time(view.data_timestamp),
        "has_dependent_backups": view.has_dependent_backups,
        "is_incremental": view.is_incremental,
    }


VENDOR_PREFIX = "os-vbs-backup-attr:"


def _vendor(body: dict[str, Any], view: BackupView) -> dict[str, Any]:
    """Add the change-tracking vendor attributes (stock clients ignore unknown keys)."""
    ct = view.change_tracking
    if ct is not None:
        body[VENDOR_PREFIX + "change_tracking"] = ct.change_tracking
        body[VENDOR_PREFIX + "bytes_read"] = ct.bytes_read
        body[VENDOR_PREFIX + "bytes_new"] = ct.bytes_new
        body[VENDOR_PREFIX + "chunks_sampled"] = ct.chunks_sampled
    return body


def render_backup_detail_v3(
    view: BackupView, ctx: LinkContext, version: tuple[int, int]
) -> dict[str, Any]:
    """vbs-api §3.3 v3 column with openstack-compat §5.1 microversion gating."""
    body = _core(view)
    body["links"] = backup_links(view.id, ctx)
    body["os-backup-project-attr:project_id"] = view.project_id
    if version >= METADATA_MIN_VERSION:
        body["metadata"] = dict(view.metadata)
        # VBS extension member: the tags a VBS create (or a policy) gave the
        # backup, shown with the metadata so what was written can be read.
        body["tags"] = [{"key": t.key, "value": t.value} for t in view.tags]
    if version >= USER_ID_MIN_VERSION:
        body["user_id"] = view.user_id
    if version >= ENCRYPTION_KEY_MIN_VERSION and view.encryption_key_id is not None:
        body["encryption_key_id"] = view.encryption_key_id
    return _vendor(body, view)


def render_backup_detail_v2(view: BackupView, ctx: LinkContext) -> dict[str, Any]:
    """vbs-api §3.3 v2 column (= v3.0 plus the tenant attribute and ``service_metadata``)."""
    body = _core(view)
    body["links"] = backup_links(view.id, ctx)
    body["os-bak-tenant-attr:tenant_id"] = view.project_id
    body["service_metadata"] = render_service_metadata(view)
    return _vendor(body, view)


def render_backup_detail(
    view: BackupView, ctx: LinkContext, version: tuple[int, int] = (3, 0)
) -> dict[str, Any]:
    """The detail shape of ``ctx.family`` (``version`` only matters for v3)."""
    if ctx.family == "v2":
        return render_backup_detail_v2(view, ctx)
    return render_backup_detail_v3(view, ctx, version)


def render_backup_for_share(view: BackupView) -> dict[str, Any]:
    """The ``backup`` object embedded in share records (vbs-api §3.3 share column, §3.6).

    ``service_metadata`` is ``null`` as in the §6.3/§6.5 examples: it carries
    the owner's storage details (``backupurl``, ``CMKID``), which a recipient
    project has no use for.
    """
    body = _core(view)
    body["service_metadata"] = None
    return body


def render_backup_list(
    views: Iterable[BackupView],
    ctx: LinkContext,
    *,
    detail: bool,
    version: tuple[int, int] = (3, 0),
    next_links: Sequence[dict[str, str]] = (),
    count: int | None = None,
) -> dict[str, Any]:
    """``{"backups": […], "backups_links"?: […], "count"?: n}`` (vbs-api §5.2, §5.3).

    ``next_links`` comes from :func:`vbs.service.listing.collection_links` and
    is omitted when empty [D13].  ``count`` is emitted only on v3 at ≥ 3.45
    and only when the caller computed it (``with_count=true``).
    """
    items = [
        render_backup_detail(v, ctx, version) if detail else render_backup_summary(v, ctx)
        for v in views
    ]
    return render_backup_page(items, ctx, version=version, next_links=next_links, count=count)


def render_backup_page(
    items: list[Any],
    ctx: LinkContext,
    *,
    version: tuple[int, int] = (3, 0),
    next_links: Sequence[dict[str, str]] = (),
    count: int | None = None,
) -> dict[str, Any]:
    """The list body of :func:`render_backup_list` around ``items`` already
    rendered (dictionaries, or their JSON as ``orjson.Fragment``: the list
    route reuses each backup's bytes while its row is unchanged,
    :func:`vbs.api.routers.backups_views.backup_item_json`)."""
    body: dict[str, Any] = {"backups": items}
    if next_links:
        body["backups_links"] = list(next_links)
    if count is not None and ctx.family == "v3" and version >= WITH_COUNT_MIN_VERSION:
        body["count"] = count
    return body


def render_native_restore(
    backup_id: str, volume_id: str, volume_name: str | None
) -> dict[str, Any]:
    """Reply of a native restore (vbs-api §5.6)."""
    return {"restore": {"backup_id": backup_id, "volume_id": volume_id,
                        "volume_name": volume_name}}


def render_job(job: JobView) -> dict[str, Any]:
    """vbs-api §4.4, key order of its example."""
    return {
        "status": job.status,
        "job_id": job.job_id,
        "job_type": job.job_type,
        "entities": dict(job.entities),
        "begin_time": None if job.begin_time is None else format_job_time(job.begin_time),
        "end_time": None if job.end_time is None else format_job_time(job.end_time),
        "error_code": job.error_code,
        "fail_reason": job.fail_reason,
        "sub_jobs": None,
    }


def render_job_accepted(job_id: str) -> dict[str, str]:
    """Reply of vbs-api §4.1–§4.3: only ``job_id`` [D53]."""
    return {"job_id": job_id}
