"""Next-run computation of a policy schedule (vbs-api §2.14, §3.5, [D40], [D49]).

A :class:`Schedule` is the pure form of a policy's ``start_time``,
``frequency`` / ``week_frequency`` and ``time_zone``. Its *slots* are the UTC
instants at which the policy fires:

* ``frequency = N``: every listed UTC hour on each UTC day of month ``d`` with
  ``(d - 1) mod N == 0`` — anchored to the 1st of every month, not to the
  creation date. ``frequency`` wins over ``week_frequency`` [D49].
* ``week_frequency``: the listed weekdays. With a ``time_zone`` of offset
  ``o`` the weekdays are *local* dates: for local date ``D`` and listed UTC
  hour ``T`` the run is at local date ``D``, local clock ``(T + o) mod 24h``,
  converted back to UTC (``local - o``). So ``MON`` + ``22:00`` +
  ``UTC+02:00`` fires at local Monday 00:00, i.e. Sunday 22:00 UTC. Without a
  time zone the weekdays are UTC days.

The time zone never affects ``frequency`` schedules: the contract only ties
it to weekdays. Everything here is pure and works on aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = [
    "WEEKDAYS",
    "Schedule",
    "latest_run_at_or_before",
    "next_run_after",
    "parse_start_time",
    "parse_time_zone",
    "slots_on_day",
]

WEEKDAYS: tuple[str, ...] = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
"""Wire names of ``week_frequency`` entries."""

_PY_WEEKDAY = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")  # date.weekday() order
_HOUR = re.compile(r"([01][0-9]|2[0-3]):00")
_TZ = re.compile(r"UTC([+-])([0-9]{2}):([0-9]{2})")
_SCAN_DAYS = 40
"""Any valid schedule has a slot within 32 days (every 1st of a month is eligible
for ``frequency``, every week for weekdays); 40 leaves room for the zone shift."""


def parse_start_time(raw: str) -> tuple[int, ...] | None:
    """UTC hours of ``start_time`` in the order given, or None when invalid.

    Valid: 1-24 comma-separated distinct ``HH:00`` entries, ``00:00``..``23:00``
    (vbs-api §3.5). No spaces; the string is stored as given.
    """
    parts = raw.split(",")
    if not 1 <= len(parts) <= 24:
        return None
    hours = []
    for part in parts:
        if not _HOUR.fullmatch(part):
            return None
        hours.append(int(part[:2]))
    if len(set(hours)) != len(hours):
        return None
    return tuple(hours)


def parse_time_zone(raw: str) -> int | None:
    """Offset in minutes of ``UTC±HH:mm``, or None when invalid.

    Offsets -12:00..+14:00, minutes 00, 30 or 45 ([D40]).
    """
    m = _TZ.fullmatch(raw)
    if m is None:
        return None
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3))
    if minutes not in (0, 30, 45):
        return None
    offset = hours * 60 + minutes
    if sign == "-":
        offset = -offset
    if not -12 * 60 <= offset <= 14 * 60:
        return None
    return offset


@dataclass(frozen=True, slots=True)
class Schedule:
    """The firing rule of one policy. ``frequency`` wins when both are set."""

    hours: tuple[int, ...]
    frequency: int | None = None
    weekdays: frozenset[str] = frozenset()
    utc_offset_minutes: int | None = None

    def __post_init__(self) -> None:
        if not self.hours:
            raise ValueError("a schedule needs at least one start hour")
        if self.frequency is None and not self.weekdays:
            raise ValueError("a schedule needs frequency or weekdays")


def slots_on_day(schedule: Schedule, day: dt.date) -> list[dt.datetime]:
    """The slots belonging to (local, for weekday schedules) ``day``, sorted.

    For a zoned weekday schedule some of them fall on the UTC day before or after.
    """
    if schedule.frequency is not None:
        if (day.day - 1) % schedule.frequency:
            return []
        return sorted(dt.datetime(day.year, day.month, day.day, h, tzinfo=dt.UTC)
                      for h in schedule.hours)
    if _PY_WEEKDAY[day.weekday()] not in schedule.weekdays:
        return []
    offset = schedule.utc_offset_minutes or 0
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    out = []
    for h in schedule.hours:
        local_clock = (h * 60 + offset) % (24 * 60)
        out.append(midnight + dt.timedelta(minutes=local_clock - offset))
    return sorted(out)


def next_run_after(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """The first slot strictly later than ``after`` (aware)."""
    start = after.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    best: dt.datetime | None = None
    for i in range(_SCAN_DAYS):
        day = start + dt.timedelta(days=i)
        if best is not None and dt.datetime(day.year, day.month, day.day,
                                            tzinfo=dt.UTC) - dt.timedelta(days=1) > best:
            break
        for slot in slots_on_day(schedule, day):
            if slot > after and (best is None or slot < best):
                best = slot
    if best is None:  # unreachable for a valid schedule (see _SCAN_DAYS)
        raise ValueError(f"no slot within {_SCAN_DAYS} days after {after.isoformat()}")
    return best


def latest_run_at_or_before(schedule: Schedule, at: dt.datetime) -> dt.datetime:
    """The last slot at or before ``at`` (aware)."""
    start = at.astimezone(dt.UTC).date() + dt.timedelta(days=1)
    best: dt.datetime | None = None
    for i in range(_SCAN_DAYS):
        day = start - dt.timedelta(days=i)
        if best is not None and dt.datetime(day.year, day.month, day.day,
                                            tzinfo=dt.UTC) + dt.timedelta(days=2) < best:
            break
        for slot in slots_on_day(schedule, day):
            if slot <= at and (best is None or slot > best):
                best = slot
    if best is None:
        raise ValueError(f"no slot within {_SCAN_DAYS} days before {at.isoformat()}")
    return best
