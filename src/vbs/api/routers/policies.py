"""Backup policy API (vbs-api §7): #23-#30, plus the tag routes of §8.

Route order implements vbs-api §2.4: the tag router (with the literal
``/backuppolicy/tags`` and ``/backuppolicy/resource_instances/action``) is
included first, then the literal empty-id forms (``/backuppolicy/``,
``/backuppolicy//action`` ... -> ``AutoBackup.0006``), then ``{policy_id}``.

What the handlers take from the app context: ``db``; ``backup_port`` (the
:class:`~vbs.scheduler.ports.BackupPort`, falling back to
:class:`~vbs.scheduler.ports.TableOnlyBackupPort` until the backup service
exists); ``policy_limits`` (:class:`~vbs.service.policies.PolicyLimits`);
``clock``. Rendering follows vbs-api §7: unset optional policy fields are
omitted ([D41]); task times are ``YYYY-MM-DDTHH:MM:SS.sss`` (§2.8).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import IntegrityError

from vbs.api.app import AppContext, get_context
from vbs.api.auth import PolicyPrincipal
from vbs.api.body import JsonBody
from vbs.api.openapi import documented
from vbs.api.routers import policy_tags
from vbs.api.schemas import bodies as b
from vbs.db.base import utcnow
from vbs.db.models_policies import PolicyTask
from vbs.scheduler.ports import BackupPort, TableOnlyBackupPort
from vbs.service import codes as c
from vbs.service import policies as svc
from vbs.service import policy_rules as rules
from vbs.service.codes import fail

__all__ = ["render_policy", "render_task", "router"]

router = APIRouter(tags=["backup policies"])
router.include_router(policy_tags.router)

_P = "/v2/{project_id}/backuppolicy"
_R = "/v2/{project_id}/backuppolicyresources"


def _port(ctx: AppContext) -> BackupPort:
    port: BackupPort | None = getattr(ctx, "backup_port", None)
    return port or TableOnlyBackupPort()


def _limits(ctx: AppContext) -> svc.PolicyLimits:
    limits: svc.PolicyLimits | None = getattr(ctx, "policy_limits", None)
    return limits or svc.PolicyLimits()


def _now(ctx: AppContext) -> dt.datetime:
    clock = getattr(ctx, "clock", None)
    now: dt.datetime = clock() if clock is not None else utcnow()
    return now


def _ms(t: dt.datetime) -> str:
    t = t.astimezone(dt.UTC)
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}"


def render_policy(view: svc.PolicyView) -> dict[str, Any]:
    """A policy object of #24."""
    out: dict[str, Any] = {
        "backup_policy_id": view.id, "backup_policy_name": view.name,
        "scheduled_policy": view.scheduled_policy.to_wire(),
        "policy_resource_count": view.resource_count,
    }
    if view.time_zone:
        out["time_zone"] = view.time_zone
    out["tags"] = [{"key": t.key, "value": t.value} for t in view.tags]
    return out


def render_task(task: PolicyTask) -> dict[str, Any]:
    """A task of #30. ``code``/``message`` on failures and timeouts, and on
    ``SKIP`` when a reason was recorded (busy disk, missed slot)."""
    out: dict[str, Any] = {"job_id": task.id, "status": task.status,
                           "created_at": _ms(task.created_at)}
    if task.finished_at is not None:
        out["finished_at"] = _ms(task.finished_at)
    out.update(backup_name=task.backup_name, resource_id=task.volume_id, resource_type="volume")
    if task.vbs_job_id and task.status != "SKIP":
        out["vbs_job_id"] = task.vbs_job_id
    if task.status in ("EXECUTE_FAIL", "EXECUTE_TIMEOUT", "SKIP"):
        if task.code:
            out["code"] = task.code
        if task.message:
            out["message"] = task.message
    return out


def _outcomes(result: svc.AssociationResult, *, full: bool) -> dict[str, Any]:
    def one(o: svc.ResourceOutcome) -> dict[str, Any]:
        item: dict[str, Any] = {"resource_id": o.resource_id}
        if full:
            item.update(resource_type="volume", availability_zone=o.availability_zone,
                        os_vol_host_attr=o.os_vol_host_attr)
        if o.code:
            item.update(code=o.code, message=o.message)
        return item

    return {"success_resources": [one(o) for o in result.success],
            "fail_resources": [one(o) for o in result.failed]}


# --- collection and literal routes -------------------------------------------------


