"""Backup exports through a real ``vbs serve``: the API, the NBD server it runs,
real NBD clients, projects that must not see each other's exports."""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import ProjectClient
from tests.support.nbd_client import NbdClient, NbdError
from tests.support.server import (
    _DB_PARAMS,
    RunningServer,
    _make_url,
    _PgDatabases,
    run_cli,
    start_server,
)
from tests.support.volumes import MIB, content_digest

pytestmark = pytest.mark.skipif(not (shutil.which("nbdinfo") and shutil.which("nbdcopy")),
                                reason="nbdinfo/nbdcopy (libnbd-bin) missing")
GIB = 1024 * MIB


class Client(ProjectClient):
    def export(self, backup_id: str, **body: Any) -> httpx.Response:
        return self("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/exports",
                    json={"export": {"protocol": "nbd", **body}})

    def exported(self, backup_id: str, **body: Any) -> dict[str, Any]:
        r = self.export(backup_id, **body)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()["export"]
        return doc

    def end(self, backup_id: str, export_id: str) -> None:
        r = self("DELETE", f"/v2/{{p}}/cloudbackups/{backup_id}/exports/{export_id}")
        assert r.status_code == 204, r.text


def _project_user(server: RunningServer, name: str, db_url: str | None) -> Client:
    env = {"VBS_DATABASE__URL": db_url} if db_url else None
    r = run_cli("admin", "project", "create", name, data_dir=server.data_dir, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("admin", "user", "create", f"{name}-user", "--password", "pw-" + name,
                "--project", name, data_dir=server.data_dir, env=env)
    assert r.returncode == 0, r.stderr
    return Client(server, f"{name}-user", "pw-" + name, name)


@pytest.fixture(scope="module", params=_DB_PARAMS)
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client, Client]]:
    """Owner, recipient and stranger projects on one server; SQLite and PostgreSQL
    (the export/delete race guard is a row lock there)."""
    pg = _PgDatabases()
    tmp = tmp_path_factory.mktemp("exports")
    try:
        url = None if request.param == "sqlite" else _make_url(request.param, tmp, pg)
        server = start_server(tmp, database_url=url, env={"VBS_EXPORTS__MAX_PER_PROJECT": "3"})
        try:
            yield (_project_user(server, "owner", url), _project_user(server, "recipient", url),
                   Client(server))
        finally:
            server.stop()
    finally:
        pg.drop_all()


def _scribble(path: Path, seed: int, count: int = 40) -> None:
    rng = random.Random(seed)
    with path.open("r+b") as f:
        for _ in range(count):
            f.seek(rng.randrange(0, GIB - MIB))
            f.write(rng.randbytes(rng.choice([4096, 65536, 300_000])))


def _error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


def _copy(uri: str, out: Path) -> str:
    subprocess.run(["nbdcopy", uri, str(out)], check=True, timeout=120)
    return content_digest(out)


def test_full_and_incremental_export_equal_the_volume(
        world: tuple[Client, Client, Client], tmp_path: Path) -> None:
    owner = world[0]
    vol = owner.volume("exported")
    path = owner.volume_file(vol)
    _scribble(path, 1)
    want_full = content_digest(path)
    full = owner.backup(vol)
    _scribble(path, 2, 10)
    want_incr = content_digest(path)
    incr = owner.backup(vol)
    e_full = owner.exported(full)
    e_incr = owner.exported(incr)
    assert set(e_full) >= {"id", "uri", "expires_at", "writable"}
    assert e_full["writable"] is False and e_full["uri"].startswith("nbd://127.0.0.1:")
    size = subprocess.run(["nbdinfo", "--size", e_incr["uri"]], capture_output=True, text=True,
                          check=True).stdout
    assert int(size) == GIB
    assert _copy(e_full["uri"], tmp_path / "full.img") == want_full
    assert _copy(e_incr["uri"], tmp_path / "incr.img") == want_incr
    listed = owner("GET", f"/v2/{{p}}/cloudbackups/{full}/exports").json()["exports"]
    assert [e["id"] for e in listed] == [e_full["id"]]
    shown = owner("GET", f"/v2/{{p}}/cloudbackups/{full}/exports/{e_full['id']}")
    assert shown.status_code == 200 and shown.json()["export"] == e_full
    owner.end(full, e_full["id"])
    owner.end(incr, e_incr["id"])
    r = subprocess.run(["nbdinfo", "--size", e_full["uri"]], capture_output=True, text=True)
    assert r.returncode != 0  # ended: the name no longer opens
    _error(owner("GET", f"/v2/{{p}}/cloudbackups/{full}/exports/{e_full['id']}"), 404,
           "VolumeBackup.0110")


