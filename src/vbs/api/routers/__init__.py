"""Every API router, in mounting order.

To add an API family: create ``vbs/api/routers/<family>.py`` exposing
``router: fastapi.APIRouter`` and add its module name below. No path of one
router matches a route of another (tests/unit/test_router_order.py), so the
order across routers changes no answer, only its cost: a request is matched
against every route mounted before its own, one regular expression and some
FastAPI bookkeeping each (about 5 µs a route here), so the calls clients
repeat most (native backup lists and shows, polled by Horizon and scripts)
come first. Inside a router literal routes (``/backups/detail``) must come
before parameter routes (``/backups/{backup_id}``), vbs-api.md §2.4.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from fastapi import APIRouter

__all__ = ["ROUTER_MODULES", "load_routers"]

ROUTER_MODULES: tuple[str, ...] = (
    "vbs.api.routers.backups",  # first: the most repeated calls (module docstring)
    "vbs.api.routers.versions",
    "vbs.api.routers.health",  # /healthz, /readyz, /metrics (unauthenticated)
    "vbs.api.routers.identity",
    "vbs.api.routers.policies",
    "vbs.api.routers.volumes",  # also mounts vbs.api.routers.snapshots
    "vbs.api.routers.quota",  # literal cloudbackups/quota, before cloudbackups
    "vbs.api.routers.cloudbackups",
    "vbs.api.routers.exports",
    "vbs.api.routers.sharing",
)


def load_routers(extra: Sequence[str] = ()) -> list[APIRouter]:
    """Import each router module (``extra`` first) and return its ``router``."""
    routers = []
    for name in (*extra, *ROUTER_MODULES):
        module = importlib.import_module(name)
        router = getattr(module, "router", None)
        if not isinstance(router, APIRouter):
            raise TypeError(f"{name} has no 'router' of type APIRouter")
        routers.append(router)
    return routers
