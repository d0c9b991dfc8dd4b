"""Pytest plugin: real VBS server processes and real databases.

Fixtures:

* ``vbs_server`` (session): one shared server, for tests that only add data.
* ``vbs_server_factory`` (function): ``vbs_server_factory(**options)`` starts a
  fresh server (own data dir, own port) for destructive tests; all servers it
  started are stopped at the end of the test.
* ``database_url`` (session, parametrized ``sqlite`` / ``postgresql``): one
  database per test session; the PostgreSQL one is a uniquely named database
  created on 127.0.0.1:5432 (user ``postgres``) and dropped afterwards.
* ``fresh_database_url`` (function, same parameters): an empty database for
  every test.

PostgreSQL cases carry the ``postgres`` marker and are skipped cleanly when
the server is unreachable.

Servers run ``vbs serve`` through :data:`LAUNCHER` (``python -c``), which
optionally mounts this module's :data:`router` of probe routes first
(``probe_routes=True``): tiny endpoints protected by each auth dependency,
so auth and error formats can be tested before real API families exist.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from vbs.api.auth import NativePrincipal, PolicyPrincipal, Principal, SharingPrincipal, VbsPrincipal
from vbs.errors import ServiceError

__all__ = [
    "LAUNCHER",
    "RunningServer",
    "database_url",
    "fresh_database_url",
    "router",
    "run_cli",
    "start_server",
    "vbs_server",
    "vbs_server_factory",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "vbs-test-admin-pw"
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"

LAUNCHER = """
import os, sys
if os.environ.get("VBS_TEST_PROBE_ROUTES") == "1":
    import vbs.api.routers as routers
    routers.ROUTER_MODULES = ("tests.support.server", *routers.ROUTER_MODULES)
from vbs.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""Runs the ``vbs`` command like the entry point does (``python -c LAUNCHER args``)."""


# --------------------------------------------------------------------------- probe routes

router = APIRouter(include_in_schema=False)
PROBE = "vbs-test-probe"


def _who(p: Principal) -> dict[str, Any]:
    return {"user_id": p.user_id, "project_id": p.project_id, "roles": sorted(p.roles),
            "is_admin": p.is_admin, "pid": os.getpid()}  # pid: which --processes child


class _ProbeBackup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64)
    size: int = Field(ge=1)


class _ProbeBody(BaseModel):
    backup: _ProbeBackup


@router.api_route(f"/v2/{{project_id}}/cloudbackups/{PROBE}", methods=["GET", "POST"])
def _vbs_probe(project_id: str, principal: VbsPrincipal) -> dict[str, Any]:
    return _who(principal)


@router.api_route(f"/v2/{{project_id}}/backuppolicy/{PROBE}", methods=["GET", "POST"])
def _policy_probe(project_id: str, principal: PolicyPrincipal) -> dict[str, Any]:
    return _who(principal)


@router.api_route(f"/v3/{{project_id}}/backups/{PROBE}", methods=["GET", "POST"])
@router.api_route(f"/v2/{{project_id}}/backups/{PROBE}", methods=["GET", "POST"])
def _native_probe(project_id: str, principal: NativePrincipal) -> dict[str, Any]:
    return _who(principal)


@router.api_route(f"/v2/{{project_id}}/os-vendor-backup-sharing/{PROBE}", methods=["GET"])
def _sharing_probe(project_id: str, principal: SharingPrincipal) -> dict[str, Any]:
    return _who(principal)


@router.post(f"/v2/{{project_id}}/cloudbackups/{PROBE}/body")
@router.post(f"/v3/{{project_id}}/backups/{PROBE}/body")
def _body_probe(project_id: str, body: _ProbeBody) -> dict[str, Any]:
    return {"name": body.backup.name}


@router.get(f"/v2/{{project_id}}/cloudbackups/{PROBE}/crash")
@router.get(f"/v3/{{project_id}}/backups/{PROBE}/crash")
def _crash_probe(project_id: str) -> dict[str, Any]:
    raise RuntimeError("secret internal detail /etc/vbs")


@router.get(f"/v2/{{project_id}}/cloudbackups/{PROBE}/rule")
@router.get(f"/v3/{{project_id}}/backups/{PROBE}/rule")
def _rule_probe(project_id: str) -> dict[str, Any]:
    raise ServiceError("Backup count quota exhausted.", "VolumeBackup.0080", 413)


# --------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VBS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")) if p
    )
    env.update(extra or {})
    return env


def run_cli(*args: str, data_dir: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``vbs ARGS`` in a subprocess (``VBS_DATA_DIR`` set when given)."""
    extra = dict(env or {})
    if data_dir is not None:
        extra["VBS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], cwd=REPO_ROOT, env=_env(extra),
        capture_output=True, text=True, timeout=120,
    )


