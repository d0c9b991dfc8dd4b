"""Private files (issue 8, item 5): SQLite database and -wal/-shm 0600,
repository directories 0700, and ``vbs admin user create`` passwords that
never need the command line (file, environment, prompt)."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LAUNCHER, REPO_ROOT, RunningServer, _env, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    old = os.umask(0o022)  # the usual umask: files would be 0644, dirs 0755
    try:
        srv = start_server(tmp_path_factory.mktemp("modes"))
    finally:
        os.umask(old)
    try:
        assert srv.cli("admin", "project", "create", "team").returncode == 0
        yield srv
    finally:
        srv.stop()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_repository_are_private(server: RunningServer) -> None:
    server.token()  # a write, so the WAL exists
    data = server.data_dir
    for name in ("vbs.db", "vbs.db-wal", "vbs.db-shm"):
        assert (data / name).exists(), name
        assert _mode(data / name) == 0o600, (name, oct(_mode(data / name)))
    repo = data / "repo"
    dirs = [repo, *(p for p in repo.rglob("*") if p.is_dir())]
    assert len(dirs) > 1
    assert {oct(_mode(d)) for d in dirs} == {oct(0o700)}


def test_password_from_file_and_environment(server: RunningServer, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    r = server.cli("admin", "user", "create", "filed", "--password-file", str(secret),
                   "--project", "team")
    assert r.returncode == 0, r.stderr
    assert server.login("filed", "from-a-file", "team").status_code == 201
    r = subprocess.run([sys.executable, "-c", LAUNCHER, "admin", "user", "create", "envy",
                        "--project", "team"], cwd=REPO_ROOT, capture_output=True, text=True,
                       env=_env({"VBS_DATA_DIR": str(server.data_dir),
                                 "VBS_NEW_PASSWORD": "from-env"}), timeout=120)
    assert r.returncode == 0, r.stderr
    assert server.login("envy", "from-env", "team").status_code == 201
    r = server.cli("admin", "user", "create", "nobody", "--project", "team")  # no tty
    assert r.returncode == 2 and "no password" in r.stderr
    r = server.cli("admin", "user", "create", "nobody", "--project", "team",
                   "--password-file", str(tmp_path / "missing"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_password_from_the_prompt(server: RunningServer) -> None:
    """A real terminal (pty as controlling tty): getpass prompts twice."""
    pid, fd = pty.fork()
    if pid == 0:  # child: exec the CLI with the pty as its terminal
        env = _env({"VBS_DATA_DIR": str(server.data_dir)})
        os.chdir(REPO_ROOT)
        os.execve(sys.executable, [sys.executable, "-c", LAUNCHER, "admin", "user", "create",
                                   "prompted", "--project", "team"], env)
    out = b""

    def read_until(marker: bytes) -> None:
        nonlocal out
        while marker not in out:
            chunk = os.read(fd, 1024)
            assert chunk, out
            out += chunk

    try:
        read_until(b"Password: ")
        os.write(fd, b"typed-pw\n")
        read_until(b"Repeat password: ")
        os.write(fd, b"typed-pw\n")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"typed-pw" not in out  # not echoed
    assert server.login("prompted", "typed-pw", "team").status_code == 201
