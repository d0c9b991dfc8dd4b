"""Retention planning (vbs-api §2.14): tables and golden files.

Golden files live in ``tests/golden/retention/``; regenerate them after an
intended change with ``VBS_UPDATE_GOLDEN=1 pytest tests/unit/test_retention.py``
and review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from vbs.scheduler.ports import BackupRef
from vbs.scheduler.retention import RetentionRule, plan_retention

U = dt.UTC
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "retention"
T0 = dt.datetime(2024, 1, 20, 2, tzinfo=U)


def b(name: str, day: int, status: str = "available", hour: int = 2) -> BackupRef:
    return BackupRef(name, dt.datetime(2024, 1, 1, hour, tzinfo=U) + dt.timedelta(days=day - 1),
                     status)


def test_count_keeps_newest_k() -> None:
    backups = [b(f"d{d}", d) for d in range(1, 6)]
    plan = plan_retention(backups, RetentionRule(keep_num=3), dt.datetime(2024, 1, 5, 3, tzinfo=U))
    assert plan.delete == ("d1", "d2") and plan.keep == ("d5", "d4", "d3")


def test_days_keeps_exactly_d_days_old() -> None:
    backups = [b(f"d{d}", d) for d in range(1, 11)]
    now = dt.datetime(2024, 1, 10, 2, tzinfo=U)
    plan = plan_retention(backups, RetentionRule(keep_days=3), now)
    assert plan.delete == ("d1", "d2", "d3", "d4", "d5", "d6")  # d7 is exactly 3 days old


def test_num_wins_over_days() -> None:
    backups = [b(f"d{d}", d) for d in range(1, 6)]
    plan = plan_retention(backups, RetentionRule(keep_num=2, keep_days=99),
                          dt.datetime(2024, 1, 5, 3, tzinfo=U))
    assert plan.delete == ("d1", "d2", "d3")


def test_first_of_current_month_is_exempt_then_treated_normally() -> None:
    backups = [b(f"d{d}", d) for d in range(28, 36)]  # Jan 28 .. Feb 4
    feb = dt.datetime(2024, 2, 4, 3, tzinfo=U)
    plan = plan_retention(backups, RetentionRule(keep_num=2, keep_first_of_month=True), feb)
    assert plan.exempt_first_of_month == "d32"  # Feb 1
    assert set(plan.keep) == {"d35", "d34", "d32"}
    assert "d28" in plan.delete  # January's first is no longer exempt


def test_undeletable_statuses_are_deferred_and_deleting_ignored() -> None:
    backups = [b("old-restoring", 1, "restoring"), b("old-deleting", 2, "deleting"),
               b("old-error", 3, "error"), b("new1", 4), b("new2", 5)]
    plan = plan_retention(backups, RetentionRule(keep_num=2), dt.datetime(2024, 1, 6, tzinfo=U))
    assert plan.delete == ("old-error",)
    assert plan.deferred == ("old-restoring",)


def test_ties_broken_by_id() -> None:
    backups = [b("a", 1), b("c", 1), b("b", 1)]
    plan = plan_retention(backups, RetentionRule(keep_num=2), T0)
    assert plan.delete == ("a",)


# --------------------------------------------------------------------------- golden

SCENARIOS = {
    "daily_num7": (1, RetentionRule(keep_num=7)),
    "daily_day10": (1, RetentionRule(keep_days=10)),
    "daily_num3_first": (1, RetentionRule(keep_num=3, keep_first_of_month=True)),
    "every3_day14_first": (3, RetentionRule(keep_days=14, keep_first_of_month=True)),
}


def _scenario(step: int, rule: RetentionRule) -> dict[str, object]:
    """Backups every ``step`` days from Jan 1 for 70 days; the plan at each of
    five check times is recorded."""
    backups = [b(f"b{d:03d}", d) for d in range(1, 71, step)]
    out: dict[str, object] = {"rule": {"keep_num": rule.keep_num, "keep_days": rule.keep_days,
                                       "keep_first_of_month": rule.keep_first_of_month},
                              "backups": [x.id for x in backups], "checks": {}}
    checks: dict[str, object] = {}
    for day in (10, 31, 32, 45, 70):
        now = dt.datetime(2024, 1, 1, 3, tzinfo=U) + dt.timedelta(days=day - 1)
        existing = [x for x in backups if x.created_at <= now]
        plan = plan_retention(existing, rule, now)
        checks[now.isoformat()] = {"delete": list(plan.delete), "keep": list(plan.keep),
                                   "exempt": plan.exempt_first_of_month}
    out["checks"] = checks
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name: str) -> None:
    actual = _scenario(*SCENARIOS[name])
    path = GOLDEN / f"{name}.json"
    if os.environ.get("VBS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1) + "\n")
    assert path.exists(), f"missing {path}; run with VBS_UPDATE_GOLDEN=1"
    assert json.loads(path.read_text()) == actual
