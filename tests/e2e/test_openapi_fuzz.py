"""Schemathesis against the real server (issue 8, item 7).

Runs ``st run`` (the schemathesis CLI) on the server's own ``/openapi.json``
with a real token, the project id and real resource ids filled in as path
parameter examples, phases examples, coverage and fuzzing, and fails on any
5xx (``not_a_server_error``), any status, content type or body that the
document does not declare (``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``) and on any
schema error (the CLI exits non-zero). Bounded by ``--max-time``. The counts
of operations and cases are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import ProjectClient
from tests.support.server import RunningServer, start_server

ST = Path(sys.executable).parent / "st"  # from the ``test`` extra (pyproject)
MAX_TIME = 150
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("fuzz"))
    try:
        yield srv
    finally:
        srv.stop()


def _resources(c: ProjectClient) -> dict[str, str]:
    """Real ids for the path parameters, so cases reach the handlers' logic."""
    vol = c.volume("fuzz")
    r = c("POST", "/v2/{p}/cloudbackups", json={"backup": {"volume_id": vol, "name": "fz"}})
    assert r.status_code == 200, r.text
    job = c.wait_job(r.json()["job_id"])
    assert job["status"] == "SUCCESS", job
    snap = c("POST", "/v3/{p}/snapshots", json={"snapshot": {"volume_id": vol}})
    assert snap.status_code == 202, snap.text
    pol = c("POST", "/v2/{p}/backuppolicy", json={
        "backup_policy_name": "fuzz", "scheduled_policy": {
            "start_time": "02:00", "frequency": 1, "rentention_num": 2,
            "remain_first_backup_of_curMonth": "N", "status": "OFF"}})
    assert pol.status_code == 200, pol.text
    return {"project_id": c.project, "volume_id": vol, "backup_id": job["entities"]["backup_id"],
            "job_id": job["job_id"], "snapshot_id": snap.json()["snapshot"]["id"],
            "policy_id": pol.json()["backup_policy_id"], "key": "env",
            "share_id": "00000000-0000-0000-0000-000000000000"}


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_schema_mismatch(
        server: RunningServer, tmp_path: Path) -> None:
    client = ProjectClient(server)
    ids = _resources(client)
    doc = httpx.get(server.base_url + "/openapi.json", timeout=30).json()
    for item in doc["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] in ids:
                    param["example"] = ids[param["name"]]
                    if param["name"] == "project_id":  # other projects: see test_write_access
                        param["schema"] = {"type": "string", "enum": [ids["project_id"]]}
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(doc))
    cmd = [str(ST), "run", str(spec), "--url", server.base_url,
           "-H", f"X-Auth-Token: {client.http.headers['X-Auth-Token']}",
           "--phases", "examples,coverage,fuzzing", "--checks", CHECKS,
           "--max-examples", "15", "--max-time", str(MAX_TIME), "--seed", "8",
           "--continue-on-failure", "--request-timeout", "60", "--workers", "1",
           "--no-color", "--suppress-health-check", "all"]
    # cwd: schemathesis keeps its crash cache (.schemathesis/) in the working
    # directory; keep it out of the checkout.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=MAX_TIME + 240,
                          cwd=tmp_path)
    out = done.stdout
    tested = re.search(r"Tested:\s+(\d+)", out)
    cases = re.search(r"Test cases:\s*\n\s*(\d+) generated", out)
    summary = (f"operations tested: {tested.group(1) if tested else '?'}; "
               f"cases: {cases.group(1) if cases else '?'}\n")
    print(summary + out[-4000:])
    assert done.returncode == 0, out[-15000:] + done.stderr[-3000:]
    assert tested and int(tested.group(1)) == len(
        [op for item in doc["paths"].values() for op in item.values()])
    assert cases and int(cases.group(1)) > 0
