"""Backup shares: one row per (backup, recipient project) pair (vbs-api §3.6, §6).

Created by the ``sharing`` migration branch (root ``sharing_0001``, depends on
``identity_0001`` and ``backups_0001``). A share grants the recipient project
(``to_project_id``) read access to one backup of the owner project
(``from_project_id``): it sees the backup in its lists and may restore it into
its own volumes, nothing more (docs/decisions.md).

Cancelled shares are deleted, not flagged [D31]; the ``deleted``/``deleted_at``
wire fields are constants. ``(backup_id, to_project_id)`` is unique, so a pair
can never be shared twice, even by two racing requests [D35]. Rows go away
with their backup (``ON DELETE CASCADE``): a backup's purge can never leave a
share pointing at nothing.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["Share"]


class Share(Base):
    __tablename__ = "backup_shares"
    __table_args__ = (
        UniqueConstraint("backup_id", "to_project_id", name="uq_backup_shares_backup_to"),
        Index("ix_backup_shares_to_project_id", "to_project_id"),
        Index("ix_backup_shares_from_project_id_created_at", "from_project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    backup_id: Mapped[str] = mapped_column(ForeignKey("backups.id", ondelete="CASCADE"))
    from_project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    """The owner project: always the backup's ``project_id``."""
    to_project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Never set today (shares are immutable); kept because the wire record has it."""
