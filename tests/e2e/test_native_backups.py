"""Native backups API (vbs-api §5, openstack-compat §5) on a real server, over raw HTTP.

Checks the wire: shapes per family and microversion, filters, sorting,
keyset pages and their ``backups_links``, ``count``, ``PUT`` gating, admin
actions, restores compared byte for byte with the source volume file, and the
Cinder fault bodies of the error paths. Each test works in its own project,
so list assertions are exact. The stock clients are in
``test_native_clients.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.deployment import DEPLOYMENTS, backend_env
from tests.support.server import RunningServer, start_server
from tests.support.volumes import MIB, file_sha256, make_volume

UNKNOWN = "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60"
V3_KEYS = {
    "id", "name", "description", "status", "availability_zone", "volume_id", "snapshot_id",
    "size", "object_count", "container", "fail_reason", "created_at", "updated_at",
    "data_timestamp", "has_dependent_backups", "is_incremental", "links",
    "os-backup-project-attr:project_id",
}
VENDOR_KEYS = {f"os-vbs-backup-attr:{k}"
               for k in ("change_tracking", "bytes_read", "bytes_new", "chunks_sampled")}
"""How the backup was read (vendor attributes, present once it was taken)."""


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The suite runs on SQLite + directory and on PostgreSQL + S3 (SeaweedFS)."""
    srv = start_server(tmp_path_factory.mktemp("native-backups"),
                       env=backend_env(request, request.param))
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Tenant:
    """One project, a user in it, and an HTTP client for its native API."""

    server: RunningServer
    project_id: str
    token: str

    def __call__(self, method: str, path: str, *, family: str = "v3",
                 version: str | None = "3.64", **kw: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, **kw.pop("headers", {})}
        if version is not None:
            headers["OpenStack-API-Version"] = f"volume {version}"
        url = f"{self.server.base_url}/{family}/{self.project_id}{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kw)

    def volume(self, size_gb: int = 1, name: str = "vol") -> str:
        r = self("POST", "/volumes", json={"volume": {"size": size_gb, "name": name}})
        assert r.status_code == 202, r.text
        return str(r.json()["volume"]["id"])

    def volume_file(self, volume_id: str) -> Path:
        return self.server.data_dir / "volumes" / f"{volume_id}.img"

    def backup(self, volume_id: str, name: str | None = None, **extra: Any) -> str:
        r = self("POST", "/backups", json={"backup": {"volume_id": volume_id, "name": name,
                                                      **extra}})
        assert r.status_code == 202, r.text
        backup_id = str(r.json()["backup"]["id"])
        assert self.wait(backup_id)["status"] == "available"
        return backup_id

    def show(self, backup_id: str) -> dict[str, Any]:
        r = self("GET", f"/backups/{backup_id}")
        assert r.status_code == 200, r.text
        return r.json()["backup"]  # type: ignore[no-any-return]

    def wait(self, backup_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll until the backup leaves its transitional status (a deadline, not a timing
        assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            b = self.show(backup_id)
            if b["status"] not in ("creating", "restoring", "deleting"):
                return b
            assert time.monotonic() < deadline, f"backup {backup_id} stuck in {b['status']}"
            time.sleep(0.05)

    def wait_gone(self, backup_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self("GET", f"/backups/{backup_id}").status_code != 404:
            assert time.monotonic() < deadline, f"backup {backup_id} never went away"
            time.sleep(0.05)

    def wait_volume(self, volume_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            v = self("GET", f"/volumes/{volume_id}").json()["volume"]
            if v["status"] not in ("restoring-backup", "backing-up", "creating"):
                return v  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"volume {volume_id} stuck in {v['status']}"
            time.sleep(0.05)


def _cli(server: RunningServer, *args: str) -> str:
    proc = server.cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def new_tenant(server: RunningServer) -> Tenant:
    name = f"nb-{uuid.uuid4().hex[:10]}"
    project_id = _cli(server, "admin", "project", "create", name)
    _cli(server, "admin", "user", "create", name, "--password", "pw-" + name,
         "--project", name, "--role", "member")
    return Tenant(server, project_id, server.token(name, "pw-" + name, name))


@pytest.fixture
def tenant(server: RunningServer) -> Tenant:
    return new_tenant(server)


@pytest.fixture
def admin(server: RunningServer) -> Tenant:
    token = server.token()
    return Tenant(server, server.project_id(token), token)


def fill(path: Path, seed: int) -> str:
    """Overwrite the start of a volume file with mixed content; its sha256."""
    tmp = path.with_suffix(".gen")
    make_volume(tmp, 8 * MIB, seed=seed)
    with open(path, "r+b") as dst, open(tmp, "rb") as src:
        dst.write(src.read())
    tmp.unlink()
    return file_sha256(path)


def fault(r: httpx.Response, status: int, name: str) -> str:
    """Assert a Cinder fault body; returns its message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == [name], body
    assert body[name]["code"] == status
    return str(body[name]["message"])


# --------------------------------------------------------------------------- create, show


def test_create_reply_and_show_shapes_per_family(tenant: Tenant) -> None:
    vol = tenant.volume(1, "shape")
    r = tenant("POST", "/backups", json={"backup": {
        "volume_id": vol, "name": "pre-patch", "description": "d", "container": "c1",
        "incremental": "false", "force": True, "snapshot_id": None, "metadata": {"k": "v"}}})
    assert r.status_code == 202, r.text
    assert r.headers["OpenStack-API-Version"] == "volume 3.64"
    created = r.json()["backup"]
    assert set(created) == {"id", "name", "links"} and created["name"] == "pre-patch"
    bid = created["id"]
    assert [link["rel"] for link in created["links"]] == ["self", "bookmark"]
    assert created["links"][0]["href"].endswith(f"/v3/{tenant.project_id}/backups/{bid}")
    assert created["links"][1]["href"] == (
        f"{tenant.server.base_url}/{tenant.project_id}/backups/{bid}")
    b = tenant.wait(bid)
    assert V3_KEYS | VENDOR_KEYS | {"metadata", "user_id", "tags"} == set(b)
    assert b["os-vbs-backup-attr:change_tracking"] in ("none", "fiemap")
    assert b["tags"] == []
    assert (b["status"], b["volume_id"], b["size"], b["container"]) == (
        "available", vol, 1, "c1")
    assert b["metadata"] == {"k": "v"} and b["description"] == "d"
    assert b["os-backup-project-attr:project_id"] == tenant.project_id
    assert b["is_incremental"] is False and b["has_dependent_backups"] is False
    assert len(b["created_at"]) == 26 and "T" in b["created_at"]  # …SS.ffffff, no zone
    # 3.0 has neither metadata nor user_id
    old = tenant("GET", f"/backups/{bid}", version=None)
    assert set(old.json()["backup"]) == V3_KEYS | VENDOR_KEYS
    assert old.headers["OpenStack-API-Version"] == "volume 3.0"
    # v2: tenant attribute + service_metadata string, no version header
    v2 = tenant("GET", f"/backups/{bid}", family="v2", version=None)
    assert "OpenStack-API-Version" not in v2.headers
    body = v2.json()["backup"]
    assert body["os-bak-tenant-attr:tenant_id"] == tenant.project_id
    assert "os-backup-project-attr:project_id" not in body
    assert body["links"][0]["href"].endswith(f"/v2/{tenant.project_id}/backups/{bid}")
    meta = json.loads(body["service_metadata"])
    assert {"bootable", "backupurl", "progress", "Type", "ST"} <= set(meta)
    assert meta["Type"] == 0 and meta["ST"] == 0 and meta["progress"] == 100
    # As in Cinder, a backup is incremental only when asked for (--incremental),
    # and its parent then reports has_dependent_backups.
    second = tenant.backup(vol, "second")
    assert tenant.show(second)["is_incremental"] is False
    assert tenant.show(bid)["has_dependent_backups"] is False
    third = tenant.backup(vol, "third", incremental=True)
    assert tenant.show(third)["is_incremental"] is True
    assert tenant.show(second)["has_dependent_backups"] is True
    assert tenant.show(third)["has_dependent_backups"] is False
    listed = {x["id"]: x for x in tenant("GET", "/backups/detail").json()["backups"]}
    assert listed[second]["has_dependent_backups"] is True
    assert listed[bid]["has_dependent_backups"] is False


def test_create_errors(tenant: Tenant) -> None:
    vol = tenant.volume(1, "errs")
    fault(tenant("POST", "/backups", json={"backup": {"name": "x"}}), 400, "badRequest")
    fault(tenant("POST", "/backups", json={"volume": {}}), 400, "badRequest")
    fault(tenant("POST", "/backups", content=b"{not json",
                 headers={"Content-Type": "application/json"}), 400, "badRequest")
    fault(tenant("POST", "/backups", json={"backup": {"volume_id": "nope"}}), 400, "badRequest")
    fault(tenant("POST", "/backups", json={"backup": {"volume_id": UNKNOWN}}),
          404, "itemNotFound")
    fault(tenant("POST", "/backups", json={"backup": {"volume_id": vol, "name": "a b"}}),
          400, "badRequest")
    fault(tenant("POST", "/backups", json={"backup": {"volume_id": vol, "name": "autobk_1"}}),
          400, "badRequest")
    msg = fault(tenant("POST", "/backups", version="3.42",
                       json={"backup": {"volume_id": vol, "metadata": {"a": "b"}}}),
                400, "badRequest")
    assert "3.43" in msg
    fault(tenant("POST", "/backups", family="v2", version=None,
                 json={"backup": {"volume_id": vol, "availability_zone": "nova"}}),
          400, "badRequest")
    fault(tenant("POST", "/backups", json={"backup": {"volume_id": vol,
                                                      "snapshot_id": UNKNOWN}}),
          404, "itemNotFound")
    # v2 create works and answers the v2 links
    r = tenant("POST", "/backups", family="v2", version=None,
               json={"backup": {"volume_id": vol, "name": "v2-made"}})
    assert r.status_code == 202, r.text
    assert f"/v2/{tenant.project_id}/backups/" in r.json()["backup"]["links"][0]["href"]
    tenant.wait(r.json()["backup"]["id"])


def test_unknown_and_malformed_ids_are_404(tenant: Tenant) -> None:
    for path in (f"/backups/{UNKNOWN}", "/backups/some-name"):
        assert "could not be found" in fault(tenant("GET", path), 404, "itemNotFound")
        fault(tenant("DELETE", path), 404, "itemNotFound")
        fault(tenant("POST", path + "/restore", json={"restore": {"volume_id": UNKNOWN}}),
              404, "itemNotFound")
    fault(tenant("GET", f"/backups/{UNKNOWN}", family="v2", version=None),
          404, "itemNotFound")


def test_project_mismatch_is_malformed_url(tenant: Tenant, server: RunningServer) -> None:
    other = new_tenant(server)
    r = httpx.get(f"{server.base_url}/v3/{other.project_id}/backups",
                  headers={"X-Auth-Token": tenant.token}, timeout=30)
    assert fault(r, 400, "badRequest") == "Malformed request url"
    r = httpx.get(f"{server.base_url}/v3/{tenant.project_id}/backups", timeout=30)
    assert r.status_code == 401


def test_other_projects_backups_are_invisible(tenant: Tenant, server: RunningServer) -> None:
    bid = tenant.backup(tenant.volume(1, "mine"), "mine")
    other = new_tenant(server)
    fault(other("GET", f"/backups/{bid}"), 404, "itemNotFound")
    fault(other("DELETE", f"/backups/{bid}"), 404, "itemNotFound")
    assert other("GET", "/backups").json() == {"backups": []}


# --------------------------------------------------------------------------- lists


@pytest.fixture
def five(tenant: Tenant) -> tuple[Tenant, list[str], list[str]]:
    """Five available backups ``nb-0``…``nb-4`` of two volumes; their ids and volumes."""
    vols = [tenant.volume(1, "la"), tenant.volume(1, "lb")]
    ids = [tenant.backup(vols[i % 2], f"nb-{i}") for i in range(5)]
    return tenant, ids, vols


def _ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [b["id"] for b in r.json()["backups"]]


def test_list_summary_detail_default_order_and_filters(
        five: tuple[Tenant, list[str], list[str]]) -> None:
    t, ids, vols = five
    r = t("GET", "/backups")
    newest_first = list(reversed(ids))
    assert _ids(r) == newest_first
    assert all(set(b) == {"id", "name", "links"} for b in r.json()["backups"])
    assert "backups_links" not in r.json() and "count" not in r.json()
    detail = t("GET", "/backups/detail").json()["backups"]
    assert [b["id"] for b in detail] == newest_first
    assert all(set(b) >= V3_KEYS for b in detail)
    assert _ids(t("GET", "/backups", params={"name": "nb-3"})) == [ids[3]]
    assert _ids(t("GET", "/backups/detail", params={"volume_id": vols[0]})) == [
        ids[4], ids[2], ids[0]]
    assert _ids(t("GET", "/backups", params={"status": "available"})) == newest_first
    assert _ids(t("GET", "/backups", params={"status": "error"})) == []
    assert _ids(t("GET", "/backups", params={"name": "nb", "all_tenants": "1"})) == []
    # name~ from 3.31 (case-insensitive substring); ignored below
    assert _ids(t("GET", "/backups", version="3.31", params={"name~": "NB-"})) == newest_first
    assert _ids(t("GET", "/backups", version="3.31", params={"name~": "-2"})) == [ids[2]]
    assert _ids(t("GET", "/backups", version="3.30", params={"name~": "-2"})) == newest_first
    fault(t("GET", "/backups", params={"status": "bogus"}), 400, "badRequest")


def test_sorting(five: tuple[Tenant, list[str], list[str]]) -> None:
    t, ids, _ = five
    assert _ids(t("GET", "/backups", params={"sort": "name:asc"})) == ids
    assert _ids(t("GET", "/backups", params={"sort": "display_name:desc"})) == ids[::-1]
    assert _ids(t("GET", "/backups", params={"sort_key": "name", "sort_dir": "ASC"})) == ids
    assert _ids(t("GET", "/backups", params={"sort_key": "created_at",
                                             "sort_dir": "asc"})) == ids
    by_id = _ids(t("GET", "/backups", params={"sort": "id:asc"}))
    assert by_id == sorted(ids)
    same_size = _ids(t("GET", "/backups", params={"sort": "size:asc"}))
    assert same_size == sorted(ids)  # ties broken by id in the same direction
    for bad in ({"sort": "bogus"}, {"sort": "name:sideways"}, {"sort": "name,id"},
                {"sort": "name", "sort_key": "id"}):
        fault(t("GET", "/backups", params=bad), 400, "badRequest")


def test_pagination_links_marker_offset_count(
        five: tuple[Tenant, list[str], list[str]]) -> None:
    t, ids, _ = five
    expected = sorted(ids)
    seen: list[str] = []
    url: str | None = (f"{t.server.base_url}/v3/{t.project_id}/backups/detail"
                       "?sort=id:asc&limit=2")
    pages = 0
    while url is not None:
        r = httpx.get(url, headers={"X-Auth-Token": t.token}, timeout=30)
        seen += _ids(r)
        pages += 1
        links = r.json().get("backups_links")
        url = None
        if links:
            assert [link["rel"] for link in links] == ["next"]
            url = links[0]["href"]
            assert "sort=id%3Aasc" in url and "limit=2" in url and "marker=" in url
    assert seen == expected and pages == 3
    # the last id as marker is an empty page; an unknown one is a 400
    assert _ids(t("GET", "/backups", params={"sort": "id:asc", "marker": expected[-1]})) == []
    fault(t("GET", "/backups", params={"marker": UNKNOWN}), 400, "badRequest")
    # marker first, then offset
    r = t("GET", "/backups", params={"sort": "id:asc", "marker": expected[0], "offset": "1",
                                     "limit": "2"})
    assert _ids(r) == expected[2:4]
    assert _ids(t("GET", "/backups", params={"sort": "id:asc", "offset": "4"})) == expected[4:]
    # count from 3.45 with with_count=true, on both lists
    r = t("GET", "/backups", version="3.45", params={"with_count": "true", "limit": "1"})
    assert r.json()["count"] == 5 and len(r.json()["backups"]) == 1
    r = t("GET", "/backups/detail", version="3.45",
          params={"with_count": "True", "name": "nb-1"})
    assert r.json()["count"] == 1
    assert "count" not in t("GET", "/backups", version="3.44",
                            params={"with_count": "true"}).json()
    assert "count" not in t("GET", "/backups", family="v2", version=None,
                            params={"with_count": "true"}).json()
    fault(t("GET", "/backups", version="3.45", params={"with_count": "maybe"}),
          400, "badRequest")
    for bad in ("0", "-1", "x"):
        fault(t("GET", "/backups", params={"limit": bad}), 400, "badRequest")
    fault(t("GET", "/backups", params={"offset": "-1"}), 400, "badRequest")
    # v2 pages too, with v2 next links
    r = t("GET", "/backups", family="v2", version=None, params={"limit": "4"})
    assert len(_ids(r)) == 4
    assert f"/v2/{t.project_id}/backups?" in r.json()["backups_links"][0]["href"]


# --------------------------------------------------------------------------- update


def test_update_is_gated_at_3_9(tenant: Tenant) -> None:
    bid = tenant.backup(tenant.volume(1, "upd"), "before")
    body = {"backup": {"name": "after"}}
    fault(tenant("PUT", f"/backups/{bid}", version="3.8", json=body), 404, "itemNotFound")
    fault(tenant("PUT", f"/backups/{bid}", family="v2", version=None, json=body),
          404, "itemNotFound")
    r = tenant("PUT", f"/backups/{bid}", version="3.9",
               json={"backup": {"name": "after", "description": "new text"}})
    assert r.status_code == 200, r.text
    assert set(r.json()["backup"]) == {"id", "name", "links"}
    shown = tenant.show(bid)
    assert (shown["name"], shown["description"]) == ("after", "new text")
    fault(tenant("PUT", f"/backups/{bid}", version="3.42",
                 json={"backup": {"metadata": {"a": "1"}}}), 400, "badRequest")
    for meta in ({"a": "1", "b": "2"}, {"c": "3"}):
        r = tenant("PUT", f"/backups/{bid}", json={"backup": {"metadata": meta}})
        assert r.status_code == 200, r.text
        assert tenant.show(bid)["metadata"] == meta  # replaces the whole map
    assert tenant.show(bid)["name"] == "after"  # untouched when absent
    fault(tenant("PUT", f"/backups/{bid}", json={"backup": {"name": "no spaces"}}),
          400, "badRequest")
    fault(tenant("PUT", f"/backups/{bid}", json={"name": "x"}), 400, "badRequest")
    fault(tenant("PUT", f"/backups/{UNKNOWN}", json=body), 404, "itemNotFound")


def test_a_listed_backup_shows_every_change_at_the_next_list(tenant: Tenant) -> None:
    """The list route reuses each backup's rendered JSON while its row is
    unchanged (backups_views.backup_item_json): a change must show at once."""
    vol = tenant.volume(1, "relist")
    bid = tenant.backup(vol, "before")

    def listed() -> dict[str, Any]:
        r = tenant("GET", "/backups/detail")
        assert r.status_code == 200, r.text
        return next(b for b in r.json()["backups"] if b["id"] == bid)

    assert listed()["name"] == "before" and listed()["has_dependent_backups"] is False
    r = tenant("PUT", f"/backups/{bid}", json={"backup": {"name": "after",
                                                          "metadata": {"k": "v"}}})
    assert r.status_code == 200, r.text
    assert (listed()["name"], listed()["metadata"]) == ("after", {"k": "v"})
    child = tenant.backup(vol, "child", incremental=True)
    assert listed()["has_dependent_backups"] is True  # another row changed it
    r = tenant("DELETE", f"/backups/{child}")
    assert r.status_code == 202, r.text
    tenant.wait_gone(child)
    assert listed()["has_dependent_backups"] is False


# --------------------------------------------------------------------------- restore


def test_restore_to_existing_and_new_volume_byte_for_byte(tenant: Tenant) -> None:
    src = tenant.volume(1, "src")
    digest = fill(tenant.volume_file(src), seed=11)
    bid = tenant.backup(src, "rb")
    target = tenant.volume(1, "target-vol")
    r = tenant("POST", f"/backups/{bid}/restore", json={"restore": {"volume_id": target}})
    assert r.status_code == 202, r.text
    assert r.json() == {"restore": {"backup_id": bid, "volume_id": target,
                                    "volume_name": "target-vol"}}
    assert tenant.wait(bid)["status"] == "available"
    assert tenant.wait_volume(target)["status"] == "available"
    assert file_sha256(tenant.volume_file(target)) == digest
    # by name: a new volume of the backup's size
    r = tenant("POST", f"/backups/{bid}/restore", version=None,
               json={"restore": {"name": "from-name"}})
    assert r.status_code == 202, r.text
    made = r.json()["restore"]
    assert made["backup_id"] == bid and made["volume_name"] == "from-name"
    tenant.wait(bid)
    vol = tenant.wait_volume(made["volume_id"])
    assert (vol["status"], vol["size"], vol["name"]) == ("available", 1, "from-name")
    assert file_sha256(tenant.volume_file(made["volume_id"])) == digest
    # neither: Cinder's default name; v2 path; a null restore object
    r = tenant("POST", f"/backups/{bid}/restore", family="v2", version=None,
               json={"restore": None})
    assert r.status_code == 202, r.text
    made = r.json()["restore"]
    assert made["volume_name"] == f"restore_backup_{bid}"
    tenant.wait(bid)
    tenant.wait_volume(made["volume_id"])
    assert file_sha256(tenant.volume_file(made["volume_id"])) == digest


def test_restore_errors(tenant: Tenant) -> None:
    big = tenant.volume(2, "big")
    bid = tenant.backup(big, "big")
    small = tenant.volume(1, "small")
    assert "smaller" in fault(
        tenant("POST", f"/backups/{bid}/restore", json={"restore": {"volume_id": small}}),
        400, "badRequest")
    fault(tenant("POST", f"/backups/{bid}/restore", json={"restore": {"volume_id": UNKNOWN}}),
          404, "itemNotFound")
    fault(tenant("POST", f"/backups/{bid}/restore", json={"restore": {"volume_id": "x"}}),
          400, "badRequest")
    fault(tenant("POST", f"/backups/{bid}/restore", json={"nothing": {}}), 400, "badRequest")
    fault(tenant("POST", f"/backups/{UNKNOWN}/restore", json={"restore": {"name": "n"}}),
          404, "itemNotFound")


# --------------------------------------------------------------------------- delete, admin


def test_delete(tenant: Tenant) -> None:
    bid = tenant.backup(tenant.volume(1, "del"), "del")
    r = tenant("DELETE", f"/backups/{bid}", headers={"Accept": ""})
    assert r.status_code == 202 and r.content == b""
    assert r.headers["OpenStack-API-Version"] == "volume 3.64"
    tenant.wait_gone(bid)
    assert _ids(tenant("GET", "/backups")) == []
    fault(tenant("DELETE", f"/backups/{bid}"), 404, "itemNotFound")


def test_admin_actions(tenant: Tenant, admin: Tenant) -> None:
    # a member may not
    bid = tenant.backup(tenant.volume(1, "act"), "act")
    for action in ({"os-reset_status": {"status": "error"}}, {"os-force_delete": None}):
        fault(tenant("POST", f"/backups/{bid}/action", json=action), 403, "forbidden")
    assert tenant.show(bid)["status"] == "available"
    # an admin may, in its own project
    abid = admin.backup(admin.volume(1, "admin-act"), "admin-act")
    r = admin("POST", f"/backups/{abid}/action", json={"os-reset_status": {"status": "ERROR"}})
    assert r.status_code == 202 and r.content == b""
    assert admin.show(abid)["status"] == "error"
    restore = admin("POST", f"/backups/{abid}/restore",
                    json={"restore": {"volume_id": admin.volume(1, "t")}})
    assert "available" in fault(restore, 400, "badRequest")
    # a refused restore to a new volume creates no volume
    before = admin("GET", "/volumes").json()["volumes"]
    restore = admin("POST", f"/backups/{abid}/restore", json={"restore": {"name": "late"}})
    assert "available" in fault(restore, 400, "badRequest")
    assert admin("GET", "/volumes").json()["volumes"] == before
    for bad in ({"os-reset_status": {"status": "creating"}}, {"os-reset_status": {}},
                {"os-bogus": {}}, {"os-force_delete": None, "os-reset_status": {}}):
        fault(admin("POST", f"/backups/{abid}/action", json=bad), 400, "badRequest")
    fault(admin("POST", f"/backups/{UNKNOWN}/action",
                json={"os-reset_status": {"status": "available"}}), 404, "itemNotFound")
    r = admin("POST", f"/backups/{abid}/action", json={"os-reset_status": {"status": "available"}})
    assert r.status_code == 202 and admin.show(abid)["status"] == "available"
    r = admin("POST", f"/backups/{abid}/action", json={"os-force_delete": {}})
    assert r.status_code == 202, r.text
    admin.wait_gone(abid)


def test_quota_is_413_over_limit(vbs_server_factory: Callable[..., RunningServer]) -> None:
    srv = vbs_server_factory(env={"VBS_QUOTAS__DEFAULT_BACKUPS": "1"})
    t = new_tenant(srv)
    vol = t.volume(1, "q")
    t.backup(vol, "one")
    r = t("POST", "/backups", json={"backup": {"volume_id": vol, "name": "two"}})
    assert "Maximum number of backups" in fault(r, 413, "overLimit")
    assert r.json()["overLimit"]["retryAfter"] == "0" and r.headers["Retry-After"] == "0"
