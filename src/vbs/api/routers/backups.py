"""Native OpenStack backups under ``/v2/{project_id}`` and ``/v3/{project_id}``
(vbs-api §5, openstack-compat §5).

=======  ==============================  ================================================
method   path (after the project)        answer
=======  ==============================  ================================================
POST     ``/backups``                    202 ``{"backup": summary}``
GET      ``/backups``                    200 ``{"backups": [summary], "backups_links"?,
                                         "count"?}``
GET      ``/backups/detail``             200 ``{"backups": [detail], ...}``
GET      ``/backups/{id}``               200 ``{"backup": detail}``
PUT      ``/backups/{id}`` (v3, ≥ 3.9)   200 ``{"backup": summary}``; below 3.9 and on
                                         v2: 404
DELETE   ``/backups/{id}``               202, no body
POST     ``/backups/{id}/action``        202, no body: ``os-force_delete`` /
                                         ``os-reset_status`` (admin only, else 403)
POST     ``/backups/{id}/restore``       202 ``{"restore": {backup_id, volume_id,
                                         volume_name}}``
=======  ==============================  ================================================

``/backups/detail`` is registered before ``/backups/{id}`` (vbs-api §2.4).
The reads (lists, show) are async handlers bridged by
:func:`vbs.api.app.run_read`; the writes stay sync (FastAPI's thread pool).
The backup and restore themselves run as jobs; native callers watch the
backup's ``status`` (no ``job_id`` is returned). Errors are Cinder faults
(the service raises them with ``Family.NATIVE``); every ``/v3`` answer, faults
included, echoes ``OpenStack-API-Version`` (see :func:`cinder_call`).

Decisions: ``snapshot_id`` is optional although [D9] marks it required
(both stock clients omit it, see :func:`parse_native_create`); the quota is
enforced inside ``create_backup`` (race-free, after the volume is found, as
Cinder orders it) and is 413 ``overLimit`` here; ``all_tenants`` is ignored
(lists are per project); a non-UUID id is 404 so openstacksdk's name lookup
falls back to a list.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request, Response

from vbs.api import body as body_reader
from vbs.api.app import public_base_url, run_read
from vbs.api.openapi import documented
from vbs.api.routers.backups_views import backup_item_json, to_view
from vbs.api.routers.volumes import Call, CinderCall
from vbs.api.schemas.bodies import (
    NativeBackupActionBody,
    NativeBackupCreateBody,
    NativeBackupUpdateBody,
    NativeRestoreBody,
)
from vbs.api.schemas.render import (
    render_backup_detail,
    render_backup_page,
    render_backup_summary,
    render_native_restore,
)
from vbs.service.backup_queries import (
    UPDATE_MIN_VERSION,
    list_backups,
    parse_native_update,
    restore_to_new_volume,
    update_backup,
)
from vbs.service.backup_records import Family
from vbs.service.backup_rules import (
    ForceDelete,
    parse_backup_action,
    parse_native_backup_id,
    parse_native_create,
    parse_native_list_query,
    parse_native_restore,
)
from vbs.service.backups import (
    create_backup,
    delete_backup,
    get_backup,
    reset_status,
    restore_backup,
)
from vbs.service.codes import NATIVE_FORBIDDEN, NATIVE_NOT_FOUND, fail
from vbs.service.listing import collection_links
from vbs.service.volumes import get_volume

__all__ = ["native_json_body", "router"]

router = APIRouter(tags=["backups"])


native_json_body = body_reader.json_body
"""The shared reader (:mod:`vbs.api.body`): malformed JSON is Cinder's 400."""
Body = body_reader.JsonBody


# --------------------------------------------------------------------------- create, list


@router.post("/v3/{project_id}/backups", status_code=202, summary="Create a backup",
             **documented(body=NativeBackupCreateBody))
@router.post("/v2/{project_id}/backups", status_code=202, include_in_schema=False)
def create_backup_handler(call: Call, body: Body) -> Response:
    req = parse_native_create(body, version=call.version)
    project = call.principal.project_id
    with call.ctx.db.session() as s:
        sub = create_backup(
            s, family=Family.NATIVE, project_id=project, user_id=call.principal.user_id,
            volume_id=req.volume_id, snapshot_id=req.snapshot_id, name=req.name,
            description=req.description, metadata=dict(req.metadata),
            container=req.container, availability_zone=req.availability_zone,
            # Cinder: a backup is incremental only when asked (--incremental);
            # the engine still reads only what changed since the parent.
            full=not req.incremental,
            source="native", quota_defaults=call.ctx.settings.quotas,
        )
    return call.reply({"backup": render_backup_summary(to_view(sub.backup), call.links)}, 202)


def _list(call: CinderCall, request: Request, *, detail: bool) -> Response:
    query = parse_native_list_query(dict(request.query_params), version=call.version)
    with call.ctx.db.session() as s:
        page = list_backups(s, call.principal.project_id, query)
    next_links = collection_links(
        public_base_url(request) + request.url.path, list(request.query_params.multi_items()),
        limit=query.page.limit, last_id=page.items[-1].id if page.items else None,
        has_more=page.has_more,
    )
    links, version = call.links, call.version
    return call.reply(render_backup_page(
        [backup_item_json(r, links, version, detail) for r in page.items], links,
        version=version, next_links=next_links, count=page.count,
    ))


