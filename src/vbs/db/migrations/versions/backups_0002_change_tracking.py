"""backups: how each backup was taken (change tracking, bytes read, bytes new, sample)

Revision ID: backups_0002
Revises: backups_0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "backups_0002"
down_revision: str | Sequence[str] | None = "backups_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        batch.add_column(sa.Column("change_tracking", sa.String(8), nullable=True))
        batch.add_column(
            sa.Column("bytes_read", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("bytes_new", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("chunks_sampled", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("backups") as batch:
        for name in ("chunks_sampled", "bytes_new", "bytes_read", "change_tracking"):
            batch.drop_column(name)
