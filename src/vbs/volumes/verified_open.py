"""Open an imported volume only if it is still what was imported (issue 8).

Import checks the path once (:func:`vbs.volumes.import_volume`), but the
file is opened again for every backup, snapshot copy and restore, possibly
days later. Between the two, anyone who can write inside an import root
could replace the image with a symlink to ``/etc/shadow`` or a directory
on the way with a symlink elsewhere, and VBS (running as root) would read
or overwrite that file. So every open of an imported volume:

1. opens with ``O_NOFOLLOW``: a symlink as last component fails (``ELOOP``);
2. asks the kernel where the opened file really is (``/proc/self/fd``) and
   requires exactly the registered path, under the import root it was
   admitted under: a swapped parent directory shows up here;
3. compares ``st_dev``/``st_ino`` of the open descriptor with those recorded
   at import: a different file moved into place shows up here;
4. requires a regular file or block device.

Any mismatch is :class:`ImportedVolumeChanged` naming the path and what
differs; the descriptor is closed and nothing is read or written. The
checks run on the descriptor that is then used, so there is no window
between check and use.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from vbs.volumes.errors import ImportedVolumeChanged, VolumeIOError, VolumeNotFound
from vbs.volumes.registry import ImportIdentity

__all__ = ["open_imported"]


def _where(fd: int) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def open_imported(volume_id: str, path: Path, identity: ImportIdentity | None,
                  flags: int) -> int:
    """An open descriptor of imported volume ``volume_id`` (checks: module doc)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise VolumeNotFound(f"volume {volume_id}: imported {path} is missing") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImportedVolumeChanged(
                f"volume {volume_id}: imported {path} is now a symbolic link; refusing "
                "to follow it") from None
        raise VolumeIOError(f"open imported volume {volume_id} at {path}: {exc.strerror}",
                            exc.errno) from exc
    try:
        real = _where(fd)
        if real is not None and real != str(path):
            raise ImportedVolumeChanged(
                f"volume {volume_id}: imported {path} now resolves to {real}; a directory "
                "on the way was replaced")
        if identity is not None:
            root = os.path.realpath(identity.root)
            if not Path(real or path).is_relative_to(root):
                raise ImportedVolumeChanged(
                    f"volume {volume_id}: imported {path} is no longer inside its import "
                    f"root {identity.root}")
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise ImportedVolumeChanged(
                f"volume {volume_id}: imported {path} is no longer a regular file or "
                "block device")
        if identity is not None and (st.st_dev, st.st_ino) != (identity.dev, identity.ino):
            raise ImportedVolumeChanged(
                f"volume {volume_id}: imported {path} is another file now (device/inode "
                f"{st.st_dev}/{st.st_ino}, imported {identity.dev}/{identity.ino})")
    except BaseException:
        os.close(fd)
        raise
    return fd
