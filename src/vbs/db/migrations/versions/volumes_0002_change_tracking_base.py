"""volumes: the change-tracking base snapshot kept per volume

Revision ID: volumes_0002
Revises: volumes_0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "volumes_0002"
down_revision: str | Sequence[str] | None = "volumes_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("cbt_base_snapshot_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("cbt_base_backup_id", sa.String(36), nullable=True))
        batch.add_column(
            sa.Column("cbt_full_next", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("volumes") as batch:
        for name in ("cbt_full_next", "cbt_base_backup_id", "cbt_base_snapshot_id"):
            batch.drop_column(name)