def test_a_backup_with_a_live_export_cannot_be_deleted(
        world: tuple[Client, Client, Client]) -> None:
    owner = world[0]
    vol = owner.volume("pinned")
    bid = owner.backup(vol)
    e = owner.exported(bid)
    _error(owner("POST", f"/v2/{{p}}/cloudbackups/{bid}"), 400, "VolumeBackup.0105")
    _error(owner("DELETE", f"/v2/{{p}}/cloudbackups/{bid}"), 400, "VolumeBackup.0105")
    r = owner("DELETE", f"/v3/{{p}}/backups/{bid}")
    assert r.status_code == 400 and "live export" in r.json()["badRequest"]["message"], r.text
    assert owner("GET", f"/v3/{{p}}/backups/{bid}").json()["backup"]["status"] == "available"
    owner.end(bid, e["id"])
    r = owner("POST", f"/v2/{{p}}/cloudbackups/{bid}")
    assert r.status_code == 200, r.text
    assert owner.wait_job(r.json()["job_id"])["status"] == "SUCCESS"


def test_other_projects_cannot_use_or_see_an_export(
        world: tuple[Client, Client, Client]) -> None:
    owner, recipient, stranger = world
    vol = owner.volume("private")
    bid = owner.backup(vol)
    e = owner.exported(bid)
    base = f"/v2/{{p}}/cloudbackups/{bid}/exports"
    _error(stranger.export(bid), 404, "VolumeBackup.0110")
    _error(stranger("GET", base), 404, "VolumeBackup.0110")
    _error(stranger("GET", f"{base}/{e['id']}"), 404, "VolumeBackup.0110")
    _error(stranger("DELETE", f"{base}/{e['id']}"), 404, "VolumeBackup.0110")
    _error(stranger("POST", f"{base}/{e['id']}/renew"), 404, "VolumeBackup.0110")
    # the owner's project in the path with the stranger's token: refused outright
    r = stranger.http.get(f"/v2/{owner.project}/cloudbackups/{bid}/exports")
    assert r.status_code == 403, r.text
    # a share grants read-and-restore, not a live export pinning the owner's backup
    r = owner("POST", "/v2/{p}/os-vendor-backup-sharing",
              json={"shared": {"backup_id": bid, "to_project_ids": [recipient.project]}})
    assert r.status_code == 200, r.text
    _error(recipient.export(bid), 403, "VolumeBackup.0042")
    assert recipient("GET", base).json() == {"exports": []}
    _error(recipient("GET", f"{base}/{e['id']}"), 404, "VolumeBackup.0110")
    with NbdClient(e["uri"]) as c:  # still served to whoever holds the URI
        assert c.size == GIB
    owner.end(bid, e["id"])


def test_bad_requests_change_nothing(world: tuple[Client, Client, Client]) -> None:
    owner = world[0]
    vol = owner.volume("bad")
    bid = owner.backup(vol)
    for body in ({"export": {"protocol": "iscsi"}}, {"export": {"writable": "yes"}},
                 {"export": {"expires_in": 0}}, {"export": {"colour": 1}}, {"exports": {}},
                 [1], {"export": {"expires_in": True}}):
        r = owner("POST", f"/v2/{{p}}/cloudbackups/{bid}/exports", json=body)
        _error(r, 400, "VolumeBackup.0002")
    r = owner("POST", f"/v2/{{p}}/cloudbackups/{bid}/exports", content=b"{nope")
    _error(r, 400, "VolumeBackup.0002")
    _error(owner.export("no-such-backup"), 404, "VolumeBackup.0110")
    assert owner("GET", f"/v2/{{p}}/cloudbackups/{bid}/exports").json() == {"exports": []}


