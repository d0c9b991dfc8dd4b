"""Identity errors. They sit under :class:`vbs.errors.VbsError`::

    VbsError
    └── IdentityError
        ├── AuthenticationFailed   bad credentials, disabled user, no role on the scope (401)
        ├── TokenNotValid          unknown, revoked or expired token (401 / 404 as subject)
        ├── IdentityNotFound       no such project / user / domain (404)
        ├── IdentityConflict       name already used in the domain (409)
        └── InvalidIdentityInput   malformed name, unknown role, empty password (400)

None is transient. ``TokenNotValid.reason`` is one of ``"missing"``,
``"expired"`` or ``"invalid"`` so the API can pick the matching wire code
(AutoBackup.0002 / 0003 / 0005). Messages never say whether a user name
exists, so 401s cannot be used to enumerate accounts.
"""

from __future__ import annotations

from typing import Literal

from vbs.errors import VbsError

__all__ = [
    "AuthenticationFailed",
    "IdentityConflict",
    "IdentityError",
    "IdentityNotFound",
    "InvalidIdentityInput",
    "TokenNotValid",
]


class IdentityError(VbsError):
    code = "vbs.identity"


class AuthenticationFailed(IdentityError):
    code = "vbs.identity.authentication_failed"


class TokenNotValid(IdentityError):
    code = "vbs.identity.token_not_valid"

    def __init__(self, message: str, reason: Literal["missing", "expired", "invalid"]) -> None:
        super().__init__(message)
        self.reason = reason


class IdentityNotFound(IdentityError):
    code = "vbs.identity.not_found"


class IdentityConflict(IdentityError):
    code = "vbs.identity.conflict"


class InvalidIdentityInput(IdentityError):
    code = "vbs.identity.invalid_input"
