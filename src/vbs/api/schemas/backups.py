"""Views of the backup family: what the renderers need, and response docs.

:class:`BackupView` and :class:`JobView` are plain frozen dataclasses the
service fills from its records; :mod:`vbs.api.schemas.render` turns them into
wire dictionaries.  They hold *every* field any backup representation needs
(vbs-api §3.2–§3.4, openstack-compat §5.1), so one view serves the native v2
and v3 shapes, the share embedding and the VBS job object.

Times are ``datetime`` values in UTC (naive values are taken as UTC); the
renderers apply the per-family formats of vbs-api §2.8.

The pydantic models at the end exist only to document responses in OpenAPI;
the renderers never build them (vbs-api keys such as
``os-backup-project-attr:project_id`` are aliases there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vbs.service.backup_rules import Tag

__all__ = [
    "JOB_STATUSES",
    "JOB_TYPES",
    "ApiFamily",
    "BackupDetailModel",
    "BackupSummaryModel",
    "BackupView",
    "ChangeTrackingView",
    "JobAcceptedModel",
    "JobModel",
    "JobView",
    "LinkContext",
    "LinkModel",
    "ServiceMetadata",
]

ApiFamily = Literal["v2", "v3"]

JOB_TYPES = ("bksCreateBackup", "bksDeleteBackup", "bksRestoreBackup")
"""Job types of vbs-api §2.10."""
JOB_STATUSES = ("INIT", "RUNNING", "SUCCESS", "FAIL")
"""Job statuses of vbs-api §2.10."""


@dataclass(frozen=True)  # no slots: built with vbs.frozen.assemble
class ServiceMetadata:
    """The parts of ``service_metadata`` (vbs-api §3.4) not derived from the backup.

    ``Type`` comes from :attr:`BackupView.is_incremental`, ``ST`` is always 0,
    ``snap_id`` is the view's ``snapshot_id``.  ``backup_url`` (``backupurl``)
    defaults to the backup ID.  Optional keys are emitted only when set.
    """

    bootable: bool = False
    progress: int = 0
    backup_url: str | None = None
    backup_size: int | None = None
    dedup_compress: int | None = None
    cmk_id: str | None = None
    volume_type: str | None = None


@dataclass(frozen=True)  # no slots: built with vbs.frozen.assemble
class ChangeTrackingView:
    """How a backup was taken (docs/architecture.md, "The engine"): rendered as
    ``os-vbs-backup-attr:*`` vendor attributes of the native detail."""

    change_tracking: str
    bytes_read: int
    bytes_new: int
    chunks_sampled: int


@dataclass(frozen=True)  # no slots: built with vbs.frozen.assemble
class BackupView:
    """Everything a backup representation shows (vbs-api §3.3, openstack-compat §5.1).

    ``size`` is the source disk size in GiB [D25]; ``object_count`` is 0 when
    unknown; ``has_dependent_backups`` is true when an incremental backup was
    taken on top of this one (openstack-compat §5.1; deleting it still breaks
    nothing, see docs/decisions.md).  ``tags`` and ``metadata`` appear from 3.43,
    ``user_id`` from 3.56 and ``encryption_key_id`` from 3.64 when set.
    """

    id: str
    project_id: str
    volume_id: str
    status: str
    size: int
    created_at: datetime
    data_timestamp: datetime
    name: str | None = None
    description: str | None = None
    snapshot_id: str | None = None
    availability_zone: str | None = None
    container: str | None = None
    object_count: int = 0
    fail_reason: str | None = None
    updated_at: datetime | None = None
    is_incremental: bool = False
    has_dependent_backups: bool = False
    user_id: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    encryption_key_id: str | None = None
    tags: tuple[Tag, ...] = ()
    service_metadata: ServiceMetadata = ServiceMetadata()
    change_tracking: ChangeTrackingView | None = None
    """Set once the backup was taken (None for older rows and while creating)."""


@dataclass(frozen=True, slots=True)
class LinkContext:
    """Where the request came in, to build ``self``/``bookmark``/``next`` links.

    ``root`` is the public service root without trailing slash (honour
    ``X-Forwarded-Host`` or a configured URL); ``family`` the URL version
    segment; ``project_id`` the project segment of the request URL, ``None``
    on project-less ``/v3`` routes (openstack-compat §4.4).
    """

    root: str
    family: ApiFamily
    project_id: str | None


@dataclass(frozen=True, slots=True)
class JobView:
    """An asynchronous job (vbs-api §2.10, §4.4).  ``entities`` values are strings."""

    job_id: str
    job_type: str
    status: str
    entities: tuple[tuple[str, str], ...] = ()
    begin_time: datetime | None = None
    end_time: datetime | None = None
    error_code: str | None = None
    fail_reason: str | None = None


# --- OpenAPI documentation models -------------------------------------------


class LinkModel(BaseModel):
    href: str
    rel: Literal["self", "bookmark", "next"]


class BackupSummaryModel(BaseModel):
    """vbs-api §3.2."""

    id: str
    name: str | None
    links: list[LinkModel]


class BackupDetailModel(BaseModel):
    """vbs-api §3.3 (v3 column; v2 swaps the owner key and adds ``service_metadata``)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str | None
    description: str | None
    status: str
    availability_zone: str | None
    volume_id: str
    snapshot_id: str | None
    size: int
    object_count: int | None
    container: str | None
    fail_reason: str | None
    created_at: str = Field(examples=["2024-03-05T10:15:42.123456"])
    updated_at: str | None
    data_timestamp: str
    has_dependent_backups: bool
    is_incremental: bool
    links: list[LinkModel]
    project_id: str | None = Field(default=None, alias="os-backup-project-attr:project_id")
    tenant_id: str | None = Field(default=None, alias="os-bak-tenant-attr:tenant_id")
    service_metadata: str | None = None
    metadata: dict[str, str] | None = Field(default=None, description="from 3.43")
    user_id: str | None = Field(default=None, description="from 3.56")
    encryption_key_id: str | None = Field(default=None, description="from 3.64, when set")


class JobModel(BaseModel):
    """vbs-api §4.4."""

    status: Literal["INIT", "RUNNING", "SUCCESS", "FAIL"]
    job_id: str
    job_type: str
    entities: dict[str, str]
    begin_time: str | None = Field(examples=["2024-03-05T10:15:42.123Z"])
    end_time: str | None
    error_code: str | None
    fail_reason: str | None
    sub_jobs: None = None


class JobAcceptedModel(BaseModel):
    """Reply of vbs-api §4.1–§4.3."""

    job_id: str
