"""The API's token cache: how long a revoked or expired token can still pass.

Clocks are fakes: the bounds are checked by moving time, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from sqlalchemy import update

import vbs.identity as idn
from vbs.api.app import AppContext
from vbs.api.auth import authenticate
from vbs.api.token_cache import RevocationCounter, TokenCache
from vbs.config import load_settings
from vbs.db.base import utcnow
from vbs.db.models_identity import Token, User
from vbs.db.session import Database

Who = tuple[str, str]
"""(user id, project id)."""


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.wall = utcnow()

    def monotonic(self) -> float:
        return self.t

    def now(self) -> dt.datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.wall += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def alice(db: Database) -> Who:
    """(user id, project id) of a member of project demo."""
    with db.session() as s:
        project = idn.create_project(s, "demo")
        user = idn.create_user(s, "alice", "pw", default_project_id=project.id)
        idn.assign_role(s, user.id, project.id, "member")
        return user.id, project.id


def _issue(db: Database, who: Who) -> idn.IssuedToken:
    with db.session() as s:
        return idn.issue_token(s, who[0], who[1], ttl_seconds=3600)


def _ctx(tmp_path: Path, db: Database, cache: TokenCache) -> AppContext:
    settings = load_settings(None, tmp_path, None, environ={})
    return AppContext(settings=settings, db=db, token_cache=cache)


def test_hit_within_ttl_then_revalidated(db: Database, alice: Who, tmp_path: Path,
                                         clock: FakeClock) -> None:
    """A token revoked elsewhere (another host: straight in the database) passes
    for less than ``ttl`` seconds, then is refused."""
    issued = _issue(db, alice)
    cache = TokenCache(2.0, clock=clock.monotonic, now=clock.now)
    ctx = _ctx(tmp_path, db, cache)
    assert authenticate(ctx, issued.token) == issued.info
    assert len(cache) == 1
    with db.session() as s:
        s.execute(update(Token).values(revoked=True))
    clock.advance(1.9)
    assert authenticate(ctx, issued.token) == issued.info  # inside the bound
    clock.advance(0.1)
    with pytest.raises(idn.TokenNotValid) as err:
        authenticate(ctx, issued.token)
    assert err.value.reason == "invalid"
    clock.advance(10)
    with pytest.raises(idn.TokenNotValid):  # refusals are not cached, nor is the token again
        authenticate(ctx, issued.token)
    assert len(cache) == 0


def test_disabled_user_is_refused_after_the_ttl(db: Database, alice: Who, tmp_path: Path,
                                                clock: FakeClock) -> None:
    issued = _issue(db, alice)
    ctx = _ctx(tmp_path, db, TokenCache(2.0, clock=clock.monotonic, now=clock.now))
    authenticate(ctx, issued.token)
    with db.session() as s:
        s.execute(update(User).values(enabled=False))
    clock.advance(2.0)
    with pytest.raises(idn.TokenNotValid):
        authenticate(ctx, issued.token)


def test_expiry_is_exact_even_when_cached(db: Database, alice: Who, tmp_path: Path,
                                          clock: FakeClock) -> None:
    issued = _issue(db, alice)
    cache = TokenCache(300.0, clock=clock.monotonic, now=clock.now)
    cache.put(issued.token, issued.info)
    clock.wall = issued.info.expires_at - dt.timedelta(microseconds=1)
    assert cache.get(issued.token) == issued.info
    clock.wall = issued.info.expires_at
    assert cache.get(issued.token) is None


def test_forget_is_immediate(db: Database, alice: Who, clock: FakeClock) -> None:
    issued = _issue(db, alice)
    cache = TokenCache(300.0, clock=clock.monotonic, now=clock.now)
    cache.put(issued.token, issued.info)
    cache.forget(issued.token)
    assert cache.get(issued.token) is None


def test_zero_ttl_never_caches(db: Database, alice: Who) -> None:
    issued = _issue(db, alice)
    cache = TokenCache(0)
    cache.put(issued.token, issued.info)
    assert cache.get(issued.token) is None and len(cache) == 0


def test_oldest_entries_go_beyond_the_limit(db: Database, alice: Who, clock: FakeClock) -> None:
    tokens = [_issue(db, alice) for _ in range(3)]
    cache = TokenCache(300.0, max_entries=2, clock=clock.monotonic, now=clock.now)
    for t in tokens:
        cache.put(t.token, t.info)
    assert len(cache) == 2
    assert cache.get(tokens[0].token) is None
    assert cache.get(tokens[2].token) == tokens[2].info


def test_a_sibling_process_revocation_clears_the_cache(db: Database, alice: Who,
                                                       clock: FakeClock) -> None:
    """``vbs serve --processes N``: the counter is mapped before the fork, a child
    that revokes bumps it, and the parent's cache forgets every token."""
    counter = RevocationCounter()
    one, two = _issue(db, alice), _issue(db, alice)
    mine = TokenCache(300.0, revocations=counter, clock=clock.monotonic, now=clock.now)
    mine.put(one.token, one.info)
    mine.put(two.token, two.info)
    assert mine.get(one.token) == one.info
    pid = os.fork()
    if pid == 0:  # the sibling: revokes a token it had cached
        sibling = TokenCache(300.0, revocations=counter)
        sibling.forget(two.token)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert mine.get(two.token) is None
    assert mine.get(one.token) is None  # everything goes: one query each to re-validate
    mine.put(one.token, one.info)
    assert mine.get(one.token) == one.info  # and caching resumes
