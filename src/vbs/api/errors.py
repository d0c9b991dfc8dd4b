"""Error wire formats, chosen by path, and the app-wide exception handlers.

Four formats (vbs-api.md §2.5, openstack-compat.md §3.2 and §4.3), by path:

* ``VBS`` — ``/v2/{p}/cloudbackups*``, ``/v1|v2/{p}/jobs*``:
  ``{"error": {"code": "VolumeBackup.0041", "message": ...}}``
* ``POLICY`` — ``/v2/{p}/backuppolicy*`` (also ``backuppolicyresources``):
  the same shape with ``AutoBackup.*`` codes
* ``KEYSTONE`` — ``/identity*``, ``/v3/auth*``:
  ``{"error": {"code": 401, "title": "Unauthorized", "message": ...}}``
* ``NATIVE`` — everything else (Cinder ``/v2|v3`` API, sharing, root):
  ``{"badRequest": {"code": 400, "message": ...}}`` (fault names below)

Raise :class:`vbs.errors.ServiceError` ``(message, api_code, status)``
anywhere: the handler renders it in the format of the request's path.
``api_code`` is used by the ext formats (VBS/POLICY); when empty, the
per-status default below is used. Native and Keystone bodies carry the HTTP
status as ``code``. Native 413 adds ``retryAfter`` and ``Retry-After: 0``;
401s add ``WWW-Authenticate: Keystone uri=...``.

Request validation errors (including malformed JSON) become 400 naming the
field and the rule, never 422. Anything unexpected becomes a 500 in the
path's format, logged with its traceback; the body never carries internals.

Routers that negotiate a Cinder microversion set
``request.state.openstack_api_version`` (e.g. ``"volume 3.64"``); fault
responses then carry ``OpenStack-API-Version`` and ``Vary`` as Cinder does.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vbs.errors import ServiceError

__all__ = [
    "NATIVE_FAULT_NAMES",
    "WireFormat",
    "error_body",
    "error_response",
    "install_error_handlers",
    "wire_format_for_path",
]

log = logging.getLogger(__name__)


class WireFormat(enum.Enum):
    VBS = "vbs"
    POLICY = "policy"
    NATIVE = "native"
    KEYSTONE = "keystone"


NATIVE_FAULT_NAMES: Mapping[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}
"""Cinder fault names; every other status is ``computeFault``."""

# Default ext codes when a ServiceError carries none (vbs-api.md §10).
_EXT_DEFAULTS: Mapping[WireFormat, Mapping[int, str]] = {
    WireFormat.VBS: {
        400: "VolumeBackup.0002",
        401: "VolumeBackup.0041",
        403: "VolumeBackup.0042",
        404: "VolumeBackup.0110",
        405: "VolumeBackup.0002",
        500: "VolumeBackup.0900",
        503: "VolumeBackup.0900",
    },
    WireFormat.POLICY: {
        400: "AutoBackup.0008",
        401: "AutoBackup.0002",
        403: "AutoBackup.0213",
        404: "AutoBackup.0205",
        405: "AutoBackup.0222",
        500: "AutoBackup.0009",
        503: "AutoBackup.0009",
    },
}

_VBS_RE = re.compile(r"^/(v2/[^/]+/cloudbackups|v[12]/[^/]+/jobs)(/|$)")
_POLICY_RE = re.compile(r"^/v2/[^/]+/backuppolicy")
_KEYSTONE_RE = re.compile(r"^/(identity|v3/auth)(/|$)")
_JOBS_RE = re.compile(r"^/v[12]/[^/]+/jobs(/|$)")


def wire_format_for_path(path: str) -> WireFormat:
    """The error format a path answers in (vbs-api.md §2.5.1/§2.5.2)."""
    if _KEYSTONE_RE.match(path):
        return WireFormat.KEYSTONE
    if _VBS_RE.match(path):
        return WireFormat.VBS
    if _POLICY_RE.match(path):
        return WireFormat.POLICY
    return WireFormat.NATIVE


def _default_ext_code(fmt: WireFormat, status: int, path: str) -> str:
    if fmt is WireFormat.VBS and status == 404 and _JOBS_RE.match(path):
        return "common.0011"
    table = _EXT_DEFAULTS[fmt]
    if status in table:
        return table[status]
    return table[500] if status >= 500 else table[400]


def error_body(fmt: WireFormat, status: int, message: str, api_code: str = "",
               path: str = "") -> dict[str, Any]:
    """The JSON body of an error in ``fmt``."""
    if fmt in (WireFormat.VBS, WireFormat.POLICY):
        return {"error": {"code": api_code or _default_ext_code(fmt, status, path),
                          "message": message}}
    if fmt is WireFormat.KEYSTONE:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        return {"error": {"code": status, "title": title, "message": message}}
    name = NATIVE_FAULT_NAMES.get(status, "computeFault")
    inner: dict[str, Any] = {"code": status, "message": message}
    if status == 413:
        inner["retryAfter"] = "0"
    return {name: inner}


def _auth_uri(request_base: str) -> str:
    return f'Keystone uri="{request_base.rstrip("/")}/identity/v3"'


def error_response(
    request: Request,
    status: int,
    message: str,
    api_code: str = "",
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error response in the wire format of ``request``'s path."""
    # The decoded path as routed, not ``request.url.path``: rebuilding the URL
    # drops tabs and newlines (urllib's WHATWG stripping), so a path such as
    # /v2/%09/backuppolicy/... would otherwise be answered in the native format.
    path = str(request.scope.get("path") or request.url.path)
    fmt = wire_format_for_path(path)
    out = dict(headers or {})
    if status == 401:
        out.setdefault("WWW-Authenticate", _auth_uri(_base_url(request)))
    if status == 413 and fmt is WireFormat.NATIVE:
        out.setdefault("Retry-After", "0")
    api_version = getattr(request.state, "openstack_api_version", None)
    if isinstance(api_version, str) and api_version:
        out.setdefault("OpenStack-API-Version", api_version)
        out.setdefault("Vary", "OpenStack-API-Version")
    return JSONResponse(error_body(fmt, status, message, api_code, path), status, headers=out)


