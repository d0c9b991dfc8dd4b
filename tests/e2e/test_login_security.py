"""Login hardening (issue 8, item 4) against a real server.

Failed password attempts are limited per user and per source address
(429 + Retry-After, Keystone error body) before any password is verified;
a scope error for a project the user has no role in reads exactly like one
for a project that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("login"), env={
        "VBS_AUTH__LOGIN_MAX_FAILURES_PER_USER": "5",
        "VBS_AUTH__LOGIN_MAX_FAILURES_PER_ADDRESS": "8",
    })
    try:
        for project in ("p-one", "p-two", "p-three"):
            assert srv.cli("admin", "project", "create", project).returncode == 0
        for user in ("alice", "bob", "carol", "dave"):
            r = srv.cli("admin", "user", "create", user, "--password", f"{user}-pw",
                        "--project", "p-one")
            assert r.returncode == 0, r.stderr
        yield srv
    finally:
        srv.stop()


def _login(srv: RunningServer, user: str, password: str,
           scope: dict[str, Any] | None = None) -> httpx.Response:
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": scope or {"project": {"name": "p-one", "domain": {"name": "Default"}}},
    }}
    return httpx.post(srv.auth_url + "/auth/tokens", json=body, timeout=30)


def _assert_429(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json() == {"error": {"code": 429, "title": "Too Many Requests",
                                  "message": "Too many failed login attempts; retry later."}}


def test_scope_errors_do_not_disclose_projects(server: RunningServer) -> None:
    ids = {}
    for project in ("p-two",):
        r = server.cli("admin", "project", "list")
        assert r.returncode == 0
        ids[project] = next(line.split()[0] for line in r.stdout.splitlines()
                            if project in line.split())
    scopes = [
        {"project": {"name": "p-two", "domain": {"name": "Default"}}},  # exists, no role
        {"project": {"name": "p-nowhere", "domain": {"name": "Default"}}},  # missing
        {"project": {"id": ids["p-two"]}},
        {"project": {"id": uuid.uuid4().hex}},
    ]
    answers = [_login(server, "dave", "dave-pw", scope) for scope in scopes]
    assert {r.status_code for r in answers} == {401}
    bodies = {r.text for r in answers}
    assert len(bodies) == 1, bodies
    assert ids["p-two"] not in bodies.pop()


def test_failed_logins_are_limited_per_user_then_per_address(server: RunningServer) -> None:
    for _ in range(5):
        assert _login(server, "alice", "wrong").status_code == 401
    _assert_429(_login(server, "alice", "alice-pw"))  # even the right password waits
    _assert_429(_login(server, "alice", "wrong"))
    assert _login(server, "bob", "bob-pw").status_code == 201  # other users unaffected
    for _ in range(3):  # 5 + 3 = 8 failures from this address
        assert _login(server, "bob", "wrong").status_code == 401
    _assert_429(_login(server, "carol", "carol-pw"))
