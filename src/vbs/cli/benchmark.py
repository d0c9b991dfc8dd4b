"""``vbs benchmark``: what this machine does per stage, beside what the pipeline does.

Like ``proxmox-backup-client benchmark``: before blaming the network, the
disk or VBS, measure the parts. Every stage of a backup runs alone on one
thread over the same sample (64 KiB chunks: about half text-like, a third
random, the rest zeros, every chunk unique so nothing dedups):

* keyed BLAKE3 (chunk ids), zstd compress/decompress at the repository's
  level, AES-256-GCM encrypt/decrypt;
* with a repository (``--repo``/``VBS_REPO``): one pack-sized object of
  encoded blobs written durably to it and read back in restore-sized ranges,
  then deleted (key ``benchmark/<random>``, outside every prefix backups,
  GC or verify look at);
* the real engine: a backup of the sample (as a sparse file) into a scratch
  repository under ``--scratch`` and a restore of it, checked byte for byte.

The CPU-bound estimate is what the hash, compress and encrypt stages allow
on all cores for the sample's non-zero share; a pipeline far below it is
bound by something else (I/O, the GIL, the storage), which is the point of
printing them side by side. Numbers are MB/s (10^6 bytes) of plaintext.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vbs.errors import ConfigError, VbsError

__all__ = ["register"]

CHUNK = 64 * 1024
READ_RANGE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    name: str
    bytes: int
    seconds: float
    note: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mb_per_s"] = round(self.mb_per_s, 1)
        d["seconds"] = round(self.seconds, 4)
        return d


def register(sub: Any) -> None:
    p = sub.add_parser(
        "benchmark",
        help="measure hashing, compression, encryption, repository and pipeline speed",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument(
        "--repo",
        default=os.environ.get("VBS_REPO"),
        help="repository to measure pack writes/reads on (env VBS_REPO); optional",
    )
    p.add_argument("--password-file", type=Path, help="file whose first line is the passphrase")
    p.add_argument("--key-file", type=Path, help="open with a key file instead of a passphrase")
    p.add_argument("--project", default="default", help="project whose keys and level to use")
    p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION"))
    p.add_argument("--access-key", default=None, help="default: AWS_ACCESS_KEY_ID")
    p.add_argument("--secret-key", default=None, help="default: AWS_SECRET_ACCESS_KEY")
    p.add_argument("--size", type=int, default=256, help="MiB of sample data (default 256)")
    p.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="directory for the pipeline's scratch repository and files (default: system tmp)",
    )
    p.add_argument("--no-pipeline", action="store_true", help="skip the engine backup/restore")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def sample_chunks(total: int, seed: int = 7) -> list[bytes]:
    """Unique 64 KiB chunks: ~50 % text-like, ~35 % random, ~15 % zeros."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
        for _ in range(3000)
    ]
    lines = []
    size = 0
    while size < 2 * 1024 * 1024:
        line = f"2026-12-01T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} " + " ".join(
            rng.choices(words, k=rng.randint(4, 14))
        )
        lines.append(line)
        size += len(line) + 1
    text = ("\n".join(lines) + "\n").encode()
    out: list[bytes] = []
    for i in range(max(1, total // CHUNK)):
        r = rng.random()
        if r < 0.15:
            out.append(bytes(CHUNK))
        elif r < 0.50:
            out.append(os.urandom(CHUNK))
        else:
            start = rng.randrange(0, len(text) - CHUNK)
            out.append(i.to_bytes(8, "little") + text[start + 8 : start + CHUNK])
    return out


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure_stages(
    chunks: list[bytes], data_key: bytes, id_key: bytes, level: int
) -> list[Measurement]:
    """Each stage alone on one thread over the non-zero chunks."""
    import blake3
    import zstandard
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = [c for c in chunks if any(c)]
    n = sum(len(c) for c in data)
    hasher = blake3.blake3(key=id_key)

    def hash_all() -> None:
        for c in data:
            h = hasher.copy()
            h.update(c)
            h.digest()

    cctx = zstandard.ZstdCompressor(level=level)
    compressed: list[bytes] = []
    t_comp = _time(lambda: compressed.extend(cctx.compress(c) for c in data))
    dctx = zstandard.ZstdDecompressor()
    t_dec = _time(lambda: [dctx.decompress(c, max_output_size=CHUNK) for c in compressed])
    aead = AESGCM(data_key)
    nonce = os.urandom(12)
    sealed: list[bytes] = []
    t_enc = _time(lambda: sealed.extend(aead.encrypt(nonce, c, None) for c in data))
    t_dec_aes = _time(lambda: [aead.decrypt(nonce, c, None) for c in sealed])
    stored = sum(len(c) for c in compressed)
    return [
        Measurement("keyed BLAKE3", n, _time(hash_all), "chunk ids, 1 thread"),
        Measurement(
            f"zstd level {level} compress",
            n,
            t_comp,
            f"1 thread, ratio {stored / n:.3f}" if n else "1 thread",
        ),
        Measurement(f"zstd level {level} decompress", n, t_dec, "1 thread"),
        Measurement("AES-256-GCM encrypt", n, t_enc, "1 thread"),
        Measurement("AES-256-GCM decrypt", n, t_dec_aes, "1 thread"),
    ]


def measure_repository(store: Any, chunks: list[bytes]) -> list[Measurement]:
    """Write one pack-sized object of encoded blobs durably, read it back, delete it."""
    from vbs.repository import format as fmt
    from vbs.repository.backends.base import StreamingBackend

    backend = store.backend
    blobs: list[bytes] = []
    size = 0
    for c in chunks:
        if not any(c):
            continue
        cid = store.codec.chunk_id(c)
        blob = store.codec.encode(cid, fmt.BLOB_TYPE_DATA, c)
        blobs.append(blob)
        size += len(blob)
        if size >= store.pack_target:
            break
    key = f"benchmark/{uuid.uuid4().hex}"
    try:
        t0 = time.perf_counter()
        if isinstance(backend, StreamingBackend):
            writer = backend.open_writer()
            for b in blobs:
                writer.write(b)
            writer.commit(key)
        else:
            backend.put(key, b"".join(blobs))
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = 0
        while got < size:
            piece = backend.get(key, got, min(READ_RANGE, size - got))
            if not piece:
                break
            got += len(piece)
        t_read = time.perf_counter() - t0
    finally:
        backend.delete(key)
    where = backend.location
    return [
        Measurement("pack write (durable)", size, t_write, f"{size >> 20} MiB object to {where}"),
        Measurement("pack read", got, t_read, f"{READ_RANGE >> 20} MiB ranges from {where}"),
    ]


def measure_pipeline(chunks: list[bytes], scratch: Path, chunk_size: int) -> list[Measurement]:
    """The real engine: back the sample up into a scratch repository, restore it."""
    from vbs.engine.backup import backup
    from vbs.engine.restore import restore
    from vbs.repository.backends.local import LocalBackend
    from vbs.repository.keys import KdfParams
    from vbs.repository.repo import Repository

    work = Path(tempfile.mkdtemp(prefix="vbs-benchmark-", dir=scratch))
    try:
        src = work / "sample.img"
        digest = hashlib.sha256()
        with open(src, "wb") as f:
            for c in chunks:
                if any(c):
                    f.write(c)
                else:
                    f.seek(len(c), os.SEEK_CUR)  # zeros as holes, like a thin volume
                digest.update(c)
            f.truncate(sum(len(c) for c in chunks))
        logical = src.stat().st_size
        with open(src, "rb") as f:  # the source is in page cache, as for the anchors
            while f.read(8 << 20):
                pass
        repo = Repository.init(
            LocalBackend(work / "repo"),
            passphrase=uuid.uuid4().hex,
            chunk_size=chunk_size,
            kdf=KdfParams(time_cost=1, memory_cost_kib=8, parallelism=1),
        )
        store = repo.project("benchmark")
        t0 = time.perf_counter()
        result = backup(store, src, backup_id="sample")
        t_backup = time.perf_counter() - t0
        out = work / "restored.img"
        procs = min(4, os.cpu_count() or 1)  # as `vbs repo restore` by default
        t0 = time.perf_counter()
        # fork, as `vbs repo restore` does: the stage pools above have all ended.
        restore(store, "sample", out, processes=procs, start_method="fork")
        t_restore = time.perf_counter() - t0
        check = hashlib.sha256()
        with open(out, "rb") as f:
            while piece := f.read(8 << 20):
                check.update(piece)
        if check.digest() != digest.digest():
            raise VbsError("benchmark: the restored sample differs from the original")
        s = result.stats
        return [
            Measurement(
                "pipeline backup",
                logical,
                t_backup,
                f"{s.chunks_new} new chunks, {s.bytes_new_stored >> 20} MiB stored",
            ),
            Measurement("pipeline restore", logical, t_restore,
                        f"on {procs} process{'es' if procs > 1 else ''}, checked byte for byte"),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cpu_estimate(stages: list[Measurement], nonzero_share: float, cores: int) -> float:
    """MB/s of logical data the hash+compress+encrypt stages allow on all cores."""
    wanted = ("keyed BLAKE3", "compress", "encrypt")
    per_byte = sum(
        1 / m.mb_per_s
        for m in stages
        if m.mb_per_s > 0 and m.name.endswith(wanted) or m.name == wanted[0]
    )
    if per_byte <= 0 or nonzero_share <= 0:
        return 0.0
    return cores / per_byte / nonzero_share


def _open_store(args: argparse.Namespace) -> tuple[Any, Any]:
    from vbs.cli.repo import _backend, _secret
    from vbs.repository.repo import Repository

    backend = _backend(args)
    try:
        repo = Repository.open(backend, **_secret(args))
        # Opening a project that does not exist would create its key object: a
        # benchmark must leave a repository with projects exactly as it was.
        known = repo.projects()
        if known and args.project not in known:
            raise ConfigError(f"no project {args.project!r} in this repository "
                              f"(projects: {', '.join(known)}); --project takes an id")
        return backend, repo.project(args.project)
    except BaseException:
        backend.close()
        raise


def run(args: argparse.Namespace) -> int:
    from vbs.repository import format as fmt
    from vbs.repository.crypto import ZSTD_LEVEL

    if args.size < 1:
        print("vbs benchmark: --size must be at least 1 (MiB)", file=sys.stderr)
        return 2
    backend = store = None
    try:
        if args.repo:
            backend, store = _open_store(args)
        chunks = sample_chunks(args.size * 1024 * 1024)
        if store is not None:
            data_key, id_key, level = os.urandom(32), os.urandom(32), store.codec.level
        else:
            data_key, id_key, level = os.urandom(32), os.urandom(32), ZSTD_LEVEL
        results = measure_stages(chunks, data_key, id_key, level)
        stages = list(results)
        if store is not None:
            results += measure_repository(store, chunks)
        if not args.no_pipeline:
            chunk_size = store.chunk_size if store is not None else fmt.CHUNK_SIZE_DEFAULT
            results += measure_pipeline(
                chunks, args.scratch or Path(tempfile.gettempdir()), chunk_size
            )
    except VbsError as exc:
        print(f"vbs benchmark: {exc.message}", file=sys.stderr)
        from vbs.cli.repo import EXIT_CODES

        return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)
    except OSError as exc:
        print(f"vbs benchmark: {exc}", file=sys.stderr)
        return 1
    finally:
        if backend is not None:
            backend.close()
    cores = os.cpu_count() or 1
    nonzero = sum(1 for c in chunks if any(c)) / len(chunks)
    estimate = cpu_estimate(stages, nonzero, cores)
    doc = {
        "cores": cores,
        "sample_bytes": len(chunks) * CHUNK,
        "nonzero_share": round(nonzero, 3),
        "zstd_level": level,
        "repository": args.repo,
        "cpu_bound_backup_mb_per_s": round(estimate, 1),
        "results": [m.as_dict() for m in results],
    }
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    width = max(len(m.name) for m in results)
    print(f"{'operation':<{width}}  {'MB/s':>9}  note")
    for m in results:
        print(f"{m.name:<{width}}  {m.mb_per_s:>9.1f}  {m.note}")
    print(
        f"\nhash + compress + encrypt on {cores} core(s) allow about {estimate:.0f} MB/s of "
        f"this sample ({nonzero:.0%} non-zero); compare the pipeline backup row."
    )
    return 0
