"""Parallel creations against a real server cannot exceed a quota (vbs-api §2.15).

Many create requests for different volumes are released at once, half on the
VBS path and half on the native one, on SQLite and on PostgreSQL. Exactly as
many succeed as the quota allows; every other one gets its path's quota error,
and the report agrees with the successes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.server import fresh_database_url, start_server  # noqa: F401 - fixture

PARALLEL = 12


@pytest.mark.slow
@pytest.mark.parametrize(("limit_flag", "volume_gb", "allowed"), [
    ("--backups", 1, 3),
    ("--gigabytes", 2, 2),  # 5 GiB of 2 GiB backups: two fit
])
def test_parallel_creates_never_exceed_the_quota(
        fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
        limit_flag: str, volume_gb: int, allowed: int) -> None:
    server = start_server(tmp_path_factory.mktemp("quota-race"), database_url=fresh_database_url)
    try:
        env = {"VBS_DATABASE__URL": fresh_database_url}
        from tests.support.server import run_cli

        limit = "3" if limit_flag == "--backups" else "5"
        r = run_cli("admin", "quota", "set", "admin", limit_flag, limit,
                    data_dir=server.data_dir, env=env)
        assert r.returncode == 0, r.stderr
        token = server.token()
        project = server.project_id(token)
        http = httpx.Client(base_url=server.base_url, timeout=120,
                            headers={"X-Auth-Token": token},
                            limits=httpx.Limits(max_connections=PARALLEL))
        volumes = []
        for _ in range(PARALLEL):
            v = http.post(f"/v3/{project}/volumes", json={"volume": {"size": volume_gb}})
            assert v.status_code == 202, v.text
            volumes.append(v.json()["volume"]["id"])
        barrier = threading.Barrier(PARALLEL)

        def create(i: int) -> tuple[str, int, str]:
            body = {"backup": {"volume_id": volumes[i], "name": f"race-{i}"}}
            path = "cloudbackups" if i % 2 else "backups"
            barrier.wait()
            resp = http.post(f"/v2/{project}/{path}", json=body)
            data = resp.json()
            code = (data.get("error", {}).get("code", "") if path == "cloudbackups"
                    else next(iter(data)) if resp.status_code >= 400 else "")
            return path, resp.status_code, code

        with ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(create, range(PARALLEL)))

        ok = [r for r in results if r[1] in (200, 202)]
        refused = [r for r in results if r not in ok]
        assert len(ok) == allowed, results
        vbs_code = "VolumeBackup.0080" if limit_flag == "--backups" else "VolumeBackup.0081"
        for path, status, code in refused:
            assert (status, code) == ((400, vbs_code) if path == "cloudbackups"
                                      else (413, "overLimit")), results
        quota = http.get(f"/v2/{project}/cloudbackups/quota").json()["quotas"]["resources"]
        used = {q["type"]: q["used"] for q in quota}
        assert used == {"backups": allowed, "backup_gigabytes": allowed * volume_gb}
    finally:
        server.stop()
