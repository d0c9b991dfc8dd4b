"""Pagination and sorting rules shared by every list endpoint.

Contract: vbs-api §2.6 (pagination), §2.7 (sorting) and openstack-compat §5.4
(Cinder's ``limit``/``marker``/``offset``/``sort``/``sort_key``/``sort_dir``).
The functions here are pure: they turn the raw query mapping of a request into
a validated :class:`PageRequest`, and build the Cinder-style ``next`` link of
a page.  What a *marker* points at is checked later by whoever queries the
store (an unknown marker is a database fact, not a syntax one).

Each endpoint family differs only in data, captured by a :class:`ListRules`
value: which error code a bad value raises (native ``badRequest`` vs.
``AutoBackup.0008`` [D15]), which sort keys exist, and the default/maximum
page size.  The three families of vbs-api §2.6 are predefined:
:data:`NATIVE_BACKUP_LIST`, :data:`SHARE_LIST`, :data:`POLICY_TASK_LIST`.

Decisions (see the module's tests):

* ``limit`` above the maximum is clamped; ``limit`` ≤ 0 or not an integer is
  rejected (vbs-api §2.6, stricter than Cinder which allows ``0``).
* ``sort=key[:dir]`` (what python-cinderclient and openstacksdk send) is
  accepted next to the legacy ``sort_key``/``sort_dir``; combining them is a
  400 as in Cinder; only one key is supported (vbs-api §2.7), so a comma list
  is a 400.
* ``sort_dir`` is matched case-insensitively and normalised to lower case.
* An empty ``marker=`` means "no marker".
* The next link keeps every original query parameter except ``limit``,
  ``marker`` and ``offset``, then appends ``limit`` and ``marker`` [D13]:
  the marker already accounts for the offset of the first page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from vbs.service.codes import AB_MALFORMED_REQUEST, NATIVE_BAD_REQUEST, ApiCode, fail

__all__ = [
    "DB_MAX_INT",
    "DEFAULT_MAX_LIMIT",
    "NATIVE_BACKUP_LIST",
    "NATIVE_SORT_KEYS",
    "POLICY_TASK_LIST",
    "SHARE_LIST",
    "ListRules",
    "PageRequest",
    "SortDir",
    "collection_links",
    "has_next_page",
    "next_page_href",
    "parse_int",
    "parse_page_request",
    "parse_query_bool",
]

SortDir = Literal["asc", "desc"]

DEFAULT_MAX_LIMIT = 1000
"""Default and maximum page size of the native lists [D14]."""

NATIVE_SORT_KEYS = frozenset({"name", "status", "size", "id", "created_at", "updated_at"})
"""Sort keys of the native backup and sharing lists (vbs-api §2.7)."""

_NATIVE_SORT_ALIASES: Mapping[str, str] = {
    # cinderclient always rewrites ``name`` to ``display_name`` (openstack-compat §5.4).
    "display_name": "name",
    # Image-only keys, accepted and treated as created_at [D16].
    "container_format": "created_at",
    "disk_format": "created_at",
}

_INT = re.compile(r"-?[0-9]+")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


@dataclass(frozen=True, slots=True)
class ListRules:
    """What one list endpoint accepts; see the module docstring."""

    invalid: ApiCode
    sort_keys: frozenset[str]
    sort_key_aliases: Mapping[str, str] = field(default_factory=dict)
    default_sort_key: str = "created_at"
    default_sort_dir: SortDir = "desc"
    default_limit: int = DEFAULT_MAX_LIMIT
    max_limit: int = DEFAULT_MAX_LIMIT
    accepts_marker: bool = True
    accepts_sort_param: bool = True


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A validated page request.

    Apply ``marker`` first (start after that item in the ``sort_key``/
    ``sort_dir`` order, ties broken by ``id`` in the same direction), then skip
    ``offset`` items, then return at most ``limit`` (vbs-api §2.6, §2.7).
    """

    limit: int
    offset: int = 0
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: SortDir = "desc"


NATIVE_BACKUP_LIST = ListRules(
    invalid=NATIVE_BAD_REQUEST,
    sort_keys=NATIVE_SORT_KEYS,
    sort_key_aliases=_NATIVE_SORT_ALIASES,
)
"""Native backup lists #7, #8, #13, #14."""

SHARE_LIST = ListRules(
    invalid=NATIVE_BAD_REQUEST,
    sort_keys=NATIVE_SORT_KEYS,
    sort_key_aliases=_NATIVE_SORT_ALIASES,
    accepts_marker=False,
)
"""Sharing list #20: ``limit``/``offset`` only, no marker (vbs-api §2.6)."""

POLICY_TASK_LIST = ListRules(
    invalid=AB_MALFORMED_REQUEST,
    sort_keys=frozenset({"created_at"}),
    default_limit=20,
    accepts_sort_param=False,
)
"""Policy task list #30: default limit 20, ``created_at`` only (vbs-api §7.9)."""


DB_MAX_INT = 2**31 - 1
"""Largest integer a request may carry (Cinder's ``DB_MAX_INT``): offsets,
limits and sizes beyond it are 400, never an overflow in the database."""


