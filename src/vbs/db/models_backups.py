"""Backup records: the API's view of what the repository holds.

Created by the ``backups`` migration branch (root ``backups_0001``, depends on
``identity_0001``). The repository is the truth about a backup's data; a row
becomes ``available`` only after the backup's manifest root is durable in the
repository (docs/repository-format.md §7). ``volume_id`` is not a foreign key:
a backup outlives the volume it was taken from.

Status lifecycle (vbs-api §2.11): creating -> available | error;
available|error_restoring -> restoring -> available | error_restoring;
available|error|error_restoring|error_deleting -> deleting -> row removed |
error_deleting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["BACKUP_STATUSES", "Backup"]

BACKUP_STATUSES = (
    "creating",
    "available",
    "error",
    "restoring",
    "error_restoring",
    "deleting",
    "error_deleting",
)


class Backup(Base):
    __tablename__ = "backups"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(repr(s) for s in BACKUP_STATUSES) + ")", name="status"
        ),
        Index("ix_backups_project_id_created_at", "project_id", "created_at"),
        Index("ix_backups_project_id_status", "project_id", "status"),
        Index("ix_backups_volume_id_status", "volume_id", "status"),
        Index("ix_backups_policy_id", "policy_id"),
        Index("ix_backups_parent_id", "parent_id"),  # has_dependent_backups (backups_0003)
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    volume_id: Mapped[str] = mapped_column(String(36))
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The snapshot the caller named; NULL when VBS took an internal one."""
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="creating")
    fail_reason: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    size_gb: Mapped[int] = mapped_column(Integer, default=0)
    """Source volume size in GiB (vbs-api [D25])."""
    volume_size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    object_count: Mapped[int] = mapped_column(Integer, default=0)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    """Bytes this backup added to the repository (after dedup and compression)."""
    container: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_incremental: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(16), default="vbs")
    """Which API created it: vbs, native or policy."""
    policy_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    image_source: Mapped[bool] = mapped_column(Boolean, default=False)
    """The backup is the source of an image: deletion refused (VolumeBackup.0113)."""
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """VBS tags as a list of {"key", "value"} objects, in request order."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(
        UtcDateTime, nullable=True, default=utcnow, onupdate=utcnow
    )
    data_timestamp: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    change_tracking: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """``fiemap``, ``hints`` or ``none``: how unchanged data was found (``backups_0002``)."""
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes_new: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Plain bytes of chunks this backup stored for the first time."""
    chunks_sampled: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
