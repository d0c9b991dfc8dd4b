"""Backup sharing use cases (vbs-api §3.6, §6; docs/decisions.md).

Nouns: a *share* grants one *recipient* project (``to_project_id``) read access
to one backup of its *owner* project (``from_project_id``).

What each side may do (enforced here and in :mod:`vbs.service.backups`, never
only in handlers):

=====================  ==============================  ==============================
action                 owner                           recipient
=====================  ==============================  ==============================
share (§6.1)           yes, ``available`` backups      no: 403 (re-sharing)
cancel (§6.2)          yes, one share or all           no: 404 [D34]
list/count (§6.3/4)    ``share_to_me=false``           ``share_to_me=true``
show a share (§6.5)    yes                             yes
native lists, show     yes                             yes (owner attribute shows the
                                                       owner project)
restore                yes                             yes, into its own volumes
delete the backup      refused while shared (400)      no: 403
update, reset status,  yes                             no: 403, even as an admin of
force-delete                                           the recipient project
=====================  ==============================  ==============================

Anyone else gets 404. The owner-only rule lives in one place,
:func:`vbs.service.access.writable_backup`; every write use case calls it.
Errors are native faults (badRequest/forbidden/
itemNotFound, [D8]), except where a backup use case of the VBS family asks
(:func:`refuse_recipient`).

Concurrency: creating shares first locks the backup row with a no-op
compare-and-set on ``status = 'available'``; deleting a backup sets
``deleting`` with a compare-and-set and only then looks for shares. Both
statements take the same row lock (PostgreSQL) or the single write lock
(SQLite), so a share can never be added to a backup that is being deleted,
and a delete never misses a share committed just before it. The unique
``(backup_id, to_project_id)`` constraint backs the duplicate check.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vbs.db.base import utcnow
from vbs.db.models_backups import BACKUP_STATUSES, Backup
from vbs.db.models_identity import Project
from vbs.db.models_shares import Share
from vbs.errors import ServiceError
from vbs.service.backup_records import BackupRecord, Family, backup_record
from vbs.service.codes import (
    NATIVE_BAD_REQUEST,
    NATIVE_FORBIDDEN,
    NATIVE_NOT_FOUND,
    VB_FORBIDDEN,
    fail,
)
from vbs.service.listing import PageRequest, parse_query_bool

__all__ = [
    "MAX_TARGETS",
    "ShareFilters",
    "ShareRecord",
    "ShareRequest",
    "SharedBackup",
    "cancel_backup_shares",
    "cancel_share",
    "count_shares",
    "drop_backup_shares",
    "get_share",
    "has_shares",
    "list_shares",
    "owner_for_reader",
    "parse_share_filters",
    "parse_share_request",
    "refuse_recipient",
    "share_backup",
    "shared_with_clause",
    "visible_backups_clause",
]

MAX_TARGETS = 10
"""Target projects per share request [D35]."""


@dataclass(frozen=True)
class ShareRecord:
    """A frozen copy of a ``backup_shares`` row (vbs-api §3.6)."""

    id: str
    backup_id: str
    from_project_id: str
    to_project_id: str
    created_at: dt.datetime
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class SharedBackup:
    """A share with the backup it grants (the list and show shape)."""

    share: ShareRecord
    backup: BackupRecord


@dataclass(frozen=True)
class ShareRequest:
    backup_id: str
    to_project_ids: tuple[str, ...]


@dataclass(frozen=True)
class ShareFilters:
    """Filters of §6.3/§6.4; ``None`` = not filtered. ``name`` is a
    case-insensitive substring [D21], the others exact."""

    share_to_me: bool = False
    backup_id: str | None = None
    from_project_id: str | None = None
    to_project_id: str | None = None
    volume_id: str | None = None
    name: str | None = None
    status: str | None = None
    availability_zone: str | None = None


def _record(row: Share) -> ShareRecord:
    return ShareRecord(row.id, row.backup_id, row.from_project_id, row.to_project_id,
                       row.created_at, row.updated_at)


# --------------------------------------------------------------------------- parsing


def parse_share_request(body: object) -> ShareRequest:
    """``{"shared": {"backup_id", "to_project_ids"}}``; unknown members ignored (§2.3)."""
    shared = body.get("shared") if isinstance(body, dict) else None
    if not isinstance(shared, dict):
        fail(NATIVE_BAD_REQUEST, "The request body must contain a 'shared' object.")
    backup_id = shared.get("backup_id")
    if not isinstance(backup_id, str) or not backup_id:
        fail(NATIVE_BAD_REQUEST, "'shared.backup_id' must be a non-empty string.")
    targets = shared.get("to_project_ids")
    if not isinstance(targets, list) or not targets:
        fail(NATIVE_BAD_REQUEST, "'shared.to_project_ids' must be a non-empty list.")
    if len(targets) > MAX_TARGETS:
        fail(NATIVE_BAD_REQUEST,
             f"At most {MAX_TARGETS} projects per request, got {len(targets)}.")
    if not all(isinstance(t, str) and t for t in targets):
        fail(NATIVE_BAD_REQUEST, "'shared.to_project_ids' must hold non-empty strings.")
    if len(set(targets)) != len(targets):
        fail(NATIVE_BAD_REQUEST, "'shared.to_project_ids' contains a project twice.")
    return ShareRequest(backup_id, tuple(targets))


def parse_share_filters(query: Mapping[str, str]) -> ShareFilters:
    """The §6.3/§6.4 filters of a query; paging and sorting are parsed elsewhere."""
    status = query.get("status")
    if status is not None and status not in BACKUP_STATUSES:
        fail(NATIVE_BAD_REQUEST, f"Invalid status {status!r}; allowed: "
                                 f"{', '.join(BACKUP_STATUSES)}.")
    raw_to_me = query.get("share_to_me")
    return ShareFilters(
        share_to_me=False if raw_to_me is None else parse_query_bool(
            "share_to_me", raw_to_me, invalid=NATIVE_BAD_REQUEST),
        backup_id=query.get("backup_id"),
        from_project_id=query.get("from_project_id"),
        to_project_id=query.get("to_project_id"),
        volume_id=query.get("volume_id"),
        name=query.get("name"),
        status=status,
        availability_zone=query.get("availability_zone", query.get("avalilability_zone")),
    )


# --------------------------------------------------------------------------- visibility


def shared_with_clause(project_id: str | ColumnElement[str]) -> ColumnElement[bool]:
    """``Backup.id`` is shared with ``project_id`` (a WHERE clause on ``backups``;
    the project may be a bound parameter of a reused statement)."""
    return Backup.id.in_(select(Share.backup_id).where(Share.to_project_id == project_id))


def visible_backups_clause(project_id: str | ColumnElement[str]) -> ColumnElement[bool]:
    """Backups ``project_id`` sees in its native lists: its own plus those shared with it.

    A shared-in row is recognisable by ``Backup.project_id != project_id``;
    renderers show that owner in the owner attribute (docs/decisions.md).
    """
    return or_(Backup.project_id == project_id, shared_with_clause(project_id))


def owner_for_reader(session: Session, backup_id: str, project_id: str) -> str:
    """The project to look ``backup_id`` up in on behalf of ``project_id``.

    The owner's project when the backup is shared with ``project_id``,
    otherwise ``project_id`` itself (so an unrelated backup stays "not found").
    """
    owner = session.scalar(
        select(Share.from_project_id).where(Share.backup_id == backup_id,
                                            Share.to_project_id == project_id)
    )
    return owner or project_id


def refuse_recipient(family: Family, backup_id: str, action: str) -> NoReturn:
    """403 for a recipient attempting an owner-only ``action`` on a shared-in backup."""
    message = (f"Backup {backup_id} is shared with this project; "
               f"only its owner may {action} it.")
    code = VB_FORBIDDEN if family is Family.VBS else NATIVE_FORBIDDEN
    raise ServiceError(message, code.code, code.status)


def has_shares(session: Session, backup_id: str) -> bool:
    return bool(session.scalar(select(exists().where(Share.backup_id == backup_id))))


def drop_backup_shares(session: Session, backup_id: str) -> int:
    """Delete every share of a backup; the number removed."""
    res = session.execute(delete(Share).where(Share.backup_id == backup_id))
    return int(getattr(res, "rowcount", 0) or 0)


# --------------------------------------------------------------------------- use cases


def _lock_available(session: Session, backup_id: str, owner: str) -> bool:
    """No-op compare-and-set: lock the backup row while it is ``available``."""
    res = session.execute(
        update(Backup)
        .where(Backup.id == backup_id, Backup.project_id == owner, Backup.status == "available")
        .values(status=Backup.status, updated_at=Backup.updated_at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(res, "rowcount", 0))


def share_backup(session: Session, project_id: str, req: ShareRequest) -> list[ShareRecord]:
    """Share one of ``project_id``'s ``available`` backups with each target [D35]."""
    from vbs.service.access import writable_backup  # access builds on this module

    row = writable_backup(session, Family.NATIVE, project_id, req.backup_id, "share")
    if project_id in req.to_project_ids:
        fail(NATIVE_BAD_REQUEST, "A backup cannot be shared with its own project.")
    if row.status != "available" or not _lock_available(session, row.id, project_id):
        fail(NATIVE_BAD_REQUEST, f"Backup {row.id} is {row.status}; only available "
                                 "backups can be shared.")
    known = set(session.scalars(select(Project.id).where(Project.id.in_(req.to_project_ids))))
    unknown = [t for t in req.to_project_ids if t not in known]
    if unknown:
        fail(NATIVE_BAD_REQUEST, f"Project {unknown[0]} does not exist.")
    already = set(session.scalars(select(Share.to_project_id).where(
        Share.backup_id == row.id, Share.to_project_id.in_(req.to_project_ids))))
    if already:
        fail(NATIVE_BAD_REQUEST,
             f"Backup {row.id} is already shared with project {sorted(already)[0]}.")
    now = utcnow()
    rows = [Share(id=str(uuid.uuid4()), backup_id=row.id, from_project_id=project_id,
                  to_project_id=target, created_at=now, updated_at=None)
            for target in req.to_project_ids]
    session.add_all(rows)
    try:
        session.flush()
    except IntegrityError:
        fail(NATIVE_BAD_REQUEST, f"Backup {row.id} was shared with one of these projects "
                                 "concurrently.")
    return [_record(r) for r in rows]


