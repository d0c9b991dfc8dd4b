"""Disaster recovery on the embedded default (SQLite + directory repository):
lose the database, ``vbs db upgrade`` + ``vbs admin recover --from-repository``,
start again: every backup is listed with its record and restores byte for byte.
(The PostgreSQL + S3 case is the last test of ``test_scaleout.py``.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.api import ProjectClient
from tests.support.server import run_cli, start_server
from tests.support.volumes import MIB, content_digest, make_volume, mutate_volume

COLUMNS = ("id, project_id, name, description, volume_id, size_gb, volume_size_bytes, "
           "parent_id, is_incremental, tags, metadata, source, created_at, data_timestamp")


def _rows(db: Path) -> dict[str, tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {r[0]: tuple(r) for r in conn.execute(f"SELECT {COLUMNS} FROM backups")}
    finally:
        conn.close()


def _fill(api: ProjectClient, volume: str, seed: int) -> None:
    path = api.volume_file(volume)
    tmp = path.with_name(path.name + ".gen")
    make_volume(tmp, 6 * MIB, seed=seed)
    with open(path, "r+b") as dst, open(tmp, "rb") as src:
        dst.write(src.read())
    tmp.unlink()


def _backup(api: ProjectClient, volume: str, name: str, **extra: object) -> str:
    r = api("POST", "/v2/{p}/cloudbackups",
            json={"backup": {"volume_id": volume, "name": name, **extra}})
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    return str(job["entities"]["backup_id"])


@pytest.mark.slow
def test_recover_from_directory_repository_into_an_empty_sqlite_database(
        tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        api = ProjectClient(server)
        v1, v2 = api.volume("db01"), api.volume("web01")
        _fill(api, v1, seed=1)
        _fill(api, v2, seed=2)
        digests = {}
        first = _backup(api, v1, "nightly", description="first full",
                        tags=[{"key": "env", "value": "prod"}, {"key": "tier", "value": "db"}])
        digests[first] = content_digest(api.volume_file(v1))
        mutate_volume(api.volume_file(v1), 5, seed=3)
        second = _backup(api, v1, "nightly-2")
        digests[second] = content_digest(api.volume_file(v1))
        third = _backup(api, v2, "web", tags=[{"key": "env", "value": "test"}])
        digests[third] = content_digest(api.volume_file(v2))
        before = _rows(server.data_dir / "vbs.db")
        project = api.project
    finally:
        server.stop()
    assert set(before) == {first, second, third}
    assert before[second][7] == first  # the incremental names its parent

    for leftover in server.data_dir.glob("vbs.db*"):
        leftover.unlink()  # the database is lost; the repository and master key remain
    assert run_cli("db", "upgrade", data_dir=server.data_dir).returncode == 0
    dry = run_cli("admin", "recover", "--from-repository", "--dry-run", data_dir=server.data_dir)
    assert dry.returncode == 0 and "would recover 3 backups" in dry.stdout, dry.stderr
    r = run_cli("admin", "recover", "--from-repository", data_dir=server.data_dir)
    assert r.returncode == 0, r.stderr
    assert "recovered 3 backups (0 already present)" in r.stdout
    assert f"created project {project} (admin)" in r.stdout
    assert _rows(server.data_dir / "vbs.db") == before

    server = start_server(tmp_path)  # same data dir: the admin user is created again
    try:
        api = ProjectClient(server)
        assert api.project == project
        r = api("GET", "/v3/{p}/backups/detail")
        assert r.status_code == 200
        listed = {b["id"]: b for b in r.json()["backups"]}
        assert set(listed) == set(before)
        assert listed[first]["description"] == "first full"
        for backup_id, digest in digests.items():
            target = api.volume("restored")
            r = api("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                    json={"restore": {"volume_id": target}})
            assert r.status_code == 200, r.text
            assert api.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
            assert content_digest(api.volume_file(target)) == digest
    finally:
        server.stop()
