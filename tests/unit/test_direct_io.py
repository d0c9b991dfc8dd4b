"""Direct (O_DIRECT) writers write exactly the bytes a buffered write would.

Real files on the test machine's filesystem (direct I/O) and, where there is
one, on /dev/shm (tmpfs: direct or the buffered fallback, whichever the
kernel does); the environment switch forces the buffered path.
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest

from vbs.direct_io import ALIGN, STAGE, DirectDurableFile, OffsetWriter


def _direct_supported(directory: Path) -> bool:
    probe = directory / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


def _dirs(tmp_path: Path) -> list[Path]:
    out = [tmp_path]
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = shm / f"vbs-test-{os.getpid()}-{tmp_path.name}"
        d.mkdir()
        out.append(d)
    return out


@pytest.fixture
def dirs(tmp_path: Path) -> list[Path]:
    ds = _dirs(tmp_path)
    yield ds
    for d in ds[1:]:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


@pytest.mark.parametrize("switch", ["1", "0"])
def test_durable_file_pieces_round_trip(
    dirs: list[Path], switch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBS_DIRECT_IO", switch)
    rng = random.Random(5)
    for d in dirs:
        for total_hint in (0, 1, ALIGN, STAGE - 3, STAGE, 3 * STAGE + 1234):
            pieces = []
            left = total_hint
            while left > 0:
                n = min(left, rng.choice([1, 77, ALIGN, 40_000, STAGE + 5]))
                pieces.append(rng.randbytes(n))
                left -= n
            f = DirectDurableFile(d, mode=0o600)
            for p in pieces:
                f.write(memoryview(p))
            assert f.size == total_hint
            target = d / f"out-{total_hint}"
            f.commit(target)
            assert target.read_bytes() == b"".join(pieces)
            assert (target.stat().st_mode & 0o777) == 0o600


def test_durable_file_abort_leaves_nothing(tmp_path: Path) -> None:
    f = DirectDurableFile(tmp_path)
    f.write(b"x" * (STAGE + 10))
    f.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        f.write(b"y")


@pytest.mark.parametrize("switch", ["1", "0"])
def test_offset_writer_threads_runs_and_tail(
    dirs: list[Path], switch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBS_DIRECT_IO", switch)
    cs = 64 * 1024
    n_chunks = 70
    size = n_chunks * cs - 1000  # partial last chunk
    rng = random.Random(9)
    content = [rng.randbytes(cs) for _ in range(n_chunks)]
    content[-1] = content[-1][: size - (n_chunks - 1) * cs]
    expected = bytearray(b"".join(content))
    holes = set(range(5, 9))  # never written: must stay zero
    for no in holes:
        expected[no * cs : (no + 1) * cs] = bytes(cs)
    for d in dirs:
        path = d / "target.img"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, size)
        out = OffsetWriter(fd, str(path))
        if switch == "1" and d is dirs[0] and _direct_supported(d):
            assert out.direct
        if switch == "0":
            assert not out.direct
        order = [no for no in range(n_chunks) if no not in holes]
        # two threads, each mostly ascending runs with a jump in the middle
        parts = [order[::2] + order[1:10:2], order[11::2]]
        parts[0] = sorted(set(parts[0]) - set(parts[1]))

        def work(nos: list[int], out: OffsetWriter) -> None:
            for no in nos:
                out.write(no * cs, content[no])

        ts = [threading.Thread(target=work, args=(p, out)) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        out.flush()
        out.close()
        os.fsync(fd)
        os.close(fd)
        assert path.read_bytes() == bytes(expected)
