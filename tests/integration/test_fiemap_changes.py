"""`FileVolumeDriver.changed_ranges` on a real reflink XFS: exact ranges for
writes, punched and filled holes, growth; "unknown" for copies."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.volumes import KIB, MIB
from tests.support.xfs import mount_xfs
from vbs.volumes import FileVolumeDriver
from vbs.volumes.changes import changed_ranges

VID = "0b3c5d7e-1f2a-4b6c-8d0e-2f4a6b8c0d1e"


@pytest.fixture
def xfs(tmp_path: Path) -> Iterator[Path]:
    with mount_xfs(tmp_path, "2G") as mnt:
        yield mnt


def _write(path: Path, off: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)
        os.fsync(f.fileno())


def test_reflink_snapshots_report_exactly_what_changed(xfs: Path) -> None:
    d = FileVolumeDriver(xfs / "vols", reflink=True)
    vol = d.create(VID, 256 * MIB)
    _write(vol.path, 0, os.urandom(32 * MIB))
    s1 = d.snapshot(VID, "11111111-1111-4111-8111-111111111111")
    assert s1.method == "reflink"
    s1b = d.snapshot(VID, "11111111-1111-4111-8111-111111111112")
    assert d.changed_ranges(s1, s1b) == []  # nothing happened in between
    _write(vol.path, 4 * KIB, os.urandom(8 * KIB))             # rewrite in data
    _write(vol.path, 100 * MIB, os.urandom(64 * KIB))           # fill a hole
    subprocess.run(["fallocate", "-p", "-o", str(16 * MIB), "-l", str(MIB), str(vol.path)],
                   check=True)                                   # punch a hole
    s2 = d.snapshot(VID, "22222222-2222-4222-8222-222222222222")
    assert d.changed_ranges(s1, s2) == [(4 * KIB, 8 * KIB), (16 * MIB, MIB),
                                        (100 * MIB, 64 * KIB)]
    d.extend(VID, 300 * MIB)
    s3 = d.snapshot(VID, "33333333-3333-4333-8333-333333333333")
    assert d.changed_ranges(s2, s3) == [(256 * MIB, 44 * MIB)]
    # the whole volume rewritten: every data byte changed (clones sharing nothing)
    _write(vol.path, 0, os.urandom(32 * MIB))
    s4 = d.snapshot(VID, "44444444-4444-4444-8444-444444444444")
    assert d.changed_ranges(s3, s4) == [(0, 32 * MIB)]


def test_copies_are_unknown(xfs: Path) -> None:
    d = FileVolumeDriver(xfs / "vols", reflink=False)
    vol = d.create(VID, 16 * MIB)
    _write(vol.path, 0, os.urandom(MIB))
    a = d.snapshot(VID, "55555555-5555-4555-8555-555555555555")
    b = d.snapshot(VID, "66666666-6666-4666-8666-666666666666")
    assert a.method == b.method == "copy"
    assert d.changed_ranges(a, b) is None


def test_files_sharing_nothing_are_unknown_unless_known_clones(xfs: Path) -> None:
    a, b = xfs / "a.img", xfs / "b.img"
    for p in (a, b):
        with open(p, "wb") as f:
            f.write(os.urandom(MIB))
            os.fsync(f.fileno())
    assert changed_ranges(a, b) is None
    assert changed_ranges(a, b, clones=True) == [(0, MIB)]
    assert changed_ranges(a, xfs / "missing.img") is None
