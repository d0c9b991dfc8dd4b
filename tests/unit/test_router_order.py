"""Routers may be mounted in any order: no route of one shadows a route of another.

``vbs.api.routers.ROUTER_MODULES`` puts the most repeated calls first to
save matching time; that is only safe while no path one router serves can
be matched by a route of another router with a method in common.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import compile_path

from vbs.api.routers import ROUTER_MODULES


def _api_routes(router: Any) -> list[APIRoute]:
    """``router``'s routes and those of the routers it includes (no prefixes here)."""
    routes = []
    for route in router.routes:
        if isinstance(route, APIRoute):
            routes.append(route)
        else:  # an included router (snapshots in volumes, policy tags in policies)
            routes.extend(_api_routes(route.original_router))
    return routes


def _routes() -> list[tuple[str, str, set[str]]]:
    return [(name, route.path, set(route.methods))
            for name in ROUTER_MODULES
            for route in _api_routes(importlib.import_module(name).router)]


def _sample(path: str) -> str:
    """A concrete path of the template: each ``{param}`` a plain segment."""
    return re.sub(r"\{[^}]+\}", "p0", path)


def test_no_route_matches_a_path_of_another_router() -> None:
    routes = _routes()
    assert len(routes) > 90  # every router was seen, included ones too
    assert any("/snapshots" in path for _, path, _ in routes)
    clashes = [
        (a_router, a_path, b_router, b_path)
        for a_router, a_path, a_methods in routes
        for b_router, b_path, b_methods in routes
        if a_router != b_router and a_methods & b_methods
        and compile_path(a_path)[0].match(_sample(b_path))
    ]
    assert clashes == []


def test_the_check_sees_a_clash() -> None:
    """The matcher used above does flag a parameter route over a literal one."""
    assert compile_path("/v3/{project_id}/backups/{backup_id}")[0].match(
        _sample("/v3/{project_id}/backups/detail"))