def test_limit_renew_and_expiry(world: tuple[Client, Client, Client]) -> None:
    owner = world[0]
    vol = owner.volume("expiring")
    bid = owner.backup(vol)
    short = owner.exported(bid, expires_in=2)
    others = [owner.exported(bid) for _ in range(2)]
    _error(owner.export(bid), 400, "VolumeBackup.0040")  # max_per_project = 3
    r = owner("POST", f"/v2/{{p}}/cloudbackups/{bid}/exports/{others[0]['id']}/renew")
    assert r.status_code == 200 and r.json()["export"]["expires_at"] >= others[0]["expires_at"]
    c = NbdClient(short["uri"])
    assert len(c.pread(4096, 0)) == 4096
    time.sleep(2.5)
    _error(owner("GET", f"/v2/{{p}}/cloudbackups/{bid}/exports/{short['id']}"), 404,
           "VolumeBackup.0110")
    with pytest.raises((NbdError, OSError)):
        for _ in range(3):
            c.pread(4096, 0)
            time.sleep(0.6)
    c.sock.close()
    with pytest.raises(NbdError, match="refused"):
        NbdClient(short["uri"])
    owner.exported(bid)  # the expired one no longer counts
    for e in others:
        owner.end(bid, e["id"])


def test_writable_export_never_changes_the_backup(world: tuple[Client, Client, Client],
                                                  tmp_path: Path) -> None:
    owner = world[0]
    vol = owner.volume("cow")
    path = owner.volume_file(vol)
    _scribble(path, 9, 5)
    want = content_digest(path)
    bid = owner.backup(vol)
    e = owner.exported(bid, writable=True)
    assert e["writable"] is True
    junk = random.Random(4).randbytes(MIB)
    with NbdClient(e["uri"]) as c:
        assert not c.read_only
        c.pwrite(junk, 7 * MIB)
        c.flush()
        assert c.pread(MIB, 7 * MIB) == junk
    overlays = list((owner.server.data_dir / "exports").glob(f"{e['id']}.overlay*"))
    assert overlays, "writes go to the overlay in the data dir"
    owner.end(bid, e["id"])
    assert not list((owner.server.data_dir / "exports").glob(f"{e['id']}.overlay*"))
    target = owner.volume("cow-restored")
    r = owner("POST", f"/v2/{{p}}/cloudbackups/{bid}/restore",
              json={"restore": {"volume_id": target}})
    assert r.status_code == 200, r.text
    assert owner.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
    assert content_digest(owner.volume_file(target)) == want


def test_writable_export_becomes_a_new_volume(world: tuple[Client, Client, Client],
                                              tmp_path: Path) -> None:
    owner, _, stranger = world
    vol = owner.volume("to-volume")
    path = owner.volume_file(vol)
    _scribble(path, 21, 8)
    expected = tmp_path / "expected.img"
    subprocess.run(["cp", "--sparse=always", str(path), str(expected)], check=True)
    bid = owner.backup(vol)
    ro = owner.exported(bid)
    base = f"/v2/{{p}}/cloudbackups/{bid}/exports"
    _error(owner("POST", f"{base}/{ro['id']}/volume"), 400, "VolumeBackup.0002")  # read-only
    owner.end(bid, ro["id"])
    e = owner.exported(bid, writable=True)
    _error(owner("POST", f"{base}/{e['id']}/volume"), 400, "VolumeBackup.0002")  # no writes yet
    _error(owner("POST", f"{base}/{e['id']}/volume", json={"volume": {"size": 2}}), 400,
           "VolumeBackup.0002")
    _error(stranger("POST", f"{base}/{e['id']}/volume"), 404, "VolumeBackup.0110")
    junk = random.Random(8).randbytes(300_000)
    with NbdClient(e["uri"]) as c:
        c.pwrite(junk, 123_457)
        c.flush()
    r = owner("POST", f"{base}/{e['id']}/volume", json={"volume": {"name": "from-export"}})
    assert r.status_code == 200, r.text
    new = r.json()["volume"]
    assert new["status"] == "available" and new["name"] == "from-export"
    with expected.open("r+b") as f:
        f.seek(123_457)
        f.write(junk)
    assert content_digest(owner.volume_file(new["id"])) == content_digest(expected)
    _error(owner("GET", f"{base}/{e['id']}"), 404, "VolumeBackup.0110")  # the export ended
    assert not list((owner.server.data_dir / "exports").glob(f"{e['id']}.overlay*"))
    shown = owner("GET", f"/v3/{{p}}/volumes/{new['id']}").json()["volume"]
    assert shown["status"] == "available" and shown["size"] == 1
