"""Import: register an operator's existing image file or block device as a volume.

Re-exported by :mod:`vbs.service.volumes` (see its docstring for the unit of
work rules). The allowlist check itself is :func:`vbs.volumes.import_volume`;
this layer adds the row, the project check and clear refusals.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_identity import Project
from vbs.db.models_volumes import Volume
from vbs.service.volume_records import (
    InvalidVolumeInput,
    VolumeImportRefused,
    VolumeRecord,
    check_text,
    volume_record,
)
from vbs.volumes import (
    FileVolumeDriver,
    ImportNotAllowed,
    InvalidImportSource,
    VolumeExists,
    VolumeNotFound,
    import_volume,
)

__all__ = ["AVAILABILITY_ZONE", "GIB", "import_existing"]

GIB = 1 << 30
AVAILABILITY_ZONE = "nova"
"""The single availability zone of the built-in store (Cinder's default name)."""


def import_existing(
    session: Session,
    driver: FileVolumeDriver,
    path: Path | str,
    project_id: str,
    name: str | None = None,
    allowed_roots: Sequence[Path] = (),
    *,
    description: str | None = None,
) -> VolumeRecord:
    """Register an existing image file or block device as an ``available`` volume.

    The source must resolve (symlinks followed) inside one of
    ``allowed_roots`` (``settings.volumes.import_roots``), be a regular file
    or block device, non-empty, and not already imported; otherwise
    :class:`VolumeImportRefused` whose message names the path, the roots and
    the rule. Nothing is copied: the volume *is* that file or device, and
    deleting the volume only unregisters it. ``size_gb`` is the size rounded
    up to whole GiB; ``size_bytes`` is exact. Does not commit; if the
    caller's unit of work fails after this returns, the driver registration
    stays behind (unregister with ``driver.delete(id)``).
    """
    name = check_text("name", name)
    description = check_text("description", description)
    if session.get(Project, project_id) is None:
        raise InvalidVolumeInput(f"Invalid input received: project {project_id} does not exist.")
    source = Path(path)
    volume_id = str(uuid.uuid4())
    try:
        handle = import_volume(driver, source, volume_id, allowed_roots)
    except (ImportNotAllowed, InvalidImportSource, VolumeExists, VolumeNotFound) as exc:
        raise VolumeImportRefused(exc.message) from exc
    try:
        if handle.size_bytes <= 0:
            raise VolumeImportRefused(
                f"cannot import {source}: it is empty (0 bytes), so there is nothing to back up"
            )
        now = utcnow()
        row = Volume(
            id=volume_id, project_id=project_id, user_id=None, name=name,
            description=description, size_gb=-(-handle.size_bytes // GIB),
            size_bytes=handle.size_bytes, status="available", driver="file", imported=True,
            external_path=str(handle.path), bootable=False, availability_zone=AVAILABILITY_ZONE,
            snapshot_id=None, attached_to=None, meta={}, created_at=now, updated_at=now,
        )
        session.add(row)
        session.flush()
    except BaseException:
        driver.delete(volume_id)  # imported: only unregisters, never touches the source
        raise
    return volume_record(row)
