"""The backup service as the policy scheduler sees it (``vbs.scheduler.ports``).

Policy backups go through exactly the same use case as API backups
(:func:`vbs.service.backups.create_backup`), named as the scheduler chooses
and marked with the policy id, so retention only ever considers backups the
policy made. Errors keep their VBS codes (the scheduler records them in the
task).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vbs.db.models_backups import Backup
from vbs.db.models_volumes import Volume
from vbs.scheduler.ports import BackupRef, VolumeInfo
from vbs.service.backup_records import Family
from vbs.service.backup_rules import Tag
from vbs.service.backups import create_backup, delete_backup

__all__ = ["ServiceBackupPort"]


class ServiceBackupPort:
    """Implements BackupPort and VolumeInventoryPort on the real tables."""

    def __init__(self, settings: object | None = None) -> None:
        self._settings = settings

    def volume_exists(self, session: Session, project_id: str, volume_id: str) -> bool:
        row = session.get(Volume, volume_id)
        return row is not None and row.project_id == project_id

    def volume_info(self, session: Session, project_id: str, volume_id: str) -> VolumeInfo | None:
        row = session.get(Volume, volume_id)
        if row is None or row.project_id != project_id:
            return None
        return VolumeInfo(status=row.status, availability_zone=row.availability_zone,
                          host="vbs@file#file")

    def submit_policy_backup(self, session: Session, *, project_id: str, volume_id: str,
                             policy_id: str, backup_name: str) -> tuple[str, str]:
        from vbs.scheduler.runs import policy_tags

        tags = [Tag(k, v) for k, v in policy_tags(session, policy_id)]  # vbs-api §2.13
        with session.begin_nested():
            sub = create_backup(
                session, family=Family.VBS, project_id=project_id, user_id=None,
                volume_id=volume_id, name=backup_name, source="policy", policy_id=policy_id,
                tags=tags, quota_defaults=getattr(self._settings, "quotas", None),
            )
        return sub.job_id, sub.backup.id

    def policy_backups(self, session: Session, *, project_id: str, policy_id: str,
                       volume_id: str) -> list[BackupRef]:
        rows = session.execute(
            select(Backup.id, Backup.created_at, Backup.status).where(
                Backup.project_id == project_id,
                Backup.policy_id == policy_id,
                Backup.volume_id == volume_id,
            )
        ).all()
        return [BackupRef(id=r[0], created_at=r[1], status=r[2]) for r in rows]

    def delete_backup(self, session: Session, *, project_id: str, backup_id: str) -> str:
        return delete_backup(session, family=Family.VBS, project_id=project_id,
                             backup_id=backup_id).job_id
