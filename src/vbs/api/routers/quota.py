"""Backup quotas of the caller's project, ``GET /v2/{p}/cloudbackups/quota`` (vbs-api §4.5).

Reports ``backups`` (count) and ``backup_gigabytes`` (GiB, [D26]) with the
effective limit (admin override or settings default, ``-1`` unlimited), the
usage and ``reserved`` (always 0, see :mod:`vbs.service.quotas`). The path is
a literal under ``cloudbackups`` (ext-error format); it has no
``{backup_id}`` GET to clash with, and this router is mounted before
``cloudbackups`` anyway (vbs-api §2.4). A database failure is 500
``VolumeBackup.0070``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from vbs.api.app import AppContext
from vbs.api.auth import VbsPrincipal
from vbs.service.codes import VB_QUOTA_READ_FAILED, fail
from vbs.service.quotas import QuotaUsage, backup_usage

__all__ = ["render_quota", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["VBS backups"])


def render_quota(usage: QuotaUsage) -> dict[str, Any]:
    """The §4.5 body, in the order of its example."""
    return {"quotas": {"resources": [
        {"type": "backups", "quota": usage.backups_limit, "used": usage.backups,
         "reserved": usage.reserved_backups},
        {"type": "backup_gigabytes", "quota": usage.gigabytes_limit, "used": usage.gigabytes,
         "reserved": usage.reserved_gigabytes},
    ]}}


@router.get("/v2/{project_id}/cloudbackups/quota", summary="Query backup quotas (vbs-api §4.5)")
def show_quota(request: Request, principal: VbsPrincipal) -> Any:
    ctx: AppContext = request.app.state.ctx
    try:
        with ctx.db.session() as s:
            usage = backup_usage(s, principal.project_id, ctx.settings.quotas)
    except SQLAlchemyError:
        log.exception("reading the quota of project %s failed", principal.project_id)
        fail(VB_QUOTA_READ_FAILED)
    return render_quota(usage)
