"""Pure request rules of the policy family: raw JSON in, validated request out.

Contract: vbs-api §3.5 (``scheduled_policy``), §7.1-§7.9, §2.13 (policy tag
rules), decisions [D36]-[D52]. Each ``parse_*`` takes what the HTTP layer
decoded (anything: None, a list, a string must fail cleanly) and returns a
frozen dataclass or raises :class:`vbs.errors.ServiceError` through
:func:`vbs.service.codes.fail` with the exact ``AutoBackup.*`` code.

Shared shape rules (top of vbs-api §7): no body -> ``0000``; a body that is
not a JSON object -> ``0008``; a required object missing or empty -> ``0001``;
``<`` or ``>`` in any string anywhere -> ``0221`` (checked before the field
rules). Unknown members are ignored (vbs-api §2.3). ``null`` counts as absent.

Decision recorded here: ``start_time`` entries are accepted in any order and
stored as given; §3.5 says their order is "ascending by local time", which
the §2.8 example ``22:00,00:00,02:00`` only satisfies with a time zone, so
the order is not enforced (it never changes when a policy fires).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbs.scheduler.runs import TASK_STATUSES
from vbs.scheduler.schedule import WEEKDAYS, Schedule, parse_start_time, parse_time_zone
from vbs.service import codes as c
from vbs.service.backup_rules import Tag, is_allow_list_text
from vbs.service.codes import fail
from vbs.service.listing import POLICY_TASK_LIST, PageRequest, parse_page_request

__all__ = [
    "SCHEDULED_POLICY_FIELDS",
    "AssociateRequest",
    "CreatePolicyRequest",
    "ModifyPolicyRequest",
    "ScheduledPolicy",
    "TaskQuery",
    "merge_scheduled_policy",
    "parse_associate",
    "parse_create_policy",
    "parse_disassociate",
    "parse_modify_policy",
    "parse_policy_name",
    "parse_policy_tag",
    "parse_policy_tags",
    "parse_task_query",
    "reject_angle_brackets",
    "require_object",
]

SCHEDULED_POLICY_FIELDS = ("start_time", "frequency", "week_frequency", "rentention_num",
                           "rentention_day", "remain_first_backup_of_curMonth", "status")
"""Wire fields of ``scheduled_policy`` in the order they are emitted."""

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class ScheduledPolicy:
    """A complete, valid ``scheduled_policy`` (vbs-api §3.5)."""

    start_time: str
    status: str
    frequency: int | None = None
    week_frequency: tuple[str, ...] | None = None
    rentention_num: int | None = None
    rentention_day: int | None = None
    remain_first_backup_of_curMonth: bool = False
    """Named as on the wire; ``Y`` is True."""

    def schedule(self, time_zone: str | None) -> Schedule:
        """The firing rule (``frequency`` wins over ``week_frequency``)."""
        hours = parse_start_time(self.start_time)
        assert hours is not None
        offset = parse_time_zone(time_zone) if time_zone else None
        return Schedule(hours, self.frequency, frozenset(self.week_frequency or ()), offset)

    def to_wire(self) -> dict[str, Any]:
        """Only the fields that are set, in §3.5 order ([D41])."""
        out: dict[str, Any] = {"start_time": self.start_time}
        if self.frequency is not None:
            out["frequency"] = self.frequency
        if self.week_frequency is not None:
            out["week_frequency"] = list(self.week_frequency)
        if self.rentention_num is not None:
            out["rentention_num"] = self.rentention_num
        if self.rentention_day is not None:
            out["rentention_day"] = self.rentention_day
        out["remain_first_backup_of_curMonth"] = "Y" if self.remain_first_backup_of_curMonth \
            else "N"
        out["status"] = self.status
        return out


@dataclass(frozen=True, slots=True)
class CreatePolicyRequest:
    name: str
    scheduled_policy: ScheduledPolicy
    tags: tuple[Tag, ...]
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class ModifyPolicyRequest:
    """``name``/``time_zone``: None = not supplied; ``time_zone == ""`` clears it."""

    name: str | None
    scheduled_patch: Mapping[str, Any]
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class AssociateRequest:
    policy_id: str
    volume_ids: tuple[str, ...]
    """Distinct, in request order (duplicates processed once)."""


@dataclass(frozen=True, slots=True)
class TaskQuery:
    status: str | None
    job_id: str | None
    page: PageRequest


# --- shared ------------------------------------------------------------------


def reject_angle_brackets(value: object) -> None:
    """``AutoBackup.0221`` when any string (key or value) holds ``<`` or ``>``."""
    if isinstance(value, str):
        if "<" in value or ">" in value:
            fail(c.AB_ANGLE_BRACKETS, "The request must not contain '<' or '>'.")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            reject_angle_brackets(k)
            reject_angle_brackets(v)
    elif isinstance(value, list):
        for item in value:
            reject_angle_brackets(item)


def require_object(body: object) -> Mapping[str, Any]:
    """The body as a mapping: absent -> ``0000``, not an object -> ``0008``; checks ``0221``."""
    if body is None:
        fail(c.AB_BODY_MISSING, "The request requires a JSON body.")
    if not isinstance(body, Mapping):
        fail(c.AB_MALFORMED_REQUEST, "The request body must be a JSON object.")
    reject_angle_brackets(body)
    return body


def parse_policy_name(raw: object) -> str:
    """1-64 of ``[A-Za-z0-9_-]`` (``0101`` length, ``0102`` characters), not
    starting with ``default`` (``0102``, [D36])."""
    if raw is None or (isinstance(raw, str) and not 1 <= len(raw) <= 64):
        fail(c.AB_POLICY_NAME_LENGTH, "backup_policy_name must be 1-64 characters.")
    if not isinstance(raw, str) or not _NAME.fullmatch(raw):
        fail(c.AB_POLICY_NAME_INVALID,
             "backup_policy_name may contain only letters, digits, '_' and '-'.")
    if raw.startswith("default"):
        fail(c.AB_POLICY_NAME_INVALID, "backup_policy_name must not start with 'default'.")
    return raw


def _time_zone(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or parse_time_zone(raw) is None:
        fail(c.AB_TIME_ZONE_INVALID, "time_zone must be UTC+HH:mm or UTC-HH:mm, offset "
                                     "-12:00..+14:00, minutes 00, 30 or 45.")
    return raw


def _int(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _field(name: str, raw: Any) -> Any:
    """Validate one supplied ``scheduled_policy`` field on its own."""
    if name == "start_time":
        if not isinstance(raw, str) or parse_start_time(raw) is None:
            fail(c.AB_START_TIME_INVALID, "start_time must be 1-24 distinct comma-separated "
                                          "whole-hour UTC times HH:00 (00:00-23:00).")
        return raw
    if name == "frequency":
        value = _int(raw)
        if value is None or not 1 <= value <= 30:
            fail(c.AB_FREQUENCY_INVALID, "frequency must be an integer from 1 to 30 (days).")
        return value
    if name == "week_frequency":
        if (not isinstance(raw, list) or not raw or any(d not in WEEKDAYS for d in raw)
                or len(set(raw)) != len(raw)):
            fail(c.AB_FREQUENCY_INVALID, "week_frequency must be a non-empty list of distinct "
                                         "days among SUN MON TUE WED THU FRI SAT.")
        return tuple(raw)
    if name == "rentention_num":
        value = _int(raw)
        if value is None or not 2 <= value <= 99:
            fail(c.AB_RETENTION_INVALID, "rentention_num must be an integer from 2 to 99.")
        return value
    if name == "rentention_day":
        value = _int(raw)
        if value is None and isinstance(raw, float) and math.isfinite(raw):
            value = math.trunc(raw)
        if value is None or not 2 <= value <= 99999:
            fail(c.AB_RETENTION_INVALID, "rentention_day must be an integer from 2 to 99999.")
        return value
    if name == "remain_first_backup_of_curMonth":
        if raw not in ("Y", "N"):
            fail(c.AB_REMAIN_FIRST_BACKUP_INVALID,
                 "remain_first_backup_of_curMonth must be 'Y' or 'N'.")
        return raw == "Y"
    if raw not in ("ON", "OFF"):
        fail(c.AB_POLICY_STATUS_INVALID, "status must be 'ON' or 'OFF'.")
    return raw


def _scheduled_fields(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not raw:
        fail(c.AB_REQUIRED_OBJECT_EMPTY, "scheduled_policy must be a non-empty object.")
    return {name: _field(name, raw[name]) for name in SCHEDULED_POLICY_FIELDS
            if raw.get(name) is not None}


def _complete(values: Mapping[str, Any]) -> ScheduledPolicy:
    if "start_time" not in values:
        fail(c.AB_START_TIME_INVALID, "scheduled_policy.start_time is required.")
    if values.get("frequency") is None and values.get("week_frequency") is None:
        fail(c.AB_FREQUENCY_INVALID, "scheduled_policy needs frequency or week_frequency.")
    if values.get("rentention_num") is None and values.get("rentention_day") is None:
        fail(c.AB_RETENTION_INVALID, "scheduled_policy needs rentention_num or rentention_day.")
    if "status" not in values:
        fail(c.AB_POLICY_STATUS_INVALID, "scheduled_policy.status is required.")
    return ScheduledPolicy(**values)


def merge_scheduled_policy(stored: ScheduledPolicy, patch: Mapping[str, Any]) -> ScheduledPolicy:
    """Field-wise merge [D42]: supplying one of ``frequency``/``week_frequency``
    (or of the two ``rentention_*``) clears the other unless both are supplied."""
    values = {name: getattr(stored, name) for name in SCHEDULED_POLICY_FIELDS}
    values.update(patch)
    for a, b in (("frequency", "week_frequency"), ("rentention_num", "rentention_day")):
        if a in patch and b not in patch:
            values[b] = None
        if b in patch and a not in patch:
            values[a] = None
    return _complete(values)


# --- tags ---------------------------------------------------------------------


def parse_policy_tag(raw: object, where: str) -> Tag:
    """A policy tag of #23/#31: key 1-36, value 0-43, both allow-list -> ``0214``."""
    if not isinstance(raw, Mapping):
        fail(c.AB_TAG_INVALID, f"{where} must be an object with key and value.")
    key, value = raw.get("key"), raw.get("value")
    if not isinstance(key, str) or not 1 <= len(key) <= 36 or not is_allow_list_text(key):
        fail(c.AB_TAG_INVALID, f"{where}.key must be 1-36 letters, digits, '-' or '_'.")
    if not isinstance(value, str) or len(value) > 43 or not is_allow_list_text(value):
        fail(c.AB_TAG_INVALID, f"{where}.value must be 0-43 letters, digits, '-' or '_'.")
    return Tag(key, value)


