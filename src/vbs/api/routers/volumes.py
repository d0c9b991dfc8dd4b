"""Cinder volumes subset under ``/v2/{project_id}`` and ``/v3/{project_id}``
(openstack-compat §4, §6.1), plus the request plumbing the snapshots router shares.

=======  ==========================  =====================================
method   path (after the project)    answer
=======  ==========================  =====================================
POST     ``/volumes``                202 ``{"volume": detail}`` (already
                                     ``available``: creation is synchronous)
GET      ``/volumes``                200 ``{"volumes": [summary], "volumes_links"?, "count"?}``
GET      ``/volumes/detail``         200 ``{"volumes": [detail], ...}``
GET      ``/volumes/{id}``           200 ``{"volume": detail}``
DELETE   ``/volumes/{id}``           202, no body (``cascade``, ``force``)
=======  ==========================  =====================================

Decisions: creation completes before the reply (status ``available``);
openstacksdk's ``wait_for_status`` and cinderclient accept that. Unsupported
sources (``source_volid``, ``imageRef``, ``backup_id``, groups,
``multiattach``) and volume types other than ``__DEFAULT__`` are 400. Unknown
filters are 400 from 3.31 on and ignored before, as in Cinder;
``all_tenants`` is always ignored (lists are per project; see
:mod:`vbs.api.auth` for why there is no admin exception). ``force`` delete
needs the admin role. The snapshots router is mounted from here so the
family needs one ``ROUTER_MODULES`` entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict

from vbs.api.app import AppContext, public_base_url
from vbs.api.auth import NativePrincipal, Principal
from vbs.api.responses import OrjsonResponse
from vbs.api.schemas.backups import ApiFamily, LinkContext
from vbs.api.schemas.microversions import (
    MIN_VERSION,
    ApiVersion,
    negotiate_headers,
    response_headers,
)
from vbs.api.schemas.render import format_backup_time
from vbs.service.codes import NATIVE_BAD_REQUEST, NATIVE_FORBIDDEN, NATIVE_SERVICE_UNAVAILABLE, fail
from vbs.service.listing import collection_links, parse_int, parse_page_request, parse_query_bool
from vbs.service.volumes import (
    VOLUME_LIST,
    VolumeFilters,
    VolumeRecord,
    create_volume,
    delete_volume,
    get_volume,
    list_volumes,
)
from vbs.volumes import FileVolumeDriver

__all__ = [
    "DEFAULT_VOLUME_TYPE",
    "Call",
    "CinderCall",
    "VolumeCreate",
    "VolumeCreateBody",
    "cinder_call",
    "list_body",
    "native_filters",
    "render_volume_detail",
    "render_volume_summary",
    "resource_links",
    "router",
    "with_count",
]

DEFAULT_VOLUME_TYPE = "__DEFAULT__"
_VOLUME_TYPE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "vbs:volume-type:__DEFAULT__"))
_SERVICE_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "vbs:volume-service:file"))
_HOST = "vbs@file#file"
_PAGING_KEYS = frozenset(
    {"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count",
     "all_tenants", "project_id"}
)
_FILTERS_STRICT_FROM = (3, 31)
_WITH_COUNT_FROM = (3, 45)


# --------------------------------------------------------------------------- shared plumbing


@dataclass(frozen=True)
class CinderCall:
    """What every native volume/snapshot handler needs about its request."""

    ctx: AppContext
    principal: Principal
    family: ApiFamily
    version: ApiVersion
    links: LinkContext

    def reply(self, body: Any, status: int = 200) -> Response:
        """JSON (or, for ``body=None``, empty) reply with the v3 version headers."""
        headers = response_headers(self.version) if self.family == "v3" else {}
        if body is None:
            return Response(status_code=status, headers=headers)
        return OrjsonResponse(body, status_code=status, headers=headers)

    def driver(self) -> FileVolumeDriver:
        """The volume driver, or 503 when the composition root did not wire one."""
        driver = self.ctx.volume_driver
        if not isinstance(driver, FileVolumeDriver):
            fail(NATIVE_SERVICE_UNAVAILABLE, "The volume store is not configured.")
        return driver

    def at_least(self, version: tuple[int, int]) -> bool:
        return self.family == "v3" and self.version >= version


async def cinder_call(request: Request, principal: NativePrincipal) -> CinderCall:
    """Dependency: authenticate (native codes), negotiate the v3 microversion
    (and record it so faults echo it), and gather the link context. Async:
    it only reads the request, so it runs on the loop without a thread hop."""
    family: ApiFamily = "v3" if request.url.path.startswith("/v3/") else "v2"
    version = MIN_VERSION
    if family == "v3":
        version = negotiate_headers(request.headers)
        request.state.openstack_api_version = f"volume {version}"
    links = LinkContext(public_base_url(request), family, request.path_params.get("project_id"))
    return CinderCall(request.app.state.ctx, principal, family, version, links)


Call = Annotated[CinderCall, Depends(cinder_call)]


def resource_links(ctx: LinkContext, collection: str, ident: str) -> list[dict[str, str]]:
    """``self`` (versioned) and ``bookmark`` (unversioned) links (openstack-compat §4.4)."""
    project = f"/{ctx.project_id}" if ctx.project_id else ""
    return [
        {"href": f"{ctx.root}/{ctx.family}{project}/{collection}/{ident}", "rel": "self"},
        {"href": f"{ctx.root}{project}/{collection}/{ident}", "rel": "bookmark"},
    ]


def native_filters(call: CinderCall, query: Mapping[str, str], allowed: frozenset[str]
                   ) -> dict[str, str]:
    """The filter parameters of a list query; unknown ones are 400 from 3.31
    (Cinder's "Invalid filters ... are found in query options.") and dropped before."""
    filters = {k: v for k, v in query.items() if k not in _PAGING_KEYS}
    unknown = sorted(k for k in filters if k not in allowed)
    if unknown and call.at_least(_FILTERS_STRICT_FROM):
        fail(NATIVE_BAD_REQUEST, f"Invalid filters {', '.join(unknown)} are found in query "
                                 "options.")
    return {k: v for k, v in filters.items() if k in allowed}


def with_count(call: CinderCall, query: Mapping[str, str]) -> bool:
    raw = query.get("with_count")
    if raw is None or not call.at_least(_WITH_COUNT_FROM):
        return False
    return parse_query_bool("with_count", raw, invalid=NATIVE_BAD_REQUEST)


def list_body(call: CinderCall, request: Request, key: str, items: list[dict[str, Any]],
              *, limit: int, last_id: str | None, has_more: bool, count: int | None
              ) -> dict[str, Any]:
    """``{key: items, key_links?: [next], count?: n}`` with Cinder's absolute next link."""
    body: dict[str, Any] = {key: items}
    url = public_base_url(request) + request.url.path
    links = collection_links(url, list(request.query_params.multi_items()), limit=limit,
                             last_id=last_id, has_more=has_more)
    if links:
        body[f"{key}_links"] = links
    if count is not None:
        body["count"] = count
    return body


# --------------------------------------------------------------------------- rendering


def render_volume_summary(v: VolumeRecord, links: LinkContext) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "links": resource_links(links, "volumes", v.id)}


