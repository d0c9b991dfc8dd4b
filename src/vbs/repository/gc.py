"""Garbage collection: mark and sweep with a grace period, in two phases.

Why two phases: a backup loads the project index when it starts and dedups
against it. If GC deleted a pack the moment no manifest referenced it, a
backup that started earlier could still write a manifest pointing into it.
So GC never deletes what a running backup may have seen:

1. **Condemn** (every run). Mark every chunk referenced by any manifest
   (pages and their entries). Packs whose blobs are all dead, and packs whose
   live fraction is below ``repack_below`` (their live blobs are first copied
   into new packs and indexed), and unindexed packs older than the grace
   period (left by crashed backups), are written to a *condemnation record*
   (``gc/<id>``). Then the index is rewritten without the condemned packs and
   the old index files are deleted: backups that start from now on cannot
   see them.
2. **Sweep** (a later run). A record older than ``grace_seconds``, when no
   live backup lock was created before the record's index rewrite finished,
   is swept: condemned packs holding a blob that some manifest references
   again (a backup that started before the rewrite used it) are *rescued*
   (their entries indexed again); all others are deleted. Then the record is
   deleted.

Planning is pure (``plan_condemn``, ``plan_sweep``): data in, plan out,
tested against tables. ``collect`` executes. Only one GC runs per project
(a gc lock; a second GC raises LockConflict). Nothing here reads atime: GC
works the same on S3.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from vbs.errors import ObjectNotFound
from vbs.repository import format as fmt
from vbs.repository import layout
from vbs.repository.index import ENTRY_DTYPE, ChunkIndex
from vbs.repository.locks import exclusive, live_locks
from vbs.repository.manifest import split_page
from vbs.repository.pack import PACK_HEADER_NAME, PackBuilder, parse_pack_trailer
from vbs.repository.repo import ProjectStore

__all__ = [
    "CondemnPlan",
    "GcPolicy",
    "GcStatus",
    "PackInfo",
    "Record",
    "SweepPlan",
    "collect",
    "plan_condemn",
    "plan_sweep",
]


@dataclass(frozen=True)
class GcPolicy:
    grace_seconds: float = 3600.0
    repack_below: float = 0.5  # live fraction (bytes) under which a pack is repacked
    lock_stale_seconds: float = 1800.0  # a lock not refreshed for this long is dead


@dataclass(frozen=True)
class PackInfo:
    """What the planner knows about one pack."""

    pack_id: str
    size: int
    mtime: float
    indexed: bool
    blobs: int = 0
    live_blobs: int = 0
    live_bytes: int = 0
    stored_bytes: int = 0


@dataclass(frozen=True)
class Record:
    """A condemnation record: packs to delete after the grace period."""

    record_id: str
    created: float  # epoch seconds, written before the index rewrite
    committed: float | None  # epoch seconds after old index files were deleted
    packs: tuple[str, ...]

    def effective(self, grace: float) -> float:
        """When no backup started later can have seen the condemned packs."""
        return self.committed if self.committed is not None else self.created + grace


@dataclass(frozen=True)
class CondemnPlan:
    delete: tuple[str, ...] = ()  # packs with no live blob
    repack: tuple[str, ...] = ()  # packs whose live blobs move to new packs first
    orphans: tuple[str, ...] = ()  # unindexed packs older than the grace period


@dataclass(frozen=True)
class SweepPlan:
    record_id: str
    delete: tuple[str, ...]
    rescue: tuple[str, ...]


@dataclass
class GcStatus:
    backups: int = 0
    live_chunks: int = 0
    packs_total: int = 0
    condemned_packs: int = 0
    repacked_packs: int = 0
    orphan_packs: int = 0
    deleted_packs: int = 0
    rescued_packs: int = 0
    freed_bytes: int = 0
    records_pending: int = 0
    dry_run: bool = False
    postponed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.backups} backups, {self.live_chunks} live chunks in {self.packs_total} packs; "
            f"condemned {self.condemned_packs} packs ({self.repacked_packs} repacked, "
            f"{self.orphan_packs} orphans); deleted {self.deleted_packs} packs "
            f"({self.freed_bytes} bytes), rescued {self.rescued_packs}; "
            f"{self.records_pending} record(s) waiting for the grace period"
            + (" [dry run]" if self.dry_run else "")
        )


def plan_condemn(
    packs: Iterable[PackInfo], now: float, policy: GcPolicy, already: Iterable[str] = ()
) -> CondemnPlan:
    """Pure: which packs to condemn in this run."""
    skip = set(already)
    delete, repack, orphans = [], [], []
    for p in packs:
        if p.pack_id in skip:
            continue
        if not p.indexed:
            if now - p.mtime > policy.grace_seconds:
                orphans.append(p.pack_id)
            continue
        if p.live_blobs == 0:
            delete.append(p.pack_id)
        elif p.stored_bytes and p.live_bytes / p.stored_bytes < policy.repack_below:
            repack.append(p.pack_id)
    return CondemnPlan(tuple(sorted(delete)), tuple(sorted(repack)), tuple(sorted(orphans)))


def plan_sweep(
    records: Iterable[Record],
    live_packs: set[str],
    lock_created: Iterable[float],
    now: float,
    policy: GcPolicy,
) -> tuple[list[SweepPlan], list[str]]:
    """Pure: which records can be swept now; returns (plans, postponed record ids).

    ``live_packs`` are condemned packs holding a blob that a manifest
    references and no index knows elsewhere; ``lock_created`` are creation
    times of live (not stale) backup locks.
    """
    oldest_lock = min(lock_created, default=None)
    plans, postponed = [], []
    for r in records:
        if now - r.created <= policy.grace_seconds:
            postponed.append(r.record_id)
            continue
        if oldest_lock is not None and oldest_lock <= r.effective(policy.grace_seconds):
            postponed.append(r.record_id)
            continue
        rescue = tuple(p for p in r.packs if p in live_packs)
        delete = tuple(p for p in r.packs if p not in live_packs)
        plans.append(SweepPlan(r.record_id, delete, rescue))
    return plans, postponed


# --------------------------------------------------------------------------- execution


def _live_ids(store: ProjectStore, index: ChunkIndex) -> tuple[np.ndarray, int]:
    """Sorted unique ids of every page and chunk any manifest references."""
    parts: list[np.ndarray] = []
    ids = store.backup_ids()
    for backup_id in ids:
        root = store.load_manifest(backup_id)
        if root.page_ids:
            parts.append(np.array(root.page_ids, dtype="S32"))
        for p, page_id in enumerate(root.page_ids):
            page = store.load_page(page_id, index, where=f"backup {backup_id} page {p}")
            parts.append(np.array(split_page(page), dtype="S32"))
    if not parts:
        return np.empty(0, dtype="S32"), len(ids)
    live = np.unique(np.concatenate(parts))
    return live, len(ids)


def _load_records(store: ProjectStore) -> list[Record]:
    out = []
    for o in store.backend.list(layout.gc_prefix(store.project)):
        doc = json.loads(store.sealer.open(fmt.SEALED_KIND_GC, o.key, store.backend.get(o.key)))
        out.append(Record(doc["id"], doc["created"], doc.get("committed"), tuple(doc["packs"])))
    return out


def _save_record(store: ProjectStore, r: Record) -> None:
    key = layout.gc_key(store.project, r.record_id)
    body = json.dumps(
        {"id": r.record_id, "created": r.created, "committed": r.committed, "packs": list(r.packs)}
    ).encode()
    store.backend.put(key, store.sealer.seal(fmt.SEALED_KIND_GC, key, body))


def collect(
    store: ProjectStore,
    policy: GcPolicy | None = None,
    *,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> GcStatus:
    """Run one GC pass (sweep expired records, then condemn). Returns what it did.

    Raises LockConflict when another GC of the project is running.
    """
    policy = policy or GcPolicy()
    status = GcStatus(dry_run=dry_run)
    with exclusive(store, "gc", clock, policy.lock_stale_seconds):
        _sweep(store, policy, clock, status, dry_run)
        _condemn(store, policy, clock, status, dry_run)
    return status


def _pack_header(store: ProjectStore, pack_hex: str, size: int) -> bytes | None:
    """A pack's entry records, read from its tail; None if the pack is gone."""
    key = layout.pack_key(store.project, pack_hex)
    try:
        tail = store.backend.get(key, max(0, size - fmt.PACK_TRAILER.size))
        start, _count = parse_pack_trailer(tail, size, pack_hex)
        sealed = store.backend.get(key, start, size - fmt.PACK_TRAILER.size - start)
    except ObjectNotFound:
        return None
    return store.sealer.open(fmt.SEALED_KIND_PACK_HEADER, PACK_HEADER_NAME, sealed)


