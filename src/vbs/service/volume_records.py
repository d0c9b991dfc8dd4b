"""Records, errors, rule helpers and list plumbing shared by the volume-store use cases.

Records are frozen snapshots of a row taken inside the caller's unit of
work; they never hold ORM objects, so they can cross threads and outlive
the session. Errors are :class:`vbs.errors.ServiceError` subclasses carrying
Cinder's native fault (``itemNotFound`` / ``badRequest``), so the native API
renders them as they are; other API families (the VBS extension) catch the
subclass and re-raise with their own code (e.g. ``VolumeBackup.0021``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, CursorResult, Select, and_, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from vbs.db.base import utcnow
from vbs.db.models_volumes import Snapshot, Volume
from vbs.errors import ServiceError
from vbs.service.codes import NATIVE_BAD_REQUEST, NATIVE_NOT_FOUND
from vbs.service.listing import PageRequest

__all__ = [
    "METADATA_MAX_ITEMS",
    "InvalidVolumeInput",
    "MarkerNotFound",
    "Page",
    "SnapshotRecord",
    "SnapshotRecordNotFound",
    "VolumeImportRefused",
    "VolumeRecord",
    "VolumeRecordNotFound",
    "VolumeServiceError",
    "VolumeStateConflict",
    "check_metadata",
    "check_text",
    "compare_and_set",
    "fetch_page",
    "load_snapshot_row",
    "load_volume_row",
    "snapshot_record",
    "volume_record",
]

R = TypeVar("R")


class VolumeServiceError(ServiceError):
    """Base of the volume store's rule violations (native fault, status)."""

    code = "vbs.service.volume"
    _fault = NATIVE_BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message, self._fault.code, self._fault.status)


class VolumeRecordNotFound(VolumeServiceError):
    """No volume with that id in that project (404 ``itemNotFound``)."""

    code = "vbs.service.volume.not_found"
    _fault = NATIVE_NOT_FOUND


class SnapshotRecordNotFound(VolumeServiceError):
    """No (visible) snapshot with that id in that project (404)."""

    code = "vbs.service.snapshot.not_found"
    _fault = NATIVE_NOT_FOUND


class MarkerNotFound(VolumeServiceError):
    """A list ``marker`` names no item of the project (404, as Cinder)."""

    code = "vbs.service.volume.marker_not_found"
    _fault = NATIVE_NOT_FOUND


class InvalidVolumeInput(VolumeServiceError):
    """A request value breaks a rule (size, name length, metadata...) (400)."""

    code = "vbs.service.volume.invalid_input"


class VolumeStateConflict(VolumeServiceError):
    """The volume or snapshot is in a status that forbids the operation (400,
    Cinder's "Invalid volume: ..." family)."""

    code = "vbs.service.volume.invalid_state"


class VolumeImportRefused(VolumeServiceError):
    """An import source is outside the allowed roots, missing, of the wrong
    kind, empty or already imported; the message names the path and why."""

    code = "vbs.service.volume.import_refused"