def _attachments(v: VolumeRecord) -> list[dict[str, Any]]:
    if v.attached_to is None:
        return []
    return [{"id": v.id, "volume_id": v.id, "server_id": v.attached_to,
             "attachment_id": None, "host_name": None, "device": None, "attached_at": None}]


def render_volume_detail(v: VolumeRecord, call: CinderCall) -> dict[str, Any]:
    """Detail view of openstack-compat §6.1 at the call's microversion."""
    body: dict[str, Any] = {
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "status": v.status,
        "size": v.size_gb,
        "availability_zone": v.availability_zone,
        "created_at": format_backup_time(v.created_at),
        "updated_at": format_backup_time(v.updated_at),
        "volume_type": DEFAULT_VOLUME_TYPE,
        "snapshot_id": v.snapshot_id,
        "source_volid": None,
        "metadata": dict(v.metadata),
        "links": resource_links(call.links, "volumes", v.id),
        "user_id": v.user_id,
        "bootable": "true" if v.bootable else "false",
        "encrypted": False,
        "replication_status": None,
        "consistencygroup_id": None,
        "multiattach": False,
        "attachments": _attachments(v),
        "os-vol-tenant-attr:tenant_id": v.project_id,
    }
    admin = call.principal.is_admin
    if admin:
        body.update({
            "migration_status": None,
            "os-vol-host-attr:host": _HOST,
            "os-vol-mig-status-attr:migstat": None,
            "os-vol-mig-status-attr:name_id": None,
        })
    if call.at_least((3, 13)):
        body["group_id"] = None
    if admin and call.at_least((3, 21)):
        body["provider_id"] = None
    if call.at_least((3, 48)):
        body["shared_targets"] = False
        body["service_uuid"] = _SERVICE_UUID
    if admin and call.at_least((3, 61)):
        body["cluster_name"] = None
    if call.at_least((3, 63)):
        body["volume_type_id"] = _VOLUME_TYPE_ID
    if call.at_least((3, 65)):
        body["consumes_quota"] = True
    return body


# --------------------------------------------------------------------------- requests


class _Lenient(BaseModel):
    # Clients send many optional Cinder members (often null); unknown ones are ignored.
    model_config = ConfigDict(extra="ignore")


class VolumeCreate(_Lenient):
    size: Any = None
    name: Any = None
    description: Any = None
    availability_zone: Any = None
    metadata: Any = None
    volume_type: str | None = None
    snapshot_id: str | None = None
    source_volid: str | None = None
    imageRef: str | None = None  # noqa: N815 - Cinder's spelling
    backup_id: str | None = None
    consistencygroup_id: str | None = None
    group_id: str | None = None
    multiattach: bool | None = None


class VolumeCreateBody(_Lenient):
    volume: VolumeCreate


