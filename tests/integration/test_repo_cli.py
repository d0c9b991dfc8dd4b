"""`vbs repo` as a user runs it: real processes, exit codes, JSON output, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.volumes import MIB, file_sha256, make_volume

VBS = [sys.executable, "-m", "vbs.cli"]


def run(
    args: list[str], env: dict[str, str], check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*VBS, *args], env=env, capture_output=True, text=True, timeout=300)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, VBS_REPO_PASSWORD="correct horse", VBS_REPO=str(tmp_path / "repo"))
    run(["repo", "init"], e)
    return e


def test_backup_list_show_restore_verify_delete_gc(env: dict[str, str], tmp_path: Path) -> None:
    src = make_volume(tmp_path / "v.img", 12 * MIB + 5)
    out = json.loads(run(["repo", "--json", "backup", str(src), "--name", "nightly"], env).stdout)
    bid = out["id"]
    assert out["stats"]["volume_size"] == 12 * MIB + 5
    listed = json.loads(run(["repo", "--json", "list"], env).stdout)
    assert [b["id"] for b in listed] == [bid] and listed[0]["name"] == "nightly"
    shown = json.loads(run(["repo", "--json", "show", bid], env).stdout)
    assert shown["source"] == str(src)
    run(["repo", "restore", bid, str(tmp_path / "o.img")], env)
    assert file_sha256(tmp_path / "o.img") == file_sha256(src)
    assert json.loads(run(["repo", "--json", "verify", bid], env).stdout)["ok"] is True
    assert json.loads(run(["repo", "--json", "verify"], env).stdout)["ok"] is True
    stats = json.loads(run(["repo", "--json", "stats"], env).stdout)
    assert stats["backups"] == 1 and stats["packs"] >= 1
    run(["repo", "delete", bid], env)
    gc = json.loads(run(["repo", "--json", "gc", "--grace", "0"], env).stdout)
    assert gc["condemned_packs"] >= 1
    assert json.loads(run(["repo", "--json", "list"], env).stdout) == []


def test_restore_on_threads_or_worker_processes_gives_the_same_bytes(
    env: dict[str, str], tmp_path: Path
) -> None:
    src = make_volume(tmp_path / "v.img", 20 * MIB + 3, seed=9)
    bid = json.loads(run(["repo", "--json", "backup", str(src)], env).stdout)["id"]
    for n in ("1", "3"):
        out = tmp_path / f"o{n}.img"
        done = json.loads(run(["repo", "--json", "restore", bid, str(out), "--processes", n],
                              env).stdout)
        assert file_sha256(out) == file_sha256(src)
        assert done["volume_size"] == 20 * MIB + 3
    p = run(["repo", "restore", bid, str(tmp_path / "o0.img"), "--processes", "0"], env, check=2)
    assert "--processes must be at least 1" in p.stderr
    assert not (tmp_path / "o0.img").exists()


def test_errors_are_one_line_with_distinct_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    bad = dict(env, VBS_REPO_PASSWORD="wrong")
    p = run(["repo", "list"], bad, check=4)
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    p = run(["repo", "list"], dict(env, VBS_REPO=str(tmp_path / "none")), check=3)
    assert "no repository" in p.stderr
    p = run(["repo", "show", "0123abcd"], env, check=6)
    assert "no backup" in p.stderr
    p = run(["repo", "backup", str(tmp_path / "missing.img")], env, check=8)
    assert "cannot open source" in p.stderr
    p = run(["repo", "init"], env, check=1)
    assert "already exists" in p.stderr
    nopw = {k: v for k, v in env.items() if k != "VBS_REPO_PASSWORD"}
    p = run(["repo", "list"], nopw, check=2)
    assert "VBS_REPO_PASSWORD" in p.stderr


def test_corrupt_pack_gives_exit_5_naming_the_chunk(env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "v.img"
    src.write_bytes(os.urandom(3 * MIB))
    bid = json.loads(run(["repo", "--json", "backup", str(src)], env).stdout)["id"]
    packs = [p for p in (Path(env["VBS_REPO"]) / "projects/default/data").rglob("*") if p.is_file()]
    pack = max(packs, key=lambda p: p.stat().st_size)  # a data pack, not the manifest page's
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 3] ^= 1
    pack.write_bytes(raw)
    p = run(["repo", "restore", bid, str(tmp_path / "o.img")], env, check=5)
    assert "chunk " in p.stderr and "volume offset" in p.stderr and "Traceback" not in p.stderr
    p = run(["repo", "verify", bid], env, check=5)
    assert "corrupt_chunk" in p.stdout


@pytest.mark.slow
def test_kill_9_mid_backup_leaves_a_repository_that_verifies(env: dict[str, str],
                                                             tmp_path: Path) -> None:
    src = tmp_path / "big.img"
    with open(src, "wb") as f:  # 320 MiB of incompressible data: takes a while
        for _ in range(320):
            f.write(os.urandom(MIB))
    first = make_volume(tmp_path / "small.img", 4 * MIB)
    ok = json.loads(run(["repo", "--json", "backup", str(first)], env).stdout)["id"]
    proc = subprocess.Popen([*VBS, "repo", "backup", str(src)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index_dir = Path(env["VBS_REPO"]) / "projects/default/index"
    deadline = time.monotonic() + 120

    def index_files() -> int:  # complete index files only, not atomic_write temp files
        return sum(1 for p in index_dir.iterdir() if not p.name.startswith("."))

    before = index_files()
    while time.monotonic() < deadline and proc.poll() is None:
        if index_files() > before:  # some packs are durable and indexed
            break
        time.sleep(0.005)
    assert proc.poll() is None, "backup finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    verified = json.loads(run(["repo", "--json", "verify"], env, check=None).stdout)
    assert verified["ok"] is True, verified
    assert [b["id"] for b in json.loads(run(["repo", "--json", "list"], env).stdout)] == [ok]
    again = json.loads(run(["repo", "--json", "backup", str(src)], env).stdout)
    assert again["stats"]["chunks_dedup"] > 0  # packs indexed before the kill are reused
    run(["repo", "restore", again["id"], str(tmp_path / "o.img")], env)
    assert file_sha256(tmp_path / "o.img") == file_sha256(src)
    run(["repo", "restore", ok, str(tmp_path / "o2.img")], env)
    assert file_sha256(tmp_path / "o2.img") == file_sha256(first)
