"""First-start identity: domain ``default``, project ``admin``, user ``admin``.

Same idea as ``keystone-manage bootstrap``: safe to run at every start.
Missing pieces are created, existing ones are kept; when a password is given
and the admin user already exists, its password is reset to it (so an
operator who lost the password sets ``VBS_ADMIN_PASSWORD`` and restarts).
"""

from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from vbs.identity.errors import IdentityNotFound
from vbs.identity.manage import (
    assign_role,
    create_project,
    create_user,
    ensure_default_domain,
    find_project,
    find_user,
    set_password,
)

__all__ = ["ADMIN_PROJECT", "ADMIN_USER", "bootstrap_identity"]

ADMIN_PROJECT = "admin"
ADMIN_USER = "admin"


def bootstrap_identity(session: Session, admin_password: str | None) -> str | None:
    """Ensure the bootstrap identities exist; return a generated admin password.

    Returns the new random password only when the admin user was created now
    and ``admin_password`` was not given; the caller must show it once and
    store it safely. Returns None otherwise.
    """
    ensure_default_domain(session)
    try:
        project = find_project(session, ADMIN_PROJECT)
    except IdentityNotFound:
        project = create_project(session, ADMIN_PROJECT, description="VBS administrators")
    generated: str | None = None
    try:
        user = find_user(session, name=ADMIN_USER)
        if admin_password:
            set_password(session, user.id, admin_password)
    except IdentityNotFound:
        if not admin_password:
            generated = secrets.token_urlsafe(18)
        user = create_user(
            session, ADMIN_USER, admin_password or generated or "",
            default_project_id=project.id,
        )
    assign_role(session, user.id, project.id, "admin")
    return generated
