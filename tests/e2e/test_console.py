"""The web console (``/console``) in a real browser against a real server.

Debian's Chromium, driven by Playwright (``executable_path=/usr/bin/chromium``;
no browser download). Every action goes through the console's pages, the
console goes through the public API, and the outcomes are checked on the
server: the restored volume files are compared byte for byte (SHA-256) with
the original, and API answers are compared with what the pages show.

A screenshot of every page lands in ``tmp_path/shots`` (and in
``$VBS_CONSOLE_SHOTS`` when set, for reviewing the layout).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import ProjectClient
from tests.support.server import RunningServer, start_server
from tests.support.volumes import MIB, file_sha256

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 60_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("console"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # root in a container
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield b
        finally:
            b.close()


class Shots:
    """Numbered full-page screenshots under tmp_path (copied to $VBS_CONSOLE_SHOTS)."""

    def __init__(self, page: Any, tmp_path: Path, prefix: str) -> None:
        self.page, self.dir, self.prefix, self.n = page, tmp_path / "shots", prefix, 0
        self.dir.mkdir()

    def __call__(self, name: str) -> None:
        self.n += 1
        path = self.dir / f"{self.prefix}-{self.n:02d}-{name}.png"
        self.page.wait_for_timeout(150)  # let the last re-render and transitions settle
        # Layout check: no panel needs a horizontal scroll bar at 1440 px (nothing cut off).
        overflowing = self.page.evaluate(
            "[...document.querySelectorAll('.panel')].filter(p => p.scrollWidth > p.clientWidth)"
            ".map(p => p.getAttribute('aria-label') || p.textContent.slice(0, 40))")
        assert overflowing == [], f"{name}: panels wider than the page: {overflowing}"
        self.page.screenshot(path=str(path), full_page=True)
        target = os.environ.get("VBS_CONSOLE_SHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()
    assert errors == [], f"JavaScript errors in the console: {errors}"


def _login(page: Any, server: RunningServer, password: str | None = None,
           user: str | None = None, project: str | None = None) -> None:
    form = page.locator("#login-form")
    form.get_by_label("User name").fill(user or server.admin_user)
    form.get_by_label("Password").fill(password if password is not None else server.admin_password)
    form.get_by_label("Project").fill(project or server.admin_project)
    form.get_by_role("button", name="Log in").click()


def _row(page: Any, text: str) -> Any:
    return page.locator("#view tbody tr", has_text=text)


def _dialog(page: Any) -> Any:
    return page.locator("#dialog")


def _job_done(page: Any, label: str) -> Any:
    """On the Jobs page: wait for the job labelled ``label`` to succeed."""
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    row = _row(page, label)
    expect(row.locator(".badge")).to_have_text("SUCCESS", timeout=WAIT_MS)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    return row


def _volume_id(page: Any, name: str) -> str:
    page.goto(page.url.split("#")[0] + "#/volumes")
    row = _row(page, name)
    expect(row.locator(".badge")).to_have_text("available", timeout=WAIT_MS)
    vid: str = row.get_attribute("data-id")
    return vid


def test_console_backup_restore_delete_round_trip(server: RunningServer, page: Any,
                                                  tmp_path: Path) -> None:
    shot = Shots(page, tmp_path, "a")
    api = ProjectClient(server)
    page.goto(server.base_url + "/console")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot("login")

    # A wrong password shows the Keystone error's own code and message.
    wrong = server.login(password="not-the-password")
    assert wrong.status_code == 401
    _login(page, server, password="not-the-password")
    alert = page.locator("#login-alert [role=alert]")
    expect(alert).to_contain_text("401 Unauthorized")
    expect(alert).to_contain_text(wrong.json()["error"]["message"])
    shot("login-error")

    _login(page, server)
    expect(page.get_by_role("heading", name="Volumes")).to_be_visible()
    expect(page.locator("#who-project")).to_have_text("admin")

    # Create a volume from the console and write known bytes into its file.
    page.get_by_role("button", name="Create volume").click()
    _dialog(page).get_by_label("Volume name").fill("console-src")
    _dialog(page).get_by_label("Size (GiB)").fill("1")
    _dialog(page).get_by_role("button", name="Create").click()
    src = _volume_id(page, "console-src")
    src_file = server.data_dir / "volumes" / f"{src}.img"
    with open(src_file, "r+b") as f:
        f.seek(1 * MIB)
        f.write(os.urandom(3 * MIB))
        f.seek(700 * MIB)
        f.write(b"console known bytes " * 5000)
    digest = file_sha256(src_file)
    shot("volumes")

    # Back it up from the console; the Jobs page follows the job to SUCCESS.
    _row(page, "console-src").get_by_role("button", name="Back up").click()
    # A refused request keeps the dialog open and shows the VBS error code and message.
    _dialog(page).get_by_label("Backup name").fill("autobk-by-hand")
    _dialog(page).get_by_role("button", name="Back up").click()
    refused = api("POST", "/v2/{p}/cloudbackups",
                  json={"backup": {"volume_id": src, "name": "autobk-by-hand"}})
    assert refused.status_code == 400
    alert = _dialog(page).get_by_role("alert")
    expect(alert).to_contain_text(refused.json()["error"]["code"])
    expect(alert).to_contain_text(refused.json()["error"]["message"])
    _dialog(page).get_by_label("Backup name").fill("console-bk")
    _dialog(page).get_by_label("Tags").fill("env=test")
    shot("backup-dialog")
    _dialog(page).get_by_role("button", name="Back up").click()
    job_row = _job_done(page, "as console-bk")
    job_id = job_row.get_attribute("data-id")
    job = api.wait_job(job_id)
    assert job["status"] == "SUCCESS" and job["job_type"] == "bksCreateBackup"
    assert job["progress"]["total"] > 0 and job["progress"]["done"] == job["progress"]["total"]
    backup_id = job["entities"]["backup_id"]
    expect(job_row).to_contain_text(backup_id)
    expect(job_row.get_by_role("progressbar")).to_contain_text("100% · 1.0 GiB / 1.0 GiB")
    shot("jobs")

    page.get_by_role("link", name="Backups").click()
    bk_row = _row(page, "console-bk")
    expect(bk_row.locator(".badge")).to_have_text("available")
    assert bk_row.get_attribute("data-id") == backup_id
    expect(bk_row.locator("td[data-col='Size / type']")).to_contain_text("full")

    # Tags: written as native metadata, read back by the API and shown as chips.
    bk_row.get_by_role("button", name="Tags").click()
    _dialog(page).get_by_label("Tags").fill("env=test\nowner=console")
    _dialog(page).get_by_role("button", name="Save tags").click()
    expect(_row(page, "console-bk").locator(".chip", has_text="owner=console")).to_be_visible()
    shown = api("GET", f"/v3/{{p}}/backups/{backup_id}",
                headers={"OpenStack-API-Version": "volume 3.43"}).json()["backup"]
    assert shown["metadata"] == {"env": "test", "owner": "console"}
    shot("backups")

    # Restore to a new volume: the console creates it and restores into it.
    _row(page, "console-bk").get_by_role("button", name="Restore").click()
    _dialog(page).get_by_label("New volume name").fill("console-restored")
    shot("restore-dialog")
    _dialog(page).get_by_role("button", name="Restore").click()
    _job_done(page, "to new volume console-restored")
    restored = _volume_id(page, "console-restored")
    assert restored != src
    assert file_sha256(server.data_dir / "volumes" / f"{restored}.img") == digest

    # Restore onto the existing (now damaged) source volume.
    with open(src_file, "r+b") as f:
        f.seek(2 * MIB)
        f.write(b"\xff" * MIB)
    assert file_sha256(src_file) != digest
    page.get_by_role("link", name="Backups").click()
    _row(page, "console-bk").get_by_role("button", name="Restore").click()
    _dialog(page).get_by_label("An existing volume").check()
    _dialog(page).get_by_label("Target volume").select_option(src)
    _dialog(page).get_by_role("button", name="Restore").click()
    _job_done(page, "Restore console-bk to console-src")
    assert file_sha256(src_file) == digest

    # Delete the backup (a job) and the restored volume from the console.
    page.get_by_role("link", name="Backups").click()
    _row(page, "console-bk").get_by_role("button", name="Delete").click()
    _dialog(page).get_by_role("button", name="Delete").click()
    page.get_by_role("link", name="Jobs").click()
    _job_done(page, "Delete backup console-bk")
    page.get_by_role("link", name="Backups").click()
    expect(_row(page, "console-bk")).to_have_count(0)
    assert api("GET", f"/v3/{{p}}/backups/{backup_id}").status_code == 404

    page.get_by_role("link", name="Volumes").click()
    _row(page, "console-restored").get_by_role("button", name="Delete").click()
    _dialog(page).get_by_role("button", name="Delete").click()
    expect(_row(page, "console-restored")).to_have_count(0)
    assert api("GET", f"/v3/{{p}}/volumes/{restored}").status_code == 404
    assert not (server.data_dir / "volumes" / f"{restored}.img").exists()

    page.get_by_role("link", name="Quotas").click()
    card = page.locator(".quota-card[data-type=backups]")
    quota = api("GET", "/v2/{p}/cloudbackups/quota").json()["quotas"]["resources"]
    used = next(r["used"] for r in quota if r["type"] == "backups")
    expect(card.locator(".quota-used")).to_have_text(str(used))
    shot("quotas")


def test_console_policies_and_sharing(server: RunningServer, page: Any, tmp_path: Path) -> None:
    shot = Shots(page, tmp_path, "b")
    api = ProjectClient(server)
    for args in (("project", "create", "console-peer"),
                 ("user", "create", "peer", "--password", "peer-pw", "--project", "console-peer")):
        out = server.cli("admin", *args)
        assert out.returncode == 0, out.stderr
    peer = ProjectClient(server, "peer", "peer-pw", "console-peer")
    vol = api.volume("console-pol")

    page.goto(server.base_url + "/console/#/policies")
    _login(page, server)
    expect(page.get_by_role("heading", name="Policies")).to_be_visible()

    # Create a policy (OFF: only run by hand), bind the volume, run it now.
    page.get_by_role("button", name="Create policy").click()
    _dialog(page).get_by_label("Policy name").fill("console-nightly")
    _dialog(page).get_by_label("Status").select_option("OFF")
    shot("policy-dialog")
    _dialog(page).get_by_role("button", name="Create").click()
    row = _row(page, "console-nightly")
    expect(row.locator(".badge")).to_have_text("OFF")
    row.get_by_role("button", name="Bind volumes").click()
    _dialog(page).get_by_label("console-pol").check()
    _dialog(page).get_by_role("button", name="Bind").click()
    expect(_row(page, "console-nightly").locator("td.num")).to_have_text("1")
    _row(page, "console-nightly").get_by_role("button", name="Run now").click()
    task = page.locator("section[aria-label=Tasks] tbody tr").first
    expect(task.locator(".badge")).to_have_text("EXECUTE_SUCCESS", timeout=WAIT_MS)
    expect(task).to_contain_text("console-pol")
    shot("policy-tasks")
    backups = api("GET", "/v3/{p}/backups/detail", params={"volume_id": vol}).json()["backups"]
    [auto] = [b for b in backups if b["name"].startswith("autobk_")]
    assert auto["status"] == "available"

    # Share the policy's backup with the peer project from the Backups page.
    page.get_by_role("link", name="Backups").click()
    _row(page, auto["name"]).get_by_role("button", name="Share").click()
    _dialog(page).get_by_label("Project IDs").fill(peer.project)
    _dialog(page).get_by_role("button", name="Share").click()
    expect(_dialog(page)).not_to_be_visible()
    seen = peer("GET", "/v2/{p}/os-vendor-backup-sharing/detail",
                params={"share_to_me": "true"}).json()["shared"]
    assert [s["backup_id"] for s in seen] == [auto["id"]]

    # Sharing it again is refused: the dialog shows the API's fault code and message.
    _row(page, auto["name"]).get_by_role("button", name="Share").click()
    _dialog(page).get_by_label("Project IDs").fill(peer.project)
    _dialog(page).get_by_role("button", name="Share").click()
    again = api("POST", "/v2/{p}/os-vendor-backup-sharing",
                json={"shared": {"backup_id": auto["id"], "to_project_ids": [peer.project]}})
    assert again.status_code == 400
    alert = _dialog(page).get_by_role("alert")
    expect(alert).to_contain_text("badRequest 400")
    expect(alert).to_contain_text(again.json()["badRequest"]["message"])
    shot("share-error")
    _dialog(page).get_by_role("button", name="Cancel").click()

    # The recipient (a member, not an admin) sees it as shared with its project.
    page.get_by_role("button", name="Log out").click()
    _login(page, server, "peer-pw", "peer", "console-peer")
    page.get_by_role("link", name="Sharing").click()
    theirs = page.locator("section[aria-label='Shared with this project'] tbody tr",
                          has_text=auto["name"])
    expect(theirs).to_contain_text(api.project)
    expect(page.get_by_role("link", name="Import")).to_be_hidden()
    shot("sharing-recipient")
    page.get_by_role("button", name="Log out").click()
    _login(page, server)

    page.get_by_role("link", name="Sharing").click()
    shared_by = "section[aria-label='Shared by this project'] tbody tr"
    mine = page.locator(shared_by, has_text=auto["name"])
    expect(mine).to_contain_text(peer.project)
    shot("sharing")
    mine.get_by_role("button", name="Cancel sharing").click()
    _dialog(page).get_by_role("button", name="Cancel sharing").click()
    expect(page.locator(shared_by, has_text=auto["name"])).to_have_count(0)
    assert peer("GET", "/v2/{p}/os-vendor-backup-sharing/detail",
                params={"share_to_me": "true"}).json()["shared"] == []

    page.get_by_role("link", name="Import").click()
    expect(page.get_by_label("Import command")).to_contain_text(
        "vbs admin volume import /path/to/image-or-device --project admin")
    page.get_by_label("Source path").fill("/srv/images/db.img")
    page.get_by_label("Volume name").fill("db")
    expect(page.get_by_label("Import command")).to_contain_text(
        "import /srv/images/db.img --project admin --name db")
    shot("import")