def parse_policy_tags(raw: object) -> tuple[Tag, ...]:
    """``tags`` of #23: at most 10 (``0215``), valid and with unique keys (``0214``)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        fail(c.AB_TAG_INVALID, "tags must be an array of {key, value} objects.")
    if len(raw) > 10:
        fail(c.AB_TAG_LIMIT, f"A policy may carry at most 10 tags, got {len(raw)}.")
    tags = tuple(parse_policy_tag(item, f"tags[{i}]") for i, item in enumerate(raw))
    if len({t.key for t in tags}) != len(tags):
        fail(c.AB_TAG_INVALID, "tags must have unique keys.")
    return tags


# --- requests -----------------------------------------------------------------


def parse_create_policy(body: object) -> CreatePolicyRequest:
    """``POST /v2/{p}/backuppolicy`` (vbs-api §7.1)."""
    data = require_object(body)
    if not data:
        fail(c.AB_REQUIRED_OBJECT_EMPTY, "The request body is empty.")
    name = parse_policy_name(data.get("backup_policy_name"))
    scheduled = _complete(_scheduled_fields(data.get("scheduled_policy")))
    tags = parse_policy_tags(data.get("tags"))
    return CreatePolicyRequest(name, scheduled, tags, _time_zone(data.get("time_zone")))


def parse_modify_policy(body: object) -> ModifyPolicyRequest:
    """``PUT /v2/{p}/backuppolicy/{id}`` (vbs-api §7.3, §7.4); ``tags`` ignored [D52]."""
    data = require_object(body)
    if not any(k in data for k in ("backup_policy_name", "scheduled_policy", "time_zone")):
        fail(c.AB_BODY_MISSING, "Supply backup_policy_name, scheduled_policy or time_zone.")
    name = None
    if data.get("backup_policy_name") is not None:
        name = parse_policy_name(data["backup_policy_name"])
    patch: dict[str, Any] = {}
    if "scheduled_policy" in data:
        patch = _scheduled_fields(data["scheduled_policy"])
    time_zone = None
    if "time_zone" in data:
        time_zone = _time_zone(data["time_zone"]) or ""
    return ModifyPolicyRequest(name, patch, time_zone)


def parse_associate(body: object) -> AssociateRequest:
    """``POST /v2/{p}/backuppolicyresources`` (vbs-api §7.6)."""
    data = require_object(body)
    policy_id = data.get("backup_policy_id")
    if not isinstance(policy_id, str) or not policy_id:
        fail(c.AB_POLICY_ID_MISSING, "backup_policy_id is required.")
    volume_ids = _resource_ids(data.get("resources"), check_type=True)
    return AssociateRequest(policy_id, volume_ids)


def parse_disassociate(body: object) -> tuple[str, ...]:
    """``POST .../backuppolicyresources/{id}/deleted_resources`` (vbs-api §7.7)."""
    return _resource_ids(require_object(body).get("resources"), check_type=False)


def _resource_ids(raw: object, *, check_type: bool) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        fail(c.AB_RESOURCES_MISSING, "resources must be a non-empty array.")
    ids: list[str] = []
    for i, item in enumerate(raw):
        rid = item.get("resource_id") if isinstance(item, Mapping) else None
        if not isinstance(rid, str) or not rid:
            fail(c.AB_RESOURCE_ID_MISSING, f"resources[{i}].resource_id is required.")
        if check_type and item.get("resource_type") != "volume":
            fail(c.AB_RESOURCE_TYPE_INVALID, f"resources[{i}].resource_type must be 'volume'.")
        if rid not in ids:
            ids.append(rid)
    return tuple(ids)


def parse_task_query(query: Mapping[str, str]) -> TaskQuery:
    """``GET .../backuptasks`` (vbs-api §7.9); bad values -> ``0008`` [D15]."""
    reject_angle_brackets(dict(query))
    status = query.get("status") or None
    if status is not None and status not in TASK_STATUSES:
        fail(c.AB_MALFORMED_REQUEST, f"status must be one of {', '.join(TASK_STATUSES)}.")
    return TaskQuery(status, query.get("job_id") or None,
                     parse_page_request(query, POLICY_TASK_LIST))
