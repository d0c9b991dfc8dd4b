"""Volume-store use cases on real SQLite and PostgreSQL with a real file driver.

Covers the records the backup service relies on (create/get/list/delete,
snapshots incl. internal ones, import) and the status compare-and-set under
a two-thread race.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import vbs.db.models_volumes  # noqa: F401 - registers the tables for the parity check
from tests.support.server import database_url, fresh_database_url  # noqa: F401 - fixtures
from vbs.db.base import Base
from vbs.db.migrate import upgrade
from vbs.db.session import Database
from vbs.identity import create_project, ensure_default_domain
from vbs.service.listing import parse_page_request
from vbs.service.volumes import (
    GIB,
    VOLUME_LIST,
    InvalidVolumeInput,
    MarkerNotFound,
    SnapshotFilters,
    SnapshotRecordNotFound,
    VolumeFilters,
    VolumeImportRefused,
    VolumeRecordNotFound,
    VolumeStateConflict,
    create_snapshot,
    create_volume,
    delete_snapshot,
    delete_volume,
    get_snapshot,
    get_volume,
    import_existing,
    list_snapshots,
    list_volumes,
    recover_interrupted,
    snapshot_path,
    transition_volume,
    volume_path,
)
from vbs.volumes import FileVolumeDriver

VOLUME_TABLES = {"volumes", "snapshots"}


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[Database]:  # noqa: F811
    upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def project(db: Database) -> str:
    with db.session() as session:
        ensure_default_domain(session)
        return create_project(session, f"p-{uuid.uuid4().hex[:12]}").id


@pytest.fixture
def driver(tmp_path: Path) -> FileVolumeDriver:
    return FileVolumeDriver(tmp_path / "volumes")


def _page(**query: str):  # type: ignore[no-untyped-def]
    return parse_page_request(query, VOLUME_LIST)


def test_models_match_migration(fresh_database_url: str) -> None:  # noqa: F811
    upgrade(fresh_database_url)
    database = Database(fresh_database_url)
    try:
        with database.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     Base.metadata)
    finally:
        database.dispose()
    mine = [d for d in diffs if any(f"'{t}'" in repr(d) for t in VOLUME_TABLES)]
    assert mine == []


def test_create_get_and_file_on_disk(db: Database, driver: FileVolumeDriver, project: str) -> None:
    with db.session() as session:
        record = create_volume(session, driver, project, 2, "vol", "d", {"k": "v"},
                               user_id="u1")
    assert record.status == "available" and record.size_gb == 2 and record.size_bytes == 2 * GIB
    assert str(uuid.UUID(record.id)) == record.id
    path = volume_path(driver, record)
    assert path == driver.root / f"{record.id}.img"
    assert path.stat().st_size == 2 * GIB
    with db.session() as session:
        again = get_volume(session, project, record.id.upper())
    assert again == record
    assert dict(again.metadata) == {"k": "v"}
    with db.session() as session, pytest.raises(VolumeRecordNotFound):
        get_volume(session, "0" * 32, record.id)  # another project's volume is not found
    with db.session() as session, pytest.raises(VolumeRecordNotFound):
        get_volume(session, project, "not-a-uuid")


@pytest.mark.parametrize("size", [0, -1, True, "2"])
def test_create_rejects_bad_size(db: Database, driver: FileVolumeDriver, project: str,
                                 size: object) -> None:
    with db.session() as session, pytest.raises(InvalidVolumeInput):
        create_volume(session, driver, project, size, "x")  # type: ignore[arg-type]


def test_create_rejects_bad_text_and_metadata(db: Database, driver: FileVolumeDriver,
                                              project: str) -> None:
    with db.session() as session, pytest.raises(InvalidVolumeInput, match="255"):
        create_volume(session, driver, project, 1, "n" * 256)
    with db.session() as session, pytest.raises(InvalidVolumeInput, match="metadata"):
        create_volume(session, driver, project, 1, "n", metadata={"k": 1})  # type: ignore[dict-item]


def test_list_filters_sort_and_keyset_pages(db: Database, driver: FileVolumeDriver,
                                            project: str) -> None:
    with db.session() as session:
        made = [create_volume(session, driver, project, 1, f"v{i}") for i in range(5)]
        create_volume(session, driver, project, 3, None)
    ids = [v.id for v in made]
    with db.session() as session:
        seen: list[str] = []
        marker = None
        while True:
            query = {"limit": "2", "sort": "name:asc", "name~": ""}
            if marker:
                query["marker"] = marker
            page = list_volumes(session, project, _page(**query),
                                VolumeFilters(name_contains="v"))
            seen += [v.id for v in page.items]
            if not page.has_more:
                break
            marker = page.items[-1].id
        assert seen == ids
        last = list_volumes(session, project, _page(limit="2", marker=ids[-1], sort="name:asc"))
        assert last.items == () and not last.has_more
        newest_first = list_volumes(session, project, _page())
        assert newest_first.items[0].name is None and len(newest_first.items) == 6
        by_size = list_volumes(session, project, _page(), VolumeFilters(size=3), with_count=True)
        assert by_size.count == 1 and by_size.items[0].size_gb == 3
        exact = list_volumes(session, project, _page(), VolumeFilters(name="v3"))
        assert [v.id for v in exact.items] == [ids[3]]
        with pytest.raises(MarkerNotFound):
            list_volumes(session, project, _page(marker=str(uuid.uuid4())))


def test_snapshots_and_delete_rules(db: Database, driver: FileVolumeDriver,
                                    project: str) -> None:
    with db.session() as session:
        vol = create_volume(session, driver, project, 1, "src")
    with open(volume_path(driver, vol), "r+b") as fh:
        fh.seek(12345)
        fh.write(b"hello volume")
    with db.session() as session:
        snap = create_snapshot(session, driver, project, vol.id, "s1", "first")
        internal = create_snapshot(session, driver, project, vol.id, "bk", internal=True)
    assert snap.status == "available" and snap.method in ("reflink", "copy")
    assert snap.size_gb == 1 and not snap.internal and internal.internal
    assert snapshot_path(driver, snap).read_bytes()[12345:12357] == b"hello volume"
    with db.session() as session:
        listed = list_snapshots(session, project, parse_page_request({}, VOLUME_LIST))
        assert [s.id for s in listed.items] == [snap.id]  # internal one hidden
        assert list_snapshots(session, project, parse_page_request({}, VOLUME_LIST),
                              SnapshotFilters(volume_id=vol.id)).items[0].id == snap.id
        with pytest.raises(SnapshotRecordNotFound):
            get_snapshot(session, project, internal.id)
        assert get_snapshot(session, project, internal.id, include_internal=True).internal
    # a volume with snapshots cannot be deleted, not even with cascade while a backup's
    # internal snapshot exists; nothing changes on refusal
    for cascade in (False, True):
        with db.session() as session, pytest.raises(VolumeStateConflict, match="snapshot"):
            delete_volume(session, driver, project, vol.id, cascade=cascade)
        with db.session() as session:
            assert get_volume(session, project, vol.id).status == "available"
    with db.session() as session, pytest.raises(SnapshotRecordNotFound):
        delete_snapshot(session, driver, project, internal.id)
    with db.session() as session:
        delete_snapshot(session, driver, project, internal.id, include_internal=True)
    # a new volume from the snapshot holds its data
    with db.session() as session:
        clone = create_volume(session, driver, project, None, "clone", snapshot_id=snap.id)
    assert clone.size_gb == 1 and clone.snapshot_id == snap.id and clone.status == "available"
    assert volume_path(driver, clone).read_bytes()[12345:12357] == b"hello volume"
    with db.session() as session, pytest.raises(InvalidVolumeInput):
        create_volume(session, driver, project, 0, "small", snapshot_id=snap.id)
    with db.session() as session:
        delete_volume(session, driver, project, vol.id, cascade=True)
    assert not (driver.root / f"{vol.id}.img").exists()
    assert not (driver.root / "snapshots" / f"{snap.id}.img").exists()
    with db.session() as session, pytest.raises(VolumeRecordNotFound):
        get_volume(session, project, vol.id)


def test_delete_refused_while_job_holds_volume(db: Database, driver: FileVolumeDriver,
                                               project: str) -> None:
    with db.session() as session:
        vol = create_volume(session, driver, project, 1, "busy")
    with db.session() as session:
        assert transition_volume(session, vol.id, {"available", "in-use"}, "backing-up")
    with db.session() as session, pytest.raises(VolumeStateConflict, match="backing-up"):
        delete_volume(session, driver, project, vol.id)
    with db.session() as session, pytest.raises(VolumeStateConflict):
        create_snapshot(session, driver, project, vol.id, "user")  # users may not, now
    with db.session() as session:
        internal = create_snapshot(session, driver, project, vol.id, "job", internal=True)
        assert not transition_volume(session, vol.id, {"available"}, "restoring-backup")
        assert transition_volume(session, vol.id, {"backing-up"}, "available")
    with db.session() as session:
        delete_snapshot(session, driver, project, internal.id, include_internal=True)
        delete_volume(session, driver, project, vol.id)
    with pytest.raises(ValueError), db.session() as session:
        transition_volume(session, vol.id, {"available"}, "bogus")


def _race_once(db: Database, volume_id: str) -> list[bool]:
    """Two threads released together each try available -> (their own target)."""
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def contender(target: str) -> None:
        try:
            barrier.wait()
            with db.session() as session:
                won = transition_volume(session, volume_id, {"available"}, target)
            with lock:
                results.append(won)
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=contender, args=(t,))
               for t in ("backing-up", "restoring-backup")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_transition_race_exactly_one_wins(db: Database, driver: FileVolumeDriver,
                                          project: str) -> None:
    with db.session() as session:
        vol = create_volume(session, driver, project, 1, "race")
    for _ in range(15):
        assert sorted(_race_once(db, vol.id)) == [False, True]
        with db.session() as session:
            status = get_volume(session, project, vol.id).status
            assert status in ("backing-up", "restoring-backup")
            assert transition_volume(session, vol.id, {status}, "available")


def test_import_existing(db: Database, driver: FileVolumeDriver, project: str,
                         tmp_path: Path) -> None:
    allowed = tmp_path / "images"
    allowed.mkdir()
    image = allowed / "disk.raw"
    with open(image, "wb") as fh:
        fh.truncate(GIB + 4096)
    with db.session() as session:
        record = import_existing(session, driver, image, project, "imported", [allowed])
    assert record.imported and record.external_path == str(image.resolve())
    assert record.size_bytes == GIB + 4096 and record.size_gb == 2
    assert volume_path(driver, record) == image.resolve()
    with db.session() as session, pytest.raises(VolumeImportRefused, match="already imported"):
        import_existing(session, driver, image, project, "again", [allowed])
    outside = tmp_path / "elsewhere.raw"
    outside.write_bytes(b"x")
    with db.session() as session, pytest.raises(VolumeImportRefused, match="allowed import root"):
        import_existing(session, driver, outside, project, "nope", [allowed])
    empty = allowed / "empty.raw"
    empty.touch()
    with db.session() as session, pytest.raises(VolumeImportRefused, match="empty"):
        import_existing(session, driver, empty, project, "empty", [allowed])
    assert not driver.exists(str(uuid.uuid4()))
    with db.session() as session:
        delete_volume(session, driver, project, record.id)
    assert image.exists() and os.path.getsize(image) == GIB + 4096  # never the operator's file


def test_recover_interrupted(db: Database, driver: FileVolumeDriver, project: str) -> None:
    with db.session() as session:
        stuck = create_volume(session, driver, project, 1, "stuck")
        other = create_volume(session, driver, project, 1, "half-deleted")
    with db.session() as session:
        assert transition_volume(session, stuck.id, {"available"}, "creating")
        assert transition_volume(session, other.id, {"available"}, "deleting")
    with db.session() as session:
        assert recover_interrupted(session) >= 2
    with db.session() as session:
        assert get_volume(session, project, stuck.id).status == "error"
        assert get_volume(session, project, other.id).status == "error_deleting"
    with db.session() as session:
        delete_volume(session, driver, project, stuck.id)
        delete_volume(session, driver, project, other.id)
