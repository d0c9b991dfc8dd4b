"""Wire shapes of the backup family, checked against vbs-api's example bodies."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from vbs.api.schemas import backups as views
from vbs.api.schemas import render
from vbs.api.schemas.backups import BackupView, JobView, LinkContext, ServiceMetadata
from vbs.api.schemas.render import (
    format_backup_time,
    format_job_time,
    format_task_time,
    render_backup_detail,
    render_backup_for_share,
    render_backup_list,
    render_backup_summary,
    render_job,
    render_job_accepted,
    render_native_restore,
    render_service_metadata,
)
from vbs.service.backup_rules import Tag
from vbs.service.listing import collection_links

ROOT = "https://vbs.example.internal"
PID = "4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091"
BK = "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13"
VOL = "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60"
SNAP = "61f2d8a0-7c3b-4e59-8d14-0f9e8d7c6b5a"

V2 = LinkContext(ROOT, "v2", PID)
V3 = LinkContext(ROOT, "v3", PID)

VIEW = BackupView(
    id=BK, project_id=PID, volume_id=VOL, status="available", size=40,
    created_at=datetime(2024, 3, 5, 10, 15, 42, 123456),
    updated_at=datetime(2024, 3, 5, 10, 21, 7, 880112),
    data_timestamp=datetime(2024, 3, 5, 10, 15, 40, 2211),
    name="pre-patch", snapshot_id=SNAP, availability_zone="az1", is_incremental=True,
    user_id="9f1c0d5e6a7b4c3d8e2f1a0b9c8d7e6f", metadata=(("owner", "ci"),),
    tags=(Tag("env", "prod"),), service_metadata=ServiceMetadata(progress=100),
)

# --- example bodies copied from vbs-api.md ------------------------------------------

SPEC_5_1_CREATE = json.loads("""
{"backup": {"id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "name": "pre-patch",
  "links": [{"href": "https://vbs.example.internal/v3/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "self"},
            {"href": "https://vbs.example.internal/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "bookmark"}]}}
""")  # noqa: E501

SPEC_5_2_LIST = json.loads("""
{"backups": [{"id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "name": "pre-patch",
   "links": [{"href": "https://vbs.example.internal/v3/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "self"},
             {"href": "https://vbs.example.internal/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "bookmark"}]}],
 "backups_links": [{"href": "https://vbs.example.internal/v3/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups?status=available&limit=1&marker=9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "next"}]}
""")  # noqa: E501

SPEC_5_3_V2_DETAIL = json.loads("""
{"backups": [{"id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "name": "pre-patch", "description": null, "status": "available",
  "availability_zone": "az1", "volume_id": "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60", "snapshot_id": "61f2d8a0-7c3b-4e59-8d14-0f9e8d7c6b5a",
  "size": 40, "object_count": 0, "container": null, "fail_reason": null,
  "created_at": "2024-03-05T10:15:42.123456", "updated_at": "2024-03-05T10:21:07.880112", "data_timestamp": "2024-03-05T10:15:40.002211",
  "has_dependent_backups": false, "is_incremental": true,
  "links": [{"href": "https://vbs.example.internal/v2/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "self"},
            {"href": "https://vbs.example.internal/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "bookmark"}],
  "os-bak-tenant-attr:tenant_id": "4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091",
  "service_metadata": "{\\"bootable\\": false, \\"backupurl\\": \\"9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13\\", \\"progress\\": 100, \\"Type\\": 1, \\"ST\\": 0}"}]}
""")  # noqa: E501

SPEC_5_4_V3_SHOW = json.loads("""
{"backup": {"id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "name": "pre-patch", "description": null, "status": "available",
  "availability_zone": "az1", "volume_id": "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60", "snapshot_id": "61f2d8a0-7c3b-4e59-8d14-0f9e8d7c6b5a",
  "size": 40, "object_count": 0, "container": null, "fail_reason": null,
  "created_at": "2024-03-05T10:15:42.123456", "updated_at": "2024-03-05T10:21:07.880112", "data_timestamp": "2024-03-05T10:15:40.002211",
  "has_dependent_backups": false, "is_incremental": true,
  "links": [{"href": "https://vbs.example.internal/v3/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "self"},
            {"href": "https://vbs.example.internal/4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091/backups/9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "rel": "bookmark"}],
  "os-backup-project-attr:project_id": "4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091"}}
""")  # noqa: E501

SPEC_6_3_SHARE_BACKUP = json.loads("""
{"id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "name": "pre-patch", "description": null, "status": "available",
    "availability_zone": "az1", "volume_id": "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60", "snapshot_id": null, "size": 40,
    "object_count": 0, "container": null, "fail_reason": null, "created_at": "2024-03-05T10:15:42.123456",
    "updated_at": "2024-03-05T10:21:07.880112", "data_timestamp": "2024-03-05T10:15:40.002211",
    "has_dependent_backups": false, "is_incremental": true, "service_metadata": null}
""")  # noqa: E501

SPEC_4_4_JOB = json.loads("""
{"status": "SUCCESS", "job_id": "2c9a4f6e-1b3d-4a57-9e08-7f6d5c4b3a21", "job_type": "bksCreateBackup",
 "entities": {"backup_id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "volume_id": "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60",
              "snapshot_id": "61f2d8a0-7c3b-4e59-8d14-0f9e8d7c6b5a", "bks_create_volume_name": "nightly-db01"},
 "begin_time": "2024-03-05T10:15:42.123Z", "end_time": "2024-03-05T10:21:07.880Z",
 "error_code": null, "fail_reason": null, "sub_jobs": null}
""")  # noqa: E501

SPEC_5_6_RESTORE = json.loads("""
{"restore": {"backup_id": "9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", "volume_id": "3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60", "volume_name": "db01-data"}}
""")  # noqa: E501


def test_create_reply_matches_spec_5_1() -> None:
    assert {"backup": render_backup_summary(VIEW, V3)} == SPEC_5_1_CREATE


def test_summary_list_with_next_link_matches_spec_5_2() -> None:
    links = collection_links(f"{ROOT}/v3/{PID}/backups", {"status": "available", "limit": "1"},
                             limit=1, last_id=BK, has_more=True)
    body = render_backup_list([VIEW], V3, detail=False, next_links=links)
    assert body == SPEC_5_2_LIST


def test_v2_detail_matches_spec_5_3() -> None:
    body = render_backup_list([VIEW], V2, detail=True)
    (item,) = body["backups"]
    (expected,) = SPEC_5_3_V2_DETAIL["backups"]
    assert list(body) == ["backups"]
    assert list(item) == list(expected)
    assert {k: v for k, v in item.items() if k != "service_metadata"} == {
        k: v for k, v in expected.items() if k != "service_metadata"}
    # snap_id is a SHOULD key of vbs-api §3.4 absent from the example: compare as a superset.
    meta, expected_meta = json.loads(item["service_metadata"]), json.loads(
        expected["service_metadata"])
    assert meta.items() >= expected_meta.items()
    assert meta["snap_id"] == SNAP


def test_service_metadata_string_is_byte_identical_without_optional_keys() -> None:
    view = BackupView(id=BK, project_id=PID, volume_id=VOL, status="available", size=40,
                      created_at=VIEW.created_at, data_timestamp=VIEW.data_timestamp,
                      is_incremental=True, service_metadata=ServiceMetadata(progress=100))
    expected = SPEC_5_3_V2_DETAIL["backups"][0]["service_metadata"]
    assert render_service_metadata(view) == expected


@pytest.mark.parametrize(
    ("meta", "incremental", "expected"),
    [
        (ServiceMetadata(), False,
         {"bootable": False, "backupurl": BK, "progress": 0, "Type": 0, "ST": 0}),
        (ServiceMetadata(bootable=True, backup_url="img-1", backup_size=1024, dedup_compress=3,
                         cmk_id="cmk", volume_type="SSD"), True,
         {"bootable": True, "backupurl": "img-1", "progress": 0, "Type": 1, "ST": 0,
          "BackupSize": 1024, "DL": 3, "CMKID": "cmk", "VT": "SSD"}),
    ],
)
def test_service_metadata_keys(meta: ServiceMetadata, incremental: bool,
                               expected: dict[str, Any]) -> None:
    view = BackupView(id=BK, project_id=PID, volume_id=VOL, status="available", size=1,
                      created_at=VIEW.created_at, data_timestamp=VIEW.data_timestamp,
                      is_incremental=incremental, service_metadata=meta)
    assert json.loads(render_service_metadata(view)) == expected


def test_v3_show_at_3_0_matches_spec_5_4() -> None:
    assert {"backup": render_backup_detail(VIEW, V3, (3, 0))} == SPEC_5_4_V3_SHOW


_V3_BASE = set(SPEC_5_4_V3_SHOW["backup"])


@pytest.mark.parametrize(
    ("version", "encryption_key_id", "extra"),
    [
        ((3, 0), None, set()),
        ((3, 42), None, set()),
        ((3, 43), None, {"metadata", "tags"}),
        ((3, 55), "key-1", {"metadata", "tags"}),
        ((3, 56), None, {"metadata", "tags", "user_id"}),
        ((3, 63), "key-1", {"metadata", "tags", "user_id"}),
        ((3, 64), None, {"metadata", "tags", "user_id"}),
        ((3, 64), "key-1", {"metadata", "tags", "user_id", "encryption_key_id"}),
        ((3, 71), "key-1", {"metadata", "tags", "user_id", "encryption_key_id"}),
    ],
)
def test_v3_detail_microversion_gating(version: tuple[int, int], encryption_key_id: str | None,
                                       extra: set[str]) -> None:
    view = BackupView(**{**_fields(VIEW), "encryption_key_id": encryption_key_id})
    body = render_backup_detail(view, V3, version)
    assert set(body) == _V3_BASE | extra
    if "metadata" in extra:
        assert body["metadata"] == {"owner": "ci"}
        assert body["tags"] == [{"key": t.key, "value": t.value} for t in view.tags]
    if "encryption_key_id" in extra:
        assert body["encryption_key_id"] == "key-1"


def _fields(view: BackupView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in BackupView.__dataclass_fields__}


def test_v3_metadata_is_empty_object_not_null() -> None:
    view = BackupView(**{**_fields(VIEW), "metadata": ()})
    assert render_backup_detail(view, V3, (3, 43))["metadata"] == {}


def test_v2_ignores_microversion() -> None:
    assert render_backup_detail(VIEW, V2, (3, 71)) == render_backup_detail(VIEW, V2)


def test_share_embedding_matches_spec_6_3() -> None:
    view = BackupView(**{**_fields(VIEW), "snapshot_id": None})
    assert render_backup_for_share(view) == SPEC_6_3_SHARE_BACKUP


def test_project_less_links() -> None:
    links = render.backup_links(BK, LinkContext(ROOT, "v3", None))
    assert links == [{"href": f"{ROOT}/v3/backups/{BK}", "rel": "self"},
                     {"href": f"{ROOT}/backups/{BK}", "rel": "bookmark"}]


@pytest.mark.parametrize(
    ("ctx", "version", "count", "has_count"),
    [(V3, (3, 45), 7, True), (V3, (3, 44), 7, False), (V3, (3, 45), None, False),
     (V2, (3, 45), 7, False)],
)
def test_list_count_gating(ctx: LinkContext, version: tuple[int, int], count: int | None,
                           has_count: bool) -> None:
    body = render_backup_list([], ctx, detail=True, version=version, count=count)
    assert ("count" in body) is has_count
    assert body["backups"] == []
    assert "backups_links" not in body


def test_job_matches_spec_4_4() -> None:
    job = JobView(
        job_id="2c9a4f6e-1b3d-4a57-9e08-7f6d5c4b3a21", job_type="bksCreateBackup",
        status="SUCCESS",
        entities=(("backup_id", BK), ("volume_id", VOL), ("snapshot_id", SNAP),
                  ("bks_create_volume_name", "nightly-db01")),
        begin_time=datetime(2024, 3, 5, 10, 15, 42, 123456),
        end_time=datetime(2024, 3, 5, 10, 21, 7, 880999),
    )
    body = render_job(job)
    assert body == SPEC_4_4_JOB
    assert list(body) == list(SPEC_4_4_JOB)


def test_unfinished_job_has_nulls() -> None:
    body = render_job(JobView(job_id="j", job_type="bksRestoreBackup", status="INIT"))
    assert body["begin_time"] is body["end_time"] is body["sub_jobs"] is None
    assert body["entities"] == {}


def test_small_replies() -> None:
    assert render_job_accepted("2c9a") == {"job_id": "2c9a"}
    assert render_native_restore(BK, VOL, "db01-data") == SPEC_5_6_RESTORE


_BACKUP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}")
_JOB_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_TASK_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}")


@pytest.mark.parametrize(
    ("moment", "backup", "job", "task"),
    [
        (datetime(2024, 3, 5, 10, 15, 42, 123456),
         "2024-03-05T10:15:42.123456", "2024-03-05T10:15:42.123Z", "2024-03-05T10:15:42.123"),
        (datetime(2024, 3, 5, 10, 15, 42),
         "2024-03-05T10:15:42.000000", "2024-03-05T10:15:42.000Z", "2024-03-05T10:15:42.000"),
        (datetime(2024, 3, 5, 10, 15, 42, 999999, tzinfo=UTC),
         "2024-03-05T10:15:42.999999", "2024-03-05T10:15:42.999Z", "2024-03-05T10:15:42.999"),
        (datetime(2024, 3, 5, 12, 0, 0, 412000, tzinfo=timezone(timedelta(hours=2))),
         "2024-03-05T10:00:00.412000", "2024-03-05T10:00:00.412Z", "2024-03-05T10:00:00.412"),
    ],
)
def test_time_formats(moment: datetime, backup: str, job: str, task: str) -> None:
    assert format_backup_time(moment) == backup and _BACKUP_TIME.fullmatch(backup)
    assert format_job_time(moment) == job and _JOB_TIME.fullmatch(job)
    assert format_task_time(moment) == task and _TASK_TIME.fullmatch(task)


def test_all_is_honest() -> None:
    for module in (render, views):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_doc_models_accept_rendered_bodies() -> None:
    views.BackupDetailModel.model_validate(render_backup_detail(VIEW, V3, (3, 71)))
    views.BackupSummaryModel.model_validate(render_backup_summary(VIEW, V3))
    views.JobModel.model_validate(SPEC_4_4_JOB)
