"""policies: backup policies, policy tags, disk associations, policy tasks

Root of the ``policies`` branch (vbs-api §7, §8); needs ``projects`` from the
identity branch.

Revision ID: policies_0001
Revises:
Create Date: 2024-06-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

__all__ = ["branch_labels", "depends_on", "down_revision", "downgrade", "revision", "upgrade"]

revision: str = "policies_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("policies",)
depends_on: str | Sequence[str] | None = "identity_0001"

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "backup_policies",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("start_time", sa.String(143), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=True),
        sa.Column("week_frequency", sa.JSON(), nullable=True),
        sa.Column("rentention_num", sa.Integer(), nullable=True),
        sa.Column("rentention_day", sa.Integer(), nullable=True),
        sa.Column("remain_first_backup_of_cur_month", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(3), nullable=False),
        sa.Column("time_zone", sa.String(9), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("next_run_at", _TS, nullable=True),
        sa.Column("last_run_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_backup_policies_project_id_projects"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_policies")),
    )
    op.create_index("ix_backup_policies_next_run_at", "backup_policies", ["next_run_at"])
    op.create_index("ix_backup_policies_project_id_created_at", "backup_policies",
                    ["project_id", "created_at"])
    op.create_table(
        "backup_policy_tags",
        sa.Column("policy_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(36), nullable=False),
        sa.Column("value", sa.String(43), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["backup_policies.id"],
            name=op.f("fk_backup_policy_tags_policy_id_backup_policies"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("policy_id", "key", name=op.f("pk_backup_policy_tags")),
    )
    op.create_table(
        "backup_policy_resources",
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.Column("policy_id", sa.String(36), nullable=False),
        sa.Column("availability_zone", sa.String(255), nullable=True),
        sa.Column("os_vol_host_attr", sa.String(255), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"],
            name=op.f("fk_backup_policy_resources_project_id_projects"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["backup_policies.id"],
            name=op.f("fk_backup_policy_resources_policy_id_backup_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "volume_id",
                                name=op.f("pk_backup_policy_resources")),
    )
    op.create_index("ix_backup_policy_resources_policy_id", "backup_policy_resources",
                    ["policy_id"])
    op.create_table(
        "backup_policy_tasks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("policy_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("slot_at", _TS, nullable=True),
        sa.Column("backup_name", sa.String(16), nullable=False),
        sa.Column("backup_id", sa.String(36), nullable=True),
        sa.Column("vbs_job_id", sa.String(64), nullable=True),
        sa.Column("code", sa.String(32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["backup_policies.id"],
            name=op.f("fk_backup_policy_tasks_policy_id_backup_policies"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_policy_tasks")),
    )
    op.create_index("ix_backup_policy_tasks_policy_id_created_at", "backup_policy_tasks",
                    ["policy_id", "created_at"])
    op.create_index("ix_backup_policy_tasks_vbs_job_id", "backup_policy_tasks", ["vbs_job_id"])
    op.create_index("ix_backup_policy_tasks_status_created_at", "backup_policy_tasks",
                    ["status", "created_at"])
    op.create_index("uq_backup_policy_tasks_slot", "backup_policy_tasks",
                    ["policy_id", "volume_id", "slot_at"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_backup_policy_tasks_slot", table_name="backup_policy_tasks")
    op.drop_index("ix_backup_policy_tasks_status_created_at", table_name="backup_policy_tasks")
    op.drop_index("ix_backup_policy_tasks_vbs_job_id", table_name="backup_policy_tasks")
    op.drop_index("ix_backup_policy_tasks_policy_id_created_at",
                  table_name="backup_policy_tasks")
    op.drop_index("ix_backup_policy_resources_policy_id", table_name="backup_policy_resources")
    op.drop_index("ix_backup_policies_project_id_created_at", table_name="backup_policies")
    op.drop_index("ix_backup_policies_next_run_at", table_name="backup_policies")
    for table in ("backup_policy_tasks", "backup_policy_resources", "backup_policy_tags",
                  "backup_policies"):
        op.drop_table(table)
