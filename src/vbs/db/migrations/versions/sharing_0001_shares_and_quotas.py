"""sharing: backup shares and per-project backup quota overrides

Root of the ``sharing`` branch. ``backup_shares`` rows reference backups and
projects (both cascade on delete); ``backup_quotas`` holds the admin's
per-project limits and serves as the per-project quota lock.

Revision ID: sharing_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "sharing_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sharing",)
depends_on: str | Sequence[str] | None = ("identity_0001", "backups_0001")

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backup_shares",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("backup_id", sa.String(36), nullable=False),
        sa.Column("from_project_id", sa.String(32), nullable=False),
        sa.Column("to_project_id", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["backup_id"], ["backups.id"],
            name=op.f("fk_backup_shares_backup_id_backups"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_project_id"], ["projects.id"],
            name=op.f("fk_backup_shares_from_project_id_projects"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["to_project_id"], ["projects.id"],
            name=op.f("fk_backup_shares_to_project_id_projects"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_shares")),
        sa.UniqueConstraint("backup_id", "to_project_id", name="uq_backup_shares_backup_to"),
    )
    op.create_index("ix_backup_shares_to_project_id", "backup_shares", ["to_project_id"])
    op.create_index("ix_backup_shares_from_project_id_created_at", "backup_shares",
                    ["from_project_id", "created_at"])
    op.create_table(
        "backup_quotas",
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("backups", sa.Integer(), nullable=True),
        sa.Column("gigabytes", sa.Integer(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_backup_quotas_project_id_projects"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_backup_quotas")),
    )


def downgrade() -> None:
    op.drop_table("backup_quotas")
    op.drop_table("backup_shares")
