"""Backup exports: one row per live NBD export of a backup (docs/operations.md).

Created by the ``exports`` migration branch (root ``exports_0001``, depends on
``identity_0001`` and ``backups_0001``). ``name`` is the export's secret NBD
name (192 random bits, part of ``uri``): whoever knows it may read the
backup until ``expires_at``, like a capability URL; it is stored in clear
because ``GET`` shows the URI again. ``project_id`` is the project that made
the export (the only one that sees it). Rows go away with their backup or
project (``ON DELETE CASCADE``); expired rows are purged by the export
server's sweeper and are invisible before that.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["BackupExport"]


class BackupExport(Base):
    __tablename__ = "backup_exports"
    __table_args__ = (
        Index("ix_backup_exports_backup_id", "backup_id"),
        Index("ix_backup_exports_project_id", "project_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    backup_id: Mapped[str] = mapped_column(ForeignKey("backups.id", ondelete="CASCADE"))
    backup_project_id: Mapped[str] = mapped_column(String(32))
    """The project whose repository keys and chunks hold the backup."""
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    protocol: Mapped[str] = mapped_column(String(16))
    writable: Mapped[bool] = mapped_column(Boolean)
    uri: Mapped[str] = mapped_column(String(512))
    overlay_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
