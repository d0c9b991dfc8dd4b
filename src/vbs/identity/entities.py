"""Identity domain types: what the rest of VBS sees (never ORM rows).

Roles are fixed: ``admin`` implies ``member`` implies ``reader`` (Keystone's
default implied roles). :func:`effective_roles` expands them; tokens store and
report the expanded set, so a check for ``member`` also passes for admins.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

__all__ = [
    "DEFAULT_DOMAIN_ID",
    "DEFAULT_DOMAIN_NAME",
    "ROLE_IDS",
    "ROLES",
    "IssuedToken",
    "ProjectInfo",
    "TokenInfo",
    "UserInfo",
    "effective_roles",
]

DEFAULT_DOMAIN_ID = "default"
DEFAULT_DOMAIN_NAME = "Default"
ROLES: tuple[str, ...] = ("admin", "member", "reader")
_IMPLIES = {"admin": ("member", "reader"), "member": ("reader",), "reader": ()}
_NS = uuid.UUID("6f1c3c52-8a63-4bd5-9f3e-5c0a3d3a9d10")
ROLE_IDS: dict[str, str] = {r: uuid.uuid5(_NS, r).hex for r in ROLES}
"""Stable role ids for token bodies (same on every installation)."""


def effective_roles(roles: set[str] | frozenset[str] | list[str]) -> frozenset[str]:
    """Assigned roles plus the roles they imply."""
    out: set[str] = set()
    for role in roles:
        out.add(role)
        out.update(_IMPLIES.get(role, ()))
    return frozenset(out)


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    name: str
    domain_id: str
    domain_name: str
    description: str
    enabled: bool


@dataclass(frozen=True)
class UserInfo:
    id: str
    name: str
    domain_id: str
    domain_name: str
    enabled: bool
    default_project_id: str | None


@dataclass(frozen=True)
class TokenInfo:
    """A validated, project-scoped token (everything a token body needs)."""

    user: UserInfo
    project: ProjectInfo
    roles: frozenset[str]
    methods: tuple[str, ...]
    audit_id: str
    issued_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class IssuedToken:
    """The bearer string (shown once, never stored) and its validated info."""

    token: str
    info: TokenInfo
