"""Policy tag use cases and their request rules (vbs-api §8, §2.13, [D50], [D51], [D57]).

Tag rules differ per endpoint, as the contract mirrors the reference:

==================  =========================  =========================  ======
call                key                        value                      max
==================  =========================  =========================  ======
#31 add             1-36, allow-list           0-43, allow-list           10
#35 create/update   1-36, deny-list            required, 0-43, allow-list 10
#35 delete          1-127, deny-list           optional, 0-255, allow     -
==================  =========================  =========================  ======

Every violation is ``AutoBackup.0214``; exceeding 10 tags ``0215``. Both
``create`` and ``update`` upsert; ``delete`` removes a key when its value
matches, or whatever the value when none is given; unknown keys are ignored.
A batch is validated completely before anything changes.

The tag query (#36) loads the project's policies with their tags (a project
has at most ``max_policies`` of them) and filters in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from vbs.db.models_policies import BackupPolicy, PolicyTag
from vbs.service import codes as c
from vbs.service.backup_rules import Tag, is_allow_list_text, is_deny_list_text
from vbs.service.codes import fail
from vbs.service.listing import DEFAULT_MAX_LIMIT, parse_int
from vbs.service.policies import get_policy, policy_tags_of
from vbs.service.policy_rules import parse_policy_tag, require_object

__all__ = [
    "MAX_TAGS",
    "QueryResult",
    "TagBatch",
    "TagCondition",
    "TagQuery",
    "add_tag",
    "apply_tag_batch",
    "list_policy_tags",
    "list_project_tags",
    "parse_add_tag",
    "parse_tag_batch",
    "parse_tag_query",
    "query_policies",
    "remove_tag",
]

MAX_TAGS = 10


@dataclass(frozen=True, slots=True)
class TagBatch:
    action: str
    tags: tuple[tuple[str, str | None], ...]
    """(key, value); value None only for ``delete`` without a value."""


@dataclass(frozen=True, slots=True)
class TagCondition:
    key: str
    values: frozenset[str]
    """Empty = any value."""

    def matches(self, tags: Mapping[str, str]) -> bool:
        return self.key in tags and (not self.values or tags[self.key] in self.values)


@dataclass(frozen=True, slots=True)
class TagQuery:
    count_only: bool
    tags: tuple[TagCondition, ...] = ()
    tags_any: tuple[TagCondition, ...] = ()
    not_tags: tuple[TagCondition, ...] = ()
    not_tags_any: tuple[TagCondition, ...] = ()
    name_contains: tuple[str, ...] = ()
    """Lower-cased ``matches`` values (case-insensitive substring)."""
    limit: int = DEFAULT_MAX_LIMIT
    offset: int = 0


@dataclass(frozen=True, slots=True)
class QueryResult:
    total: int
    policies: tuple[tuple[str, str, tuple[Tag, ...]], ...]
    """(id, name, tags) of the page."""


# --- rules --------------------------------------------------------------------


def parse_add_tag(body: object) -> Tag:
    """#31 body ``{"tag": {key, value}}``; ``0001`` when ``tag`` is missing."""
    data = require_object(body)
    if not isinstance(data.get("tag"), Mapping):
        fail(c.AB_REQUIRED_OBJECT_EMPTY, "The request body must contain the object 'tag'.")
    return parse_policy_tag(data["tag"], "tag")


