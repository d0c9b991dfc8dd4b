"""Crash-safe file publication: temp file, fsync, link/rename, fsync directory.

Every file the volume layer makes visible under its final name goes through
one of these helpers, so a crash at any point leaves either the old state or
the complete new file, plus at worst a ``.tmp-*`` leftover that
:meth:`FileVolumeDriver.remove_temporaries` can sweep.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from vbs.volumes.layout import TEMP_PREFIX

__all__ = ["fsync_dir", "publish_noreplace", "temp_path", "write_atomic"]


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (creations, renames, unlinks) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(directory: Path, stem: str) -> Path:
    """A unique, recognisable temporary name in ``directory`` (same filesystem as the target)."""
    return directory / f"{TEMP_PREFIX}{stem}-{uuid.uuid4().hex}"


def publish_noreplace(tmp: Path, final: Path) -> bool:
    """Give the fsynced file ``tmp`` its final name unless that name exists.

    Uses ``link(2)``, which fails atomically with EEXIST, instead of
    ``rename(2)``, which would silently replace a concurrent winner. ``tmp``
    is removed in every case. Returns False (and publishes nothing) if
    ``final`` already existed; the directory is fsynced on success.
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(final.parent)
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old or the new bytes, never a mix."""
    tmp = temp_path(path.parent, path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
