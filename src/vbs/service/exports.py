"""Export use cases: create, list, show, renew and end NBD exports of backups.

Rules and their codes (docs/decisions.md "Backup exports"; every code is one
of vbs-api §10, so the catalogue stays the spec's):

* body: ``{"export": {"protocol": "nbd", "writable": bool, "expires_in": s}}``,
  every member optional, nothing else allowed -> 400 ``VolumeBackup.0002``;
  ``expires_in`` 1..``exports.ttl_seconds`` (default the maximum);
* the backup must belong to the caller's project: another project's backup
  is 404 ``VolumeBackup.0110``; a backup shared *with* the caller is 403
  ``VolumeBackup.0042`` (a share grants read-and-restore, a one-shot job; a
  live export would pin the owner's backup against deletion, so it stays
  the owner's decision);
* the backup must be ``available`` -> 400 ``VolumeBackup.0089``;
* at most ``exports.max_per_project`` live exports per project -> 400
  ``VolumeBackup.0040``;
* no export server in this process (disabled, or not started) -> 503
  ``VolumeBackup.0900``;
* an export id unknown to the caller's project, of another backup, or
  expired -> 404 ``VolumeBackup.0110``.

Renewal (``POST .../exports/{id}/renew``) moves ``expires_at`` to now plus
the export's original lifetime, capped by ``exports.ttl_seconds``. A backup
with a live export cannot be deleted (:func:`refuse_if_exported`, used by
both delete paths). Creation "touches" the backup row with a compare-and-set
on ``available`` under the same row lock the delete's status change takes,
so an export and a delete racing on PostgreSQL cannot both commit.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.models_exports import BackupExport
from vbs.db.session import Database
from vbs.export.server import ExportTarget
from vbs.service import codes
from vbs.service.backup_records import Family, refuse
from vbs.service.codes import fail
from vbs.service.shares import owner_for_reader, refuse_recipient

__all__ = [
    "DbCatalog",
    "ExportLimits",
    "ExportRecord",
    "ExportRequest",
    "create_export",
    "delete_export",
    "get_export",
    "has_live_export",
    "list_exports",
    "parse_export_create",
    "purge_expired",
    "refuse_if_exported",
    "renew_export",
]


@dataclass(frozen=True)
class ExportRequest:
    protocol: str
    writable: bool
    expires_in: int | None


@dataclass(frozen=True)
class ExportLimits:
    """``settings.exports`` as the rules need it."""

    ttl_seconds: int
    max_per_project: int
    overlay_dir: Path


@dataclass(frozen=True)
class ExportRecord:
    id: str
    backup_id: str
    project_id: str
    protocol: str
    uri: str
    writable: bool
    created_at: dt.datetime
    expires_at: dt.datetime
    name: str

    def as_body(self) -> dict[str, Any]:
        """The wire object (the ``name`` is inside ``uri``)."""
        return {
            "id": self.id,
            "backup_id": self.backup_id,
            "protocol": self.protocol,
            "uri": self.uri,
            "writable": self.writable,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
        }


def _iso(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _record(row: BackupExport) -> ExportRecord:
    return ExportRecord(row.id, row.backup_id, row.project_id, row.protocol, row.uri,
                        row.writable, row.created_at, row.expires_at, row.name)


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def parse_export_create(body: object) -> ExportRequest:
    """Parse a create body; a missing body means all defaults."""
    if body is None:
        return ExportRequest("nbd", False, None)
    if not isinstance(body, dict) or set(body) != {"export"} or not isinstance(
            body["export"], dict):
        fail(codes.VB_MALFORMED_BODY, 'The body must be {"export": {...}}.')
    doc: dict[str, object] = body["export"]
    unknown = sorted(set(doc) - {"protocol", "writable", "expires_in"})
    if unknown:
        fail(codes.VB_MALFORMED_BODY, f"export: unknown member(s) {', '.join(unknown)}.")
    protocol = doc.get("protocol", "nbd")
    if protocol != "nbd":
        fail(codes.VB_MALFORMED_BODY, 'export.protocol must be "nbd" (the only one offered).')
    writable = doc.get("writable", False)
    if not isinstance(writable, bool):
        fail(codes.VB_MALFORMED_BODY, "export.writable must be true or false.")
    expires_in = doc.get("expires_in")
    if expires_in is not None and (isinstance(expires_in, bool)
                                   or not isinstance(expires_in, int) or expires_in < 1):
        fail(codes.VB_MALFORMED_BODY, "export.expires_in must be a positive number of seconds.")
    return ExportRequest("nbd", writable, expires_in)


def _owned_backup(session: Session, project_id: str, backup_id: str, action: str) -> Backup:
    owner = owner_for_reader(session, backup_id, project_id)
    row = session.get(Backup, backup_id)
    if row is None or row.project_id != owner or row.status == "deleted":
        refuse(Family.VBS, codes.VB_BACKUP_NOT_FOUND, f"Backup {backup_id} could not be found.")
    if owner != project_id:
        refuse_recipient(Family.VBS, backup_id, action)
    return row


def _live(now: dt.datetime) -> Any:
    return BackupExport.expires_at > now


def create_export(session: Session, *, project_id: str, user_id: str | None, backup_id: str,
                  request: ExportRequest, limits: ExportLimits,
                  uri_for: Callable[[str], str] | None) -> ExportRecord:
    """Record a new export; the caller's export server serves it from commit on."""
    row = _owned_backup(session, project_id, backup_id, "export")
    if row.status != "available":
        fail(codes.VB_RESTORE_BACKUP_NOT_AVAILABLE,
             f"Backup {backup_id} is {row.status}; only an available backup can be exported.")
    if uri_for is None:
        fail(codes.VB_SERVICE_UNAVAILABLE,
             "This server does not serve exports (exports.enabled is false or the export "
             "server is not running here).")
    ttl = min(request.expires_in or limits.ttl_seconds, limits.ttl_seconds)
    now = utcnow()
    touched = session.execute(
        update(Backup)
        .where(Backup.id == backup_id, Backup.status == "available")
        .values(status=Backup.status, updated_at=Backup.updated_at)
        .execution_options(synchronize_session=False)
    )
    if not getattr(touched, "rowcount", 0):
        fail(codes.VB_RESTORE_BACKUP_NOT_AVAILABLE,
             f"Backup {backup_id} changed status concurrently; try again.")
    count = session.scalar(select(func.count()).select_from(BackupExport).where(
        BackupExport.project_id == project_id, _live(now))) or 0
    if count >= limits.max_per_project:
        fail(codes.VB_VOLUME_BACKUP_LIMIT,
             f"Project {project_id} already has {count} live export(s), the most allowed "
             f"(exports.max_per_project = {limits.max_per_project}); end one first.")
    export_id = str(uuid.uuid4())
    name = secrets.token_hex(24)
    overlay = limits.overlay_dir / f"{export_id}.overlay" if request.writable else None
    export = BackupExport(
        id=export_id, name=name, project_id=project_id, backup_id=backup_id,
        backup_project_id=row.project_id, user_id=user_id, protocol=request.protocol,
        writable=request.writable, uri=uri_for(name),
        overlay_path=str(overlay) if overlay else None, created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
    )
    session.add(export)
    session.flush()
    return _record(export)


