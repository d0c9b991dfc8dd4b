"""Errors of the volume layer, all below :class:`vbs.errors.VolumeError`.

Subtree (all permanent except ``VolumeIOError``)::

    VolumeError
    ├── InvalidVolumeId        id is not [A-Za-z0-9-]{1,64}
    ├── InvalidVolumeSize      size not a positive int, or a shrink
    ├── VolumeNotFound         no such volume (or its imported source vanished)
    ├── VolumeExists           id (or imported path) already in use
    ├── SnapshotNotFound       no such snapshot
    ├── SnapshotExists         snapshot id already in use
    ├── ImportNotAllowed       import path outside every allowed root
    ├── InvalidImportSource    import path missing, or not a file / block device
    ├── UnsupportedOperation   extend of an imported volume; reflink forced where
    │                          it cannot work
    ├── ImportedVolumeChanged  an imported path no longer leads to what was imported
    ├── RegistryCorrupt        imported.json cannot be understood
    └── VolumeIOError          an OS call failed (EIO, ENOSPC, ...), transient

Codes are ``vbs.volume.<snake_case>`` and stable.

``VolumeIOError`` is marked transient because the usual causes (a full disk,
a hiccup on the device) can go away; the original :class:`OSError` is kept as
``__cause__`` and its ``errno`` is copied to ``.errno``.
"""

from __future__ import annotations

from vbs.errors import VolumeError

__all__ = [
    "ImportNotAllowed",
    "ImportedVolumeChanged",
    "InvalidImportSource",
    "InvalidVolumeId",
    "InvalidVolumeSize",
    "RegistryCorrupt",
    "SnapshotExists",
    "SnapshotNotFound",
    "UnsupportedOperation",
    "VolumeExists",
    "VolumeIOError",
    "VolumeNotFound",
]


class InvalidVolumeId(VolumeError):
    code = "vbs.volume.invalid_id"


class InvalidVolumeSize(VolumeError):
    code = "vbs.volume.invalid_size"


class VolumeNotFound(VolumeError):
    code = "vbs.volume.not_found"


class VolumeExists(VolumeError):
    code = "vbs.volume.exists"


class SnapshotNotFound(VolumeError):
    code = "vbs.volume.snapshot_not_found"


class SnapshotExists(VolumeError):
    code = "vbs.volume.snapshot_exists"


class ImportNotAllowed(VolumeError):
    code = "vbs.volume.import_not_allowed"


class InvalidImportSource(VolumeError):
    code = "vbs.volume.invalid_source"


class UnsupportedOperation(VolumeError):
    code = "vbs.volume.unsupported"


class ImportedVolumeChanged(VolumeError):
    """An imported volume's path no longer leads to the file or device that was
    imported (symlink, moved directory, other inode): refused, never followed."""

    code = "vbs.volume.import_changed"


class RegistryCorrupt(VolumeError):
    code = "vbs.volume.registry_corrupt"


class VolumeIOError(VolumeError):
    code = "vbs.volume.io"
    transient = True

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
