"""`vbs repo` the way restic users type it: real processes on a real repository.

Options before or after the action, ``latest`` and id prefixes, ``backup -``
from a pipe, absolute source paths, a passphrase prompt on a terminal,
restores that will not overwrite data unless told, clear ``--project``
misses, and verify's unindexed-pack warnings.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.volumes import MIB, file_sha256

VBS = [sys.executable, "-m", "vbs.cli"]
PASSWORD = "correct horse"


def run(args: list[str], env: dict[str, str], check: int | None = 0, *,
        stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*VBS, *args], env=env, capture_output=True, timeout=300,
                       input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       cwd=cwd)
    out = subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(),
                                      p.stderr.decode())
    if check is not None:
        assert out.returncode == check, (out.returncode, out.stdout, out.stderr)
    return out


def _random_file(path: Path, size: int) -> Path:
    """Incompressible, unique data: every backup of it stores new chunks."""
    path.write_bytes(os.urandom(size // 2) + bytes(size // 4) + os.urandom(size - size // 2
                                                                            - size // 4))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("VBS_")}
    e["VBS_REPO_PASSWORD"] = PASSWORD
    return e


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> str:
    path = str(tmp_path / "repo")
    run(["repo", "-r", path, "init"], env)
    return path


def test_global_options_go_before_or_after_the_action(repo: str, env: dict[str, str],
                                                      tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    _random_file(src, 2 * MIB)
    a = json.loads(run(["repo", "--json", "backup", str(src), "-r", repo], env).stdout)
    b = json.loads(run(["repo", "backup", "--repo", repo, str(src), "--json"], env).stdout)
    listed = json.loads(run(["repo", "list", "-r", repo, "--json"], env).stdout)
    assert {r["id"] for r in listed} == {a["id"], b["id"]}
    # After the action wins over nothing; a value given before is kept.
    same = json.loads(run(["repo", "-r", repo, "--json", "list", "--project", "default"],
                          env).stdout)
    assert same == listed
    # --password-file after the action too
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    no_env = {k: v for k, v in env.items() if k != "VBS_REPO_PASSWORD"}
    assert run(["repo", "stats", "-r", repo, "--password-file", str(pw)], no_env).stdout


def test_latest_and_unique_prefixes_name_backups(repo: str, env: dict[str, str],
                                                 tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    _random_file(src, 1 * MIB)
    g = ["-r", repo, "--json"]
    run(["repo", *g, "backup", str(src), "--id", "aaaa1111"], env)
    _random_file(src, 1 * MIB)
    digest = file_sha256(src)
    run(["repo", *g, "backup", str(src), "--id", "aaaa2222", "--parent", "latest"], env)
    assert json.loads(run(["repo", *g, "show", "latest"], env).stdout)["id"] == "aaaa2222"
    shown = json.loads(run(["repo", *g, "show", "aaaa1"], env).stdout)
    assert shown["id"] == "aaaa1111"
    assert json.loads(run(["repo", *g, "show", "aaaa2"], env).stdout)["parent_id"] == (
        "aaaa1111")
    p = run(["repo", *g, "show", "aaaa"], env, check=2)
    assert "ambiguous" in p.stderr and "aaaa1111" in p.stderr
    p = run(["repo", *g, "show", "bbbb"], env, check=6)
    assert "no backup 'bbbb'" in p.stderr
    out = tmp_path / "out.img"
    run(["repo", *g, "restore", "latest", str(out)], env)
    assert file_sha256(out) == digest
    assert json.loads(run(["repo", *g, "verify", "aaaa1"], env).stdout)["ok"] is True
    run(["repo", *g, "delete", "aaaa1"], env)
    assert [r["id"] for r in json.loads(run(["repo", *g, "list"], env).stdout)] == ["aaaa2222"]


def test_backup_from_stdin_and_absolute_source(repo: str, env: dict[str, str],
                                               tmp_path: Path) -> None:
    data = os.urandom(300_000) + bytes(2 * MIB) + os.urandom(1000)
    made = json.loads(run(["repo", "-r", repo, "--json", "backup", "-", "--stdin-name",
                           "db.dump"], env, stdin=data).stdout)
    shown = json.loads(run(["repo", "-r", repo, "--json", "show", made["id"]], env).stdout)
    assert shown["source"] == "db.dump" and shown["volume_size"] == len(data)
    out = tmp_path / "dump.out"
    run(["repo", "-r", repo, "restore", made["id"], str(out)], env)
    assert out.read_bytes() == data

    (tmp_path / "sub").mkdir()
    _random_file(tmp_path / "sub" / "rel.img", 1 * MIB)
    made = json.loads(run(["repo", "-r", repo, "--json", "backup", "rel.img"], env,
                          cwd=tmp_path / "sub").stdout)
    shown = json.loads(run(["repo", "-r", repo, "--json", "show", made["id"]], env).stdout)
    assert shown["source"] == str(tmp_path / "sub" / "rel.img")


def test_restore_will_not_overwrite_without_overwrite(repo: str, env: dict[str, str],
                                                      tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    _random_file(src, 1 * MIB)
    bid = json.loads(run(["repo", "-r", repo, "--json", "backup", str(src)], env).stdout)["id"]
    target = tmp_path / "precious.img"
    target.write_bytes(b"do not lose me")
    p = run(["repo", "-r", repo, "restore", bid, str(target)], env, check=8)
    assert "--overwrite" in p.stderr and p.stderr.count("\n") == 1
    assert target.read_bytes() == b"do not lose me"
    run(["repo", "-r", repo, "restore", bid, str(target), "--overwrite"], env)
    assert file_sha256(target) == file_sha256(src)
    empty = tmp_path / "empty.img"
    empty.touch()
    run(["repo", "-r", repo, "restore", bid, str(empty)], env)  # an empty file is fine
    assert file_sha256(empty) == file_sha256(src)


def test_unknown_project_is_named_not_listed_empty(repo: str, env: dict[str, str],
                                                   tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    _random_file(src, 1 * MIB)
    run(["repo", "-r", repo, "backup", str(src), "--project", "team-a"], env)
    p = run(["repo", "-r", repo, "list", "--project", "team-b"], env, check=2)
    assert "no project 'team-b' in this repository (projects: team-a)" in p.stderr
    assert "--data-dir" in p.stderr  # how to use project names instead
    assert not any("team-b" in x for x in os.listdir(Path(repo) / "projects"))
    assert len(json.loads(run(["repo", "-r", repo, "--json", "list", "--project", "team-a"],
                              env).stdout)) == 1


def test_verify_explains_unindexed_packs_and_exits_zero(repo: str, env: dict[str, str],
                                                        tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    _random_file(src, 1 * MIB)
    run(["repo", "-r", repo, "backup", str(src), "--id", "kept"], env)
    project = Path(repo) / "projects" / "default"
    before = {p.name for p in (project / "data").rglob("*") if p.is_file()}
    _random_file(src, 1 * MIB)
    run(["repo", "-r", repo, "backup", str(src), "--id", "cut"], env)
    # What a backup killed after writing its packs leaves: packs, no index, no manifest.
    newest_index = max((project / "index").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    newest_index.unlink()
    (project / "backups" / "cut").unlink()
    stray = sorted({p.name for p in (project / "data").rglob("*") if p.is_file()} - before)
    assert stray
    p = run(["repo", "-r", repo, "verify"], env)
    assert f"warning: unindexed_pack: {stray[0]}" in p.stdout
    assert "interrupted" in p.stdout and "vbs repo gc" in p.stdout
    assert "no errors found" in p.stdout
    doc = json.loads(run(["repo", "-r", repo, "--json", "verify"], env).stdout)
    assert (doc["ok"], doc["errors"], doc["warnings"]) == (True, 0, len(stray))


def _on_terminal(args: list[str], env: dict[str, str], answers: list[bytes],
                 timeout: float = 60) -> tuple[int, str]:
    """Run ``vbs ARGS`` on a pseudo-terminal, typing ``answers`` at each prompt."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [*VBS, *args], env)
    screen = b""
    answered = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        screen += data
        # Answer each prompt once it is on screen (getpass flushes typed-ahead input).
        if answered < len(answers) and screen.count(b"password") > answered and \
                screen.rstrip().endswith(b":"):
            os.write(fd, answers[answered] + b"\n")
            answered += 1
    else:
        os.kill(pid, 9)  # never hang the suite on a prompt nobody answers
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def test_passphrase_is_asked_on_a_terminal(repo: str, env: dict[str, str],
                                           tmp_path: Path) -> None:
    no_env = {k: v for k, v in env.items() if k != "VBS_REPO_PASSWORD"}
    code, screen = _on_terminal(["repo", "-r", repo, "list"], no_env, [PASSWORD.encode()])
    assert code == 0 and "enter password for repository:" in screen, screen
    assert "no backups" in screen and PASSWORD not in screen  # not echoed
    code, screen = _on_terminal(["repo", "-r", repo, "list"], no_env, [b"wrong"])
    assert code == 4, screen
    fresh = str(tmp_path / "fresh")
    code, screen = _on_terminal(["repo", "-r", fresh, "init"], no_env, [b"a", b"b"])
    assert code == 2 and "do not match" in screen, screen
    # Without a terminal it says how to give one, and exits 2 (usage).
    p = run(["repo", "-r", repo, "list"], no_env, check=2)
    assert "VBS_REPO_PASSWORD" in p.stderr
