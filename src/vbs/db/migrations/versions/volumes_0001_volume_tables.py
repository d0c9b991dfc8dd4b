"""volumes: volumes and snapshots of the built-in volume store

Root of the ``volumes`` branch; rows belong to projects, hence
``depends_on = "identity_0001"``.

Revision ID: volumes_0001
Revises:
Create Date: 2024-06-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "volumes_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("volumes",)
depends_on: str | Sequence[str] | None = "identity_0001"

_TS = sa.DateTime(timezone=True)
_VOLUME_STATUSES = (
    "'creating', 'available', 'in-use', 'deleting', 'error', 'error_deleting', "
    "'backing-up', 'restoring-backup', 'error_restoring'"
)
_SNAPSHOT_STATUSES = (
    "'creating', 'available', 'backing-up', 'deleting', 'error', 'error_deleting'"
)


def upgrade() -> None:
    op.create_table(
        "volumes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("driver", sa.String(16), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("external_path", sa.String(4096), nullable=True),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("availability_zone", sa.String(255), nullable=False),
        sa.Column("snapshot_id", sa.String(36), nullable=True),
        sa.Column("attached_to", sa.String(255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(f"status IN ({_VOLUME_STATUSES})", name=op.f("ck_volumes_status")),
        sa.CheckConstraint("size_gb >= 1", name=op.f("ck_volumes_size_gb")),
        sa.CheckConstraint("size_bytes >= 1", name=op.f("ck_volumes_size_bytes")),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_volumes_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
    )
    op.create_index("ix_volumes_project_id_created_at", "volumes", ["project_id", "created_at"])
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("method", sa.String(8), nullable=True),
        sa.Column("internal", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            f"status IN ({_SNAPSHOT_STATUSES})", name=op.f("ck_snapshots_status")
        ),
        sa.CheckConstraint(
            "method IS NULL OR method IN ('reflink', 'copy')", name=op.f("ck_snapshots_method")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_snapshots_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_snapshots_volume_id_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    op.create_index(
        "ix_snapshots_project_id_created_at", "snapshots", ["project_id", "created_at"]
    )
    op.create_index("ix_snapshots_volume_id", "snapshots", ["volume_id"])


def downgrade() -> None:
    op.drop_index("ix_snapshots_volume_id", table_name="snapshots")
    op.drop_index("ix_snapshots_project_id_created_at", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index("ix_volumes_project_id_created_at", table_name="volumes")
    op.drop_table("volumes")
