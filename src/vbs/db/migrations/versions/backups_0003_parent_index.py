"""backups: index on parent_id (has_dependent_backups of every shown backup)

Every native detail (list page or show) asks which of its backups an
incremental backup names as parent; without this index that question was a
scan of the whole table (3 ms per page at 10 000 backups on SQLite).

Revision ID: backups_0003
Revises: backups_0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "backups_0003"
down_revision: str | Sequence[str] | None = "backups_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_backups_parent_id", "backups", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_backups_parent_id", table_name="backups")
