"""Retention of policy backups: a pure plan, then an execution step (vbs-api §2.14).

Applied after each successful policy backup, per disk, to the backups that
policy created (manual backups are never candidates):

* ``rentention_num = K`` keeps the newest K; ``rentention_day = D`` deletes
  those whose ``created_at`` is older than ``now - D days`` (a backup exactly D
  days old stays). If both are set ``rentention_num`` wins.
* ``remain_first_backup_of_curMonth``: the earliest backup created in the
  calendar month (UTC) of ``now`` is exempt; once that month is over it is
  ranked like any other [D44]. It still occupies one of the K places when it
  is among the newest K.

Ranking is by ``created_at`` then ``id`` (newest first) over every backup the
port reports except those already ``deleting``. Backups the rule drops but
whose status forbids deletion (``creating``, ``restoring``) are *deferred*:
kept now, reconsidered after the next policy backup.

:func:`plan_retention` is pure (backups in, plan out) and golden-tested;
:func:`apply_retention` executes a plan through :meth:`BackupPort.delete_backup`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vbs.db.models_policies import BackupPolicy
from vbs.errors import ServiceError
from vbs.scheduler.ports import BackupPort, BackupRef
from vbs.scheduler.runs import finish_task

__all__ = [
    "DELETABLE_STATUSES",
    "RetentionPlan",
    "RetentionRule",
    "after_policy_backup",
    "apply_retention",
    "plan_retention",
    "rule_of",
]

log = logging.getLogger(__name__)

DELETABLE_STATUSES = frozenset({"available", "error", "error_restoring", "error_deleting"})
"""Statuses from which a backup may be deleted (vbs-api §2.11)."""


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """A policy's retention settings; ``keep_num`` wins over ``keep_days``."""

    keep_num: int | None = None
    keep_days: int | None = None
    keep_first_of_month: bool = False


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """Ids to delete, to keep, and kept only because their status forbids deletion."""

    delete: tuple[str, ...]
    keep: tuple[str, ...]
    deferred: tuple[str, ...] = ()
    exempt_first_of_month: str | None = None


def rule_of(policy: BackupPolicy) -> RetentionRule:
    """The :class:`RetentionRule` stored on a policy row."""
    return RetentionRule(policy.rentention_num, policy.rentention_day,
                         policy.remain_first_backup_of_cur_month)


def plan_retention(backups: Iterable[BackupRef], rule: RetentionRule,
                   now: dt.datetime) -> RetentionPlan:
    """Which of ``backups`` to delete at ``now`` under ``rule`` (module docstring).

    Output order: ``delete`` oldest first, ``keep`` newest first.
    """
    live = sorted((b for b in backups if b.status != "deleting"),
                  key=lambda b: (b.created_at, b.id), reverse=True)
    keep: set[str] = set()
    if rule.keep_num is not None:
        keep.update(b.id for b in live[:rule.keep_num])
    elif rule.keep_days is not None:
        cutoff = now - dt.timedelta(days=rule.keep_days)
        keep.update(b.id for b in live if b.created_at >= cutoff)
    else:
        keep.update(b.id for b in live)
    exempt = None
    if rule.keep_first_of_month:
        month = [b for b in live
                 if (b.created_at.year, b.created_at.month) == (now.year, now.month)]
        if month:
            exempt = month[-1].id
            keep.add(exempt)
    delete, deferred = [], []
    for b in reversed(live):
        if b.id in keep:
            continue
        if b.status in DELETABLE_STATUSES:
            delete.append(b.id)
        else:
            deferred.append(b.id)
    kept = tuple(b.id for b in live if b.id in keep or b.id in deferred)
    return RetentionPlan(tuple(delete), kept, tuple(deferred), exempt)


def apply_retention(session: Session, port: BackupPort, project_id: str, policy_id: str,
                    volume_id: str, now: dt.datetime) -> RetentionPlan | None:
    """Plan and execute retention for one disk of one policy; None if the policy is gone.

    A delete the port refuses (status changed meanwhile) is logged and left
    for the next run; the others proceed.
    """
    policy = session.execute(
        select(BackupPolicy).where(BackupPolicy.id == policy_id,
                                   BackupPolicy.project_id == project_id)
    ).scalar_one_or_none()
    if policy is None:
        return None
    backups = port.policy_backups(session, project_id=project_id, policy_id=policy_id,
                                  volume_id=volume_id)
    plan = plan_retention(backups, rule_of(policy), now)
    for backup_id in plan.delete:
        try:
            with session.begin_nested():
                port.delete_backup(session, project_id=project_id, backup_id=backup_id)
        except ServiceError as exc:
            log.warning("retention of policy %s could not delete backup %s: %s",
                        policy_id, backup_id, exc.message)
    return plan


def after_policy_backup(session: Session, port: BackupPort, *, project_id: str,
                        policy_id: str, volume_id: str, vbs_job_id: str, succeeded: bool,
                        now: dt.datetime, code: str | None = None,
                        message: str | None = None) -> RetentionPlan | None:
    """The hook the backup service calls when a policy backup job ends.

    Marks the task of ``vbs_job_id`` ``EXECUTE_SUCCESS`` or ``EXECUTE_FAIL``
    (with ``code``/``message``) and, on success, applies retention for the
    disk. Runs in the caller's session, so the job's final state, the task
    and the retention delete jobs commit together.
    """
    finish_task(session, vbs_job_id=vbs_job_id, succeeded=succeeded, now=now,
                code=code, message=message)
    if not succeeded:
        return None
    return apply_retention(session, port, project_id, policy_id, volume_id, now)
