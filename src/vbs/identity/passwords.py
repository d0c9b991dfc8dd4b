"""Password hashing with argon2id (argon2-cffi defaults, RFC 9106 low-memory profile).

Hashes are self-describing PHC strings (``$argon2id$v=19$m=...``), so the
parameters can be raised later: :func:`needs_rehash` tells the caller to
re-hash after a successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["hash_password", "needs_rehash", "verify_password"]

_HASHER = PasswordHasher()  # pure configuration object: no I/O, no threads


def hash_password(password: str) -> str:
    """Return an argon2id PHC string for ``password`` (random salt each call)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; False on mismatch or a corrupt hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(password_hash)
