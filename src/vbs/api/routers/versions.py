"""Cinder-style version documents at ``/``, ``/v2`` and ``/v3`` (openstack-compat.md §2).

One document serves Cinder *and* Keystone-style discovery at ``/`` (300, as
Cinder answers) and ``/v3``, ``/v3/`` (200): a list under ``versions`` with a
single ``v3.0`` entry carrying the microversion range 3.0–3.71 and a ``self``
link to ``{base}/v3/``. It deliberately has no ``v2.0`` entry: keystoneauth's
generic plugin would otherwise pick v2 auth for users without domain hints
(§2.1). ``/v2`` answers its own one-entry document (status DEPRECATED), the
shape Cinder gave for it. No authentication: clients fetch these without a
token, and a 401 here breaks login.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from vbs.api.app import public_base_url

__all__ = ["MAX_MICROVERSION", "MIN_MICROVERSION", "router", "v2_entry", "v3_entry"]

MIN_MICROVERSION = "3.0"
MAX_MICROVERSION = "3.71"
_UPDATED = "2024-01-01T00:00:00Z"
_DESCRIBED_BY = {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}

router = APIRouter(tags=["versions"])


def v3_entry(base: str) -> dict[str, Any]:
    """The ``v3.0`` entry (keystoneauth needs ``id`` v3*, status CURRENT, self link)."""
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX_MICROVERSION,
        "min_version": MIN_MICROVERSION,
        "updated": _UPDATED,
        "links": [_DESCRIBED_BY, {"rel": "self", "href": f"{base}/v3/"}],
        "media-types": [
            {"base": "application/json",
             "type": "application/vnd.openstack.volume+json;version=3"}
        ],
    }


def v2_entry(base: str) -> dict[str, Any]:
    """The legacy ``v2.0`` entry: no microversions, served only at ``/v2``."""
    return {
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": _UPDATED,
        "links": [_DESCRIBED_BY, {"rel": "self", "href": f"{base}/v2/"}],
        "media-types": [
            {"base": "application/json",
             "type": "application/vnd.openstack.volume+json;version=2"}
        ],
    }


@router.get("/", status_code=300, summary="Version discovery (Cinder root, 300)")
def root_versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [v3_entry(public_base_url(request))]}, status_code=300)


@router.get("/v3", summary="Version discovery for v3 (Cinder and Keystone clients)")
@router.get("/v3/", include_in_schema=False)
def v3_versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [v3_entry(public_base_url(request))]})


@router.get("/v2", summary="Version discovery for the legacy v2 API")
@router.get("/v2/", include_in_schema=False)
def v2_versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [v2_entry(public_base_url(request))]})
