"""The ``vbs`` client commands against a real server, run as subprocesses.

Credentials travel the way users pass them: ``OS_*`` variables (or
``--os-*`` options). ``--json`` output is parsed; text output is checked on
its tab-separated pipe form; the ``--wait`` progress bar is checked on a
pseudo-terminal. Families whose API is not mounted yet (native backup
list/show, sharing, quota) skip with a reason instead of failing.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import LAUNCHER, REPO_ROOT, RunningServer, run_cli, start_server
from tests.support.volumes import MIB, file_sha256, make_volume

_OS_VARS = ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_PROJECT_ID",
            "OS_USER_DOMAIN_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_REGION_NAME", "OS_INTERFACE",
            "OS_CACERT")


class Cli:
    """Runs ``vbs`` with the server's admin credentials in ``OS_*``."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.project = server.project_id(server.token())

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict.fromkeys(_OS_VARS, "")  # nothing leaks in from the caller's shell
        env.update(OS_AUTH_URL=self.server.auth_url, OS_USERNAME=self.server.admin_user,
                   OS_PASSWORD=self.server.admin_password,
                   OS_PROJECT_NAME=self.server.admin_project)
        env.update(overrides)
        return env

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env(**env))

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        r = self(*args)
        assert r.returncode == 0, f"vbs {' '.join(args)} -> {r.returncode}\n{r.stderr}"
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def route_missing(self, method: str, path: str) -> bool:
        """True if the server has no such route yet (404/405 for a literal path)."""
        r = httpx.request(method, self.server.base_url + path.replace("{p}", self.project),
                          headers={"X-Auth-Token": self.server.token()}, timeout=30)
        return r.status_code in (404, 405)

    def volume_file(self, volume_id: str) -> Path:
        return self.server.data_dir / "volumes" / f"{volume_id}.img"

    def filled_volume(self, name: str, seed: int) -> tuple[str, str]:
        """A new 1 GB volume with 24 MiB of mixed data; (id, sha256 of its file)."""
        vol = self.json("volume", "create", "--size", "1", "--name", name)
        path = self.volume_file(vol["id"])
        tmp = path.with_suffix(".gen")
        make_volume(tmp, 24 * MIB, seed=seed)
        with open(path, "r+b") as dst, open(tmp, "rb") as src:
            dst.write(src.read())
        tmp.unlink()
        return vol["id"], file_sha256(path)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    server = start_server(tmp_path_factory.mktemp("client-cli"))
    try:
        yield Cli(server)
    finally:
        server.stop()


def test_exported_members_exist() -> None:
    import importlib

    from vbs.cli.client import FAMILIES

    for name in ("client", "client_base", "client_http", "client_output", "client_wait",
                 *(f"client_{f}" for f in FAMILIES)):
        module = importlib.import_module(f"vbs.cli.{name}")
        assert all(hasattr(module, n) for n in module.__all__), name


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# --------------------------------------------------------------------------- auth, config


def test_bad_password_is_a_clear_authentication_error(cli: Cli) -> None:
    r = cli("volume", "list", OS_PASSWORD="wrong")
    assert r.returncode == 3
    assert _one_line(r.stderr).startswith("vbs: authentication failed: ")
    assert r.stdout == ""


def test_missing_variables_are_a_usage_error(cli: Cli) -> None:
    r = cli("backup", "list", OS_AUTH_URL="", OS_PASSWORD="")
    assert r.returncode == 2
    line = _one_line(r.stderr)
    assert line.startswith("vbs: missing ") and "OS_AUTH_URL" in line and "OS_PASSWORD" in line


def test_options_override_the_environment(cli: Cli) -> None:
    r = cli("volume", "list", "--json", "--os-password", cli.server.admin_password,
            OS_PASSWORD="wrong")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), list)


# --------------------------------------------------------------------------- volumes


def test_volume_create_list_show_delete(cli: Cli) -> None:
    vol = cli.json("volume", "create", "--size", "1", "--name", "cli-vol",
                   "--description", "made by the CLI")
    assert vol["status"] == "available" and vol["size"] == 1 and vol["name"] == "cli-vol"
    assert vol["id"] in {v["id"] for v in cli.json("volume", "list")}
    # text output on a pipe: tab-separated rows, no header
    rows = [line.split("\t") for line in cli.ok("volume", "list").stdout.splitlines()]
    assert [vol["id"], "cli-vol", "available", "1"] in [row[:4] for row in rows]
    assert cli.json("volume", "show", vol["id"])["description"] == "made by the CLI"
    assert cli.json("volume", "delete", vol["id"]) == {"id": vol["id"], "deleted": True}
    r = cli("volume", "show", vol["id"])
    assert r.returncode == 4
    assert _one_line(r.stderr).startswith("vbs: itemNotFound: ")


# --------------------------------------------------------------------------- backups, jobs


