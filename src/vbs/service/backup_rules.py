"""Pure request rules of the backup family: raw JSON in, validated request out.

Every ``parse_*`` function takes what the HTTP layer decoded (a ``dict`` — or
anything at all: a list, a string, ``None`` must fail cleanly) and returns a
frozen dataclass holding the normalised request, or raises
:class:`vbs.errors.ServiceError` through :func:`vbs.service.codes.fail` with
the exact wire code of the contract and a message naming field and rule.

Scope: syntax and shape only.  Rules that need the database or the disk
inventory (unknown disk, busy disk, status, quota, size) belong to the service
functions; their codes are in :mod:`vbs.service.codes`.  Unknown members are
ignored (vbs-api §2.3).  IDs are canonical UUIDs, accepted in either case and
returned in lower case (vbs-api §2.9).

Native requests are gated by microversion, passed as a ``(major, minor)``
tuple (``ApiVersion`` of :mod:`vbs.api.schemas.microversions` is one); a
``/v2`` request is ``(3, 0)`` (openstack-compat §5.12).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from vbs.service import codes as c
from vbs.service.codes import ApiCode, fail
from vbs.service.listing import NATIVE_BACKUP_LIST, PageRequest, parse_page_request
from vbs.service.listing import parse_query_bool as _query_bool
from vbs.service.volume_records import METADATA_MAX_ITEMS

__all__ = [
    "AVAILABILITY_ZONE_MIN_VERSION",
    "BACKUP_STATUSES",
    "LIKE_FILTERS_MIN_VERSION",
    "METADATA_MIN_VERSION",
    "RESET_STATUSES",
    "WITH_COUNT_MIN_VERSION",
    "BackupFilters",
    "ForceDelete",
    "NativeCreateRequest",
    "NativeListQuery",
    "NativeRestoreRequest",
    "ResetStatus",
    "Tag",
    "VbsCreateRequest",
    "VbsDeleteRequest",
    "VbsRestoreRequest",
    "is_allow_list_text",
    "is_deny_list_text",
    "normalise_uuid",
    "parse_backup_action",
    "parse_backup_tags",
    "parse_native_backup_id",
    "parse_native_create",
    "parse_native_list_query",
    "parse_native_restore",
    "parse_vbs_create",
    "parse_vbs_delete",
    "parse_vbs_restore",
]

Version = tuple[int, int]

METADATA_MIN_VERSION: Version = (3, 43)
"""``metadata`` in a native create body (openstack-compat §5.1)."""
AVAILABILITY_ZONE_MIN_VERSION: Version = (3, 51)
"""``availability_zone`` in a native create body (openstack-compat §5.1)."""
LIKE_FILTERS_MIN_VERSION: Version = (3, 31)
"""``name~``/``status~``/``volume_id~`` list filters (vbs-api §5.2, [D17])."""
WITH_COUNT_MIN_VERSION: Version = (3, 45)
"""``with_count`` list parameter (vbs-api §5.2)."""

BACKUP_STATUSES = frozenset(
    {"creating", "available", "error", "restoring", "deleting", "error_restoring",
     "error_deleting"}
)
"""Values of the ``status`` list filter (vbs-api §2.11, [D27])."""
RESET_STATUSES = ("available", "error")
"""What ``os-reset_status`` may set (openstack-compat §5.8)."""

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_DENY = re.compile(r"[\x00-\x1f=*<>\\,|/]")
_ALLOW = re.compile(r"[^\W]|-", re.UNICODE)
_NATIVE_TEXT_MAX = 255


@dataclass(frozen=True, slots=True)
class Tag:
    """A backup or policy tag; keys are unique per resource (vbs-api §2.13)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class VbsCreateRequest:
    """``POST /v2/{p}/cloudbackups`` (vbs-api §4.1). ``full_backup`` is
    ``extend_param.FullBackup`` [D12]."""

    volume_id: str
    snapshot_id: str | None
    name: str
    description: str | None
    tags: tuple[Tag, ...]
    full_backup: bool


@dataclass(frozen=True, slots=True)
class VbsDeleteRequest:
    """``POST|DELETE /v2/{p}/cloudbackups/{backup_id}`` (vbs-api §4.2)."""

    backup_id: str


