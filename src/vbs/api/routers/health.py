"""Probes and metrics for operators: ``/healthz``, ``/readyz``, ``/metrics``.

All three are unauthenticated (load balancers, kubelets and Prometheus carry
no token) and cheap, and none is in the OpenAPI document: they are
operations endpoints, described in docs/operations.md, not API.

* ``GET /healthz``: the process serves HTTP. Touches nothing else, so a slow
  database never gets a healthy process killed.
* ``GET /readyz``: the database answers ``SELECT 1`` and the repository's
  ``config`` object is reachable; 200 with each check ``ok``, else 503 with
  the failing check's error. Take the process out of rotation on 503.
* ``GET /metrics``: Prometheus text format (see :mod:`vbs.api.metrics`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from vbs.api.app import AppContext, get_context

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_database(ctx: AppContext) -> str:
    try:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # report, never raise: this is the probe's answer
        log.warning("readyz: database unreachable: %s", exc)
        return f"error: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    return "ok"


def _check_repository(ctx: AppContext) -> str:
    from vbs.repository.layout import CONFIG

    repo = ctx.repository
    if repo is None:
        return "error: no repository configured"
    try:
        if not repo.backend.exists(CONFIG):
            log.warning("readyz: repository %s has no config object", repo.backend.location)
            return "error: repository config object missing"
    except Exception as exc:
        log.warning("readyz: repository unreachable: %s", exc)
        return f"error: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    return "ok"


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    ctx = get_context(request)
    checks = {"database": _check_database(ctx), "repository": _check_repository(ctx)}
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
