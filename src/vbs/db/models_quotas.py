"""Per-project backup quota overrides (vbs-api §2.15, §4.5).

Created by the ``sharing`` migration branch (``sharing_0001``), which owns the
quota tables too. A row holds the limits the admin set for one project
(``vbs admin quota set``); a NULL column means "the settings default"
(``quotas.default_backups`` / ``quotas.default_gigabytes``), so changing a
default in the settings reaches every project that was not given its own
limit. ``-1`` means unlimited.

The row doubles as the project's quota *lock*: every backup creation locks it
(``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction already
holds the single write lock) before it counts usage, so two concurrent
creations can never both see the last free slot (:mod:`vbs.service.quotas`).
Rows are created on demand, by the first creation or the first ``set``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vbs.db.base import Base, utcnow
from vbs.db.models_identity import UtcDateTime

__all__ = ["BackupQuota"]


class BackupQuota(Base):
    __tablename__ = "backup_quotas"

    project_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    backups: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Maximum number of backups; NULL = settings default; -1 = unlimited."""
    gigabytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Maximum total GiB (sum of source-volume sizes); NULL = default; -1 = unlimited."""
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
