"""Backup quotas end to end (vbs-api §2.15, §4.5): the report, the errors of every
create path (VBS 400, native 413 + Retry-After, policy task), settings defaults
and ``vbs admin quota`` overrides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, run_cli, start_server

SETTINGS = {"VBS_QUOTAS__DEFAULT_BACKUPS": "2"}
"""The server's and the admin CLI's settings: the CLI reports the same defaults."""


class Project:
    def __init__(self, server: RunningServer, name: str) -> None:
        assert server.cli("admin", "project", "create", name).returncode == 0
        r = server.cli("admin", "user", "create", f"{name}-u", "--password", "pw",
                       "--project", name)
        assert r.returncode == 0, r.stderr
        self.server, self.name = server, name
        token = server.token(f"{name}-u", "pw", name)
        self.id = server.project_id(token)
        self.http = httpx.Client(base_url=server.base_url, timeout=60,
                                 headers={"X-Auth-Token": token})

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path.replace("{p}", self.id), **kw)

    def volume(self, size_gb: int = 1) -> str:
        r = self("POST", "/v3/{p}/volumes", json={"volume": {"size": size_gb}})
        assert r.status_code == 202, r.text
        return str(r.json()["volume"]["id"])

    def create(self, name: str = "b", size_gb: int = 1) -> httpx.Response:
        return self("POST", "/v2/{p}/cloudbackups",
                    json={"backup": {"volume_id": self.volume(size_gb), "name": name}})

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self("GET", f"/v1/{{p}}/jobs/{job_id}").json()
            if job["status"] in ("SUCCESS", "FAIL"):
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.1)

    def backup(self, size_gb: int = 1) -> str:
        r = self.create(size_gb=size_gb)
        assert r.status_code == 200, r.text
        job = self.wait_job(r.json()["job_id"])
        assert job["status"] == "SUCCESS", job
        return str(job["entities"]["backup_id"])

    def quota(self) -> dict[str, dict[str, int]]:
        r = self("GET", "/v2/{p}/cloudbackups/quota")
        assert r.status_code == 200, r.text
        resources = r.json()["quotas"]["resources"]
        assert [x["type"] for x in resources] == ["backups", "backup_gigabytes"]
        return {x.pop("type"): x for x in resources}

    def admin(self, *args: str) -> str:
        r = run_cli("admin", "quota", *args, data_dir=self.server.data_dir, env=SETTINGS)
        assert r.returncode == 0, r.stderr
        return r.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    s = start_server(tmp_path_factory.mktemp("quotas"),
                     env=SETTINGS)
    try:
        yield s
    finally:
        s.stop()


def _vbs_error(r: httpx.Response, code: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code, r.text


def _over_limit(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    assert r.headers["Retry-After"] == "0"
    assert r.json()["overLimit"]["code"] == 413


def test_defaults_overrides_and_every_vbs_and_native_path(server: RunningServer) -> None:
    p = Project(server, "qa")
    assert p.quota() == {"backups": {"quota": 2, "used": 0, "reserved": 0},
                         "backup_gigabytes": {"quota": -1, "used": 0, "reserved": 0}}
    first = p.backup(size_gb=1)
    p.backup(size_gb=2)
    assert p.quota() == {"backups": {"quota": 2, "used": 2, "reserved": 0},
                         "backup_gigabytes": {"quota": -1, "used": 3, "reserved": 0}}
    _vbs_error(p.create(), "VolumeBackup.0080")
    native = {"backup": {"volume_id": p.volume(), "name": "native"}}
    _over_limit(p("POST", "/v3/{p}/backups", json=native))
    _over_limit(p("POST", "/v2/{p}/backups", json=native))
    assert p.quota()["backups"]["used"] == 2  # refusals leave nothing behind

    # the admin raises the count and caps the gigabytes of this project only
    out = p.admin("set", "qa", "--backups", "5", "--gigabytes", "4")
    assert out.splitlines() == ["backups\t5\t2\tproject", "backup_gigabytes\t4\t3\tproject"]
    p.backup(size_gb=1)  # 4 GiB of 4
    _vbs_error(p.create(size_gb=1), "VolumeBackup.0081")
    _over_limit(p("POST", "/v3/{p}/backups",
                  json={"backup": {"volume_id": p.volume(), "name": "n2"}}))
    assert p.quota()["backup_gigabytes"] == {"quota": 4, "used": 4, "reserved": 0}

    # deleting frees quota at once (the record is "deleting", vbs-api §2.12)
    r = p("POST", f"/v2/{{p}}/cloudbackups/{first}")
    assert r.status_code == 200, r.text
    assert p.quota()["backup_gigabytes"]["used"] == 3
    p.wait_job(r.json()["job_id"])
    r = p("POST", "/v3/{p}/backups", json={"backup": {"volume_id": p.volume(), "name": "n3"}})
    assert r.status_code == 202, r.text

    # back to the settings default for the count, unlimited gigabytes
    out = p.admin("set", "qa", "--backups", "default", "--gigabytes", "-1")
    assert out.splitlines() == ["backups\t2\t3\tdefault", "backup_gigabytes\t-1\t4\tproject"]
    _vbs_error(p.create(), "VolumeBackup.0080")
    # only --gigabytes given: the count override is kept
    p.admin("set", "qa", "--backups", "-1")
    assert p.admin("set", "qa", "--gigabytes", "default").splitlines()[0] == (
        "backups\t-1\t3\tproject")

    # another project is untouched by qa's overrides
    other = Project(server, "qb")
    assert other.quota()["backups"] == {"quota": 2, "used": 0, "reserved": 0}
    assert other.admin("show", "qb").splitlines()[0] == "backups\t2\t0\tdefault"


def test_policy_backups_respect_the_quota(server: RunningServer) -> None:
    p = Project(server, "qpol")
    p.admin("set", "qpol", "--backups", "0")
    r = p("POST", "/v2/{p}/backuppolicy", json={"backup_policy_name": "nightly",
          "scheduled_policy": {"start_time": "02:00", "frequency": 1, "rentention_num": 3,
                               "status": "OFF"}})
    assert r.status_code == 200, r.text
    pid = r.json()["backup_policy_id"]
    r = p("POST", "/v2/{p}/backuppolicyresources", json={"backup_policy_id": pid, "resources": [
        {"resource_id": p.volume(), "resource_type": "volume"}]})
    assert r.status_code == 200 and r.json()["fail_resources"] == [], r.text
    r = p("POST", f"/v2/{{p}}/backuppolicy/{pid}/action")
    assert r.status_code == 204, r.text
    [task] = p("GET", f"/v2/{{p}}/backuppolicy/{pid}/backuptasks").json()["tasks"]
    assert task["status"] == "EXECUTE_FAIL" and task["code"] == "AutoBackup.0218", task
    assert p.quota()["backups"]["used"] == 0


def test_admin_quota_cli_errors(server: RunningServer) -> None:
    Project(server, "qcli")
    for args, rc in ((("set", "qcli"), 2), (("set", "qcli", "--backups", "-2"), 2),
                     (("set", "qcli", "--gigabytes", "lots"), 2),
                     (("set", "no-such-project", "--backups", "1"), 1),
                     (("show", "no-such-project"), 1)):
        r = server.cli("admin", "quota", *args)
        assert r.returncode == rc, (args, r.stdout, r.stderr)
        assert r.stderr


def test_quota_auth(server: RunningServer) -> None:
    p = Project(server, "qauth")
    r = httpx.get(f"{server.base_url}/v2/{p.id}/cloudbackups/quota")
    assert r.status_code == 401 and r.json()["error"]["code"] == "VolumeBackup.0041"
    r = p("GET", "/v2/0123456789abcdef0123456789abcdef/cloudbackups/quota")
    assert r.status_code == 403 and r.json()["error"]["code"] == "VolumeBackup.0042"
