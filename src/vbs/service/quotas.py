"""Backup quotas: how many backups, and how many GiB of backups, a project may hold.

Contract (vbs-api §2.15, §4.5, [D7], [D59]):

* Limits: the project's row in ``backup_quotas`` (set by
  ``vbs admin quota set``) or, for a limit the admin did not set, the
  settings default (``quotas.default_backups`` / ``quotas.default_gigabytes``).
  ``-1`` means unlimited.
* Usage: every backup record of the project whose status is not
  ``deleting`` (deleting frees quota at once, §2.12), counted once and summed
  in GiB of source-volume size (the unit ``size`` reports, [D25]). Backups
  shared *with* a project count against their owner only. ``reserved`` is
  always 0: a creation is recorded in the same transaction that accepts it.
* Exceeding a limit: 400 ``VolumeBackup.0080`` (count) / ``0081`` (GiB) on
  the VBS and policy paths, 413 ``overLimit`` with ``Retry-After`` on the
  native paths (the wire format adds the header, :mod:`vbs.api.errors`).

Concurrency (why two parallel creations cannot both take the last slot):

====================  ==========================================================
database              what serialises the check-and-insert of one project
====================  ==========================================================
PostgreSQL            the project's ``backup_quotas`` row, upserted then locked
                      with ``SELECT ... FOR UPDATE`` before usage is counted; the
                      second transaction waits, then (READ COMMITTED) counts the
                      first one's committed row
SQLite                the single database write lock: the upsert is a write, so
                      from then on the transaction is the only writer and its
                      reads are current
====================  ==========================================================

:func:`enforce_backup_quota` runs *after* the new backup row is flushed, in
the creating transaction (``vbs.service.backups.create_backup``), so the count
and the GiB sum include the new backup exactly and a refusal rolls the whole
creation back. Every creation path (VBS, native, policy) goes through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NoReturn

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vbs.config import QuotaSettings, Settings
from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.models_quotas import BackupQuota
from vbs.errors import ServiceError
from vbs.service import codes
from vbs.service.backup_records import Family

__all__ = [
    "KEEP",
    "UNLIMITED",
    "QuotaLimits",
    "QuotaUsage",
    "backup_usage",
    "check_backup_quota",
    "enforce_backup_quota",
    "limits_for",
    "lock_project_quota",
    "project_overrides",
    "set_project_quota",
]

UNLIMITED: Final = -1


class _Keep:
    """Sentinel type of :data:`KEEP`."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()
"""``set_project_quota`` argument meaning "leave this limit as it is"."""


@dataclass(frozen=True)
class QuotaLimits:
    """Effective limits of a project; ``-1`` = unlimited."""

    backups: int
    gigabytes: int


@dataclass(frozen=True)
class QuotaUsage:
    """Usage and effective limits, as ``GET .../cloudbackups/quota`` reports them."""

    backups: int
    gigabytes: int
    backups_limit: int
    gigabytes_limit: int
    reserved_backups: int = 0
    reserved_gigabytes: int = 0


def _defaults(source: object) -> QuotaSettings:
    """``settings.quotas`` from whatever the caller holds (Settings, its
    ``quotas`` section, or None for "no defaults": unlimited)."""
    if isinstance(source, Settings):
        return source.quotas
    return source if isinstance(source, QuotaSettings) else QuotaSettings()


def project_overrides(session: Session, project_id: str) -> tuple[int | None, int | None]:
    """The admin-set (backups, gigabytes) of a project; None = settings default."""
    row = session.get(BackupQuota, project_id)
    return (None, None) if row is None else (row.backups, row.gigabytes)


def limits_for(session: Session, project_id: str,
               defaults: Settings | QuotaSettings | None) -> QuotaLimits:
    """Effective limits: the project's overrides, else ``defaults``, else unlimited."""
    d = _defaults(defaults)
    backups, gigabytes = project_overrides(session, project_id)
    return QuotaLimits(
        backups=d.default_backups if backups is None else backups,
        gigabytes=d.default_gigabytes if gigabytes is None else gigabytes,
    )


def backup_usage(session: Session, project_id: str,
                 defaults: Settings | QuotaSettings | None = None) -> QuotaUsage:
    """Current usage of ``project_id`` with its effective limits (no lock taken)."""
    count, gib = session.execute(
        select(func.count(), func.coalesce(func.sum(Backup.size_gb), 0)).where(
            Backup.project_id == project_id, Backup.status != "deleting"
        )
    ).one()
    limits = limits_for(session, project_id, defaults)
    return QuotaUsage(int(count), int(gib), limits.backups, limits.gigabytes)