@dataclass(frozen=True, slots=True)
class VolumeRecord:
    """A volume as committed (or about to be) in the database.

    ``size_gb`` is what Cinder calls ``size``; ``size_bytes`` is exact (an
    imported image need not be a whole number of GiB). ``external_path`` is
    set for imports only; use :func:`vbs.service.volumes.volume_path` for
    the path the engine opens.
    """

    id: str
    project_id: str
    user_id: str | None
    name: str | None
    description: str | None
    size_gb: int
    size_bytes: int
    status: str
    driver: str
    imported: bool
    external_path: str | None
    bootable: bool
    availability_zone: str
    snapshot_id: str | None
    attached_to: str | None
    metadata: Mapping[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A snapshot row; ``method`` is None until the data exists."""

    id: str
    project_id: str
    volume_id: str
    user_id: str | None
    name: str | None
    description: str | None
    size_gb: int
    status: str
    method: str | None
    internal: bool
    metadata: Mapping[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a list: ``has_more`` is exact (one extra row was fetched);
    ``count`` is the number of matches ignoring paging, when asked for."""

    items: tuple[R, ...]
    has_more: bool
    count: int | None = None


def _frozen(meta: Mapping[str, Any] | None) -> Mapping[str, str]:
    return MappingProxyType({str(k): str(v) for k, v in (meta or {}).items()})


def volume_record(row: Volume) -> VolumeRecord:
    return VolumeRecord(
        id=row.id, project_id=row.project_id, user_id=row.user_id, name=row.name,
        description=row.description, size_gb=row.size_gb, size_bytes=row.size_bytes,
        status=row.status, driver=row.driver, imported=row.imported,
        external_path=row.external_path, bootable=row.bootable,
        availability_zone=row.availability_zone, snapshot_id=row.snapshot_id,
        attached_to=row.attached_to, metadata=_frozen(row.meta),
        created_at=row.created_at, updated_at=row.updated_at,
    )


def snapshot_record(row: Snapshot) -> SnapshotRecord:
    return SnapshotRecord(
        id=row.id, project_id=row.project_id, volume_id=row.volume_id, user_id=row.user_id,
        name=row.name, description=row.description, size_gb=row.size_gb, status=row.status,
        method=row.method, internal=row.internal, metadata=_frozen(row.meta),
        created_at=row.created_at, updated_at=row.updated_at,
    )


def _sort_expr(column: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """Nullable text columns sort as '' so keyset paging and NULL ordering agree
    on SQLite and PostgreSQL (they place NULLs differently)."""
    if column.key in ("name", "description"):
        return func.coalesce(column, "")
    return column  # type: ignore[return-value]


def fetch_page(
    session: Session,
    query: Select[Any],
    model: type[Volume] | type[Snapshot],
    sort_columns: Mapping[str, InstrumentedAttribute[Any]],
    page: PageRequest,
    marker_scope: Sequence[ColumnElement[bool]],
    *,
    with_count: bool = False,
) -> tuple[list[Any], bool, int | None]:
    """Run ``query`` (already filtered) as one keyset page, in SQL.

    Order: ``page.sort_key`` then ``id``, both in ``page.sort_dir``. The
    marker row is looked up within ``marker_scope`` (the project, hidden
    rows excluded); an unknown marker is :class:`MarkerNotFound`. Returns
    ORM rows (limit of them), whether more exist, and the total count when
    ``with_count``.
    """
    key = _sort_expr(sort_columns[page.sort_key])
    ident = model.id
    count = None
    if with_count:
        count = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    if page.marker is not None:
        marker_value = session.execute(
            select(key).where(model.id == page.marker.lower(), *marker_scope)
        ).first()
        if marker_value is None:
            raise MarkerNotFound(f"Marker {page.marker} could not be found.")
        value = marker_value[0]
        mid = page.marker.lower()
        if page.sort_dir == "asc":
            query = query.where(or_(key > value, and_(key == value, ident > mid)))
        else:
            query = query.where(or_(key < value, and_(key == value, ident < mid)))
    if page.sort_dir == "asc":
        query = query.order_by(key.asc(), ident.asc())
    else:
        query = query.order_by(key.desc(), ident.desc())
    rows = list(session.scalars(query.offset(page.offset).limit(page.limit + 1)))
    has_more = len(rows) > page.limit
    return rows[: page.limit], has_more, count


TEXT_MAX = 255
"""Cinder's limit for names, descriptions, metadata keys and values."""


METADATA_MAX_ITEMS = 128
"""Most metadata items one volume or snapshot may carry (the OpenStack
``metadata_items`` quota default)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""C0 controls and DEL, except tab, newline and carriage return."""


def check_text(field: str, value: object, *, maximum: int = TEXT_MAX) -> str | None:
    """``None`` or a string of at most ``maximum`` characters (400 otherwise).

    NUL and other control characters are refused (issue 8), as they are in
    backup names: they break terminals, logs and PostgreSQL text columns.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidVolumeInput(f"Invalid input received: {field} must be a string.")
    if _CONTROL.search(value):
        raise InvalidVolumeInput(
            f"Invalid input received: {field} must not contain control characters.")
    if len(value) > maximum:
        raise InvalidVolumeInput(
            f"Invalid input received: {field} has {len(value)} characters, "
            f"more than the maximum of {maximum}."
        )
    return value


def check_metadata(value: object) -> dict[str, str]:
    """Metadata is a flat object of strings, keys 1-255 and values 0-255 characters."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidVolumeInput("Invalid input received: metadata must be an object.")
    if len(value) > METADATA_MAX_ITEMS:
        raise InvalidVolumeInput(f"Invalid input received: metadata has {len(value)} items, "
                                 f"more than the maximum of {METADATA_MAX_ITEMS}.")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidVolumeInput("Invalid input received: metadata keys must be "
                                     "non-empty strings.")
        check_text(f"metadata key {key[:32]!r}", key)
        if not isinstance(item, str):
            raise InvalidVolumeInput(f"Invalid input received: metadata value of {key!r} "
                                     "must be a string.")
        check_text(f"metadata value of {key[:32]!r}", item)
        out[key] = item
    return out


def compare_and_set(
    session: Session,
    model: type[Volume] | type[Snapshot],
    ident: str,
    expected: frozenset[str] | set[str],
    new: str,
    *conditions: ColumnElement[bool],
    project_id: str | None = None,
) -> bool:
    """``UPDATE model SET status=new WHERE id=ident AND status IN expected``: True
    if the row moved.

    One statement, so the check and the write are atomic: a concurrent
    writer of the same row waits for this transaction (row lock on
    PostgreSQL, the database write lock on SQLite) and then re-evaluates
    its own WHERE against the committed status. ``conditions`` narrow the
    row further (e.g. not internal). Does not commit.
    """
    stmt = (
        update(model)
        .where(model.id == ident, model.status.in_(sorted(expected)), *conditions)
        .values(status=new, updated_at=utcnow())
    )
    if project_id is not None:
        stmt = stmt.where(model.project_id == project_id)
    result = session.execute(stmt)
    assert isinstance(result, CursorResult)
    return bool(result.rowcount == 1)


def load_volume_row(session: Session, project_id: str | None, volume_id: str) -> Volume:
    """The volume row, or :class:`VolumeRecordNotFound`.

    ``project_id=None`` skips the project check: only for trusted internal
    callers (job workers) that already hold a project-checked id. Any string
    is accepted as id; one that is not a known UUID is simply not found
    (openstacksdk looks names up by trying them as ids first).
    """
    query = select(Volume).where(Volume.id == volume_id.lower())
    if project_id is not None:
        query = query.where(Volume.project_id == project_id)
    row = session.scalars(query).first()
    if row is None:
        raise VolumeRecordNotFound(f"Volume {volume_id} could not be found.")
    return row


def load_snapshot_row(
    session: Session, project_id: str | None, snapshot_id: str, *, include_internal: bool
) -> Snapshot:
    """The snapshot row, or :class:`SnapshotRecordNotFound` (internal ones are
    not found unless ``include_internal``)."""
    query = select(Snapshot).where(Snapshot.id == snapshot_id.lower())
    if project_id is not None:
        query = query.where(Snapshot.project_id == project_id)
    if not include_internal:
        query = query.where(Snapshot.internal.is_(False))
    row = session.scalars(query).first()
    if row is None:
        raise SnapshotRecordNotFound(f"Snapshot {snapshot_id} could not be found.")
    return row
