"""Volume drivers: where block volumes and their snapshots live.

Nouns
-----
volume
    A block-addressable byte range of fixed size that a VM or operator reads
    and writes: a sparse raw image file, or an existing block device. The
    restore writes into a volume's path.
snapshot
    An immutable point-in-time copy of a volume, stored as a file the backup
    engine reads (skipping holes with :func:`data_extents`). Independent of
    its volume once made: writing, extending or deleting the volume does not
    change it.
driver
    The object that owns the volume and snapshot namespaces and hands out
    paths: :class:`VolumeDriver` is the interface, :class:`FileVolumeDriver`
    keeps volumes at ``root/ID.img`` and snapshots at
    ``root/snapshots/ID.img`` (a public contract, see :mod:`.layout`).
import root
    A directory the operator allows VBS to take existing images or block
    devices from (:func:`import_volume`). Imported volumes stay where they
    are; the driver only records them in ``root/imported.json`` and never
    deletes or resizes them.

Concurrency
-----------
The driver is safe to share between threads and between processes on the
same host (scale-out workers), given a local filesystem. Namespace changes
take an exclusive ``flock`` on ``root/.lock`` for a few metadata syscalls
only; data is never copied under the lock.

==========================================  =========  =====================================
operations that overlap                     allowed?   what makes it safe
==========================================  =========  =====================================
create/import X  vs  create/import X        yes        namespace lock; the loser gets
                                                       VolumeExists, nothing half-made
create/import/delete of different ids       yes        namespace lock serialises registry
                                                       read-modify-write
path/size/exists  vs  anything              yes        registry replaced by rename (old or
                                                       new file, never a mix); no lock
snapshot S  vs  snapshot S (same id)        yes        each fills its own ``.tmp-*`` file;
                                                       ``link(2)`` publishes, loser gets
                                                       SnapshotExists
snapshot V  vs  snapshot V (other ids)      yes        both only read V
snapshot V  vs  writes to V, reflink        yes        FICLONE flushes and locks the inode:
                                                       the clone is one point in time
                                                       (crash-consistent, like power loss)
snapshot V  vs  writes/extend V, copy       NO         the copy reads V over time and may
                                                       mix old and new blocks: the caller
                                                       must quiesce V (service status
                                                       ``backing-up``, guest detached or
                                                       frozen). Block devices are copies.
snapshot V  vs  delete V                    yes        an open fd keeps the inode; the
                                                       snapshot completes or gets
                                                       VolumeNotFound if delete came first
create_from_snapshot S  vs  delete_snapshot yes        same open-fd argument
reading a snapshot  vs  delete_snapshot     yes*       open fds keep reading; new opens
                                                       fail. *The service must not delete
                                                       a snapshot a job still needs.
extend V  vs  extend V                      yes        ftruncate is atomic; grow-only check
                                                       per call
restore writing V  vs  snapshot/extend V    NO         same as copy snapshots: the service
                                                       holds V in ``restoring-backup``
==========================================  =========  =====================================

A crash at any point leaves complete objects under final names and at worst
``.tmp-*`` leftovers, removed by :meth:`FileVolumeDriver.remove_temporaries`
at startup.
"""

from __future__ import annotations

from vbs.volumes.base import SnapshotHandle, SnapshotMethod, VolumeDriver, VolumeHandle
from vbs.volumes.errors import (
    ImportedVolumeChanged,
    ImportNotAllowed,
    InvalidImportSource,
    InvalidVolumeId,
    InvalidVolumeSize,
    RegistryCorrupt,
    SnapshotExists,
    SnapshotNotFound,
    UnsupportedOperation,
    VolumeExists,
    VolumeIOError,
    VolumeNotFound,
)
from vbs.volumes.file_driver import FileVolumeDriver
from vbs.volumes.import_volume import import_volume
from vbs.volumes.sparse import copy_sparse, data_extents

__all__ = [
    "FileVolumeDriver",
    "ImportNotAllowed",
    "ImportedVolumeChanged",
    "InvalidImportSource",
    "InvalidVolumeId",
    "InvalidVolumeSize",
    "RegistryCorrupt",
    "SnapshotExists",
    "SnapshotHandle",
    "SnapshotMethod",
    "SnapshotNotFound",
    "UnsupportedOperation",
    "VolumeDriver",
    "VolumeExists",
    "VolumeHandle",
    "VolumeIOError",
    "VolumeNotFound",
    "copy_sparse",
    "data_extents",
    "import_volume",
]
