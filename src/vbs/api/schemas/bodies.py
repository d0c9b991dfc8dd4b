"""Request-body models for the OpenAPI document (issue 8, item 6).

Handlers of these routes read their body with :data:`vbs.api.body.JsonBody`
and validate it in :mod:`vbs.service` (exact wire codes); these models only
*document* the shape, so ``/docs`` can send real requests and schemathesis
can generate them. Unknown members are allowed, as the service ignores them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "NativeBackupActionBody",
    "NativeBackupCreateBody",
    "NativeBackupUpdateBody",
    "NativeRestoreBody",
    "PolicyAssociateBody",
    "PolicyCreateBody",
    "PolicyDisassociateBody",
    "PolicyModifyBody",
    "PolicyTagAddBody",
    "PolicyTagBatchBody",
    "PolicyTagQueryBody",
    "ShareCreateBody",
    "VbsBackupCreateBody",
    "VbsRestoreBody",
]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TagItem(_Open):
    key: str
    value: str = ""


class VbsBackupFields(_Open):
    volume_id: str
    name: str = Field(description="1-64 characters; see vbs-api §4.1")
    snapshot_id: str | None = None
    description: str | None = None
    tags: list[TagItem] | None = None
    full_backup: bool | None = None


class VbsBackupCreateBody(_Open):
    backup: VbsBackupFields


class VbsRestoreFields(_Open):
    volume_id: str


class VbsRestoreBody(_Open):
    restore: VbsRestoreFields


class NativeBackupFields(_Open):
    volume_id: str
    name: str | None = None
    description: str | None = None
    container: str | None = None
    incremental: bool | None = None
    force: bool | None = None
    snapshot_id: str | None = None
    metadata: dict[str, str] | None = Field(default=None, description="3.43+")
    availability_zone: str | None = None


class NativeBackupCreateBody(_Open):
    backup: NativeBackupFields


class NativeBackupUpdateFields(_Open):
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = Field(default=None, description="3.43+")


class NativeBackupUpdateBody(_Open):
    backup: NativeBackupUpdateFields


class ResetStatus(_Open):
    status: str = Field(description="available or error")


class NativeBackupActionBody(_Open):
    """Exactly one of the two actions (admin only)."""

    os_force_delete: Any = Field(default=None, alias="os-force_delete")
    os_reset_status: ResetStatus | None = Field(default=None, alias="os-reset_status")


class NativeRestoreFields(_Open):
    volume_id: str | None = None
    name: str | None = None


class NativeRestoreBody(_Open):
    restore: NativeRestoreFields | None = None


class ShareFields(_Open):
    backup_id: str
    to_project_ids: list[str] = Field(min_length=1, max_length=10)


class ShareCreateBody(_Open):
    shared: ShareFields


class ScheduledPolicy(_Open):
    start_time: str | None = None
    frequency: int | None = None
    week_frequency: list[str] | None = None
    rentention_num: int | None = None
    rentention_day: int | None = None
    remain_first_backup_of_curMonth: str | None = None  # noqa: N815 - wire spelling
    status: str | None = None


class PolicyCreateBody(_Open):
    backup_policy_name: str
    scheduled_policy: ScheduledPolicy
    tags: list[TagItem] | None = None
    time_zone: str | None = None


class PolicyModifyBody(_Open):
    backup_policy_name: str | None = None
    scheduled_policy: ScheduledPolicy | None = None
    time_zone: str | None = None


class Resource(_Open):
    resource_id: str
    resource_type: str | None = Field(default=None, description="volume")


class PolicyAssociateBody(_Open):
    backup_policy_id: str
    resources: list[Resource]


class PolicyDisassociateBody(_Open):
    resources: list[Resource]


class PolicyTagAddBody(_Open):
    tag: TagItem


class PolicyTagBatchBody(_Open):
    action: str = Field(description="create or delete")
    tags: list[TagItem]


class TagCondition(_Open):
    key: str
    values: list[str] = []


class PolicyTagQueryBody(_Open):
    action: str = Field(description="filter or count")
    tags: list[TagCondition] | None = None
    tags_any: list[TagCondition] | None = None
    not_tags: list[TagCondition] | None = None
    not_tags_any: list[TagCondition] | None = None
    matches: list[dict[str, str]] | None = None
    limit: int | None = None
    offset: int | None = None