def parse_tag_batch(body: object) -> TagBatch:
    """#35 body ``{"action", "tags"}`` (rules in the module docstring)."""
    data = require_object(body)
    action = data.get("action")
    if action not in ("create", "update", "delete"):
        fail(c.AB_ACTION_UNSUPPORTED, "action must be 'create', 'update' or 'delete'.")
    raw = data.get("tags")
    if not isinstance(raw, list) or not raw:
        fail(c.AB_TAG_INVALID, "tags must be a non-empty array.")
    deleting = action == "delete"
    key_max, value_max = (127, 255) if deleting else (36, 43)
    out: list[tuple[str, str | None]] = []
    for i, item in enumerate(raw):
        where = f"tags[{i}]"
        if not isinstance(item, Mapping):
            fail(c.AB_TAG_INVALID, f"{where} must be an object.")
        key, value = item.get("key"), item.get("value")
        if (not isinstance(key, str) or not 1 <= len(key) <= key_max
                or not is_deny_list_text(key)):
            fail(c.AB_TAG_INVALID, f"{where}.key must be 1-{key_max} characters without "
                                   "control characters or any of = * < > \\ , | /.")
        if value is None and deleting:
            out.append((key, None))
            continue
        if not isinstance(value, str) or len(value) > value_max or not is_allow_list_text(value):
            fail(c.AB_TAG_INVALID, f"{where}.value must be 0-{value_max} letters, digits, "
                                   "'-' or '_'.")
        out.append((key, value))
    if not deleting and len({k for k, _ in out}) != len(out):
        fail(c.AB_TAG_INVALID, "tags must have unique keys.")
    return TagBatch(action, tuple(out))


