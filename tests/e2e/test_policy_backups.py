"""Policies with the real backup service (vbs-api §2.14, §7.8, §7.9), on a real server.

* Run now backs up every bound volume for real: one task per volume, each
  ``EXECUTE_SUCCESS`` with a ``bksCreateBackup`` job whose backup is
  ``available``, made by the policy, and restores byte-identically.
* Retention (``rentention_num = 2``, the contract's minimum): three runs
  leave the two newest policy backups per volume; the oldest go through
  ordinary delete jobs and leave the repository; the kept ones restore
  byte-identically; a manual backup of the same volume is never pruned.

Every wait is bounded; volumes are sparse with a few MiB of data.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import ProjectClient
from tests.support.server import RunningServer, start_server
from tests.support.volumes import MIB, content_digest, make_volume, mutate_volume


class Api(ProjectClient):
    def policy(self, name: str, scheduled: dict[str, Any], **extra: Any) -> str:
        r = self("POST", "/v2/{p}/backuppolicy",
                 json={"backup_policy_name": name, "scheduled_policy": scheduled, **extra})
        assert r.status_code == 200, r.text
        return str(r.json()["backup_policy_id"])

    def bind(self, policy_id: str, *volumes: str) -> None:
        r = self("POST", "/v2/{p}/backuppolicyresources", json={
            "backup_policy_id": policy_id,
            "resources": [{"resource_id": v, "resource_type": "volume"} for v in volumes]})
        assert r.status_code == 200, r.text
        assert r.json()["fail_resources"] == []
        assert sorted(x["resource_id"] for x in r.json()["success_resources"]) == sorted(volumes)

    def execute(self, policy_id: str) -> None:
        r = self("POST", f"/v2/{{p}}/backuppolicy/{policy_id}/action")
        assert r.status_code == 204, r.text

    def tasks(self, policy_id: str) -> list[dict[str, Any]]:
        r = self("GET", f"/v2/{{p}}/backuppolicy/{policy_id}/backuptasks",
                 params={"limit": 1000})
        assert r.status_code == 200, r.text
        return r.json()["tasks"]  # type: ignore[no-any-return]

    def wait_tasks(self, policy_id: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
        """Wait until ``count`` tasks exist and none is WAITING/RUNNING."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = self.tasks(policy_id)
            if len(tasks) >= count and all(
                    t["status"] not in ("WAITING", "RUNNING") for t in tasks):
                return tasks
            assert time.monotonic() < deadline, f"tasks still unfinished: {tasks}"
            time.sleep(0.1)

    def restore_digest(self, backup_id: str) -> str:
        target = self.volume("restored")
        r = self("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                 json={"restore": {"volume_id": target}})
        assert r.status_code == 200, r.text
        job = self.wait_job(r.json()["job_id"])
        assert job["status"] == "SUCCESS", job
        return content_digest(self.volume_file(target))


DATA = 4 * MIB
SCHEDULE = {"start_time": "02:00", "frequency": 1, "status": "OFF"}  # runs only when asked


def _fill(api: Api, volume_id: str, seed: int) -> str:
    path = api.volume_file(volume_id)
    tmp = path.with_name(path.name + ".gen")
    make_volume(tmp, DATA, seed=seed)
    with open(path, "r+b") as dst, open(tmp, "rb") as src:
        dst.write(src.read())
    tmp.unlink()
    return content_digest(path)


def _rows(server: RunningServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{server.data_dir / 'vbs.db'}?mode=ro", uri=True, timeout=30)
    try:
        return list(conn.execute(sql, args))
    finally:
        conn.close()


def _repository_backups(server: RunningServer, project: str) -> set[str]:
    from vbs.repository.backends import LocalBackend
    from vbs.repository.repo import Repository

    repo = Repository.open(LocalBackend(server.data_dir / "repo"),
                           key_file_bytes=(server.data_dir / "master.key").read_bytes())
    return set(repo.project(project).backup_ids())


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    server = start_server(tmp_path_factory.mktemp("policy-backups"))
    try:
        yield Api(server)
    finally:
        server.stop()


def _successful(api: Api, tasks: list[dict[str, Any]]) -> dict[str, str]:
    """volume id -> backup id of each task, checking its job and backup records."""
    out = {}
    for task in tasks:
        assert task["status"] == "EXECUTE_SUCCESS", task
        assert task["backup_name"].startswith("autobk_") and task["finished_at"], task
        job = api.wait_job(task["vbs_job_id"])
        assert job["status"] == "SUCCESS" and job["job_type"] == "bksCreateBackup", job
        assert job["entities"]["volume_id"] == task["resource_id"]
        out[task["resource_id"]] = str(job["entities"]["backup_id"])
    return out


def test_execute_now_backs_up_every_bound_volume(api: Api) -> None:
    volumes = [api.volume("pa"), api.volume("pb")]
    digests = {v: _fill(api, v, seed=i + 20) for i, v in enumerate(volumes)}
    policy = api.policy("run-now", {**SCHEDULE, "rentention_num": 5})
    api.bind(policy, *volumes)

    api.execute(policy)
    tasks = api.wait_tasks(policy, 2)
    assert len(tasks) == 2 and sorted(t["resource_id"] for t in tasks) == sorted(volumes)
    made = _successful(api, tasks)
    names = {t["resource_id"]: t["backup_name"] for t in tasks}
    for volume_id, backup_id in made.items():
        row = _rows(api.server, "SELECT status, volume_id, policy_id, source, name FROM backups "
                                "WHERE id = ?", backup_id)
        assert row == [("available", volume_id, policy, "policy", names[volume_id])]
        status = api("GET", f"/v3/{{p}}/volumes/{volume_id}").json()["volume"]["status"]
        assert status == "available"
    assert set(made.values()) <= _repository_backups(api.server, api.project)
    for volume_id, backup_id in made.items():
        assert api.restore_digest(backup_id) == digests[volume_id]


def test_policy_backups_carry_the_policy_tags(api: Api) -> None:
    volume = api.volume("tagged")
    _fill(api, volume, seed=30)
    policy = api.policy("tagged", {**SCHEDULE, "rentention_num": 5},
                        tags=[{"key": "team", "value": "dba"}])
    api.bind(policy, volume)
    api.execute(policy)
    (backup_id,) = _successful(api, api.wait_tasks(policy, 1)).values()
    (tags,) = _rows(api.server, "SELECT tags FROM backups WHERE id = ?", backup_id)[0]
    assert '"team"' in (tags or "") and '"dba"' in (tags or "")


def test_retention_keeps_the_newest_policy_backups_per_volume(api: Api) -> None:
    """rentention_num = 2 (the smallest the contract allows) and three runs."""
    volumes = [api.volume("ra"), api.volume("rb")]
    for i, v in enumerate(volumes):
        _fill(api, v, seed=40 + i)
    policy = api.policy("keep-two", {**SCHEDULE, "rentention_num": 2})
    api.bind(policy, *volumes)
    # a manual backup of one volume: never a retention candidate
    r = api("POST", "/v2/{p}/cloudbackups",
            json={"backup": {"volume_id": volumes[0], "name": "manual"}})
    assert r.status_code == 200, r.text
    manual_job = api.wait_job(r.json()["job_id"])
    assert manual_job["status"] == "SUCCESS", manual_job
    manual = manual_job["entities"]["backup_id"]

    runs: list[dict[str, str]] = []  # per run: volume id -> backup id
    contents: dict[str, str] = {}  # backup id -> digest of the volume it copied
    seen: set[str] = set()
    for n in range(3):
        if n:  # new content, so each run's backups differ
            for i, v in enumerate(volumes):
                mutate_volume(api.volume_file(v), 0.5, seed=50 + 10 * n + i)
        now = {v: content_digest(api.volume_file(v)) for v in volumes}
        api.execute(policy)
        tasks = api.wait_tasks(policy, 2 * (n + 1))
        fresh = [t for t in tasks if t["job_id"] not in seen]
        seen.update(t["job_id"] for t in fresh)
        made = _successful(api, fresh)
        assert set(made) == set(volumes)
        runs.append(made)
        contents.update({b: now[v] for v, b in made.items()})

    kept = {b for run in runs[1:] for b in run.values()}
    pruned = set(runs[0].values())

    def policy_backups() -> set[tuple[Any, ...]]:
        return set(_rows(api.server, "SELECT id, status FROM backups WHERE policy_id = ?",
                         policy))

    deadline = time.monotonic() + 120
    while policy_backups() != {(b, "available") for b in kept}:
        assert time.monotonic() < deadline, (policy_backups(), kept)
        time.sleep(0.1)
    deletes = [e for s, e in _rows(api.server, "SELECT status, entities FROM jobs "
                                               "WHERE job_type = 'bksDeleteBackup'")
               if any(b in e for b in pruned)]
    assert len(deletes) == len(pruned)
    deadline = time.monotonic() + 60
    while _rows(api.server, "SELECT COUNT(*) FROM jobs WHERE job_type = 'bksDeleteBackup' "
                            "AND status != 'SUCCESS'") != [(0,)]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stored = _repository_backups(api.server, api.project)
    assert not pruned & stored
    assert kept | {manual} <= stored
    assert _rows(api.server, "SELECT status FROM backups WHERE id = ?", manual) == [("available",)]
    for backup_id in sorted(kept):
        assert api.restore_digest(backup_id) == contents[backup_id]
