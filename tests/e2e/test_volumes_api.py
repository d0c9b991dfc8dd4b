"""Volumes and snapshots API against a real server, driven by the stock clients.

python-cinderclient and openstacksdk log in through the server's Keystone
subset and use the catalog (openstack-compat §8.1); raw httpx checks the wire
shapes and fault bodies; ``vbs admin volume`` imports are checked through the
API. Each test works in its own project so list assertions are exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, run_cli
from tests.support.server import vbs_server as vbs_server  # noqa: F401 - fixture

GIB = 1 << 30


@dataclass
class Tenant:
    server: RunningServer
    project: str
    project_id: str
    user: str
    password: str

    def session(self) -> Any:
        return self.server.keystone_session(self.user, self.password, self.project)

    def token(self) -> str:
        return self.server.token(self.user, self.password, self.project)

    def url(self, path: str, family: str = "v3") -> str:
        return f"{self.server.base_url}/{family}/{self.project_id}{path}"

    def headers(self, version: str | None = "3.64") -> dict[str, str]:
        h = {"X-Auth-Token": self.token()}
        if version:
            h["OpenStack-API-Version"] = f"volume {version}"
        return h


def _cli_ok(server: RunningServer, *args: str) -> str:
    proc = server.cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def tenant(vbs_server: RunningServer) -> Tenant:  # noqa: F811
    name = f"vol-{uuid.uuid4().hex[:10]}"
    project_id = _cli_ok(vbs_server, "admin", "project", "create", name)
    _cli_ok(vbs_server, "admin", "user", "create", name, "--password", "pw-" + name,
            "--project", name, "--role", "member")
    return Tenant(vbs_server, name, project_id, name, "pw-" + name)


@pytest.fixture
def cinder(tenant: Tenant) -> Any:
    from cinderclient import client

    return client.Client("3.64", session=tenant.session())


@pytest.fixture
def sdk(tenant: Tenant) -> Iterator[Any]:
    import openstack

    conn = openstack.connect(
        auth_url=tenant.server.auth_url, username=tenant.user, password=tenant.password,
        user_domain_name="Default", project_name=tenant.project,
        project_domain_name="Default", region_name="RegionOne",
        load_yaml_config=False, load_envvars=False,
    )
    try:
        yield conn
    finally:
        conn.close()


def _volume_file(server: RunningServer, volume_id: str) -> Path:
    return server.data_dir / "volumes" / f"{volume_id}.img"


# --------------------------------------------------------------------------- cinderclient


def test_cinderclient_volume_lifecycle(cinder: Any, tenant: Tenant) -> None:
    vol = cinder.volumes.create(size=2, name="cc-one", description="first",
                                metadata={"owner": "ci"})
    assert vol.status == "available" and vol.size == 2
    path = _volume_file(tenant.server, vol.id)
    assert path.is_file() and path.stat().st_size == 2 * GIB
    assert path.stat().st_blocks == 0  # sparse: nothing written
    shown = cinder.volumes.get(vol.id)
    assert shown.name == "cc-one" and shown.metadata == {"owner": "ci"}
    assert shown.bootable == "false" and shown.attachments == []
    assert getattr(shown, "os-vol-tenant-attr:tenant_id") == tenant.project_id
    assert [v.id for v in cinder.volumes.list(search_opts={"name": "cc-one"})] == [vol.id]
    cinder.volumes.delete(vol.id)
    assert not path.exists()
    from cinderclient import exceptions

    with pytest.raises(exceptions.NotFound):
        cinder.volumes.get(vol.id)


def test_cinderclient_pagination_limit_marker(cinder: Any) -> None:
    made = [cinder.volumes.create(size=1, name=f"page-{i}").id for i in range(5)]
    first = cinder.volumes.list(detailed=True, limit=2, sort="name:asc")
    assert [v.id for v in first] == made[:2]
    rest = cinder.volumes.list(detailed=False, marker=made[1], limit=10, sort="name:asc")
    assert [v.id for v in rest] == made[2:]
    everything = cinder.volumes.list(sort="created_at:desc")
    assert [v.id for v in everything] == list(reversed(made))
    for vid in made:
        cinder.volumes.delete(vid)


def test_cinderclient_snapshots(cinder: Any, tenant: Tenant) -> None:
    from cinderclient import exceptions

    vol = cinder.volumes.create(size=1, name="snap-src")
    snap = cinder.volume_snapshots.create(vol.id, name="s1", description="d")
    assert snap.status == "available" and snap.size == 1 and snap.volume_id == vol.id
    snap_file = tenant.server.data_dir / "volumes" / "snapshots" / f"{snap.id}.img"
    assert snap_file.is_file() and snap_file.stat().st_size == GIB
    assert [s.id for s in cinder.volume_snapshots.list()] == [snap.id]
    shown = cinder.volume_snapshots.get(snap.id)
    assert getattr(shown, "os-extended-snapshot-attributes:progress") == "100%"
    with pytest.raises(exceptions.BadRequest, match="snapshot"):
        cinder.volumes.delete(vol.id)  # Cinder rule: volume has snapshots
    clone = cinder.volumes.create(size=1, name="clone", snapshot_id=snap.id)
    assert clone.snapshot_id == snap.id and clone.status == "available"
    cinder.volume_snapshots.delete(snap.id)
    assert not snap_file.exists()
    with pytest.raises(exceptions.NotFound):
        cinder.volume_snapshots.get(snap.id)
    cinder.volumes.delete(vol.id)
    cinder.volumes.delete(clone.id)


def test_cinderclient_errors(cinder: Any) -> None:
    from cinderclient import exceptions

    with pytest.raises(exceptions.NotFound) as missing:
        cinder.volumes.get(str(uuid.uuid4()))
    assert missing.value.code == 404
    with pytest.raises(exceptions.BadRequest):
        cinder.volumes.create(size=0, name="zero")
    with pytest.raises(exceptions.NotFound):
        cinder.volume_snapshots.create(str(uuid.uuid4()), name="orphan")


# --------------------------------------------------------------------------- openstacksdk


def test_openstacksdk_volumes_and_snapshots(sdk: Any, tenant: Tenant) -> None:
    bs = sdk.block_storage
    made = []
    for i in range(3):
        vol = bs.create_volume(size=1, name=f"sdk-{i}")
        made.append(bs.wait_for_status(vol, status="available", wait=60, interval=1).id)
    # openstacksdk maps no sort parameter for volumes: Cinder's default, newest first;
    # it follows volumes_links, then probes one page past the end with the last marker
    listed = [v.id for v in bs.volumes(details=True, limit=2)]
    assert listed == list(reversed(made))
    assert bs.get_volume(made[0]).name == "sdk-0"
    assert bs.find_volume("sdk-1").id == made[1]  # 404 on the name, then name filter
    snap = bs.wait_for_status(bs.create_snapshot(volume_id=made[0], name="sdk-snap"),
                              status="available", wait=60, interval=1)
    assert [s.id for s in bs.snapshots(details=True)] == [snap.id]
    assert [s.id for s in bs.snapshots(details=False, limit=1)] == [snap.id]
    bs.delete_snapshot(snap)
    bs.wait_for_delete(snap, wait=60, interval=1)
    for vid in made:
        bs.delete_volume(vid)  # sends ?cascade=False&force=False
    assert list(bs.volumes()) == []
    for vid in made:
        assert not _volume_file(tenant.server, vid).exists()


# --------------------------------------------------------------------------- wire shapes


def test_wire_shapes_and_faults(tenant: Tenant) -> None:
    h = tenant.headers("3.64")
    created = httpx.post(tenant.url("/volumes"), headers=h, timeout=30,
                         json={"volume": {"size": "1", "name": "raw", "imageRef": None}})
    assert created.status_code == 202, created.text
    assert created.headers["OpenStack-API-Version"] == "volume 3.64"
    vol = created.json()["volume"]
    assert vol["links"][0]["href"].endswith(f"/v3/{tenant.project_id}/volumes/{vol['id']}")
    assert vol["links"][1]["rel"] == "bookmark" and "/v3/" not in vol["links"][1]["href"]
    assert vol["volume_type"] == "__DEFAULT__" and vol["encrypted"] is False
    assert vol["group_id"] is None and vol["volume_type_id"]
    summary = httpx.get(tenant.url("/volumes"), headers=h, timeout=30).json()
    assert summary["volumes"] == [{"id": vol["id"], "name": "raw", "links": vol["links"]}]

    missing = httpx.get(tenant.url(f"/volumes/{uuid.uuid4()}"), headers=h, timeout=30)
    assert missing.status_code == 404
    assert set(missing.json()) == {"itemNotFound"}
    assert missing.json()["itemNotFound"]["code"] == 404
    assert missing.headers["OpenStack-API-Version"] == "volume 3.64"
    assert httpx.get(tenant.url("/volumes/not-a-uuid"), headers=h, timeout=30).status_code == 404
    assert httpx.get(tenant.url("/snapshots/nope"), headers=h, timeout=30).status_code == 404

    for body, needle in (
        ({"volume": {"size": "abc"}}, "size"),
        ({"volume": {"name": "no size"}}, "size"),
        ({"volume": {"size": 1, "source_volid": str(uuid.uuid4())}}, "source_volid"),
        ({"volume": {"size": 1, "availability_zone": "mars"}}, "mars"),
        ({"nothing": {}}, "volume"),
        ({"snapshot": {"volume_id": vol["id"]}}, "volume"),
    ):
        bad = httpx.post(tenant.url("/volumes"), headers=h, json=body, timeout=30)
        assert bad.status_code == 400, (body, bad.text)
        assert needle in bad.json()["badRequest"]["message"], bad.text
    assert httpx.get(tenant.url("/volumes?limit=x"), headers=h,
                     timeout=30).status_code == 400
    assert httpx.get(tenant.url("/volumes?bogus=1"), headers=h, timeout=30).status_code == 400
    assert httpx.get(tenant.url("/volumes?bogus=1"), headers=tenant.headers(None),
                     timeout=30).status_code == 200  # before 3.31 unknown filters are dropped
    unknown_marker = httpx.get(tenant.url(f"/volumes?marker={uuid.uuid4()}"), headers=h,
                               timeout=30)
    assert unknown_marker.status_code == 404
    last = httpx.get(tenant.url(f"/volumes?marker={vol['id']}"), headers=h, timeout=30)
    assert last.json() == {"volumes": []}
    counted = httpx.get(tenant.url("/volumes/detail?with_count=true"), headers=h, timeout=30)
    assert counted.json()["count"] == 1

    # v2 answers the same without microversion headers
    v2 = httpx.get(tenant.url(f"/volumes/{vol['id']}", "v2"), headers=tenant.headers(None),
                   timeout=30)
    assert v2.status_code == 200 and "OpenStack-API-Version" not in v2.headers
    assert v2.json()["volume"]["links"][0]["href"].endswith(f"/v2/{tenant.project_id}"
                                                           f"/volumes/{vol['id']}")

    snap = httpx.post(tenant.url("/snapshots"), headers=tenant.headers("3.66"), timeout=30,
                      json={"snapshot": {"volume_id": vol["id"], "force": False}})
    assert snap.status_code == 400 and "3.66" in snap.json()["badRequest"]["message"]
    gone = httpx.delete(tenant.url(f"/volumes/{vol['id']}?force=true"), headers=h, timeout=30)
    assert gone.status_code == 403  # force delete is admin-only
    deleted = httpx.delete(tenant.url(f"/volumes/{vol['id']}?cascade=False&force=False"),
                           headers=h, timeout=30)
    assert deleted.status_code == 202 and deleted.content == b""
    again = httpx.delete(tenant.url(f"/volumes/{vol['id']}"), headers=h, timeout=30)
    assert again.status_code == 404


def test_other_project_cannot_see_volume(tenant: Tenant, vbs_server: RunningServer  # noqa: F811
                                         ) -> None:
    h = tenant.headers()
    vol = httpx.post(tenant.url("/volumes"), headers=h, json={"volume": {"size": 1}},
                     timeout=30).json()["volume"]
    admin = {"X-Auth-Token": vbs_server.token()}
    admin_pid = vbs_server.project_id(vbs_server.token())
    other = httpx.get(f"{vbs_server.base_url}/v3/{admin_pid}/volumes/{vol['id']}",
                      headers=admin, timeout=30)
    assert other.status_code == 404
    cross = httpx.get(tenant.url(f"/volumes/{vol['id']}"), headers=admin, timeout=30)
    assert cross.status_code == 400  # Cinder's "Malformed request url"
    assert httpx.delete(tenant.url(f"/volumes/{vol['id']}"), headers=h,
                        timeout=30).status_code == 202


# --------------------------------------------------------------------------- admin import


def test_admin_volume_import(tenant: Tenant, tmp_path: Path) -> None:
    server = tenant.server
    roots = tmp_path / "images"
    roots.mkdir()
    image = roots / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate(3 * GIB // 2)
        fh.seek(1000)
        fh.write(b"operator data")
    env = {"VBS_VOLUMES__IMPORT_ROOTS": str(roots)}
    done = run_cli("admin", "volume", "import", str(image), "--project", tenant.project,
                   "--name", "legacy", data_dir=server.data_dir, env=env)
    assert done.returncode == 0, done.stderr
    volume_id = done.stdout.strip()
    assert str(uuid.UUID(volume_id)) == volume_id

    shown = httpx.get(tenant.url(f"/volumes/{volume_id}"), headers=tenant.headers(),
                      timeout=30)
    assert shown.status_code == 200, shown.text
    assert shown.json()["volume"]["name"] == "legacy"
    assert shown.json()["volume"]["size"] == 2  # 1.5 GiB rounds up
    listed = run_cli("admin", "volume", "list", "--project", tenant.project,
                     data_dir=server.data_dir)
    assert listed.returncode == 0 and volume_id in listed.stdout and str(image) in listed.stdout

    outside = tmp_path / "outside.raw"
    outside.write_bytes(b"x" * 4096)
    refused = run_cli("admin", "volume", "import", str(outside), "--project", tenant.project,
                      data_dir=server.data_dir, env=env)
    assert refused.returncode == 1
    assert "not inside any allowed import root" in refused.stderr
    assert str(roots) in refused.stderr

    twice = run_cli("admin", "volume", "import", str(image), "--project", tenant.project,
                    data_dir=server.data_dir, env=env)
    assert twice.returncode == 1 and "already imported" in twice.stderr

    deleted = httpx.delete(tenant.url(f"/volumes/{volume_id}"), headers=tenant.headers(),
                           timeout=30)
    assert deleted.status_code == 202
    assert image.read_bytes()[1000:1013] == b"operator data"  # unregistered, never deleted
