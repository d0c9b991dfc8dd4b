"""The OpenAPI document and the offline ``/docs`` (issue 8, item 6).

Built in-process (no server needed): every path parameter is declared, no
operation documents 422, operation ids are unique, every write that takes a
body documents its schema, and every operation documents the 400/401/403/
404/413 bodies in its path's wire format.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vbs.api.app import AppContext, create_app
from vbs.config import load_settings
from vbs.db.session import Database

BODYLESS_WRITES = {
    ("post", "/v2/{project_id}/cloudbackups/{backup_id}"),  # delete, deprecated form
    ("post", "/v2/{project_id}/backuppolicy/{policy_id}/action"),  # #29: body ignored
    ("post", "/v2/{project_id}/cloudbackups/{backup_id}/exports/{export_id}/renew"),  # no body
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    d: Path = tmp_path_factory.mktemp("openapi")
    settings = load_settings(None, d, environ={})
    app = create_app(AppContext(settings=settings, db=Database(f"sqlite:///{d}/vbs.db")))
    return TestClient(app)


@pytest.fixture(scope="module")
def doc(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def _ops(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def test_every_path_parameter_is_declared(doc: dict[str, Any]) -> None:
    for method, path, op in _ops(doc):
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"{([^}]+)}", path)), (method, path)
    assert any("{key}" in p for p in doc["paths"])  # the policy tag route


def test_no_422_unique_ids_and_real_error_bodies(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _ops(doc)]
    assert len(ids) == len(set(ids))
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for method, path, op in _ops(doc):
        responses = op["responses"]
        assert "422" not in responses, (method, path)
        for status in ("400", "401", "403", "404", "413"):
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            name = ref.rsplit("/", 1)[-1]
            expected = ("ExtError" if re.search(r"/(cloudbackups|jobs|backuppolicy)", path)
                        else "KeystoneError" if path.startswith("/identity") else "NativeFault")
            assert name == expected, (method, path, name)


def test_every_write_documents_its_body(doc: dict[str, Any]) -> None:
    for method, path, op in _ops(doc):
        if method not in ("post", "put", "patch") or (method, path) in BODYLESS_WRITES:
            continue
        schema = op.get("requestBody", {}).get("content", {}).get("application/json")
        assert schema, (method, path)
        ref = schema["schema"].get("$ref", "")
        if ref:
            assert ref.rsplit("/", 1)[-1] in doc["components"]["schemas"], ref
    vbs = doc["paths"]["/v2/{project_id}/cloudbackups"]["post"]["requestBody"]
    model = vbs["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert doc["components"]["schemas"][model]["required"] == ["backup"]


def test_docs_are_served_without_internet(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    assert urls and all(u.startswith("/docs/static/") for u in urls), urls
    assert "cdn" not in page.text.lower()
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    bundle = client.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
