"""Garbage collection: plans are pure and table-tested; execution frees exactly
what no backup uses, and never a chunk a concurrent backup relies on."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.support.volumes import MIB, file_sha256
from vbs.engine.backup import backup
from vbs.engine.restore import restore
from vbs.engine.verify import verify_project
from vbs.errors import LockConflict
from vbs.repository import layout
from vbs.repository.backends import LocalBackend
from vbs.repository.gc import (
    GcPolicy,
    PackInfo,
    Record,
    collect,
    plan_condemn,
    plan_sweep,
)
from vbs.repository.keys import KdfParams
from vbs.repository.locks import RepositoryLock
from vbs.repository.repo import ProjectStore, Repository

FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
POLICY = GcPolicy(grace_seconds=100, repack_below=0.5, lock_stale_seconds=50)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    repo = Repository.init(LocalBackend(tmp_path / "repo"), passphrase="pw", kdf=FAST_KDF,
                           pack_target=1 * MIB)
    return repo.project("p")


def _vol(path: Path, seed: int, size: int = 3 * MIB) -> Path:
    rnd = __import__("random").Random(seed)
    path.write_bytes(rnd.randbytes(size))
    return path


def _pack_bytes(store: ProjectStore) -> int:
    return sum(o.size for o in store.backend.list(layout.packs_prefix(store.project)))


# --- pure planning --------------------------------------------------------------------

@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (PackInfo("a", 10, 0, True, 4, 0, 0, 40), "delete"),
        (PackInfo("a", 10, 0, True, 4, 1, 10, 40), "repack"),
        (PackInfo("a", 10, 0, True, 4, 2, 20, 40), None),  # exactly at the threshold: keep
        (PackInfo("a", 10, 0, True, 4, 4, 40, 40), None),
        (PackInfo("a", 10, 0, False), "orphan"),  # mtime 0, now 1000 > grace
        (PackInfo("a", 10, 950, False), None),  # young unindexed pack: maybe in flight
    ],
)
def test_plan_condemn_table(info: PackInfo, expected: str | None) -> None:
    plan = plan_condemn([info], now=1000, policy=POLICY)
    got = [k for k in ("delete", "repack", "orphans") if getattr(plan, k)]
    assert got == ([] if expected is None else ["orphans" if expected == "orphan" else expected])


def test_plan_condemn_skips_already_condemned() -> None:
    plan = plan_condemn([PackInfo("a", 1, 0, True, 1, 0, 0, 1)], 1000, POLICY, already={"a"})
    assert plan.delete == ()


@pytest.mark.parametrize(
    ("created", "committed", "locks", "now", "swept"),
    [
        (0, 5, [], 50, False),  # grace not over
        (0, 5, [], 101, True),
        (0, 5, [4.0], 200, False),  # a backup started before the index rewrite finished
        (0, 5, [6.0], 200, True),  # started after: could not have seen the packs
        (0, None, [50.0], 200, False),  # crashed before 'committed': created+grace is used
        (0, None, [101.0], 200, True),
    ],
)
def test_plan_sweep_table(created: float, committed: float | None, locks: list[float],
                          now: float, swept: bool) -> None:
    rec = Record("r", created, committed, ("p1", "p2"))
    plans, postponed = plan_sweep([rec], {"p2"}, locks, now, POLICY)
    if swept:
        assert postponed == [] and plans[0].delete == ("p1",) and plans[0].rescue == ("p2",)
    else:
        assert plans == [] and postponed == ["r"]


# --- execution --------------------------------------------------------------------------

def test_gc_after_delete_frees_exactly_the_unshared_chunks(store: ProjectStore,
                                                            tmp_path: Path) -> None:
    shared = os.urandom(2 * MIB)
    a = tmp_path / "a.img"
    b = tmp_path / "b.img"
    a.write_bytes(shared + os.urandom(MIB))
    b.write_bytes(shared + os.urandom(MIB))
    ra = backup(store, a)
    rb = backup(store, b)
    before = len(store.load_index())
    store.delete_manifest(ra.root.backup_id)
    clock = Clock(time.time())
    s1 = collect(store, POLICY, clock=clock)
    assert s1.condemned_packs >= 1 and s1.deleted_packs == 0  # condemned, not yet deleted
    after_condemn = len(store.load_index())
    clock.t += POLICY.grace_seconds + 1
    s2 = collect(store, POLICY, clock=clock)
    assert s2.deleted_packs == s1.condemned_packs and s2.freed_bytes > 0
    index = store.load_index()
    # a's 16 unique chunks and its page are gone; everything b needs is still indexed
    assert len(index) == after_condemn
    assert before - len(index) >= 16
    restore(store, rb.root.backup_id, tmp_path / "b.out")
    assert file_sha256(tmp_path / "b.out") == file_sha256(b)
    assert [f for f in verify_project(store) if f.kind.is_error] == []


def test_gc_with_no_deletions_changes_nothing(store: ProjectStore, tmp_path: Path) -> None:
    r = backup(store, _vol(tmp_path / "v.img", 1))
    size = _pack_bytes(store)
    status = collect(store, POLICY, clock=Clock(2e9))
    assert status.condemned_packs == 0 and _pack_bytes(store) == size
    restore(store, r.root.backup_id, tmp_path / "o.img")
    assert file_sha256(tmp_path / "o.img") == file_sha256(tmp_path / "v.img")


def test_sweep_waits_for_backups_that_started_before_condemnation(store: ProjectStore,
                                                                  tmp_path: Path) -> None:
    """A backup that loaded the index before GC condemned a pack may reference it:
    its lock postpones the sweep, and the pack is rescued once its manifest exists."""
    v = _vol(tmp_path / "v.img", 2)
    first = backup(store, v)
    index_seen_by_slow_backup = store.load_index()  # a slow backup starts here...
    lock = RepositoryLock(store, "backup").acquire()
    store.delete_manifest(first.root.backup_id)
    clock = Clock(time.time())
    collect(store, POLICY, clock=clock)  # condemns every pack of `first`
    clock.t += POLICY.grace_seconds + 1
    lock_created = lock.created.timestamp()
    assert lock_created < clock.t
    status = collect(store, GcPolicy(100, 0.5, lock_stale_seconds=1e12), clock=clock)
    assert status.deleted_packs == 0 and status.records_pending == 1  # postponed by the lock
    # ...and finishes, deduplicating every chunk against the stale index.
    second = backup(store, v, index=index_seen_by_slow_backup)
    assert second.stats.chunks_new == 0
    lock.release()
    status = collect(store, POLICY, clock=clock)
    assert status.rescued_packs >= 1
    restore(store, second.root.backup_id, tmp_path / "o.img")
    assert file_sha256(tmp_path / "o.img") == file_sha256(v)


def test_gc_concurrent_with_backups_loses_nothing(store: ProjectStore, tmp_path: Path) -> None:
    vols = [_vol(tmp_path / f"v{i}.img", 10 + i, 2 * MIB) for i in range(6)]
    results = []
    old = [backup(store, vols[0]), backup(store, vols[1])]
    for r in old:
        store.delete_manifest(r.root.backup_id)
    errors: list[BaseException] = []

    def backups() -> None:
        try:
            for v in vols:
                results.append((backup(store, v), file_sha256(v)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=backups)
    t.start()
    clock = Clock(time.time())
    while t.is_alive():
        with contextlib.suppress(LockConflict):
            collect(store, GcPolicy(0, 0.9, 1e12), clock=clock)
        clock.t += 10
    t.join()
    assert not errors
    for _ in range(3):  # sweep everything that can be swept
        clock.t += 1000
        collect(store, GcPolicy(0, 0.9, 1e12), clock=clock)
    for r, digest in results:
        out = tmp_path / f"{r.root.backup_id}.out"
        restore(store, r.root.backup_id, out)
        assert file_sha256(out) == digest
    assert [f for f in verify_project(store) if f.kind.is_error] == []


def test_repack_moves_live_chunks_and_frees_space(store: ProjectStore, tmp_path: Path) -> None:
    keep = os.urandom(MIB // 4)
    v1 = tmp_path / "v1.img"
    v1.write_bytes(keep + os.urandom(MIB - MIB // 4))  # one 1 MiB pack, 1/4 of it stays live
    r1 = backup(store, v1)
    v2 = tmp_path / "v2.img"
    v2.write_bytes(keep)
    r2 = backup(store, v2)
    store.delete_manifest(r1.root.backup_id)
    clock = Clock(time.time())
    s = collect(store, POLICY, clock=clock)
    assert s.repacked_packs >= 1
    clock.t += 1000
    collect(store, POLICY, clock=clock)
    restore(store, r2.root.backup_id, tmp_path / "o.img")
    assert (tmp_path / "o.img").read_bytes() == keep
    assert _pack_bytes(store) < MIB


def test_second_gc_is_refused_while_one_runs(store: ProjectStore) -> None:
    lock = RepositoryLock(store, "gc").acquire()
    try:
        with pytest.raises(LockConflict):
            collect(store, POLICY)
    finally:
        lock.release()


def test_orphan_pack_of_a_crashed_backup_is_removed_after_grace(store: ProjectStore,
                                                                tmp_path: Path) -> None:
    backup(store, _vol(tmp_path / "v.img", 3))
    # a pack uploaded by a backup that died before writing its index file
    from vbs.repository.pack import PackBuilder

    pb = PackBuilder()
    data = os.urandom(1000)
    cid = store.codec.chunk_id(data)
    pb.add(cid, 0, len(data), store.codec.encode(cid, 0, data))
    pack_id, raw, _ = pb.finish(store.sealer)
    store.put_pack(pack_id, raw)
    clock = Clock(4e9)  # far later than the pack's mtime
    assert collect(store, POLICY, clock=clock).orphan_packs == 1
    clock.t += 1000
    collect(store, POLICY, clock=clock)
    assert not store.backend.exists(layout.pack_key(store.project, pack_id))


def test_orphan_indexed_after_condemnation_is_kept(store: ProjectStore, tmp_path: Path) -> None:
    """A pack condemned as an orphan that its (slow) backup indexes afterwards may be
    deduplicated against by later backups: the sweep must keep it."""
    from vbs.repository.pack import PackBuilder

    data = os.urandom(5000)
    cid = store.codec.chunk_id(data)
    pb = PackBuilder()
    pb.add(cid, 0, len(data), store.codec.encode(cid, 0, data))
    pack_id, raw, entries = pb.finish(store.sealer)
    store.put_pack(pack_id, raw)
    clock = Clock(time.time() + 10_000)
    assert collect(store, POLICY, clock=clock).orphan_packs == 1
    store.write_index([(pack_id, entries)])  # the slow backup indexes its pack late
    clock.t += 1000
    status = collect(store, POLICY, clock=clock)
    assert status.deleted_packs == 0
    assert store.backend.exists(layout.pack_key(store.project, pack_id))
    # still unreferenced, so condemned afresh (and unindexed again) by the same pass
    assert status.condemned_packs == 1 and store.load_index().lookup(cid) is None
