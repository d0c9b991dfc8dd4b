"""NBD exports of backups (VBS extension; docs/operations.md "Exports").

=======  ======================================================  ===================
method   path                                                    answer
=======  ======================================================  ===================
POST     ``/v2/{p}/cloudbackups/{backup_id}/exports``            200 ``{"export"}``
GET      ``/v2/{p}/cloudbackups/{backup_id}/exports``            200 ``{"exports"}``
GET      ``/v2/{p}/cloudbackups/{backup_id}/exports/{id}``       200 ``{"export"}``
POST     ``/v2/{p}/cloudbackups/{backup_id}/exports/{id}/renew`` 200 ``{"export"}``
DELETE   ``/v2/{p}/cloudbackups/{backup_id}/exports/{id}``       204, export ended
POST     ``.../exports/{id}/volume``                             200 ``{"volume"}``
=======  ======================================================  ===================

``.../volume`` ends a writable export and turns its overlay, merged with the
backup, into a new volume (:mod:`vbs.service.export_volume`).

Rules and codes: :mod:`vbs.service.exports`. Errors are ext-error bodies
(``{"error": {"code": "VolumeBackup.XXXX", "message"}}``), the path being
under ``/cloudbackups``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from vbs.api.app import AppContext
from vbs.api.auth import VbsPrincipal
from vbs.api.openapi import documented
from vbs.api.routers.cloudbackups import json_body
from vbs.api.schemas.bodies import ExportCreateBody, ExportVolumeBody
from vbs.service import codes
from vbs.service.codes import fail
from vbs.service.exports import (
    ExportLimits,
    create_export,
    delete_export,
    get_export,
    list_exports,
    parse_export_create,
    renew_export,
)

__all__ = ["router"]

router = APIRouter(tags=["VBS backup exports"])


class _ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """``{"error": {"code": "VolumeBackup.XXXX", "message": "..."}}``"""

    error: _ErrorDetail


def _err(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


COMMON: dict[int | str, dict[str, Any]] = {400: _err("Malformed request (VolumeBackup.0002)"),
          401: _err("No valid token"),
          403: _err("Token scoped to another project, or a backup shared with the caller "
                    "(VolumeBackup.0042)"),
          404: _err("Backup or export not found in the project (VolumeBackup.0110)")}
CREATE: dict[int | str, dict[str, Any]] = {**COMMON,
          400: _err("Malformed body (VolumeBackup.0002), backup not available "
                    "(VolumeBackup.0089), export limit reached (VolumeBackup.0040)"),
          503: _err("This server does not serve exports (VolumeBackup.0900)")}

ProjectId = Annotated[str, Path(description="Project id (must match the token's project)",
                                max_length=64)]
BackupId = Annotated[str, Path(description="Backup id", max_length=64)]
ExportId = Annotated[str, Path(description="Export id", max_length=64)]
Body = Annotated[object, Depends(json_body)]


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _limits(ctx: AppContext) -> ExportLimits:
    e = ctx.settings.exports
    return ExportLimits(e.ttl_seconds, e.max_per_project, e.overlay_dir)


def _uri_for(ctx: AppContext) -> Callable[[str], str] | None:
    server = ctx.export_server
    if server is None:
        return None
    host = ctx.settings.exports.advertise_host
    return lambda name: str(server.uri(name, host))


@router.post("/v2/{project_id}/cloudbackups/{backup_id}/exports",
             summary="Export a backup over NBD", responses=CREATE,
             **documented(body=ExportCreateBody, body_required=False))
def create(project_id: ProjectId, backup_id: BackupId, request: Request,
           principal: VbsPrincipal, body: Body) -> Any:
    req = parse_export_create(body)
    ctx = _ctx(request)
    with ctx.db.session() as s:
        rec = create_export(s, project_id=project_id, user_id=principal.user_id,
                            backup_id=backup_id, request=req, limits=_limits(ctx),
                            uri_for=_uri_for(ctx))
    return {"export": rec.as_body()}


@router.get("/v2/{project_id}/cloudbackups/{backup_id}/exports",
            summary="List the project's live exports of a backup", responses=COMMON)
def index(project_id: ProjectId, backup_id: BackupId, request: Request,
          principal: VbsPrincipal) -> Any:
    with _ctx(request).db.session() as s:
        recs = list_exports(s, project_id, backup_id)
    return {"exports": [r.as_body() for r in recs]}


@router.get("/v2/{project_id}/cloudbackups/{backup_id}/exports/{export_id}",
            summary="Show one export", responses=COMMON)
def show(project_id: ProjectId, backup_id: BackupId, export_id: ExportId, request: Request,
         principal: VbsPrincipal) -> Any:
    with _ctx(request).db.session() as s:
        rec = get_export(s, project_id, backup_id, export_id)
    return {"export": rec.as_body()}


@router.post("/v2/{project_id}/cloudbackups/{backup_id}/exports/{export_id}/renew",
             summary="Renew an export for its original lifetime", responses=COMMON)
def renew(project_id: ProjectId, backup_id: BackupId, export_id: ExportId, request: Request,
          principal: VbsPrincipal) -> Any:
    ctx = _ctx(request)
    with ctx.db.session() as s:
        rec = renew_export(s, project_id, backup_id, export_id, _limits(ctx))
    return {"export": rec.as_body()}


@router.post("/v2/{project_id}/cloudbackups/{backup_id}/exports/{export_id}/volume",
             summary="End a writable export and make a new volume of it", responses=COMMON,
             **documented(body=ExportVolumeBody, body_required=False))
def to_volume(project_id: ProjectId, backup_id: BackupId, export_id: ExportId,
              request: Request, principal: VbsPrincipal, body: Body) -> Any:
    from vbs.service.export_volume import export_to_volume

    name = _volume_name(body)
    ctx = _ctx(request)
    if ctx.volume_driver is None:
        fail(codes.VB_SERVICE_UNAVAILABLE, "This server has no volume store.")
    with ctx.db.session() as s:
        vol = export_to_volume(s, server=ctx.export_server, driver=ctx.volume_driver,
                               project_id=project_id, user_id=principal.user_id,
                               backup_id=backup_id, export_id=export_id, name=name)
    return {"volume": {"id": vol.id, "name": vol.name, "size": vol.size_gb,
                       "status": vol.status}}


def _volume_name(body: object) -> str | None:
    if body is None:
        return None
    if (not isinstance(body, dict) or set(body) != {"volume"}
            or not isinstance(body["volume"], dict) or set(body["volume"]) - {"name"}):
        fail(codes.VB_MALFORMED_BODY, 'The body must be {"volume": {"name": "..."}} or empty.')
    name = body["volume"].get("name")
    if name is not None and not isinstance(name, str):
        fail(codes.VB_MALFORMED_BODY, "volume.name must be a string.")
    return name


@router.delete("/v2/{project_id}/cloudbackups/{backup_id}/exports/{export_id}",
               summary="End an export (a writable export's overlay is discarded)",
               status_code=204, responses=COMMON)
def end(project_id: ProjectId, backup_id: BackupId, export_id: ExportId, request: Request,
        principal: VbsPrincipal) -> Response:
    ctx = _ctx(request)
    with ctx.db.session() as s:
        rec = delete_export(s, project_id, backup_id, export_id)
    if ctx.export_server is not None:
        ctx.export_server.end(rec.name)
    return Response(status_code=204)
