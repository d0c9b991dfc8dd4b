"""Native backup use cases that are not in :mod:`vbs.service.backups`:
the paged list, the ``PUT`` update and restore-to-a-new-volume.

Contract: vbs-api §2.6/§2.7 (paging, sorting), §5.2/§5.3 (lists), §5.6
(restore); openstack-compat §5.4 (list), §5.6 (update), §5.9 (restore
without ``volume_id``).

Lists are filtered, sorted and paged **in SQL**, never in Python: a page is
one keyset query (``sort key, id`` strictly after the marker row) with
``OFFSET``/``LIMIT limit + 1``, so ``has_more`` is exact and a project with
10 000 backups costs the same per page as one with ten. The default order
(``created_at desc, id desc``) walks ``ix_backups_project_id_created_at``.
Nullable sort columns are coalesced (``name`` to ``''``, ``updated_at`` to
``created_at``) so keyset comparisons and NULL placement agree on SQLite and
PostgreSQL.

Decisions:

* An unknown ``marker`` is 400 ``badRequest`` (vbs-api §2.6), not Cinder's
  404 (openstack-compat §5.4): the backup contract states it, and no client
  depends on either. The last item's id as marker yields an empty page
  (openstacksdk over-fetches one page).
* ``PUT`` takes the native create rules for ``name`` (1–64 of
  ``[A-Za-z0-9_-]``, no ``auto`` prefix) and ``description`` (0–255, no
  ``<``/``>``); ``metadata`` replaces the whole map and needs 3.43.
* Restore without ``volume_id`` checks the backup first, then creates a
  volume of the backup's size (named ``name`` or
  ``restore_backup_<backup_id>``) and restores into it, all in the caller's
  unit of work; if the restore is refused the new volume's file is removed
  (the row goes with the rolled-back transaction).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_backups import Backup
from vbs.db.read_cache import cached_read
from vbs.service.access import writable_backup
from vbs.service.backup_records import (
    RECORD_COLUMNS,
    BackupRecord,
    Family,
    backup_record,
    has_dependents_column,
    record_from_values,
)
from vbs.service.backup_rules import (
    METADATA_MIN_VERSION,
    BackupFilters,
    NativeListQuery,
    parse_native_create,
)
from vbs.service.backups import RESTORABLE, Submitted, get_backup, restore_backup
from vbs.service.codes import NATIVE_BAD_REQUEST, fail
from vbs.service.shares import shared_with_clause, visible_backups_clause
from vbs.service.volume_import import GIB
from vbs.service.volume_records import VolumeRecord
from vbs.service.volumes import create_volume
from vbs.volumes import FileVolumeDriver

__all__ = [
    "NEW_VOLUME_DESCRIPTION",
    "UPDATE_MIN_VERSION",
    "BackupPage",
    "NativeUpdateRequest",
    "NewVolumeRestore",
    "list_backups",
    "parse_native_update",
    "query_backup_page",
    "restore_to_new_volume",
    "update_backup",
]

UPDATE_MIN_VERSION = (3, 9)
"""``PUT /backups/{id}`` exists from 3.9 (openstack-compat §5.6)."""
NEW_VOLUME_DESCRIPTION = "auto-created_from_restore_from_backup"
"""Description Cinder gives a volume created by a restore (openstack-compat §5.9)."""

_SORT_COLUMNS: Mapping[str, ColumnElement[Any]] = {
    "name": func.coalesce(Backup.name, ""),
    "status": Backup.status,  # type: ignore[dict-item]
    "size": Backup.size_gb,  # type: ignore[dict-item]
    "id": Backup.id,  # type: ignore[dict-item]
    "created_at": Backup.created_at,  # type: ignore[dict-item]
    "updated_at": func.coalesce(Backup.updated_at, Backup.created_at),
}


@dataclass(frozen=True, slots=True)
class BackupPage:
    """One page: ``has_more`` is exact (one extra row was fetched); ``count``
    is the number of matches ignoring paging, only when asked for."""

    items: tuple[BackupRecord, ...]
    has_more: bool
    count: int | None = None


@dataclass(frozen=True, slots=True)
class NativeUpdateRequest:
    """``PUT /backups/{id}`` body; ``None`` fields are left unchanged."""

    name: str | None
    description: str | None
    metadata: tuple[tuple[str, str], ...] | None
    name_given: bool
    description_given: bool


@dataclass(frozen=True, slots=True)
class NewVolumeRestore:
    """A restore into a volume this call created."""

    submitted: Submitted
    volume: VolumeRecord


_RECORD_COLUMNS = tuple(getattr(Backup, key) for key in RECORD_COLUMNS)
"""Every mapped attribute in :data:`RECORD_COLUMNS` order: a page row is these
plus ``has_dependents_column()``, and goes straight to :func:`record_from_values`."""

_FILTER_COLUMNS: Mapping[str, Any] = {
    "name": Backup.name, "status": Backup.status, "volume_id": Backup.volume_id,
}


def _filter_params(f: BackupFilters) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Which filters are set (the statement's shape) and their bound values.

    Substring filters are case-insensitive ``LIKE '%value%'`` with ``%``,
    ``_`` and ``/`` escaped by ``/`` (what SQLAlchemy's ``autoescape`` does,
    but bound, so the statement can be reused).
    """
    names: list[str] = []
    params: dict[str, Any] = {}
    for field in _FILTER_COLUMNS:
        exact, like = getattr(f, field), getattr(f, field + "_like")
        if exact is not None:
            names.append(field)
            params[f"f_{field}"] = exact
        if like is not None:
            names.append(field + "_like")
            escaped = like.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
            params[f"f_{field}_like"] = f"%{escaped}%"
    return tuple(names), params


