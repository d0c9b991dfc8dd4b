"""Backup policy use cases: create, list, modify, delete, associate, run, tasks.

Contract: vbs-api §7 and §2.14. Handlers parse with
:mod:`vbs.service.policy_rules`, call one function here inside a unit of work,
and render the returned views. Every function works in the caller's project:
a policy of another project is "not found".

``next_run_at`` (the scheduler's claim token, :mod:`vbs.scheduler.scheduler`)
is kept right here: set to the next slot after ``now`` when a policy is
created ``ON`` or its schedule, time zone or status changes; NULL while
``OFF``. Changing only the name or retention leaves a pending slot alone.

Disks are checked through the :class:`~vbs.scheduler.ports.BackupPort`
(``volume_exists``), and through :class:`~vbs.scheduler.ports.VolumeInventoryPort`
when the port also offers it (status, zone, host).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from vbs.db.models_policies import BackupPolicy, PolicyResource, PolicyTag, PolicyTask
from vbs.errors import ServiceError
from vbs.scheduler.ports import BackupPort, VolumeInventoryPort
from vbs.scheduler.runs import ACTIVE_TASK_STATUSES, PolicyRef, run_policy
from vbs.scheduler.schedule import next_run_after
from vbs.service import codes as c
from vbs.service.backup_rules import Tag
from vbs.service.codes import ApiCode, fail
from vbs.service.policy_rules import (
    AssociateRequest,
    CreatePolicyRequest,
    ModifyPolicyRequest,
    ScheduledPolicy,
    TaskQuery,
    merge_scheduled_policy,
)

__all__ = [
    "TASK_LIST_DAYS",
    "AssociationResult",
    "PolicyLimits",
    "PolicyView",
    "ResourceOutcome",
    "associate_volumes",
    "create_policy",
    "delete_policy",
    "disassociate_volumes",
    "execute_policy",
    "get_policy",
    "list_policies",
    "list_tasks",
    "modify_policy",
    "policy_tags_of",
    "scheduled_of",
]

TASK_LIST_DAYS = 30
"""Tasks are listed for 30 days (vbs-api §7.9, [D47])."""

_BAD_VOLUME_STATUSES = frozenset({"error", "error_deleting", "error_restoring", "error_extending",
                                  "error_rollbacking", "awaiting-transfer"})


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """Per-project limits (vbs-api §2.15); -1 = unlimited."""

    max_policies: int = 10
    max_volumes_per_policy: int = -1


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A policy as #24 renders it."""

    id: str
    name: str
    scheduled_policy: ScheduledPolicy
    resource_count: int
    time_zone: str | None
    tags: tuple[Tag, ...]


@dataclass(frozen=True, slots=True)
class ResourceOutcome:
    """One disk of an (dis)association; ``code`` set on failures."""

    resource_id: str
    availability_zone: str | None = None
    os_vol_host_attr: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class AssociationResult:
    success: tuple[ResourceOutcome, ...]
    failed: tuple[ResourceOutcome, ...]


def scheduled_of(policy: BackupPolicy) -> ScheduledPolicy:
    """The stored ``scheduled_policy`` of a row."""
    return ScheduledPolicy(
        start_time=policy.start_time, status=policy.status, frequency=policy.frequency,
        week_frequency=tuple(policy.week_frequency) if policy.week_frequency else None,
        rentention_num=policy.rentention_num, rentention_day=policy.rentention_day,
        remain_first_backup_of_curMonth=policy.remain_first_backup_of_cur_month,
    )


def _next_run(sp: ScheduledPolicy, time_zone: str | None, now: dt.datetime) -> dt.datetime | None:
    return next_run_after(sp.schedule(time_zone), now) if sp.status == "ON" else None


def _store(policy: BackupPolicy, sp: ScheduledPolicy) -> None:
    policy.start_time, policy.status = sp.start_time, sp.status
    policy.frequency = sp.frequency
    policy.week_frequency = list(sp.week_frequency) if sp.week_frequency else None
    policy.rentention_num, policy.rentention_day = sp.rentention_num, sp.rentention_day
    policy.remain_first_backup_of_cur_month = sp.remain_first_backup_of_curMonth


