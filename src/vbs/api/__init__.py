"""HTTP layer: one FastAPI app, routers per API family, two error wire formats.

Nouns: *router* (one API family, listed in ``vbs.api.routers``), *wire
format* (ext-error ``{"error": {"code", "message"}}``, native Cinder fault,
Keystone error; chosen by path in :mod:`vbs.api.errors`), *principal* (the
validated caller, :mod:`vbs.api.auth`), *context* (:class:`AppContext`,
everything the routers may use, built by ``vbs.bootstrap``).

Handlers are thin: parse into a pydantic model, call one service function,
map errors. Raise :class:`vbs.errors.ServiceError` for rule violations.
"""

from __future__ import annotations

from vbs.api.app import AppContext, create_app, get_context, public_base_url

__all__ = ["AppContext", "create_app", "get_context", "public_base_url"]