def test_backup_restore_delete_with_wait(cli: Cli) -> None:
    vol_id, digest = cli.filled_volume("cli-src", seed=11)
    job = cli.json("backup", "create", vol_id, "--name", "cli-b1", "--tag", "env=test",
                   "--wait")
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksCreateBackup", job
    assert job["entities"]["volume_id"] == vol_id
    assert set(job["progress"]) == {"done", "total"}
    backup_id = job["entities"]["backup_id"]
    # the job is still there to show, in JSON and as field/value rows
    shown = cli.json("job", "show", job["job_id"])
    assert shown["status"] == "SUCCESS" and shown["entities"]["backup_id"] == backup_id
    rows = dict(line.split("\t", 1) for line in
                cli.ok("job", "show", job["job_id"]).stdout.splitlines())
    assert rows["status"] == "SUCCESS" and rows["entities.backup_id"] == backup_id

    target = cli.json("volume", "create", "--size", "1", "--name", "cli-target")
    job = cli.json("backup", "restore", backup_id, "--volume", target["id"], "--wait")
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksRestoreBackup", job
    assert file_sha256(cli.volume_file(target["id"])) == digest

    # without --wait: the job id, then job show --wait follows it
    started = cli.json("backup", "delete", backup_id)
    assert set(started) == {"job_id"}
    job = cli.json("job", "show", started["job_id"], "--wait")
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksDeleteBackup"
    r = cli("backup", "delete", backup_id)
    assert r.returncode == 4
    assert _one_line(r.stderr).startswith("vbs: VolumeBackup.0110: ")


def test_unknown_backup_and_job_are_not_found(cli: Cli) -> None:
    missing = str(uuid.uuid4())
    vol = cli.json("volume", "create", "--size", "1", "--name", "cli-nf")
    for args, code in (
        (("backup", "delete", missing, "--wait"), "VolumeBackup.0110"),
        (("backup", "restore", missing, "--volume", vol["id"]), "VolumeBackup.0111"),
        (("job", "show", missing), "common.0011"),
    ):
        r = cli(*args)
        assert r.returncode == 4, (args, r.stderr)
        assert _one_line(r.stderr).startswith(f"vbs: {code}: "), r.stderr
        assert r.stdout == ""
    if cli.route_missing("GET", "/v3/{p}/backups/detail"):
        pytest.skip("native backups API (/v3/{p}/backups) not mounted yet")
    r = cli("backup", "show", missing)
    assert r.returncode == 4
    assert _one_line(r.stderr).startswith("vbs: itemNotFound: ")


def test_api_error_has_code_and_message(cli: Cli) -> None:
    vol = cli.json("volume", "create", "--size", "1", "--name", "cli-err")
    r = cli("backup", "create", vol["id"], "--name", "autobad")
    assert r.returncode == 1
    assert _one_line(r.stderr).startswith("vbs: VolumeBackup.0005: ")


def test_failed_job_exits_5_with_its_reason(cli: Cli) -> None:
    vol = cli.json("volume", "create", "--size", "1", "--name", "cli-gone")
    cli.volume_file(vol["id"]).unlink()  # the source disappears under the service
    r = cli("backup", "create", vol["id"], "--name", "doomed", "--wait", "--json")
    assert r.returncode == 5, r.stderr
    job = json.loads(r.stdout)
    assert job["status"] == "FAIL" and job["error_code"]
    line = _one_line(r.stderr)
    assert line.startswith(f"vbs: job {job['job_id']} failed: {job['error_code']}: ")


def test_wait_shows_a_progress_bar_on_a_terminal(cli: Cli) -> None:
    vol_id, _ = cli.filled_volume("cli-bar", seed=12)
    master, slave = pty.openpty()
    env = {**os.environ, **cli.env(), "TERM": "xterm-256color", "COLUMNS": "120",
           "PYTHONPATH": os.pathsep.join((str(REPO_ROOT), str(REPO_ROOT / "src")))}
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "backup", "create", vol_id, "--name", "cli-bar",
         "--wait"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=slave, text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the child side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "backup" in screen and "SUCCESS" in screen, screen
    assert "is available" in out


# --------------------------------------------------------------------------- policies


