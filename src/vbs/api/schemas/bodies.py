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
    "ExportCreateBody",
    "ExportVolumeBody",
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
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"backup": {"volume_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00",
                    "name": "nightly",
                    "description": "db disk",
                    "tags": [{"key": "env", "value": "prod"}]}}]})

    backup: VbsBackupFields


class VbsRestoreFields(_Open):
    volume_id: str


class VbsRestoreBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"restore": {"volume_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00"}}]})

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
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"backup": {"volume_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00", "name": "nightly"}}]})

    backup: NativeBackupFields


class NativeBackupUpdateFields(_Open):
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = Field(default=None, description="3.43+")


class NativeBackupUpdateBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"backup": {"name": "renamed", "description": "new text"}}]})

    backup: NativeBackupUpdateFields


class ResetStatus(_Open):
    status: str = Field(description="available or error")


class NativeBackupActionBody(_Open):
    """Exactly one of the two actions (admin only)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"os-reset_status": {"status": "available"}}]})

    os_force_delete: Any = Field(default=None, alias="os-force_delete")
    os_reset_status: ResetStatus | None = Field(default=None, alias="os-reset_status")


class NativeRestoreFields(_Open):
    volume_id: str | None = None
    name: str | None = None


class NativeRestoreBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"restore": {"volume_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00"}}]})

    restore: NativeRestoreFields | None = None


class ShareFields(_Open):
    backup_id: str
    to_project_ids: list[str] = Field(min_length=1, max_length=10)


class ShareCreateBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"shared": {"backup_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00",
                    "to_project_ids": ["5f0e4c8a9b7d4e2f8a1b3c5d7e9f0a1b"]}}]})

    shared: ShareFields


class ExportFields(_Open):
    protocol: str | None = None
    writable: bool | None = None
    expires_in: int | None = None


class ExportCreateBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"export": {"protocol": "nbd", "writable": False, "expires_in": 3600}}]})

    export: ExportFields | None = None


class ExportVolumeFields(_Open):
    name: str | None = None


class ExportVolumeBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"volume": {"name": "patched-from-export"}}]})

    volume: ExportVolumeFields | None = None


class ScheduledPolicy(_Open):
    start_time: str | None = None
    frequency: int | None = None
    week_frequency: list[str] | None = None
    rentention_num: int | None = None
    rentention_day: int | None = None
    remain_first_backup_of_curMonth: str | None = None  # noqa: N815 - wire spelling
    status: str | None = None


class PolicyCreateBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"backup_policy_name": "daily",
         "scheduled_policy": {"start_time": "02:00",
                              "frequency": 1,
                              "rentention_num": 7,
                              "remain_first_backup_of_curMonth": "N",
                              "status": "ON"}}]})

    backup_policy_name: str
    scheduled_policy: ScheduledPolicy
    tags: list[TagItem] | None = None
    time_zone: str | None = None


class PolicyModifyBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"backup_policy_name": "daily-2"}]})

    backup_policy_name: str | None = None
    scheduled_policy: ScheduledPolicy | None = None
    time_zone: str | None = None


class Resource(_Open):
    resource_id: str
    resource_type: str | None = Field(default=None, description="volume")


class PolicyAssociateBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"backup_policy_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00",
         "resources": [{"resource_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00",
                        "resource_type": "volume"}]}]})

    backup_policy_id: str
    resources: list[Resource]


class PolicyDisassociateBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"resources": [{"resource_id": "0b6a1c5e-8f3d-4c2a-9e71-5d4b3a2f1e00"}]}]})

    resources: list[Resource]


class PolicyTagAddBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"tag": {"key": "env", "value": "prod"}}]})

    tag: TagItem


class PolicyTagBatchBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"action": "create", "tags": [{"key": "env", "value": "prod"}]}]})

    action: str = Field(description="create or delete")
    tags: list[TagItem]


class TagCondition(_Open):
    key: str
    values: list[str] = []


class PolicyTagQueryBody(_Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"action": "filter",
         "tags": [{"key": "env", "values": ["prod"]}],
         "limit": 10,
         "offset": 0}]})

    action: str = Field(description="filter or count")
    tags: list[TagCondition] | None = None
    tags_any: list[TagCondition] | None = None
    not_tags: list[TagCondition] | None = None
    not_tags_any: list[TagCondition] | None = None
    matches: list[dict[str, str]] | None = None
    limit: int | None = None
    offset: int | None = None