def _base_url(request: Request) -> str:
    ctx = getattr(request.app.state, "ctx", None)
    public = getattr(getattr(ctx, "settings", None), "public_url", None)
    return public or str(request.base_url).rstrip("/")


def _describe_validation(exc: RequestValidationError) -> str:
    """One line naming each bad field and the rule it broke."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        field = ".".join(loc[1:])
        kind = err.get("type", "")
        if kind == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "parse error")
            parts.append(f"Malformed request body: invalid JSON ({reason})")
        elif where == "body" and not field and kind == "missing":
            parts.append("Malformed request body: a JSON object is required")
        elif field:
            label = "Query parameter" if where == "query" else (
                "Header" if where == "header" else "Field")
            parts.append(f"{label} '{field}': {err.get('msg', 'is invalid')}")
        else:
            parts.append(f"Malformed request {where}: {err.get('msg', 'is invalid')}")
    return "Invalid input: " + "; ".join(parts) if parts else "Invalid input"


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.error("service error %s on %s: %s", exc.api_code, request.url.path, exc.message)
    return error_response(request, exc.status, exc.message, exc.api_code,
                          headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, 400, _describe_validation(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = {
        404: "The resource could not be found.",
        405: "The method is not allowed for the requested URL.",
    }.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    return error_response(request, exc.status_code, message, headers=headers)


class _CatchUnexpected:
    """ASGI middleware turning any uncaught exception into a formatted 500.

    Installed innermost-but-one so it sees exceptions FastAPI's handlers did
    not claim. It logs the traceback once and answers with a generic message;
    if the response had already started it can only re-raise.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            request = Request(scope)
            response = error_response(
                request, 500, "The server has either erred or is incapable of performing "
                "the requested operation.",
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the 500 middleware on ``app``."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(_CatchUnexpected)
