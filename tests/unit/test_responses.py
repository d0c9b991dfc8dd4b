"""orjson replies carry the bytes Starlette's stdlib JSONResponse sent."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from fastapi.responses import JSONResponse

from vbs.api.responses import OrjsonResponse, dumps
from vbs.api.schemas.backups import BackupView, LinkContext, ServiceMetadata
from vbs.api.schemas.render import render_backup_detail, render_backup_list
from vbs.service.backup_rules import Tag

VIEW = BackupView(
    id="9b7c1e42-5d3a-4f08-b6e1-2a4c6e8f0a13", project_id="4f1c0f6a9d2b4e2c8a7b3c5d6e7f8091",
    volume_id="3e0d6a2b-8f61-4c7e-9a54-1b2c3d4e5f60", status="available", size=40,
    created_at=datetime(2024, 3, 5, 10, 15, 42, 123456), updated_at=None,
    data_timestamp=datetime(2024, 3, 5, 10, 15, 40, 2211),
    name="vor-dem-Patch",
    description="Sicherung \u00fcber Nacht \u2013 \U0001f4be \"quoted\" \\ </",
    metadata=(("owner", "\u00e9quipe"), ("\u5bc6\u94a5", "\u503c")),
    tags=(Tag("env", "prod\u00e9"),), service_metadata=ServiceMetadata(progress=100),
)
LINKS = LinkContext("https://vbs.example.internal", "v3", VIEW.project_id)

BODIES: list[Any] = [
    {"backup": render_backup_detail(VIEW, LINKS, (3, 64))},
    render_backup_list([VIEW, VIEW], LinkContext("http://h", "v2", "p"), detail=True),
    {"none": None, "t": True, "f": False, "n": 0, "neg": -7, "big": 2**63 - 1, "e": [], "o": {}},
    {"control": "\x00\x1f\x7f\u2028\u2029", "tuple": (1, "a")},
    {1: "int key", "s": "str key"},
    [1, [2, [3, {"deep": "\ud7ff"}]]],
    "plain string",
    None,
]


def _stdlib(content: Any) -> bytes:
    return bytes(JSONResponse(content).body)


@pytest.mark.parametrize("content", BODIES)
def test_same_bytes_as_starlette(content: Any) -> None:
    assert dumps(content) == _stdlib(content)
    assert bytes(OrjsonResponse(content).body) == _stdlib(content)


def test_values_orjson_refuses_go_to_the_stdlib_encoder() -> None:
    huge = {"n": 2**70}
    assert dumps(huge) == _stdlib(huge) == b'{"n":1180591620717411303424}'
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_non_ascii_is_utf8_and_round_trips() -> None:
    body = dumps(BODIES[0])
    assert "\u00fcber".encode() in body and b"\\u" not in body.replace(b"\\\\", b"")
    assert json.loads(body) == json.loads(_stdlib(BODIES[0]))
    assert json.loads(body)["backup"]["updated_at"] is None
    assert json.loads(body)["backup"]["created_at"] == "2024-03-05T10:15:42.123456"


def test_json_columns_read_back_what_either_encoder_wrote() -> None:
    from vbs.db.session import load_json

    assert load_json('{"a": "\u00e9", "n": null, "l": [1, 2.5]}') == {"a": "\u00e9", "n": None,
                                                                       "l": [1, 2.5]}
    nan = load_json(json.dumps({"x": float("nan"), "y": float("inf")}))
    assert nan["x"] != nan["x"] and nan["y"] == float("inf")
    with pytest.raises(ValueError):
        load_json("{not json")
