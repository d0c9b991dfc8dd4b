"""Backup and restore on real files: byte-identical round trips, incrementals,
corruption detection, verify. Repositories are real directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.volumes import KIB, MIB, file_sha256, make_volume, mutate_volume
from vbs.engine.backup import backup
from vbs.engine.restore import restore
from vbs.engine.verify import FindingKind, verify_backup, verify_project
from vbs.errors import BackupNotFound, CorruptObject, RepositoryNotFound, WrongPassword
from vbs.repository import layout
from vbs.repository.backends import LocalBackend
from vbs.repository.keys import KdfParams
from vbs.repository.repo import ProjectStore, Repository

FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
CS = 64 * KIB


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository.init(
        LocalBackend(tmp_path / "repo"), passphrase="pw", kdf=FAST_KDF, pack_target=4 * MIB
    )


@pytest.fixture
def store(repo: Repository) -> ProjectStore:
    return repo.project("p1")


def _write(path: Path, size: int, parts: list[tuple[int, bytes]]) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in parts:
            f.seek(off)
            f.write(data)
    return path


SHAPES = {
    "empty": (0, []),
    "one_byte": (1, [(0, b"\x01")]),
    "holes_only": (10 * MIB, []),
    "written_zeros": (3 * MIB, [(0, bytes(3 * MIB))]),
    "random_unaligned_size": (5 * MIB + 12345, [(0, os.urandom(5 * MIB + 12345))]),
    "text": (2 * MIB, [(0, (b"2026-11-27 INFO request ok path=/v2/x\n" * 60000)[: 2 * MIB])]),
    "duplicated_blocks": (4 * MIB, [(0, os.urandom(CS) * 64)]),
    "tail_chunk_short_zero": (CS + 100, [(0, os.urandom(CS))]),
    "data_after_hole": (8 * MIB + 7, [(8 * MIB, b"tail...")]),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_round_trip_is_byte_identical(store: ProjectStore, tmp_path: Path, shape: str) -> None:
    size, parts = SHAPES[shape]
    src = _write(tmp_path / "src.img", size, parts)
    res = backup(store, src, name=shape)
    out = tmp_path / "out.img"
    st = restore(store, res.root.backup_id, out)
    assert out.stat().st_size == size == st.volume_size
    assert file_sha256(out) == file_sha256(src)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_cold_source_reads_the_same_chunks(store: ProjectStore, tmp_path: Path, shape: str) -> None:
    """Reading around the page cache (a service's fresh reflink snapshot)
    yields the very chunks a buffered read does, unaligned tails included."""
    size, parts = SHAPES[shape]
    src = _write(tmp_path / "src.img", size, parts)
    plain = backup(store, src, name="buffered")
    cold = backup(store, src, name="direct", cold_source=True)
    assert cold.root.page_ids == plain.root.page_ids
    assert cold.stats.bytes_read == plain.stats.bytes_read
    assert cold.stats.chunks_new == 0  # every chunk was found again
    out = tmp_path / "out.img"
    restore(store, cold.root.backup_id, out)
    assert file_sha256(out) == file_sha256(src)


def test_mixed_volume_round_trip_and_holes_stay_holes(store: ProjectStore, tmp_path: Path) -> None:
    src = make_volume(tmp_path / "src.img", 24 * MIB + 4096)
    res = backup(store, src)
    assert res.stats.chunks_zero > 0 and res.stats.chunks_new > 0
    out = tmp_path / "out.img"
    restore(store, res.root.backup_id, out)
    assert file_sha256(out) == file_sha256(src)
    # zero chunks are not written: the restored file is at most as allocated as the source
    assert out.stat().st_blocks <= src.stat().st_blocks + 8


def test_restore_over_existing_data_zeroes_zero_regions(
    store: ProjectStore, tmp_path: Path
) -> None:
    src = make_volume(tmp_path / "src.img", 6 * MIB)
    res = backup(store, src)
    out = tmp_path / "out.img"
    out.write_bytes(os.urandom(7 * MIB))  # larger, full of garbage
    restore(store, res.root.backup_id, out)
    assert file_sha256(out, 6 * MIB) == file_sha256(src)
    assert out.stat().st_size == 7 * MIB  # bytes past the volume untouched


@pytest.mark.slow
def test_2gib_sparse_volume(store: ProjectStore, tmp_path: Path) -> None:
    size = 2 * 1024 * MIB
    marks = [(0, b"start"), (size // 2 + 3, os.urandom(300 * KIB)), (size - 5, b"end!!")]
    src = _write(tmp_path / "big.img", size, marks)
    res = backup(store, src)
    assert res.stats.bytes_read <= 3 * 4 * MIB  # only the three 4 MiB segments with data
    assert res.stats.chunks_new == 1 + 5 + 1
    out = tmp_path / "big-out.img"
    restore(store, res.root.backup_id, out)
    assert out.stat().st_size == size
    assert out.stat().st_blocks * 512 < 16 * MIB  # restored sparse
    with open(out, "rb") as f:
        for off, data in marks:
            f.seek(off)
            assert f.read(len(data)) == data


def test_incremental_uploads_only_changed_chunks(store: ProjectStore, tmp_path: Path) -> None:
    src = make_volume(tmp_path / "v.img", 32 * MIB, seed=5)
    full = backup(store, src)
    before = {i: b for i, b in _chunks(src)}
    rewritten = mutate_volume(src, 2.0, seed=9, block=CS)  # 64 KiB aligned random writes
    changed = sum(1 for i, b in _chunks(src) if before.get(i) != b)
    assert rewritten // CS == changed > 0
    incr = backup(store, src, parent_id=full.root.backup_id)
    assert incr.stats.chunks_new == changed
    assert incr.stats.bytes_new_plain == changed * CS
    assert incr.stats.pages_new == 1  # 32 MiB = 512 chunks: one page, rewritten
    out = tmp_path / "o.img"
    restore(store, incr.root.backup_id, out)
    assert file_sha256(out) == file_sha256(src)
    unchanged = backup(store, src, parent_id=incr.root.backup_id)
    assert unchanged.stats.chunks_new == 0 and unchanged.stats.pages_new == 0
    assert unchanged.root.page_ids == incr.root.page_ids


def _chunks(path: Path) -> list[tuple[int, bytes]]:
    data = path.read_bytes()
    return [(i // CS, data[i : i + CS]) for i in range(0, len(data), CS)]


def test_flipped_byte_fails_restore_and_verify_naming_the_chunk(
    store: ProjectStore, tmp_path: Path
) -> None:
    src = _write(tmp_path / "s.img", 2 * MIB, [(0, os.urandom(2 * MIB))])
    res = backup(store, src)
    # find the blob of the volume's second chunk and flip one byte inside it
    index = store.load_index()
    page = store.load_page(res.root.page_ids[0], index)
    loc = index.lookup(page[32:64])
    assert loc is not None
    path = Path(store.backend.location) / layout.pack_key("p1", loc.pack_id)  # type: ignore[attr-defined]
    raw = bytearray(path.read_bytes())
    raw[loc.offset + loc.length // 2] ^= 0x40
    path.write_bytes(raw)
    out = tmp_path / "o.img"
    with pytest.raises(CorruptObject, match=r"chunk [0-9a-f]{64} \(volume offset 65536"):
        restore(store, res.root.backup_id, out)
    findings = verify_backup(store, res.root.backup_id)
    assert [f.kind for f in findings] == [FindingKind.CORRUPT_CHUNK]
    assert "volume offset 65536" in findings[0].detail
    project_findings = verify_project(store)
    kinds = {f.kind for f in project_findings}
    assert FindingKind.CORRUPT_PACK in kinds and FindingKind.CORRUPT_CHUNK in kinds
    # quarantined: the next backup stores a good copy and restores again
    again = backup(store, src)
    assert again.stats.chunks_new == 1
    restore(store, again.root.backup_id, tmp_path / "o2.img")
    assert file_sha256(tmp_path / "o2.img") == file_sha256(src)


def test_verify_clean_repository(store: ProjectStore, tmp_path: Path) -> None:
    src = make_volume(tmp_path / "v.img", 8 * MIB)
    res = backup(store, src)
    assert verify_backup(store, res.root.backup_id) == []
    assert [f for f in verify_project(store) if f.kind.is_error] == []


def test_wrong_password_and_missing_repository(tmp_path: Path, repo: Repository) -> None:
    with pytest.raises(WrongPassword):
        Repository.open(LocalBackend(tmp_path / "repo"), passphrase="nope")
    with pytest.raises(RepositoryNotFound):
        Repository.open(LocalBackend(tmp_path / "nothing"), passphrase="pw")
    again = Repository.open(LocalBackend(tmp_path / "repo"), passphrase="pw")
    assert again.config.repo_id == repo.config.repo_id


def test_projects_are_isolated(repo: Repository, tmp_path: Path) -> None:
    src = _write(tmp_path / "s.img", MIB, [(0, os.urandom(MIB))])
    a = backup(repo.project("a"), src)
    b = backup(repo.project("b"), src)
    assert b.stats.chunks_new == a.stats.chunks_new == 16  # no cross-project dedup
    with pytest.raises(BackupNotFound):
        restore(repo.project("b"), a.root.backup_id, tmp_path / "x.img")
    assert repo.projects() == ["a", "b"]


def test_deleting_a_newer_backup_keeps_older_restorable(
    store: ProjectStore, tmp_path: Path
) -> None:
    src = make_volume(tmp_path / "v.img", 8 * MIB, seed=3)
    first = backup(store, src)
    digest = file_sha256(src)
    mutate_volume(src, 10, seed=4)
    second = backup(store, src, parent_id=first.root.backup_id)
    store.delete_manifest(second.root.backup_id)
    restore(store, first.root.backup_id, tmp_path / "o.img")
    assert file_sha256(tmp_path / "o.img") == digest
    assert store.backup_ids() == [first.root.backup_id]


@pytest.mark.s3
def test_round_trip_incremental_and_gc_on_s3(seaweedfs: object, tmp_path: Path) -> None:
    """The same engine on a real S3 server (SeaweedFS): the backend is the only difference."""
    from vbs.repository.backends import open_backend
    from vbs.repository.gc import GcPolicy, collect

    s3 = seaweedfs
    bucket = s3.new_bucket()  # type: ignore[attr-defined]
    backend = open_backend(
        f"s3://{bucket}/vbs", endpoint_url=s3.endpoint_url,  # type: ignore[attr-defined]
        access_key=s3.access_key, secret_key=s3.secret_key,  # type: ignore[attr-defined]
        region=s3.region,  # type: ignore[attr-defined]
    )
    repo = Repository.init(backend, passphrase="pw", kdf=FAST_KDF, pack_target=2 * MIB)
    st = Repository.open(backend, passphrase="pw").project("s3p")
    src = make_volume(tmp_path / "v.img", 10 * MIB + 333, seed=8)
    full = backup(st, src)
    mutate_volume(src, 5, seed=1)
    incr = backup(st, src, parent_id=full.root.backup_id)
    assert 0 < incr.stats.chunks_new < full.stats.chunks_new
    restore(st, incr.root.backup_id, tmp_path / "o.img")
    assert file_sha256(tmp_path / "o.img") == file_sha256(src)
    st.delete_manifest(full.root.backup_id)
    collect(st, GcPolicy(grace_seconds=0))
    collect(st, GcPolicy(grace_seconds=0))
    # Asked for worker processes, an S3 restore stays on threads (a network
    # client is not handed to other processes) and still restores.
    assert not st.packs.shareable
    restore(st, incr.root.backup_id, tmp_path / "o2.img", processes=2)
    assert file_sha256(tmp_path / "o2.img") == file_sha256(src)
    assert [f for f in verify_project(st) if f.kind.is_error] == []
    assert repo.config.chunk_size == CS


def test_packs_are_cut_at_the_target_size(tmp_path: Path) -> None:
    """Blobs go to packs a segment (64 chunks, 4 MiB) at a time, but a pack
    still ends at the first blob that reaches the target (1 MiB here), not at
    the end of the segment: GC frees whole packs and restore reads by pack."""
    repo = Repository.init(LocalBackend(tmp_path / "repo"), passphrase="pw", kdf=FAST_KDF,
                           pack_target=1 * MIB)
    store = repo.project("p1")
    src = _write(tmp_path / "v.img", 12 * MIB, [(0, os.urandom(12 * MIB))])
    result = backup(store, src, workers=1)
    root = tmp_path / "repo" / layout.packs_prefix("p1")
    sizes = sorted(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert result.stats.packs_written == len(sizes) >= 12
    blob = CS + 36  # random data: stored raw, plus header, nonce and tag
    assert max(sizes) < 1 * MIB + blob + 16 * KIB  # one blob over, plus the pack header
    out = tmp_path / "out.img"
    restore(store, result.root.backup_id, out)
    assert file_sha256(out) == file_sha256(src)
