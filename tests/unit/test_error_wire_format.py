"""The error format follows the routed path, even one whose segments hold
characters that URL rebuilding strips (found by the schemathesis run)."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from vbs.api.errors import error_response


def _request(path: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
                    "root_path": "", "scheme": "http", "query_string": b"", "headers": [],
                    "server": ("127.0.0.1", 8799), "client": ("127.0.0.1", 1)})


@pytest.mark.parametrize("path", ["/v2/\t/backuppolicy/x/tags/action",
                                  "/v2/a\nb/backuppolicy", "/v2/p/backuppolicy"])
def test_policy_paths_answer_in_the_ext_error_format(path: str) -> None:
    r = error_response(_request(path), 403, "no", "AutoBackup.0213")
    assert json.loads(r.body) == {"error": {"code": "AutoBackup.0213", "message": "no"}}


@pytest.mark.parametrize("path", ["/v2/\t/cloudbackups", "/v1/\t/jobs/x"])
def test_vbs_paths_answer_in_the_ext_error_format(path: str) -> None:
    r = error_response(_request(path), 403, "no", "VolumeBackup.0042")
    assert json.loads(r.body)["error"]["code"] == "VolumeBackup.0042"


def test_native_paths_answer_in_the_cinder_format() -> None:
    r = error_response(_request("/v3/\t/backups"), 404, "gone")
    assert json.loads(r.body) == {"itemNotFound": {"code": 404, "message": "gone"}}
