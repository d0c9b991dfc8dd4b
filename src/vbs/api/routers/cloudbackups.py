"""The VBS extension backup family and job status (vbs-api §4.1–§4.4).

=======  ==============================================  =========================
method   path                                            answer
=======  ==============================================  =========================
POST     ``/v2/{p}/cloudbackups``                        200 ``{"job_id"}``
POST     ``/v2/{p}/cloudbackups/{backup_id}``            200 ``{"job_id"}`` (delete)
DELETE   ``/v2/{p}/cloudbackups/{backup_id}``            same [D1]
POST     ``/v2/{p}/cloudbackups/{backup_id}/restore``    200 ``{"job_id"}``
GET      ``/v1/{p}/jobs/{job_id}`` (and ``/v2``) [D2]    200 job object
GET      ``/v2/{p}/cloudbackups/{backup_id}/            200 changed ranges
         changed_blocks?base_backup_id=ID``
=======  ==============================================  =========================

Handlers are thin: parse (``vbs.service.backup_rules``), one service call in
one unit of work, render. Errors are ext-error bodies (``VolumeBackup.*``,
``common.0011``) chosen by path in :mod:`vbs.api.errors`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from vbs.api import body as body_reader
from vbs.api.app import AppContext
from vbs.api.auth import VbsPrincipal
from vbs.api.openapi import documented
from vbs.api.schemas.backups import JobView
from vbs.api.schemas.bodies import VbsBackupCreateBody, VbsRestoreBody
from vbs.api.schemas.changed_blocks import ChangedBlocksModel, changed_blocks_responses
from vbs.api.schemas.render import render_job, render_job_accepted
from vbs.jobs import get as get_job
from vbs.service import codes
from vbs.service.backup_records import Family
from vbs.service.backup_rules import parse_vbs_create, parse_vbs_delete, parse_vbs_restore
from vbs.service.backups import create_backup, delete_backup, restore_backup
from vbs.service.changed_blocks import list_changed_blocks, parse_changed_blocks_query
from vbs.service.codes import fail

__all__ = ["json_body", "router"]

router = APIRouter(tags=["VBS backups"])


json_body = body_reader.json_body
"""The shared reader (:mod:`vbs.api.body`): malformed JSON is 400 VolumeBackup.0002."""
Body = body_reader.JsonBody


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


@router.post("/v2/{project_id}/cloudbackups", summary="Create a backup (vbs-api §4.1)",
             **documented(body=VbsBackupCreateBody))
def create(project_id: str, request: Request, principal: VbsPrincipal, body: Body) -> Any:
    req = parse_vbs_create(body)
    with _ctx(request).db.session() as s:
        sub = create_backup(
            s, family=Family.VBS, project_id=project_id, user_id=principal.user_id,
            volume_id=req.volume_id, snapshot_id=req.snapshot_id, name=req.name,
            description=req.description, tags=req.tags, full=req.full_backup, source="vbs",
            quota_defaults=_ctx(request).settings.quotas,
        )
    return render_job_accepted(sub.job_id)


def _delete(project_id: str, backup_id: str, request: Request) -> dict[str, str]:
    req = parse_vbs_delete(backup_id)
    with _ctx(request).db.session() as s:
        sub = delete_backup(s, family=Family.VBS, project_id=project_id, backup_id=req.backup_id)
    return render_job_accepted(sub.job_id)


@router.post("/v2/{project_id}/cloudbackups/{backup_id}",
             summary="Delete a backup (deprecated form, vbs-api §4.2)")
def delete_post(project_id: str, backup_id: str, request: Request,
                principal: VbsPrincipal) -> Any:
    return _delete(project_id, backup_id, request)


@router.delete("/v2/{project_id}/cloudbackups/{backup_id}",
               summary="Delete a backup (alias [D1])")
def delete_alias(project_id: str, backup_id: str, request: Request,
                 principal: VbsPrincipal) -> Any:
    return _delete(project_id, backup_id, request)


@router.post("/v2/{project_id}/cloudbackups/{backup_id}/restore",
             summary="Restore a disk from a backup (vbs-api §4.3)",
             **documented(body=VbsRestoreBody))
def restore(project_id: str, backup_id: str, request: Request, principal: VbsPrincipal,
            body: Body) -> Any:
    req = parse_vbs_restore(backup_id, body)
    with _ctx(request).db.session() as s:
        sub = restore_backup(s, family=Family.VBS, project_id=project_id,
                             backup_id=req.backup_id, volume_id=req.volume_id)
    return render_job_accepted(sub.job_id)


def _job(project_id: str, job_id: str, request: Request) -> dict[str, Any]:
    with _ctx(request).db.session() as s:
        job = get_job(s, job_id, project_id)
    if job is None:
        fail(codes.COMMON_JOB_NOT_FOUND, f"Job {job_id} does not exist.")
    view = JobView(
        job_id=job.id, job_type=job.job_type, status=str(job.status),
        entities=tuple(job.entities.items()), begin_time=job.begin_time,
        end_time=job.end_time, error_code=job.error_code, fail_reason=job.fail_reason,
    )
    body = render_job(view)
    # VBS extension member (clients ignore unknown members): bytes done / total
    # as last reported by the worker, for progress bars (``vbs job show --wait``).
    # ``total`` is known from the start (set at enqueue); a finished job is
    # complete even when its last report predates the end.
    done = job.progress_total if str(job.status) == "SUCCESS" else job.progress_done
    body["progress"] = {"done": done, "total": job.progress_total}
    return body


@router.get("/v1/{project_id}/jobs/{job_id}", summary="Query a job (vbs-api §4.4)")
def job_v1(project_id: str, job_id: str, request: Request, principal: VbsPrincipal) -> Any:
    return _job(project_id, job_id, request)


@router.get("/v2/{project_id}/jobs/{job_id}", summary="Query a job (alias [D2])")
def job_v2(project_id: str, job_id: str, request: Request, principal: VbsPrincipal) -> Any:
    return _job(project_id, job_id, request)


@router.get("/v2/{project_id}/cloudbackups/{backup_id}/changed_blocks",
            summary="Changed blocks between two backups of one volume",
            response_model=ChangedBlocksModel, responses=changed_blocks_responses())
def changed_blocks(
    project_id: Annotated[str, Path(description="The project (must be the token's).")],
    backup_id: Annotated[str, Path(description="The backup whose changes are listed.")],
    request: Request,
    principal: VbsPrincipal,
    base_backup_id: Annotated[str | None, Query(
        description="The backup to compare with (same volume).")] = None,
    limit: Annotated[str | None, Query(
        description="Ranges per page, 1-1000 (default and maximum 1000).")] = None,
    marker: Annotated[str | None, Query(
        description="Byte offset to start at: next_marker of the previous page.")] = None,
) -> Any:
    """Byte ranges in which the backup differs from ``base_backup_id``, from the
    manifests alone (no data is read); see :mod:`vbs.service.changed_blocks`."""
    query = parse_changed_blocks_query(base_backup_id, limit, marker)
    ctx = _ctx(request)
    if ctx.repository is None:
        fail(codes.VB_LOOKUP_FAILED, "The repository is not available.")
    with ctx.db.session() as s:
        out = list_changed_blocks(s, ctx.repository, project_id, backup_id, query)
    return {
        "changed_blocks": [{"offset": o, "length": n} for o, n in out.blocks],
        "block_size": out.block_size,
        "volume_size": out.volume_size,
        "next_marker": out.next_marker,
    }
