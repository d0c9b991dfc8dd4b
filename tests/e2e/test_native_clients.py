"""Native backups driven by the stock clients (openstack-compat §7, §8.1).

python-cinderclient 9.10 (``client.Client("3.64", session=...)``) and
openstacksdk 4.22 log in with a password through the server's own
``/identity/v3`` and find the API in the catalog; nothing is mocked.
Restores are compared byte for byte with the source volume file
(``DATA_DIR/volumes/<id>.img``). Each test has its own project.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import RunningServer, start_server
from tests.support.volumes import MIB, file_sha256, make_volume

UNKNOWN = "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60"
WAIT = 120.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("native-clients"))
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Login:
    server: RunningServer
    user: str
    password: str
    project: str

    def session(self) -> Any:
        return self.server.keystone_session(self.user, self.password, self.project)

    def volume_file(self, volume_id: str) -> Path:
        return self.server.data_dir / "volumes" / f"{volume_id}.img"


def _cli(server: RunningServer, *args: str) -> str:
    proc = server.cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def member(server: RunningServer) -> Login:
    name = f"nc-{uuid.uuid4().hex[:10]}"
    _cli(server, "admin", "project", "create", name)
    _cli(server, "admin", "user", "create", name, "--password", "pw-" + name,
         "--project", name, "--role", "member")
    return Login(server, name, "pw-" + name, name)


@pytest.fixture
def admin(server: RunningServer) -> Login:
    return Login(server, server.admin_user, server.admin_password, server.admin_project)


def fill(path: Path, seed: int) -> str:
    """Overwrite the start of a volume file with mixed content; its sha256."""
    tmp = path.with_suffix(".gen")
    make_volume(tmp, 8 * MIB, seed=seed)
    with open(path, "r+b") as dst, open(tmp, "rb") as src:
        dst.write(src.read())
    tmp.unlink()
    return file_sha256(path)


def until(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` until it returns something truthy (a deadline, not a timing
    assertion)."""
    deadline = time.monotonic() + WAIT
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


# --------------------------------------------------------------------------- cinderclient


def _cinder(login: Login) -> Any:
    from cinderclient import client

    return client.Client("3.64", session=login.session())


def _cc_settled(cinder: Any, backup_id: str) -> Any:
    def check() -> Any:
        b = cinder.backups.get(backup_id)
        return b if b.status not in ("creating", "restoring") else None

    return until(check, f"backup {backup_id}")


def _cc_volume_ready(cinder: Any, volume_id: str) -> Any:
    return until(lambda: (v := cinder.volumes.get(volume_id)).status == "available" and v,
                 f"volume {volume_id}")


def _cc_gone(cinder: Any, backup_id: str) -> None:
    from cinderclient import exceptions

    def check() -> bool:
        try:
            cinder.backups.get(backup_id)
        except exceptions.NotFound:
            return True
        return False

    until(check, f"backup {backup_id} deleted")


