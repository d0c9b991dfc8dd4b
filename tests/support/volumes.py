"""Generators of test volumes with known content: holes, zeros, text, random, duplicates."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

__all__ = ["content_digest", "file_sha256", "make_volume", "mutate_volume"]

KIB = 1024
MIB = 1024 * KIB


def file_sha256(path: Path, length: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        remaining = length
        while True:
            n = MIB if remaining is None else min(MIB, remaining)
            if n == 0:
                break
            b = f.read(n)
            if not b:
                break
            h.update(b)
            if remaining is not None:
                remaining -= len(b)
    return h.hexdigest()


def make_volume(path: Path, size: int, seed: int = 1) -> Path:
    """A sparse file mixing holes, written zeros, text, random data and duplicated
    blocks, in 16 KiB-aligned extents (not chunk-aligned on purpose)."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        pos = 0
        written: list[bytes] = []
        while pos < size:
            n = min(size - pos, rng.choice([16, 48, 64, 200, 1000]) * KIB)
            kind = rng.choice(["hole", "hole", "zero", "text", "random", "dup"])
            if kind == "hole":
                pos += n
                continue
            if kind == "zero":
                data = bytes(n)
            elif kind == "text":
                line = f"{pos:012d} INFO service started worker={rng.randint(0, 99)}\n".encode()
                data = (line * (n // len(line) + 1))[:n]
            elif kind == "random":
                data = rng.randbytes(n)
            else:
                data = (written[rng.randrange(len(written))] if written else bytes(n))[:n]
                data = data.ljust(n, b"\x07")
            f.seek(pos)
            f.write(data)
            if kind in ("text", "random") and len(written) < 64:
                written.append(data)
            pos += n
    return path


def mutate_volume(path: Path, percent: float, seed: int = 2, block: int = 64 * KIB) -> int:
    """Overwrite ``percent`` of the volume in scattered, non-overlapping
    4 KiB-aligned writes of ``block`` bytes; returns the bytes rewritten."""
    rng = random.Random(seed)
    size = os.path.getsize(path)
    target = int(size * percent / 100)
    slots = list(range(0, max(1, size - block), block))
    rng.shuffle(slots)
    done = 0
    with open(path, "r+b") as f:
        for off in slots:
            if done >= target:
                break
            f.seek(off)
            f.write(rng.randbytes(block))
            done += block
    return done


def content_digest(path: Path, block: int = 64 * KIB) -> str:
    """A digest equal for two files iff their bytes are equal, computed without
    reading holes: the size, then (offset, bytes) of every non-zero block."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(size.to_bytes(8, "little"))
    zero = bytes(block)
    with open(path, "rb") as f:
        fd, pos = f.fileno(), 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            off = start - start % block
            while off < end:
                data = os.pread(fd, block, off)
                if data != zero[: len(data)]:
                    h.update(off.to_bytes(8, "little") + data)
                off += block
            pos = off
    return h.hexdigest()
