"""The volume driver interface and its handle types.

A driver owns where volumes and snapshots live and how snapshots are made;
the engine only ever needs the paths it hands out. Every method validates
ids first (:class:`~vbs.volumes.errors.InvalidVolumeId`) and reports failures
as :class:`vbs.errors.VolumeError` subclasses from
:mod:`vbs.volumes.errors`; only :class:`~vbs.volumes.errors.VolumeIOError`
is transient.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

__all__ = ["SnapshotHandle", "SnapshotMethod", "VolumeDriver", "VolumeHandle"]

SnapshotMethod = Literal["reflink", "copy"]


@dataclass(frozen=True, slots=True)
class VolumeHandle:
    """A volume as it was when the driver returned it.

    ``path`` is a regular file or a block device the engine may open for
    reading and writing; ``size_bytes`` is its exact size.
    """

    id: str
    path: Path
    size_bytes: int


@dataclass(frozen=True, slots=True)
class SnapshotHandle:
    """A point-in-time copy of a volume.

    ``method`` says how it was made: ``"reflink"`` shares unchanged extents
    with the volume (and with earlier reflink snapshots, which the engine can
    exploit via FIEMAP); ``"copy"`` is an independent hole-preserving copy.
    """

    id: str
    path: Path
    size_bytes: int
    method: SnapshotMethod


@runtime_checkable
class VolumeDriver(Protocol):
    """Storage for volumes and their snapshots.

    Creations are atomic and durable: after a call returns, the object exists
    under its final name across a crash; if it raises, nothing new is visible.
    Deletions are idempotent. Snapshots are independent of their volume: the
    volume may be written, extended or deleted without changing them.
    """

    def create(self, volume_id: str, size_bytes: int) -> VolumeHandle:
        """Create an empty volume of exactly ``size_bytes`` (> 0) without writing data.

        Raises VolumeExists if the id is taken (also by an imported volume),
        InvalidVolumeSize for a non-positive or non-int size.
        """
        ...

    def create_from_snapshot(
        self, volume_id: str, snapshot_id: str, size_bytes: int
    ) -> VolumeHandle:
        """Create a volume holding the snapshot's data, grown to ``size_bytes``.

        ``size_bytes`` must be >= the snapshot size (InvalidVolumeSize
        otherwise); the tail beyond it reads as zeros. SnapshotNotFound,
        VolumeExists as for :meth:`create`.
        """
        ...

    def delete(self, volume_id: str) -> None:
        """Remove the volume; a no-op if it does not exist.

        Snapshots of the volume are not affected. For an imported volume
        only the registration is removed, never the operator's file/device.
        """
        ...

    def path(self, volume_id: str) -> Path:
        """Where the volume's bytes are (VolumeNotFound if it does not exist)."""
        ...

    def size(self, volume_id: str) -> int:
        """Current size in bytes (VolumeNotFound if absent or its source vanished)."""
        ...

    def exists(self, volume_id: str) -> bool:
        """True if the driver knows the volume (created, or imported and registered)."""
        ...

    def extend(self, volume_id: str, new_size_bytes: int) -> None:
        """Grow the volume to ``new_size_bytes``; equal size is a no-op, smaller is refused.

        The new tail reads as zeros and occupies no space.
        """
        ...

    def snapshot(self, volume_id: str, snapshot_id: str) -> SnapshotHandle:
        """Make a point-in-time copy of the volume under ``snapshot_id``.

        Raises SnapshotExists if the id is taken, VolumeNotFound. See the
        package docstring for which concurrent writes are safe per method.
        """
        ...

    def snapshot_path(self, snapshot_id: str) -> Path:
        """Where the snapshot's bytes are (SnapshotNotFound if it does not exist)."""
        ...

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Remove the snapshot; a no-op if it does not exist."""
        ...

    def changed_ranges(
        self, base_snapshot: SnapshotHandle, new_snapshot: SnapshotHandle
    ) -> list[tuple[int, int]] | None:
        """Sorted, merged ``(offset, length)`` byte ranges where ``new_snapshot``
        may differ from ``base_snapshot`` (two snapshots of one volume).

        ``None`` means the driver cannot tell (copies, block devices): the
        caller reads everything. Reporting too much is allowed, too little never.
        """
        ...
