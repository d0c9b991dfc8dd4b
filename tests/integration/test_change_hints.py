"""Change hints for `vbs repo backup --parent ID --changed-ranges FILE`, and the guard.

Real processes and real files: rbd-diff JSON and plain [offset, length]
lists are honoured (only the hinted chunks are read, every backup restores
byte for byte), and hints that omit a real change are caught by the guard
sample (or by ``--verify-unchanged``) so the backup is still correct.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.volumes import KIB, MIB, file_sha256

VBS = [sys.executable, "-m", "vbs.cli"]
CS = 64 * KIB
SIZE = 64 * MIB


def run(args: list[str], env: dict[str, str], check: int | None = 0
        ) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*VBS, *args], env=env, capture_output=True, text=True, timeout=300)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def backup(env: dict[str, str], src: Path, *extra: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(run(["repo", "--json", "backup", str(src), *extra],
                                         env).stdout)
    return out


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, VBS_REPO_PASSWORD="pw", VBS_REPO=str(tmp_path / "repo"))
    run(["repo", "init"], e)
    return e


def _volume(path: Path) -> Path:
    rng = random.Random(5)
    with open(path, "wb") as f:
        f.truncate(SIZE)
        for _ in range(24):
            f.seek(rng.randrange(0, SIZE - MIB, 4096))
            f.write(rng.randbytes(MIB))
    return path


def _mutate(path: Path, writes: list[tuple[int, int]], seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "r+b") as f:
        for off, n in writes:
            f.seek(off)
            f.write(rng.randbytes(n))


def _restored(env: dict[str, str], bid: str, tmp_path: Path) -> str:
    out = tmp_path / f"{bid}.out"
    run(["repo", "restore", bid, str(out)], env)
    return file_sha256(out)


def test_rbd_diff_and_plain_hints_read_only_the_hinted_chunks(env: dict[str, str],
                                                              tmp_path: Path) -> None:
    src = _volume(tmp_path / "v.img")
    first = backup(env, src)
    assert first["change_tracking"] == "none"
    writes = [(3 * MIB + 4096, 20 * KIB), (40 * MIB, 2 * MIB), (SIZE - CS, CS)]
    _mutate(src, writes, 1)
    rbd = [{"offset": o, "length": n, "exists": "true"} for o, n in writes]
    rbd.append({"offset": 50 * MIB, "length": CS, "exists": "false"})  # discarded: a change
    hints = tmp_path / "rbd.json"
    hints.write_text(json.dumps(rbd))
    second = backup(env, src, "--parent", first["id"], "--changed-ranges", str(hints))
    assert second["change_tracking"] == "hints" and second["guard"] is None
    stats = second["stats"]
    assert stats["chunks_changed"] == 1 + 32 + 1 + 1
    assert stats["chunks_sampled"] >= 16
    assert stats["bytes_read"] <= (stats["chunks_changed"] + stats["chunks_sampled"]) * CS
    assert _restored(env, second["id"], tmp_path) == file_sha256(src)

    # the plain list form
    _mutate(src, [(7 * MIB, CS)], 2)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([[7 * MIB, CS]]))
    third = backup(env, src, "--parent", second["id"], "--changed-ranges", str(plain))
    assert third["change_tracking"] == "hints" and third["stats"]["chunks_changed"] == 1
    assert _restored(env, third["id"], tmp_path) == file_sha256(src)
    assert _restored(env, first["id"], tmp_path) != file_sha256(src)


def test_guard_catches_forged_unchanged_ranges_and_backup_is_correct(
        env: dict[str, str], tmp_path: Path) -> None:
    src = _volume(tmp_path / "v.img")
    first = backup(env, src)
    # a real 8 MiB change the hints leave out: the spread sample must land in it
    _mutate(src, [(20 * MIB, 8 * MIB), (60 * MIB, CS)], 3)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps([[60 * MIB, CS]]))
    p = run(["repo", "--json", "backup", str(src), "--parent", first["id"],
             "--changed-ranges", str(forged)], env)
    out = json.loads(p.stdout)
    assert out["change_tracking"] == "none"
    assert out["stats"]["guard_mismatch"] == 1
    assert "guard" in out["guard"] and "guard" in p.stderr
    assert out["stats"]["bytes_read"] >= 24 * MIB  # the fallback read everything
    assert _restored(env, out["id"], tmp_path) == file_sha256(src)

    # a single omitted chunk may slip past a sample, never past --verify-unchanged
    _mutate(src, [(33 * MIB, 4096)], 4)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    out = backup(env, src, "--parent", out["id"], "--changed-ranges", str(empty),
                 "--verify-unchanged")
    assert out["stats"]["guard_mismatch"] == 1 and out["change_tracking"] == "none"
    assert _restored(env, out["id"], tmp_path) == file_sha256(src)

    # honest hints with --verify-unchanged: every chunk is compared, the shortcut holds
    good = backup(env, src, "--parent", out["id"], "--changed-ranges", str(empty),
                  "--verify-unchanged")
    assert good["change_tracking"] == "hints" and good["stats"]["guard_mismatch"] == 0
    assert good["stats"]["chunks_sampled"] == SIZE // CS


BAD_HINTS = [
    ("not json", "not JSON"),
    ('{"offset": 0}', "JSON list"),
    ("[[0]]", "item 0"),
    ("[[-1, 10]]", "non-negative"),
    ("[[0, true]]", "non-negative"),
    (f"[[{SIZE - 10}, 11]]", "beyond the source"),
]


def test_bad_hint_files_are_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    src = _volume(tmp_path / "v.img")
    first = backup(env, src)
    hints = tmp_path / "h.json"
    for content, needle in BAD_HINTS:
        hints.write_text(content)
        p = run(["repo", "backup", str(src), "--parent", first["id"], "--changed-ranges",
                 str(hints)], env, check=2)
        assert needle in p.stderr, (content, p.stderr)
    assert len(json.loads(run(["repo", "--json", "list"], env).stdout)) == 1


def test_hints_need_a_parent(env: dict[str, str], tmp_path: Path) -> None:
    src = _volume(tmp_path / "v.img")
    hints = tmp_path / "h.json"
    hints.write_text("[]")
    p = run(["repo", "backup", str(src), "--changed-ranges", str(hints)], env, check=2)
    assert "--parent" in p.stderr
