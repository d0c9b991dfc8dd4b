"""`vbs serve` as a real process: first start, restart, discovery documents, OpenAPI."""

from __future__ import annotations

import stat
from collections.abc import Callable

import httpx
import pytest

from tests.support.server import (  # noqa: F401 - fixtures
    RunningServer,
    fresh_database_url,
    start_server,
    vbs_server,
    vbs_server_factory,
)


def test_first_start_generates_admin_password_once(
    vbs_server_factory: Callable[..., RunningServer],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = vbs_server_factory(admin_password=None)
    secret = server.data_dir / "admin-password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().strip()
    # stdout is a log file here, not a terminal: the password is only in the 0600 file.
    assert password and password not in server.log()
    assert str(secret) in server.log()
    assert server.login(password=password).status_code == 201
    assert server.login(password=password + "x").status_code == 401

    # Restart on the same data dir: nothing new is generated or printed.
    server.stop()
    workdir = server.data_dir.parent
    (workdir / "server.log").unlink()
    again = start_server(workdir, admin_password=None)
    try:
        assert secret.read_text().strip() == password
        assert password not in again.log()
        assert again.login(password=password).status_code == 201
    finally:
        again.stop()


def test_env_password_overrides(vbs_server_factory: Callable[..., RunningServer]) -> None:  # noqa: F811
    server = vbs_server_factory(admin_password="chosen-by-operator")
    assert not (server.data_dir / "admin-password").exists()
    assert server.login(password="chosen-by-operator").status_code == 201


def _v3_entry(body: dict[str, object], base: str) -> dict[str, object]:
    versions = body["versions"]
    assert isinstance(versions, list) and len(versions) == 1
    entry = versions[0]
    assert entry["id"] == "v3.0" and entry["status"] == "CURRENT"
    assert entry["min_version"] == "3.0" and entry["version"] == "3.71"
    assert {"rel": "self", "href": f"{base}/v3/"} in entry["links"]
    assert entry["media-types"][0]["type"] == "application/vnd.openstack.volume+json;version=3"
    return entry


def test_version_documents(vbs_server: RunningServer) -> None:  # noqa: F811
    base = vbs_server.base_url
    root = httpx.get(base + "/")
    assert root.status_code == 300
    assert root.headers["content-type"] == "application/json"
    assert root.headers["x-openstack-request-id"].startswith("req-")
    _v3_entry(root.json(), base)
    for path in ("/v3", "/v3/"):
        resp = httpx.get(base + path)
        assert resp.status_code == 200, path
        _v3_entry(resp.json(), base)
    for path in ("/v2", "/v2/"):
        resp = httpx.get(base + path)
        assert resp.status_code == 200
        (entry,) = resp.json()["versions"]
        assert entry["id"] == "v2.0"
        assert {"rel": "self", "href": f"{base}/v2/"} in entry["links"]
    # Sent with a token too (the cinder CLI does): still no 401.
    assert httpx.get(base + "/", headers={"X-Auth-Token": "junk"}).status_code == 300


def test_public_url_is_advertised(vbs_server_factory: Callable[..., RunningServer]) -> None:  # noqa: F811
    server = vbs_server_factory(env={"VBS_PUBLIC_URL": "https://vbs.example.test:8776"})
    _v3_entry(httpx.get(server.base_url + "/v3").json(), "https://vbs.example.test:8776")
    token = server.login().json()["token"]
    urls = {e["url"] for s in token["catalog"] for e in s["endpoints"]}
    assert all(u.startswith("https://vbs.example.test:8776/") for u in urls)


def test_openapi_and_docs(vbs_server: RunningServer) -> None:  # noqa: F811
    spec = httpx.get(vbs_server.base_url + "/openapi.json")
    assert spec.status_code == 200
    assert "/identity/v3/auth/tokens" in spec.json()["paths"]
    docs = httpx.get(vbs_server.base_url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_bad_settings_stop_the_start_with_a_named_key(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with pytest.raises(RuntimeError) as err:
        start_server(tmp_path_factory.mktemp("bad"), env={"VBS_JOBS__WORKERS": "many"})
    assert "jobs.workers" in str(err.value)


def test_two_servers_share_one_database(
    vbs_server_factory: Callable[..., RunningServer],  # noqa: F811
    fresh_database_url: str,  # noqa: F811
) -> None:
    """Scale-out shape: two API processes start at once on one database (migration lock)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(vbs_server_factory, database_url=fresh_database_url)
                   for _ in range(2)]
        first, second = (f.result() for f in futures)
    token = first.token()
    check = httpx.get(second.auth_url + "/auth/tokens",
                      headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert check.status_code == 200