def _unsupported(v: VolumeCreate) -> None:
    for field in ("source_volid", "imageRef", "backup_id", "consistencygroup_id", "group_id"):
        if getattr(v, field) is not None:
            fail(NATIVE_BAD_REQUEST, f"Invalid input received: creating a volume with "
                                     f"'{field}' is not supported by this service.")
    if v.multiattach:
        fail(NATIVE_BAD_REQUEST, "Invalid input received: multiattach volumes are not "
                                 "supported by this service.")
    if v.volume_type not in (None, DEFAULT_VOLUME_TYPE):
        fail(NATIVE_BAD_REQUEST, f"Invalid input received: volume type '{v.volume_type}' "
                                 f"does not exist; the only type is {DEFAULT_VOLUME_TYPE}.")


def _volume_filters(call: CinderCall, query: Mapping[str, str]) -> VolumeFilters:
    f = native_filters(call, query, frozenset(
        {"name", "name~", "status", "bootable", "availability_zone", "size"}))
    return VolumeFilters(
        name=f.get("name"),
        name_contains=f.get("name~"),
        status=f.get("status"),
        bootable=None if "bootable" not in f else parse_query_bool(
            "bootable", f["bootable"], invalid=NATIVE_BAD_REQUEST),
        availability_zone=f.get("availability_zone"),
        size=None if "size" not in f else parse_int(
            "size", f["size"], minimum=0, invalid=NATIVE_BAD_REQUEST),
    )


# --------------------------------------------------------------------------- handlers

router = APIRouter(tags=["volumes"])


@router.post("/v3/{project_id}/volumes", status_code=202, summary="Create a volume")
@router.post("/v2/{project_id}/volumes", status_code=202, include_in_schema=False)
def create_volume_handler(body: VolumeCreateBody, call: Call) -> Response:
    v = body.volume
    _unsupported(v)
    size = None if v.size is None else parse_int("size", v.size, minimum=1,
                                                  invalid=NATIVE_BAD_REQUEST)
    if size is None and v.snapshot_id is None:
        fail(NATIVE_BAD_REQUEST, "Invalid input received: 'size' is required unless the "
                                 "volume is created from a snapshot.")
    driver = call.driver()
    with call.ctx.db.session() as session:
        record = create_volume(
            session, driver, call.principal.project_id, size, v.name, v.description,
            v.metadata, user_id=call.principal.user_id,
            availability_zone=v.availability_zone, snapshot_id=v.snapshot_id,
        )
    return call.reply({"volume": render_volume_detail(record, call)}, 202)


def _list(call: CinderCall, request: Request, *, detail: bool) -> Response:
    query = dict(request.query_params)
    page = parse_page_request(query, VOLUME_LIST)
    filters = _volume_filters(call, query)
    counted = with_count(call, query)
    with call.ctx.db.session() as session:
        result = list_volumes(session, call.principal.project_id, page, filters,
                              with_count=counted)
    items = [render_volume_detail(v, call) if detail else render_volume_summary(v, call.links)
             for v in result.items]
    last = result.items[-1].id if result.items else None
    return call.reply(list_body(call, request, "volumes", items, limit=page.limit,
                                last_id=last, has_more=result.has_more, count=result.count))


@router.get("/v3/{project_id}/volumes", summary="List volumes")
@router.get("/v2/{project_id}/volumes", include_in_schema=False)
def list_volumes_handler(request: Request, call: Call) -> Response:
    return _list(call, request, detail=False)


@router.get("/v3/{project_id}/volumes/detail", summary="List volumes with details")
@router.get("/v2/{project_id}/volumes/detail", include_in_schema=False)
def list_volumes_detail_handler(request: Request, call: Call) -> Response:
    return _list(call, request, detail=True)


@router.get("/v3/{project_id}/volumes/{volume_id}", summary="Show a volume")
@router.get("/v2/{project_id}/volumes/{volume_id}", include_in_schema=False)
def show_volume_handler(volume_id: str, call: Call) -> Response:
    with call.ctx.db.session() as session:
        record = get_volume(session, call.principal.project_id, volume_id)
    return call.reply({"volume": render_volume_detail(record, call)})


@router.delete("/v3/{project_id}/volumes/{volume_id}", status_code=202,
               response_class=Response,
               summary="Delete a volume")
@router.delete("/v2/{project_id}/volumes/{volume_id}", status_code=202, include_in_schema=False)
def delete_volume_handler(volume_id: str, request: Request, call: Call) -> Response:
    query = request.query_params
    cascade = parse_query_bool("cascade", query.get("cascade", "false"),
                               invalid=NATIVE_BAD_REQUEST)
    force = parse_query_bool("force", query.get("force", "false"), invalid=NATIVE_BAD_REQUEST)
    if force and not call.principal.is_admin:
        fail(NATIVE_FORBIDDEN, "Policy doesn't allow volume:force_delete to be performed.")
    driver = call.driver()
    with call.ctx.db.session() as session:
        delete_volume(session, driver, call.principal.project_id, volume_id,
                      cascade=cascade, force=force)
    return call.reply(None, 202)


def _mount_snapshots() -> None:
    from vbs.api.routers.snapshots import router as snapshots_router

    router.include_router(snapshots_router)


_mount_snapshots()
