"""Cinder snapshots subset under ``/v2/{project_id}`` and ``/v3/{project_id}``
(openstack-compat §6.2).

=======  ===========================  ====================================
method   path (after the project)     answer
=======  ===========================  ====================================
POST     ``/snapshots``               202 ``{"snapshot": detail}`` (already
                                      ``available``: the snapshot is taken
                                      before the reply)
GET      ``/snapshots``               200 ``{"snapshots": [summary], "snapshots_links"?, ...}``
GET      ``/snapshots/detail``        200 ``{"snapshots": [detail], ...}``
GET      ``/snapshots/{id}``          200 ``{"snapshot": detail}``
DELETE   ``/snapshots/{id}``          202, no body
=======  ===========================  ====================================

Snapshots have no ``links`` (Cinder's view has none). Internal snapshots of
the backup service are never listed, shown or deletable here. ``force``:
before 3.66 an ``in-use`` volume needs ``force=true``; from 3.66 it is
implied and an explicit ``force=false`` is a 400, as in Cinder.

This module is mounted by :mod:`vbs.api.routers.volumes` (one
``ROUTER_MODULES`` entry for the family), whose request plumbing it uses;
import that module, not this one, to get the routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from vbs.api.routers.volumes import (
    Call,
    CinderCall,
    list_body,
    native_filters,
    with_count,
)
from vbs.api.schemas.render import format_backup_time
from vbs.service.codes import NATIVE_BAD_REQUEST, fail
from vbs.service.listing import parse_page_request
from vbs.service.volumes import (
    SNAPSHOT_LIST,
    SnapshotFilters,
    SnapshotRecord,
    create_snapshot,
    delete_snapshot,
    get_snapshot,
    list_snapshots,
)

__all__ = ["render_snapshot", "router"]

_FORCE_IMPLIED_FROM = (3, 66)
_PROGRESS = {"available": "100%", "backing-up": "100%", "creating": "0%"}


def render_snapshot(s: SnapshotRecord, call: CinderCall, *, detail: bool) -> dict[str, Any]:
    """Summary (list) or detail (show, ``/detail``) view of openstack-compat §6.2."""
    body: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status,
        "size": s.size_gb,
        "metadata": dict(s.metadata),
        "created_at": format_backup_time(s.created_at),
        "updated_at": format_backup_time(s.updated_at),
    }
    if not detail:
        return body
    body["os-extended-snapshot-attributes:project_id"] = s.project_id
    body["os-extended-snapshot-attributes:progress"] = _PROGRESS.get(s.status, "0%")
    if call.at_least((3, 14)):
        body["group_snapshot_id"] = None
    if call.at_least((3, 41)):
        body["user_id"] = s.user_id
    if call.at_least((3, 65)):
        body["consumes_quota"] = True
    return body


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    volume_id: str
    name: Any = None
    description: Any = None
    force: bool | str | None = None
    metadata: Any = None


class SnapshotCreateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    snapshot: SnapshotCreate


def _force(call: CinderCall, raw: bool | str | None) -> bool:
    """Cinder's ``force``: a bool or a bool string; implied from 3.66."""
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            fail(NATIVE_BAD_REQUEST, f"Invalid input received: force must be a boolean, "
                                     f"got {raw!r}.")
        raw = lowered in ("true", "1", "yes", "on")
    if call.at_least(_FORCE_IMPLIED_FROM):
        if raw is False:
            fail(NATIVE_BAD_REQUEST, "Invalid input received: since microversion 3.66 the "
                                     "'force' flag is invalid for this request; omit it or "
                                     "set it to true.")
        return True
    return bool(raw)


router = APIRouter(tags=["snapshots"])


@router.post("/v3/{project_id}/snapshots", status_code=202, summary="Create a snapshot")
@router.post("/v2/{project_id}/snapshots", status_code=202, include_in_schema=False)
def create_snapshot_handler(body: SnapshotCreateBody, call: Call) -> Response:
    s = body.snapshot
    force = _force(call, s.force)
    driver = call.driver()
    with call.ctx.db.session() as session:
        record = create_snapshot(
            session, driver, call.principal.project_id, s.volume_id, s.name, s.description,
            force=force, metadata=s.metadata, user_id=call.principal.user_id,
        )
    return call.reply({"snapshot": render_snapshot(record, call, detail=True)}, 202)


def _list(call: CinderCall, request: Request, *, detail: bool) -> Response:
    query = dict(request.query_params)
    page = parse_page_request(query, SNAPSHOT_LIST)
    f = native_filters(call, query, frozenset({"name", "status", "volume_id"}))
    filters = SnapshotFilters(name=f.get("name"), status=f.get("status"),
                              volume_id=f.get("volume_id"))
    counted = with_count(call, query)
    with call.ctx.db.session() as session:
        result = list_snapshots(session, call.principal.project_id, page, filters,
                                with_count=counted)
    items = [render_snapshot(s, call, detail=detail) for s in result.items]
    last = result.items[-1].id if result.items else None
    return call.reply(list_body(call, request, "snapshots", items, limit=page.limit,
                                last_id=last, has_more=result.has_more, count=result.count))


@router.get("/v3/{project_id}/snapshots", summary="List snapshots")
@router.get("/v2/{project_id}/snapshots", include_in_schema=False)
def list_snapshots_handler(request: Request, call: Call) -> Response:
    return _list(call, request, detail=False)


@router.get("/v3/{project_id}/snapshots/detail", summary="List snapshots with details")
@router.get("/v2/{project_id}/snapshots/detail", include_in_schema=False)
def list_snapshots_detail_handler(request: Request, call: Call) -> Response:
    return _list(call, request, detail=True)


@router.get("/v3/{project_id}/snapshots/{snapshot_id}", summary="Show a snapshot")
@router.get("/v2/{project_id}/snapshots/{snapshot_id}", include_in_schema=False)
def show_snapshot_handler(snapshot_id: str, call: Call) -> Response:
    with call.ctx.db.session() as session:
        record = get_snapshot(session, call.principal.project_id, snapshot_id)
    return call.reply({"snapshot": render_snapshot(record, call, detail=True)})


@router.delete("/v3/{project_id}/snapshots/{snapshot_id}", status_code=202,
               response_class=Response,
               summary="Delete a snapshot")
@router.delete("/v2/{project_id}/snapshots/{snapshot_id}", status_code=202,
               include_in_schema=False)
def delete_snapshot_handler(snapshot_id: str, call: Call) -> Response:
    driver = call.driver()
    with call.ctx.db.session() as session:
        delete_snapshot(session, driver, call.principal.project_id, snapshot_id)
    return call.reply(None, 202)
