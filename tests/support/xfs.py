"""A real XFS filesystem with reflink, loop-mounted from a sparse image file.

``mount_xfs(tmp_path)`` makes ``mkfs.xfs -m reflink=1`` in a sparse image
under tmp_path, mounts it (``mount -o loop``) on a unique directory and
yields the mount point; umount and loop detach always run, also when the test
fails. Tests skip with the reason when mounting is impossible here (not root,
no xfsprogs, no loop devices).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["mount_xfs"]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


@contextlib.contextmanager
def mount_xfs(base: Path, size: str = "8G", name: str = "xfs") -> Iterator[Path]:
    """Yield the mount point of a fresh reflink XFS of ``size`` (sparse image)."""
    if os.geteuid() != 0:
        pytest.skip("mounting an XFS image needs root")
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("mkfs.xfs (xfsprogs) is not installed")
    image = base / f"{name}.img"
    mnt = base / f"{name}-mnt"
    mnt.mkdir()
    with open(image, "wb") as f:
        f.truncate(_bytes(size))
    mk = _run("mkfs.xfs", "-q", "-m", "reflink=1", str(image))
    if mk.returncode != 0:
        pytest.skip(f"mkfs.xfs failed: {mk.stderr.strip()}")
    loop = _run("losetup", "--find", "--show", str(image))
    if loop.returncode != 0:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    device = loop.stdout.strip()
    try:
        mounted = _run("mount", "-t", "xfs", device, str(mnt))
        if mounted.returncode != 0:
            pytest.skip(f"mount failed: {mounted.stderr.strip()}")
        try:
            yield mnt
        finally:
            for _ in range(3):
                if _run("umount", str(mnt)).returncode == 0:
                    break
                _run("sync")
            else:
                _run("umount", "-l", str(mnt))
    finally:
        _run("losetup", "-d", device)
        image.unlink(missing_ok=True)


def _bytes(size: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if size[-1] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)