def parse_int(name: str, raw: object, *, minimum: int, invalid: ApiCode,
              maximum: int = DB_MAX_INT) -> int:
    """Parse a query or body integer (``"10"`` or ``10``) in ``[minimum, maximum]``.

    Booleans and floats are refused even though JSON-wise they look numeric:
    ``limit: true`` is a client bug, not a page size. Values above
    ``maximum`` (default :data:`DB_MAX_INT`) are 400 (issue 8: ``offset=2**63``
    overflowed SQLite and answered 500); digit strings are length-checked
    before ``int()`` so a megabyte of digits costs nothing.
    """
    if isinstance(raw, bool):
        fail(invalid, f"{name} must be an integer, got {raw!r}.")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and len(raw) <= 40 and _INT.fullmatch(raw):
        value = int(raw)
    elif isinstance(raw, str) and raw.lstrip("-").isdigit() and raw.isascii():
        fail(invalid, f"{name} must be an integer <= {maximum}.")
    else:
        fail(invalid, f"{name} must be an integer, got {str(raw)[:40]!r}.")
    if value < minimum:
        fail(invalid, f"{name} must be an integer >= {minimum}, got {value}.")
    if value > maximum:
        fail(invalid, f"{name} must be an integer <= {maximum}, got {value}.")
    return value


def parse_query_bool(name: str, raw: str, *, invalid: ApiCode) -> bool:
    """Query booleans: ``true``/``false`` in any case, or ``1``/``0`` (vbs-api §2.3)."""
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    fail(invalid, f"{name} must be a boolean (true/false), got {raw!r}.")


def _sort_dir(raw: str, rules: ListRules) -> SortDir:
    lowered = raw.lower()
    if lowered == "asc":
        return "asc"
    if lowered == "desc":
        return "desc"
    fail(rules.invalid, f"sort_dir must be 'asc' or 'desc', got {raw!r}.")


def _sort_key(raw: str, rules: ListRules) -> str:
    key = rules.sort_key_aliases.get(raw, raw)
    if key not in rules.sort_keys:
        allowed = ", ".join(sorted(rules.sort_keys | rules.sort_key_aliases.keys()))
        fail(rules.invalid, f"Invalid sort key {raw!r}; allowed: {allowed}.")
    return key


def parse_page_request(query: Mapping[str, str], rules: ListRules) -> PageRequest:
    """Validate ``limit``, ``offset``, ``marker`` and the sort parameters of ``query``.

    Parameters the endpoint does not page or sort by are ignored (filters are
    someone else's business).  Raises :class:`vbs.errors.ServiceError` with
    ``rules.invalid`` for any bad value.
    """
    raw_limit = query.get("limit")
    limit = rules.default_limit
    if raw_limit is not None:
        parsed = parse_int("limit", raw_limit, minimum=1, invalid=rules.invalid,
                           maximum=2**63 - 1)  # clamped just below, as Cinder does
        limit = min(parsed, rules.max_limit)
    raw_offset = query.get("offset")
    offset = 0 if raw_offset is None else parse_int(
        "offset", raw_offset, minimum=0, invalid=rules.invalid
    )
    marker = (query.get("marker") or None) if rules.accepts_marker else None

    sort_key, sort_dir = rules.default_sort_key, rules.default_sort_dir
    raw_sort = query.get("sort") if rules.accepts_sort_param else None
    raw_key, raw_dir = query.get("sort_key"), query.get("sort_dir")
    if raw_sort is not None:
        if raw_key is not None or raw_dir is not None:
            fail(rules.invalid, "The 'sort_key' and 'sort_dir' parameters are deprecated "
                                "and cannot be used with the 'sort' parameter.")
        if "," in raw_sort:
            fail(rules.invalid, f"Only one sort key is supported, got sort={raw_sort!r}.")
        key_part, _, dir_part = raw_sort.partition(":")
        sort_key = _sort_key(key_part, rules)
        if dir_part:
            sort_dir = _sort_dir(dir_part, rules)
    else:
        if raw_key is not None:
            if "," in raw_key:
                fail(rules.invalid, f"Only one sort key is supported, got {raw_key!r}.")
            sort_key = _sort_key(raw_key, rules)
        if raw_dir is not None:
            sort_dir = _sort_dir(raw_dir, rules)
    return PageRequest(limit=limit, offset=offset, marker=marker,
                       sort_key=sort_key, sort_dir=sort_dir)


def has_next_page(returned: int, limit: int) -> bool:
    """Cinder's rule when the store cannot say whether more rows exist: a full,
    non-empty page may have a successor (openstack-compat §5.4).  Prefer
    fetching ``limit + 1`` rows and passing the exact answer to
    :func:`collection_links`."""
    return returned > 0 and returned >= limit


def next_page_href(
    collection_url: str,
    query: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    limit: int,
    marker: str,
) -> str:
    """``{collection_url}?{original params}&limit={limit}&marker={marker}`` (vbs-api §2.6).

    ``collection_url`` is the absolute URL the client used, without query
    (e.g. ``https://host/v3/{project_id}/backups/detail``).  ``query`` keeps
    its order; pass a multi-item sequence to keep repeated parameters.
    """
    items = query.items() if isinstance(query, Mapping) else query
    kept = [(k, v) for k, v in items if k not in ("limit", "marker", "offset")]
    kept += [("limit", str(limit)), ("marker", marker)]
    return f"{collection_url}?{urlencode(kept)}"


def collection_links(
    collection_url: str,
    query: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    limit: int,
    last_id: str | None,
    has_more: bool,
) -> list[dict[str, str]]:
    """The ``backups_links`` value: one ``next`` link when ``has_more`` and the
    page is non-empty, otherwise ``[]`` (the key is then omitted, [D13])."""
    if not has_more or last_id is None:
        return []
    href = next_page_href(collection_url, query, limit=limit, marker=last_id)
    return [{"href": href, "rel": "next"}]
