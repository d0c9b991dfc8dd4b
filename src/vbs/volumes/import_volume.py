"""Import: register an existing image file or block device as a volume.

The operator lists the directories VBS may take volumes from
(``allowed_roots``); anything else, including a symlink inside a root that
points outside it, is refused. The check runs once, at import time, on the
fully resolved path, and the resolved path is what gets registered together
with the device and inode of the file and the root that admitted it. Every
later open re-checks all of it (:mod:`vbs.volumes.verified_open`), so a
symlink or file swapped later inside a root is refused, never followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from vbs.volumes.base import VolumeHandle
from vbs.volumes.errors import ImportNotAllowed, InvalidImportSource, VolumeNotFound
from vbs.volumes.file_driver import FileVolumeDriver
from vbs.volumes.layout import validate_id
from vbs.volumes.registry import ImportIdentity
from vbs.volumes.sparse import fd_size

__all__ = ["import_volume"]


def import_volume(
    driver: FileVolumeDriver,
    source: Path,
    volume_id: str,
    allowed_roots: Sequence[Path],
) -> VolumeHandle:
    """Register ``source`` (regular file or block device) as volume ``volume_id``.

    Order of checks, each with its own error:

    1. ``volume_id`` is valid (InvalidVolumeId).
    2. ``source`` resolved with symlinks followed lies inside one of the
       resolved ``allowed_roots`` and not inside the driver root
       (ImportNotAllowed, naming the path and the roots). This runs before
       any existence check so that paths outside the roots are not probed.
    3. It exists and is a regular file or a block device, not a directory,
       FIFO, socket or character device (InvalidImportSource).
    4. The id is free and the path not already imported (VolumeExists).

    Nothing is copied or modified; :meth:`FileVolumeDriver.delete` later only
    unregisters. The returned size is the current size (block devices via
    ``BLKGETSIZE64``).
    """
    validate_id(volume_id)
    requested = Path(source)
    resolved = requested.resolve(strict=False)
    roots = [Path(root).resolve(strict=False) for root in allowed_roots]
    admitting = next((root for root in roots if resolved.is_relative_to(root)), None)
    if admitting is None:
        shown = ", ".join(str(root) for root in roots) or "(none configured)"
        raise ImportNotAllowed(
            f"cannot import {requested} (resolves to {resolved}): "
            f"not inside any allowed import root: {shown}"
        )
    driver_root = driver.root.resolve(strict=False)
    if resolved.is_relative_to(driver_root):
        raise ImportNotAllowed(
            f"cannot import {requested} (resolves to {resolved}): it is inside the "
            f"volume store {driver_root}, whose files the driver already owns"
        )
    try:
        st = os.stat(resolved)
    except FileNotFoundError as exc:
        raise InvalidImportSource(f"cannot import {requested}: no such file or device") from exc
    except OSError as exc:
        raise InvalidImportSource(f"cannot import {requested}: {exc.strerror}") from exc
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise InvalidImportSource(
            f"cannot import {requested}: {kind}; only regular image files and "
            "block devices can be volumes"
        )
    size, identity = _size_of(resolved, st, str(admitting))
    driver._register_external(volume_id, resolved, identity)
    return VolumeHandle(volume_id, resolved, size)


def _size_of(path: Path, expected: os.stat_result, root: str) -> tuple[int, ImportIdentity]:
    """Size and identity, from one ``O_NOFOLLOW`` descriptor that must be the
    file :func:`os.stat` just checked (no swap between check and record)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise VolumeNotFound(f"{path} vanished during import") from exc
    except OSError as exc:
        raise InvalidImportSource(f"cannot open {path}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
            raise InvalidImportSource(f"cannot import {path}: it changed during import")
        return fd_size(fd), ImportIdentity(st.st_dev, st.st_ino, root)
    finally:
        os.close(fd)