def _marking_index(
    store: ProjectStore, records: list[Record], sizes: Mapping[str, int]
) -> tuple[ChunkIndex, ChunkIndex, dict[str, bytes]]:
    """(the real index, the index plus condemned packs, condemned pack headers).

    Marking must see condemned packs too: a backup that started before they
    were condemned may reference pages or chunks that only they hold.
    """
    real = store.load_index()
    marking = store.load_index()
    headers: dict[str, bytes] = {}
    for pack_hex in sorted({p for r in records for p in r.packs}):
        if pack_hex not in sizes:
            continue
        raw = _pack_header(store, pack_hex, sizes[pack_hex])
        if raw is not None:
            headers[pack_hex] = raw
            marking.add_pack(pack_hex, raw)
    marking.merge()
    return real, marking, headers


def _pack_sizes(store: ProjectStore) -> dict[str, int]:
    return {
        o.key.rsplit("/", 1)[-1]: o.size
        for o in store.backend.list(layout.packs_prefix(store.project))
    }


def _sweep(
    store: ProjectStore,
    policy: GcPolicy,
    now_fn: Callable[[], float],
    status: GcStatus,
    dry_run: bool,
) -> None:
    now = now_fn()
    records = _load_records(store)
    if not records:
        return
    # Locks are listed BEFORE manifests: a backup writes its root, then drops its
    # lock. Listed the other way round, a backup could finish in between, its
    # root unseen by the marking and its lock already gone.
    locks = [
        x.created for x in live_locks(store, now, policy.lock_stale_seconds) if x.kind == "backup"
    ]
    sizes = _pack_sizes(store)
    real, marking, headers = _marking_index(store, records, sizes)
    live, _ = _live_ids(store, marking)
    # Condemned packs holding a live blob that the real index has nowhere else
    # (a backup may have indexed a pack after GC condemned it as an orphan).
    condemned = {p for r in records for p in r.packs}
    where = real.packs_of(live)
    missing = live[np.array([w is None or w in condemned for w in where], dtype=bool)]
    live_packs: set[str] = set()
    if len(missing):
        for pack_hex, raw in headers.items():
            ids = np.frombuffer(raw, dtype=ENTRY_DTYPE)["id"]
            if np.isin(ids, missing).any():
                live_packs.add(pack_hex)
    # A condemned pack that some index file names again (its backup indexed it
    # after GC condemned it as an orphan) may be deduplicated against by any
    # backup from then on: keep it; a later GC judges it like any indexed pack.
    reindexed = {p for p, _ in real.iter_packs()} & condemned
    plans, postponed = plan_sweep(records, live_packs | reindexed, locks, now, policy)
    status.postponed = postponed
    status.records_pending = len(postponed)
    for plan in plans:
        if dry_run:
            continue
        rescue = [p for p in plan.rescue if p not in reindexed and p in headers]
        if rescue:
            store.write_index([(p, headers[p]) for p in rescue])
        for p in plan.delete:
            store.backend.delete(layout.pack_key(store.project, p))
            status.freed_bytes += sizes.get(p, 0)
        store.backend.delete(layout.gc_key(store.project, plan.record_id))
        status.deleted_packs += len(plan.delete)
        status.rescued_packs += len(plan.rescue)


