"""Project, user and role management, and password authentication.

Every function takes an open SQLAlchemy ``Session`` (one unit of work owned by
the caller; nothing here commits) and returns frozen entities from
:mod:`vbs.identity.entities`. Names are unique per domain; ids are uuid4 hex
(32 lowercase hex characters, Keystone style).
"""

from __future__ import annotations

import functools
import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vbs.db.models_identity import Domain, Project, RoleAssignment, User
from vbs.identity.entities import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    ROLES,
    ProjectInfo,
    UserInfo,
)
from vbs.identity.errors import (
    AuthenticationFailed,
    IdentityConflict,
    IdentityNotFound,
    InvalidIdentityInput,
)
from vbs.identity.passwords import hash_password, needs_rehash, verify_password

__all__ = [
    "assign_role",
    "authenticate_password",
    "create_project",
    "create_user",
    "ensure_default_domain",
    "find_domain",
    "find_project",
    "find_user",
    "get_project",
    "get_user",
    "list_projects",
    "list_users",
    "role_names",
    "set_password",
]

_NAME_RE = re.compile(r"^[^\x00-\x1f/]{1,255}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def _check_name(kind: str, name: str) -> str:
    name = name.strip()
    if not _NAME_RE.match(name):
        raise InvalidIdentityInput(
            f"{kind} name must be 1-255 characters without '/' or control characters"
        )
    return name


def ensure_default_domain(session: Session) -> None:
    """Create domain ``default`` ("Default") if it does not exist yet."""
    if session.get(Domain, DEFAULT_DOMAIN_ID) is None:
        session.add(Domain(id=DEFAULT_DOMAIN_ID, name=DEFAULT_DOMAIN_NAME, enabled=True))
        session.flush()


def find_domain(session: Session, *, id: str | None = None, name: str | None = None) -> Domain:
    """A domain by id or by name (names compare case-insensitively)."""
    row: Domain | None = None
    if id is not None:
        row = session.get(Domain, id)
    elif name is not None:
        row = session.scalars(
            select(Domain).where(func.lower(Domain.name) == name.lower())
        ).first()
    if row is None:
        raise IdentityNotFound(f"domain {id or name!r} not found")
    return row


def _project_info(row: Project, domain: Domain) -> ProjectInfo:
    return ProjectInfo(
        id=row.id, name=row.name, domain_id=domain.id, domain_name=domain.name,
        description=row.description, enabled=row.enabled,
    )


def _user_info(row: User, domain: Domain) -> UserInfo:
    return UserInfo(
        id=row.id, name=row.name, domain_id=domain.id, domain_name=domain.name,
        enabled=row.enabled, default_project_id=row.default_project_id,
    )


def create_project(
    session: Session, name: str, *, domain_id: str = DEFAULT_DOMAIN_ID, description: str = ""
) -> ProjectInfo:
    """Create an enabled project; IdentityConflict if the name is taken in the domain."""
    name = _check_name("project", name)
    domain = find_domain(session, id=domain_id)
    exists = session.scalars(
        select(Project.id).where(Project.domain_id == domain.id, Project.name == name)
    ).first()
    if exists is not None:
        raise IdentityConflict(f"project {name!r} already exists in domain {domain.name!r}")
    row = Project(
        id=uuid.uuid4().hex, domain_id=domain.id, name=name,
        description=description, enabled=True,
    )
    session.add(row)
    session.flush()
    return _project_info(row, domain)


def get_project(session: Session, project_id: str) -> ProjectInfo:
    row = session.get(Project, project_id)
    if row is None:
        raise IdentityNotFound(f"project {project_id!r} not found")
    return _project_info(row, find_domain(session, id=row.domain_id))


def find_project(
    session: Session,
    name_or_id: str,
    *,
    domain_id: str | None = None,
    domain_name: str | None = None,
) -> ProjectInfo:
    """A project by id, or by name within a domain (default domain if none given)."""
    if _HEX32.match(name_or_id):
        row = session.get(Project, name_or_id)
        if row is not None:
            return _project_info(row, find_domain(session, id=row.domain_id))
    if domain_id is None and domain_name is None:
        domain_id = DEFAULT_DOMAIN_ID
    try:
        domain = find_domain(session, id=domain_id, name=domain_name)
    except IdentityNotFound:
        raise IdentityNotFound(f"project {name_or_id!r} not found") from None
    row = session.scalars(
        select(Project).where(Project.domain_id == domain.id, Project.name == name_or_id)
    ).first()
    if row is None:
        raise IdentityNotFound(f"project {name_or_id!r} not found")
    return _project_info(row, domain)


def list_projects(session: Session) -> list[ProjectInfo]:
    rows = session.execute(
        select(Project, Domain).join(Domain, Project.domain_id == Domain.id)
        .order_by(Domain.name, Project.name)
    ).all()
    return [_project_info(p, d) for p, d in rows]


def create_user(
    session: Session,
    name: str,
    password: str,
    *,
    domain_id: str = DEFAULT_DOMAIN_ID,
    default_project_id: str | None = None,
) -> UserInfo:
    """Create an enabled user with an argon2id-hashed password."""
    name = _check_name("user", name)
    if not password:
        raise InvalidIdentityInput("password must not be empty")
    domain = find_domain(session, id=domain_id)
    exists = session.scalars(
        select(User.id).where(User.domain_id == domain.id, User.name == name)
    ).first()
    if exists is not None:
        raise IdentityConflict(f"user {name!r} already exists in domain {domain.name!r}")
    if default_project_id is not None:
        get_project(session, default_project_id)
    row = User(
        id=uuid.uuid4().hex, domain_id=domain.id, name=name,
        password_hash=hash_password(password), enabled=True,
        default_project_id=default_project_id,
    )
    session.add(row)
    session.flush()
    return _user_info(row, domain)


def set_password(session: Session, user_id: str, password: str) -> None:
    if not password:
        raise InvalidIdentityInput("password must not be empty")
    row = session.get(User, user_id)
    if row is None:
        raise IdentityNotFound(f"user {user_id!r} not found")
    row.password_hash = hash_password(password)
    session.flush()


def get_user(session: Session, user_id: str) -> UserInfo:
    row = session.get(User, user_id)
    if row is None:
        raise IdentityNotFound(f"user {user_id!r} not found")
    return _user_info(row, find_domain(session, id=row.domain_id))


def find_user(
    session: Session,
    *,
    id: str | None = None,
    name: str | None = None,
    domain_id: str | None = None,
    domain_name: str | None = None,
) -> UserInfo:
    """A user by id, or by name within a domain (default domain if none given)."""
    if id is not None:
        return get_user(session, id)
    if name is None:
        raise InvalidIdentityInput("a user id or name is required")
    if domain_id is None and domain_name is None:
        domain_id = DEFAULT_DOMAIN_ID
    domain = find_domain(session, id=domain_id, name=domain_name)
    row = session.scalars(
        select(User).where(User.domain_id == domain.id, User.name == name)
    ).first()
    if row is None:
        raise IdentityNotFound(f"user {name!r} not found")
    return _user_info(row, domain)


def list_users(session: Session) -> list[UserInfo]:
    rows = session.execute(
        select(User, Domain).join(Domain, User.domain_id == Domain.id)
        .order_by(Domain.name, User.name)
    ).all()
    return [_user_info(u, d) for u, d in rows]


def assign_role(session: Session, user_id: str, project_id: str, role: str) -> None:
    """Grant ``role`` on the project (idempotent)."""
    if role not in ROLES:
        raise InvalidIdentityInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    get_user(session, user_id)
    get_project(session, project_id)
    if session.get(RoleAssignment, (user_id, project_id, role)) is None:
        session.add(RoleAssignment(user_id=user_id, project_id=project_id, role=role))
        session.flush()


def role_names(session: Session, user_id: str, project_id: str) -> frozenset[str]:
    """Roles directly assigned to the user on the project (not expanded)."""
    return frozenset(
        session.scalars(
            select(RoleAssignment.role).where(
                RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id
            )
        )
    )


def authenticate_password(
    session: Session,
    password: str,
    *,
    user_id: str | None = None,
    user_name: str | None = None,
    domain_id: str | None = None,
    domain_name: str | None = None,
) -> UserInfo:
    """Check a password; AuthenticationFailed for every kind of failure.

    Unknown user, unknown domain, wrong password and disabled user all give
    the same message, so the answer reveals nothing about which names exist.
    A hash made with older parameters is upgraded on success.
    """
    failed = AuthenticationFailed("The request you have made requires authentication.")
    try:
        user = find_user(
            session, id=user_id, name=user_name, domain_id=domain_id, domain_name=domain_name
        )
    except (IdentityNotFound, InvalidIdentityInput):
        verify_password(_dummy_hash(), password)  # same cost as a real check
        raise failed from None
    row = session.get(User, user.id)
    assert row is not None
    if not verify_password(row.password_hash, password) or not user.enabled:
        raise failed
    domain = session.get(Domain, row.domain_id)
    if domain is None or not domain.enabled:
        raise failed
    if needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
        session.flush()
    return user


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (computed once, on first use)."""
    return hash_password("vbs-timing-equaliser")
