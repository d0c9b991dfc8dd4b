"""Restore on worker processes (vbs.engine.restore_procs): the same bytes as
the threaded restore, the same errors, and no worker left behind, whatever
happens to a worker. Repositories are real directories; the faults are real
(bytes flipped in a pack, a pack deleted, a worker killed)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from pathlib import Path

import pytest

from tests.integration.test_engine_roundtrip import SHAPES, _write
from tests.support.volumes import KIB, MIB, file_sha256, make_volume
from vbs.engine.backup import backup
from vbs.engine.common import CancelToken
from vbs.engine.restore import restore
from vbs.errors import Cancelled, CorruptObject, EngineError
from vbs.repository import layout
from vbs.repository.backends import LocalBackend
from vbs.repository.keys import KdfParams
from vbs.repository.repo import ProjectStore, Repository

FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    repo = Repository.init(
        LocalBackend(tmp_path / "repo"), passphrase="pw", kdf=FAST_KDF, pack_target=4 * MIB
    )
    return repo.project("p1")


def _no_workers_left() -> bool:
    return not [p for p in multiprocessing.active_children() if p.name == "vbs-restore-worker"]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_round_trips_on_forked_workers(
    store: ProjectStore, tmp_path: Path, shape: str
) -> None:
    size, parts = SHAPES[shape]
    src = _write(tmp_path / "src.img", size, parts)
    res = backup(store, src, name=shape)
    out = tmp_path / "out.img"
    st = restore(store, res.root.backup_id, out, processes=2, start_method="fork")
    assert out.stat().st_size == size == st.volume_size
    assert file_sha256(out) == file_sha256(src)
    assert _no_workers_left()


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_mixed_volume_on_workers_matches_threads_and_keeps_holes(
    store: ProjectStore, tmp_path: Path, start_method: str
) -> None:
    src = make_volume(tmp_path / "src.img", 40 * MIB + 4096, seed=3)
    res = backup(store, src)
    threads = restore(store, res.root.backup_id, tmp_path / "t.img")
    out = tmp_path / "p.img"
    procs = restore(store, res.root.backup_id, out, processes=3, start_method=start_method)
    assert file_sha256(out) == file_sha256(src)
    assert (procs.bytes_written, procs.chunks_written) == (
        threads.bytes_written, threads.chunks_written)
    assert out.stat().st_blocks <= src.stat().st_blocks + 8  # zero chunks stay holes
    assert _no_workers_left()


def test_workers_over_existing_data_zero_the_zero_regions(
    store: ProjectStore, tmp_path: Path
) -> None:
    src = make_volume(tmp_path / "src.img", 12 * MIB, seed=4)
    res = backup(store, src)
    out = tmp_path / "out.img"
    out.write_bytes(os.urandom(13 * MIB))
    restore(store, res.root.backup_id, out, processes=2, start_method="fork")
    assert file_sha256(out, 12 * MIB) == file_sha256(src)
    assert out.stat().st_size == 13 * MIB


def test_workers_write_through_an_open_descriptor(store: ProjectStore, tmp_path: Path) -> None:
    """A descriptor-only target (an imported volume): workers reopen the
    parent's open file, not a path."""
    src = make_volume(tmp_path / "src.img", 8 * MIB, seed=5)
    res = backup(store, src)
    out = tmp_path / "out.img"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.rename(out, tmp_path / "moved.img")  # the path no longer names the file
        restore(store, res.root.backup_id, fd, processes=2, start_method="fork")
    finally:
        os.close(fd)
    assert file_sha256(tmp_path / "moved.img") == file_sha256(src)


def _pack_of_second_chunk(store: ProjectStore, backup_id: str) -> tuple[Path, int, int]:
    index = store.load_index()
    root = store.load_manifest(backup_id)
    page = store.load_page(root.page_ids[0], index)
    loc = index.lookup(page[32:64])
    assert loc is not None
    path = Path(store.backend.location) / layout.pack_key("p1", loc.pack_id)  # type: ignore[attr-defined]
    return path, loc.offset, loc.length


def test_a_flipped_byte_stops_the_restore_naming_the_chunk(
    store: ProjectStore, tmp_path: Path
) -> None:
    src = _write(tmp_path / "s.img", 6 * MIB, [(0, os.urandom(6 * MIB))])
    res = backup(store, src)
    path, off, length = _pack_of_second_chunk(store, res.root.backup_id)
    raw = bytearray(path.read_bytes())
    raw[off + length // 2] ^= 0x40
    path.write_bytes(raw)
    with pytest.raises(CorruptObject, match=r"chunk [0-9a-f]{64} \(volume offset 65536"):
        restore(store, res.root.backup_id, tmp_path / "o.img", processes=2, start_method="fork")
    assert _no_workers_left()


def test_a_missing_pack_stops_the_restore(store: ProjectStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "s.img", 2 * MIB, [(0, os.urandom(2 * MIB))])
    res = backup(store, src)
    path, _, _ = _pack_of_second_chunk(store, res.root.backup_id)
    path.unlink()
    with pytest.raises(CorruptObject, match=r"volume offset 0.*pack"):
        restore(store, res.root.backup_id, tmp_path / "o.img", processes=2, start_method="fork")
    assert _no_workers_left()


def test_a_killed_worker_fails_the_restore(store: ProjectStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "s.img", 64 * MIB, [(0, os.urandom(64 * MIB))])
    res = backup(store, src)
    killed: list[int] = []

    def kill_a_worker(done: int, total: int) -> None:
        if not killed:
            victim = [p for p in multiprocessing.active_children()
                      if p.name == "vbs-restore-worker"][0]
            assert victim.pid is not None
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    with pytest.raises(EngineError, match="ended without finishing its share"):
        restore(store, res.root.backup_id, tmp_path / "o.img", progress=kill_a_worker,
                processes=2, start_method="fork")
    assert killed and _no_workers_left()


def test_cancel_stops_every_worker(store: ProjectStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "s.img", 64 * MIB, [(0, os.urandom(64 * MIB))])
    res = backup(store, src)
    cancel = CancelToken()
    seen: list[int] = []

    def cancel_at_first(done: int, total: int) -> None:
        seen.append(done)
        cancel.cancel()

    with pytest.raises(Cancelled):
        restore(store, res.root.backup_id, tmp_path / "o.img", progress=cancel_at_first,
                cancel=cancel, processes=2, start_method="fork")
    assert seen and seen[-1] < 64 * MIB
    assert _no_workers_left()


def test_the_codec_a_worker_gets_decodes_what_the_store_encoded(store: ProjectStore) -> None:
    plain = os.urandom(64 * KIB)
    cid = store.codec.chunk_id(plain)
    blob = store.codec.encode(cid, 0, plain)
    copy = pickle.loads(pickle.dumps(store.codec))
    assert copy.level == store.codec.level
    assert copy.decode(cid, bytes(blob)).plaintext == plain
    assert pickle.loads(pickle.dumps(store.packs)).shareable
