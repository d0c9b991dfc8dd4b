"""Volume store tables: ``volumes`` and ``snapshots`` (the built-in Cinder subset).

Created by the ``volumes`` migration branch (root revision ``volumes_0001``,
``depends_on="identity_0001"`` because rows belong to ``projects``).

The bytes live with the volume driver (``vbs.volumes``); these rows are the
API's records of them. Ids are canonical lowercase UUID strings, shared with
the driver's file names (``root/<id>.img``). Status columns are guarded by
CHECK constraints so a typo in any writer fails loudly instead of inventing
a status no client understands.

The attribute ``meta`` maps to the column ``metadata`` (the name
``metadata`` is reserved on declarative classes).
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
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["SNAPSHOT_STATUSES", "VOLUME_STATUSES", "Snapshot", "Volume"]

VOLUME_STATUSES = (
    "creating",
    "available",
    "in-use",
    "deleting",
    "error",
    "error_deleting",
    "backing-up",
    "restoring-backup",
    "error_restoring",
)
"""Every status a volume row may hold (openstack-compat §6.1, vbs-api §2.11)."""

SNAPSHOT_STATUSES = (
    "creating",
    "available",
    "backing-up",
    "deleting",
    "error",
    "error_deleting",
)
"""Every status a snapshot row may hold (openstack-compat §6.2)."""


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (
        CheckConstraint(_in("status", VOLUME_STATUSES), name="status"),
        CheckConstraint("size_gb >= 1", name="size_gb"),
        CheckConstraint("size_bytes >= 1", name="size_bytes"),
        Index("ix_volumes_project_id_created_at", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Who created it through the API; NULL for operator imports."""
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size_gb: Mapped[int] = mapped_column(Integer)
    """Cinder ``size``: GiB, rounded up for imported sources."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    """Exact size of the volume's bytes (imports need not be whole GiB)."""
    status: Mapped[str] = mapped_column(String(32))
    driver: Mapped[str] = mapped_column(String(16), default="file")
    imported: Mapped[bool] = mapped_column(Boolean, default=False)
    external_path: Mapped[str | None] = mapped_column(String(4096), nullable=True)
    """For imports: the resolved path of the operator's file or device."""
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """Source snapshot, kept after that snapshot is deleted (as Cinder does)."""
    attached_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """Minimal attach record: the server/host holding the volume, if any."""
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    cbt_base_snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """Change tracking (``volumes_0002``): the internal snapshot the last successful
    backup was read from, kept so the next backup can diff against it."""
    cbt_base_backup_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    """The backup taken from ``cbt_base_snapshot_id`` (the only valid parent for it)."""
    cbt_full_next: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Set when the guard caught a wrong "unchanged" range: the next backup reads all."""


class Snapshot(Base):
    __tablename__ = "snapshots"
    __table_args__ = (
        CheckConstraint(_in("status", SNAPSHOT_STATUSES), name="status"),
        CheckConstraint("method IS NULL OR method IN ('reflink', 'copy')", name="method"),
        Index("ix_snapshots_project_id_created_at", "project_id", "created_at"),
        Index("ix_snapshots_volume_id", "volume_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id"))
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size_gb: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    """``reflink`` or ``copy`` once made; NULL while ``creating``."""
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    """Made by the backup service for one backup and deleted after it;
    invisible to the snapshots API."""
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
