"""Backup sharing, ``os-vendor-backup-sharing`` (vbs-api §6).

=======  ================================================  =============================
method   path                                              answer
=======  ================================================  =============================
POST     ``/v2/{p}/os-vendor-backup-sharing``              200 ``{"shared": [record]}``
GET      ``/v2/{p}/os-vendor-backup-sharing/detail``       200 ``{"shared": [record+backup]}``
GET      ``/v2/{p}/os-vendor-backup-sharing/count``        200 ``{"count": n}``
GET      ``/v2/{p}/os-vendor-backup-sharing/{id}``         200 ``{"shared": record+backup}``
DELETE   ``/v2/{p}/os-vendor-backup-sharing/{id}``         200, empty (``is_backup_id``)
=======  ================================================  =============================

The literal ``detail`` and ``count`` routes are declared before ``{id}``
(vbs-api §2.4). Errors are native faults [D8]; who may do what is decided in
:mod:`vbs.service.shares`, not here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from vbs.api.app import AppContext
from vbs.api.auth import SharingPrincipal
from vbs.api.body import JsonBody
from vbs.api.openapi import documented
from vbs.api.schemas.backups import BackupView
from vbs.api.schemas.bodies import ShareCreateBody
from vbs.api.schemas.render import format_backup_time, render_backup_for_share
from vbs.service.backup_records import BackupRecord
from vbs.service.codes import NATIVE_BAD_REQUEST
from vbs.service.listing import SHARE_LIST, parse_page_request, parse_query_bool
from vbs.service.shares import (
    SharedBackup,
    ShareRecord,
    cancel_backup_shares,
    cancel_share,
    count_shares,
    get_share,
    list_shares,
    parse_share_filters,
    parse_share_request,
    share_backup,
)

__all__ = ["render_share", "router"]

PREFIX = "/v2/{project_id}/os-vendor-backup-sharing"

router = APIRouter(tags=["Backup sharing"])


Body = JsonBody


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _view(b: BackupRecord) -> BackupView:
    return BackupView(
        id=b.id, project_id=b.project_id, volume_id=b.volume_id, status=b.status,
        size=b.size_gb, created_at=b.created_at, data_timestamp=b.data_timestamp,
        name=b.name, description=b.description, snapshot_id=b.snapshot_id,
        availability_zone=b.availability_zone, container=b.container,
        object_count=b.object_count, fail_reason=b.fail_reason, updated_at=b.updated_at,
        is_incremental=b.is_incremental, has_dependent_backups=b.has_dependent_backups,
    )


def render_share(share: ShareRecord, backup: BackupRecord | None = None) -> dict[str, Any]:
    """vbs-api §3.6: with ``backup`` for list/show, with ``deleted``/``deleted_at``
    (constants, [D31]) for the create reply."""
    body: dict[str, Any] = {
        "id": share.id,
        "backup_id": share.backup_id,
        "from_project_id": share.from_project_id,
        "to_project_id": share.to_project_id,
        "created_at": format_backup_time(share.created_at),
        "updated_at": None if share.updated_at is None else format_backup_time(share.updated_at),
    }
    if backup is None:
        body["deleted"] = False
        body["deleted_at"] = None
    else:
        body["backup"] = render_backup_for_share(_view(backup))
    return body


def _with_backup(item: SharedBackup) -> dict[str, Any]:
    return render_share(item.share, item.backup)


@router.post(PREFIX, summary="Share a backup (vbs-api §6.1)", **documented(body=ShareCreateBody))
def create(request: Request, principal: SharingPrincipal, body: Body) -> Any:
    req = parse_share_request(body)
    with _ctx(request).db.session() as s:
        records = share_backup(s, principal.project_id, req)
    return {"shared": [render_share(r) for r in records]}


@router.get(PREFIX + "/detail", summary="List shares (vbs-api §6.3)")
def list_(request: Request, principal: SharingPrincipal) -> Any:
    query = dict(request.query_params)
    page = parse_page_request(query, SHARE_LIST)
    filters = parse_share_filters(query)
    with _ctx(request).db.session() as s:
        items = list_shares(s, principal.project_id, filters, page)
    return {"shared": [_with_backup(i) for i in items]}


@router.get(PREFIX + "/count", summary="Count shares (vbs-api §6.4)")
def count(request: Request, principal: SharingPrincipal) -> Any:
    filters = parse_share_filters(dict(request.query_params))
    with _ctx(request).db.session() as s:
        return {"count": count_shares(s, principal.project_id, filters)}


@router.get(PREFIX + "/{share_id}", summary="Show a share (vbs-api §6.5)")
def show(share_id: str, request: Request, principal: SharingPrincipal) -> Any:
    with _ctx(request).db.session() as s:
        item = get_share(s, principal.project_id, share_id)
    return {"shared": _with_backup(item)}


@router.delete(PREFIX + "/{share_id}", summary="Cancel sharing (vbs-api §6.2)",
               response_class=Response)
def cancel(share_id: str, request: Request, principal: SharingPrincipal) -> Response:
    raw = request.query_params.get("is_backup_id", "false")
    by_backup = parse_query_bool("is_backup_id", raw, invalid=NATIVE_BAD_REQUEST)
    with _ctx(request).db.session() as s:
        if by_backup:
            cancel_backup_shares(s, principal.project_id, share_id)
        else:
            cancel_share(s, principal.project_id, share_id)
    return Response(status_code=200)