def cancel_share(session: Session, project_id: str, share_id: str) -> None:
    """Remove one share the caller made; recipients and strangers get 404 [D34]."""
    res = session.execute(
        delete(Share).where(Share.id == share_id, Share.from_project_id == project_id)
    )
    if not getattr(res, "rowcount", 0):
        fail(NATIVE_NOT_FOUND, f"Share {share_id} could not be found.")


def cancel_backup_shares(session: Session, project_id: str, backup_id: str) -> int:
    """Remove every share of one of the caller's backups (none is fine) [D32].

    Owner only; a recipient gets 404 as §6.2/[D34] specify (docs/decisions.md).
    """
    row = session.get(Backup, backup_id)
    if row is None or row.project_id != project_id:
        fail(NATIVE_NOT_FOUND, f"Backup {backup_id} could not be found.")
    return drop_backup_shares(session, backup_id)


_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])


def _filtered(query: _Q, project_id: str, f: ShareFilters) -> _Q:
    side = Share.to_project_id if f.share_to_me else Share.from_project_id
    query = query.join(Backup, Backup.id == Share.backup_id).where(side == project_id)
    exact: Sequence[tuple[Any, str | None]] = (
        (Share.backup_id, f.backup_id), (Share.from_project_id, f.from_project_id),
        (Share.to_project_id, f.to_project_id), (Backup.volume_id, f.volume_id),
        (Backup.status, f.status), (Backup.availability_zone, f.availability_zone),
    )
    for column, value in exact:
        if value is not None:
            query = query.where(column == value)
    if f.name:
        query = query.where(func.lower(Backup.name).contains(f.name.lower(), autoescape=True))
    return query


