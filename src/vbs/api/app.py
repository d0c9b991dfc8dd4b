"""The FastAPI application factory and the context every router reads.

``create_app(ctx)`` builds the app from an :class:`AppContext` made by the
composition root (``vbs.bootstrap``). Routers reach the context with the
:func:`get_context` dependency, never through globals, so one process can
host several apps (tests) and nothing happens at import time.

Routers are listed in ``vbs.api.routers.ROUTER_MODULES``; adding an API
family is one line there.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import vbs
from vbs.api.body import BodyLimit
from vbs.api.docs import install_docs
from vbs.api.errors import install_error_handlers
from vbs.api.metrics import install_metrics
from vbs.api.openapi import install_openapi
from vbs.api.responses import OrjsonResponse
from vbs.api.token_cache import RevocationCounter, TokenCache
from vbs.config import Settings
from vbs.db.session import Database
from vbs.logging_setup import GLOBAL_REQUEST_ID, REQUEST_ID

__all__ = ["AppContext", "create_app", "get_context", "public_base_url", "run_read"]

T = TypeVar("T")

_REQUEST_ID_RE = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class AppContext:
    """What the API layer needs, wired once by ``vbs.bootstrap``.

    ``settings`` and ``db`` are always present. The other slots are filled by
    the layers that own them as they come to exist (repository, volume
    driver, job queue); a router needing one that is None answers 503.
    Add new slots here with a default of None.
    """

    settings: Settings
    db: Database
    repository: Any | None = None
    volume_driver: Any | None = None
    job_queue: Any | None = None
    backup_port: Any | None = None
    policy_limits: Any | None = None
    clock: Any | None = None
    export_server: Any | None = None
    """The running :class:`vbs.export.NbdServer` of this process (None: exports
    are not served here, and creating one answers 503)."""
    revocations: RevocationCounter | None = None
    """Shared with the sibling processes of ``vbs serve --processes N``, so a
    token revoked in one is forgotten by all (:mod:`vbs.api.token_cache`)."""
    token_cache: TokenCache | None = None
    """Set by :func:`create_app` from ``auth.token_cache_seconds``."""


def get_context(request: Request) -> AppContext:
    """FastAPI dependency: the app's :class:`AppContext`."""
    ctx: AppContext = request.app.state.ctx
    return ctx


async def run_read(ctx: AppContext, work: Callable[[], T]) -> T:
    """The bridge from an async read-only handler to the synchronous service layer.

    On SQLite ``work`` runs inline on the event loop: a WAL reader never
    waits for a writer's lock and the query is CPU in this process, so a
    thread hop only added the hop and GIL contention between the pool's
    threads (at 8 concurrent list requests a page cost 14 ms of CPU in the
    pool against 9 ms one at a time). On PostgreSQL a query waits on the
    network, so ``work`` goes to the thread pool and the loop serves others
    meanwhile. Only for handlers that read (a write may wait for SQLite's
    lock for up to its busy timeout); sync handlers keep FastAPI's own bridge.
    """
    if ctx.db.is_sqlite:
        return work()
    return await run_in_threadpool(work)


def public_base_url(request: Request) -> str:
    """Base URL clients must use: ``settings.public_url`` or the request's own.

    No trailing slash. Used for catalog entries, version ``self`` links and
    resource links.
    """
    ctx: AppContext = request.app.state.ctx
    if ctx.settings.public_url:
        return ctx.settings.public_url
    return str(request.base_url).rstrip("/")


class _RequestId:
    """Adds ``x-openstack-request-id`` and ``x-compute-request-id`` (same value).

    cinderclient keeps the first as global request id and shows the second in
    exception text (openstack-compat.md §4.3).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        global_token = GLOBAL_REQUEST_ID.set(_caller_request_id(scope))

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["x-openstack-request-id"] = request_id
                headers["x-compute-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            REQUEST_ID.reset(token)
            GLOBAL_REQUEST_ID.reset(global_token)


def _caller_request_id(scope: Scope) -> str | None:
    """The caller's ``X-Openstack-Request-Id`` if well formed (``req-<uuid>``), for logs."""
    for name, value in scope.get("headers", ()):
        if name == b"x-openstack-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID_RE.fullmatch(text):
                return text
    return None


def create_app(ctx: AppContext, *, extra_routers: Sequence[str] = ()) -> FastAPI:
    """Build the ASGI app: error handlers, request ids, every router.

    ``extra_routers`` are module names (each with a ``router``) mounted
    *before* the standard ones; the test harness uses it for probe routes.
    """
    from vbs.api.routers import load_routers

    app = FastAPI(
        title="VBS — Volume Backup Service",
        version=vbs.__version__,
        description="VBS extension API, OpenStack Cinder backup API (v2/v3) and a "
        "Keystone v3 subset.",
        openapi_url="/openapi.json",
        docs_url=None,  # served offline by vbs.api.docs
        redoc_url=None,
        default_response_class=OrjsonResponse,
    )
    app.state.ctx = ctx
    if ctx.token_cache is None:
        ctx.token_cache = TokenCache(ctx.settings.auth.token_cache_seconds,
                                     revocations=ctx.revocations)
    install_docs(app)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.server.max_body_bytes)
    install_metrics(app)  # inside _RequestId: access lines carry the request id
    app.add_middleware(_RequestId)
    for router in load_routers(extra_routers):
        app.include_router(router)
    _mount_console(app)
    install_openapi(app)
    return app


def _mount_console(app: FastAPI) -> None:
    """Serve the static web console at ``/console`` (``vbs.console``); it
    talks to the public API only, so mounting it adds no endpoint."""
    from starlette.staticfiles import StaticFiles

    from vbs.console import MOUNT_PATH, STATIC_DIR

    app.mount(MOUNT_PATH, StaticFiles(directory=STATIC_DIR, html=True), name="console")
