"""Contract suite for volume drivers, run against FileVolumeDriver in every snapshot mode.

Modes: ``auto`` (reflink if the filesystem can, else copy), ``copy`` (forced
off) and ``reflink`` (forced on; runs on tmp_path if it supports FICLONE,
else in ``$VBS_TEST_REFLINK_DIR`` if that is set and supports it, else the
mode is skipped). Block-device import needs root and losetup, else skips.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vbs.volumes import (
    FileVolumeDriver,
    ImportNotAllowed,
    InvalidImportSource,
    InvalidVolumeId,
    InvalidVolumeSize,
    SnapshotExists,
    SnapshotNotFound,
    UnsupportedOperation,
    VolumeDriver,
    VolumeExists,
    VolumeNotFound,
    data_extents,
    import_volume,
)
from vbs.volumes.sparse import FICLONE

MiB = 1 << 20
VID = "0b6f6b5e-1a2b-4c3d-8e9f-001122334455"
SID = "5d1f0c1e-aaaa-4bbb-8ccc-0123456789ab"


def reflink_works(directory: Path) -> bool:
    """Attempt a real FICLONE in ``directory``."""
    src, dst = directory / ".probe-src", directory / ".probe-dst"
    try:
        src.write_bytes(b"x" * 4096)
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        return True
    except OSError:
        return False
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)


@dataclass(frozen=True)
class Setup:
    driver: FileVolumeDriver
    base: Path  # same filesystem as the driver root; for external files
    method: str  # snapshot method this setup must produce for regular files


@pytest.fixture(params=["auto", "copy", "reflink"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    mode = request.param
    if mode == "auto":
        yield Setup(
            FileVolumeDriver(tmp_path / "store"),
            tmp_path,
            "reflink" if reflink_works(tmp_path) else "copy",
        )
    elif mode == "copy":
        yield Setup(FileVolumeDriver(tmp_path / "store", reflink=False), tmp_path, "copy")
    else:
        if reflink_works(tmp_path):
            yield Setup(FileVolumeDriver(tmp_path / "store", reflink=True), tmp_path, "reflink")
            return
        env = os.environ.get("VBS_TEST_REFLINK_DIR")
        if not env or not Path(env).is_dir() or not reflink_works(Path(env)):
            pytest.skip(
                "no reflink-capable filesystem (tmp_path lacks FICLONE; "
                "set VBS_TEST_REFLINK_DIR to a directory on XFS/btrfs)"
            )
        base = Path(tempfile.mkdtemp(dir=env, prefix="vbs-test-"))
        try:
            yield Setup(FileVolumeDriver(base / "store", reflink=True), base, "reflink")
        finally:
            shutil.rmtree(base)


def write(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def extents(path: Path) -> list[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(data_extents(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)


def visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith(".lock"))


# -- volumes -------------------------------------------------------------------


def test_is_a_volume_driver(setup: Setup) -> None:
    assert isinstance(setup.driver, VolumeDriver)


def test_create_is_sparse_exact_and_at_public_path(setup: Setup) -> None:
    d = setup.driver
    assert not d.exists(VID)
    handle = d.create(VID, 10 * MiB + 512)
    assert handle.path == d.root / f"{VID}.img" == d.path(VID)
    assert handle.size_bytes == d.size(VID) == handle.path.stat().st_size == 10 * MiB + 512
    assert handle.path.stat().st_blocks == 0
    assert d.exists(VID)
    assert visible(d.root) == [f"{VID}.img", "snapshots"]  # no temporaries left


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "10"])
def test_create_rejects_bad_sizes(setup: Setup, size: object) -> None:
    with pytest.raises(InvalidVolumeSize):
        setup.driver.create(VID, size)  # type: ignore[arg-type]
    assert not setup.driver.exists(VID)


def test_create_twice_is_refused_and_keeps_data(setup: Setup) -> None:
    d = setup.driver
    d.create(VID, MiB)
    write(d.path(VID), 0, b"keep")
    with pytest.raises(VolumeExists):
        d.create(VID, 2 * MiB)
    assert d.size(VID) == MiB
    assert d.path(VID).read_bytes()[:4] == b"keep"


def test_concurrent_creates_of_one_id_have_one_winner(setup: Setup) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            setup.driver.create(VID, MiB)
            results.append("ok")
        except VolumeExists:
            results.append("exists")

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["exists"] * 7 + ["ok"]


def test_missing_volume(setup: Setup) -> None:
    d = setup.driver
    assert not d.exists(VID)
    for call in (d.path, d.size):
        with pytest.raises(VolumeNotFound):
            call(VID)
    with pytest.raises(VolumeNotFound):
        d.extend(VID, MiB)
    with pytest.raises(VolumeNotFound):
        d.snapshot(VID, SID)


def test_extend_grows_only_and_keeps_data(setup: Setup) -> None:
    d = setup.driver
    d.create(VID, MiB)
    write(d.path(VID), 100, b"data")
    d.extend(VID, 3 * MiB)
    assert d.size(VID) == 3 * MiB
    d.extend(VID, 3 * MiB)  # same size: no-op
    with pytest.raises(InvalidVolumeSize, match="cannot shrink"):
        d.extend(VID, MiB)
    assert d.size(VID) == 3 * MiB
    content = d.path(VID).read_bytes()
    assert content[100:104] == b"data"
    assert content[MiB:] == bytes(2 * MiB)


def test_delete_is_idempotent(setup: Setup) -> None:
    d = setup.driver
    d.delete(VID)  # never created, root does not even exist
    d.create(VID, MiB)
    d.delete(VID)
    assert not d.exists(VID)
    assert not (d.root / f"{VID}.img").exists()
    d.delete(VID)
    d.create(VID, MiB)  # id is free again


# -- snapshots -----------------------------------------------------------------


def test_snapshot_is_point_in_time(setup: Setup) -> None:
    d = setup.driver
    vol = d.create(VID, 8 * MiB)
    before = os.urandom(MiB)
    write(vol.path, 2 * MiB, before)
    snap = d.snapshot(VID, SID)
    assert snap.method == setup.method
    assert snap.path == d.root / "snapshots" / f"{SID}.img" == d.snapshot_path(SID)
    assert snap.size_bytes == 8 * MiB == snap.path.stat().st_size
    expected = vol.path.read_bytes()

    write(vol.path, 2 * MiB, os.urandom(MiB))  # overwrite shared blocks
    write(vol.path, 6 * MiB, b"new data in a hole")
    d.extend(VID, 16 * MiB)
    assert snap.path.read_bytes() == expected
    d.delete(VID)
    assert snap.path.read_bytes() == expected
    assert visible(d.root / "snapshots") == [f"{SID}.img"]


def test_copy_path_preserves_holes(setup: Setup) -> None:
    d = setup.driver
    vol = d.create(VID, 64 * MiB)
    write(vol.path, 0, os.urandom(MiB))
    write(vol.path, 32 * MiB, os.urandom(MiB))
    snap = d.snapshot(VID, SID)
    assert snap.path.stat().st_blocks <= vol.path.stat().st_blocks
    assert snap.path.stat().st_blocks * 512 < 4 * MiB
    assert extents(snap.path) == extents(vol.path)
    assert snap.path.read_bytes() == vol.path.read_bytes()


def test_snapshot_ids_are_exclusive(setup: Setup) -> None:
    d = setup.driver
    d.create(VID, MiB)
    d.create("other", MiB)
    write(d.path(VID), 0, b"first")
    d.snapshot(VID, SID)
    with pytest.raises(SnapshotExists):
        d.snapshot("other", SID)
    assert d.snapshot_path(SID).read_bytes()[:5] == b"first"


def test_missing_snapshot_and_idempotent_delete(setup: Setup) -> None:
    d = setup.driver
    with pytest.raises(SnapshotNotFound):
        d.snapshot_path(SID)
    d.delete_snapshot(SID)
    d.create(VID, MiB)
    d.snapshot(VID, SID)
    d.delete_snapshot(SID)
    d.delete_snapshot(SID)
    with pytest.raises(SnapshotNotFound):
        d.snapshot_path(SID)
    assert d.exists(VID)


def test_create_from_snapshot(setup: Setup) -> None:
    d = setup.driver
    d.create(VID, 4 * MiB)
    payload = os.urandom(MiB)
    write(d.path(VID), MiB, payload)
    d.snapshot(VID, SID)
    snap_bytes = d.snapshot_path(SID).read_bytes()

    same = d.create_from_snapshot("restored", SID, 4 * MiB)
    assert same.path == d.root / "restored.img"
    assert same.path.read_bytes() == snap_bytes
    bigger = d.create_from_snapshot("bigger", SID, 6 * MiB)
    assert d.size("bigger") == 6 * MiB == bigger.size_bytes
    assert bigger.path.read_bytes() == snap_bytes + bytes(2 * MiB)
    assert extents(bigger.path) == extents(d.snapshot_path(SID))

    write(same.path, MiB, b"changed")  # the new volume is independent of the snapshot
    assert d.snapshot_path(SID).read_bytes() == snap_bytes

    with pytest.raises(InvalidVolumeSize):
        d.create_from_snapshot("small", SID, 2 * MiB)
    with pytest.raises(VolumeExists):
        d.create_from_snapshot(VID, SID, 4 * MiB)
    with pytest.raises(SnapshotNotFound):
        d.create_from_snapshot("x", "no-such-snapshot", 4 * MiB)
    assert not d.exists("small") and not d.exists("x")
    assert not [p for p in d.root.iterdir() if p.name.startswith(".tmp-")]


def test_forced_reflink_fails_cleanly_where_unsupported(tmp_path: Path) -> None:
    if reflink_works(tmp_path):
        pytest.skip("tmp_path supports reflink")
    d = FileVolumeDriver(tmp_path / "store", reflink=True)
    d.create(VID, MiB)
    with pytest.raises(UnsupportedOperation, match="reflink"):
        d.snapshot(VID, SID)
    assert visible(d.root / "snapshots") == []


# -- ids -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", "", "x" * 65, "a.img", "a\n"])
def test_escaping_ids_are_rejected_everywhere(setup: Setup, bad: str) -> None:
    d = setup.driver
    d.create(VID, MiB)
    d.snapshot(VID, SID)
    calls: list[Callable[[], object]] = [
        lambda: d.create(bad, MiB),
        lambda: d.create_from_snapshot(bad, SID, MiB),
        lambda: d.create_from_snapshot("ok", bad, MiB),
        lambda: d.delete(bad),
        lambda: d.path(bad),
        lambda: d.size(bad),
        lambda: d.exists(bad),
        lambda: d.extend(bad, 2 * MiB),
        lambda: d.snapshot(bad, "s2"),
        lambda: d.snapshot(VID, bad),
        lambda: d.snapshot_path(bad),
        lambda: d.delete_snapshot(bad),
        lambda: import_volume(d, setup.base / "f", bad, [setup.base]),
    ]
    for call in calls:
        with pytest.raises(InvalidVolumeId):
            call()
    assert visible(setup.base) == ["store"]
    assert visible(d.root) == [f"{VID}.img", "snapshots"]


# -- import --------------------------------------------------------------------


@pytest.fixture
def ext(setup: Setup) -> Path:
    """An allowed import root with one 2 MiB image holding data at 1 MiB."""
    root = setup.base / "allowed"
    root.mkdir()
    image = root / "disk.img"
    with open(image, "wb") as f:
        f.truncate(2 * MiB)
    write(image, MiB, b"operator data")
    return root


def test_import_registers_without_copying(setup: Setup, ext: Path) -> None:
    d = setup.driver
    image = ext / "disk.img"
    handle = import_volume(d, image, VID, [ext])
    assert handle.path == image.resolve() == d.path(VID)
    assert handle.size_bytes == 2 * MiB == d.size(VID)
    assert d.exists(VID) and d.is_imported(VID)
    assert not (d.root / f"{VID}.img").exists()

    snap = d.snapshot(VID, SID)
    assert snap.path.read_bytes() == image.read_bytes()

    reopened = FileVolumeDriver(d.root)  # registry survives a restart
    assert reopened.path(VID) == image.resolve()

    with pytest.raises(UnsupportedOperation):
        d.extend(VID, 4 * MiB)
    with pytest.raises(VolumeExists):
        d.create(VID, MiB)
    with pytest.raises(VolumeExists, match="already imported"):
        import_volume(d, image, "second-id", [ext])

    d.delete(VID)
    assert not d.exists(VID)
    assert image.read_bytes()[MiB : MiB + 13] == b"operator data"
    assert snap.path.exists()


def test_import_refuses_existing_id(setup: Setup, ext: Path) -> None:
    setup.driver.create(VID, MiB)
    with pytest.raises(VolumeExists):
        import_volume(setup.driver, ext / "disk.img", VID, [ext])
    assert setup.driver.path(VID) == setup.driver.root / f"{VID}.img"


def test_import_outside_allowed_roots(setup: Setup, ext: Path) -> None:
    outside = setup.base / "elsewhere"
    outside.mkdir()
    (outside / "x.img").write_bytes(b"\0" * 4096)
    sibling = setup.base / "allowed2"  # shares a string prefix with "allowed"
    sibling.mkdir()
    (sibling / "y.img").write_bytes(b"\0" * 4096)
    for path in (outside / "x.img", sibling / "y.img", ext / ".." / "elsewhere" / "x.img"):
        with pytest.raises(ImportNotAllowed) as info:
            import_volume(setup.driver, path, VID, [ext])
        assert str(ext.resolve()) in info.value.message
        assert path.name in info.value.message
    with pytest.raises(ImportNotAllowed, match="none configured"):
        import_volume(setup.driver, ext / "disk.img", VID, [])
    assert not setup.driver.exists(VID)


def test_import_symlinks(setup: Setup, ext: Path) -> None:
    outside = setup.base / "secret.img"
    outside.write_bytes(b"\0" * 4096)
    (ext / "escape.img").symlink_to(outside)
    (ext / "linkdir").symlink_to(setup.base)
    for path in (ext / "escape.img", ext / "linkdir" / "secret.img"):
        with pytest.raises(ImportNotAllowed, match="secret.img"):
            import_volume(setup.driver, path, VID, [ext])

    (ext / "inside.img").symlink_to(ext / "disk.img")
    handle = import_volume(setup.driver, ext / "inside.img", VID, [ext])
    assert handle.path == (ext / "disk.img").resolve()  # the target, not the link

    linked_root = setup.base / "root-link"
    linked_root.symlink_to(ext)  # an allowed root given through a symlink
    setup.driver.delete(VID)
    assert import_volume(setup.driver, ext / "disk.img", "v2", [linked_root]).size_bytes == 2 * MiB


def test_import_bad_sources(setup: Setup, ext: Path) -> None:
    (ext / "subdir").mkdir()
    os.mkfifo(ext / "fifo")
    cases = {"missing.img": "no such file", "subdir": "a directory", "fifo": "not a regular"}
    for name, message in cases.items():
        with pytest.raises(InvalidImportSource, match=message):
            import_volume(setup.driver, ext / name, VID, [ext])
    assert not setup.driver.exists(VID)


def test_import_from_inside_the_store_is_refused(setup: Setup) -> None:
    d = setup.driver
    d.create(VID, MiB)
    with pytest.raises(ImportNotAllowed, match="volume store"):
        import_volume(d, d.path(VID), "alias", [setup.base])


# -- maintenance ---------------------------------------------------------------


def test_remove_temporaries(setup: Setup) -> None:
    d = setup.driver
    d.create(VID, MiB)
    (d.root / ".tmp-crashed-volume").write_bytes(b"x")
    (d.root / "snapshots" / ".tmp-crashed-snap").write_bytes(b"x")
    assert not d.exists("crashed-volume")
    assert d.remove_temporaries() == 2
    assert visible(d.root) == [f"{VID}.img", "snapshots"]
    assert visible(d.root / "snapshots") == []


# -- block devices (root + losetup) -------------------------------------------


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real loop block device over an 8 MiB backing file with data at 1 MiB."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup")
    backing = tmp_path / "backing.img"
    with open(backing, "wb") as f:
        f.truncate(8 * MiB)
    write(backing, MiB, os.urandom(64 * 1024))
    proc = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"losetup failed: {proc.stderr.strip()}")
    device = Path(proc.stdout.strip())
    try:
        yield device, backing
    finally:
        subprocess.run(["losetup", "-d", str(device)], check=False)


def test_import_block_device(setup: Setup, loop_device: tuple[Path, Path]) -> None:
    device, backing = loop_device
    d = setup.driver
    assert stat.S_ISBLK(device.stat().st_mode)
    handle = import_volume(d, device, VID, [Path("/dev")])
    assert handle.size_bytes == 8 * MiB == d.size(VID)
    if setup.method == "reflink" and d._reflink is True:
        with pytest.raises(UnsupportedOperation, match="block device"):
            d.snapshot(VID, SID)
        return
    snap = d.snapshot(VID, SID)
    assert snap.method == "copy"
    assert snap.size_bytes == 8 * MiB
    assert snap.path.read_bytes() == backing.read_bytes()
    assert snap.path.stat().st_blocks * 512 <= MiB  # zero blocks of the device became holes
    d.delete(VID)
    assert device.exists() and stat.S_ISBLK(device.stat().st_mode)
