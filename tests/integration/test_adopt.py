"""Adopting unindexed packs: what a backup stored before it died is indexed,
not uploaded again; condemned and too-young packs are left alone."""

from __future__ import annotations

import os
from pathlib import Path

from vbs.engine.backup import backup
from vbs.repository import layout
from vbs.repository.adopt import adopt_unindexed_packs
from vbs.repository.backends import LocalBackend
from vbs.repository.gc import Record, _save_record
from vbs.repository.repo import Repository

MIB = 1 << 20


def _setup(tmp_path: Path) -> tuple[Repository, Path, list[str]]:
    repo = Repository.init(LocalBackend(tmp_path / "repo"), key_file_bytes=os.urandom(32),
                           pack_target=1 * MIB)
    image = tmp_path / "img"
    image.write_bytes(os.urandom(6 * MIB))
    store = repo.project("p")
    backup(store, image)
    packs = [o.key.rsplit("/", 1)[-1] for o in repo.backend.list(layout.packs_prefix("p"))]
    for key in store.index_names():  # as if the run died before naming its packs
        repo.backend.delete(key)
    return repo, image, packs


def test_adopted_packs_are_deduplicated_against(tmp_path: Path) -> None:
    repo, image, packs = _setup(tmp_path)
    store = repo.project("p")
    assert len(packs) >= 5 and len(store.load_index()) == 0
    assert adopt_unindexed_packs(store, min_age_seconds=3600).packs == 0  # too young
    report = adopt_unindexed_packs(store)
    assert report.packs == len(packs) and report.chunks >= 96 and report.unreadable == 0
    again = backup(store, image)
    assert again.stats.chunks_new == 0 and again.stats.packs_written == 0
    assert adopt_unindexed_packs(store).packs == 0  # nothing left to adopt


def test_condemned_packs_are_left_to_gc(tmp_path: Path) -> None:
    repo, _image, packs = _setup(tmp_path)
    store = repo.project("p")
    _save_record(store, Record("r1", 0.0, 1.0, (packs[0],)))
    report = adopt_unindexed_packs(store)
    assert report.packs == len(packs) - 1
    indexed = {p for p, _ in store.load_index().iter_packs()}
    assert packs[0] not in indexed and set(packs[1:]) <= indexed
