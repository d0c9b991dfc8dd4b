"""One contract suite for every storage backend: a directory and an S3 bucket.

Each test in the first part runs against both backends through the
``backend`` fixture; the S3 variant runs on a fresh bucket, under a prefix,
on the real SeaweedFS server of ``tests.support.seaweedfs``. The last parts
hold what only one backend can show: failed local writes, and S3
authentication and connection failures.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.seaweedfs import SeaweedS3
from vbs.errors import BackendError, ConfigError, ObjectNotFound, TransientBackendError
from vbs.fsutil import TEMP_PREFIX, atomic_write, is_temp_name
from vbs.repository.backends import (
    Backend,
    LocalBackend,
    RetryingBackend,
    S3Backend,
    open_backend,
)

MiB = 1024 * 1024


def _s3_backend(server: SeaweedS3, bucket: str, prefix: str = "", **kwargs: object) -> S3Backend:
    options: dict[str, object] = {
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
    }
    options.update(kwargs)
    return S3Backend(bucket, prefix, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def contract_bucket(seaweedfs: SeaweedS3) -> str:
    """One fresh bucket for the suite; each test gets its own prefix in it.

    A bucket per test would cost SeaweedFS a new volume per test (~0.3 s),
    and a unique prefix isolates tests just as well.
    """
    return seaweedfs.new_bucket()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    store: Backend
    if request.param == "local":
        store = LocalBackend(tmp_path / "repo")
    else:
        server: SeaweedS3 = request.getfixturevalue("seaweedfs")
        bucket: str = request.getfixturevalue("contract_bucket")
        store = _s3_backend(server, bucket, f"contract/{uuid.uuid4().hex}")
    yield store
    store.close()


def _pattern(size: int, seed: int = 0) -> bytes:
    """Bytes where every offset is distinguishable, so a wrong range cannot pass."""
    return bytes((i * 7 + seed + i // 251) % 256 for i in range(size))


def _keys(store: Backend, prefix: str = "") -> set[str]:
    return {info.key for info in store.list(prefix)}


# -- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 5 * MiB], ids=["empty", "1B", "5MiB"])
def test_put_get_round_trip(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    backend.put("projects/p1/data/ab/object", data)
    assert backend.get("projects/p1/data/ab/object") == data
    assert backend.exists("projects/p1/data/ab/object")


def test_put_accepts_bytearray_and_memoryview(backend: Backend) -> None:
    source = _pattern(4096)
    backend.put("ba", bytearray(source))
    backend.put("mv", memoryview(source)[100:300])
    assert backend.get("ba") == source
    assert backend.get("mv") == source[100:300]


def test_unusual_but_valid_keys_round_trip(backend: Backend) -> None:
    keys = ["a.b/.hidden/c d", "ключ/ü-ß", "x/y=z,+&@"]
    for number, key in enumerate(keys):
        backend.put(key, str(number).encode())
    assert _keys(backend) == set(keys)
    for number, key in enumerate(keys):
        assert backend.get(key) == str(number).encode()


def test_ranged_get(backend: Backend) -> None:
    data = _pattern(1000)
    backend.put("r", data)
    assert backend.get("r", 0, 10) == data[:10]
    assert backend.get("r", 500, 100) == data[500:600]
    assert backend.get("r", 990, 10) == data[990:]
    assert backend.get("r", 10) == data[10:]
    assert backend.get("r", 0, None) == data


def test_ranged_get_past_the_end_returns_what_exists(backend: Backend) -> None:
    data = _pattern(1000)
    backend.put("r", data)
    backend.put("empty", b"")
    assert backend.get("r", 995, 100) == data[995:]
    assert backend.get("r", 0, 5000) == data
    assert backend.get("r", 1000, 10) == b""
    assert backend.get("r", 5000) == b""
    assert backend.get("r", 3, 0) == b""
    assert backend.get("empty", 0, 10) == b""
    assert backend.get("empty", 7) == b""


def test_get_rejects_negative_offset_and_length(backend: Backend) -> None:
    backend.put("r", b"abc")
    with pytest.raises(ValueError):
        backend.get("r", -1)
    with pytest.raises(ValueError):
        backend.get("r", 0, -1)


def test_overwrite_replaces_the_object(backend: Backend) -> None:
    backend.put("k", b"first version, longer")
    backend.put("k", b"second")
    assert backend.get("k") == b"second"
    assert [(i.key, i.size) for i in backend.list()] == [("k", 6)]


# -- exists, missing keys, delete --------------------------------------------------------


def test_exists(backend: Backend) -> None:
    assert not backend.exists("a/b")
    backend.put("a/b", b"x")
    assert backend.exists("a/b")
    assert not backend.exists("a"), "a key prefix is not an object"
    assert not backend.exists("a/b/c")
    backend.delete("a/b")
    assert not backend.exists("a/b")


def test_get_missing_key_raises_object_not_found(backend: Backend) -> None:
    with pytest.raises(ObjectNotFound):
        backend.get("nope")
    backend.put("dir/obj", b"x")
    for key in ("dir", "dir/obj/below", "dir/other"):
        with pytest.raises(ObjectNotFound):
            backend.get(key)
    with pytest.raises(ObjectNotFound):
        backend.get("nope", 10, 5)
    with pytest.raises(ObjectNotFound):
        backend.get("nope", 0, 0)


def test_delete_is_idempotent(backend: Backend) -> None:
    backend.put("d/k", b"data")
    backend.put("d/other", b"keep")
    backend.delete("d/k")
    backend.delete("d/k")
    backend.delete("never/existed")
    with pytest.raises(ObjectNotFound):
        backend.get("d/k")
    assert _keys(backend) == {"d/other"}


# -- list ------------------------------------------------------------------------------

_TREE = {
    "projects/p1/data/ab/abc1": b"1",
    "projects/p1/data/ab/abc2": b"22",
    "projects/p1/data/ac/x": b"333",
    "projects/p1/index/i1": b"",
    "projects/p10/data/zz": b"55555",
    "projects/p2/keys/k": b"666666",
    "top": b"7777777",
}


def test_list_with_prefixes(backend: Backend) -> None:
    before = time.time()
    for key, data in _TREE.items():
        backend.put(key, data)
    after = time.time()

    infos = list(backend.list())
    assert sorted(i.key for i in infos) == sorted(_TREE)
    for info in infos:
        assert info.size == len(_TREE[info.key])
        # mtime is a clock reading, compared with generous slack for clock granularity.
        assert before - 60 <= info.mtime <= after + 60

    assert _keys(backend, "projects/p1/") == {k for k in _TREE if k.startswith("projects/p1/")}
    assert _keys(backend, "projects/p1") == {k for k in _TREE if k.startswith("projects/p1")}
    assert _keys(backend, "projects/p1/data/a") == {
        "projects/p1/data/ab/abc1",
        "projects/p1/data/ab/abc2",
        "projects/p1/data/ac/x",
    }
    assert _keys(backend, "projects/p1/data/ab/abc1") == {"projects/p1/data/ab/abc1"}
    assert _keys(backend, "t") == {"top"}
    assert _keys(backend, "nothing/") == set()
    assert _keys(backend, "projects/p3") == set()


def test_list_of_empty_store_is_empty(backend: Backend) -> None:
    assert list(backend.list()) == []
    assert list(backend.list("a/")) == []


# -- key validation --------------------------------------------------------------------

_BAD_KEYS = [
    "",
    "/abs",
    "a//b",
    "a/",
    "a/./b",
    "a/../b",
    "..",
    ".",
    "../escape",
    "a\\b",
    "a\x00b",
    "a\nb",
    f"a/{TEMP_PREFIX}x",
    "x" * 201,
    "k/" * 600 + "k",
]


@pytest.mark.parametrize("key", _BAD_KEYS, ids=repr)
def test_invalid_keys_raise_value_error(backend: Backend, key: str) -> None:
    with pytest.raises(ValueError):
        backend.put(key, b"x")
    with pytest.raises(ValueError):
        backend.get(key)
    with pytest.raises(ValueError):
        backend.exists(key)
    with pytest.raises(ValueError):
        backend.delete(key)
    assert list(backend.list()) == []


@pytest.mark.parametrize("prefix", ["/x", "../", "a/../", "a//", "a\\", "a\x00"], ids=repr)
def test_invalid_list_prefixes_raise_value_error(backend: Backend, prefix: str) -> None:
    with pytest.raises(ValueError):
        list(backend.list(prefix))


# -- concurrency -----------------------------------------------------------------------


def test_concurrent_puts_of_distinct_keys_all_land(backend: Backend) -> None:
    def work(thread: int) -> None:
        for n in range(8):
            backend.put(f"c/{thread % 3}/t{thread}-{n}", _pattern(2048, seed=thread * 8 + n))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    expected = {
        f"c/{t % 3}/t{t}-{n}": _pattern(2048, seed=t * 8 + n) for t in range(8) for n in range(8)
    }
    assert _keys(backend) == set(expected)
    for key, data in expected.items():
        assert backend.get(key) == data


def test_concurrent_overwrites_and_reads_see_whole_objects(backend: Backend) -> None:
    versions = [bytes([v]) * (64 * 1024 + v) for v in range(6)]
    backend.put("same", versions[0])
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(backend.get("same"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda v: backend.put("same", v), versions * 3))
    finally:
        stop.set()
        reader.join()
    assert backend.get("same") in versions
    assert seen and all(data in versions for data in seen)


# -- local only: failed and in-progress writes, several processes --------------------------


def _all_names(root: Path) -> list[str]:
    return [name for _, dirs, files in os.walk(root) for name in (*dirs, *files)]


def test_local_failed_stream_leaves_no_object_and_no_temp_file(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "repo")
    store.put("d/existing", b"keep")

    def broken() -> Iterator[bytes]:
        yield b"partial data"
        raise OSError("source went away")

    with pytest.raises(OSError, match="source went away"):
        atomic_write(store.root / "d" / "new", broken())
    assert _keys(store) == {"d/existing"}
    assert not store.exists("d/new")
    assert sorted(os.listdir(store.root / "d")) == ["existing"]


def test_local_failed_put_leaves_no_partial_object(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "repo")
    store.put("a/b/c", b"x")
    with pytest.raises(BackendError) as caught:
        store.put("a/b", b"a directory is in the way")
    assert not isinstance(caught.value, TransientBackendError)
    with pytest.raises(BackendError):
        store.put("a/b/c/d", b"a file is in the way")
    assert _keys(store) == {"a/b/c"}
    assert not any(is_temp_name(name) for name in _all_names(store.root))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_local_put_into_read_only_directory_is_permanent_error(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "repo")
    store.put("ro/first", b"1")
    (store.root / "ro").chmod(0o555)
    try:
        with pytest.raises(BackendError) as caught:
            store.put("ro/second", b"2")
        assert not isinstance(caught.value, TransientBackendError)
        assert _keys(store) == {"ro/first"}
        assert os.listdir(store.root / "ro") == ["first"]
    finally:
        (store.root / "ro").chmod(0o755)


def test_local_list_never_shows_a_put_in_progress(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "repo")
    store.put("d/done", b"done")
    listed_during_write: set[str] = set()

    def slow_source() -> Iterator[bytes]:
        yield b"first half"
        listed_during_write.update(_keys(store))
        yield b"second half"

    atomic_write(store.root / "d" / "writing", slow_source())
    assert listed_during_write == {"d/done"}
    assert _keys(store) == {"d/done", "d/writing"}
    assert store.get("d/writing") == b"first halfsecond half"


def test_local_list_skips_temp_files_left_by_a_crash(tmp_path: Path) -> None:
    store = LocalBackend(tmp_path / "repo")
    store.put("d/k", b"x")
    (store.root / "d" / f"{TEMP_PREFIX}0123456789abcdef-k2").write_bytes(b"half")
    assert _keys(store) == {"d/k"}


def _put_many(root: str, key: str, value: int, rounds: int) -> None:
    store = LocalBackend(Path(root))
    for _ in range(rounds):
        store.put(key, bytes([value]) * (32 * 1024 + value))
        store.put(f"p{value}/own", bytes([value]))


def test_local_several_processes_share_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_put_many, args=(str(root), "x/shared", v, 15)) for v in range(4)
    ]
    for worker in workers:
        worker.start()
    store = LocalBackend(root)
    reads = 0
    while any(worker.is_alive() for worker in workers):
        try:
            data = store.get("x/shared")
        except ObjectNotFound:
            continue
        reads += 1
        assert data == bytes([data[0]]) * (32 * 1024 + data[0]), "a torn object was read"
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    assert _keys(store) == {"x/shared"} | {f"p{v}/own" for v in range(4)}
    assert not any(is_temp_name(name) for name in _all_names(root))


# -- S3 only: authentication and connection failures -------------------------------------


@pytest.mark.s3
def test_s3_wrong_secret_key_is_a_permanent_error(seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.new_bucket()
    _s3_backend(seaweedfs, bucket).put("k", b"x")
    wrong = _s3_backend(seaweedfs, bucket, secret_key="not-the-secret")
    try:
        calls: list[Callable[[], object]] = [
            lambda: wrong.put("k2", b"x"),
            lambda: wrong.get("k"),
            lambda: wrong.exists("k"),
            lambda: list(wrong.list()),
            lambda: wrong.delete("k"),
        ]
        for call in calls:
            with pytest.raises(BackendError) as caught:
                call()
            assert not isinstance(caught.value, (TransientBackendError, ObjectNotFound))
    finally:
        wrong.close()


@pytest.mark.s3
def test_s3_missing_bucket_is_a_permanent_error(seaweedfs: SeaweedS3) -> None:
    store = _s3_backend(seaweedfs, "vbs-test-no-such-bucket")
    try:
        with pytest.raises(BackendError) as caught:
            store.get("k")
        assert type(caught.value) is BackendError
        assert "bucket does not exist" in str(caught.value)
    finally:
        store.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_s3_unreachable_server_is_a_transient_error() -> None:
    store = S3Backend(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        region="us-east-1",
        access_key="a",
        secret_key="b",
        connect_timeout=1,
    )
    try:
        calls: list[Callable[[], object]] = [
            lambda: store.put("k", b"x"),
            lambda: store.get("k"),
            lambda: store.get("k", 5, 5),
            lambda: store.exists("k"),
            lambda: list(store.list("p/")),
            lambda: store.delete("k"),
        ]
        for call in calls:
            with pytest.raises(TransientBackendError):
                call()
        delays: list[float] = []
        retrying = RetryingBackend(store, attempts=3, sleep=delays.append)
        with pytest.raises(TransientBackendError):
            retrying.get("k")
        assert len(delays) == 2
    finally:
        store.close()


@pytest.mark.s3
def test_s3_backends_with_different_prefixes_do_not_see_each_other(seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.new_bucket()
    one = _s3_backend(seaweedfs, bucket, "tenant/one")
    other = _s3_backend(seaweedfs, bucket, "tenant/one-more")
    whole = _s3_backend(seaweedfs, bucket)
    try:
        one.put("k", b"1")
        other.put("k", b"2")
        assert _keys(one) == {"k"}
        assert one.get("k") == b"1"
        assert _keys(whole) == {"tenant/one/k", "tenant/one-more/k"}
        assert one.location == f"s3://{bucket}/tenant/one"
    finally:
        for store in (one, other, whole):
            store.close()


@pytest.mark.s3
def test_s3_create_bucket_is_idempotent(seaweedfs: SeaweedS3) -> None:
    bucket = f"vbs-test-created-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    first = _s3_backend(seaweedfs, bucket, create_bucket=True)
    second = _s3_backend(seaweedfs, bucket, create_bucket=True)
    try:
        first.put("k", b"v")
        assert second.get("k") == b"v"
    finally:
        first.close()
        second.close()


# -- open_backend ----------------------------------------------------------------------


def test_open_backend_local_path_and_file_url(tmp_path: Path) -> None:
    by_path = open_backend(str(tmp_path / "repo"), create=True)
    assert isinstance(by_path, LocalBackend)
    assert (tmp_path / "repo").is_dir()
    by_path.put("k", b"v")
    by_url = open_backend(f"file://{tmp_path / 'repo'}")
    assert isinstance(by_url, LocalBackend)
    assert by_url.get("k") == b"v"
    assert by_url.location == str(tmp_path / "repo")


def test_open_backend_without_create_creates_nothing(tmp_path: Path) -> None:
    store = open_backend(str(tmp_path / "absent"))
    assert not (tmp_path / "absent").exists()
    assert list(store.list()) == []


@pytest.mark.parametrize(
    "location", ["", "  ", "ftp://host/x", "s3://", "s3:///prefix", "file://otherhost/x"]
)
def test_open_backend_rejects_bad_locations(location: str) -> None:
    with pytest.raises(ConfigError):
        open_backend(location)


@pytest.mark.s3
def test_open_backend_s3_url_is_retrying_and_uses_the_prefix(seaweedfs: SeaweedS3) -> None:
    bucket = seaweedfs.new_bucket()
    store = open_backend(
        f"s3://{bucket}/some/prefix",
        endpoint_url=seaweedfs.endpoint_url,
        region=seaweedfs.region,
        access_key=seaweedfs.access_key,
        secret_key=seaweedfs.secret_key,
    )
    whole = _s3_backend(seaweedfs, bucket)
    try:
        assert isinstance(store, RetryingBackend)
        assert store.location == f"s3://{bucket}/some/prefix"
        store.put("k", b"v")
        assert _keys(whole) == {"some/prefix/k"}
    finally:
        store.close()
        whole.close()