def lock_project_quota(session: Session, project_id: str) -> None:
    """Take the project's quota lock until the transaction ends (table above).

    Idempotent within one transaction. The row is created (all limits
    default) when missing; ``ON CONFLICT DO NOTHING`` makes two first
    creations of one project safe.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(BackupQuota)
        .values(project_id=project_id, backups=None, gigabytes=None, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["project_id"])
    )
    session.execute(
        select(BackupQuota.project_id).where(BackupQuota.project_id == project_id)
        .with_for_update()
    )


def enforce_backup_quota(session: Session, family: Family, project_id: str,
                         defaults: Settings | QuotaSettings | None,
                         *, new_backup_gb: int) -> None:
    """Refuse if the project's backups, *including the one just flushed*, exceed a limit.

    Call after the new row is flushed and before anything irreversible; the
    refusal is a :class:`ServiceError`, so the caller's unit of work rolls
    the creation back. ``new_backup_gb`` only feeds the message.
    """
    lock_project_quota(session, project_id)
    usage = backup_usage(session, project_id, defaults)
    if usage.backups_limit != UNLIMITED and usage.backups > usage.backups_limit:
        _over(family, codes.VB_QUOTA_BACKUP_COUNT,
              f"Maximum number of backups allowed ({usage.backups_limit}) exceeded.")
    if usage.gigabytes_limit != UNLIMITED and usage.gigabytes > usage.gigabytes_limit:
        _over(family, codes.VB_QUOTA_BACKUP_GIGABYTES,
              f"Requested backup exceeds allowed Backup gigabytes quota. Requested "
              f"{new_backup_gb}G, quota is {usage.gigabytes_limit}G and "
              f"{usage.gigabytes - new_backup_gb}G has been consumed.")


def check_backup_quota(session: Session, family: Family, project_id: str,
                       settings: object,
                       *, adding_gb: int = 0) -> None:
    """Pre-check that one more backup of ``adding_gb`` GiB fits (under the lock).

    Kept for callers that check before ``create_backup``; the authoritative
    check is :func:`enforce_backup_quota`, which ``create_backup`` runs itself.
    """
    lock_project_quota(session, project_id)
    usage = backup_usage(session, project_id, _defaults(settings))
    if usage.backups_limit != UNLIMITED and usage.backups + 1 > usage.backups_limit:
        _over(family, codes.VB_QUOTA_BACKUP_COUNT,
              f"Maximum number of backups allowed ({usage.backups_limit}) exceeded.")
    if usage.gigabytes_limit != UNLIMITED and usage.gigabytes + adding_gb > usage.gigabytes_limit:
        _over(family, codes.VB_QUOTA_BACKUP_GIGABYTES,
              f"Requested backup exceeds allowed Backup gigabytes quota "
              f"({usage.gigabytes_limit}G).")


def set_project_quota(session: Session, project_id: str, *,
                      backups: int | None | _Keep = KEEP,
                      gigabytes: int | None | _Keep = KEEP) -> tuple[int | None, int | None]:
    """Set (int), reset to the settings default (None) or keep (:data:`KEEP`) limits.

    Values below -1 are refused. Lowering a limit below current usage is
    allowed (as in Cinder): existing backups stay, new ones are refused.
    Returns the stored (backups, gigabytes) overrides.
    """
    for name, value in (("backups", backups), ("gigabytes", gigabytes)):
        if isinstance(value, int) and value < UNLIMITED:
            raise ServiceError(f"{name} must be -1 (unlimited) or >= 0, got {value}.",
                               codes.NATIVE_BAD_REQUEST.code, 400)
    lock_project_quota(session, project_id)
    row = session.get(BackupQuota, project_id, populate_existing=True)
    assert row is not None  # created by the lock
    if not isinstance(backups, _Keep):
        row.backups = backups
    if not isinstance(gigabytes, _Keep):
        row.gigabytes = gigabytes
    row.updated_at = utcnow()
    session.flush()
    return row.backups, row.gigabytes


def _over(family: Family, code: codes.ApiCode, message: str) -> NoReturn:
    if family is Family.VBS:
        raise ServiceError(message, code.code, code.status)
    raise ServiceError(message, codes.NATIVE_OVER_LIMIT.code, codes.NATIVE_OVER_LIMIT.status)