@router.get("/v3/{project_id}/backups", summary="List backups")
@router.get("/v2/{project_id}/backups", include_in_schema=False)
async def list_backups_handler(request: Request, call: Call) -> Response:
    return await run_read(call.ctx, lambda: _list(call, request, detail=False))


@router.get("/v3/{project_id}/backups/detail", summary="List backups with details")
@router.get("/v2/{project_id}/backups/detail", include_in_schema=False)
async def list_backups_detail_handler(request: Request, call: Call) -> Response:
    return await run_read(call.ctx, lambda: _list(call, request, detail=True))


# --------------------------------------------------------------------------- one backup


def _show(backup_id: str, call: CinderCall) -> Response:
    bid = parse_native_backup_id(backup_id)
    with call.ctx.db.session() as s:
        record = get_backup(s, Family.NATIVE, call.principal.project_id, bid)
    return call.reply({"backup": render_backup_detail(to_view(record), call.links,
                                                      call.version)})


@router.get("/v3/{project_id}/backups/{backup_id}", summary="Show a backup")
@router.get("/v2/{project_id}/backups/{backup_id}", include_in_schema=False)
async def show_backup_handler(backup_id: str, call: Call) -> Response:
    return await run_read(call.ctx, lambda: _show(backup_id, call))


@router.put("/v3/{project_id}/backups/{backup_id}", summary="Update a backup (3.9+)",
            **documented(body=NativeBackupUpdateBody))
@router.put("/v2/{project_id}/backups/{backup_id}", include_in_schema=False)
def update_backup_handler(backup_id: str, call: Call, body: Body) -> Response:
    if not call.at_least(UPDATE_MIN_VERSION):
        fail(NATIVE_NOT_FOUND, "The resource could not be found (updating a backup needs "
                               "microversion 3.9 or later).")
    bid = parse_native_backup_id(backup_id)
    req = parse_native_update(body, version=call.version)
    with call.ctx.db.session() as s:
        record = update_backup(s, call.principal.project_id, bid, req)
    return call.reply({"backup": render_backup_summary(to_view(record), call.links)})


@router.delete("/v3/{project_id}/backups/{backup_id}", status_code=202, response_class=Response,
               summary="Delete a backup")
@router.delete("/v2/{project_id}/backups/{backup_id}", status_code=202,
               include_in_schema=False)
def delete_backup_handler(backup_id: str, call: Call) -> Response:
    bid = parse_native_backup_id(backup_id)
    with call.ctx.db.session() as s:
        delete_backup(s, family=Family.NATIVE, project_id=call.principal.project_id,
                      backup_id=bid)
    return call.reply(None, 202)


@router.post("/v3/{project_id}/backups/{backup_id}/action", status_code=202,
             response_class=Response,
             summary="Force-delete or reset the status of a backup (admin)",
             **documented(body=NativeBackupActionBody))
@router.post("/v2/{project_id}/backups/{backup_id}/action", status_code=202,
             include_in_schema=False)
def backup_action_handler(backup_id: str, call: Call, body: Body) -> Response:
    action = parse_backup_action(body)
    forced = isinstance(action, ForceDelete)
    if not call.principal.is_admin:
        rule = "force_delete" if forced else "reset_status"
        fail(NATIVE_FORBIDDEN, f"Policy doesn't allow "
                               f"volume_extension:backup_admin_actions:{rule} to be performed.")
    bid = parse_native_backup_id(backup_id)
    project = call.principal.project_id
    with call.ctx.db.session() as s:
        if isinstance(action, ForceDelete):
            delete_backup(s, family=Family.NATIVE, project_id=project, backup_id=bid,
                          force=True)
        else:
            reset_status(s, Family.NATIVE, project, bid, action.status)
    return call.reply(None, 202)


@router.post("/v3/{project_id}/backups/{backup_id}/restore", status_code=202,
             summary="Restore a backup to an existing or a new volume",
             **documented(body=NativeRestoreBody))
@router.post("/v2/{project_id}/backups/{backup_id}/restore", status_code=202,
             include_in_schema=False)
def restore_backup_handler(backup_id: str, call: Call, body: Body) -> Response:
    bid = parse_native_backup_id(backup_id)
    if isinstance(body, Mapping) and "restore" in body and body["restore"] is None:
        body = {"restore": {}}  # Cinder accepts a null restore object (openstack-compat §5.9)
    req = parse_native_restore(body)
    project = call.principal.project_id
    with call.ctx.db.session() as s:
        if req.volume_id is not None:
            restore_backup(s, family=Family.NATIVE, project_id=project, backup_id=bid,
                           volume_id=req.volume_id)
            volume = get_volume(s, project, req.volume_id)
        else:
            volume = restore_to_new_volume(
                s, call.driver(), project_id=project, user_id=call.principal.user_id,
                backup_id=bid, name=req.name,
            ).volume
    return call.reply(render_native_restore(bid, volume.id, volume.name), 202)