def test_policy_lifecycle(cli: Cli) -> None:
    created = cli.json("policy", "create", "cli-daily", "--start-time", "22:00,02:00",
                       "--week-frequency", "MON,THU", "--retention-num", "7",
                       "--keep-first-of-month", "Y", "--time-zone", "UTC+02:00",
                       "--tag", "team=dba")
    pid = created["backup_policy_id"]
    listed = {p["backup_policy_id"]: p for p in cli.json("policy", "list")}
    assert listed[pid]["scheduled_policy"]["rentention_num"] == 7
    shown = cli.json("policy", "show", pid)
    assert shown["backup_policy_name"] == "cli-daily"
    assert shown["scheduled_policy"]["week_frequency"] == ["MON", "THU"]
    assert shown["scheduled_policy"]["status"] == "ON"
    assert shown["time_zone"] == "UTC+02:00"

    cli.ok("policy", "update", pid, "--disable", "--frequency", "2", "--name", "cli-every2")
    shown = cli.json("policy", "show", pid)
    assert shown["backup_policy_name"] == "cli-every2"
    assert shown["scheduled_policy"]["status"] == "OFF"
    assert shown["scheduled_policy"]["frequency"] == 2
    assert "week_frequency" not in shown["scheduled_policy"]

    vol_id, _ = cli.filled_volume("cli-pol", seed=13)
    missing = str(uuid.uuid4())
    r = cli("policy", "bind", pid, vol_id, missing, "--json")
    assert r.returncode == 1  # one volume failed
    outcome = json.loads(r.stdout)
    assert [x["resource_id"] for x in outcome["success_resources"]] == [vol_id]
    assert [x["resource_id"] for x in outcome["fail_resources"]] == [missing]
    assert _one_line(r.stderr).startswith("vbs: AutoBackup.1400: ")
    assert cli.json("policy", "show", pid)["policy_resource_count"] == 1

    # run now, then follow the task's backup job
    cli.ok("policy", "run", pid)
    tasks = cli.json("policy", "tasks", pid)
    assert tasks["count"] >= 1
    job_ids = [t["vbs_job_id"] for t in tasks["tasks"] if t.get("vbs_job_id")]
    if job_ids:
        job = cli.json("job", "show", job_ids[0], "--wait")
        assert job["status"] == "SUCCESS" and job["entities"]["volume_id"] == vol_id

    outcome = cli.json("policy", "unbind", pid, vol_id)
    assert outcome["success_resources"] == [{"resource_id": vol_id}]
    r = cli("policy", "update", pid, "--frequency", "99")
    assert r.returncode == 1
    assert _one_line(r.stderr).startswith("vbs: AutoBackup.0106: ")
    assert cli.json("policy", "delete", pid) == {"backup_policy_id": pid, "deleted": True}
    for args in (("policy", "show", pid), ("policy", "delete", pid)):
        r = cli(*args)
        assert r.returncode == 4, r.stderr
        assert _one_line(r.stderr).startswith("vbs: AutoBackup.0205: ")


def test_policy_create_needs_a_schedule(cli: Cli) -> None:
    r = cli("policy", "create", "cli-x", "--start-time", "01:00")
    assert r.returncode == 2 and "required" in r.stderr


# --------------------------------------------------------------- native list/show, sharing, quota


def test_backup_list_and_show(cli: Cli) -> None:
    if cli.route_missing("GET", "/v3/{p}/backups/detail"):
        pytest.skip("native backups API (/v3/{p}/backups) not mounted yet")
    vol_id, _ = cli.filled_volume("cli-list", seed=14)
    job = cli.json("backup", "create", vol_id, "--name", "cli-listed", "--wait")
    backup_id = job["entities"]["backup_id"]
    listed = cli.json("backup", "list", "--volume", vol_id)
    assert [b["id"] for b in listed] == [backup_id]
    assert listed[0]["status"] == "available"
    shown = cli.json("backup", "show", backup_id)
    assert shown["name"] == "cli-listed" and shown["volume_id"] == vol_id
    rows = [line.split("\t") for line in cli.ok("backup", "list").stdout.splitlines()]
    assert backup_id in [row[0] for row in rows]


def test_quota_show(cli: Cli) -> None:
    if cli.route_missing("GET", "/v2/{p}/cloudbackups/quota"):
        pytest.skip("quota API (/v2/{p}/cloudbackups/quota) not mounted yet")
    quotas = cli.json("quota", "show")
    types = {r["type"]: r for r in quotas["quotas"]["resources"]}
    assert set(types) == {"backups", "backup_gigabytes"}
    assert all(isinstance(r["used"], int) for r in types.values())


def test_share_create_list_show_delete(cli: Cli) -> None:
    if cli.route_missing("GET", "/v2/{p}/os-vendor-backup-sharing/detail"):
        pytest.skip("sharing API (/v2/{p}/os-vendor-backup-sharing) not mounted yet")
    other = cli.server.cli("admin", "project", "create", "cli-share-peer")
    assert other.returncode == 0, other.stderr
    peer = other.stdout.strip()
    vol_id, _ = cli.filled_volume("cli-share", seed=15)
    job = cli.json("backup", "create", vol_id, "--name", "cli-shared", "--wait")
    backup_id = job["entities"]["backup_id"]
    shares = cli.json("share", "create", backup_id, "--to", peer)
    assert [(s["backup_id"], s["to_project_id"]) for s in shares] == [(backup_id, peer)]
    share_id = shares[0]["id"]
    assert share_id in {s["id"] for s in cli.json("share", "list", "--backup", backup_id)}
    assert cli.json("share", "count", "--backup", backup_id) == {"count": 1}
    shown = cli.json("share", "show", share_id)
    assert shown["backup"]["id"] == backup_id
    cli.ok("share", "delete", share_id)
    r = cli("share", "show", share_id)
    assert r.returncode == 4
    assert _one_line(r.stderr).startswith("vbs: itemNotFound: ")
