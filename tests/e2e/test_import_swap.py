"""Imported volumes are never opened through a swapped path (issue 8, item 2).

The probe: import ``root/disk.img``, then replace it with a symlink to a file
outside the import roots (or replace a directory on the way). Before the
fix, a backup read the outside file and a restore overwrote it. Now the job
FAILs naming the reason, the volume goes to ``error``, and the outside file
is neither read into the repository nor written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import ProjectClient
from tests.support.server import RunningServer, run_cli, start_server

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("import-swap"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def world(server: RunningServer, tmp_path: Path
          ) -> Iterator[tuple[RunningServer, ProjectClient, Path, Path]]:
    """A fresh import root (``tmp_path/roots``, holding ``dir/``) and an outside dir."""
    roots = tmp_path / "roots"
    outside = tmp_path / "outside"
    (roots / "dir").mkdir(parents=True)
    outside.mkdir()
    yield server, ProjectClient(server), roots, outside


def _image(path: Path, fill: bytes) -> str:
    with open(path, "wb") as f:
        f.write(fill * (4 * MIB // len(fill)))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import(srv: RunningServer, client: ProjectClient, path: Path) -> str:
    roots = str(path.parent.parent)
    r = run_cli("admin", "volume", "import", str(path), "--project", "admin", "--name", "imp",
                data_dir=srv.data_dir, env={"VBS_VOLUMES__IMPORT_ROOTS": roots})
    assert r.returncode == 0, r.stderr
    vid = r.stdout.strip().split()[-1]
    assert client("GET", f"/v3/{{p}}/volumes/{vid}").status_code == 200, r.stdout
    return vid


def _status(client: ProjectClient, vid: str) -> str:
    return str(client("GET", f"/v3/{{p}}/volumes/{vid}").json()["volume"]["status"])


def _backup(client: ProjectClient, vid: str) -> dict[str, object]:
    r = client("POST", "/v2/{p}/cloudbackups", json={"backup": {"volume_id": vid, "name": "b"}})
    assert r.status_code == 200, r.text
    return client.wait_job(r.json()["job_id"])


@pytest.mark.parametrize("swap", ["file-symlink", "dir-symlink", "other-inode"])
def test_backup_of_swapped_import_fails_and_reads_nothing_outside(
        world: tuple[RunningServer, ProjectClient, Path, Path], swap: str) -> None:
    srv, client, roots, outside = world
    disk = roots / "dir" / "disk.img"
    _image(disk, b"inside--")
    vid = _import(srv, client, disk)
    secret = outside / "disk.img"
    _image(secret, b"SECRET!!")
    if swap == "file-symlink":
        disk.unlink()
        disk.symlink_to(secret)
    elif swap == "dir-symlink":
        (roots / "dir").rename(roots / "old")
        (roots / "dir").symlink_to(outside)
    else:
        _image(roots / "dir" / "new.img", b"replaced")  # made while the old one exists,
        os.replace(roots / "dir" / "new.img", disk)  # so it is another inode
    job = _backup(client, vid)
    assert job["status"] == "FAIL", job
    assert "imported" in str(job["fail_reason"]), job
    assert _status(client, vid) == "error"
    backups = client("GET", "/v3/{p}/backups/detail").json()["backups"]
    mine = [b["status"] for b in backups if b["volume_id"] == vid]
    assert mine == ["error"]


def test_restore_into_swapped_import_fails_and_writes_nothing_outside(
        world: tuple[RunningServer, ProjectClient, Path, Path]) -> None:
    srv, client, roots, outside = world
    disk = roots / "dir" / "disk.img"
    _image(disk, b"inside--")
    vid = _import(srv, client, disk)
    job = _backup(client, vid)
    assert job["status"] == "SUCCESS", job
    backup_id = str(job["entities"]["backup_id"])
    secret = outside / "victim"
    digest = _image(secret, b"precious")
    disk.unlink()
    disk.symlink_to(secret)
    r = client("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
               json={"restore": {"volume_id": vid}})
    assert r.status_code == 200, r.text
    job = client.wait_job(r.json()["job_id"])
    assert job["status"] == "FAIL", job
    assert "symbolic link" in str(job["fail_reason"]), job
    assert hashlib.sha256(secret.read_bytes()).hexdigest() == digest
    assert _status(client, vid) == "error"
    backup = client("GET", f"/v3/{{p}}/backups/{backup_id}").json()["backup"]
    assert backup["status"] == "available"


def test_unswapped_import_still_backs_up_and_restores(
        world: tuple[RunningServer, ProjectClient, Path, Path]) -> None:
    srv, client, roots, _ = world
    disk = roots / "dir" / "disk.img"
    digest = _image(disk, b"inside--")
    vid = _import(srv, client, disk)
    job = _backup(client, vid)
    assert job["status"] == "SUCCESS", job
    with open(disk, "r+b") as f:
        f.write(os.urandom(MIB))
    r = client("POST", f"/v2/{{p}}/cloudbackups/{job['entities']['backup_id']}/restore",
               json={"restore": {"volume_id": vid}})
    assert client.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == digest
