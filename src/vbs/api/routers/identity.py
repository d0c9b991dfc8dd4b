"""Keystone v3 subset under ``/identity/v3`` (openstack-compat.md §3).

* ``GET /identity`` (300) and ``GET /identity/v3`` (200): Keystone-shaped
  discovery (``{"versions": {"values": [...]}}`` / ``{"version": {...}}``),
  mandatory because identity lives under a prefix (§1, last paragraph).
* ``POST /identity/v3/auth/tokens``: methods ``password`` (user by id, or name
  + domain id/name; a bare name means domain ``default``) and ``token``
  (re-scope, never outliving the original). Scope: project by id or by name
  + domain (no domain = ``default``); no scope uses the user's default
  project. Unscoped, domain, system and trust scopes get 401: every VBS
  resource is project-scoped, so such a token could do nothing. Answer:
  201, ``X-Subject-Token``, token body with catalog (omitted with
  ``?nocatalog``).
* ``GET|HEAD|DELETE /identity/v3/auth/tokens``: validate / check / revoke
  ``X-Subject-Token``; the caller (``X-Auth-Token``) must be an admin or the
  token's own user. Unknown subject: 404.

The same token routes are served at ``/v3/auth/tokens`` so clients following
the one-origin layout (``auth_url = {base}/v3``, §1 and §8) work unchanged;
``/v3`` discovery points there through its ``self`` link.

Errors use Keystone's body ``{"error": {"code", "title", "message"}}``
(chosen by path in :mod:`vbs.api.errors`).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vbs.api.app import AppContext, get_context, public_base_url
from vbs.api.login_limit import LoginLimiter
from vbs.errors import ServiceError
from vbs.identity import (
    ROLE_IDS,
    AuthenticationFailed,
    IdentityNotFound,
    InvalidIdentityInput,
    TokenInfo,
    TokenNotValid,
    authenticate_password,
    find_project,
    get_project,
    get_user,
    issue_token,
    revoke_token,
    validate_token,
)

__all__ = ["AuthRequest", "catalog", "router", "token_body"]

router = APIRouter(tags=["identity"])

REGION = "RegionOne"
_INTERFACES = ("public", "internal", "admin")
_NS = uuid.UUID("0b5c3e8e-2f4d-4a57-9d2e-6f1f8f3b7c21")
_ALLOW_EXPIRED_SECONDS = 2 * 86400
_UNAUTHORIZED = "The request you have made requires authentication."
_NO_SCOPE = "The requested project does not exist or the user has no role in it."
"""One answer for both cases (issue 8): a scope error must not tell a caller
which project ids exist, nor echo ids back."""
_TOO_MANY = "Too many failed login attempts; retry later."
_limiter_lock = threading.Lock()


def _limiter(request: Request, ctx: AppContext) -> LoginLimiter:
    """The app's :class:`LoginLimiter`, made on first use from ``auth`` settings."""
    with _limiter_lock:
        limiter: LoginLimiter | None = getattr(request.app.state, "login_limiter", None)
        if limiter is None:
            auth = ctx.settings.auth
            limiter = LoginLimiter(per_user=auth.login_max_failures_per_user,
                                   per_address=auth.login_max_failures_per_address,
                                   window_seconds=auth.login_window_seconds)
            request.app.state.login_limiter = limiter
        return limiter


def _login_key(ident: IdentityPart) -> str | None:
    """The user a password login names (``id:...`` or ``name@domain``), else None."""
    if "password" not in ident.methods or ident.password is None:
        return None
    u = ident.password.user
    if u.id is not None:
        return f"id:{u.id}"
    domain = u.domain or DomainRef()
    return f"name:{u.name}@{domain.id or domain.name or 'default'}".lower()


class _Model(BaseModel):
    # Keystone clients may send members VBS does not use; ignore them.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class DomainRef(_Model):
    id: str | None = None
    name: str | None = None


class PasswordUser(_Model):
    id: str | None = None
    name: str | None = None
    domain: DomainRef | None = None
    password: str


class PasswordMethod(_Model):
    user: PasswordUser


class TokenMethod(_Model):
    id: str


class IdentityPart(_Model):
    methods: list[str] = Field(min_length=1)
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class ProjectRef(_Model):
    id: str | None = None
    name: str | None = None
    domain: DomainRef | None = None


class ScopePart(_Model):
    project: ProjectRef | None = None
    domain: DomainRef | None = None
    system: dict[str, Any] | None = None
    trust: dict[str, Any] | None = Field(default=None, alias="OS-TRUST:trust")


class AuthPart(_Model):
    identity: IdentityPart
    scope: ScopePart | Literal["unscoped"] | None = None


