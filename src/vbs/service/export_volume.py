"""Turn a writable export into a new volume: the backup plus the export's writes.

``POST /v2/{p}/cloudbackups/{backup_id}/exports/{id}/volume`` (docs/operations.md
"Exports"). The export ends (its record is deleted, its connections closed)
and its overlay is written, merged with the backup, into a new volume of the
backup's size in the caller's project; then the overlay is discarded. Like a
volume created from a snapshot, the copy runs in the request: the volume row
is committed ``creating`` first and ``available`` (or ``error``) after, and a
crash in between leaves it ``creating``, which start-up recovery marks
``error`` (:func:`vbs.service.volumes.recover_interrupted`).

Rules: only a writable export (else 400 ``VolumeBackup.0002``), and only on
the server holding its overlay: one that saw no client here has nothing to
merge, and another node may hold it, so that is refused too (400
``VolumeBackup.0002``, naming the URI to use) rather than silently making a
plain copy of the backup. Other codes as in :mod:`vbs.service.exports`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from vbs.db.models_volumes import Volume
from vbs.export import BackupSource, CowDevice, NbdServer
from vbs.service import codes
from vbs.service.codes import fail
from vbs.service.exports import delete_export, get_export
from vbs.service.volume_records import VolumeRecord, volume_record
from vbs.service.volumes import create_volume
from vbs.volumes import FileVolumeDriver

__all__ = ["export_to_volume"]


def export_to_volume(session: Session, *, server: NbdServer | None, driver: FileVolumeDriver,
                     project_id: str, user_id: str | None, backup_id: str, export_id: str,
                     name: str | None) -> VolumeRecord:
    """End the export and make its overlay a new volume; returns the volume."""
    from vbs.db.models_exports import BackupExport

    rec = get_export(session, project_id, backup_id, export_id)
    row = session.get(BackupExport, export_id)
    assert row is not None
    if not rec.writable or row.overlay_path is None:
        fail(codes.VB_MALFORMED_BODY,
             f"Export {export_id} is read-only: restore the backup instead.")
    overlay = Path(row.overlay_path)
    if server is None or not overlay.exists():
        fail(codes.VB_MALFORMED_BODY,
             f"Export {export_id} has no overlay on this server (no client wrote through "
             f"it here; if it is served by another node, send this request to {rec.uri}'s "
             f"host).")
    from vbs.db.models_backups import Backup

    backup = session.get(Backup, backup_id)
    assert backup is not None
    store_project, size_gb = row.backup_project_id, backup.size_gb
    delete_export(session, project_id, backup_id, export_id)
    device = server.detach(rec.name)
    if not isinstance(device, CowDevice):
        device = CowDevice(BackupSource(server.repository.project(store_project), backup_id),
                           overlay)
    try:
        vol = create_volume(session, driver, project_id, size_gb,
                            name or f"export-{export_id[:8]}", user_id=user_id)
        _set_status(session, vol.id, "creating")
        session.commit()
        try:
            device.write_image(driver.path(vol.id))
        except BaseException:
            session.rollback()
            _set_status(session, vol.id, "error")
            session.commit()
            raise
        _set_status(session, vol.id, "available")
        session.flush()
        vrow = session.get(Volume, vol.id)
        assert vrow is not None
        return volume_record(vrow)
    finally:
        device.discard()


def _set_status(session: Session, volume_id: str, status: str) -> None:
    row = session.get(Volume, volume_id)
    assert row is not None
    row.status = status
    session.flush()
