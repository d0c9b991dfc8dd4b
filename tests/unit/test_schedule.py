"""Next-run computation (vbs-api §2.14, §3.5, [D40], [D49]), pure."""

from __future__ import annotations

import datetime as dt

import pytest

from vbs.scheduler.schedule import (
    Schedule,
    latest_run_at_or_before,
    next_run_after,
    parse_start_time,
    parse_time_zone,
)

U = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=U)


@pytest.mark.parametrize(("raw", "hours"), [
    ("02:00", (2,)), ("22:00,00:00,02:00", (22, 0, 2)), ("23:00", (23,)),
    (",".join(f"{h:02d}:00" for h in range(24)), tuple(range(24))),
    ("24:00", None), ("2:00", None), ("02:30", None), ("02:00,02:00", None), ("", None),
    ("02:00, 03:00", None), ("02:00,", None),
])
def test_parse_start_time(raw: str, hours: tuple[int, ...] | None) -> None:
    assert parse_start_time(raw) == hours


@pytest.mark.parametrize(("raw", "minutes"), [
    ("UTC+02:00", 120), ("UTC-05:30", -330), ("UTC+05:45", 345), ("UTC+14:00", 840),
    ("UTC-12:00", -720), ("UTC+00:00", 0), ("UTC+14:30", None), ("UTC-12:30", None),
    ("UTC+02:15", None), ("GMT+02:00", None), ("UTC+2:00", None), ("utc+02:00", None),
])
def test_parse_time_zone(raw: str, minutes: int | None) -> None:
    assert parse_time_zone(raw) == minutes


def _run(s: Schedule, start: dt.datetime, n: int) -> list[dt.datetime]:
    out = []
    for _ in range(n):
        start = next_run_after(s, start)
        out.append(start)
    return out


def test_frequency_is_anchored_to_the_first_of_the_month() -> None:
    s = Schedule((1,), frequency=3)
    assert _run(s, at(2024, 2, 26), 4) == [at(2024, 2, 28, 1), at(2024, 3, 1, 1),
                                           at(2024, 3, 4, 1), at(2024, 3, 7, 1)]


def test_frequency_several_hours_and_strictly_after() -> None:
    s = Schedule((13, 1), frequency=1)
    assert _run(s, at(2024, 1, 31, 13), 3) == [at(2024, 2, 1, 1), at(2024, 2, 1, 13),
                                               at(2024, 2, 2, 1)]


def test_frequency_30_fires_on_1st_and_31st() -> None:
    s = Schedule((0,), frequency=30)
    assert _run(s, at(2024, 1, 1, 0), 3) == [at(2024, 1, 31), at(2024, 2, 1), at(2024, 3, 1)]


def test_frequency_wins_over_weekdays_and_ignores_time_zone() -> None:
    s = Schedule((5,), frequency=2, weekdays=frozenset({"SUN"}), utc_offset_minutes=120)
    assert _run(s, at(2024, 3, 1, 6), 2) == [at(2024, 3, 3, 5), at(2024, 3, 5, 5)]


def test_weekdays_in_utc() -> None:
    s = Schedule((22,), weekdays=frozenset({"MON", "THU"}))
    assert _run(s, at(2024, 3, 3), 3) == [at(2024, 3, 4, 22), at(2024, 3, 7, 22),
                                          at(2024, 3, 11, 22)]


def test_weekdays_with_positive_zone_are_local_days() -> None:
    # §7.1 example: MON/THU at 22:00 and 02:00 UTC with UTC+02:00 -> local 00:00 and 04:00
    s = Schedule((22, 2), weekdays=frozenset({"MON", "THU"}), utc_offset_minutes=120)
    assert _run(s, at(2024, 3, 3), 4) == [at(2024, 3, 3, 22), at(2024, 3, 4, 2),
                                          at(2024, 3, 6, 22), at(2024, 3, 7, 2)]


def test_weekdays_with_negative_half_hour_zone() -> None:
    # UTC-05:30, 02:00 UTC -> local clock 20:30 of the local MON -> Tuesday 02:00 UTC
    s = Schedule((2,), weekdays=frozenset({"MON"}), utc_offset_minutes=-330)
    assert _run(s, at(2024, 3, 4), 2) == [at(2024, 3, 5, 2), at(2024, 3, 12, 2)]


def test_latest_run_at_or_before() -> None:
    s = Schedule((2,), frequency=1)
    assert latest_run_at_or_before(s, at(2024, 3, 5, 2)) == at(2024, 3, 5, 2)
    assert latest_run_at_or_before(s, at(2024, 3, 5, 1, 59)) == at(2024, 3, 4, 2)
    w = Schedule((22,), weekdays=frozenset({"MON"}), utc_offset_minutes=120)
    assert latest_run_at_or_before(w, at(2024, 3, 9)) == at(2024, 3, 3, 22)


def test_schedule_needs_hours_and_a_rule() -> None:
    with pytest.raises(ValueError):
        Schedule(())
    with pytest.raises(ValueError):
        Schedule((1,))
