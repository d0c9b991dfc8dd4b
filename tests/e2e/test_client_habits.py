"""The ``vbs`` client as an operator uses it, against real servers: what was
written can be read back (tags, metadata), Ctrl-C during ``--wait`` says how
to resume, job totals are known from the start, ids are never cut.
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
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import ProjectClient
from tests.support.server import LAUNCHER, REPO_ROOT, RunningServer, run_cli, start_server


def _env(server: RunningServer) -> dict[str, str]:
    return {"OS_AUTH_URL": server.auth_url, "OS_USERNAME": server.admin_user,
            "OS_PASSWORD": server.admin_password, "OS_PROJECT_NAME": server.admin_project,
            "OS_PROJECT_ID": "", "OS_REGION_NAME": "", "OS_INTERFACE": "", "OS_CACERT": ""}


def vbs_json(server: RunningServer, *args: str) -> Any:
    r = run_cli(*args, "--json", env=_env(server))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("client-habits"))
    try:
        yield srv
    finally:
        srv.stop()


def test_tags_and_metadata_read_back_everywhere(server: RunningServer) -> None:
    tenant = ProjectClient(server)
    vol = vbs_json(server, "volume", "create", "--size", "1", "--name", "tagged")["id"]
    job = vbs_json(server, "backup", "create", vol, "--name", "tagged-b", "--tag", "env=prod",
                   "--tag", "team=dba", "--wait")
    bid = job["entities"]["backup_id"]
    # vbs backup show (native v3 detail at 3.64): tags and (empty) metadata
    shown = vbs_json(server, "backup", "show", bid)
    assert shown["tags"] == [{"key": "env", "value": "prod"}, {"key": "team", "value": "dba"}]
    assert shown["metadata"] == {}
    # Native: metadata written at 3.43 reads back at 3.43, with the tags
    v343 = {"OpenStack-API-Version": "volume 3.43"}
    r = tenant("PUT", f"/v3/{{p}}/backups/{bid}", headers=v343,
               json={"backup": {"metadata": {"owner": "ci"}}})
    assert r.status_code == 200, r.text
    body = tenant("GET", f"/v3/{{p}}/backups/{bid}", headers=v343).json()["backup"]
    assert body["metadata"] == {"owner": "ci"} and body["tags"] == shown["tags"]
    listed = tenant("GET", "/v3/{p}/backups/detail", headers=v343).json()["backups"]
    assert next(b for b in listed if b["id"] == bid)["tags"] == shown["tags"]
    # Below 3.43 neither appears (Cinder's shape is kept)
    old = tenant("GET", f"/v3/{{p}}/backups/{bid}").json()["backup"]
    assert "metadata" not in old and "tags" not in old
    # the text form shows them as key=value
    r = run_cli("backup", "show", bid, env=_env(server))
    assert "env=prod, team=dba" in r.stdout and "owner=ci" in r.stdout


def test_job_totals_are_known_from_the_start_delete_included(server: RunningServer) -> None:
    vol = vbs_json(server, "volume", "create", "--size", "1", "--name", "totals")["id"]
    started = vbs_json(server, "backup", "create", vol, "--name", "totals-b")
    job = vbs_json(server, "job", "show", started["job_id"])
    assert job["progress"]["total"] == 1024**3, job  # the volume, in bytes, before any report
    done = vbs_json(server, "job", "show", started["job_id"], "--wait")
    assert done["progress"] == {"done": 1024**3, "total": 1024**3}
    deleting = vbs_json(server, "backup", "delete", done["entities"]["backup_id"])
    job = vbs_json(server, "job", "show", deleting["job_id"])
    assert job["progress"]["total"] == 1024**3, job
    finished = vbs_json(server, "job", "show", deleting["job_id"], "--wait")
    assert finished["status"] == "SUCCESS"
    assert finished["progress"] == {"done": 1024**3, "total": 1024**3}


def _pty_run(args: list[str], env: dict[str, str], *, interrupt_after: str | None = None,
             timeout: float = 90) -> tuple[int, str]:
    """Run ``vbs ARGS`` on a terminal; SIGINT it once ``interrupt_after`` appears."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO_ROOT)
        # as a terminal's foreground command: Ctrl-C not ignored, even when
        # the test run itself was started in the background (SIG_IGN inherits)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-c", LAUNCHER, *args], env)
    screen = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.3)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                screen += data
            if interrupt_after and not sent and interrupt_after.encode() in screen:
                time.sleep(1.0)
                os.kill(pid, signal.SIGINT)
                sent = True
    finally:
        # Never wait forever on a command that did not exit: kill it, and let
        # the caller's assertion on the exit code show what the screen said.
        for _ in range(50):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def _terminal_env(server: RunningServer, columns: int = 200) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VBS_", "OS_"))}
    env.update(_env(server), TERM="xterm", COLUMNS=str(columns), LINES="50",
               PYTHONPATH=os.pathsep.join((str(REPO_ROOT), str(REPO_ROOT / "src"))))
    return env


def test_ctrl_c_while_waiting_prints_how_to_resume(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    idle = start_server(tmp_path_factory.mktemp("no-workers"), env={"VBS_JOBS__WORKERS": "0"})
    try:
        tenant = ProjectClient(idle)
        vol = tenant.volume("stuck")
        code, screen = _pty_run(["backup", "create", vol, "--name", "stuck", "--wait"],
                                _terminal_env(idle), interrupt_after="INIT")
        assert code == 130, screen
        jobs = [line for line in screen.splitlines() if "Resume with:" in line]
        assert jobs, screen
        job_id = jobs[0].split("vbs job show ")[1].split()[0]
        uuid.UUID(job_id)
        r = tenant("GET", f"/v1/{{p}}/jobs/{job_id}")
        assert r.status_code == 200 and r.json()["status"] == "INIT"  # still there, resumable
        assert r.json()["entities"]["volume_id"] == vol
    finally:
        idle.stop()


def test_ids_are_never_cut_on_a_narrow_terminal(server: RunningServer) -> None:
    ids = {vbs_json(server, "volume", "create", "--size", "1", "--name",
                    f"narrow-{i}-with-a-long-name")["id"] for i in range(2)}
    code, screen = _pty_run(["volume", "list"], _terminal_env(server, columns=60))
    assert code == 0, screen
    for volume_id in ids:
        assert volume_id in screen, screen
    assert "…" not in screen
    code, wide = _pty_run(["volume", "list"], _terminal_env(server, columns=200))
    assert code == 0 and "size (GiB)" in wide, wide
