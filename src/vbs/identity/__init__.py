"""Identity: users, projects, roles and tokens (a Keystone v3 subset).

Nouns:

* *domain* — namespace for project and user names; VBS has ``default``
  ("Default") and may gain more.
* *project* — the tenant every resource belongs to; id = uuid4 hex (32 chars).
* *user* — logs in with a password (argon2id hash); names unique per domain.
* *role* — ``admin`` ⊃ ``member`` ⊃ ``reader``, assigned per (user, project).
* *token* — random bearer string, stored as SHA-256, project-scoped, expiring.

Everything takes an SQLAlchemy ``Session`` from the caller (unit of work) and
returns frozen entities; no function commits, reads settings or talks HTTP.
"""

from __future__ import annotations

from vbs.identity.entities import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    ROLE_IDS,
    ROLES,
    IssuedToken,
    ProjectInfo,
    TokenInfo,
    UserInfo,
    effective_roles,
)
from vbs.identity.errors import (
    AuthenticationFailed,
    IdentityConflict,
    IdentityError,
    IdentityNotFound,
    InvalidIdentityInput,
    TokenNotValid,
)
from vbs.identity.manage import (
    assign_role,
    authenticate_password,
    create_project,
    create_user,
    ensure_default_domain,
    find_domain,
    find_project,
    find_user,
    get_project,
    get_user,
    list_projects,
    list_users,
    role_names,
    set_password,
)
from vbs.identity.passwords import hash_password, needs_rehash, verify_password
from vbs.identity.setup import ADMIN_PROJECT, ADMIN_USER, bootstrap_identity
from vbs.identity.tokens import (
    hash_token,
    issue_token,
    purge_expired_tokens,
    revoke_token,
    validate_token,
)

__all__ = [
    "ADMIN_PROJECT",
    "ADMIN_USER",
    "DEFAULT_DOMAIN_ID",
    "DEFAULT_DOMAIN_NAME",
    "ROLES",
    "ROLE_IDS",
    "AuthenticationFailed",
    "IdentityConflict",
    "IdentityError",
    "IdentityNotFound",
    "InvalidIdentityInput",
    "IssuedToken",
    "ProjectInfo",
    "TokenInfo",
    "TokenNotValid",
    "UserInfo",
    "assign_role",
    "authenticate_password",
    "bootstrap_identity",
    "create_project",
    "create_user",
    "effective_roles",
    "ensure_default_domain",
    "find_domain",
    "find_project",
    "find_user",
    "get_project",
    "get_user",
    "hash_password",
    "hash_token",
    "issue_token",
    "list_projects",
    "list_users",
    "needs_rehash",
    "purge_expired_tokens",
    "revoke_token",
    "role_names",
    "set_password",
    "validate_token",
    "verify_password",
]