class AuthRequest(_Model):
    """Body of ``POST /auth/tokens`` (openstack-compat.md §3.1)."""

    auth: AuthPart


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _service(type_: str, name: str, url: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid5(_NS, type_).hex,
        "type": type_,
        "name": name,
        "endpoints": [
            {
                "id": uuid.uuid5(_NS, f"{type_}/{interface}").hex,
                "interface": interface,
                "region": REGION,
                "region_id": REGION,
                "url": url,
            }
            for interface in _INTERFACES
        ],
    }


def catalog(base: str, project_id: str) -> list[dict[str, Any]]:
    """The service catalog for a project-scoped token (§3.3).

    ``block-storage`` and ``volumev3`` (cinderclient, openstacksdk) point at
    the v3 API; ``volumev2`` at v2; ``vbsv2`` (the VBS SDK) and
    ``volume-backup`` ([D62]) at the v2 root of the extension API.
    """
    v2 = f"{base}/v2/{project_id}"
    v3 = f"{base}/v3/{project_id}"
    return [
        _service("identity", "keystone", f"{base}/identity/v3"),
        _service("block-storage", "cinder", v3),
        _service("volumev3", "cinderv3", v3),
        _service("volumev2", "cinderv2", v2),
        _service("vbsv2", "vbs", v2),
        _service("volume-backup", "vbs-backup", v2),
    ]


def token_body(info: TokenInfo, base: str, *, include_catalog: bool) -> dict[str, Any]:
    """The ``{"token": ...}`` body of §3.2."""
    user_domain = {"id": info.user.domain_id, "name": info.user.domain_name}
    project_domain = {"id": info.project.domain_id, "name": info.project.domain_name}
    token: dict[str, Any] = {
        "methods": list(info.methods),
        "user": {"id": info.user.id, "name": info.user.name, "domain": user_domain,
                 "password_expires_at": None},
        "project": {"id": info.project.id, "name": info.project.name, "domain": project_domain},
        "roles": [{"id": ROLE_IDS[r], "name": r} for r in sorted(info.roles) if r in ROLE_IDS],
        "is_domain": False,
        "expires_at": _iso(info.expires_at),
        "issued_at": _iso(info.issued_at),
        "audit_ids": [info.audit_id],
    }
    if include_catalog:
        token["catalog"] = catalog(base, info.project.id)
    return {"token": token}


def _unauthorized(message: str = _UNAUTHORIZED) -> ServiceError:
    return ServiceError(message, "", 401)


