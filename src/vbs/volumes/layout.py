"""Where the file driver keeps things under its root, and which ids are legal.

This naming is part of the public contract: operators attach ``root/ID.img``
to VMs or write into it, so it never changes::

    root/
    ├── ID.img                 one sparse raw image per (non-imported) volume
    ├── imported.json          registry: volume id -> external path
    ├── .lock                  flock'ed for namespace changes
    ├── .tmp-*                 in-flight creations (removed on success/failure)
    └── snapshots/
        ├── ID.img             one point-in-time copy per snapshot
        └── .tmp-*             in-flight snapshots

Ids are restricted to ``[A-Za-z0-9-]{1,64}``: enough for UUIDs, and no
character (``/``, ``.``, NUL, newline) can name another directory, so a path
built from a valid id always stays directly inside its directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from vbs.volumes.errors import InvalidVolumeId

__all__ = [
    "IMAGE_SUFFIX",
    "TEMP_PREFIX",
    "lock_file",
    "registry_file",
    "snapshot_file",
    "snapshots_dir",
    "validate_id",
    "volume_file",
]

IMAGE_SUFFIX = ".img"
TEMP_PREFIX = ".tmp-"
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def validate_id(value: object, kind: str = "volume") -> str:
    """Return ``value`` if it is a legal id, else raise :class:`InvalidVolumeId`.

    ``fullmatch`` (not ``match`` with ``$``) so a trailing newline is refused.
    """
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise InvalidVolumeId(
            f"invalid {kind} id {value!r}: expected 1-64 characters from [A-Za-z0-9-]"
        )
    return value


def volume_file(root: Path, volume_id: str) -> Path:
    """``root/ID.img`` for a validated id."""
    return root / f"{validate_id(volume_id)}{IMAGE_SUFFIX}"


def snapshots_dir(root: Path) -> Path:
    return root / "snapshots"


def snapshot_file(root: Path, snapshot_id: str) -> Path:
    """``root/snapshots/ID.img`` for a validated id."""
    return snapshots_dir(root) / f"{validate_id(snapshot_id, 'snapshot')}{IMAGE_SUFFIX}"


def registry_file(root: Path) -> Path:
    return root / "imported.json"


def lock_file(root: Path) -> Path:
    return root / ".lock"
