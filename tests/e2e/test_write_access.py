"""Every write endpoint on a backup x {owner, recipient, recipient admin, stranger}.

Issue 8: a share recipient is read-and-restore only. The probe that found
the native ``PUT`` and ``os-reset_status`` open to recipients is row 1/2/5
of the table below; the other rows keep every other write path honest.
Each non-owner attempt must answer in the path's wire format and change
nothing (the owner's view of the backup and its shares is compared before
and after). Restore by a recipient is allowed and covered in test_sharing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import ProjectClient
from tests.support.server import RunningServer, start_server

SHARING = "/v2/{p}/os-vendor-backup-sharing"
V343 = {"OpenStack-API-Version": "volume 3.43"}


class Client(ProjectClient):
    """One project's view of the server."""


def _user(server: RunningServer, project: str, user: str, role: str) -> Client:
    r = server.cli("admin", "user", "create", user, "--password", "pw-" + user,
                   "--project", project, "--role", role)
    assert r.returncode == 0, r.stderr
    return Client(server, user, "pw-" + user, project)


@dataclass
class World:
    owner: Client
    recipient: Client
    recipient_admin: Client
    stranger: Client
    volume: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_server(tmp_path_factory.mktemp("write-access"))
    try:
        for name in ("owner", "recipient"):
            assert server.cli("admin", "project", "create", name).returncode == 0
        owner = _user(server, "owner", "owner-admin", "admin")
        recipient = _user(server, "recipient", "rcpt-member", "member")
        recipient_admin = _user(server, "recipient", "rcpt-admin", "admin")
        yield World(owner, recipient, recipient_admin, Client(server), owner.volume("src"))
    finally:
        server.stop()


@dataclass(frozen=True)
class Write:
    """One write request; ``{b}`` is the backup id, ``{s}`` the stranger's project."""

    name: str
    method: str
    path: str
    body: Any = None
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None
    owner: int = 200
    recipient: int = 403
    stranger: int = 404


WRITES = [
    Write("native PUT name (3.9)", "PUT", "/v3/{p}/backups/{b}",
          {"backup": {"name": "renamed", "description": "changed"}}, V343),
    Write("native PUT metadata (3.43)", "PUT", "/v3/{p}/backups/{b}",
          {"backup": {"metadata": {"k": "v"}}}, V343),
    Write("native v3 DELETE", "DELETE", "/v3/{p}/backups/{b}", owner=400),
    Write("native v2 DELETE", "DELETE", "/v2/{p}/backups/{b}", owner=400),
    Write("native v3 os-reset_status", "POST", "/v3/{p}/backups/{b}/action",
          {"os-reset_status": {"status": "error"}}, owner=202),
    Write("native v2 os-reset_status", "POST", "/v2/{p}/backups/{b}/action",
          {"os-reset_status": {"status": "error"}}, owner=202),
    Write("native v3 os-force_delete", "POST", "/v3/{p}/backups/{b}/action",
          {"os-force_delete": None}, owner=202),
    Write("VBS delete (POST)", "POST", "/v2/{p}/cloudbackups/{b}", owner=400),
    Write("VBS delete (DELETE)", "DELETE", "/v2/{p}/cloudbackups/{b}", owner=400),
    Write("re-share", "POST", SHARING,
          {"shared": {"backup_id": "{b}", "to_project_ids": ["{s}"]}}),
    # §6.2/[D34]: a recipient's cancel is 404 (docs/decisions.md), still no change
    Write("cancel all shares", "DELETE", SHARING + "/{b}", params={"is_backup_id": "true"},
          recipient=404),
]


def _fill(value: Any, backup_id: str, stranger: str) -> Any:
    if isinstance(value, str):
        return value.replace("{b}", backup_id).replace("{s}", stranger)
    if isinstance(value, dict):
        return {k: _fill(v, backup_id, stranger) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, backup_id, stranger) for v in value]
    return value


def _send(who: Client, w: Write, backup_id: str, stranger: str) -> httpx.Response:
    kw: dict[str, Any] = {"headers": w.headers, "params": w.params}
    if w.body is not None:
        kw["json"] = _fill(w.body, backup_id, stranger)
    return who(w.method, _fill(w.path, backup_id, stranger), **kw)


def _state(owner: Client, backup_id: str) -> tuple[Any, ...]:
    r = owner("GET", f"/v3/{{p}}/backups/{backup_id}", headers=V343)
    assert r.status_code == 200, r.text
    b = r.json()["backup"]
    shares = owner("GET", SHARING + "/detail", params={"backup_id": backup_id}).json()["shared"]
    return (b["name"], b["description"], b["metadata"], b["status"],
            sorted(s["to_project_id"] for s in shares))


def _assert_fault(r: httpx.Response, status: int, path: str) -> None:
    assert r.status_code == status, (path, r.text)
    body = r.json()
    if "/cloudbackups" in path:
        assert set(body) == {"error"} and body["error"]["code"].startswith("VolumeBackup.")
    else:
        name = {400: "badRequest", 403: "forbidden", 404: "itemNotFound"}[status]
        assert list(body) == [name] and body[name]["code"] == status, r.text


@pytest.mark.parametrize("w", WRITES, ids=[w.name for w in WRITES])
def test_only_the_owner_writes(world: World, w: Write) -> None:
    backup_id = world.owner.backup(world.volume, "guarded")
    r = world.owner("POST", SHARING, json={"shared": {
        "backup_id": backup_id, "to_project_ids": [world.recipient.project]}})
    assert r.status_code == 200, r.text
    before = _state(world.owner, backup_id)
    stranger = world.stranger.project
    for who, expected in ((world.stranger, w.stranger), (world.recipient, w.recipient),
                          (world.recipient_admin, w.recipient)):
        r = _send(who, w, backup_id, stranger)
        _assert_fault(r, expected, w.path)
        assert _state(world.owner, backup_id) == before, (w.name, who.project)
    r = _send(world.owner, w, backup_id, stranger)
    assert r.status_code == w.owner, r.text
    if w.owner >= 400:
        assert _state(world.owner, backup_id) == before
