"""The OpenAPI document: conventions every route follows, applied in one place.

How to document an endpoint (also in docs/architecture.md, "Adding an
endpoint"):

* A route whose handler reads ``body: JsonBody`` declares its body shape with
  ``**documented(body=SomeModel)`` in the decorator (a pydantic model, only
  for the document; validation stays in the service layer). Routes taking a
  pydantic model parameter get it from FastAPI already.
* Error responses need nothing: :func:`install_openapi` adds 400, 401, 403,
  404 and 413 to every operation (plus 429 on token issue) with the body
  schema of the path's wire format (:func:`vbs.api.errors.wire_format_for_path`),
  which is what :mod:`vbs.api.errors` really sends. ``documented(errors=...)``
  adds more statuses (e.g. 409, 503) where a route can answer them.
* Non-API routes (console, metrics) use ``include_in_schema=False``.

The final document also gets, for every operation: each ``{name}`` of its
path template declared as a required string path parameter (native routes
take the project from the token dependency, so FastAPI would omit
``project_id``), no 422 (the server never answers it), and a unique
``operationId``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from vbs.api.errors import WireFormat, wire_format_for_path

__all__ = ["DEFAULT_ERRORS", "documented", "install_openapi"]

DEFAULT_ERRORS = (400, 401, 403, 404, 413)
_REF = "#/components/schemas/{model}"
_BODY_MODELS: dict[str, type[BaseModel]] = {}
_PARAM = re.compile(r"{([^}]+)}")
_DESCRIPTIONS = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden",
                 404: "Not found", 405: "Method not allowed", 409: "Conflict",
                 413: "Request too large or over quota", 429: "Too many failed logins",
                 503: "Service unavailable"}

_ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ExtError": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
        "description": "VBS and policy families: {\"error\": {\"code\", \"message\"}}",
    },
    "NativeFault": {
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "additionalProperties": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                           "retryAfter": {"type": "string"}}},
        "description": "Cinder fault: {\"badRequest\"|\"itemNotFound\"|...: {code, message}}",
    },
    "KeystoneError": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "title", "message"],
            "properties": {"code": {"type": "integer"}, "title": {"type": "string"},
                           "message": {"type": "string"}}}},
    },
}
_SCHEMA_FOR = {WireFormat.VBS: "ExtError", WireFormat.POLICY: "ExtError",
               WireFormat.NATIVE: "NativeFault", WireFormat.KEYSTONE: "KeystoneError"}


def documented(*, body: type[BaseModel] | None = None, body_required: bool = True,
               errors: Iterable[int] = ()) -> dict[str, Any]:
    """Decorator keyword arguments documenting a ``JsonBody`` route.

    ``@router.post(path, **documented(body=VbsRestoreBody))``. ``errors``
    lists statuses beyond :data:`DEFAULT_ERRORS`; their bodies are filled
    in by :func:`install_openapi`. ``body_required=False`` documents a body
    that may be left out (the route then applies its defaults).
    """
    extra: dict[str, Any] = {}
    if body is not None:
        _BODY_MODELS[body.__name__] = body
        extra["requestBody"] = {"required": body_required, "content": {"application/json": {
            "schema": {"$ref": _REF.format(model=body.__name__)}}}}
    kwargs: dict[str, Any] = {"openapi_extra": extra} if extra else {}
    extra_errors = tuple(errors)
    if extra_errors:
        kwargs["responses"] = {status: {"description": _DESCRIPTIONS.get(status, "Error")}
                               for status in extra_errors}
    return kwargs


def _error_response(status: int, schema: str) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=schema)}}}}


def _complete(doc: dict[str, Any]) -> dict[str, Any]:
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _BODY_MODELS.items():
        schema = model.model_json_schema(ref_template=_REF, by_alias=True)
        for sub_name, sub in schema.pop("$defs", {}).items():
            components.setdefault(sub_name, sub)
        components.setdefault(name, schema)
    components.update(_ERROR_SCHEMAS)
    seen: set[str] = set()
    for path, item in doc.get("paths", {}).items():
        schema_name = _SCHEMA_FOR[wire_format_for_path(path)]
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            missing = [n for n in _PARAM.findall(path) if n not in declared]
            op["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in missing] + op.get("parameters", [])
            responses = op["responses"]
            responses.pop("422", None)
            statuses = {*DEFAULT_ERRORS, *(int(s) for s in responses if s[0] in "45")}
            if path.endswith("/auth/tokens") and method == "post":
                statuses.add(429)
            for status in sorted(statuses):
                responses[str(status)] = _error_response(status, schema_name)
            op_id = op.get("operationId") or f"{method}_{path}"
            unique, n = op_id, 2
            while unique in seen:
                unique, n = f"{op_id}_{n}", n + 1
            seen.add(unique)
            op["operationId"] = unique
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the completed document (built once, cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            app.openapi_schema = _complete(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