@router.post(_P, **documented(body=b.PolicyCreateBody))
def create_policy(project_id: str, principal: PolicyPrincipal, request: Request,
                  body: JsonBody) -> dict[str, Any]:
    """#23."""
    req = rules.parse_create_policy(body)
    ctx = get_context(request)
    with ctx.db.session() as session:
        policy_id = svc.create_policy(session, principal.project_id, req, now=_now(ctx),
                                      limits=_limits(ctx))
    return {"backup_policy_id": policy_id}


@router.get(_P)
def list_policies(project_id: str, principal: PolicyPrincipal,
                  request: Request) -> dict[str, Any]:
    """#24."""
    with get_context(request).db.session() as session:
        views = svc.list_policies(session, principal.project_id)
    return {"backup_policies": [render_policy(v) for v in views]}


@router.post(_R, **documented(body=b.PolicyAssociateBody))
def associate(project_id: str, principal: PolicyPrincipal, request: Request,
              body: JsonBody) -> dict[str, Any]:
    """#27."""
    req = rules.parse_associate(body)
    ctx = get_context(request)
    for attempt in range(3):
        # Two requests binding the same disk race to insert the same row; the
        # loser's retry sees the winner's row and reports that disk per item.
        try:
            with ctx.db.session() as session:
                result = svc.associate_volumes(session, _port(ctx), principal.project_id, req,
                                               now=_now(ctx), limits=_limits(ctx))
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return _outcomes(result, full=True)


@router.api_route(f"{_P}/", methods=["PUT", "DELETE"], include_in_schema=False)
@router.api_route(f"{_P}//action", methods=["POST"], include_in_schema=False)
@router.api_route(f"{_P}//backuptasks", methods=["GET"], include_in_schema=False)
@router.api_route(f"{_P}//tags", methods=["GET", "POST"], include_in_schema=False)
@router.api_route(f"{_P}//tags/action", methods=["POST"], include_in_schema=False)
@router.api_route(f"{_P}//tags/{{key}}", methods=["DELETE"], include_in_schema=False)
@router.api_route(f"{_R}//deleted_resources", methods=["POST"], include_in_schema=False)
def empty_policy_id(project_id: str, principal: PolicyPrincipal) -> None:
    """An empty ``{policy_id}`` segment -> ``AutoBackup.0006`` (top of vbs-api §7)."""
    fail(c.AB_POLICY_ID_MISSING, "The policy ID in the URL is empty.")


# --- {policy_id} routes --------------------------------------------------------------


@router.put(f"{_P}/{{policy_id}}", **documented(body=b.PolicyModifyBody))
def modify_policy(project_id: str, policy_id: str, principal: PolicyPrincipal,
                  request: Request, body: JsonBody) -> dict[str, Any]:
    """#25 / #25a."""
    req = rules.parse_modify_policy(body)
    ctx = get_context(request)
    with ctx.db.session() as session:
        svc.modify_policy(session, principal.project_id, policy_id, req, now=_now(ctx))
    return {"backup_policy_id": policy_id}


@router.delete(f"{_P}/{{policy_id}}", status_code=204)
def delete_policy(project_id: str, policy_id: str, principal: PolicyPrincipal,
                  request: Request) -> Response:
    """#26."""
    with get_context(request).db.session() as session:
        svc.delete_policy(session, principal.project_id, policy_id)
    return Response(status_code=204)


@router.post(f"{_R}/{{policy_id}}/deleted_resources",
             **documented(body=b.PolicyDisassociateBody))
def disassociate(project_id: str, policy_id: str, principal: PolicyPrincipal,
                 request: Request, body: JsonBody) -> dict[str, Any]:
    """#28."""
    volume_ids = rules.parse_disassociate(body)
    with get_context(request).db.session() as session:
        result = svc.disassociate_volumes(session, principal.project_id, policy_id, volume_ids)
    return _outcomes(result, full=False)


@router.post(f"{_P}/{{policy_id}}/action", status_code=204)
def execute_policy(project_id: str, policy_id: str, principal: PolicyPrincipal,
                   request: Request) -> Response:
    """#29: any body is ignored."""
    ctx = get_context(request)
    with ctx.db.session() as session:
        svc.execute_policy(session, _port(ctx), principal.project_id, policy_id, now=_now(ctx))
    return Response(status_code=204)


@router.get(f"{_P}/{{policy_id}}/backuptasks")
def list_tasks(project_id: str, policy_id: str, principal: PolicyPrincipal,
               request: Request) -> dict[str, Any]:
    """#30."""
    query = rules.parse_task_query(request.query_params)
    ctx = get_context(request)
    with ctx.db.session() as session:
        total, tasks = svc.list_tasks(session, principal.project_id, policy_id, query,
                                      now=_now(ctx))
        return {"count": total, "tasks": [render_task(t) for t in tasks]}