def _conditions(name: str, raw: object, *, allow_empty: bool) -> tuple[TagCondition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or (not raw and not allow_empty):
        fail(c.AB_TAG_INVALID, f"{name} must be a non-empty array.")
    if len(raw) > 10:
        fail(c.AB_TAG_INVALID, f"{name} may hold at most 10 keys.")
    out = []
    for i, item in enumerate(raw):
        where = f"{name}[{i}]"
        key = item.get("key") if isinstance(item, Mapping) else None
        values = item.get("values") if isinstance(item, Mapping) else None
        if not isinstance(key, str) or not key:
            fail(c.AB_TAG_INVALID, f"{where}.key must be a non-empty string.")
        if (not isinstance(values, list) or len(values) > 10
                or not all(isinstance(v, str) for v in values)
                or len(set(values)) != len(values)):
            fail(c.AB_TAG_INVALID, f"{where}.values must be an array of at most 10 unique "
                                   "strings.")
        out.append(TagCondition(key, frozenset(values)))
    if len({cond.key for cond in out}) != len(out):
        fail(c.AB_TAG_INVALID, f"{name} must have unique keys.")
    return tuple(out)


def parse_tag_query(body: object) -> TagQuery:
    """#36 body (vbs-api §8.6). ``limit`` 1-1000 (clamped above), ``offset`` >= 0,
    as string or integer [D56], only read for ``filter``; bad values ``0008``."""
    data = require_object(body)
    action = data.get("action")
    if action not in ("filter", "count"):
        fail(c.AB_ACTION_UNSUPPORTED, "action must be 'filter' or 'count'.")
    names: list[str] = []
    matches = data.get("matches")
    if matches is not None:
        if not isinstance(matches, list):
            fail(c.AB_TAG_INVALID, "matches must be an array.")
        for i, item in enumerate(matches):
            if (not isinstance(item, Mapping) or item.get("key") != "resource_name"
                    or not isinstance(item.get("value"), str)):
                fail(c.AB_TAG_INVALID, f"matches[{i}] must be {{\"key\": \"resource_name\", "
                                       "\"value\": string}.")
            names.append(item["value"].lower())
    limit, offset = DEFAULT_MAX_LIMIT, 0
    if action == "filter":
        if data.get("limit") is not None:
            limit = min(parse_int("limit", data["limit"], minimum=1, maximum=2**63 - 1,
                                  invalid=c.AB_MALFORMED_REQUEST), DEFAULT_MAX_LIMIT)
        if data.get("offset") is not None:
            offset = parse_int("offset", data["offset"], minimum=0, invalid=c.AB_MALFORMED_REQUEST)
    return TagQuery(
        count_only=action == "count",
        tags=_conditions("tags", data.get("tags"), allow_empty=True),
        tags_any=_conditions("tags_any", data.get("tags_any"), allow_empty=False),
        not_tags=_conditions("not_tags", data.get("not_tags"), allow_empty=False),
        not_tags_any=_conditions("not_tags_any", data.get("not_tags_any"), allow_empty=False),
        name_contains=tuple(names), limit=limit, offset=offset,
    )


# --- use cases ----------------------------------------------------------------


def _tags(session: Session, policy_id: str) -> list[PolicyTag]:
    return list(session.execute(select(PolicyTag).where(PolicyTag.policy_id == policy_id)
                                .order_by(PolicyTag.position)).scalars())


def _upsert(session: Session, policy_id: str, pairs: Sequence[tuple[str, str]]) -> None:
    existing = {t.key: t for t in _tags(session, policy_id)}
    new_keys = {k for k, _ in pairs if k not in existing}
    if len(existing) + len(new_keys) > MAX_TAGS:
        fail(c.AB_TAG_LIMIT, f"A policy may carry at most {MAX_TAGS} tags.")
    position = max((t.position for t in existing.values()), default=-1)
    for key, value in pairs:
        if key in existing:
            existing[key].value = value
        else:
            position += 1
            session.add(PolicyTag(policy_id=policy_id, key=key, value=value, position=position))
    session.flush()


def add_tag(session: Session, project_id: str, policy_id: str, tag: Tag) -> None:
    """#31: add or replace one tag [D51]."""
    get_policy(session, project_id, policy_id)
    _upsert(session, policy_id, [(tag.key, tag.value)])


def remove_tag(session: Session, project_id: str, policy_id: str, key: str) -> None:
    """#32: ``0216`` when the policy has no such key."""
    get_policy(session, project_id, policy_id)
    result = cast(CursorResult[Any], session.execute(
        delete(PolicyTag).where(PolicyTag.policy_id == policy_id, PolicyTag.key == key)))
    if not result.rowcount:
        fail(c.AB_TAG_NOT_FOUND, f"Policy {policy_id} has no tag {key!r}.")


def list_policy_tags(session: Session, project_id: str, policy_id: str) -> list[Tag]:
    """#34: insertion order."""
    get_policy(session, project_id, policy_id)
    return [Tag(t.key, t.value) for t in _tags(session, policy_id)]


def list_project_tags(session: Session, project_id: str) -> list[tuple[str, list[str]]]:
    """#33: (key, distinct sorted values), sorted by key."""
    rows = session.execute(
        select(PolicyTag.key, PolicyTag.value).join(BackupPolicy,
                                                    BackupPolicy.id == PolicyTag.policy_id)
        .where(BackupPolicy.project_id == project_id)
        .group_by(PolicyTag.key, PolicyTag.value).order_by(PolicyTag.key, PolicyTag.value)
    ).all()
    out: dict[str, list[str]] = {}
    for key, value in rows:
        out.setdefault(key, []).append(value)
    return list(out.items())


def apply_tag_batch(session: Session, project_id: str, policy_id: str, batch: TagBatch) -> None:
    """#35: all or nothing (the caller's transaction rolls back on ``0215``)."""
    get_policy(session, project_id, policy_id)
    if batch.action != "delete":
        _upsert(session, policy_id, [(k, v or "") for k, v in batch.tags])
        return
    stored = {t.key: t for t in _tags(session, policy_id)}
    for key, value in batch.tags:
        tag = stored.get(key)
        if tag is not None and (value is None or tag.value == value):
            session.delete(tag)
            del stored[key]
    session.flush()


def query_policies(session: Session, project_id: str, query: TagQuery) -> QueryResult:
    """#36: AND of every supplied condition [D57]; oldest policy first."""
    policies = session.execute(
        select(BackupPolicy.id, BackupPolicy.name).where(BackupPolicy.project_id == project_id)
        .order_by(BackupPolicy.created_at, BackupPolicy.id)).all()
    tags = policy_tags_of(session, [pid for pid, _ in policies])
    hits = []
    for pid, name in policies:
        kv: Mapping[str, Any] = {t.key: t.value for t in tags[pid]}
        if not all(cond.matches(kv) for cond in query.tags):
            continue
        if query.tags_any and not any(cond.matches(kv) for cond in query.tags_any):
            continue
        if query.not_tags and all(cond.matches(kv) for cond in query.not_tags):
            continue
        if any(cond.matches(kv) for cond in query.not_tags_any):
            continue
        if not all(part in name.lower() for part in query.name_contains):
            continue
        hits.append((pid, name, tags[pid]))
    page = hits[query.offset:query.offset + query.limit]
    return QueryResult(len(hits), tuple(page))