def test_cinderclient_backup_lifecycle_and_restores(member: Login) -> None:
    from cinderclient import exceptions, utils

    cinder = _cinder(member)
    vol = cinder.volumes.create(size=1, name="cc-src")
    digest = fill(member.volume_file(vol.id), seed=21)
    made = cinder.backups.create(vol.id, name="cc-b1", description="first",
                                 metadata={"owner": "ci"})
    assert made.name == "cc-b1"
    b = _cc_settled(cinder, made.id)
    assert (b.status, b.volume_id, b.size, b.metadata) == ("available", vol.id, 1,
                                                           {"owner": "ci"})
    assert b.is_incremental is False
    # name lookups (GET /backups/cc-b1 -> 404, then the list by name)
    assert utils.find_resource(cinder.backups, "cc-b1").id == b.id
    assert utils.find_resource(cinder.backups, b.id).id == b.id
    with pytest.raises(exceptions.CommandError):
        utils.find_resource(cinder.backups, "no-such-backup")
    # update (>= 3.9)
    cinder.backups.update(b, name="cc-renamed", description="changed")
    b = cinder.backups.get(b.id)
    assert (b.name, b.description) == ("cc-renamed", "changed")
    # restore into an existing volume
    target = cinder.volumes.create(size=1, name="cc-target")
    r = cinder.restores.restore(b.id, volume_id=target.id)
    assert (r.backup_id, r.volume_id, r.volume_name) == (b.id, target.id, "cc-target")
    _cc_settled(cinder, b.id)
    _cc_volume_ready(cinder, target.id)
    assert file_sha256(member.volume_file(target.id)) == digest
    # restore into a new volume, named and unnamed (cinderclient sends nulls)
    for name, expected in (("cc-new", "cc-new"), (None, f"restore_backup_{b.id}")):
        r = cinder.restores.restore(b.id, name=name)
        assert r.volume_name == expected
        _cc_settled(cinder, b.id)
        new = _cc_volume_ready(cinder, r.volume_id)
        assert (new.size, new.name) == (1, expected)
        assert file_sha256(member.volume_file(r.volume_id)) == digest
    # errors
    with pytest.raises(exceptions.NotFound):
        cinder.backups.get(UNKNOWN)
    with pytest.raises(exceptions.NotFound):
        cinder.backups.create(UNKNOWN, name="nope")
    with pytest.raises(exceptions.BadRequest):
        cinder.restores.restore(b.id, volume_id="not-a-uuid")
    with pytest.raises(exceptions.Forbidden):
        cinder.backups.reset_state(b, "error")
    with pytest.raises(exceptions.Forbidden):
        cinder.backups.delete(b, force=True)
    cinder.backups.delete(b)
    _cc_gone(cinder, b.id)
    with pytest.raises(exceptions.NotFound):
        cinder.backups.delete(b.id)


def test_cinderclient_lists_filters_pages_sort(member: Login) -> None:
    cinder = _cinder(member)
    vols = [cinder.volumes.create(size=1, name=f"cc-l{i}") for i in range(2)]
    ids = []
    for i in range(5):
        ids.append(cinder.backups.create(vols[i % 2].id, name=f"cc-page-{i}").id)
        _cc_settled(cinder, ids[-1])
    assert [b.id for b in cinder.backups.list()] == ids[::-1]  # created_at desc
    summary = cinder.backups.list(detailed=False, sort="name:asc")
    assert [b.id for b in summary] == ids
    assert not hasattr(summary[0], "status")
    assert [b.id for b in cinder.backups.list(search_opts={"name": "cc-page-3"})] == [ids[3]]
    by_volume = cinder.backups.list(search_opts={"volume_id": vols[1].id}, sort="name:asc")
    assert [b.id for b in by_volume] == [ids[1], ids[3]]
    assert [b.id for b in cinder.backups.list(search_opts={"status": "error"})] == []
    first = cinder.backups.list(limit=2, sort="name:asc")
    assert [b.id for b in first] == ids[:2]
    rest = cinder.backups.list(marker=ids[1], limit=10, sort="name:desc")
    assert [b.id for b in rest] == [ids[0]]
    rest = cinder.backups.list(marker=ids[1], sort="name:asc")
    assert [b.id for b in rest] == ids[2:]


def test_cinderclient_admin_reset_state_and_force_delete(admin: Login) -> None:
    from cinderclient import exceptions

    cinder = _cinder(admin)
    vol = cinder.volumes.create(size=1, name="cc-admin")
    b = _cc_settled(cinder, cinder.backups.create(vol.id, name="cc-admin").id)
    cinder.backups.reset_state(b, "error")
    assert cinder.backups.get(b.id).status == "error"
    with pytest.raises(exceptions.BadRequest):
        cinder.backups.reset_state(b, "creating")
    with pytest.raises(exceptions.BadRequest):
        cinder.restores.restore(b.id, volume_id=vol.id)
    cinder.backups.delete(b, force=True)
    _cc_gone(cinder, b.id)


# --------------------------------------------------------------------------- openstacksdk


def _connect(login: Login) -> Any:
    import openstack

    return openstack.connect(
        auth_url=login.server.auth_url, username=login.user, password=login.password,
        user_domain_name="Default", project_name=login.project,
        project_domain_name="Default", region_name="RegionOne",
        load_yaml_config=False, load_envvars=False,
    )


@pytest.fixture
def sdk(member: Login) -> Iterator[Any]:
    conn = _connect(member)
    try:
        yield conn
    finally:
        conn.close()


