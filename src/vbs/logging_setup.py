"""Logging of a ``vbs serve`` process: level, text or JSON lines, file, request ids.

One call, :func:`configure_logging`, at start (never at import time). Every
record carries the id of the API request it was logged under: the
``x-openstack-request-id`` the response carries (``req-<uuid>``), kept in a
context variable by the API's request-id middleware (:data:`REQUEST_ID`) and
added to records by :class:`RequestIdFilter`. A client's own
``X-Openstack-Request-Id`` is logged as ``global_request_id``, the way
oslo.middleware treats it, and never replaces the local id.

Formats:

* ``text``: ``2026-12-01T23:00:00 INFO vbs.access [req-...] GET /v3/... 200 3.1ms``
* ``json``: one JSON object per line: ``time``, ``level``, ``logger``,
  ``message``, ``request_id`` (and ``global_request_id``, ``exc_info`` when
  present), so log shippers need no parsing rules.

uvicorn's own loggers are routed through the same handler; its access log is
replaced by ``vbs.access`` lines that include the request id.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from pathlib import Path

__all__ = [
    "GLOBAL_REQUEST_ID",
    "JsonFormatter",
    "REQUEST_ID",
    "RequestIdFilter",
    "configure_logging",
]

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "vbs_request_id", default=None
)
"""Local id of the API request being served (``req-<uuid>``), else None."""

GLOBAL_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "vbs_global_request_id", default=None
)
"""The caller's ``X-Openstack-Request-Id``, when it sent a well-formed one."""

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_HANDLER_NAME = "vbs-log"


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` / ``global_request_id`` on every record (``-`` outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        record.request_id = request_id or "-"
        record.request_sep = f" [{request_id}] " if request_id else ": "
        record.global_request_id = GLOBAL_REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, UTC timestamps, exceptions as text."""

    def __init__(self, role: str | None = None) -> None:
        super().__init__()
        self._role = role

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None,
        }
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            doc["request_id"] = request_id
        global_id = getattr(record, "global_request_id", None)
        if global_id:
            doc["global_request_id"] = global_id
        if self._role is not None:
            doc["role"] = self._role
            doc["pid"] = record.process
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(level: str = "info", fmt: str = "text", file: Path | None = None,
                      *, role: str | None = None) -> None:
    """Send the root logger (and uvicorn's) to stderr or ``file`` in ``fmt``.

    Idempotent: a second call replaces the handler it installed before, so
    tests and repeated starts in one process do not duplicate lines. With
    ``role`` (``api+worker``, ``worker``, ``scheduler``) text lines read
    ``... vbs-<role>[<pid>] LEVEL logger [req-...] message`` inside a request
    and ``... LEVEL logger: message`` outside one and JSON lines carry ``role`` and ``pid``, so the
    logs of several processes stay readable when mixed.
    """
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter(role=role))
    elif role is not None:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s vbs-{role}[%(process)d] %(levelname)s %(name)s%(request_sep)s"
            "%(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT, datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