def list_exports(session: Session, project_id: str, backup_id: str) -> list[ExportRecord]:
    """The caller's live exports of a backup it can see."""
    _visible(session, project_id, backup_id)
    rows = session.scalars(select(BackupExport).where(
        BackupExport.backup_id == backup_id, BackupExport.project_id == project_id,
        _live(utcnow())).order_by(BackupExport.created_at, BackupExport.id))
    return [_record(r) for r in rows]


def _visible(session: Session, project_id: str, backup_id: str) -> None:
    owner = owner_for_reader(session, backup_id, project_id)
    row = session.get(Backup, backup_id)
    if row is None or row.project_id != owner or row.status == "deleted":
        refuse(Family.VBS, codes.VB_BACKUP_NOT_FOUND, f"Backup {backup_id} could not be found.")


def _load(session: Session, project_id: str, backup_id: str, export_id: str) -> BackupExport:
    _visible(session, project_id, backup_id)
    row = session.get(BackupExport, export_id)
    if (row is None or row.project_id != project_id or row.backup_id != backup_id
            or _as_utc(row.expires_at) <= utcnow()):
        fail(codes.VB_BACKUP_NOT_FOUND,
             f"Export {export_id} of backup {backup_id} could not be found.")
    return row


def get_export(session: Session, project_id: str, backup_id: str,
               export_id: str) -> ExportRecord:
    return _record(_load(session, project_id, backup_id, export_id))


