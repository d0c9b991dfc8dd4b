"""Operations against real ``vbs serve`` processes: probes, Prometheus metrics,
logs with request ids, and where the generated admin password is shown.

Metrics that describe shared state come from the database, so two processes
on one database (the second with no workers) must report the same values.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import ProjectClient
from tests.support.server import (  # noqa: F401 - fixtures
    LAUNCHER,
    REPO_ROOT,
    RunningServer,
    start_server,
    vbs_server_factory,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: RunningServer) -> Samples:
    r = httpx.get(server.base_url + "/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer,
                                                                      RunningServer]]:
    """A server with workers and, on the same database and repository, an API-only one."""
    first = start_server(tmp_path_factory.mktemp("ops-a"),
                         env={"VBS_LOGGING__FORMAT": "json"})
    data = first.data_dir
    second = None
    try:
        second = start_server(
            tmp_path_factory.mktemp("ops-b"), database_url=f"sqlite:///{data / 'vbs.db'}",
            env={"VBS_REPOSITORY__LOCATION": str(data / "repo"),
                 "VBS_REPOSITORY__MASTER_KEY_FILE": str(data / "master.key"),
                 "VBS_JOBS__WORKERS": "0"})
        yield first, second
    finally:
        if second is not None:
            second.stop()
        first.stop()


def test_probes_answer_without_a_token(pair: tuple[RunningServer, RunningServer]) -> None:
    server, _ = pair
    r = httpx.get(server.base_url + "/healthz", timeout=10)
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = httpx.get(server.base_url + "/readyz", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "repository": "ok"}}
    spec = httpx.get(server.base_url + "/openapi.json", timeout=10).json()
    assert not {"/healthz", "/readyz", "/metrics"} & set(spec["paths"])


def test_metrics_count_jobs_bytes_and_requests_the_same_in_every_process(
        pair: tuple[RunningServer, RunningServer]) -> None:
    server, api_only = pair
    tenant = ProjectClient(server)
    vol = tenant.volume("metrics-src")
    with tenant.volume_file(vol).open("r+b") as f:
        f.write(os.urandom(3 * 1024 * 1024))
    r = tenant("POST", "/v2/{p}/cloudbackups",
               json={"backup": {"volume_id": vol, "name": "metrics-b1"}})
    assert r.status_code == 200, r.text
    job = tenant.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    backup_id = job["entities"]["backup_id"]
    shown = tenant("GET", f"/v3/{{p}}/backups/{backup_id}").json()["backup"]

    a, b = scrape(server), scrape(api_only)
    for samples in (a, b):
        assert value(samples, "vbs_jobs", type="bksCreateBackup", status="SUCCESS") == 1
        assert value(samples, "vbs_job_queue_depth") == 0
        assert value(samples, "vbs_job_lease_expiries") == 0
        assert value(samples, "vbs_job_duration_seconds_count", type="bksCreateBackup") == 1
        assert value(samples, "vbs_backup_bytes_read") >= 3 * 1024 * 1024
        new = value(samples, "vbs_backup_bytes_new")
        assert 3 * 1024 * 1024 <= new <= 4 * 1024 * 1024  # random data: all new
        assert value(samples, "vbs_backup_bytes_stored") > 0
        assert value(samples, "vbs_backup_dedup_ratio") > 0
        stamp = value(samples, "vbs_last_successful_backup_timestamp_seconds",
                      project_id=tenant.project, volume_id=vol)
        created = shown["created_at"]
        assert abs(stamp - _epoch(created)) < 1.0
        assert value(samples, "vbs_repository_size_bytes") >= value(
            samples, "vbs_backup_bytes_stored")
    shared = {k: v for k, v in a.items() if not k[0].startswith("vbs_api_")}
    assert shared == {k: v for k, v in b.items() if not k[0].startswith("vbs_api_")}
    # Request metrics are per process and keyed by the route template.
    route = (("method", "POST"), ("route", "/v2/{project_id}/cloudbackups"), ("status", "200"))
    assert a[("vbs_api_requests_total", route)] == 1
    assert ("vbs_api_requests_total", route) not in b
    assert a[("vbs_api_request_duration_seconds_count",
              (("method", "POST"), ("route", "/v2/{project_id}/cloudbackups")))] == 1
    assert not any(tenant.project in dict(labels).get("route", "") for _, labels in a)


def _epoch(backup_time: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(backup_time).replace(tzinfo=dt.UTC).timestamp()


def test_readyz_fails_when_the_repository_is_gone_and_logs_carry_request_ids(
        pair: tuple[RunningServer, RunningServer]) -> None:
    server, _ = pair
    repo = server.data_dir / "repo"
    aside = server.data_dir / "repo-aside"
    caller_id = f"req-{uuid.uuid4()}"
    repo.rename(aside)
    try:
        r = httpx.get(server.base_url + "/readyz", timeout=10,
                      headers={"X-Openstack-Request-Id": caller_id})
    finally:
        aside.rename(repo)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert body["checks"]["repository"].startswith("error:")
    request_id = r.headers["x-openstack-request-id"]
    assert request_id.startswith("req-") and request_id != caller_id
    assert httpx.get(server.base_url + "/readyz", timeout=10).status_code == 200

    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
        mine = [x for x in lines if x.get("request_id") == request_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert mine, server.log()[-2000:]
    assert mine[0]["level"] == "WARNING" and "repository" in mine[0]["message"]
    assert mine[0]["global_request_id"] == caller_id
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)


def test_generated_admin_password_is_printed_only_on_a_terminal(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VBS_")}
    env["PYTHONPATH"] = os.pathsep.join((str(REPO_ROOT), str(REPO_ROOT / "src")))
    pid, fd = pty.fork()
    if pid == 0:  # child: stdout is the pseudo-terminal
        os.chdir(REPO_ROOT)
        os.execve(sys.executable, [sys.executable, "-c", LAUNCHER, "serve", "--data-dir",
                                   str(data_dir), "--port", "0", "--no-worker",
                                   "--no-scheduler"], env)
    screen = b""
    try:
        deadline = time.monotonic() + 60
        while b"shown only this once" not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                try:
                    screen += os.read(fd, 4096)
                except OSError:
                    break
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    text = screen.decode(errors="replace")
    password = (data_dir / "admin-password").read_text().strip()
    assert f"Password: {password}" in text, text


def test_text_logs_go_to_the_configured_file(
        vbs_server_factory: Callable[..., RunningServer],  # noqa: F811
        tmp_path: Path) -> None:
    """(JSON lines on stderr are checked with the shared pair above.)"""
    log_file = tmp_path / "logs" / "vbs.log"
    server = vbs_server_factory(env={"VBS_LOGGING__FORMAT": "text",
                                     "VBS_LOGGING__FILE": str(log_file)})
    repo = server.data_dir / "repo"
    repo.rename(server.data_dir / "gone")
    try:
        r = httpx.get(server.base_url + "/readyz", timeout=10)
    finally:
        (server.data_dir / "gone").rename(repo)
    rid = r.headers["x-openstack-request-id"]
    text = log_file.read_text()
    line = next(x for x in text.splitlines() if rid in x)
    assert f"WARNING vbs.api.routers.health [{rid}] readyz:" in line
    assert rid not in server.log()  # the file, not stderr
