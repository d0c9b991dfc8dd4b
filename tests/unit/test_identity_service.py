"""Identity management, tokens and first-start bootstrap on a real (SQLite) session."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import vbs.identity as idn
from vbs.db.base import utcnow
from vbs.db.models_identity import Token, User
from vbs.db.session import Database


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.session() as s:
        yield s


def _user_in_project(s: Session, role: str = "member") -> tuple[idn.UserInfo, idn.ProjectInfo]:
    project = idn.create_project(s, "demo")
    user = idn.create_user(s, "alice", "pw", default_project_id=project.id)
    idn.assign_role(s, user.id, project.id, role)
    return user, project


def test_project_ids_are_keystone_style_and_names_unique(session: Session) -> None:
    p = idn.create_project(session, "demo")
    assert re.fullmatch(r"[0-9a-f]{32}", p.id)
    assert p.domain_id == "default" and p.domain_name == "Default"
    with pytest.raises(idn.IdentityConflict):
        idn.create_project(session, "demo")
    assert idn.find_project(session, "demo") == p
    assert idn.find_project(session, p.id) == p
    assert idn.find_project(session, "demo", domain_name="default") == p
    with pytest.raises(idn.IdentityNotFound):
        idn.find_project(session, "demo", domain_name="Other")
    assert [x.name for x in idn.list_projects(session)] == ["demo"]


@pytest.mark.parametrize("name", ["", "  ", "a/b", "x" * 256, "tab\there"])
def test_bad_names_are_rejected(session: Session, name: str) -> None:
    with pytest.raises(idn.InvalidIdentityInput):
        idn.create_project(session, name)


def test_users_hash_passwords_and_authenticate(session: Session) -> None:
    user, _ = _user_in_project(session)
    stored = session.scalars(select(User.password_hash).where(User.id == user.id)).one()
    assert stored.startswith("$argon2id$")
    assert idn.authenticate_password(session, "pw", user_name="alice",
                                     domain_name="Default") == user
    assert idn.authenticate_password(session, "pw", user_id=user.id) == user
    assert idn.authenticate_password(session, "pw", user_name="alice") == user  # default domain
    with pytest.raises(idn.IdentityConflict):
        idn.create_user(session, "alice", "other")
    with pytest.raises(idn.InvalidIdentityInput):
        idn.create_user(session, "bob", "")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_name": "alice", "password": "wrong"},
        {"user_name": "nobody", "password": "pw"},
        {"user_name": "alice", "password": "pw", "domain_name": "Nowhere"},
        {"user_id": "0" * 32, "password": "pw"},
    ],
)
def test_authentication_failures_look_alike(session: Session, kwargs: dict[str, str]) -> None:
    _user_in_project(session)
    password = kwargs.pop("password")
    with pytest.raises(idn.AuthenticationFailed) as err:
        idn.authenticate_password(session, password, **kwargs)
    assert err.value.message == "The request you have made requires authentication."


def test_roles_are_checked_and_expanded(session: Session) -> None:
    user, project = _user_in_project(session, "admin")
    with pytest.raises(idn.InvalidIdentityInput):
        idn.assign_role(session, user.id, project.id, "owner")
    idn.assign_role(session, user.id, project.id, "admin")  # idempotent
    assert idn.role_names(session, user.id, project.id) == {"admin"}
    issued = idn.issue_token(session, user.id, project.id, ttl_seconds=3600)
    assert issued.info.roles == {"admin", "member", "reader"}


def test_token_round_trip_stores_only_a_hash(session: Session) -> None:
    user, project = _user_in_project(session)
    issued = idn.issue_token(session, user.id, project.id, ttl_seconds=3600)
    assert len(issued.token) == 43
    rows = session.scalars(select(Token)).all()
    assert [r.id_hash for r in rows] == [idn.hash_token(issued.token)]
    assert issued.token not in rows[0].id_hash
    info = idn.validate_token(session, issued.token)
    assert info.user.id == user.id and info.project.id == project.id
    assert info.roles == {"member", "reader"}
    assert info.expires_at - info.issued_at == dt.timedelta(hours=1)
    assert info.expires_at.tzinfo is not None


def test_token_without_role_on_project_is_refused(session: Session) -> None:
    user, _ = _user_in_project(session)
    other = idn.create_project(session, "other")
    with pytest.raises(idn.AuthenticationFailed):
        idn.issue_token(session, user.id, other.id, ttl_seconds=60)


@pytest.mark.parametrize(
    ("token", "reason"), [(None, "missing"), ("", "missing"), ("garbage", "invalid")]
)
def test_missing_and_unknown_tokens(session: Session, token: str | None, reason: str) -> None:
    with pytest.raises(idn.TokenNotValid) as err:
        idn.validate_token(session, token)
    assert err.value.reason == reason


def test_expired_and_revoked_tokens(session: Session) -> None:
    user, project = _user_in_project(session)
    past = utcnow() - dt.timedelta(hours=2)
    old = idn.issue_token(session, user.id, project.id, ttl_seconds=3600, now=past)
    with pytest.raises(idn.TokenNotValid) as err:
        idn.validate_token(session, old.token)
    assert err.value.reason == "expired"
    assert idn.validate_token(session, old.token, allow_expired_seconds=7200).user.id == user.id
    live = idn.issue_token(session, user.id, project.id, ttl_seconds=3600)
    assert idn.revoke_token(session, live.token)
    assert not idn.revoke_token(session, live.token)
    with pytest.raises(idn.TokenNotValid) as err:
        idn.validate_token(session, live.token)
    assert err.value.reason == "invalid"
    assert idn.purge_expired_tokens(session, older_than=utcnow()) == 1


def test_expiry_cap_for_rescoped_tokens(session: Session) -> None:
    user, project = _user_in_project(session)
    cap = utcnow() + dt.timedelta(minutes=5)
    issued = idn.issue_token(session, user.id, project.id, ttl_seconds=3600, expires_at=cap)
    assert issued.info.expires_at == cap


def test_disabled_user_invalidates_tokens(session: Session) -> None:
    user, project = _user_in_project(session)
    issued = idn.issue_token(session, user.id, project.id, ttl_seconds=3600)
    row = session.get(User, user.id)
    assert row is not None
    row.enabled = False
    session.flush()
    with pytest.raises(idn.TokenNotValid):
        idn.validate_token(session, issued.token)
    with pytest.raises(idn.AuthenticationFailed):
        idn.authenticate_password(session, "pw", user_id=user.id)


def test_bootstrap_generates_password_once(db: Database) -> None:
    with db.session() as s:
        generated = idn.bootstrap_identity(s, None)
    assert generated and len(generated) >= 16
    with db.session() as s:
        assert idn.bootstrap_identity(s, None) is None  # already there: nothing new
        admin = idn.authenticate_password(s, generated, user_name="admin")
        project = idn.find_project(s, "admin")
        assert admin.default_project_id == project.id
        assert idn.role_names(s, admin.id, project.id) == {"admin"}


def test_bootstrap_with_password_sets_and_resets_it(db: Database) -> None:
    with db.session() as s:
        assert idn.bootstrap_identity(s, "first") is None
    with db.session() as s:
        idn.authenticate_password(s, "first", user_name="admin")
        assert idn.bootstrap_identity(s, "second") is None
    with db.session() as s:
        idn.authenticate_password(s, "second", user_name="admin")
        with pytest.raises(idn.AuthenticationFailed):
            idn.authenticate_password(s, "first", user_name="admin")
        assert len(idn.list_users(s)) == 1 and len(idn.list_projects(s)) == 1
