"""NBD export straight from a repository: real nbdinfo / nbdcopy / nbdfuse clients
against :class:`vbs.export.NbdServer`, byte for byte against the volumes."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.nbd_client import NbdClient, NbdError
from tests.support.volumes import MIB, file_sha256, make_volume, mutate_volume
from vbs.engine.backup import backup
from vbs.engine.restore import restore
from vbs.export import CowDevice, ExportTarget, NbdServer, StaticCatalog
from vbs.repository.backends.local import LocalBackend
from vbs.repository.keys import KdfParams
from vbs.repository.repo import ProjectStore, Repository

FAST_KDF = KdfParams(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)
SIZE = 24 * MIB + 12345  # a short last chunk on purpose
NBD_TOOLS = all(shutil.which(t) for t in ("nbdinfo", "nbdcopy"))
needs_tools = pytest.mark.skipif(not NBD_TOOLS, reason="nbdinfo/nbdcopy (libnbd-bin) missing")


@dataclass
class Setup:
    repo: Repository
    store: ProjectStore
    full: Path
    incr: Path
    server: NbdServer
    tmp: Path

    def uri(self, name: str) -> str:
        return self.server.uri(name)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("export")
    repo = Repository.init(LocalBackend(tmp / "repo"), passphrase="pw", kdf=FAST_KDF)
    store = repo.project("p1")
    vol = make_volume(tmp / "vol.img", SIZE, seed=13)
    full = tmp / "full.img"
    shutil.copyfile(vol, full)
    backup(store, vol, backup_id="full")
    mutate_volume(vol, 10, seed=5)
    backup(store, vol, backup_id="incr", parent_id="full")
    incr = tmp / "incr.img"
    shutil.copyfile(vol, incr)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    catalog = StaticCatalog(
        ExportTarget("full-ro", "p1", "full", False, None, None),
        ExportTarget("incr-ro", "p1", "incr", False, None, None),
        ExportTarget("full-rw", "p1", "full", True, None, tmp / "ov" / "rw.overlay"),
        ExportTarget("short", "p1", "full", False, soon, None),
    )
    server = NbdServer(repo, catalog, port=0, cache_bytes=4 * MIB, sweep_every=0.5)
    server.start()
    try:
        yield Setup(repo, store, full, incr, server, tmp)
    finally:
        server.stop()


@needs_tools
@pytest.mark.parametrize(("name", "which"), [("full-ro", "full"), ("incr-ro", "incr")])
def test_nbdcopy_equals_volume_and_nbdinfo_reports_size(setup: Setup, name: str,
                                                        which: str) -> None:
    size = subprocess.run(["nbdinfo", "--size", setup.uri(name)], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert int(size) == SIZE
    out = setup.tmp / f"copy-{name}.img"
    subprocess.run(["nbdcopy", setup.uri(name), str(out)], check=True, timeout=120)
    expected = setup.full if which == "full" else setup.incr
    assert file_sha256(out) == file_sha256(expected)


def test_random_4k_reads_match(setup: Setup) -> None:
    rng = random.Random(7)
    data = setup.incr.read_bytes()
    with NbdClient(setup.uri("incr-ro")) as c:
        assert c.size == SIZE and c.read_only
        for _ in range(300):
            off = rng.randrange(0, SIZE - 4096)
            assert c.pread(4096, off) == data[off : off + 4096], off
        assert c.pread(100, SIZE - 100) == data[-100:]  # the short last chunk


def test_holes_read_as_zeros_without_reading_chunks(setup: Setup) -> None:
    from vbs.export import BackupSource

    src = BackupSource(setup.store, "full")
    cs = src.chunk_size
    zero_nos = [n for n in range(src.root.chunk_count) if src.is_zero(n)]
    assert len(zero_nos) > 10
    before = src.fetched_blobs
    for n in zero_nos[:10]:
        assert src.read(n * cs, cs) == bytes(cs)
    assert src.fetched_blobs == before  # zero chunks never touch the repository
    with NbdClient(setup.uri("full-ro")) as c:
        n = zero_nos[3]
        assert c.pread(cs, n * cs) == bytes(cs)


@needs_tools
def test_block_status_reports_holes(setup: Setup) -> None:
    out = subprocess.run(["nbdinfo", "--map", setup.uri("full-ro")], capture_output=True,
                         text=True, check=True).stdout
    kinds = {line.split(None, 3)[3] for line in out.splitlines() if line.strip()}
    assert kinds == {"data", "hole,zero"}
    total = sum(int(line.split()[1]) for line in out.splitlines() if line.strip())
    assert total == SIZE


def test_lru_cache_stays_bounded(setup: Setup) -> None:
    from vbs.export import BackupSource

    src = BackupSource(setup.store, "incr", cache_bytes=MIB)
    for off in range(0, SIZE, 256 * 1024):
        src.read(off, min(256 * 1024, SIZE - off))
    assert src._cached <= MIB  # noqa: SLF001 - the bound is the point
    assert src.fetched_blobs > 16


def test_read_only_export_refuses_writes(setup: Setup) -> None:
    with NbdClient(setup.uri("full-ro")) as c, pytest.raises(NbdError) as err:
        c.pwrite(b"x" * 4096, 0)
    assert err.value.errno == 1  # EPERM


def test_unknown_name_is_refused_and_names_are_not_listed(setup: Setup) -> None:
    with pytest.raises(NbdError, match="refused"):
        NbdClient(setup.uri("no-such-export"))
    if NBD_TOOLS:
        r = subprocess.run(["nbdinfo", "--list", setup.uri("")], capture_output=True, text=True)
        assert "full-ro" not in r.stdout


def test_writable_export_keeps_writes_in_the_overlay(setup: Setup) -> None:
    rng = random.Random(3)
    patch = rng.randbytes(3 * 4096 + 100)
    off = 5 * MIB + 1000  # unaligned: exercises copy-on-write of partial blocks
    with NbdClient(setup.uri("full-rw")) as c:
        assert not c.read_only
        c.pwrite(patch, off)
        c.pwrite(b"\xaa" * 512, SIZE - 512)
        c.flush()
        assert c.pread(len(patch) + 8192, off - 4096) == (
            setup.full.read_bytes()[off - 4096 : off] + patch
            + setup.full.read_bytes()[off + len(patch) : off + len(patch) + 4096])
    overlay = setup.tmp / "ov" / "rw.overlay"
    assert overlay.exists() and (setup.tmp / "ov" / "rw.overlay.map").exists()
    # The backup itself is untouched: a restore still gives the original bytes.
    target = setup.tmp / "restored-full.img"
    restore(setup.store, "full", target)
    assert file_sha256(target) == file_sha256(setup.full)
    # The overlay turned into a full image of the modified volume.
    dev = setup.server.device("full-rw")
    assert isinstance(dev, CowDevice)
    image = dev.complete()
    expected = bytearray(setup.full.read_bytes())
    expected[off : off + len(patch)] = patch
    expected[SIZE - 512 :] = b"\xaa" * 512
    assert image.read_bytes() == bytes(expected)
    setup.server.end("full-rw")  # discards the overlay
    assert not overlay.exists()


def test_expired_export_stops_serving(setup: Setup) -> None:
    c = NbdClient(setup.uri("short"))
    assert c.pread(4096, 0) == setup.full.read_bytes()[:4096]
    time.sleep(2.2)
    with pytest.raises((NbdError, OSError)):
        for _ in range(3):  # the liveness check runs at most once a second
            c.pread(4096, 0)
            time.sleep(0.6)
    c.sock.close()
    with pytest.raises(NbdError, match="refused"):
        NbdClient(setup.uri("short"))
