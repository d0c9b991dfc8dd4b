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

from vbs import direct_io
from vbs.direct_io import (
    ALIGN,
    RUNS_PER_THREAD,
    STAGE,
    AlignedBuffer,
    DirectDurableFile,
    OffsetWriter,
    SourceReader,
    read_range_direct,
)


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


def test_offset_writer_keeps_interleaved_runs_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deduplicated chunk goes to several places: the copies of a duplicated
    region arrive interleaved with the main run and must not break it into
    single-chunk writes (each run still leaves as whole RUN_STAGE writes)."""
    if not _direct_supported(tmp_path):
        pytest.skip("no O_DIRECT on this filesystem")
    monkeypatch.setenv("VBS_DIRECT_IO", "1")
    cs = 64 * 1024
    per_stage = direct_io.RUN_STAGE // cs
    n = 2 * per_stage  # the main run: two full stages
    copy_at = 10 * per_stage  # a duplicate of the whole region, far away
    rng = random.Random(3)
    content = [rng.randbytes(cs) for _ in range(n)]
    sizes: list[int] = []
    real = direct_io._pwrite_all

    def counting(fd: int, view: memoryview, offset: int) -> None:
        sizes.append(len(view))
        real(fd, view, offset)

    monkeypatch.setattr(direct_io, "_pwrite_all", counting)
    path = tmp_path / "target.img"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, (copy_at + n) * cs)
    out = OffsetWriter(fd, str(path))
    for no in range(n):  # each chunk: its place, then its copy
        out.write(no * cs, content[no])
        out.write((copy_at + no) * cs, content[no])
    out.flush()
    out.close()
    os.close(fd)
    data = path.read_bytes()
    assert data[: n * cs] == b"".join(content)
    assert data[copy_at * cs :] == b"".join(content)
    assert data[n * cs : copy_at * cs] == bytes((copy_at - n) * cs)
    assert sizes == [direct_io.RUN_STAGE] * 4


def test_offset_writer_evicts_the_stalest_run(tmp_path: Path) -> None:
    """More interleaved runs than buffers: bytes still land exactly."""
    cs = 4096
    runs = RUNS_PER_THREAD + 2
    rng = random.Random(4)
    path = tmp_path / "t.img"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    span = 1000
    os.ftruncate(fd, runs * span * cs)
    expected = bytearray(runs * span * cs)
    out = OffsetWriter(fd, str(path))
    for i in range(40):
        for r in range(runs):
            piece = rng.randbytes(cs)
            off = (r * span + i) * cs
            expected[off : off + cs] = piece
            out.write(off, piece)
    out.flush()
    out.close()
    os.close(fd)
    assert path.read_bytes() == bytes(expected)


@pytest.mark.parametrize("switch", ["1", "0"])
def test_read_range_direct_returns_exact_bytes(
    dirs: list[Path], switch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unaligned offsets and lengths, the end of the file, a reused buffer
    that has to grow: always exactly the bytes ``pread`` would give."""
    monkeypatch.setenv("VBS_DIRECT_IO", switch)
    rng = random.Random(11)
    body = rng.randbytes(3 * STAGE + 777)
    for d in dirs:
        path = d / "pack"
        path.write_bytes(body)
        buf = AlignedBuffer()
        for offset, length in [(0, 10), (1, ALIGN), (ALIGN - 1, 2), (5000, 3 * STAGE),
                               (len(body) - 100, 100), (len(body) - 100, 500),
                               (len(body) + 10, 5), (123, 0)]:
            got = read_range_direct(path, offset, length, buf)
            assert bytes(got) == body[offset : offset + length]
            got.release()
        buf.close()
        path.unlink()


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_read_range_direct_reads_cached_pages_from_the_cache_and_the_rest_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A just-written pack comes from the page cache (no device read); once
    evicted it is read directly, and both give exactly the file's bytes."""
    if not _direct_supported(tmp_path):
        pytest.skip("no O_DIRECT on the test filesystem")
    monkeypatch.setenv("VBS_DIRECT_IO", "1")
    body = random.Random(5).randbytes(2 * STAGE + 333)
    path = tmp_path / "pack"
    path.write_bytes(body)
    preads: list[int] = []
    real = direct_io._pread_all

    def counting(fd: int, view: memoryview, offset: int) -> int:
        preads.append(offset)
        return real(fd, view, offset)

    monkeypatch.setattr(direct_io, "_pread_all", counting)
    buf = AlignedBuffer()
    got = read_range_direct(path, 1000, STAGE + 5, buf)
    assert bytes(got) == body[1000 : 1000 + STAGE + 5]
    got.release()
    assert preads == [], "cached pages were read again from the device"
    _evict(path)
    probe = os.open(path, os.O_RDONLY)
    try:
        evicted = not direct_io._cached_read(probe, memoryview(bytearray(ALIGN)), 0)
    finally:
        os.close(probe)
    if not evicted:
        pytest.skip("the page cache of the test filesystem cannot be dropped")
    _evict(path)
    got = read_range_direct(path, 7, 2 * STAGE, buf)
    assert bytes(got) == body[7 : 7 + 2 * STAGE]
    got.release()
    assert preads, "uncached pages were not read directly"
    buf.close()


def test_read_range_direct_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_range_direct(tmp_path / "nope", 0, 10, AlignedBuffer())


def test_offset_writer_reports_a_failed_background_write(tmp_path: Path) -> None:
    """A write that fails on a background thread (here EFBIG past RLIMIT_FSIZE)
    surfaces in the producing thread or at flush, never silently."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import errno, os, resource, signal, sys
        sys.path[:0] = {sys.path!r}
        from vbs import direct_io
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
        fd = os.open({str(tmp_path / 't.img')!r}, os.O_WRONLY | os.O_CREAT, 0o600)
        out = direct_io.OffsetWriter(fd, "t.img")
        try:
            for i in range(4 * direct_io.RUN_STAGE // 65536):
                out.write(i * 65536, os.urandom(65536))
            out.flush()
        except OSError as exc:
            print("raised", errno.errorcode[exc.errno])
        else:
            print("no error")
        finally:
            out.close()
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "raised EFBIG"


@pytest.mark.parametrize("switch", ["1", "0"])
def test_source_reader_cold_and_warm_read_the_same(
    dirs: list[Path], switch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VBS_DIRECT_IO", switch)
    body = random.Random(12).randbytes(3 * STAGE + 5000)
    seg = STAGE
    for d in dirs:
        path = d / "src"
        path.write_bytes(body)
        fd = os.open(path, os.O_RDONLY)
        try:
            for cold in (False, True):
                reader = SourceReader(fd, cold=cold)
                if switch == "0" or not cold:
                    assert not reader.direct
                elif d is dirs[0] and _direct_supported(d):
                    assert reader.direct
                buf = reader.buffer(seg)
                got = bytearray()
                for pos in range(0, len(body), seg):
                    length = min(seg, len(body) - pos)
                    n = reader.read_into(buf, length, pos)
                    assert n == length
                    got += memoryview(buf)[:n]
                reader.close()
                assert bytes(got) == body
        finally:
            os.close(fd)
        path.unlink()