@dataclass(frozen=True, slots=True)
class VbsRestoreRequest:
    """``POST /v2/{p}/cloudbackups/{backup_id}/restore`` (vbs-api §4.3)."""

    backup_id: str
    volume_id: str


@dataclass(frozen=True, slots=True)
class NativeCreateRequest:
    """``POST /v{2,3}/{p}/backups`` (vbs-api §5.1, openstack-compat §5.3).

    ``incremental`` decides only what ``is_incremental`` reports, as Cinder
    does (the engine always reads just what changed since the last backup);
    ``force`` carries no behaviour (§2.12, [D11]).  ``metadata`` is empty unless sent at ≥ 3.43.
    """

    volume_id: str
    snapshot_id: str | None
    name: str | None
    description: str | None
    container: str | None
    incremental: bool
    force: bool
    metadata: tuple[tuple[str, str], ...]
    availability_zone: str | None


@dataclass(frozen=True, slots=True)
class NativeRestoreRequest:
    """``POST /v{2,3}/{p}/backups/{id}/restore`` (vbs-api §5.6, openstack-compat §5.9).

    With ``volume_id`` the backup overwrites that disk (``name`` is then
    ``None``); without it a new disk is created, named ``name`` or, when that
    is ``None`` too, ``restore_backup_<backup_id>``.
    """

    volume_id: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class BackupFilters:
    """Native list filters: exact (``name``…) and, from 3.31, substring (``…_like``)."""

    name: str | None = None
    status: str | None = None
    volume_id: str | None = None
    name_like: str | None = None
    status_like: str | None = None
    volume_id_like: str | None = None


@dataclass(frozen=True, slots=True)
class NativeListQuery:
    """Query of ``GET /v{2,3}/{p}/backups[/detail]`` (vbs-api §5.2, §5.3)."""

    filters: BackupFilters
    page: PageRequest
    with_count: bool


@dataclass(frozen=True, slots=True)
class ForceDelete:
    """``{"os-force_delete": <anything>}`` (openstack-compat §5.8)."""


@dataclass(frozen=True, slots=True)
class ResetStatus:
    """``{"os-reset_status": {"status": "available"|"error"}}`` (openstack-compat §5.8)."""

    status: str


# --- shared primitives ------------------------------------------------------


def normalise_uuid(raw: object) -> str | None:
    """The lower-case canonical form of a UUID string, or ``None`` if ``raw`` is not one."""
    if isinstance(raw, str) and _UUID.fullmatch(raw):
        return raw.lower()
    return None


def is_deny_list_text(text: str) -> bool:
    """True when ``text`` has no ASCII 0–31 and none of ``= * < > \\ , | /`` (§2.13)."""
    return _DENY.search(text) is None


def is_allow_list_text(text: str) -> bool:
    """True when ``text`` has only (Unicode) letters, digits, ``-`` and ``_`` (§2.13, [D50])."""
    return all(_ALLOW.fullmatch(ch) for ch in text)


def _object(body: object, key: str, code: ApiCode) -> Mapping[str, object]:
    if not isinstance(body, Mapping):
        fail(code, f"The request body must be a JSON object containing '{key}'.")
    inner = body.get(key)
    if not isinstance(inner, Mapping):
        fail(code, f"The request body must contain the object '{key}'.")
    return inner


def _bool(field: str, raw: object, code: ApiCode) -> bool:
    """Cinder's ``parameter_types.boolean`` (openstack-compat §5.3); ``null`` = false."""
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        lowered = raw.lower()
        if lowered in ("true", "1", "on", "yes", "y", "t"):
            return True
        if lowered in ("false", "0", "off", "no", "n", "f"):
            return False
    fail(code, f"{field} must be a boolean, got {raw!r}.")


def _optional_text(field: str, raw: object, *, max_len: int, code: ApiCode,
                   no_angle: bool = False) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        fail(code, f"{field} must be a string.")
    if len(raw) > max_len:
        fail(code, f"{field} must be at most {max_len} characters, got {len(raw)}.")
    if no_angle and ("<" in raw or ">" in raw):
        fail(code, f"{field} must not contain '<' or '>'.")
    return raw