def _discovery_entry(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


@router.get("/identity", status_code=300, summary="Identity version discovery")
@router.get("/identity/", include_in_schema=False, status_code=300)
def identity_versions(request: Request) -> JSONResponse:
    entry = _discovery_entry(public_base_url(request))
    return JSONResponse({"versions": {"values": [entry]}}, status_code=300)


@router.get("/identity/v3", summary="Identity v3 version document")
@router.get("/identity/v3/", include_in_schema=False)
def identity_v3(request: Request) -> JSONResponse:
    return JSONResponse({"version": _discovery_entry(public_base_url(request))})


def _resolve_user(
    session: Any, ident: IdentityPart
) -> tuple[str, tuple[str, ...], dt.datetime | None]:
    """Authenticate the identity part: (user id, methods, expiry cap)."""
    if "password" in ident.methods and ident.password is not None:
        u = ident.password.user
        if u.id is None and u.name is None:
            raise ServiceError("Expecting to find id or name in user.", "", 400)
        domain = u.domain or DomainRef()
        user = authenticate_password(
            session, u.password, user_id=u.id, user_name=u.name,
            domain_id=domain.id, domain_name=domain.name,
        )
        return user.id, ("password",), None
    if "token" in ident.methods and ident.token is not None:
        try:
            old = validate_token(session, ident.token.id)
        except TokenNotValid:
            raise _unauthorized() from None
        return old.user.id, ("token",), old.expires_at
    raise _unauthorized("Attempted to authenticate with an unsupported method.")


def _resolve_project(session: Any, scope: ScopePart | str | None, user_id: str) -> str:
    if scope is None:
        default = get_user(session, user_id).default_project_id
        if default is None:
            raise _unauthorized("No project scope given and the user has no default project.")
        return default
    if not isinstance(scope, ScopePart) or scope.project is None:
        raise _unauthorized("Only project-scoped tokens are supported.")
    ref = scope.project
    try:
        if ref.id is not None:
            return get_project(session, ref.id).id
        if ref.name is None:
            raise ServiceError("Expecting to find id or name in project.", "", 400)
        domain = ref.domain or DomainRef()
        return find_project(
            session, ref.name, domain_id=domain.id, domain_name=domain.name
        ).id
    except IdentityNotFound:
        raise _unauthorized(_NO_SCOPE) from None


@router.post("/identity/v3/auth/tokens", status_code=201, summary="Issue a token")
@router.post("/v3/auth/tokens", status_code=201, include_in_schema=False)
def issue(
    body: AuthRequest,
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    nocatalog: str | None = None,
) -> JSONResponse:
    login = _login_key(body.auth.identity)
    address = request.client.host if request.client else "unknown"
    limiter = _limiter(request, ctx)
    if login is not None:
        wait = limiter.retry_after(login, address)
        if wait is not None:  # refused before any argon2 work
            raise ServiceError(_TOO_MANY, "", 429, headers={"Retry-After": str(wait)})
    try:
        with ctx.db.session() as session:
            try:
                user_id, methods, cap = _resolve_user(session, body.auth.identity)
            except AuthenticationFailed:
                if login is not None:
                    limiter.failed(login, address)
                raise
            if login is not None:
                limiter.succeeded(login)
            project_id = _resolve_project(session, body.auth.scope, user_id)
            try:
                issued = issue_token(
                    session, user_id, project_id,
                    ttl_seconds=ctx.settings.auth.token_ttl_seconds, methods=methods,
                    expires_at=cap,
                )
            except AuthenticationFailed:
                raise _unauthorized(_NO_SCOPE) from None
    except AuthenticationFailed as exc:
        raise _unauthorized(exc.message) from None
    except InvalidIdentityInput as exc:
        raise ServiceError(exc.message, "", 400) from None
    payload = token_body(issued.info, public_base_url(request), include_catalog=nocatalog is None)
    return JSONResponse(
        payload, status_code=201,
        headers={"X-Subject-Token": issued.token, "Vary": "X-Auth-Token"},
    )


def _subject(
    ctx: AppContext, caller_token: str | None, subject_token: str | None, allow_expired: bool
) -> tuple[TokenInfo, str]:
    """Check the caller may inspect the subject token; return its info and value."""
    with ctx.db.session() as session:
        try:
            caller = validate_token(session, caller_token)
        except TokenNotValid:
            raise _unauthorized() from None
        if not subject_token:
            raise ServiceError("The X-Subject-Token header is required.", "", 400)
        window = _ALLOW_EXPIRED_SECONDS if allow_expired else 0
        try:
            subject = validate_token(session, subject_token, allow_expired_seconds=window)
        except TokenNotValid:
            raise ServiceError("Could not find token.", "", 404) from None
        if "admin" not in caller.roles and caller.user.id != subject.user.id:
            raise ServiceError("You are not authorized to perform the requested action.", "", 403)
        return subject, subject_token


_CallerToken = Annotated[str | None, Header(alias="X-Auth-Token")]
_SubjectToken = Annotated[str | None, Header(alias="X-Subject-Token")]


@router.get("/identity/v3/auth/tokens", summary="Validate a token")
@router.get("/v3/auth/tokens", include_in_schema=False)
def validate(
    request: Request,
    ctx: Annotated[AppContext, Depends(get_context)],
    x_auth_token: _CallerToken = None,
    x_subject_token: _SubjectToken = None,
    nocatalog: str | None = None,
    allow_expired: bool = False,
) -> JSONResponse:
    info, token = _subject(ctx, x_auth_token, x_subject_token, allow_expired)
    payload = token_body(info, public_base_url(request), include_catalog=nocatalog is None)
    return JSONResponse(payload, headers={"X-Subject-Token": token, "Vary": "X-Auth-Token"})


@router.head("/identity/v3/auth/tokens", summary="Check a token", response_class=Response)
@router.head("/v3/auth/tokens", include_in_schema=False)
def check(
    ctx: Annotated[AppContext, Depends(get_context)],
    x_auth_token: _CallerToken = None,
    x_subject_token: _SubjectToken = None,
    allow_expired: bool = False,
) -> Response:
    _, token = _subject(ctx, x_auth_token, x_subject_token, allow_expired)
    return Response(status_code=200, headers={"X-Subject-Token": token})


@router.delete("/identity/v3/auth/tokens", status_code=204, summary="Revoke a token")
@router.delete("/v3/auth/tokens", status_code=204, include_in_schema=False)
def revoke(
    ctx: Annotated[AppContext, Depends(get_context)],
    x_auth_token: _CallerToken = None,
    x_subject_token: _SubjectToken = None,
) -> Response:
    _, token = _subject(ctx, x_auth_token, x_subject_token, False)
    with ctx.db.session() as session:
        revoke_token(session, token)
    if ctx.token_cache is not None:
        ctx.token_cache.forget(token)  # after the commit: a re-validation sees it revoked
    return Response(status_code=204)
