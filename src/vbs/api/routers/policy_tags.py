"""Policy tag API (vbs-api §8): #31-#36, ext-error with ``AutoBackup.*`` codes.

Mounted by :mod:`vbs.api.routers.policies` *before* its own routes, so the
literal ``/backuppolicy/tags`` and ``/backuppolicy/resource_instances/action``
win over ``{policy_id}`` routes (vbs-api §2.4). Handlers are thin: parse,
one service call in a unit of work, render.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from vbs.api.app import get_context
from vbs.api.auth import PolicyPrincipal
from vbs.api.body import JsonBody
from vbs.api.openapi import documented
from vbs.api.schemas import bodies as b
from vbs.service import policy_tags as svc
from vbs.service.backup_rules import Tag

__all__ = ["router"]

router = APIRouter(tags=["policy tags"])

_PREFIX = "/v2/{project_id}/backuppolicy"


def _tags(tags: tuple[Tag, ...] | list[Tag]) -> list[dict[str, str]]:
    return [{"key": t.key, "value": t.value} for t in tags]


@router.get(f"{_PREFIX}/tags")
def list_project_tags(project_id: str, principal: PolicyPrincipal,
                      request: Request) -> dict[str, Any]:
    """#33: every key with its distinct values."""
    with get_context(request).db.session() as session:
        pairs = svc.list_project_tags(session, principal.project_id)
    return {"tags": [{"key": k, "values": v} for k, v in pairs]}


@router.post(f"{_PREFIX}/resource_instances/action", **documented(body=b.PolicyTagQueryBody))
def query_policies(project_id: str, principal: PolicyPrincipal, request: Request,
                   body: JsonBody) -> dict[str, Any]:
    """#36: filter or count policies by tags and name."""
    query = svc.parse_tag_query(body)
    with get_context(request).db.session() as session:
        result = svc.query_policies(session, principal.project_id, query)
    if query.count_only:
        return {"total_count": result.total}
    return {"total_count": result.total, "resources": [
        {"resource_id": pid, "resource_name": name, "resource_detail": None,
         "tags": _tags(tags)} for pid, name, tags in result.policies]}


@router.post(f"{_PREFIX}/{{policy_id}}/tags/action", status_code=204,
             **documented(body=b.PolicyTagBatchBody))
def batch_tags(project_id: str, policy_id: str, principal: PolicyPrincipal, request: Request,
               body: JsonBody) -> Response:
    """#35: create/update/delete several tags atomically."""
    batch = svc.parse_tag_batch(body)
    with get_context(request).db.session() as session:
        svc.apply_tag_batch(session, principal.project_id, policy_id, batch)
    return Response(status_code=204)


@router.post(f"{_PREFIX}/{{policy_id}}/tags", status_code=204,
             **documented(body=b.PolicyTagAddBody))
def add_tag(project_id: str, policy_id: str, principal: PolicyPrincipal, request: Request,
            body: JsonBody) -> Response:
    """#31: add or replace one tag."""
    tag = svc.parse_add_tag(body)
    with get_context(request).db.session() as session:
        svc.add_tag(session, principal.project_id, policy_id, tag)
    return Response(status_code=204)


@router.get(f"{_PREFIX}/{{policy_id}}/tags")
def list_policy_tags(project_id: str, policy_id: str, principal: PolicyPrincipal,
                     request: Request) -> dict[str, Any]:
    """#34: the policy's tags in insertion order."""
    with get_context(request).db.session() as session:
        tags = svc.list_policy_tags(session, principal.project_id, policy_id)
    return {"tags": _tags(tags)}


@router.delete(f"{_PREFIX}/{{policy_id}}/tags/{{key}}", status_code=204)
def remove_tag(project_id: str, policy_id: str, key: str, principal: PolicyPrincipal,
               request: Request) -> Response:
    """#32: ``key`` arrives percent-decoded once (by the router)."""
    with get_context(request).db.session() as session:
        svc.remove_tag(session, principal.project_id, policy_id, key)
    return Response(status_code=204)
