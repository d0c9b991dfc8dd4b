"""The seed flow end to end on a real server: POST /v2/{p}/cloudbackups, the job
to SUCCESS, the backup in the native show, restore byte-identical, delete."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.deployment import DEPLOYMENTS, backend_env, repository_of
from tests.support.server import RunningServer
from tests.support.volumes import MIB, file_sha256, make_volume, mutate_volume


class Api:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.token = server.token()
        self.project = server.project_id(self.token)
        self.http = httpx.Client(base_url=server.base_url, timeout=60,
                                 headers={"X-Auth-Token": self.token})
        self.backend_env: dict[str, str] = {}

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path.replace("{p}", self.project), **kw)

    def volume(self, size_gb: int = 1, name: str = "vol") -> dict[str, Any]:
        r = self("POST", "/v3/{p}/volumes", json={"volume": {"size": size_gb, "name": name}})
        assert r.status_code == 202, r.text
        return r.json()["volume"]  # type: ignore[no-any-return]

    def volume_file(self, volume_id: str) -> Path:
        return self.server.data_dir / "volumes" / f"{volume_id}.img"

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = self("GET", f"/v1/{{p}}/jobs/{job_id}")
            assert r.status_code == 200, r.text
            job = r.json()
            if job["status"] in ("SUCCESS", "FAIL"):
                return job  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.1)


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The suite runs on SQLite + directory and on PostgreSQL + S3 (SeaweedFS)."""
    from tests.support.server import start_server

    env = backend_env(request, request.param)
    server = start_server(tmp_path_factory.mktemp("cloudbackups"), env=env)
    try:
        api = Api(server)
        api.backend_env = env
        yield api
    finally:
        server.stop()


def _has_forkserver_below(pid: int) -> bool:
    """Whether a multiprocessing fork server runs among ``pid``'s descendants."""
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            if b"multiprocessing.forkserver" in Path(f"/proc/{p}/cmdline").read_bytes():
                return True
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return False


def _fill(path: Path, seed: int) -> str:
    """Write mixed content into a volume file in place; returns its sha256."""
    tmp = path.with_suffix(".gen")
    make_volume(tmp, 24 * MIB, seed=seed)
    with open(path, "r+b") as dst, open(tmp, "rb") as src:
        dst.write(src.read())
    tmp.unlink()
    return file_sha256(path)


def test_seed_request_backup_restore_delete(api: Api) -> None:
    vol = api.volume(1, "db01")
    digest = _fill(api.volume_file(vol["id"]), 1)
    body = {"backup": {"volume_id": vol["id"], "name": "nightly-db01",
                       "description": "before upgrade", "tags": [{"key": "env", "value": "prod"}],
                       "extend_param": {"FullBackup": "false"}}}
    r = api("POST", "/v2/{p}/cloudbackups", json=body)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"job_id"}
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    assert job["job_type"] == "bksCreateBackup"
    backup_id = job["entities"]["backup_id"]
    assert job["entities"]["volume_id"] == vol["id"]
    assert job["entities"]["bks_create_volume_name"] == "nightly-db01"
    assert job["begin_time"] and job["end_time"] and job["error_code"] is None
    shown = api("GET", f"/v3/{{p}}/backups/{backup_id}")
    if shown.status_code == 200:  # native API present
        b = shown.json()["backup"]
        assert b["status"] == "available" and b["volume_id"] == vol["id"] and b["size"] == 1
    # the volume is usable again
    assert api("GET", f"/v3/{{p}}/volumes/{vol['id']}").json()["volume"]["status"] == "available"
    # restore into another volume: byte-identical
    target = api.volume(1, "restored")
    r = api("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
            json={"restore": {"volume_id": target["id"]}})
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksRestoreBackup", job
    assert file_sha256(api.volume_file(target["id"])) == digest
    # A local repository restores on worker processes forked from a fork
    # server (jobs.restore_processes, 2 on these machines); S3 on threads.
    local = not api.backend_env.get("VBS_REPOSITORY__LOCATION", "").startswith("s3://")
    assert _has_forkserver_below(api.server.process.pid) is (local and (os.cpu_count() or 1) > 1)
    # delete (documented POST form)
    r = api("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
    assert r.status_code == 200, r.text
    job = api.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksDeleteBackup", job
    r = api("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "VolumeBackup.0110"


def test_incremental_writes_only_changed_chunks_and_old_backup_survives(api: Api) -> None:
    vol = api.volume(1, "incr")
    path = api.volume_file(vol["id"])
    first_digest = _fill(path, 2)

    def take(name: str) -> str:
        r = api("POST", "/v2/{p}/cloudbackups",
                json={"backup": {"volume_id": vol["id"], "name": name}})
        assert r.status_code == 200, r.text
        job = api.wait_job(r.json()["job_id"])
        assert job["status"] == "SUCCESS", job
        return str(job["entities"]["backup_id"])

    first = take("first")
    rewritten = mutate_volume(path, 0.2, seed=3)
    second_digest = file_sha256(path)
    second = take("second")
    repo = repository_of(api.server.data_dir, api.backend_env)
    store = repo.project(api.project)
    s1 = store.load_manifest(first).stats
    s2 = store.load_manifest(second).stats
    changed_chunks = rewritten // (64 * 1024)  # aligned 64 KiB writes: one chunk each
    assert s2["chunks_new"] == changed_chunks < s1["chunks_new"]
    # delete the newer one; the older still restores byte-identically
    r = api("DELETE", f"/v2/{{p}}/cloudbackups/{second}")
    assert api.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
    for backup_id, digest in ((first, first_digest),):
        target = api.volume(1, "t")
        r = api("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                json={"restore": {"volume_id": target["id"]}})
        assert api.wait_job(r.json()["job_id"])["status"] == "SUCCESS"
        assert file_sha256(api.volume_file(target["id"])) == digest
    assert second_digest != first_digest


def test_busy_and_unknown_volume_and_auth(api: Api, tmp_path: Path) -> None:
    r = api("POST", "/v2/{p}/cloudbackups",
            json={"backup": {"volume_id": "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60", "name": "x"}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "VolumeBackup.0021"
    vol = api.volume(1, "busy")
    with open(api.volume_file(vol["id"]), "r+b") as f:
        f.write(os.urandom(64 * MIB))
    codes = []
    for _ in range(2):
        r = api("POST", "/v2/{p}/cloudbackups", json={"backup": {"volume_id": vol["id"],
                                                                  "name": "b"}})
        codes.append((r.status_code, r.json().get("error", {}).get("code")))
    assert codes[0] == (200, None)
    assert codes[1] == (400, "VolumeBackup.0013")
    r = httpx.post(api.server.base_url + f"/v2/{api.project}/cloudbackups", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "VolumeBackup.0041"
    r = api("POST", "/v2/0123456789abcdef0123456789abcdef/cloudbackups", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "VolumeBackup.0042"
    r = api("GET", "/v1/{p}/jobs/2c9a4f6e-1b3d-4a57-9e08-7f6d5c4b3a21")
    assert r.status_code == 404 and r.json()["error"]["code"] == "common.0011"
