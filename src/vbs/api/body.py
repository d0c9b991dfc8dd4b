"""The one request-body reader of every router: size limit, depth limit, JSON.

Issue 8 found three hand-written readers (cloudbackups, native backups,
sharing) that answered 500 on deeply nested JSON (``RecursionError``) and
no limit at all on body size. Now:

* :class:`BodyLimit` (ASGI middleware, installed by ``create_app``) reads the
  body of every request once. More than ``server.max_body_bytes`` (default
  1 MiB, by ``Content-Length`` or by counting a chunked body) is **413**
  before anything is parsed. A JSON body nested deeper than
  :data:`MAX_DEPTH` (or deep enough to exhaust the decoder's recursion) is
  **400** malformed body. Both errors are in the path's wire format
  (:func:`vbs.api.errors.error_response`). The parsed value is kept in the
  request scope so handlers do not parse again; the raw bytes are replayed
  to the app, so pydantic-bodied routes (volumes, snapshots, tokens) see the
  same, already vetted, body.
* :data:`JsonBody` is the handler dependency: the parsed body (``None`` when
  empty); a body that is not JSON is 400 malformed in the path's format
  (``VolumeBackup.0002``, ``AutoBackup.0008``, ``badRequest``, Keystone 400).

Invalid JSON is not refused by the middleware itself: some routes ignore
their body (policy #29) and must keep accepting anything.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vbs.errors import ServiceError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_DEPTH",
    "BodyLimit",
    "JsonBody",
    "MalformedBody",
    "decode_json",
    "json_body",
]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""Deepest nesting of arrays/objects accepted; real bodies use at most 4."""

_STATE_KEY = "vbs.json_body"
_INVALID = object()
_MALFORMED = "Malformed request body"


class MalformedBody(ServiceError):
    """400 in the path's format (empty ``api_code``: the per-format default)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{_MALFORMED}: {reason}.", "", 400)


class _TooDeep(MalformedBody):
    """Refused by the middleware itself: no route may see such a body."""


def _depth(value: object) -> int:
    """Nesting depth of decoded JSON, iteratively (no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def decode_json(raw: bytes) -> object:
    """``raw`` as JSON; ``None`` for an empty body. Raises :class:`MalformedBody`."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _TooDeep(f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedBody("the body is not valid JSON") from None
    if _depth(value) > MAX_DEPTH:
        raise _TooDeep(f"nested deeper than {MAX_DEPTH} levels")
    return value


class BodyLimit:
    """ASGI middleware: bounded read, depth check, parse once (module doc)."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int,
                      message: str) -> None:
        from vbs.api.errors import error_response  # errors imports nothing from here

        await error_response(Request(scope), status, message)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = (f"Request body is larger than the limit of {self.max_bytes} bytes "
                     "(server.max_body_bytes).")
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(scope, receive, send, 400, "Invalid Content-Length.")
                    return
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send, 413, too_large)
                    return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413, too_large)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        raw = b"".join(chunks)
        if raw.strip():
            try:
                parsed: object = decode_json(raw)
            except _TooDeep as exc:
                await self._refuse(scope, receive, send, 400, exc.message)
                return
            except MalformedBody:
                parsed = _INVALID
            scope.setdefault("state", {})[_STATE_KEY] = parsed
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def json_body(request: Request) -> object:
    """FastAPI dependency: the request body as JSON (``None`` when empty)."""
    state = request.scope.get("state", {})
    if _STATE_KEY in state:
        parsed = state[_STATE_KEY]
        if parsed is _INVALID:
            raise MalformedBody("the body is not valid JSON")
        return parsed
    return decode_json(await request.body())  # app built without BodyLimit


JsonBody = Annotated[object, Depends(json_body)]
"""Handler parameter type: ``body: JsonBody``."""
