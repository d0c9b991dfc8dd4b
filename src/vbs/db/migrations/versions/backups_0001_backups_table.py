"""backups: backup records of the VBS and native APIs

Root of the ``backups`` branch; rows belong to projects.

Revision ID: backups_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "backups_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("backups",)
depends_on: str | Sequence[str] | None = "identity_0001"

_TS = sa.DateTime(timezone=True)
_STATUSES = (
    "'creating', 'available', 'error', 'restoring', 'error_restoring', 'deleting', "
    "'error_deleting'"
)


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.Column("snapshot_id", sa.String(36), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("fail_reason", sa.String(1024), nullable=True),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("volume_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("container", sa.String(255), nullable=True),
        sa.Column("availability_zone", sa.String(255), nullable=True),
        sa.Column("is_incremental", sa.Boolean(), nullable=False),
        sa.Column("parent_id", sa.String(36), nullable=True),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("policy_id", sa.String(36), nullable=True),
        sa.Column("image_source", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=True),
        sa.Column("data_timestamp", _TS, nullable=False),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name=op.f("ck_backups_status")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_backups_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backups")),
    )
    op.create_index("ix_backups_project_id_created_at", "backups", ["project_id", "created_at"])
    op.create_index("ix_backups_project_id_status", "backups", ["project_id", "status"])
    op.create_index("ix_backups_volume_id_status", "backups", ["volume_id", "status"])
    op.create_index("ix_backups_policy_id", "backups", ["policy_id"])


def downgrade() -> None:
    op.drop_table("backups")