def _with_filters(query: Select[Any], names: tuple[str, ...]) -> Select[Any]:
    for name in names:
        if name.endswith("_like"):
            column = _FILTER_COLUMNS[name.removesuffix("_like")]
            query = query.where(func.lower(column).like(bindparam(f"f_{name}"), escape="/"))
        else:
            query = query.where(_FILTER_COLUMNS[name] == bindparam(f"f_{name}"))
    return query


@dataclass(frozen=True, slots=True)
class _PageStatements:
    page: Select[Any]
    marker: Select[Any]


@functools.lru_cache(maxsize=512)
def _page_statements(sort_key: str, sort_dir: str, keyset: bool,
                     filters: tuple[str, ...]) -> _PageStatements:
    """The statements of one page *shape*, built once and reused with new
    parameters: building the union and computing its cache key cost 1 ms a
    page, more than SQLite's work. Parameters: ``project_id``, ``want``,
    ``offset``, ``limit``, the filters' ``f_*`` and, with ``keyset``,
    ``marker_id`` and ``marker_value`` (the marker row's sort key)."""
    key = _SORT_COLUMNS[sort_key]
    project = bindparam("project_id", type_=String)
    terms: list[ColumnElement[bool]] = []
    if keyset:
        mid = bindparam("marker_id", type_=String)
        value: BindParameter[Any] = bindparam("marker_value")
        # The plain range term is redundant but lets the planner seek the index to
        # the marker instead of filtering every row before it.
        if sort_dir == "asc":
            terms = [key >= value, or_(key > value, and_(key == value, Backup.id > mid))]
        else:
            terms = [key <= value, or_(key < value, and_(key == value, Backup.id < mid))]
    order = ((key.asc(), Backup.id.asc()) if sort_dir == "asc"
             else (key.desc(), Backup.id.desc()))
    want = bindparam("want", type_=Integer)
    branches = []
    for visible in (Backup.project_id == project, shared_with_clause(project)):
        branch = _with_filters(select(Backup.id).where(visible, *terms), filters)
        branches.append(select(branch.order_by(*order).limit(want).subquery().c.id))
    page = (select(*_RECORD_COLUMNS, has_dependents_column())
            .where(Backup.id.in_(union_all(*branches)))
            .order_by(*order).offset(bindparam("offset", type_=Integer))
            .limit(bindparam("limit", type_=Integer)))
    marker = select(key).where(Backup.id == bindparam("marker_id", type_=String),
                               visible_backups_clause(project))
    return _PageStatements(page, marker)


def list_backups(session: Session, project_id: str, query: NativeListQuery) -> BackupPage:
    """One page of the project's backups (vbs-api §5.2/§5.3), in SQL.

    Order: ``sort_key`` then ``id``, both in ``sort_dir``; the marker applies
    first, then ``offset``, then ``limit`` (vbs-api §2.6).

    Own and shared-in backups are two branches, each ordered and cut to
    ``offset + limit + 1`` ids on its own, then merged: one ``WHERE
    project_id = ? OR id IN (shared)`` defeats the ``(project_id,
    created_at)`` index, and SQLite then sorted every visible row for each
    page (114 ms at 10 000 backups, against 5 ms for the branch walk).

    On SQLite the page is reused while the database is unchanged
    (:func:`vbs.db.read_cache.cached_read`: exact, any commit anywhere
    makes the next call query again).
    """
    return cached_read(session, ("backup-page", project_id, query),
                       lambda: query_backup_page(session, project_id, query))


