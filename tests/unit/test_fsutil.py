"""vbs.fsutil: atomic, durable local writes on a real filesystem."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vbs.fsutil import TEMP_PREFIX, atomic_write, fsync_dir, is_temp_name, makedirs_durable


def _names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.mark.parametrize(
    "data",
    [b"", b"plain bytes", bytearray(b"a bytearray"), memoryview(b"xxa memoryviewxx")[2:-2]],
    ids=["empty", "bytes", "bytearray", "memoryview"],
)
def test_atomic_write_buffers(tmp_path: Path, data: bytes | bytearray | memoryview) -> None:
    target = tmp_path / "file"
    atomic_write(target, data)
    assert target.read_bytes() == bytes(data)
    assert _names(tmp_path) == ["file"]


def test_atomic_write_non_byte_memoryview_writes_its_raw_bytes(tmp_path: Path) -> None:
    words = memoryview(bytearray(range(16))).cast("I")
    atomic_write(tmp_path / "f", words)
    assert (tmp_path / "f").read_bytes() == bytes(range(16))


def test_atomic_write_streams_an_iterable(tmp_path: Path) -> None:
    pieces = [os.urandom(1000) for _ in range(50)]
    atomic_write(tmp_path / "f", iter(pieces))
    assert (tmp_path / "f").read_bytes() == b"".join(pieces)


def test_atomic_write_replaces_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old content, longer than the new")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert _names(tmp_path) == ["f"]


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640])
def test_atomic_write_sets_exact_mode_despite_umask(tmp_path: Path, mode: int) -> None:
    old_umask = os.umask(0o077 if mode != 0o600 else 0o000)
    try:
        atomic_write(tmp_path / "f", b"secret", mode=mode)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == mode


def test_failed_stream_keeps_old_content_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"old")

    def broken() -> Iterator[bytes]:
        yield b"new part"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(target, broken())
    assert target.read_bytes() == b"old"
    assert _names(tmp_path) == ["f"]


def test_failed_stream_to_new_name_leaves_nothing(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise OSError("source read failed")

    with pytest.raises(OSError, match="source read failed"):
        atomic_write(tmp_path / "f", broken())
    assert _names(tmp_path) == []


def test_failed_rename_removes_temp(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "child").write_bytes(b"")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "taken", b"cannot replace a non-empty directory")
    assert _names(tmp_path) == ["taken"]


def test_missing_parent_raises_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "absent" / "f", b"x")
    assert _names(tmp_path) == []


def test_temp_files_use_the_reserved_prefix(tmp_path: Path) -> None:
    seen: list[str] = []

    def spy() -> Iterator[bytes]:
        seen.extend(_names(tmp_path))
        yield b"x"

    atomic_write(tmp_path / "f", spy())
    assert len(seen) == 1
    assert seen[0].startswith(TEMP_PREFIX) and seen[0].endswith("-f")
    assert is_temp_name(seen[0])
    assert not is_temp_name("f")


def test_temp_name_of_a_long_name_fits_name_max(tmp_path: Path) -> None:
    name = "n" * 250
    atomic_write(tmp_path / name, b"x")
    assert (tmp_path / name).read_bytes() == b"x"


def test_concurrent_writers_of_one_path_leave_one_whole_version(tmp_path: Path) -> None:
    target = tmp_path / "f"
    versions = [bytes([v]) * (100_000 + v) for v in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda v: atomic_write(target, v), versions * 4))
    assert target.read_bytes() in versions
    assert _names(tmp_path) == ["f"]


def test_makedirs_durable_creates_nested_and_is_idempotent(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    makedirs_durable(deep)
    assert deep.is_dir()
    makedirs_durable(deep)
    makedirs_durable(tmp_path / "a")
    assert deep.is_dir()


def test_makedirs_durable_concurrent_creators(tmp_path: Path) -> None:
    paths = [tmp_path / "x" / "y" / f"z{n % 3}" for n in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(makedirs_durable, paths))
    assert _names(tmp_path / "x" / "y") == ["z0", "z1", "z2"]


def test_makedirs_durable_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises((FileExistsError, NotADirectoryError)):
        makedirs_durable(tmp_path / "file")
    with pytest.raises((FileExistsError, NotADirectoryError)):
        makedirs_durable(tmp_path / "file" / "below")


def test_fsync_dir(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "f")
    with pytest.raises(FileNotFoundError):
        fsync_dir(tmp_path / "absent")