_SORT_COLUMNS: Mapping[str, Any] = {
    "created_at": Share.created_at, "updated_at": Share.updated_at, "id": Share.id,
    "name": Backup.name, "status": Backup.status, "size": Backup.size_gb,
}
"""§2.7: share times and id refer to the share, the other keys to its backup."""


def list_shares(session: Session, project_id: str, filters: ShareFilters,
                page: PageRequest) -> list[SharedBackup]:
    """One page of shares visible to the caller, each with its backup."""
    column = _SORT_COLUMNS[page.sort_key]
    order = (column.asc(), Share.id.asc()) if page.sort_dir == "asc" else (
        column.desc(), Share.id.desc())
    query = (_filtered(select(Share, Backup), project_id, filters)
             .order_by(*order).offset(page.offset).limit(page.limit))
    return [SharedBackup(_record(s), backup_record(b)) for s, b in session.execute(query)]


def count_shares(session: Session, project_id: str, filters: ShareFilters) -> int:
    """How many shares :func:`list_shares` would return, ignoring paging."""
    query = _filtered(select(func.count()).select_from(Share), project_id, filters)
    return int(session.scalar(query) or 0)


def get_share(session: Session, project_id: str, share_id: str) -> SharedBackup:
    """One share visible to the caller as owner or recipient; 404 otherwise [D34]."""
    found = session.execute(
        select(Share, Backup).join(Backup, Backup.id == Share.backup_id).where(
            Share.id == share_id,
            or_(Share.from_project_id == project_id, Share.to_project_id == project_id),
        )
    ).first()
    if found is None:
        fail(NATIVE_NOT_FOUND, f"Share {share_id} could not be found.")
    return SharedBackup(_record(found[0]), backup_record(found[1]))
