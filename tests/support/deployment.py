"""A scale-out deployment in a test: PostgreSQL + S3, separate role processes.

:class:`Deployment` writes one settings file (PostgreSQL database, S3
repository, optionally through a :class:`~tests.support.faultproxy.FaultProxy`,
a shared data dir whose ``volumes/`` every worker uses: the "shared volume
directory" topology of docs/operations.md), runs ``vbs db upgrade`` and starts
``vbs serve --no-worker --no-scheduler``, ``vbs worker`` and ``vbs scheduler``
processes, each waited for through its ``--ready-file``. Everything it started
is stopped by :meth:`close`.

:func:`backend_env` gives the environment a plain ``start_server`` needs to
run on PostgreSQL + S3 instead of the embedded default, for suites
parametrised over both (``DEPLOYMENTS``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.seaweedfs import SeaweedS3
from tests.support.server import (
    ADMIN_PASSWORD,
    LAUNCHER,
    REPO_ROOT,
    RunningServer,
    _env,
    _free_port,
)

__all__ = ["DEPLOYMENTS", "Deployment", "Proc", "backend_env", "pids_of", "repository_of",
           "s3_settings"]

DEPLOYMENTS = [
    "sqlite-dir",
    pytest.param("postgresql-s3", marks=[pytest.mark.postgres, pytest.mark.s3]),
]
"""Parameters for suites that run on both backend pairs."""


def s3_settings(s3: SeaweedS3, bucket: str, endpoint_url: str | None = None) -> dict[str, str]:
    return {"location": f"s3://{bucket}/vbs", "endpoint_url": endpoint_url or s3.endpoint_url,
            "access_key": s3.access_key, "secret_key": s3.secret_key, "region": s3.region}


def backend_env(request: pytest.FixtureRequest, kind: str) -> dict[str, str]:
    """Environment for ``start_server(env=...)``: nothing for sqlite-dir; a new
    PostgreSQL database and S3 bucket (dropped/kept per session) for postgresql-s3."""
    if kind == "sqlite-dir":
        return {}
    from tests.support.server import _PgDatabases

    s3: SeaweedS3 = request.getfixturevalue("seaweedfs")
    pg = _PgDatabases()
    url = pg.create()
    request.addfinalizer(pg.drop_all)
    env = {"VBS_DATABASE__URL": url}
    for key, value in s3_settings(s3, s3.new_bucket()).items():
        env[f"VBS_REPOSITORY__{key.upper()}"] = value
    return env


@dataclass
class Proc:
    """One started ``vbs`` process."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path
    ready_file: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.ready_file.read_text())
        return doc

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


