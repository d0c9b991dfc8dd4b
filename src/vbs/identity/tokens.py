"""Bearer tokens: issue, validate, revoke.

A token is ``secrets.token_urlsafe(32)`` (43 characters, 256 random bits).
Only its SHA-256 is stored, so the table can be read without handing out
credentials. Tokens are always project-scoped, carry the effective roles
at issue time (admin ⊃ member ⊃ reader), and expire after the configured TTL.

Validation also re-checks that the user and project still exist and are
enabled, so disabling either takes effect immediately, not at expiry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, aliased

from vbs.db.base import utcnow
from vbs.db.models_identity import Domain, Project, Token, User
from vbs.identity.entities import IssuedToken, TokenInfo, effective_roles
from vbs.identity.errors import AuthenticationFailed, TokenNotValid
from vbs.identity.manage import get_project, get_user, role_names

__all__ = [
    "hash_token",
    "issue_token",
    "purge_expired_tokens",
    "revoke_token",
    "validate_token",
]


def hash_token(token: str) -> str:
    """Hex SHA-256 of the bearer string: the token's primary key."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    session: Session,
    user_id: str,
    project_id: str,
    *,
    ttl_seconds: int,
    methods: tuple[str, ...] = ("password",),
    now: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> IssuedToken:
    """Issue a project-scoped token for a user who holds a role on the project.

    AuthenticationFailed when the user has no role there or the project is
    disabled (Keystone answers 401 in both cases). ``expires_at`` caps the
    expiry (a re-scoped token never outlives the token it came from).
    """
    now = now or utcnow()
    user = get_user(session, user_id)
    project = get_project(session, project_id)
    assigned = role_names(session, user_id, project_id)
    if not assigned or not project.enabled or not user.enabled:
        raise AuthenticationFailed(
            "The requested project does not exist or the user has no role in it."
        )
    token = secrets.token_urlsafe(32)
    expiry = now + dt.timedelta(seconds=ttl_seconds)
    if expires_at is not None and expires_at < expiry:
        expiry = expires_at
    roles = effective_roles(assigned)
    audit_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    session.add(
        Token(
            id_hash=hash_token(token), user_id=user_id, project_id=project_id,
            roles=sorted(roles), methods=list(methods), audit_id=audit_id,
            issued_at=now, expires_at=expiry, revoked=False,
        )
    )
    session.flush()
    info = TokenInfo(
        user=user, project=project, roles=roles, methods=tuple(methods),
        audit_id=audit_id, issued_at=now, expires_at=expiry,
    )
    return IssuedToken(token=token, info=info)


def validate_token(
    session: Session,
    token: str | None,
    *,
    now: dt.datetime | None = None,
    allow_expired_seconds: int = 0,
) -> TokenInfo:
    """Return the token's info or raise TokenNotValid (reason missing/expired/invalid).

    ``allow_expired_seconds`` accepts tokens that expired at most that long
    ago (Keystone's ``allow_expired`` for validation calls).
    """
    if not token:
        raise TokenNotValid("No token was supplied.", "missing")
    now = now or utcnow()
    # One round trip loads the token, its user and project and their domains
    # into the session; the lookups below are then identity-map hits (this
    # runs on every authenticated request: it was five queries). ``loaded``
    # holds them: the identity map only keeps objects someone references.
    user_domain, project_domain = aliased(Domain), aliased(Domain)
    loaded = session.execute(
        select(Token, User, Project, user_domain, project_domain)
        .join(User, User.id == Token.user_id)
        .join(Project, Project.id == Token.project_id)
        .join(user_domain, user_domain.id == User.domain_id)
        .join(project_domain, project_domain.id == Project.domain_id)
        .where(Token.id_hash == hash_token(token))
    ).first()
    row = loaded[0] if loaded is not None else session.get(Token, hash_token(token))
    if row is None or row.revoked:
        raise TokenNotValid("The token is not valid.", "invalid")
    if row.expires_at + dt.timedelta(seconds=allow_expired_seconds) <= now:
        raise TokenNotValid("The token has expired.", "expired")
    user_row = session.get(User, row.user_id)
    project_row = session.get(Project, row.project_id)
    if user_row is None or project_row is None or not (user_row.enabled and project_row.enabled):
        raise TokenNotValid("The token is not valid.", "invalid")
    return TokenInfo(
        user=get_user(session, row.user_id),
        project=get_project(session, row.project_id),
        roles=frozenset(row.roles),
        methods=tuple(row.methods),
        audit_id=row.audit_id,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
    )


def revoke_token(session: Session, token: str) -> bool:
    """Revoke a token; True if it existed and was not yet revoked."""
    result = session.execute(
        update(Token)
        .where(Token.id_hash == hash_token(token), Token.revoked.is_(False))
        .values(revoked=True)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def purge_expired_tokens(session: Session, *, older_than: dt.datetime) -> int:
    """Delete tokens that expired before ``older_than``; returns how many."""
    result = session.execute(delete(Token).where(Token.expires_at < older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]
