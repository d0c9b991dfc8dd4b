"""Policy request rules (vbs-api §3.5, §7, §8): every rule with its code, and merge semantics."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from vbs.errors import ServiceError
from vbs.scheduler import runs
from vbs.service import codes as c
from vbs.service.policy_rules import (
    ScheduledPolicy,
    merge_scheduled_policy,
    parse_associate,
    parse_create_policy,
    parse_disassociate,
    parse_modify_policy,
    parse_task_query,
)
from vbs.service.policy_tags import parse_add_tag, parse_tag_batch, parse_tag_query

SP = {"start_time": "02:00", "frequency": 1, "rentention_num": 3, "status": "ON"}


def body(**over: Any) -> dict[str, Any]:
    sp = {**SP, **over.pop("sp", {})}
    sp = {k: v for k, v in sp.items() if v is not ...}
    return {"backup_policy_name": "nightly", "scheduled_policy": sp, **over}


def code_of(fn: Any, arg: Any) -> str:
    with pytest.raises(ServiceError) as err:
        fn(arg)
    return err.value.api_code


@pytest.mark.parametrize(("payload", "code"), [
    (None, "AutoBackup.0000"), ([], "AutoBackup.0008"), ({}, "AutoBackup.0001"),
    (body(backup_policy_name=""), "AutoBackup.0101"),
    (body(backup_policy_name="x" * 65), "AutoBackup.0101"),
    ({"scheduled_policy": SP}, "AutoBackup.0101"),
    (body(backup_policy_name="a b"), "AutoBackup.0102"),
    (body(backup_policy_name="default-x"), "AutoBackup.0102"),
    (body(backup_policy_name="a<b"), "AutoBackup.0221"),
    ({"backup_policy_name": "x"}, "AutoBackup.0001"),
    ({"backup_policy_name": "x", "scheduled_policy": {}}, "AutoBackup.0001"),
    (body(sp={"start_time": ...}), "AutoBackup.0103"),
    (body(sp={"start_time": "24:00"}), "AutoBackup.0103"),
    (body(sp={"start_time": "01:00,01:00"}), "AutoBackup.0103"),
    (body(sp={"status": ...}), "AutoBackup.0104"),
    (body(sp={"status": "on"}), "AutoBackup.0104"),
    (body(sp={"remain_first_backup_of_curMonth": True}), "AutoBackup.0105"),
    (body(sp={"remain_first_backup_of_curMonth": "y"}), "AutoBackup.0105"),
    (body(sp={"frequency": ...}), "AutoBackup.0106"),
    (body(sp={"frequency": 0}), "AutoBackup.0106"),
    (body(sp={"frequency": 31}), "AutoBackup.0106"),
    (body(sp={"frequency": 2.0}), "AutoBackup.0106"),
    (body(sp={"frequency": ..., "week_frequency": []}), "AutoBackup.0106"),
    (body(sp={"frequency": ..., "week_frequency": ["MON", "MON"]}), "AutoBackup.0106"),
    (body(sp={"frequency": ..., "week_frequency": ["mon"]}), "AutoBackup.0106"),
    (body(sp={"rentention_num": ...}), "AutoBackup.0107"),
    (body(sp={"rentention_num": 1}), "AutoBackup.0107"),
    (body(sp={"rentention_num": 100}), "AutoBackup.0107"),
    (body(sp={"rentention_num": ..., "rentention_day": 1.9}), "AutoBackup.0107"),
    (body(sp={"rentention_num": ..., "rentention_day": 100000}), "AutoBackup.0107"),
    (body(tags=[{"key": f"k{i}", "value": ""} for i in range(11)]), "AutoBackup.0215"),
    (body(tags=[{"key": "a", "value": "x"}, {"key": "a", "value": "y"}]), "AutoBackup.0214"),
    (body(tags=[{"key": "a/b", "value": "x"}]), "AutoBackup.0214"),
    (body(tags=[{"key": "a", "value": "x" * 44}]), "AutoBackup.0214"),
    (body(tags=[{"key": "a"}]), "AutoBackup.0214"),
    (body(time_zone="UTC+02:15"), "AutoBackup.0226"),
    (body(time_zone="UTC+15:00"), "AutoBackup.0226"),
])
def test_create_rules(payload: Any, code: str) -> None:
    assert code_of(parse_create_policy, payload) == code


def test_create_accepts_documented_example() -> None:
    req = parse_create_policy({
        "backup_policy_name": "daily-db", "time_zone": "UTC+02:00",
        "tags": [{"key": "team", "value": "dba"}], "stray": 1,
        "scheduled_policy": {"start_time": "22:00,02:00", "week_frequency": ["MON", "THU"],
                             "rentention_num": 7, "remain_first_backup_of_curMonth": "Y",
                             "status": "ON", "rentention_day": 2.7}})
    assert req.scheduled_policy.rentention_day == 2
    assert req.scheduled_policy.to_wire() == {
        "start_time": "22:00,02:00", "week_frequency": ["MON", "THU"], "rentention_num": 7,
        "rentention_day": 2, "remain_first_backup_of_curMonth": "Y", "status": "ON"}


STORED = ScheduledPolicy(start_time="22:00", status="ON", week_frequency=("MON",),
                         rentention_day=30, remain_first_backup_of_curMonth=True)


def test_merge_partial_update() -> None:
    patch = parse_modify_policy({"scheduled_policy": {"frequency": 5}}).scheduled_patch
    merged = merge_scheduled_policy(STORED, patch)
    assert (merged.frequency, merged.week_frequency, merged.rentention_day,
            merged.start_time, merged.remain_first_backup_of_curMonth) == (5, None, 30, "22:00",
                                                                           True)
    merged = merge_scheduled_policy(STORED, {"rentention_num": 4})
    assert (merged.rentention_num, merged.rentention_day) == (4, None)
    merged = merge_scheduled_policy(STORED, {"status": "OFF"})
    assert merged == dataclasses.replace(STORED, status="OFF")


@pytest.mark.parametrize(("payload", "code"), [
    (None, "AutoBackup.0000"), ({"tags": []}, "AutoBackup.0000"),
    ({"scheduled_policy": {}}, "AutoBackup.0001"),
    ({"scheduled_policy": {"frequency": 31}}, "AutoBackup.0106"),
    ({"backup_policy_name": "defaultish"}, "AutoBackup.0102"),
    ({"time_zone": "UTC"}, "AutoBackup.0226"),
])
def test_modify_rules(payload: Any, code: str) -> None:
    assert code_of(parse_modify_policy, payload) == code


def test_modify_time_zone_clear() -> None:
    assert parse_modify_policy({"time_zone": None}).time_zone == ""
    assert parse_modify_policy({"time_zone": ""}).time_zone == ""
    assert parse_modify_policy({"backup_policy_name": "n"}).time_zone is None


@pytest.mark.parametrize(("payload", "code"), [
    ({"resources": [{"resource_id": "v", "resource_type": "volume"}]}, "AutoBackup.0006"),
    ({"backup_policy_id": "", "resources": []}, "AutoBackup.0006"),
    ({"backup_policy_id": "p"}, "AutoBackup.0207"),
    ({"backup_policy_id": "p", "resources": []}, "AutoBackup.0207"),
    ({"backup_policy_id": "p", "resources": [{"resource_type": "volume"}]}, "AutoBackup.0209"),
    ({"backup_policy_id": "p", "resources": [{"resource_id": "v"}]}, "AutoBackup.0211"),
    ({"backup_policy_id": "p", "resources": [{"resource_id": "v", "resource_type": "disk"}]},
     "AutoBackup.0211"),
])
def test_associate_rules(payload: Any, code: str) -> None:
    assert code_of(parse_associate, payload) == code


def test_associate_dedupes() -> None:
    r = parse_associate({"backup_policy_id": "p", "resources": [
        {"resource_id": "a", "resource_type": "volume"},
        {"resource_id": "a", "resource_type": "volume"}]})
    assert r.volume_ids == ("a",)
    assert code_of(parse_disassociate, {"resources": []}) == "AutoBackup.0207"
    assert code_of(parse_disassociate, {"resources": [{"resource_id": ""}]}) == "AutoBackup.0209"


@pytest.mark.parametrize(("query", "code"), [
    ({"status": "DONE"}, "AutoBackup.0008"), ({"limit": "0"}, "AutoBackup.0008"),
    ({"limit": "x"}, "AutoBackup.0008"), ({"offset": "-1"}, "AutoBackup.0008"),
    ({"sort_key": "id"}, "AutoBackup.0008"), ({"sort_dir": "up"}, "AutoBackup.0008"),
])
def test_task_query_rules(query: dict[str, str], code: str) -> None:
    assert code_of(parse_task_query, query) == code


def test_task_query_defaults() -> None:
    q = parse_task_query({"limit": "5000"})
    assert (q.page.limit, q.page.offset, q.page.sort_dir) == (1000, 0, "desc")
    assert parse_task_query({}).page.limit == 20


@pytest.mark.parametrize(("fn", "payload", "code"), [
    (parse_add_tag, {}, "AutoBackup.0001"),
    (parse_add_tag, {"tag": {"key": "", "value": "x"}}, "AutoBackup.0214"),
    (parse_add_tag, {"tag": {"key": "k" * 37, "value": "x"}}, "AutoBackup.0214"),
    (parse_add_tag, {"tag": {"key": "k", "value": "a.b"}}, "AutoBackup.0214"),
    (parse_tag_batch, {"action": "Create", "tags": [{"key": "k", "value": "v"}]},
     "AutoBackup.0222"),
    (parse_tag_batch, {"action": "create"}, "AutoBackup.0214"),
    (parse_tag_batch, {"action": "create", "tags": [{"key": "k"}]}, "AutoBackup.0214"),
    (parse_tag_batch, {"action": "create", "tags": [{"key": "a|b", "value": "v"}]},
     "AutoBackup.0214"),
    (parse_tag_batch, {"action": "delete", "tags": [{"key": "k" * 128}]}, "AutoBackup.0214"),
    (parse_tag_query, {"action": "list"}, "AutoBackup.0222"),
    (parse_tag_query, {"action": "filter", "tags_any": []}, "AutoBackup.0214"),
    (parse_tag_query, {"action": "filter", "tags": [{"key": "k"}]}, "AutoBackup.0214"),
    (parse_tag_query, {"action": "filter", "tags": [{"key": "k", "values": ["a"] * 2}]},
     "AutoBackup.0214"),
    (parse_tag_query, {"action": "filter", "matches": [{"key": "name", "value": "x"}]},
     "AutoBackup.0214"),
    (parse_tag_query, {"action": "filter", "limit": "0"}, "AutoBackup.0008"),
    (parse_tag_query, {"action": "filter", "offset": "-1"}, "AutoBackup.0008"),
])
def test_tag_rules(fn: Any, payload: Any, code: str) -> None:
    assert code_of(fn, payload) == code


def test_tag_batch_delete_allows_long_keys_and_missing_value() -> None:
    batch = parse_tag_batch({"action": "delete", "tags": [{"key": "k" * 127}, {"key": "t",
                                                                           "value": "v"}]})
    assert batch.tags == (("k" * 127, None), ("t", "v"))


def test_scheduler_codes_match_the_catalogue() -> None:
    assert c.AB_BACKUP_QUOTA.code == runs.CODE_BACKUP_QUOTA
    assert c.AB_SNAPSHOT_QUOTA.code == runs.CODE_SNAPSHOT_QUOTA
    assert c.AB_POLICY_EXECUTE_FAILED.code == runs.CODE_EXECUTE_FAILED
