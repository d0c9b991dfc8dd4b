"""No 500 from input (issue 8, item 3): the probes that answered 500, as
regression tests against a real server.

Every case names the path, the request and the status and wire format it
must answer with; "changes nothing" is checked where a write was refused
(the project's volume count before and after).
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import ProjectClient
from tests.support.server import RunningServer, start_server

DEEP = "[" * 100_000 + "]" * 100_000
DEEPISH = "[" * 40 + "]" * 40  # parses, but deeper than MAX_DEPTH
GIB = 1024**3
FSIZE_LIMIT = 64 * GIB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The server's files may not grow past 64 GiB (RLIMIT_FSIZE, inherited), so a
    # volume the filesystem "cannot hold" is a real EFBIG on any filesystem.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, hard))
    try:
        srv = start_server(tmp_path_factory.mktemp("input-limits"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer) -> ProjectClient:
    return ProjectClient(server)


def _kind(body: dict[str, Any]) -> str:
    if set(body) == {"error"}:
        code = body["error"]["code"]
        return "keystone" if isinstance(code, int) else str(code).split(".")[0]
    [name] = body
    return str(name)


# (id, method, path, request kwargs, status, wire format)
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("deep cloudbackups", "POST", "/v2/{p}/cloudbackups", {"content": DEEP}, 400, "VolumeBackup"),
    ("deep cloudbackups restore", "POST", "/v2/{p}/cloudbackups/x/restore",
     {"content": DEEP}, 400, "VolumeBackup"),
    ("deep native backups", "POST", "/v3/{p}/backups", {"content": DEEP}, 400, "badRequest"),
    ("deep native v2 backups", "POST", "/v2/{p}/backups", {"content": DEEP}, 400, "badRequest"),
    ("deep native action", "POST", "/v3/{p}/backups/x/action", {"content": DEEP}, 400,
     "badRequest"),
    ("deep sharing", "POST", "/v2/{p}/os-vendor-backup-sharing", {"content": DEEP}, 400,
     "badRequest"),
    ("deep volumes", "POST", "/v3/{p}/volumes", {"content": DEEP}, 400, "badRequest"),
    ("deep policies", "POST", "/v2/{p}/backuppolicy", {"content": DEEP}, 400, "AutoBackup"),
    ("deep tokens", "POST", "/identity/v3/auth/tokens", {"content": DEEP}, 400, "keystone"),
    ("depth 40 cloudbackups", "POST", "/v2/{p}/cloudbackups", {"content": DEEPISH}, 400,
     "VolumeBackup"),
    ("body over 1 MiB native", "POST", "/v3/{p}/volumes",
     {"content": '{"volume": {"name": "' + "x" * (1024 * 1024) + '"}}'}, 413, "overLimit"),
    ("body over 1 MiB VBS", "POST", "/v2/{p}/cloudbackups",
     {"content": "[" + "1," * 600_000 + "1]"}, 413, "VolumeBackup"),
    ("body over 1 MiB chunked", "POST", "/v3/{p}/backups",
     {"content": iter([b"[" + b"1," * 300_000] * 3)}, 413, "overLimit"),
    ("not JSON sharing", "POST", "/v2/{p}/os-vendor-backup-sharing", {"content": "{"}, 400,
     "badRequest"),
    ("size 2**63", "POST", "/v3/{p}/volumes", {"json": {"volume": {"size": 2**63}}}, 400,
     "badRequest"),
    ("size 2**70", "POST", "/v3/{p}/volumes", {"json": {"volume": {"size": 2**70}}}, 400,
     "badRequest"),
    ("size 2**33", "POST", "/v3/{p}/volumes", {"json": {"volume": {"size": 2**33}}}, 400,
     "badRequest"),
    ("size EFBIG", "POST", "/v3/{p}/volumes", {"json": {"volume": {"size": 100}}}, 400,
     "badRequest"),
    ("volume offset 2**70", "GET", "/v3/{p}/volumes", {"params": {"offset": str(2**70)}}, 400,
     "badRequest"),
    ("volume limit 2**64", "GET", "/v3/{p}/volumes/detail", {"params": {"limit": str(2**64)}},
     400, "badRequest"),
    ("volume offset 5000 digits", "GET", "/v3/{p}/volumes", {"params": {"offset": "9" * 5000}},
     400, "badRequest"),
    ("snapshot offset 2**63", "GET", "/v3/{p}/snapshots", {"params": {"offset": str(2**63)}},
     400, "badRequest"),
    ("backup offset 2**63", "GET", "/v3/{p}/backups", {"params": {"offset": str(2**63)}}, 400,
     "badRequest"),
    ("backup v2 offset 2**63", "GET", "/v2/{p}/backups/detail",
     {"params": {"offset": str(2**63)}}, 400, "badRequest"),
    ("share offset 2**63", "GET", "/v2/{p}/os-vendor-backup-sharing/detail",
     {"params": {"offset": str(2**63)}}, 400, "badRequest"),
    ("volume name NUL", "POST", "/v3/{p}/volumes",
     {"json": {"volume": {"size": 1, "name": "a\x00b"}}}, 400, "badRequest"),
    ("volume description control", "POST", "/v3/{p}/volumes",
     {"json": {"volume": {"size": 1, "description": "bell\x07"}}}, 400, "badRequest"),
    ("volume metadata 129 items", "POST", "/v3/{p}/volumes",
     {"json": {"volume": {"size": 1, "metadata": {str(i): "v" for i in range(129)}}}}, 400,
     "badRequest"),
    ("backup metadata 129 items", "POST", "/v3/{p}/backups",
     {"json": {"backup": {"volume_id": "00000000-0000-0000-0000-000000000000",
                          "metadata": {str(i): "v" for i in range(129)}}},
      "headers": {"OpenStack-API-Version": "volume 3.43"}}, 400, "badRequest"),
]


@pytest.mark.parametrize(("method", "path", "kw", "status", "fmt"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_4xx(client: ProjectClient, method: str, path: str,
                                  kw: dict[str, Any], status: int, fmt: str) -> None:
    before = client("GET", "/v3/{p}/volumes").json()["volumes"]
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    r = client(method, path, headers=headers, **kw)
    assert r.status_code == status, r.text[:300]
    assert _kind(r.json()) == fmt, r.text[:300]
    assert client("GET", "/v3/{p}/volumes").json()["volumes"] == before


def test_snapshot_name_control_characters_refused(client: ProjectClient) -> None:
    vol = client.volume("snap-src")
    for field, value in (("name", "x\x00"), ("description", "line\x1bsecret")):
        r = client("POST", "/v3/{p}/snapshots",
                   json={"snapshot": {"volume_id": vol, field: value}})
        assert r.status_code == 400, r.text
        assert "control characters" in r.json()["badRequest"]["message"]
    assert client("GET", "/v3/{p}/snapshots").json()["snapshots"] == []


def test_body_at_the_limit_is_parsed(client: ProjectClient) -> None:
    """Just under 1 MiB is accepted for parsing (the rule then answers)."""
    pad = "x" * (1024 * 1024 - 200)
    r = client("POST", "/v3/{p}/volumes",
               json={"volume": {"size": 1, "name": "ok", "pad": pad}})
    assert r.status_code == 202, r.text[:300]


def test_max_body_bytes_is_configurable(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = start_server(tmp_path_factory.mktemp("small-body"),
                       env={"VBS_SERVER__MAX_BODY_BYTES": "2048"})
    try:
        c = ProjectClient(srv)
        r = c("POST", "/v2/{p}/cloudbackups", json={"backup": {"name": "x" * 3000}})
        assert r.status_code == 413 and r.json()["error"]["code"].startswith("VolumeBackup.")
        r = c("POST", "/v2/{p}/cloudbackups", json={"backup": {"name": "x" * 100}})
        assert r.status_code == 400, r.text  # parsed: the rule answers
    finally:
        srv.stop()


