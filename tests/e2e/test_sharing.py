"""Backup sharing end to end (vbs-api §6, docs/decisions.md), from both sides.

Three projects on one real server: ``owner`` shares, ``recipient`` receives,
and the bootstrap ``admin`` project plays the stranger who must see nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import ProjectClient, project_user
from tests.support.server import RunningServer, start_server
from tests.support.volumes import file_sha256

SHARING = "/v2/{p}/os-vendor-backup-sharing"


class Client(ProjectClient):
    """One project's view of the server."""

    def share(self, backup_id: str, *targets: str) -> httpx.Response:
        return self("POST", SHARING,
                    json={"shared": {"backup_id": backup_id, "to_project_ids": list(targets)}})


def _project_user(server: RunningServer, name: str) -> Client:
    return project_user(server, name, Client)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client, Client]]:
    server = start_server(tmp_path_factory.mktemp("sharing"))
    try:
        yield _project_user(server, "owner"), _project_user(server, "recipient"), Client(server)
    finally:
        server.stop()


def _fault(r: httpx.Response, status: int, key: str) -> None:
    assert r.status_code == status, r.text
    assert list(r.json()) == [key], r.text
    assert r.json()[key]["code"] == status


def test_share_restore_and_delete_rules_from_both_sides(
        world: tuple[Client, Client, Client]) -> None:
    owner, recipient, stranger = world
    vol = owner.volume("data")
    with open(owner.volume_file(vol), "r+b") as f:
        f.seek(3 * 1024 * 1024)
        f.write(os.urandom(2 * 1024 * 1024))
    digest = file_sha256(owner.volume_file(vol))
    backup_id = owner.backup(vol, "shared-one")

    r = owner.share(backup_id, recipient.project)
    assert r.status_code == 200, r.text
    [record] = r.json()["shared"]
    assert record["backup_id"] == backup_id and record["from_project_id"] == owner.project
    assert record["to_project_id"] == recipient.project
    assert record["deleted"] is False and record["deleted_at"] is None
    assert record["updated_at"] is None and "backup" not in record
    share_id = record["id"]
    uuid.UUID(share_id)

    # preconditions [D35]
    _fault(owner.share(backup_id, recipient.project), 400, "badRequest")  # duplicate
    _fault(owner.share(backup_id, owner.project), 400, "badRequest")  # self
    _fault(owner.share(backup_id, "0" * 32), 400, "badRequest")  # unknown project
    _fault(owner.share(backup_id, *[f"{i:032x}" for i in range(11)]), 400, "badRequest")
    _fault(owner("POST", SHARING, json={"backup": {}}), 400, "badRequest")
    _fault(owner("POST", SHARING, content=b"{not json"), 400, "badRequest")
    _fault(owner.share(str(uuid.uuid4()), recipient.project), 404, "itemNotFound")

    # shared-in backups count against the owner's quota only
    quota = recipient("GET", "/v2/{p}/cloudbackups/quota").json()["quotas"]["resources"]
    assert [q["used"] for q in quota] == [0, 0]

    # both sides see the share, the stranger does not [D34]
    for who, to_me in ((owner, "false"), (recipient, "true")):
        r = who("GET", SHARING + "/detail", params={"share_to_me": to_me})
        assert r.status_code == 200, r.text
        [item] = r.json()["shared"]
        assert item["id"] == share_id and item["backup"]["id"] == backup_id
        assert item["backup"]["status"] == "available" and item["backup"]["volume_id"] == vol
        assert item["backup"]["service_metadata"] is None
        assert who("GET", SHARING + "/count", params={"share_to_me": to_me}).json() == {
            "count": 1}
        r = who("GET", SHARING + f"/{share_id}")
        assert r.status_code == 200 and r.json()["shared"]["backup"]["name"] == "shared-one"
    assert recipient("GET", SHARING + "/detail").json() == {"shared": []}
    assert stranger("GET", SHARING + "/count", params={"share_to_me": "true"}).json() == {
        "count": 0}
    _fault(stranger("GET", SHARING + f"/{share_id}"), 404, "itemNotFound")

    # the recipient restores into its own volume; the job is the recipient's
    target = recipient.volume("copy")
    r = recipient("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                  json={"restore": {"volume_id": target}})
    assert r.status_code == 200, r.text
    job = recipient.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksRestoreBackup", job
    assert file_sha256(recipient.volume_file(target)) == digest
    assert owner("GET", f"/v1/{{p}}/jobs/{job['job_id']}").status_code == 404
    # ... but not into someone else's volume, and the stranger cannot restore at all
    r = recipient("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                  json={"restore": {"volume_id": vol}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "VolumeBackup.0207"
    r = stranger("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                 json={"restore": {"volume_id": stranger.volume("s")}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "VolumeBackup.0111"

    # the recipient may neither delete, re-share nor cancel
    r = recipient("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "VolumeBackup.0042"
    _fault(recipient("DELETE", f"/v3/{{p}}/backups/{backup_id}"), 403, "forbidden")
    _fault(recipient.share(backup_id, stranger.project), 403, "forbidden")
    _fault(recipient("DELETE", SHARING + f"/{share_id}"), 404, "itemNotFound")
    _fault(recipient("DELETE", SHARING + f"/{backup_id}", params={"is_backup_id": "true"}),
           404, "itemNotFound")
    # a stranger's delete is "not found", as before sharing existed
    r = stranger("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "VolumeBackup.0110"

    # the owner's delete of a shared backup is refused until the shares are cancelled
    r = owner("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
    assert r.status_code == 400 and r.json()["error"]["code"] == "VolumeBackup.0105", r.text
    _fault(owner("DELETE", f"/v3/{{p}}/backups/{backup_id}"), 400, "badRequest")

    r = owner("DELETE", SHARING + f"/{share_id}")
    assert r.status_code == 200 and r.content == b""
    _fault(owner("DELETE", SHARING + f"/{share_id}"), 404, "itemNotFound")
    assert recipient("GET", SHARING + "/count", params={"share_to_me": "True"}).json() == {
        "count": 0}
    r = recipient("POST", f"/v2/{{p}}/cloudbackups/{backup_id}/restore",
                  json={"restore": {"volume_id": target}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "VolumeBackup.0111"

    # share again, then cancel all shares of the backup at once (twice: idempotent)
    assert owner.share(backup_id, recipient.project, stranger.project).status_code == 200
    assert owner("GET", SHARING + "/count").json() == {"count": 2}
    _fault(owner("DELETE", SHARING + f"/{backup_id}", params={"is_backup_id": "maybe"}),
           400, "badRequest")
    for _ in range(2):
        r = owner("DELETE", SHARING + f"/{backup_id}", params={"is_backup_id": "true"})
        assert r.status_code == 200, r.text
    assert owner("GET", SHARING + "/count").json() == {"count": 0}

    r = owner("POST", f"/v2/{{p}}/cloudbackups/{backup_id}")
    assert r.status_code == 200, r.text
    assert owner.wait_job(r.json()["job_id"])["status"] == "SUCCESS"


def test_recipient_sees_shared_backup_in_native_lists(
        world: tuple[Client, Client, Client]) -> None:
    owner, recipient, stranger = world
    backup_id = owner.backup(owner.volume("listed"), "listed-one")
    assert owner.share(backup_id, recipient.project).status_code == 200
    try:
        _native_views(owner, recipient, stranger, backup_id)
    finally:
        assert owner("DELETE", SHARING + f"/{backup_id}",
                     params={"is_backup_id": "true"}).status_code == 200


def _native_views(owner: Client, recipient: Client, stranger: Client, backup_id: str) -> None:
    for family, owner_key in (("v2", "os-bak-tenant-attr:tenant_id"),
                              ("v3", "os-backup-project-attr:project_id")):
        r = recipient("GET", f"/{family}/{{p}}/backups/detail")
        assert r.status_code == 200, r.text
        found = [b for b in r.json()["backups"] if b["id"] == backup_id]
        assert len(found) == 1, r.json()
        assert found[0][owner_key] == owner.project  # marked: owned by another project
        ids = [b["id"] for b in recipient("GET", f"/{family}/{{p}}/backups").json()["backups"]]
        assert backup_id in ids
        r = recipient("GET", f"/{family}/{{p}}/backups/{backup_id}")
        assert r.status_code == 200 and r.json()["backup"][owner_key] == owner.project
        ids = [b["id"] for b in stranger("GET", f"/{family}/{{p}}/backups").json()["backups"]]
        assert backup_id not in ids
        _fault(stranger("GET", f"/{family}/{{p}}/backups/{backup_id}"), 404, "itemNotFound")


def test_list_filters_sort_paging_and_count(world: tuple[Client, Client, Client]) -> None:
    owner, recipient, _ = world
    vols = [owner.volume(f"f{i}") for i in range(3)]
    ids = [owner.backup(v, n) for v, n in zip(vols, ("Alpha-x", "beta-x", "gamma-y"),
                                              strict=True)]
    for b in ids:
        assert owner.share(b, recipient.project).status_code == 200

    def names(who: Client, **params: str) -> list[str]:
        r = who("GET", SHARING + "/detail", params=params)
        assert r.status_code == 200, r.text
        return [s["backup"]["name"] for s in r.json()["shared"]]

    def count(who: Client, **params: str) -> int:
        r = who("GET", SHARING + "/count", params=params)
        assert r.status_code == 200, r.text
        return int(r.json()["count"])

    assert names(owner, sort_key="name", sort_dir="asc") == ["Alpha-x", "beta-x", "gamma-y"]
    assert names(owner, sort_key="name", sort_dir="DESC") == ["gamma-y", "beta-x", "Alpha-x"]
    assert names(owner, sort_key="name", sort_dir="asc", limit="2", offset="1") == [
        "beta-x", "gamma-y"]
    assert names(owner, sort_key="created_at", sort_dir="asc", limit="1") == ["Alpha-x"]
    assert names(owner) == ["gamma-y", "beta-x", "Alpha-x"]  # created_at desc by default
    assert sorted(names(owner, name="ALPHA")) == ["Alpha-x"]
    assert sorted(names(owner, name="-x")) == ["Alpha-x", "beta-x"]
    assert names(owner, name="%") == []  # LIKE wildcards are literal
    assert names(owner, volume_id=vols[1]) == ["beta-x"]
    assert names(owner, backup_id=ids[2]) == ["gamma-y"]
    assert names(recipient, share_to_me="1", from_project_id=owner.project,
                 sort_key="name", sort_dir="asc") == ["Alpha-x", "beta-x", "gamma-y"]
    assert names(recipient, share_to_me="true", to_project_id=owner.project) == []
    assert count(owner, to_project_id=recipient.project, name="x") == 2
    assert count(owner, status="available", limit="1") == 3  # paging ignored
    assert count(owner, status="error") == 0
    az = owner("GET", SHARING + "/detail").json()["shared"][0]["backup"]["availability_zone"]
    assert count(owner, availability_zone=az) == count(owner, avalilability_zone=az) == 3
    assert count(owner, availability_zone="nowhere") == 0
    for bad in ({"limit": "0"}, {"limit": "x"}, {"offset": "-1"}, {"sort_key": "colour"},
                {"sort_dir": "up"}, {"status": "bogus"}, {"share_to_me": "perhaps"}):
        _fault(owner("GET", SHARING + "/detail", params=bad), 400, "badRequest")
    _fault(owner("GET", SHARING + "/count", params={"status": "bogus"}), 400, "badRequest")
    for b in ids:
        assert owner("DELETE", SHARING + f"/{b}", params={"is_backup_id": "true"}
                     ).status_code == 200


def test_sharing_auth(world: tuple[Client, Client, Client]) -> None:
    owner, recipient, _ = world
    base = owner.server.base_url
    r = httpx.get(f"{base}/v2/{owner.project}/os-vendor-backup-sharing/detail")
    _fault(r, 401, "unauthorized")
    _fault(owner("GET", f"/v2/{recipient.project}/os-vendor-backup-sharing/detail"),
           403, "forbidden")
