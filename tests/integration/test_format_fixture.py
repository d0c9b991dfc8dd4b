"""A repository written by format v1, committed to the tree, must restore byte for
byte forever (STYLE.md: stored fixtures for anything versioned). Regenerate it
only together with a new format version, keeping this one."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from vbs.engine.restore import restore
from vbs.engine.verify import verify_project
from vbs.repository.backends import LocalBackend
from vbs.repository.repo import Repository

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "repo-v1"
SHA256 = "c13ed1bfcaf66e0609f8a1d6e09f135a5106b9b5f75431f429971451ef13c961"
SIZE = 1024 * 1024 + 4321


def test_format_v1_fixture_restores_byte_for_byte(tmp_path: Path) -> None:
    repo_dir = tmp_path / "repo"
    shutil.copytree(FIXTURE, repo_dir)  # verify may write quarantine records
    repo = Repository.open(LocalBackend(repo_dir), passphrase="vbs-fixture")
    assert repo.config.chunk_size == 64 * 1024 and repo.config.version == 1
    store = repo.project("fixture")
    assert store.backup_ids() == ["fixture-full"]
    out = tmp_path / "out.img"
    restore(store, "fixture-full", out)
    assert out.stat().st_size == SIZE
    assert hashlib.sha256(out.read_bytes()).hexdigest() == SHA256
    assert [f for f in verify_project(store, quarantine=False) if f.kind.is_error] == []
