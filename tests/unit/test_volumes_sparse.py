"""data_extents / copy_sparse / fd_size on real sparse files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vbs.volumes.sparse import copy_sparse, data_extents, fd_size

MiB = 1 << 20
GiB = 1 << 30


def make_sparse(path: Path, size: int, data: list[tuple[int, int]]) -> None:
    """Create ``path`` of ``size`` bytes with random bytes in the ``data`` ranges only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        for offset, length in data:
            os.pwrite(fd, os.urandom(length), offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def extents_of(path: Path, size: int | None = None) -> list[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(data_extents(fd, os.fstat(fd).st_size if size is None else size))
    finally:
        os.close(fd)


@pytest.fixture
def holes_dir(tmp_path: Path) -> Path:
    """tmp_path, provided its filesystem reports holes (ext4, xfs, btrfs, tmpfs do)."""
    probe = tmp_path / "probe"
    make_sparse(probe, MiB, [])
    if extents_of(probe) != []:
        pytest.skip(f"filesystem of {tmp_path} does not report holes via SEEK_HOLE")
    probe.unlink()
    return tmp_path


@pytest.mark.parametrize(
    ("size", "data"),
    [
        pytest.param(4 * MiB, [(1 * MiB, MiB)], id="hole-start-and-end"),
        pytest.param(2 * MiB, [(1 * MiB, MiB)], id="hole-at-start"),
        pytest.param(4 * MiB, [(0, MiB), (3 * MiB, MiB)], id="hole-in-middle"),
        pytest.param(4 * MiB, [(0, MiB)], id="hole-at-end"),
        pytest.param(4 * MiB, [], id="all-hole"),
        pytest.param(2 * MiB, [(0, 2 * MiB)], id="no-hole"),
        pytest.param(0, [], id="empty"),
        pytest.param(
            8 * MiB, [(0, MiB), (2 * MiB, MiB), (4 * MiB, MiB), (7 * MiB, MiB)], id="many"
        ),
    ],
)
def test_extents_match_written_ranges(
    holes_dir: Path, size: int, data: list[tuple[int, int]]
) -> None:
    path = holes_dir / "f.img"
    make_sparse(path, size, data)
    assert extents_of(path) == data


def test_two_gib_sparse_file(holes_dir: Path) -> None:
    path = holes_dir / "big.img"
    data = [(0, 64 * 1024), (GiB, MiB), (2 * GiB - 4096, 4096)]
    make_sparse(path, 2 * GiB, data)
    assert extents_of(path) == data
    assert path.stat().st_blocks * 512 < 8 * MiB  # really sparse


def test_size_smaller_than_file_clamps_last_extent(holes_dir: Path) -> None:
    path = holes_dir / "f.img"
    make_sparse(path, 4 * MiB, [(0, MiB), (2 * MiB, 2 * MiB)])
    assert extents_of(path, 3 * MiB) == [(0, MiB), (2 * MiB, MiB)]
    assert extents_of(path, MiB // 2) == [(0, MiB // 2)]


def test_size_larger_than_file_ends_at_eof(holes_dir: Path) -> None:
    path = holes_dir / "f.img"
    make_sparse(path, 2 * MiB, [(MiB, MiB)])
    assert extents_of(path, 10 * MiB) == [(MiB, MiB)]


def test_unsupported_seek_yields_one_conservative_extent() -> None:
    # /dev/zero answers lseek with the current position (noop llseek): no hole info.
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        assert list(data_extents(fd, 3 * MiB)) == [(0, 3 * MiB)]
    finally:
        os.close(fd)


def test_pipe_yields_one_conservative_extent() -> None:
    r, w = os.pipe()
    try:
        assert list(data_extents(r, 5000)) == [(0, 5000)]
    finally:
        os.close(r)
        os.close(w)


def test_negative_size_rejected(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(ValueError):
            list(data_extents(fd, -1))
    finally:
        os.close(fd)


def test_copy_sparse_preserves_content_and_holes(holes_dir: Path) -> None:
    src, dst = holes_dir / "src.img", holes_dir / "dst.img"
    data = [(MiB, MiB), (5 * MiB, 64 * 1024)]
    make_sparse(src, 64 * MiB, data)
    copy_sparse(src, dst)
    assert dst.stat().st_size == src.stat().st_size
    assert dst.read_bytes() == src.read_bytes()
    assert extents_of(dst) == data
    assert dst.stat().st_blocks <= src.stat().st_blocks


def test_copy_sparse_two_gib(holes_dir: Path) -> None:
    src, dst = holes_dir / "src.img", holes_dir / "dst.img"
    data = [(0, 4096), (2 * GiB - MiB, MiB)]
    make_sparse(src, 2 * GiB, data)
    copy_sparse(src, dst)
    assert dst.stat().st_size == 2 * GiB
    assert extents_of(dst) == data
    with open(src, "rb") as a, open(dst, "rb") as b:
        for offset, length in data:
            a.seek(offset)
            b.seek(offset)
            assert a.read(length) == b.read(length)


def test_copy_sparse_refuses_existing_destination(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        copy_sparse(src, dst)
    assert dst.read_bytes() == b"old"


def test_fd_size_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    make_sparse(path, 12345, [])
    fd = os.open(path, os.O_RDONLY)
    try:
        assert fd_size(fd) == 12345
    finally:
        os.close(fd)
