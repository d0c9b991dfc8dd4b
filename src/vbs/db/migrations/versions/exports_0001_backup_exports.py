"""exports: live NBD exports of backups

Root of the ``exports`` branch. ``backup_exports`` rows reference backups and
projects (both cascade on delete).

Revision ID: exports_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "exports_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("exports",)
depends_on: str | Sequence[str] | None = ("identity_0001", "backups_0001")

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backup_exports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("backup_id", sa.String(36), nullable=False),
        sa.Column("backup_project_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("writable", sa.Boolean(), nullable=False),
        sa.Column("uri", sa.String(512), nullable=False),
        sa.Column("overlay_path", sa.String(1024), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["backup_id"], ["backups.id"],
            name=op.f("fk_backup_exports_backup_id_backups"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_backup_exports_project_id_projects"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_exports")),
        sa.UniqueConstraint("name", name=op.f("uq_backup_exports_name")),
    )
    op.create_index("ix_backup_exports_backup_id", "backup_exports", ["backup_id"])
    op.create_index("ix_backup_exports_project_id", "backup_exports", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_backup_exports_project_id", table_name="backup_exports")
    op.drop_index("ix_backup_exports_backup_id", table_name="backup_exports")
    op.drop_table("backup_exports")
