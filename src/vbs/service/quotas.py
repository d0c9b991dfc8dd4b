"""Backup quotas: how many backups and how many GiB of backups a project may hold.

Limits come from the settings defaults (``quotas.default_backups``,
``quotas.default_gigabytes``; -1 = unlimited, vbs-api §2.15). Usage counts
every backup record that is not being deleted, in GiB of source volume size
(the unit the API reports). Exceeding a limit is 400 ``VolumeBackup.0080`` /
``0081`` on VBS paths and 413 ``overLimit`` on native paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vbs.db.models_backups import Backup
from vbs.errors import ServiceError
from vbs.service import codes
from vbs.service.backup_records import Family

__all__ = ["QuotaUsage", "backup_usage", "check_backup_quota", "limits_for"]


@dataclass(frozen=True)
class QuotaUsage:
    backups: int
    gigabytes: int
    backups_limit: int
    gigabytes_limit: int


def limits_for(session: Session, project_id: str, settings: Any) -> tuple[int, int]:
    """(backups, gigabytes) limits of a project; -1 means unlimited."""
    q = getattr(settings, "quotas", None)
    return (int(getattr(q, "default_backups", -1)), int(getattr(q, "default_gigabytes", -1)))


def backup_usage(session: Session, project_id: str, settings: Any) -> QuotaUsage:
    count, gib = session.execute(
        select(func.count(), func.coalesce(func.sum(Backup.size_gb), 0)).where(
            Backup.project_id == project_id, Backup.status != "deleting"
        )
    ).one()
    lb, lg = limits_for(session, project_id, settings)
    return QuotaUsage(int(count), int(gib), lb, lg)


def check_backup_quota(session: Session, family: Family, project_id: str, settings: Any,
                       *, adding_gb: int = 0) -> None:
    """Refuse one more backup (of ``adding_gb`` GiB) when it would exceed a limit."""
    usage = backup_usage(session, project_id, settings)
    if usage.backups_limit >= 0 and usage.backups + 1 > usage.backups_limit:
        _over(family, codes.VB_QUOTA_BACKUP_COUNT,
              f"Maximum number of backups allowed ({usage.backups_limit}) exceeded.")
    if usage.gigabytes_limit >= 0 and usage.gigabytes + adding_gb > usage.gigabytes_limit:
        _over(family, codes.VB_QUOTA_BACKUP_GIGABYTES,
              f"Requested backup exceeds allowed Backup gigabytes quota "
              f"({usage.gigabytes_limit} GiB).")


def _over(family: Family, code: codes.ApiCode, message: str) -> None:
    if family is Family.VBS:
        raise ServiceError(message, code.code, code.status)
    raise ServiceError(message, codes.NATIVE_OVER_LIMIT.code, codes.NATIVE_OVER_LIMIT.status)
