"""`vbs benchmark` as a user runs it: a real process, a real repository, JSON out.

No timing is asserted (the machine is shared); what is asserted is that every
stage ran over the bytes it claims, the pipeline round trip was checked, and
the repository is left exactly as it was (the benchmark object is deleted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VBS = [sys.executable, "-m", "vbs.cli"]


def run(args: list[str], env: dict[str, str], check: int = 0) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*VBS, *args], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, VBS_REPO_PASSWORD="benchmark pw", VBS_REPO=str(tmp_path / "repo"))
    run(["repo", "init"], e)
    return e


def test_benchmark_json_measures_every_stage_and_leaves_repo_unchanged(
    env: dict[str, str], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    run(["repo", "list"], env)  # creates the default project's key, as a backup would
    before = _files(repo)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    doc = json.loads(
        run(["benchmark", "--size", "3", "--json", "--scratch", str(scratch)], env).stdout
    )
    names = [r["name"] for r in doc["results"]]
    assert names == [
        "keyed BLAKE3",
        "zstd level 1 compress",
        "zstd level 1 decompress",
        "AES-256-GCM encrypt",
        "AES-256-GCM decrypt",
        "pack write (durable)",
        "pack read",
        "pipeline backup",
        "pipeline restore",
    ]
    by = {r["name"]: r for r in doc["results"]}
    assert doc["sample_bytes"] == 3 * 1024 * 1024
    assert by["pipeline backup"]["bytes"] == by["pipeline restore"]["bytes"] == 3 * 1024 * 1024
    nonzero = round(doc["nonzero_share"] * doc["sample_bytes"])
    assert abs(by["keyed BLAKE3"]["bytes"] - nonzero) <= 64 * 1024
    # the object written is read back whole
    assert by["pack read"]["bytes"] == by["pack write (durable)"]["bytes"] > 0
    assert all(r["mb_per_s"] > 0 and r["seconds"] > 0 for r in doc["results"])
    assert doc["cpu_bound_backup_mb_per_s"] > 0 and doc["zstd_level"] == 1
    assert _files(repo) == before  # benchmark object deleted, nothing else written
    assert list(scratch.iterdir()) == []  # scratch repository and files removed
    assert json.loads(run(["repo", "--json", "verify"], env).stdout)["ok"] is True


def test_benchmark_table_without_repository(tmp_path: Path) -> None:
    e = {k: v for k, v in os.environ.items() if k not in ("VBS_REPO", "VBS_REPO_PASSWORD")}
    out = run(["benchmark", "--size", "1", "--scratch", str(tmp_path)], e).stdout
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["operation", "MB/s"]
    assert any(line.startswith("pipeline restore") for line in lines)
    assert not any(line.startswith("pack write") for line in lines)  # no repository given
    assert "allow about" in out


def test_benchmark_bad_input_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    p = run(["benchmark", "--size", "0"], env, check=2)
    assert "--size" in p.stderr and "Traceback" not in p.stderr
    p = run(["benchmark", "--size", "1"], dict(env, VBS_REPO_PASSWORD="wrong"), check=4)
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_benchmark_unknown_project_is_refused_and_creates_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A project name (or a typo) is not an id of the repository: refused with the
    ids it has, and no key object of a new project is left behind."""
    repo = tmp_path / "repo"
    run(["repo", "list"], env)  # the repository now has the project "default"
    before = _files(repo)
    p = run(["benchmark", "--size", "1", "--no-pipeline", "--project", "admin"], env, check=2)
    assert "no project 'admin'" in p.stderr and "default" in p.stderr
    assert "Traceback" not in p.stderr
    assert _files(repo) == before