def get_policy(session: Session, project_id: str, policy_id: str,
               code: ApiCode = c.AB_POLICY_NOT_FOUND) -> BackupPolicy:
    """The policy or ``code`` (``0205`` on paths, ``1100`` for ids in bodies)."""
    policy = session.execute(select(BackupPolicy).where(
        BackupPolicy.id == policy_id, BackupPolicy.project_id == project_id)
    ).scalar_one_or_none()
    if policy is None:
        fail(code, f"Policy {policy_id} does not exist.")
    return policy


def policy_tags_of(session: Session, policy_ids: Sequence[str]) -> dict[str, tuple[Tag, ...]]:
    """Tags of several policies, each in insertion order."""
    out: dict[str, list[Tag]] = {pid: [] for pid in policy_ids}
    if policy_ids:
        rows = session.execute(select(PolicyTag).where(PolicyTag.policy_id.in_(policy_ids))
                               .order_by(PolicyTag.policy_id, PolicyTag.position)).scalars()
        for row in rows:
            out[row.policy_id].append(Tag(row.key, row.value))
    return {pid: tuple(tags) for pid, tags in out.items()}


def create_policy(session: Session, project_id: str, req: CreatePolicyRequest, *,
                  now: dt.datetime, limits: PolicyLimits) -> str:
    """#23: a new policy; ``0203`` when the project has ``max_policies`` already."""
    if limits.max_policies >= 0:
        count = session.scalar(select(func.count()).select_from(BackupPolicy)
                               .where(BackupPolicy.project_id == project_id)) or 0
        if count >= limits.max_policies:
            fail(c.AB_POLICY_LIMIT, f"A project may have at most {limits.max_policies} "
                                    "policies.")
    policy = BackupPolicy(id=str(uuid.uuid4()), project_id=project_id, name=req.name,
                          is_default=False, time_zone=req.time_zone, created_at=now,
                          updated_at=now)
    _store(policy, req.scheduled_policy)
    policy.next_run_at = _next_run(req.scheduled_policy, req.time_zone, now)
    session.add(policy)
    for i, tag in enumerate(req.tags):
        session.add(PolicyTag(policy_id=policy.id, key=tag.key, value=tag.value, position=i))
    session.flush()
    return policy.id


def list_policies(session: Session, project_id: str) -> list[PolicyView]:
    """#24: every policy of the project, oldest first."""
    policies = session.execute(select(BackupPolicy).where(BackupPolicy.project_id == project_id)
                               .order_by(BackupPolicy.created_at, BackupPolicy.id)).scalars().all()
    ids = [p.id for p in policies]
    counts = dict(session.execute(
        select(PolicyResource.policy_id, func.count()).where(PolicyResource.policy_id.in_(ids))
        .group_by(PolicyResource.policy_id)).tuples().all()) if ids else {}
    tags = policy_tags_of(session, ids)
    return [PolicyView(p.id, p.name, scheduled_of(p), counts.get(p.id, 0), p.time_zone,
                       tags[p.id]) for p in policies]


def modify_policy(session: Session, project_id: str, policy_id: str, req: ModifyPolicyRequest,
                  *, now: dt.datetime) -> str:
    """#25/#25a: field-wise merge, then the merged result must be valid [D42]."""
    policy = get_policy(session, project_id, policy_id)
    if req.name is not None and req.name != policy.name and policy.is_default:
        fail(c.AB_DEFAULT_POLICY_IMMUTABLE, "The default policy cannot be renamed.")
    before = scheduled_of(policy)
    merged = merge_scheduled_policy(before, req.scheduled_patch)
    time_zone = policy.time_zone if req.time_zone is None else (req.time_zone or None)
    timing_changed = (merged.schedule(time_zone) != before.schedule(policy.time_zone)
                      or merged.status != before.status)
    if req.name is not None:
        policy.name = req.name
    _store(policy, merged)
    policy.time_zone = time_zone
    if timing_changed or (merged.status == "ON" and policy.next_run_at is None):
        policy.next_run_at = _next_run(merged, time_zone, now)
    policy.updated_at = now
    return policy.id


