"""Policy and policy-tag APIs (vbs-api §7, §8) through a real server with httpx.

The server runs without a backup service, so it uses the stand-in port: no
disk exists and submissions fail. State that needs disks or unfinished tasks
(associations, WAITING tasks, a default policy) is arranged directly in the
server's database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import RunningServer, start_server
from vbs.db.models_policies import BackupPolicy, PolicyResource, PolicyTask
from vbs.db.session import Database

SP = {"start_time": "02:00", "frequency": 1, "rentention_num": 3, "status": "ON"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("vbs-policies"))
    yield srv
    srv.stop()


class Api:
    def __init__(self, server: RunningServer, project: str) -> None:
        out = server.cli("admin", "project", "create", project)
        assert out.returncode == 0, out.stderr
        out = server.cli("admin", "user", "create", f"u-{project}", "--password", "pw",
                         "--project", project, "--role", "member")
        assert out.returncode == 0, out.stderr
        token = server.token(f"u-{project}", "pw", project)
        self.pid = server.project_id(token)
        self.client = httpx.Client(base_url=f"{server.base_url}/v2/{self.pid}",
                                   headers={"X-Auth-Token": token}, timeout=30)
        self.db = Database(f"sqlite:///{server.data_dir / 'vbs.db'}")

    def create(self, name: str = "nightly", **extra: Any) -> str:
        r = self.client.post("/backuppolicy", json={"backup_policy_name": name,
                                                    "scheduled_policy": SP, **extra})
        assert r.status_code == 200, r.text
        pid: str = r.json()["backup_policy_id"]
        return pid

    def policy(self, policy_id: str) -> dict[str, Any]:
        items = self.client.get("/backuppolicy").json()["backup_policies"]
        found: dict[str, Any] = next(p for p in items if p["backup_policy_id"] == policy_id)
        return found

    def bind(self, policy_id: str, *volumes: str) -> None:
        with self.db.session() as s:
            for v in volumes:
                s.add(PolicyResource(project_id=self.pid, volume_id=v, policy_id=policy_id))

    def task(self, policy_id: str, status: str, created: dt.datetime, **kw: Any) -> str:
        tid = str(uuid.uuid4())
        with self.db.session() as s:
            s.add(PolicyTask(id=tid, policy_id=policy_id, project_id=self.pid,
                             volume_id=kw.get("volume_id", str(uuid.uuid4())), status=status,
                             trigger="manual", backup_name="autobk_0a1b", created_at=created,
                             vbs_job_id=kw.get("vbs_job_id")))
        return tid


_counter = iter(range(10_000))


@pytest.fixture
def api(server: RunningServer) -> Iterator[Api]:
    a = Api(server, f"proj{next(_counter)}")
    yield a
    a.client.close()
    a.db.dispose()


def err(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


# ----------------------------------------------------------------------- create / list


def test_create_and_list_render_exactly(api: Api) -> None:
    body = {"backup_policy_name": "daily-db", "time_zone": "UTC+02:00",
            "tags": [{"key": "team", "value": "dba"}],
            "scheduled_policy": {"start_time": "22:00,02:00", "week_frequency": ["MON", "THU"],
                                 "rentention_num": 7, "remain_first_backup_of_curMonth": "Y",
                                 "status": "ON"}}
    r = api.client.post("/backuppolicy", json=body)
    assert r.status_code == 200 and list(r.json()) == ["backup_policy_id"]
    pid = r.json()["backup_policy_id"]
    second = api.create("plain")
    listed = api.client.get("/backuppolicy").json()["backup_policies"]
    assert [p["backup_policy_id"] for p in listed] == [pid, second]
    assert listed[0] == {"backup_policy_id": pid, "backup_policy_name": "daily-db",
                         "scheduled_policy": body["scheduled_policy"],
                         "policy_resource_count": 0, "time_zone": "UTC+02:00",
                         "tags": [{"key": "team", "value": "dba"}]}
    assert "time_zone" not in listed[1]
    assert listed[1]["scheduled_policy"] == {**SP, "remain_first_backup_of_curMonth": "N"}


@pytest.mark.parametrize(("payload", "code"), [
    ({"backup_policy_name": "x"}, "AutoBackup.0001"),
    ({"backup_policy_name": "", "scheduled_policy": SP}, "AutoBackup.0101"),
    ({"backup_policy_name": "default1", "scheduled_policy": SP}, "AutoBackup.0102"),
    ({"backup_policy_name": "x", "scheduled_policy": {**SP, "start_time": "1:00"}},
     "AutoBackup.0103"),
    ({"backup_policy_name": "x", "scheduled_policy": {**SP, "status": "YES"}}, "AutoBackup.0104"),
    ({"backup_policy_name": "x", "scheduled_policy": {
        **SP, "remain_first_backup_of_curMonth": "yes"}}, "AutoBackup.0105"),
    ({"backup_policy_name": "x", "scheduled_policy": {**SP, "frequency": 31}},
     "AutoBackup.0106"),
    ({"backup_policy_name": "x", "scheduled_policy": {**SP, "rentention_num": 100}},
     "AutoBackup.0107"),
    ({"backup_policy_name": "x", "scheduled_policy": SP, "tags": [{"key": "a b", "value": ""}]},
     "AutoBackup.0214"),
    ({"backup_policy_name": "x", "scheduled_policy": SP, "time_zone": "UTC+2"},
     "AutoBackup.0226"),
    ({"backup_policy_name": "x<y", "scheduled_policy": SP}, "AutoBackup.0221"),
])
def test_create_validation(api: Api, payload: dict[str, Any], code: str) -> None:
    err(api.client.post("/backuppolicy", json=payload), 400, code)


def test_create_body_errors_and_limit(api: Api) -> None:
    err(api.client.post("/backuppolicy"), 400, "AutoBackup.0000")
    err(api.client.post("/backuppolicy", content=b"{nope",
                        headers={"Content-Type": "application/json"}), 400, "AutoBackup.0008")
    for i in range(10):
        api.create(f"p{i}")
    err(api.client.post("/backuppolicy", json={"backup_policy_name": "p10",
                                               "scheduled_policy": SP}), 400, "AutoBackup.0203")


# ----------------------------------------------------------------------- modify


def test_modify_partial_update_semantics(api: Api) -> None:
    pid = api.create(time_zone="UTC+01:00")
    r = api.client.put(f"/backuppolicy/{pid}", json={"scheduled_policy": {
        "week_frequency": ["SUN"], "rentention_day": 9}, "tags": [{"key": "ignored"}]})
    assert r.status_code == 200 and r.json() == {"backup_policy_id": pid}
    sp = api.policy(pid)["scheduled_policy"]
    assert sp == {"start_time": "02:00", "week_frequency": ["SUN"], "rentention_day": 9,
                  "remain_first_backup_of_curMonth": "N", "status": "ON"}
    api.client.put(f"/backuppolicy/{pid}", json={"scheduled_policy": {"frequency": 5}})
    sp = api.policy(pid)["scheduled_policy"]
    assert sp["frequency"] == 5 and "week_frequency" not in sp and sp["rentention_day"] == 9
    api.client.put(f"/backuppolicy/{pid}", json={"scheduled_policy": {"status": "OFF"}})
    assert api.policy(pid)["scheduled_policy"]["status"] == "OFF"
    with api.db.session() as s:
        row = s.get(BackupPolicy, pid)
        assert row is not None and row.next_run_at is None
    api.client.put(f"/backuppolicy/{pid}", json={"scheduled_policy": {"status": "ON"},
                                                 "backup_policy_name": "renamed"})
    with api.db.session() as s:
        row = s.get(BackupPolicy, pid)
        assert row is not None and row.next_run_at is not None and row.next_run_at.hour == 2
    assert api.policy(pid)["backup_policy_name"] == "renamed"
    assert api.policy(pid)["time_zone"] == "UTC+01:00"
    api.client.put(f"/backuppolicy/{pid}", json={"time_zone": None})
    assert "time_zone" not in api.policy(pid)


def test_modify_errors(api: Api) -> None:
    pid = api.create()
    err(api.client.put(f"/backuppolicy/{pid}", json={"tags": []}), 400, "AutoBackup.0000")
    err(api.client.put(f"/backuppolicy/{pid}"), 400, "AutoBackup.0000")
    err(api.client.put(f"/backuppolicy/{pid}", json={"scheduled_policy": {"frequency": 0}}),
        400, "AutoBackup.0106")
    err(api.client.put(f"/backuppolicy/{uuid.uuid4()}", json={"time_zone": ""}),
        404, "AutoBackup.0205")
    err(api.client.put("/backuppolicy/", json={"time_zone": ""}), 400, "AutoBackup.0006")
    with api.db.session() as s:
        row = s.get(BackupPolicy, pid)
        assert row is not None
        row.is_default = True
    err(api.client.put(f"/backuppolicy/{pid}", json={"backup_policy_name": "other"}),
        400, "AutoBackup.0100")
    assert api.client.put(f"/backuppolicy/{pid}", json={
        "scheduled_policy": {"status": "OFF"}}).status_code == 200
    err(api.client.delete(f"/backuppolicy/{pid}"), 400, "AutoBackup.0100")


# ----------------------------------------------------------------------- delete


def test_delete(api: Api) -> None:
    pid = api.create()
    api.bind(pid, str(uuid.uuid4()))
    tid = api.task(pid, "RUNNING", dt.datetime.now(dt.UTC))
    err(api.client.delete(f"/backuppolicy/{pid}"), 400, "AutoBackup.0225")
    with api.db.session() as s:
        task = s.get(PolicyTask, tid)
        assert task is not None
        task.status = "EXECUTE_SUCCESS"
    r = api.client.delete(f"/backuppolicy/{pid}")
    assert r.status_code == 204 and r.content == b""
    err(api.client.delete(f"/backuppolicy/{pid}"), 404, "AutoBackup.0205")
    with api.db.session() as s:
        assert s.get(PolicyTask, tid) is None


# ----------------------------------------------------------------------- associations


def test_associate_and_disassociate(api: Api) -> None:
    pid = api.create()
    missing = str(uuid.uuid4())
    r = api.client.post("/backuppolicyresources", json={"backup_policy_id": pid, "resources": [
        {"resource_id": missing, "resource_type": "volume"},
        {"resource_id": missing, "resource_type": "volume"}]})
    assert r.status_code == 200
    assert r.json() == {"success_resources": [], "fail_resources": [{
        "resource_id": missing, "resource_type": "volume", "availability_zone": None,
        "os_vol_host_attr": None, "code": "AutoBackup.1400",
        "message": f"Disk {missing} not found."}]}
    bound = str(uuid.uuid4())
    api.bind(pid, bound)
    assert api.policy(pid)["policy_resource_count"] == 1
    r = api.client.post(f"/backuppolicyresources/{pid}/deleted_resources",
                        json={"resources": [{"resource_id": bound}, {"resource_id": missing}]})
    assert r.status_code == 200
    assert r.json()["success_resources"] == [{"resource_id": bound}]
    assert r.json()["fail_resources"][0]["code"] == "AutoBackup.1400"
    assert api.policy(pid)["policy_resource_count"] == 0


@pytest.mark.parametrize(("payload", "status", "code"), [
    (None, 400, "AutoBackup.0000"),
    ({"resources": [{"resource_id": "v", "resource_type": "volume"}]}, 400, "AutoBackup.0006"),
    ({"backup_policy_id": "POLICY", "resources": []}, 400, "AutoBackup.0207"),
    ({"backup_policy_id": "POLICY", "resources": [{"resource_id": "",
                                                  "resource_type": "volume"}]},
     400, "AutoBackup.0209"),
    ({"backup_policy_id": "POLICY", "resources": [{"resource_id": "v",
                                                  "resource_type": "image"}]},
     400, "AutoBackup.0211"),
    ({"backup_policy_id": "UNKNOWN", "resources": [{"resource_id": "v",
                                                   "resource_type": "volume"}]},
     404, "AutoBackup.1100"),
])
def test_associate_errors(api: Api, payload: Any, status: int, code: str) -> None:
    pid = api.create()
    if payload is not None and payload.get("backup_policy_id") == "POLICY":
        payload["backup_policy_id"] = pid
    if payload is not None and payload.get("backup_policy_id") == "UNKNOWN":
        payload["backup_policy_id"] = str(uuid.uuid4())
    err(api.client.post("/backuppolicyresources", json=payload), status, code)


def test_disassociate_errors(api: Api) -> None:
    pid = api.create()
    err(api.client.post(f"/backuppolicyresources/{pid}/deleted_resources",
                        json={"resources": []}), 400, "AutoBackup.0207")
    err(api.client.post(f"/backuppolicyresources/{pid}/deleted_resources",
                        json={"resources": [{}]}), 400, "AutoBackup.0209")
    err(api.client.post(f"/backuppolicyresources/{uuid.uuid4()}/deleted_resources",
                        json={"resources": [{"resource_id": "v"}]}), 404, "AutoBackup.0205")
    err(api.client.post("/backuppolicyresources//deleted_resources",
                        json={"resources": [{"resource_id": "v"}]}), 400, "AutoBackup.0006")


# ----------------------------------------------------------------------- run now and tasks


def test_execute_now_records_a_failed_task_per_disk(api: Api) -> None:
    pid = api.create()
    assert api.client.post(f"/backuppolicy/{pid}/action").status_code == 204  # no disks
    vols = [str(uuid.uuid4()), str(uuid.uuid4())]
    api.bind(pid, *vols)
    r = api.client.post(f"/backuppolicy/{pid}/action", json={"ignored": True})
    assert r.status_code == 204 and r.content == b""
    tasks = api.client.get(f"/backuppolicy/{pid}/backuptasks").json()
    assert tasks["count"] == 2
    for t in tasks["tasks"]:
        assert t["status"] == "EXECUTE_FAIL" and t["code"] == "VolumeBackup.0021"  # disk gone
        assert t["resource_id"] in vols and t["resource_type"] == "volume"
        assert t["backup_name"].startswith("autobk_") and len(t["backup_name"]) == 11
        assert "vbs_job_id" not in t and len(t["created_at"]) == 23 and "finished_at" in t
    api.task(pid, "WAITING", dt.datetime.now(dt.UTC))
    err(api.client.post(f"/backuppolicy/{pid}/action"), 400, "AutoBackup.0225")
    err(api.client.post(f"/backuppolicy/{uuid.uuid4()}/action"), 404, "AutoBackup.0205")
    err(api.client.post("/backuppolicy//action"), 400, "AutoBackup.0006")


def test_task_list_filters_sort_and_pages(api: Api) -> None:
    pid = api.create()
    base = dt.datetime.now(dt.UTC).replace(microsecond=412000) - dt.timedelta(days=1)
    ids = [api.task(pid, "EXECUTE_SUCCESS" if i % 2 else "RUNNING",
                    base + dt.timedelta(minutes=i), vbs_job_id=f"job{i}") for i in range(5)]
    old = api.task(pid, "EXECUTE_SUCCESS", base - dt.timedelta(days=31))
    page = api.client.get(f"/backuppolicy/{pid}/backuptasks").json()
    assert page["count"] == 5 and [t["job_id"] for t in page["tasks"]] == ids[::-1]
    assert old not in [t["job_id"] for t in page["tasks"]]
    first = page["tasks"][0]
    assert first["created_at"].endswith(".412") and first["vbs_job_id"] == "job4"
    assert "finished_at" not in first
    asc = api.client.get(f"/backuppolicy/{pid}/backuptasks",
                         params={"sort_dir": "asc", "limit": 2, "offset": 1}).json()
    assert asc["count"] == 5 and [t["job_id"] for t in asc["tasks"]] == ids[1:3]
    seen: list[str] = []
    marker = None
    while True:
        params = {"limit": 2, **({"marker": marker} if marker else {})}
        got = api.client.get(f"/backuppolicy/{pid}/backuptasks", params=params).json()["tasks"]
        seen += [t["job_id"] for t in got]
        if len(got) < 2:
            break
        marker = got[-1]["job_id"]
    assert seen == ids[::-1]
    run = api.client.get(f"/backuppolicy/{pid}/backuptasks", params={"status": "RUNNING"}).json()
    assert run["count"] == 3 and {t["status"] for t in run["tasks"]} == {"RUNNING"}
    one = api.client.get(f"/backuppolicy/{pid}/backuptasks", params={"job_id": ids[2]}).json()
    assert [t["job_id"] for t in one["tasks"]] == [ids[2]]
    for params in ({"status": "NOPE"}, {"sort_key": "status"}, {"limit": "0"},
                   {"marker": str(uuid.uuid4())}, {"offset": "x"}):
        err(api.client.get(f"/backuppolicy/{pid}/backuptasks", params=params),
            400, "AutoBackup.0008")
    err(api.client.get(f"/backuppolicy/{uuid.uuid4()}/backuptasks"), 404, "AutoBackup.0205")


# ----------------------------------------------------------------------- tags


def test_policy_tags_crud(api: Api) -> None:
    pid = api.create(tags=[{"key": "team", "value": "dba"}])
    other = api.create("other", tags=[{"key": "env", "value": "test"}])
    assert api.client.post(f"/backuppolicy/{pid}/tags",
                           json={"tag": {"key": "env", "value": "prod"}}).status_code == 204
    api.client.post(f"/backuppolicy/{pid}/tags", json={"tag": {"key": "team", "value": "ops"}})
    assert api.client.get(f"/backuppolicy/{pid}/tags").json() == {"tags": [
        {"key": "team", "value": "ops"}, {"key": "env", "value": "prod"}]}
    assert api.client.get("/backuppolicy/tags").json() == {"tags": [
        {"key": "env", "values": ["prod", "test"]}, {"key": "team", "values": ["ops"]}]}
    r = api.client.delete(f"/backuppolicy/{other}/tags/env")
    assert r.status_code == 204
    err(api.client.delete(f"/backuppolicy/{other}/tags/env"), 404, "AutoBackup.0216")
    api.client.post(f"/backuppolicy/{other}/tags", json={"tag": {"key": "ä-1", "value": ""}})
    assert api.client.delete(f"/backuppolicy/{other}/tags/%C3%A4-1").status_code == 204
    err(api.client.post(f"/backuppolicy/{pid}/tags", json={}), 400, "AutoBackup.0001")
    err(api.client.post(f"/backuppolicy/{pid}/tags", json={"tag": {"key": "a#", "value": ""}}),
        400, "AutoBackup.0214")
    err(api.client.get(f"/backuppolicy/{uuid.uuid4()}/tags"), 404, "AutoBackup.0205")
    for i in range(8):
        api.client.post(f"/backuppolicy/{pid}/tags", json={"tag": {"key": f"k{i}", "value": ""}})
    err(api.client.post(f"/backuppolicy/{pid}/tags", json={"tag": {"key": "k99", "value": ""}}),
        400, "AutoBackup.0215")


def test_tag_batch(api: Api) -> None:
    pid = api.create(tags=[{"key": "team", "value": "dba"}, {"key": "env", "value": "prod"}])
    act = f"/backuppolicy/{pid}/tags/action"
    assert api.client.post(act, json={"action": "update", "tags": [
        {"key": "env", "value": "test"}, {"key": "a.b", "value": "x"}]}).status_code == 204
    assert api.client.get(f"/backuppolicy/{pid}/tags").json()["tags"] == [
        {"key": "team", "value": "dba"}, {"key": "env", "value": "test"},
        {"key": "a.b", "value": "x"}]
    too_many = [{"key": f"n{i}", "value": ""} for i in range(8)]
    err(api.client.post(act, json={"action": "create", "tags": too_many}), 400, "AutoBackup.0215")
    assert len(api.client.get(f"/backuppolicy/{pid}/tags").json()["tags"]) == 3  # atomic
    api.client.post(act, json={"action": "delete", "tags": [
        {"key": "team", "value": "other"}, {"key": "env"}, {"key": "nope"}]})
    assert [t["key"] for t in api.client.get(f"/backuppolicy/{pid}/tags").json()["tags"]] == [
        "team", "a.b"]
    err(api.client.post(act, json={"action": "remove", "tags": [{"key": "k"}]}),
        400, "AutoBackup.0222")
    err(api.client.post(act, json={"action": "create", "tags": []}), 400, "AutoBackup.0214")
    err(api.client.post(act, json={"action": "create", "tags": [{"key": "a=b", "value": ""}]}),
        400, "AutoBackup.0214")
    err(api.client.post(f"/backuppolicy/{uuid.uuid4()}/tags/action",
                        json={"action": "delete", "tags": [{"key": "k"}]}), 404,
        "AutoBackup.0205")


def test_query_by_tags(api: Api) -> None:
    a = api.create("alpha", tags=[{"key": "team", "value": "dba"}, {"key": "env",
                                                                     "value": "prod"}])
    b = api.create("Beta", tags=[{"key": "team", "value": "web"}, {"key": "env",
                                                                    "value": "test"}])
    c = api.create("gamma", tags=[{"key": "team", "value": "dba"}])
    d = api.create("delta")
    url = "/backuppolicy/resource_instances/action"

    def ids(**q: Any) -> list[str]:
        r = api.client.post(url, json={"action": "filter", **q})
        assert r.status_code == 200, r.text
        assert r.json()["total_count"] >= len(r.json()["resources"])
        return [x["resource_id"] for x in r.json()["resources"]]

    assert ids() == [a, b, c, d]
    assert ids(tags=[{"key": "team", "values": ["dba"]}]) == [a, c]
    assert ids(tags=[{"key": "team", "values": []}, {"key": "env", "values": []}]) == [a, b]
    assert ids(tags_any=[{"key": "env", "values": ["test"]},
                         {"key": "team", "values": ["dba"]}]) == [a, b, c]
    assert ids(not_tags=[{"key": "team", "values": ["dba"]},
                         {"key": "env", "values": []}]) == [b, c, d]
    assert ids(not_tags_any=[{"key": "env", "values": []}]) == [c, d]
    assert ids(matches=[{"key": "resource_name", "value": "ET"}]) == [b]
    assert ids(limit="2", offset="1") == [b, c]
    r = api.client.post(url, json={"action": "filter", "limit": 1,
                                   "tags": [{"key": "team", "values": ["dba"]}]}).json()
    assert r == {"total_count": 2, "resources": [{
        "resource_id": a, "resource_name": "alpha", "resource_detail": None,
        "tags": [{"key": "team", "value": "dba"}, {"key": "env", "value": "prod"}]}]}
    assert api.client.post(url, json={"action": "count", "limit": "zzz", "tags": [
        {"key": "team", "values": ["dba"]}]}).json() == {"total_count": 2}
    err(api.client.post(url, json={"action": "find"}), 400, "AutoBackup.0222")
    err(api.client.post(url, json={"action": "filter", "tags_any": []}), 400, "AutoBackup.0214")
    err(api.client.post(url, json={"action": "filter", "limit": "-1"}), 400, "AutoBackup.0008")
    err(api.client.post(url, json={"action": "filter", "tags": [
        {"key": f"k{i}", "values": []} for i in range(11)]}), 400, "AutoBackup.0214")


# ----------------------------------------------------------------------- auth and routing


def test_auth_and_project_scope(server: RunningServer, api: Api) -> None:
    r = httpx.get(f"{server.base_url}/v2/{api.pid}/backuppolicy")
    err(r, 401, "AutoBackup.0002")
    other = Api(server, f"proj{next(_counter)}")
    try:
        err(other.client.get(f"{server.base_url}/v2/{api.pid}/backuppolicy"), 403,
            "AutoBackup.0213")
        pid = api.create()
        err(other.client.put(f"/backuppolicy/{pid}", json={"time_zone": ""}), 404,
            "AutoBackup.0205")
    finally:
        other.client.close()
        other.db.dispose()
