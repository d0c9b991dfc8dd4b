"""Backup policy tables: policies, their tags, disk associations and tasks.

Created by the ``policies`` migration branch (root ``policies_0001``, which
``depends_on`` ``identity_0001`` for ``projects.id``). Contract: vbs-api §2.14,
§3.5, §7, §8.

* ``backup_policies`` keeps ``scheduled_policy`` field by field with the wire
  names (``rentention_*`` spelled as on the wire). ``next_run_at`` is the
  scheduler's claim token: NULL while the policy is ``OFF``, otherwise the
  next slot; a scheduler fires a slot only by moving ``next_run_at`` forward
  with a conditional UPDATE, and the tick reads due rows through its index.
* ``backup_policy_resources``: a disk belongs to at most one policy, hence the
  primary key (project, volume) (vbs-api §2.14). ``volume_id`` is not a
  foreign key: volumes live in another area and a deleted disk must still
  show up as a failed task, not vanish.
* ``backup_policy_tasks``: one row per disk and run. The unique index on
  (policy, volume, slot) is a second guard against firing a slot twice.

Deleting a policy deletes its tags, associations and tasks (vbs-api §7.5).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["BackupPolicy", "PolicyResource", "PolicyTag", "PolicyTask"]


class BackupPolicy(Base):
    __tablename__ = "backup_policies"
    __table_args__ = (
        Index("ix_backup_policies_next_run_at", "next_run_at"),
        Index("ix_backup_policies_project_id_created_at", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    """The system default policy ([D37], [D43]): not renamable, not deletable."""
    start_time: Mapped[str] = mapped_column(String(143))
    """As given: up to 24 ``HH:00`` entries and 23 commas."""
    frequency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    week_frequency: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    rentention_num: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rentention_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remain_first_backup_of_cur_month: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str | None] = mapped_column(String(9), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)


class PolicyTag(Base):
    __tablename__ = "backup_policy_tags"

    policy_id: Mapped[str] = mapped_column(
        ForeignKey("backup_policies.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(36), primary_key=True)
    value: Mapped[str] = mapped_column(String(43))
    position: Mapped[int] = mapped_column(Integer)
    """Insertion order (vbs-api §8.4); an upsert keeps the position."""


class PolicyResource(Base):
    __tablename__ = "backup_policy_resources"
    __table_args__ = (Index("ix_backup_policy_resources_policy_id", "policy_id"),)

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    volume_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("backup_policies.id", ondelete="CASCADE"))
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    os_vol_host_attr: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class PolicyTask(Base):
    __tablename__ = "backup_policy_tasks"
    __table_args__ = (
        Index("ix_backup_policy_tasks_policy_id_created_at", "policy_id", "created_at"),
        Index("ix_backup_policy_tasks_vbs_job_id", "vbs_job_id"),
        Index("ix_backup_policy_tasks_status_created_at", "status", "created_at"),
        Index("uq_backup_policy_tasks_slot", "policy_id", "volume_id", "slot_at", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The task's ``job_id`` on the wire (vbs-api §7.9)."""
    policy_id: Mapped[str] = mapped_column(ForeignKey("backup_policies.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(32))
    volume_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    """``schedule``, ``manual`` (#29) or ``missed`` (slot skipped after downtime)."""
    slot_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The scheduled slot this task belongs to; NULL for manual runs."""
    backup_name: Mapped[str] = mapped_column(String(16))
    backup_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    vbs_job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
