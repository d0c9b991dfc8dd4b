#!/usr/bin/env python3
"""The CPU a full backup's primitives need on one image, on one thread.

Why: to say what bounds a full backup, compare its CPU seconds with what
keyed BLAKE3 (every non-zero chunk), zstd at the repository's level and
AES-256-GCM (every distinct chunk) cost on exactly the chunks it stores.
What the backup spends beyond that sum is reading, Python and bookkeeping;
the sum over the core count is the best wall time any pipeline can reach.

  .venv/bin/python bench/backup_floor.py IMAGE [--chunk-size 65536]
"""

from __future__ import annotations

import argparse
import os
import time

import blake3
import zstandard
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vbs.repository.crypto import ZSTD_LEVEL


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--chunk-size", type=int, default=64 * 1024)
    args = ap.parse_args()
    cs = args.chunk_size
    hasher = blake3.blake3(key=os.urandom(32))
    aead = AESGCM(os.urandom(32))
    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    zero = bytes(cs)
    seen: set[bytes] = set()
    t_hash = t_zstd = t_aes = 0.0
    nonzero = stored_chunks = stored_bytes = 0
    clock = time.perf_counter
    with open(args.image, "rb", buffering=0) as f:
        while buf := f.read(64 * cs):
            view = memoryview(buf)
            for i in range(0, len(buf), cs):
                chunk = view[i : i + cs]
                if chunk == zero:
                    continue
                nonzero += 1
                t = clock()
                h = hasher.copy()
                h.update(chunk)
                cid = h.digest()
                t_hash += clock() - t
                if cid in seen:
                    continue
                seen.add(cid)
                t = clock()
                comp = cctx.compress(chunk)
                t_zstd += clock() - t
                body = comp if len(comp) <= len(chunk) - (len(chunk) >> 5) else chunk
                t = clock()
                aead.encrypt(os.urandom(12), body, cid)
                t_aes += clock() - t
                stored_chunks += 1
                stored_bytes += len(body)
    total = t_hash + t_zstd + t_aes
    cores = os.cpu_count() or 1
    print(f"{nonzero} non-zero chunks, {stored_chunks} stored ({stored_bytes / 1e6:.0f} MB)")
    print(f"keyed BLAKE3 {t_hash:.2f} s, zstd level {ZSTD_LEVEL} {t_zstd:.2f} s, "
          f"AES-256-GCM {t_aes:.2f} s: {total:.2f} CPU-s, "
          f"{total / cores:.2f} s on {cores} cores at best")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