def query_backup_page(session: Session, project_id: str, query: NativeListQuery) -> BackupPage:
    """The page of :func:`list_backups` as queried, never reused (benchmarks
    time this; callers want :func:`list_backups`)."""
    page = query.page
    names, params = _filter_params(query.filters)
    params["project_id"] = project_id
    count = None
    if query.with_count:
        base = _with_filters(select(Backup.id).where(visible_backups_clause(project_id)), names)
        count = session.scalar(select(func.count()).select_from(base.subquery()), params)
    statements = _page_statements(page.sort_key, page.sort_dir, page.marker is not None, names)
    if page.marker is not None:
        params["marker_id"] = page.marker.lower()
        found = session.execute(statements.marker, params).first()
        if found is None:
            fail(NATIVE_BAD_REQUEST, f"Marker {page.marker} could not be found.")
        params["marker_value"] = found[0]
    params.update(want=page.offset + page.limit + 1, offset=page.offset, limit=page.limit + 1)
    # Plain rows, not ORM instances: a page is read-only, and building 100
    # tracked Backup objects cost more than the query itself. Executed on the
    # session's connection (same transaction): the ORM result layer cost
    # another 0.2 ms a page for rows it would pass through unchanged.
    rows = session.connection().execute(statements.page, params).all()
    items = tuple(record_from_values(r[:-1], bool(r[-1])) for r in rows[: page.limit])
    return BackupPage(items, len(rows) > page.limit, count)


def parse_native_update(body: object, *, version: tuple[int, int]) -> NativeUpdateRequest:
    """Validate ``{"backup": {"name"?, "description"?, "metadata"?}}`` (openstack-compat §5.6).

    The field rules are those of the native create (delegated to
    :func:`parse_native_create` so both stay one rule); ``metadata`` below
    3.43 is a 400 as in Cinder.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("backup"), Mapping):
        fail(NATIVE_BAD_REQUEST, "The request body must contain the object 'backup'.")
    fields: Mapping[str, object] = body["backup"]
    if "metadata" in fields and version < METADATA_MIN_VERSION:
        fail(NATIVE_BAD_REQUEST, "backup.metadata requires microversion 3.43 or later.")
    probe = {"volume_id": "00000000-0000-0000-0000-000000000000",
             **{k: fields[k] for k in ("name", "description", "metadata") if k in fields}}
    checked = parse_native_create({"backup": probe}, version=version)
    return NativeUpdateRequest(
        name=checked.name,
        description=checked.description,
        metadata=checked.metadata if "metadata" in fields else None,
        name_given="name" in fields,
        description_given="description" in fields,
    )


def update_backup(session: Session, project_id: str, backup_id: str,
                  req: NativeUpdateRequest) -> BackupRecord:
    """Apply a ``PUT``; the backup must be the project's own (404; a share
    recipient gets 403, :func:`writable_backup`), any status."""
    row = writable_backup(session, Family.NATIVE, project_id, backup_id, "update")
    if req.name_given:
        row.name = req.name
    if req.description_given:
        row.description = req.description
    if req.metadata is not None:
        row.meta = dict(req.metadata)
    row.updated_at = utcnow()
    session.flush()
    return backup_record(row)


def restore_to_new_volume(
    session: Session,
    driver: FileVolumeDriver,
    *,
    project_id: str,
    user_id: str | None,
    backup_id: str,
    name: str | None,
) -> NewVolumeRestore:
    """Create a volume of the backup's size and restore the backup into it
    (openstack-compat §5.9). The backup is checked before anything is created."""
    backup = get_backup(session, Family.NATIVE, project_id, backup_id)
    if backup.status not in RESTORABLE:
        fail(NATIVE_BAD_REQUEST, f"Invalid backup: Backup status must be available; "
                                 f"backup {backup_id} is {backup.status}.")
    size_gb = max(backup.size_gb, math.ceil(backup.volume_size_bytes / GIB), 1)
    volume = create_volume(
        session, driver, project_id, size_gb, name or f"restore_backup_{backup_id}",
        NEW_VOLUME_DESCRIPTION, user_id=user_id,
    )
    try:
        submitted = restore_backup(session, family=Family.NATIVE, project_id=project_id,
                                   backup_id=backup_id, volume_id=volume.id)
    except BaseException:
        driver.delete(volume.id)
        raise
    return NewVolumeRestore(submitted, volume)

