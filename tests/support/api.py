"""One project's HTTP view of a running server, shared by the e2e tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.server import RunningServer

__all__ = ["ProjectClient", "project_user"]

C = TypeVar("C", bound="ProjectClient")


class ProjectClient:
    """Requests with a token of one project; ``{p}`` in a path is its id."""

    def __init__(self, server: RunningServer, user: str | None = None,
                 password: str | None = None, project: str | None = None) -> None:
        self.server = server
        token = server.token(user, password, project)
        self.project = server.project_id(token)
        self.http = httpx.Client(base_url=server.base_url, timeout=60,
                                 headers={"X-Auth-Token": token})

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path.replace("{p}", self.project), **kw)

    def volume(self, name: str = "vol", size_gb: int = 1) -> str:
        r = self("POST", "/v3/{p}/volumes", json={"volume": {"size": size_gb, "name": name}})
        assert r.status_code == 202, r.text
        return str(r.json()["volume"]["id"])

    def volume_file(self, volume_id: str) -> Path:
        return self.server.data_dir / "volumes" / f"{volume_id}.img"

    def backup(self, volume_id: str, name: str = "b") -> str:
        """A VBS backup of the volume, waited for; its id (the job must succeed)."""
        r = self("POST", "/v2/{p}/cloudbackups",
                 json={"backup": {"volume_id": volume_id, "name": name}})
        assert r.status_code == 200, r.text
        job = self.wait_job(r.json()["job_id"])
        assert job["status"] == "SUCCESS", job
        return str(job["entities"]["backup_id"])

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll the job (bounded) until SUCCESS or FAIL; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            r = self("GET", f"/v1/{{p}}/jobs/{job_id}")
            assert r.status_code == 200, r.text
            job: dict[str, Any] = r.json()
            if job["status"] in ("SUCCESS", "FAIL"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
            time.sleep(0.1)


def project_user(server: RunningServer, name: str, cls: type[C]) -> C:
    """A new project ``name`` with a member ``<name>-user``, as a ``cls`` client."""
    r = server.cli("admin", "project", "create", name)
    assert r.returncode == 0, r.stderr
    r = server.cli("admin", "user", "create", f"{name}-user", "--password", "pw-" + name,
                   "--project", name)
    assert r.returncode == 0, r.stderr
    return cls(server, f"{name}-user", "pw-" + name, name)
