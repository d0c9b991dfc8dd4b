"""argon2id password hashing."""

from __future__ import annotations

from vbs.identity import hash_password, needs_rehash, verify_password


def test_hash_is_argon2id_and_salted() -> None:
    a, b = hash_password("s3cret"), hash_password("s3cret")
    assert a.startswith("$argon2id$") and a != b
    assert "s3cret" not in a


def test_verify_accepts_right_and_rejects_wrong_password() -> None:
    h = hash_password("s3cret")
    assert verify_password(h, "s3cret")
    assert not verify_password(h, "s3creT")
    assert not verify_password(h, "")


def test_corrupt_hash_never_verifies() -> None:
    assert not verify_password("not-a-hash", "x")
    assert not verify_password("$argon2id$v=19$m=1,t=1,p=1$AAAA$BBBB", "x")


def test_weaker_parameters_need_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("x"))
