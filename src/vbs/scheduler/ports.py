"""What the scheduler needs from the rest of VBS, as small protocols.

The scheduler sits below the service layer (DESIGN.md layers), so it cannot
call the backup service directly. It calls :class:`BackupPort` instead; the
backup service implements it and the composition root (``vbs.bootstrap``)
hands the implementation to :class:`vbs.scheduler.scheduler.Scheduler` and to
the policy API. Tests use hand-written in-memory fakes.

Every method receives the caller's SQLAlchemy ``Session``: whatever the port
writes (a job row, a backup record) commits or rolls back together with the
scheduler's own rows (the slot claim and the task records), so a crash never
leaves a claimed slot without its tasks, or tasks without their jobs.

:class:`VolumeInventoryPort` is optional: a port that also implements it lets
association report disk status, availability zone and host (vbs-api §7.6);
without it those fields are ``null`` and only existence is checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from vbs.errors import ServiceError

__all__ = [
    "BackupPort",
    "BackupRef",
    "Clock",
    "TableOnlyBackupPort",
    "VolumeInfo",
    "VolumeInventoryPort",
]

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware UTC. Injected so tests simulate months."""


@dataclass(frozen=True, slots=True)
class BackupRef:
    """One backup a policy created, as retention needs to see it."""

    id: str
    created_at: dt.datetime
    """Aware UTC."""
    status: str
    """Backup status of vbs-api §2.11 (``creating``, ``available``, ``deleting``, ...)."""


@dataclass(frozen=True, slots=True)
class VolumeInfo:
    """What association reports about a disk (vbs-api §7.6, §11)."""

    status: str
    availability_zone: str | None = None
    host: str | None = None
    """Storage pool / host label, rendered as ``os_vol_host_attr``."""


class BackupPort(Protocol):
    """The backup service as the scheduler sees it.

    Contract of each method:

    * ``volume_exists`` — read only; True when the disk exists in the project.
    * ``submit_policy_backup`` — atomic: either it creates the backup record
      (status ``creating``, named ``backup_name``, marked as made by
      ``policy_id``) and its ``bksCreateBackup`` job in ``session`` and returns
      ``(job_id, backup_id)``, or it raises :class:`ServiceError` *before
      writing anything*, with the wire code of the reason
      (``VolumeBackup.0021`` disk gone, ``0012`` bad status, ``0013`` busy,
      ``0080``/``0081`` quota...). Not idempotent: each call is a new backup.
    * ``policy_backups`` — read only; every backup of ``volume_id`` created by
      ``policy_id`` that is not yet deleted (any status), in any order.
    * ``delete_backup`` — queues the normal delete job (the backup turns
      ``deleting``) and returns its job id; raises :class:`ServiceError` when
      the backup's status forbids deletion (vbs-api §2.11).
    """

    def volume_exists(self, session: Session, project_id: str, volume_id: str) -> bool: ...

    def submit_policy_backup(self, session: Session, *, project_id: str, volume_id: str,
                             policy_id: str, backup_name: str) -> tuple[str, str]: ...

    def policy_backups(self, session: Session, *, project_id: str, policy_id: str,
                       volume_id: str) -> list[BackupRef]: ...

    def delete_backup(self, session: Session, *, project_id: str, backup_id: str) -> str: ...


@runtime_checkable
class VolumeInventoryPort(Protocol):
    """Optional extension of a :class:`BackupPort`: disk details for association."""

    def volume_info(self, session: Session, project_id: str,
                    volume_id: str) -> VolumeInfo | None: ...


class TableOnlyBackupPort:
    """Stand-in until the backup service implements :class:`BackupPort`.

    A disk exists when a row of the ``volumes`` table (``id``, ``project_id``)
    says so; there is no such table yet, then no disk exists. Submitting a
    backup fails with ``AutoBackup.1700`` (recorded on the task, never a
    crash); there are no policy backups and nothing to delete.
    """

    def volume_exists(self, session: Session, project_id: str, volume_id: str) -> bool:
        if not inspect(session.connection()).has_table("volumes"):
            return False
        row = session.execute(
            text("SELECT 1 FROM volumes WHERE id = :v AND project_id = :p"),
            {"v": volume_id, "p": project_id},
        ).first()
        return row is not None

    def submit_policy_backup(self, session: Session, *, project_id: str, volume_id: str,
                             policy_id: str, backup_name: str) -> tuple[str, str]:
        raise ServiceError("The backup service is not available in this process.",
                           "AutoBackup.1700", 500)

    def policy_backups(self, session: Session, *, project_id: str, policy_id: str,
                       volume_id: str) -> list[BackupRef]:
        return []

    def delete_backup(self, session: Session, *, project_id: str, backup_id: str) -> str:
        raise ServiceError("The backup service is not available in this process.",
                           "VolumeBackup.0100", 500)

