"""Changed-block tracking through the service, on a real reflink XFS.

The volume store of a real server lives on an XFS filesystem made with
``mkfs.xfs -m reflink=1`` in a loop-mounted sparse image. Backups take
reflink snapshots; each incremental diffs its snapshot against the volume's
base with FIEMAP and reads only the changed chunks plus the guard sample.
Assertions use the engine's own counters (reported in the job entities and
the native vendor attributes), never timings; every backup of the chain is
restored and compared byte for byte.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import sqlite3
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import ProjectClient, project_user
from tests.support.server import RunningServer, run_cli, start_server
from tests.support.volumes import KIB, MIB, content_digest
from tests.support.xfs import mount_xfs

GIB = 1024 * MIB
CS = 64 * KIB
FICLONERANGE = 0x4020940D
VENDOR = "os-vbs-backup-attr:"


class Client(ProjectClient):
    def backup(self, volume_id: str, name: str, *, full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"backup": {"volume_id": volume_id, "name": name}}
        if full:
            body["backup"]["extend_param"] = {"FullBackup": "true"}
        r = self("POST", "/v2/{p}/cloudbackups", json=body)
        assert r.status_code == 200, r.text
        job = self.wait_job(r.json()["job_id"], timeout=600)
        assert job["status"] == "SUCCESS", job
        return job

    def restore_digest(self, backup_id: str, size_gb: int, vroot: Path) -> str:
        target = self.volume(f"r-{backup_id[:8]}", size_gb)
        r = self("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                 json={"restore": {"volume_id": target}})
        assert r.status_code == 200, r.text
        job = self.wait_job(r.json()["job_id"], timeout=600)
        assert job["status"] == "SUCCESS", job
        digest = content_digest(vroot / f"{target}.img")
        r = self("DELETE", f"/v3/{{p}}/volumes/{target}")
        assert r.status_code == 202, r.text
        return digest

    def delete_backup(self, backup_id: str) -> None:
        r = self("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
        assert r.status_code == 200, r.text
        assert self.wait_job(r.json()["job_id"])["status"] == "SUCCESS"

    def changed(self, backup_id: str, **params: Any) -> httpx.Response:
        return self("GET", f"/v2/{{p}}/cloudbackups/{backup_id}/changed_blocks", params=params)


@dataclass
class World:
    server: RunningServer
    owner: Client
    vroot: Path


def _project_user(server: RunningServer, name: str) -> Client:
    return project_user(server, name, Client)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("cbt")
    with mount_xfs(base, "16G") as mnt:
        vroot = mnt / "volumes"
        server = start_server(base, env={"VBS_VOLUMES__ROOT": str(vroot)})
        try:
            yield World(server, Client(server), vroot)
        finally:
            server.stop()


def _write(path: Path, parts: list[tuple[int, bytes]]) -> None:
    with open(path, "r+b") as f:
        for off, data in parts:
            f.seek(off)
            f.write(data)
        os.fsync(f.fileno())


def _chunks(ranges: list[tuple[int, int]]) -> set[int]:
    out: set[int] = set()
    for off, length in ranges:
        out |= set(range(off // CS, (off + length - 1) // CS + 1))
    return out


def _runs(chunks: set[int], size: int) -> list[dict[str, int]]:
    out: list[dict[str, int]] = []
    for c in sorted(chunks):
        if out and out[-1]["offset"] + out[-1]["length"] == c * CS:
            out[-1]["length"] += CS
        else:
            out.append({"offset": c * CS, "length": CS})
    if out and out[-1]["offset"] + out[-1]["length"] > size:
        out[-1]["length"] = size - out[-1]["offset"]
    return out


def _ent(job: dict[str, Any], key: str) -> int:
    return int(job["entities"][key])


def _snapshot_files(vroot: Path) -> list[str]:
    return sorted(p.name for p in (vroot / "snapshots").glob("*.img"))


@pytest.mark.slow
def test_chain_reads_only_changed_chunks_and_restores_exactly(world: World) -> None:
    api, vroot = world.owner, world.vroot
    size = 2 * GIB
    vol = api.volume("cbt", 2)
    path = vroot / f"{vol}.img"
    rng = random.Random(9)
    _write(path, [(rng.randrange(0, size - MIB, 4096), rng.randbytes(MIB)) for _ in range(48)])
    digests = [content_digest(path)]
    job = api.backup(vol, "full")
    assert job["entities"]["change_tracking"] == "none"
    assert _ent(job, "bytes_read") > 0
    ids = [job["entities"]["backup_id"]]
    assert len(_snapshot_files(vroot)) == 1  # the base is kept

    # 1. scattered 64 KiB writes (chunk-aligned and not) and one large rewritten region
    writes = [(rng.randrange(0, size // CS) * CS, CS) for _ in range(20)]
    writes += [(rng.randrange(0, (size - CS) // 4096) * 4096 + 4096, CS) for _ in range(20)]
    writes.append((700 * MIB, 48 * MIB))
    _write(path, [(o, rng.randbytes(n)) for o, n in writes])
    want = _chunks(writes)
    digests.append(content_digest(path))
    job = api.backup(vol, "incr1")
    ids.append(job["entities"]["backup_id"])
    assert job["entities"]["change_tracking"] == "fiemap", job
    assert _ent(job, "chunks_changed") == len(want)
    sampled = _ent(job, "chunks_sampled")
    assert sampled >= max(16, int(0.005 * (size // CS - len(want))))
    assert len(want) * CS <= _ent(job, "bytes_read") <= (len(want) + sampled) * CS
    assert "guard" not in job["entities"]
    blocks = api.changed(ids[1], base_backup_id=ids[0])
    assert blocks.status_code == 200, blocks.text
    assert blocks.json() == {"changed_blocks": _runs(want, size), "block_size": CS,
                             "volume_size": size, "next_marker": None}
    shown = api("GET", f"/v3/{{p}}/backups/{ids[1]}").json()["backup"]
    assert shown[VENDOR + "change_tracking"] == "fiemap"
    assert shown[VENDOR + "bytes_read"] == _ent(job, "bytes_read")
    assert shown[VENDOR + "chunks_sampled"] == sampled
    assert shown[VENDOR + "bytes_new"] == _ent(job, "bytes_new") > 0

    # 2. punch a hole into data, fill a hole
    punched = (710 * MIB, 4 * MIB)  # inside the rewritten region: data for sure
    subprocess.run(["fallocate", "-p", "-o", str(punched[0]), "-l", str(punched[1]), str(path)],
                   check=True)
    _write(path, [(1500 * MIB, b"\x5a" * (3 * CS + 123))])
    want = _chunks([punched, (1500 * MIB, 3 * CS + 123)])
    digests.append(content_digest(path))
    job = api.backup(vol, "holes")
    ids.append(job["entities"]["backup_id"])
    assert job["entities"]["change_tracking"] == "fiemap"
    assert _ent(job, "chunks_changed") == len(want)

    # 3. rewrite the whole volume: everything changes
    block = rng.randbytes(MIB)
    with open(path, "r+b") as f:
        for _ in range(0, size, MIB):
            f.write(block)
        os.fsync(f.fileno())
    digests.append(content_digest(path))
    job = api.backup(vol, "rewrite")
    ids.append(job["entities"]["backup_id"])
    assert job["entities"]["change_tracking"] == "fiemap"
    assert _ent(job, "chunks_changed") == size // CS
    assert _ent(job, "chunks_sampled") == 0
    assert _ent(job, "bytes_read") == size

    # every backup of the chain restores byte for byte
    for backup_id, digest in zip(ids[:3], digests[:3], strict=True):
        assert api.restore_digest(backup_id, 2, vroot) == digest

    # delete the middle backup, restore the last
    api.delete_backup(ids[2])
    assert api.restore_digest(ids[3], 2, vroot) == digests[3]

    # unchanged: nothing but the sample is read; equal backups have no changed blocks
    job = api.backup(vol, "same")
    same = job["entities"]["backup_id"]
    assert job["entities"]["change_tracking"] == "fiemap"
    assert _ent(job, "chunks_changed") == 0
    assert _ent(job, "bytes_read") == _ent(job, "chunks_sampled") * CS
    assert api.changed(same, base_backup_id=ids[3]).json()["changed_blocks"] == []

    # a forced mark (as after a guard mismatch) makes the next backup a full read, once
    with sqlite3.connect(world.server.data_dir / "vbs.db") as db:
        db.execute("UPDATE volumes SET cbt_full_next = 1 WHERE id = ?", (vol,))
    job = api.backup(vol, "after-mark")
    assert job["entities"]["change_tracking"] == "none"
    assert _ent(job, "bytes_read") == size
    job = api.backup(vol, "after-full")
    last = job["entities"]["backup_id"]
    assert job["entities"]["change_tracking"] == "fiemap"

    # deleting the backup whose base it is releases the base: the next one reads all
    assert len(_snapshot_files(vroot)) == 1
    api.delete_backup(last)
    assert _snapshot_files(vroot) == []
    job = api.backup(vol, "no-base")
    assert job["entities"]["change_tracking"] == "none"
    assert len(_snapshot_files(vroot)) == 1

    # the base never blocks deleting the volume, and goes with it
    r = api("DELETE", f"/v3/{{p}}/volumes/{vol}")
    assert r.status_code == 202, r.text
    assert _snapshot_files(vroot) == []


@pytest.mark.slow
def test_changed_blocks_api_pages_errors_and_sharing(world: World) -> None:
    api, vroot = world.owner, world.vroot
    size = 1 * GIB
    vol = api.volume("api", 1)
    path = vroot / f"{vol}.img"
    _write(path, [(0, os.urandom(8 * MIB))])
    first = api.backup(vol, "a")["entities"]["backup_id"]
    writes = [(i * 37 * MIB + 5 * KIB, 10 * KIB) for i in range(12)] + [(size - 100, 100)]
    _write(path, [(o, os.urandom(n)) for o, n in writes])
    second = api.backup(vol, "b")["entities"]["backup_id"]
    want = _runs(_chunks(writes), size)
    assert api.changed(second, base_backup_id=first).json()["changed_blocks"] == want
    # the diff is symmetric in its ranges
    assert api.changed(first, base_backup_id=second).json()["changed_blocks"] == want
    # paging: limit and marker walk the same list
    got: list[dict[str, int]] = []
    marker: int | None = 0
    pages = 0
    while marker is not None:
        page = api.changed(second, base_backup_id=first, limit=5, marker=marker).json()
        assert len(page["changed_blocks"]) <= 5
        got += page["changed_blocks"]
        marker = page["next_marker"]
        pages += 1
    assert got == want and pages == 3
    # a marker inside a range starts there
    mid = want[0]["offset"] + 4096
    page = api.changed(second, base_backup_id=first, marker=mid).json()
    assert page["changed_blocks"][0] == {"offset": mid, "length": want[0]["length"] - 4096}
    assert api.changed(second, base_backup_id=second).json()["changed_blocks"] == []

    # errors: ext-error bodies, never 500
    def code(r: httpx.Response, status: int, value: str) -> None:
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == value

    unknown = "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60"
    code(api.changed(unknown, base_backup_id=first), 404, "VolumeBackup.0110")
    code(api.changed(second, base_backup_id=unknown), 404, "VolumeBackup.0110")
    code(api.changed(second), 400, "VolumeBackup.0301")
    for bad in ({"limit": "0"}, {"limit": "x"}, {"marker": "-1"}, {"marker": str(size + 1)}):
        code(api.changed(second, base_backup_id=first, **bad), 400, "VolumeBackup.0301")
    other = api.volume("other", 1)
    _write(vroot / f"{other}.img", [(0, b"x" * CS)])
    other_backup = api.backup(other, "o")["entities"]["backup_id"]
    code(api.changed(second, base_backup_id=other_backup), 400, "VolumeBackup.0302")

    # a share recipient may read what it sees; a stranger sees nothing
    friend = _project_user(world.server, "cbt-friend")
    stranger = _project_user(world.server, "cbt-stranger")
    for b in (first, second):
        r = api("POST", "/v2/{p}/os-vendor-backup-sharing",
                json={"shared": {"backup_id": b, "to_project_ids": [friend.project]}})
        assert r.status_code == 200, r.text
    assert friend.changed(second, base_backup_id=first).json()["changed_blocks"] == want
    code(stranger.changed(second, base_backup_id=first), 404, "VolumeBackup.0110")
    r = httpx.get(f"{world.server.base_url}/v2/{api.project}/cloudbackups/{second}/changed_blocks",
                  params={"base_backup_id": first})
    assert r.status_code == 401

    # the client: vbs backup diff pages through everything; show names the vendor attributes
    srv = world.server
    env = {"OS_AUTH_URL": srv.auth_url, "OS_USERNAME": srv.admin_user,
           "OS_PASSWORD": srv.admin_password, "OS_PROJECT_NAME": srv.admin_project}
    p = run_cli("backup", "diff", first, second, "--json", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["changed_blocks"] == want
    p = run_cli("backup", "show", second, "--json", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[VENDOR + "change_tracking"] == "fiemap"
    p = run_cli("backup", "show", second, env=env)
    assert "change_tracking" in p.stdout and "fiemap" in p.stdout and VENDOR not in p.stdout


@pytest.mark.slow
def test_one_tib_sparse_volume_reads_only_data_then_only_the_sample(world: World) -> None:
    api, vroot = world.owner, world.vroot
    vol = api.volume("huge", 1024)
    path = vroot / f"{vol}.img"
    seed = vroot / "seed.bin"
    seed.write_bytes(os.urandom(64 * MIB))
    # 2 GiB of data in the 1 TiB volume, without writing it: reflink the seed 32 times
    src = os.open(seed, os.O_RDONLY)
    dst = os.open(path, os.O_WRONLY)
    try:
        for i in range(32):
            fcntl.ioctl(dst, FICLONERANGE, struct.pack("qQQQ", src, 0, 64 * MIB, i * 32 * GIB))
        os.fsync(dst)
    finally:
        os.close(src)
        os.close(dst)
    seed.unlink()
    job = api.backup(vol, "huge-full")
    assert job["entities"]["change_tracking"] == "none"
    assert _ent(job, "bytes_read") == 32 * 64 * MIB  # the data extents, never the holes
    job = api.backup(vol, "huge-again")
    assert job["entities"]["change_tracking"] == "fiemap"
    assert _ent(job, "chunks_changed") == 0
    sampled = _ent(job, "chunks_sampled")
    assert sampled == math.ceil(0.005 * (1 << 40) / CS)
    # only sampled chunks that fall into data are read; the holes cost nothing
    assert 0 < _ent(job, "bytes_read") <= sampled * CS // 100
    r = api("DELETE", f"/v3/{{p}}/volumes/{vol}")
    assert r.status_code == 202, r.text


def test_changed_blocks_path_is_documented(world: World) -> None:
    spec = httpx.get(world.server.base_url + "/openapi.json").json()
    op = spec["paths"]["/v2/{project_id}/cloudbackups/{backup_id}/changed_blocks"]["get"]
    params = {(p["name"], p["in"]) for p in op["parameters"]}
    assert {("project_id", "path"), ("backup_id", "path"), ("base_backup_id", "query"),
            ("limit", "query"), ("marker", "query")} <= params
    assert {"200", "400", "401", "403", "404"} <= set(op["responses"])