@dataclass
class RunningServer:
    """A live ``vbs serve`` process and how to talk to it."""

    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    admin_password: str
    admin_user: str = "admin"
    admin_project: str = "admin"
    settings_env: dict[str, str] = field(default_factory=dict)
    """The VBS_DATABASE__* / VBS_REPOSITORY__* settings the server was started with,
    passed on to :meth:`cli` so admin commands reach the same database."""
    _tokens: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def auth_url(self) -> str:
        return self.base_url + "/identity/v3"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def login(self, username: str | None = None, password: str | None = None,
              project: str | None = None) -> httpx.Response:
        """POST a password + project-name scoped token request; the raw response."""
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username or self.admin_user, "domain": {"name": "Default"},
                "password": password if password is not None else self.admin_password}}},
            "scope": {"project": {"name": project or self.admin_project,
                                  "domain": {"name": "Default"}}},
        }}
        return httpx.post(self.auth_url + "/auth/tokens", json=body, timeout=30)

    def token(self, username: str | None = None, password: str | None = None,
              project: str | None = None) -> str:
        """A token for the user (admin by default), cached per credentials."""
        key = (username or self.admin_user, password or self.admin_password,
               project or self.admin_project)
        if key not in self._tokens:
            resp = self.login(username, password, project)
            assert resp.status_code == 201, resp.text
            self._tokens[key] = resp.headers["X-Subject-Token"]
        return self._tokens[key]

    def project_id(self, token: str) -> str:
        resp = httpx.get(self.auth_url + "/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=30)
        assert resp.status_code == 200, resp.text
        pid: str = resp.json()["token"]["project"]["id"]
        return pid

    def keystone_session(self, username: str | None = None, password: str | None = None,
                         project: str | None = None) -> Any:
        """A keystoneauth1 Session using ``v3.Password`` against this server."""
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=self.auth_url, username=username or self.admin_user,
            password=password if password is not None else self.admin_password,
            user_domain_name="Default", project_name=project or self.admin_project,
            project_domain_name="Default",
        )
        return session.Session(auth=auth)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``vbs ARGS`` against this server's data dir."""
        return run_cli(*args, data_dir=self.data_dir, env=self.settings_env)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    workdir: Path,
    *,
    admin_password: str | None = ADMIN_PASSWORD,
    probe_routes: bool = False,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    startup_timeout: float = 60.0,
    args: tuple[str, ...] = (),
) -> RunningServer:
    """Start ``vbs serve ARGS`` on a free port with a fresh data dir under ``workdir``.

    ``admin_password=None`` leaves ``VBS_ADMIN_PASSWORD`` unset, so the server
    generates one; it is then read back from ``DATA_DIR/admin-password``.

    Returns once ``GET /`` answers; raises with the server log if the process
    dies or never answers. The caller must ``stop()`` it.
    """
    data_dir = workdir / "data"
    log_path = workdir / "server.log"
    port = _free_port()
    extra = {"VBS_EXPORTS__PORT": "0", **(env or {})}  # NBD exports on a free port
    if admin_password is not None:
        extra["VBS_ADMIN_PASSWORD"] = admin_password
    if probe_routes:
        extra["VBS_TEST_PROBE_ROUTES"] = "1"
    if database_url:
        extra["VBS_DATABASE__URL"] = database_url
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, "serve", "--data-dir", str(data_dir),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *args],
            cwd=REPO_ROOT, env=_env(extra), stdout=log, stderr=subprocess.STDOUT,
        )
    server = RunningServer(
        base_url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=process,
        log_path=log_path, admin_password=admin_password or "",
        settings_env={k: v for k, v in extra.items()
                      if k.startswith(("VBS_DATABASE__", "VBS_REPOSITORY__"))},
    )
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"vbs serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/", timeout=2).status_code == 300:
                if admin_password is None:  # generated at first start
                    secret = data_dir / "admin-password"
                    server.admin_password = secret.read_text().strip()
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"vbs serve did not answer within {startup_timeout}s:\n"
                               f"{server.log()}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def vbs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server shared by the whole session (do not break it)."""
    server = start_server(tmp_path_factory.mktemp("vbs-shared"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vbs_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RunningServer]]:
    """``factory(**start_server_options)`` -> a fresh server, stopped after the test."""
    started: list[RunningServer] = []

    def factory(**options: Any) -> RunningServer:
        server = start_server(tmp_path_factory.mktemp("vbs-server"), **options)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


# --------------------------------------------------------------------------- databases


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {exc}")


@dataclass
class _PgDatabases:
    created: list[str] = field(default_factory=list)

    def create(self) -> str:
        name = f"vbs_test_{uuid.uuid4().hex[:16]}"
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    def drop_all(self) -> None:
        if not self.created:
            return
        with _pg_admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


_DB_PARAMS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _make_url(kind: str, tmp: Path, pg: _PgDatabases) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'vbs.db'}"
    return pg.create()


@pytest.fixture(scope="session", params=_DB_PARAMS)
def database_url(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database for the session: SQLite file, or a fresh PostgreSQL database."""
    pg = _PgDatabases()
    try:
        yield _make_url(request.param, tmp_path_factory.mktemp("db"), pg)
    finally:
        pg.drop_all()


@pytest.fixture(params=_DB_PARAMS)
def fresh_database_url(request: pytest.FixtureRequest,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database for one test (SQLite file or new PostgreSQL database)."""
    pg = _PgDatabases()
    try:
        yield _make_url(request.param, tmp_path_factory.mktemp("db"), pg)
    finally:
        pg.drop_all()