def _condemn(
    store: ProjectStore,
    policy: GcPolicy,
    now_fn: Callable[[], float],
    status: GcStatus,
    dry_run: bool,
) -> None:
    now = now_fn()
    old_index_files = store.index_names()
    pending = _load_records(store)
    listing = {
        o.key.rsplit("/", 1)[-1]: o for o in store.backend.list(layout.packs_prefix(store.project))
    }
    index, marking, _ = _marking_index(store, pending, {k: o.size for k, o in listing.items()})
    live, nbackups = _live_ids(store, marking)
    status.backups, status.live_chunks = nbackups, len(live)
    status.packs_total = len(listing)
    by_pack = dict(index.iter_packs())
    infos = []
    for pack_hex, o in listing.items():
        entries = by_pack.get(pack_hex)
        if entries is None:
            infos.append(PackInfo(pack_hex, o.size, o.mtime, indexed=False))
            continue
        is_live = np.isin(entries["id"], live) if len(live) else np.zeros(len(entries), bool)
        infos.append(
            PackInfo(
                pack_hex,
                o.size,
                o.mtime,
                indexed=True,
                blobs=len(entries),
                live_blobs=int(is_live.sum()),
                live_bytes=int(entries["length"][is_live].sum()),
                stored_bytes=int(entries["length"].sum()),
            )
        )
    already = {p for r in pending for p in r.packs}
    plan = plan_condemn(infos, now, policy, already)
    status.condemned_packs = len(plan.delete) + len(plan.repack) + len(plan.orphans)
    status.repacked_packs, status.orphan_packs = len(plan.repack), len(plan.orphans)
    if dry_run or not status.condemned_packs:
        return
    if plan.repack:
        _repack(store, plan.repack, by_pack, live)
    record = Record(uuid.uuid4().hex, now, None, plan.delete + plan.repack + plan.orphans)
    _save_record(store, record)
    gone = set(record.packs)
    keep = [(p, e.tobytes()) for p, e in index.iter_packs() if p not in gone]
    new_index = store.write_index(keep) if keep else None
    for key in old_index_files:
        if key != new_index:
            store.backend.delete(key)
    _save_record(store, Record(record.record_id, record.created, now_fn(), record.packs))


def _repack(
    store: ProjectStore, packs: Iterable[str], by_pack: Mapping[str, np.ndarray], live: np.ndarray
) -> None:
    """Copy the live blobs of ``packs`` into new packs and index them."""
    builder = PackBuilder()
    written: list[tuple[str, bytes]] = []

    def flush() -> None:
        nonlocal builder
        if len(builder):
            pack_hex, data, entries = builder.finish(store.sealer)
            assert data is not None  # built in memory: no writer
            store.put_pack(pack_hex, data)
            written.append((pack_hex, entries))
        builder = PackBuilder()

    for pack_hex in packs:
        entries = by_pack[pack_hex]
        keep = entries[np.isin(entries["id"], live)]
        for rec in keep:
            cid = bytes(rec["id"]).ljust(32, b"\0")
            blob = store.read_pack_range(pack_hex, int(rec["offset"]), int(rec["length"]))
            store.codec.decode(cid, blob, where=f"repack of pack {pack_hex}")
            builder.add(cid, int(rec["type"]), int(rec["plain"]), blob)
            if builder.size >= store.pack_target:
                flush()
    flush()
    if written:
        store.write_index(written)