def _has_active_tasks(session: Session, policy_id: str) -> bool:
    return session.scalar(select(PolicyTask.id).where(
        PolicyTask.policy_id == policy_id, PolicyTask.status.in_(ACTIVE_TASK_STATUSES)
    ).limit(1)) is not None


def delete_policy(session: Session, project_id: str, policy_id: str) -> None:
    """#26: removes tags, associations and tasks; backups stay (vbs-api §7.5)."""
    policy = get_policy(session, project_id, policy_id)
    if policy.is_default:
        fail(c.AB_DEFAULT_POLICY_IMMUTABLE, "The default policy cannot be deleted.")
    if _has_active_tasks(session, policy_id):
        fail(c.AB_POLICY_EXECUTING, "The policy has tasks still waiting or running.")
    for model in (PolicyTag, PolicyResource, PolicyTask):
        session.execute(delete(model).where(model.policy_id == policy_id))
    session.execute(delete(BackupPolicy).where(BackupPolicy.id == policy_id))


def _check_volume(session: Session, port: BackupPort, project_id: str,
                  volume_id: str) -> ResourceOutcome:
    if isinstance(port, VolumeInventoryPort):
        try:
            info = port.volume_info(session, project_id, volume_id)
        except ServiceError as exc:
            return ResourceOutcome(volume_id, code=c.AB_RESOURCE_READ_FAILED.code,
                                   message=f"Disk {volume_id} could not be read: {exc.message}")
        if info is None:
            return ResourceOutcome(volume_id, code=c.AB_RESOURCE_INVALID.code,
                                   message=f"Disk {volume_id} not found.")
        if info.status in _BAD_VOLUME_STATUSES:
            return ResourceOutcome(volume_id, info.availability_zone, info.host,
                                   c.AB_RESOURCE_STATUS_INVALID.code,
                                   f"Disk {volume_id} is {info.status}.")
        return ResourceOutcome(volume_id, info.availability_zone, info.host)
    if not port.volume_exists(session, project_id, volume_id):
        return ResourceOutcome(volume_id, code=c.AB_RESOURCE_INVALID.code,
                               message=f"Disk {volume_id} not found.")
    return ResourceOutcome(volume_id)


def associate_volumes(session: Session, port: BackupPort, project_id: str,
                      req: AssociateRequest, *, now: dt.datetime,
                      limits: PolicyLimits) -> AssociationResult:
    """#27: bind disks, moving them from another policy; per-disk outcome (vbs-api §7.6)."""
    policy = get_policy(session, project_id, req.policy_id, c.AB_POLICY_REFERENCE_NOT_FOUND)
    bound = {r.volume_id: r for r in session.execute(select(PolicyResource).where(
        PolicyResource.project_id == project_id,
        PolicyResource.volume_id.in_(req.volume_ids))).scalars()}
    count = session.scalar(select(func.count()).select_from(PolicyResource)
                           .where(PolicyResource.policy_id == policy.id)) or 0
    success: list[ResourceOutcome] = []
    failed: list[ResourceOutcome] = []
    for volume_id in req.volume_ids:
        outcome = _check_volume(session, port, project_id, volume_id)
        row = bound.get(volume_id)
        if outcome.code is None and (row is None or row.policy_id != policy.id):
            if 0 <= limits.max_volumes_per_policy <= count:
                outcome = ResourceOutcome(
                    volume_id, outcome.availability_zone, outcome.os_vol_host_attr,
                    c.AB_POLICY_RESOURCE_LIMIT.code, f"The policy already has "
                    f"{limits.max_volumes_per_policy} disks.")
            elif row is None:
                session.add(PolicyResource(
                    project_id=project_id, volume_id=volume_id, policy_id=policy.id,
                    availability_zone=outcome.availability_zone,
                    os_vol_host_attr=outcome.os_vol_host_attr, created_at=now))
                count += 1
            else:
                row.policy_id, row.created_at = policy.id, now
                row.availability_zone = outcome.availability_zone
                row.os_vol_host_attr = outcome.os_vol_host_attr
                count += 1
        (failed if outcome.code else success).append(outcome)
    session.flush()
    return AssociationResult(tuple(success), tuple(failed))