def _backup_name(field: str, raw: object, *, missing: ApiCode, empty: ApiCode,
                 too_long: ApiCode, bad_char: ApiCode, prefix: ApiCode) -> str:
    """1–64 characters of ``[A-Za-z0-9_-]``, not starting with ``auto`` (vbs-api §4.1).

    ``auto`` is case-sensitive: the prefix is reserved for policy backups
    (``autobk_xxxx``, §2.14), ``Auto-x`` is a valid user name.
    """
    if raw is None:
        fail(missing, f"{field} is required.")
    if not isinstance(raw, str):
        fail(bad_char, f"{field} must be a string.")
    if raw == "":
        fail(empty, f"{field} must be 1-64 characters, got an empty string.")
    if len(raw) > 64:
        fail(too_long, f"{field} must be at most 64 characters, got {len(raw)}.")
    if not _NAME.fullmatch(raw):
        fail(bad_char, f"{field} may contain only letters, digits, '_' and '-'.")
    if raw.startswith("auto"):
        fail(prefix, f"{field} must not start with 'auto' (reserved for policy backups).")
    return raw


# --- VBS extension (vbs-api §4) --------------------------------------------


def parse_backup_tags(raw: object) -> tuple[Tag, ...]:
    """``backup.tags``: ≤ 10 tags, key 1–36 and value 0–43 characters, both
    deny-list, unique keys (vbs-api §2.13) → ``VolumeBackup.0049``/``0050``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        fail(c.VB_TAG_INVALID, "backup.tags must be an array of {key, value} objects.")
    if len(raw) > 10:
        fail(c.VB_TAG_LIMIT, f"backup.tags may hold at most 10 tags, got {len(raw)}.")
    tags: list[Tag] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"backup.tags[{i}]"
        if not isinstance(item, Mapping):
            fail(c.VB_TAG_INVALID, f"{where} must be an object with key and value.")
        key, value = item.get("key"), item.get("value")
        if not isinstance(key, str) or not 1 <= len(key) <= 36:
            fail(c.VB_TAG_INVALID, f"{where}.key must be a string of 1-36 characters.")
        if not isinstance(value, str) or len(value) > 43:
            fail(c.VB_TAG_INVALID, f"{where}.value must be a string of 0-43 characters.")
        for part, text in (("key", key), ("value", value)):
            if not is_deny_list_text(text):
                fail(c.VB_TAG_INVALID, f"{where}.{part} must not contain control characters "
                                       "or any of = * < > \\ , | /.")
        if key in seen:
            fail(c.VB_TAG_INVALID, f"{where}.key {key!r} is duplicated.")
        seen.add(key)
        tags.append(Tag(key, value))
    return tuple(tags)


def parse_vbs_create(body: object) -> VbsCreateRequest:
    """Validate a ``cloudbackups`` create body (vbs-api §4.1, §10.2)."""
    backup = _object(body, "backup", c.VB_MALFORMED_BODY)
    raw_volume = backup.get("volume_id")
    if raw_volume is None or raw_volume == "":
        fail(c.VB_VOLUME_ID_MISSING, "backup.volume_id is required.")
    volume_id = normalise_uuid(raw_volume)
    if volume_id is None:
        fail(c.VB_VOLUME_ID_MALFORMED, f"backup.volume_id must be a UUID, got {raw_volume!r}.")
    raw_snapshot = backup.get("snapshot_id")
    snapshot_id = None
    if raw_snapshot is not None and raw_snapshot != "":
        snapshot_id = normalise_uuid(raw_snapshot)
        if snapshot_id is None:
            fail(c.VB_MALFORMED_BODY, f"backup.snapshot_id must be a UUID, got {raw_snapshot!r}.")
    name = _backup_name(
        "backup.name", backup.get("name"), missing=c.VB_NAME_MISSING, empty=c.VB_NAME_EMPTY,
        too_long=c.VB_NAME_TOO_LONG, bad_char=c.VB_NAME_BAD_CHARACTER,
        prefix=c.VB_NAME_RESERVED_PREFIX,
    )
    description = _optional_text("backup.description", backup.get("description"), max_len=64,
                                 code=c.VB_DESCRIPTION_INVALID, no_angle=True) or None
    extend = backup.get("extend_param")
    if extend is not None and not isinstance(extend, Mapping):
        fail(c.VB_MALFORMED_BODY, "backup.extend_param must be an object.")
    full = (extend or {}).get("FullBackup")
    full_backup = full is True or (isinstance(full, str) and full.lower() == "true")
    return VbsCreateRequest(
        volume_id=volume_id, snapshot_id=snapshot_id, name=name, description=description,
        tags=parse_backup_tags(backup.get("tags")), full_backup=full_backup,
    )


def parse_vbs_delete(backup_id: str) -> VbsDeleteRequest:
    """A path ID that cannot be a backup is simply not found: 404
    ``VolumeBackup.0110`` (vbs-api §4.2; lets SDKs treat it as missing)."""
    normal = normalise_uuid(backup_id)
    if normal is None:
        fail(c.VB_BACKUP_NOT_FOUND, f"Backup {backup_id} does not exist in this project.")
    return VbsDeleteRequest(normal)


def parse_vbs_restore(backup_id: str, body: object) -> VbsRestoreRequest:
    """Validate a ``cloudbackups`` restore (vbs-api §4.3, §10.4)."""
    if backup_id == "":
        fail(c.VB_RESTORE_BACKUP_ID_MISSING, "backup_id is required.")
    normal = normalise_uuid(backup_id)
    if normal is None:
        fail(c.VB_RESTORE_BACKUP_ID_MALFORMED, f"backup_id must be a UUID, got {backup_id!r}.")
    restore = _object(body, "restore", c.VB_RESTORE_MALFORMED)
    raw_volume = restore.get("volume_id")
    volume_id = normalise_uuid(raw_volume)
    if volume_id is None:
        fail(c.VB_RESTORE_VOLUME_ID_INVALID,
             f"restore.volume_id is required and must be a UUID, got {raw_volume!r}.")
    return VbsRestoreRequest(backup_id=normal, volume_id=volume_id)


# --- native OpenStack API (vbs-api §5, openstack-compat §5) -----------------

_BAD = c.NATIVE_BAD_REQUEST


def parse_native_backup_id(backup_id: str) -> str:
    """A non-UUID path ID is 404 ``itemNotFound``, never 400: openstacksdk looks
    names up by GET-ing them as IDs first (openstack-compat §5)."""
    normal = normalise_uuid(backup_id)
    if normal is None:
        fail(c.NATIVE_NOT_FOUND, f"Backup {backup_id} could not be found.")
    return normal


def _native_metadata(raw: object) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        fail(_BAD, "backup.metadata must be an object of string values.")
    if len(raw) > METADATA_MAX_ITEMS:
        fail(_BAD, f"backup.metadata has {len(raw)} items, more than the maximum of "
                   f"{METADATA_MAX_ITEMS}.")
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        if not isinstance(key, str) or not 1 <= len(key) <= _NATIVE_TEXT_MAX:
            fail(_BAD, "backup.metadata keys must be strings of 1-255 characters.")
        if not isinstance(value, str) or len(value) > _NATIVE_TEXT_MAX:
            fail(_BAD, f"backup.metadata[{key!r}] must be a string of 0-255 characters.")
        pairs.append((key, value))
    return tuple(pairs)


def parse_native_create(body: object, *, version: Version = (3, 0),
                        require_snapshot_id: bool = False) -> NativeCreateRequest:
    """Validate a native create body (vbs-api §5.1, openstack-compat §5.3).

    ``snapshot_id`` is optional by default although [D9] marks it required:
    python-cinderclient sends ``null`` and openstacksdk omits it (openstack-
    compat §5.3), so a required snapshot would break both; pass
    ``require_snapshot_id=True`` to follow [D9] literally.  ``metadata`` below
    3.43 and ``availability_zone`` below 3.51 are 400s as in Cinder.
    """
    backup = _object(body, "backup", _BAD)
    raw_volume = backup.get("volume_id")
    if raw_volume is None:
        fail(_BAD, "backup.volume_id is required.")
    volume_id = normalise_uuid(raw_volume)
    if volume_id is None:
        fail(_BAD, f"backup.volume_id must be a UUID, got {raw_volume!r}.")
    raw_snapshot = backup.get("snapshot_id")
    snapshot_id = None
    if raw_snapshot is None:
        if require_snapshot_id:
            fail(_BAD, "backup.snapshot_id is required.")
    else:
        snapshot_id = normalise_uuid(raw_snapshot)
        if snapshot_id is None:
            fail(_BAD, f"backup.snapshot_id must be a UUID, got {raw_snapshot!r}.")
    raw_name = backup.get("name")
    name = None if raw_name is None else _backup_name(
        "backup.name", raw_name, missing=_BAD, empty=_BAD, too_long=_BAD, bad_char=_BAD,
        prefix=_BAD,
    )
    if "metadata" in backup and version < METADATA_MIN_VERSION:
        fail(_BAD, "backup.metadata requires microversion 3.43 or later.")
    if "availability_zone" in backup and version < AVAILABILITY_ZONE_MIN_VERSION:
        fail(_BAD, "backup.availability_zone requires microversion 3.51 or later.")
    return NativeCreateRequest(
        volume_id=volume_id,
        snapshot_id=snapshot_id,
        name=name,
        description=_optional_text("backup.description", backup.get("description"),
                                   max_len=_NATIVE_TEXT_MAX, code=_BAD, no_angle=True),
        container=_optional_text("backup.container", backup.get("container"),
                                 max_len=_NATIVE_TEXT_MAX, code=_BAD),
        incremental=_bool("backup.incremental", backup.get("incremental"), _BAD),
        force=_bool("backup.force", backup.get("force"), _BAD),
        metadata=_native_metadata(backup.get("metadata")),
        availability_zone=_optional_text("backup.availability_zone",
                                         backup.get("availability_zone"),
                                         max_len=_NATIVE_TEXT_MAX, code=_BAD) or None,
    )


def parse_native_restore(body: object) -> NativeRestoreRequest:
    """Validate a native restore body (vbs-api §5.6, openstack-compat §5.9)."""
    restore = _object(body, "restore", _BAD)
    raw_volume = restore.get("volume_id")
    if raw_volume is not None:
        volume_id = normalise_uuid(raw_volume)
        if volume_id is None:
            fail(_BAD, f"restore.volume_id must be a UUID, got {raw_volume!r}.")
        return NativeRestoreRequest(volume_id=volume_id, name=None)
    name = _optional_text("restore.name", restore.get("name"), max_len=_NATIVE_TEXT_MAX,
                          code=_BAD)
    return NativeRestoreRequest(volume_id=None, name=name or None)


def parse_native_list_query(query: Mapping[str, str], *,
                            version: Version = (3, 0)) -> NativeListQuery:
    """Filters, paging and sorting of the native lists (vbs-api §5.2, §5.3, §2.6, §2.7).

    Version-gated parameters below their version are ignored (vbs-api §5.2);
    other unknown parameters (``all_tenants``, ``project_id`` …) are ignored.
    """
    status = query.get("status")
    if status is not None and status not in BACKUP_STATUSES:
        allowed = ", ".join(sorted(BACKUP_STATUSES))
        fail(_BAD, f"Invalid status filter {status!r}; allowed: {allowed}.")
    like = version >= LIKE_FILTERS_MIN_VERSION
    with_count = False
    raw_count = query.get("with_count")
    if raw_count is not None and version >= WITH_COUNT_MIN_VERSION:
        with_count = _query_bool("with_count", raw_count, invalid=_BAD)
    filters = BackupFilters(
        name=query.get("name"),
        status=status,
        volume_id=query.get("volume_id"),
        name_like=query.get("name~") if like else None,
        status_like=query.get("status~") if like else None,
        volume_id_like=query.get("volume_id~") if like else None,
    )
    return NativeListQuery(filters=filters, page=parse_page_request(query, NATIVE_BACKUP_LIST),
                           with_count=with_count)


def parse_backup_action(body: object) -> ForceDelete | ResetStatus:
    """``POST /backups/{id}/action`` (openstack-compat §5.8): exactly one key,
    ``os-force_delete`` (any value, clients send ``null``) or ``os-reset_status``."""
    if not isinstance(body, Mapping) or not body:
        fail(_BAD, "Malformed request body: expected one action object.")
    if len(body) != 1:
        fail(_BAD, "Malformed request body: too many body keys.")
    ((action, value),) = body.items()
    if action == "os-force_delete":
        return ForceDelete()
    if action != "os-reset_status":
        fail(_BAD, f"There is no such action: {action}.")
    raw = value.get("status") if isinstance(value, Mapping) else None
    if not isinstance(raw, str) or raw.lower() not in RESET_STATUSES:
        fail(_BAD, f"Backup status: {raw} is invalid, valid statuses are: "
                   f"{list(RESET_STATUSES)}.")
    return ResetStatus(raw.lower())