def renew_export(session: Session, project_id: str, backup_id: str, export_id: str,
                 limits: ExportLimits) -> ExportRecord:
    """Extend a live export by its original lifetime (capped by the ttl)."""
    row = _load(session, project_id, backup_id, export_id)
    lifetime = _as_utc(row.expires_at) - _as_utc(row.created_at)
    lifetime = min(lifetime, dt.timedelta(seconds=limits.ttl_seconds))
    row.expires_at = utcnow() + lifetime
    session.flush()
    return _record(row)


def delete_export(session: Session, project_id: str, backup_id: str,
                  export_id: str) -> ExportRecord:
    """Remove the record; the caller ends the export in its server."""
    row = _load(session, project_id, backup_id, export_id)
    rec = _record(row)
    session.delete(row)
    session.flush()
    return rec


def has_live_export(session: Session, backup_id: str) -> bool:
    return bool(session.scalar(select(exists().where(
        BackupExport.backup_id == backup_id, _live(utcnow())))))


def refuse_if_exported(session: Session, family: Family, backup_id: str) -> None:
    """A backup with a live export cannot be deleted (both API families)."""
    if has_live_export(session, backup_id):
        refuse(family, codes.VB_DELETE_INVALID,
               f"Backup {backup_id} has a live export; end it first (DELETE "
               f"/v2/{{project_id}}/cloudbackups/{backup_id}/exports/{{export_id}}) or let it "
               f"expire.")


def purge_expired(session: Session) -> int:
    res = session.execute(delete(BackupExport).where(BackupExport.expires_at <= utcnow()))
    return int(getattr(res, "rowcount", 0) or 0)


class DbCatalog:
    """The export server's :class:`~vbs.export.server.Catalog` over ``backup_exports``."""

    def __init__(self, db: Database, overlay_dir: Path | None = None) -> None:
        self.db = db
        self.overlay_dir = overlay_dir

    def lookup(self, name: str) -> ExportTarget | None:
        if not name or len(name) > 64:
            return None
        with self.db.session() as s:
            row = s.scalars(select(BackupExport).where(BackupExport.name == name)).first()
            if row is None:
                return None
            expires = _as_utc(row.expires_at)
            if expires <= utcnow():
                return None
            return ExportTarget(name=row.name, project=row.backup_project_id,
                                backup_id=row.backup_id, writable=row.writable,
                                expires_at=expires,
                                overlay=Path(row.overlay_path) if row.overlay_path else None)

    def purge(self) -> None:
        """Drop expired rows, then overlay files no live export owns (left by
        an export that ended while this server was down)."""
        with self.db.session() as s:
            purge_expired(s)
            if self.overlay_dir is None or not self.overlay_dir.is_dir():
                return
            live = set(s.scalars(select(BackupExport.id).where(
                BackupExport.overlay_path.is_not(None))))
        for f in self.overlay_dir.iterdir():
            if f.name.split(".", 1)[0] not in live and ".overlay" in f.name:
                f.unlink(missing_ok=True)