def disassociate_volumes(session: Session, project_id: str, policy_id: str,
                         volume_ids: Sequence[str]) -> AssociationResult:
    """#28: unbind disks; a disk not bound to this policy fails with ``1400``."""
    get_policy(session, project_id, policy_id)
    bound = set(session.execute(select(PolicyResource.volume_id).where(
        PolicyResource.policy_id == policy_id,
        PolicyResource.volume_id.in_(volume_ids))).scalars())
    if bound:
        session.execute(delete(PolicyResource).where(
            PolicyResource.policy_id == policy_id, PolicyResource.volume_id.in_(bound)))
    success = tuple(ResourceOutcome(v) for v in volume_ids if v in bound)
    failed = tuple(ResourceOutcome(v, code=c.AB_RESOURCE_INVALID.code,
                                   message=f"Disk {v} is not associated with policy "
                                           f"{policy_id}.")
                   for v in volume_ids if v not in bound)
    return AssociationResult(success, failed)


def execute_policy(session: Session, port: BackupPort, project_id: str, policy_id: str, *,
                   now: dt.datetime) -> list[PolicyTask]:
    """#29: one task per bound disk now, also while ``OFF`` [D45]; ``0225`` while a
    previous run has ``WAITING``/``RUNNING`` tasks.

    The policy row is updated first: that starts the write transaction (see
    :mod:`vbs.scheduler.runs`) and, on PostgreSQL, locks the row so two
    concurrent "run now" calls cannot both pass the ``0225`` check.
    """
    get_policy(session, project_id, policy_id)
    session.execute(update(BackupPolicy).where(BackupPolicy.id == policy_id)
                    .values(last_run_at=now).execution_options(synchronize_session=False))
    if _has_active_tasks(session, policy_id):
        fail(c.AB_POLICY_EXECUTING, "The policy is already being executed.")
    return run_policy(session, port, PolicyRef(policy_id, project_id), now=now,
                      trigger="manual")


def list_tasks(session: Session, project_id: str, policy_id: str, query: TaskQuery, *,
               now: dt.datetime) -> tuple[int, list[PolicyTask]]:
    """#30: (total matching, page). Marker = a task id of this policy, else ``0008``."""
    get_policy(session, project_id, policy_id)
    cond = [PolicyTask.policy_id == policy_id,
            PolicyTask.created_at >= now - dt.timedelta(days=TASK_LIST_DAYS)]
    if query.status:
        cond.append(PolicyTask.status == query.status)
    if query.job_id:
        cond.append(PolicyTask.id == query.job_id)
    total = session.scalar(select(func.count()).select_from(PolicyTask).where(*cond)) or 0
    page = query.page
    desc = page.sort_dir == "desc"
    if page.marker:
        marker = session.execute(select(PolicyTask.created_at, PolicyTask.id).where(
            PolicyTask.policy_id == policy_id, PolicyTask.id == page.marker)).first()
        if marker is None:
            fail(c.AB_MALFORMED_REQUEST, f"marker {page.marker} is not a task of this policy.")
        m_at, m_id = marker
        if desc:
            cond.append(or_(PolicyTask.created_at < m_at,
                            and_(PolicyTask.created_at == m_at, PolicyTask.id < m_id)))
        else:
            cond.append(or_(PolicyTask.created_at > m_at,
                            and_(PolicyTask.created_at == m_at, PolicyTask.id > m_id)))
    order = (PolicyTask.created_at.desc(), PolicyTask.id.desc()) if desc else (
        PolicyTask.created_at.asc(), PolicyTask.id.asc())
    rows = session.execute(select(PolicyTask).where(*cond).order_by(*order)
                           .offset(page.offset).limit(page.limit)).scalars().all()
    return total, list(rows)