@dataclass
class Deployment:
    workdir: Path
    database_url: str
    s3: SeaweedS3
    bucket: str
    proxy: FaultProxy | None = None
    jobs: dict[str, Any] = field(default_factory=lambda: {
        "workers": 2, "lease_seconds": 5, "retry_backoff_seconds": 0.5})
    scheduler: dict[str, Any] = field(default_factory=lambda: {
        "tick_seconds": 0.5, "lease_seconds": 3})
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.workdir / "shared"
        self.config_path = self.workdir / "vbs.toml"
        self.write_config()

    def write_config(self, database_url: str | None = None, path: Path | None = None) -> Path:
        endpoint = self.proxy.endpoint_url if self.proxy else self.s3.endpoint_url
        repo = s3_settings(self.s3, self.bucket, endpoint)
        lines = [f'data_dir = "{self.data_dir}"', "", "[database]",
                 f'url = "{database_url or self.database_url}"', "migrate_on_start = false",
                 "", "[repository]"]
        lines += [f'{k} = "{v}"' for k, v in repo.items()]
        lines += ["", "[jobs]"] + [f"{k} = {v}" for k, v in self.jobs.items()]
        lines += ["", "[scheduler]"] + [f"{k} = {v}" for k, v in self.scheduler.items()]
        target = path or self.config_path
        target.write_text("\n".join(lines) + "\n")
        return target

    def cli(self, *args: str, config: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", LAUNCHER, *args, "--config", str(config or self.config_path)],
            cwd=REPO_ROOT, env=_env({"VBS_ADMIN_PASSWORD": ADMIN_PASSWORD}),
            capture_output=True, text=True, timeout=timeout,
        )

    def start(self, name: str, *args: str, config: Path | None = None,
              timeout: float = 120) -> Proc:
        """Start ``vbs ARGS --config ... --ready-file ...`` and wait until it is ready."""
        ready = self.workdir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        log_path = self.workdir / f"{name}.log"
        argv = [sys.executable, "-c", LAUNCHER, *args, "--config", str(config or self.config_path),
                "--ready-file", str(ready), "--log-level", "info"]
        with log_path.open("ab") as log:
            process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                       env=_env({"VBS_ADMIN_PASSWORD": ADMIN_PASSWORD}))
        proc = Proc(name, argv, process, log_path, ready)
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{proc.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready within {timeout}s:\n{proc.log()}")
            time.sleep(0.05)
        return proc

    def api(self, name: str, *, processes: int = 1, config: Path | None = None,
            timeout: float = 120) -> RunningServer:
        """``vbs serve --no-worker --no-scheduler`` on a free port, as a RunningServer."""
        port = _free_port()
        proc = self.start(name, "serve", "--no-worker", "--no-scheduler", "--host", "127.0.0.1",
                          "--port", str(port), "--processes", str(processes), config=config,
                          timeout=timeout)
        server = RunningServer(base_url=f"http://127.0.0.1:{port}", data_dir=self.data_dir,
                               process=proc.process, log_path=proc.log_path,
                               admin_password=ADMIN_PASSWORD)
        _wait_http(server, proc)
        return server

    def proc_of(self, pid: int) -> Proc:
        return next(p for p in self.procs if p.pid == pid)

    def engine(self, url: str | None = None) -> Any:
        from sqlalchemy import create_engine

        return create_engine(url or self.database_url)

    def repository(self) -> Any:
        """The repository opened directly on S3 (not through the proxy)."""
        from vbs.repository.backends import open_backend
        from vbs.repository.repo import Repository

        repo = s3_settings(self.s3, self.bucket)
        backend = open_backend(repo["location"], endpoint_url=repo["endpoint_url"],
                               region=repo["region"], access_key=repo["access_key"],
                               secret_key=repo["secret_key"])
        return Repository.open(backend,
                               key_file_bytes=(self.data_dir / "master.key").read_bytes())

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def _wait_http(server: RunningServer, proc: Proc, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(server.base_url + "/", timeout=2).status_code == 300:
                return
        except httpx.TransportError:
            pass
        if not proc.alive():
            break
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} does not answer HTTP:\n{proc.log()}")


def pids_of(proc: Proc) -> list[int]:
    """The API child pids of a ``--processes N`` server (from its ready file)."""
    return [int(p) for p in str(proc.ready().get("pids", "")).split(",") if p]




def repository_of(data_dir: Path, env: dict[str, str]) -> Any:
    """Open the repository a ``start_server(env=env)`` server uses, with its master key."""
    from vbs.repository.backends import LocalBackend, open_backend
    from vbs.repository.repo import Repository

    key = (data_dir / "master.key").read_bytes()
    location = env.get("VBS_REPOSITORY__LOCATION")
    if location is None:
        return Repository.open(LocalBackend(data_dir / "repo"), key_file_bytes=key)
    backend = open_backend(location, endpoint_url=env["VBS_REPOSITORY__ENDPOINT_URL"],
                           region=env["VBS_REPOSITORY__REGION"],
                           access_key=env["VBS_REPOSITORY__ACCESS_KEY"],
                           secret_key=env["VBS_REPOSITORY__SECRET_KEY"])
    return Repository.open(backend, key_file_bytes=key)