def _sdk_wait(bs: Any, res: Any, status: str = "available") -> Any:
    return bs.wait_for_status(res, status=status, failures=["error", "error_restoring"],
                              interval=0.1, wait=int(WAIT))


def test_openstacksdk_backup_lifecycle(sdk: Any, member: Login) -> None:
    from openstack import exceptions

    bs = sdk.block_storage
    vol = _sdk_wait(bs, bs.create_volume(size=1, name="sdk-src"))
    digest = fill(member.volume_file(vol.id), seed=31)
    b = _sdk_wait(bs, bs.create_backup(volume_id=vol.id, name="sdk-b1", description="d"))
    assert (b.volume_id, b.size, b.name) == (vol.id, 1, "sdk-b1")
    assert bs.get_backup(b.id).status == "available"
    assert bs.find_backup("sdk-b1").id == b.id  # GET by name -> 404 -> list by name
    assert bs.find_backup(b.id).id == b.id
    assert bs.find_backup("sdk-missing") is None
    with pytest.raises(exceptions.NotFoundException):
        bs.find_backup("sdk-missing", ignore_missing=False)
    # restore into an existing volume
    target = _sdk_wait(bs, bs.create_volume(size=1, name="sdk-target"))
    bs.restore_backup(b, volume=target.id)
    _sdk_wait(bs, bs.get_backup(b.id))
    _sdk_wait(bs, bs.get_volume(target.id))
    assert file_sha256(member.volume_file(target.id)) == digest
    # restore into a new volume by name
    restored = bs.restore_backup(bs.get_backup(b.id), name="sdk-new")
    new_id = restored.volume_id
    assert new_id not in (vol.id, target.id)
    _sdk_wait(bs, bs.get_backup(b.id))
    new = _sdk_wait(bs, bs.get_volume(new_id))
    assert (new.name, new.size) == ("sdk-new", 1)
    assert file_sha256(member.volume_file(new_id)) == digest
    # errors and delete
    with pytest.raises(exceptions.NotFoundException):
        bs.get_backup(UNKNOWN)
    with pytest.raises(exceptions.BadRequestException):
        bs.restore_backup(b, volume="not-a-uuid")
    with pytest.raises(exceptions.ForbiddenException):
        bs.reset_backup_status(b, "error")
    bs.delete_backup(b)
    bs.wait_for_delete(b, interval=0.1, wait=int(WAIT))
    bs.delete_backup(b.id)  # ignore_missing: the 404 is success
    with pytest.raises(exceptions.NotFoundException):
        bs.delete_backup(b.id, ignore_missing=False)


def test_openstacksdk_pages_through_everything(sdk: Any) -> None:
    bs = sdk.block_storage
    vol = _sdk_wait(bs, bs.create_volume(size=1, name="sdk-pages"))
    ids = [_sdk_wait(bs, bs.create_backup(volume_id=vol.id, name=f"sdk-p{i}",
                                          is_incremental=i > 0)).id
           for i in range(5)]
    paged = [b.id for b in bs.backups(details=True, limit=2)]
    assert paged == ids[::-1]
    assert [b.id for b in bs.backups(details=False, limit=2, sort="name:asc")] == ids
    assert [b.id for b in bs.backups(name="sdk-p2")] == [ids[2]]
    assert [b.name for b in bs.backups(details=True, volume_id=vol.id, status="available",
                                       sort_key="name", sort_dir="desc")] == [
        f"sdk-p{i}" for i in reversed(range(5))]
    detailed = list(bs.backups(details=True, limit=3))  # newest first, all pages
    assert {b.status for b in detailed} == {"available"}
    assert [b.is_incremental for b in detailed] == [True] * 4 + [False]  # the first is full


def test_openstacksdk_admin_reset_and_force_delete(admin: Login) -> None:
    conn = _connect(admin)
    try:
        bs = conn.block_storage
        vol = _sdk_wait(bs, bs.create_volume(size=1, name="sdk-admin"))
        b = _sdk_wait(bs, bs.create_backup(volume_id=vol.id, name="sdk-admin"))
        bs.reset_backup_status(b, "error")  # sent at microversion 3.64
        assert bs.get_backup(b.id).status == "error"
        bs.delete_backup(b, force=True)
        bs.wait_for_delete(b, interval=0.1, wait=int(WAIT))
    finally:
        conn.close()
