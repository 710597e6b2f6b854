"""When a schedule is due: EventBridge Scheduler's cron() and at() expressions.

`due_times` lists the moments (UTC) an expression fires within a window,
evaluated in the schedule's time zone as Scheduler does: `cron(0 1 * * ? *)`
in America/New_York fires at 01:00 New York time, 05:00 or 06:00 UTC with
daylight saving time. The fields are minutes, hours, day of month, month, day
of week (1-7 or SUN-SAT) and year, with `*`, `?`, lists, ranges and steps,
and `L` (the last day of the month); `W` and `#` are not read (a clear error
says so). As on Scheduler, a local time that a daylight-saving change skips
does not fire, and one it repeats fires once. A rate() schedule's times depend
on when it was created, so it has no due times here (`rate_times` counts them
from a given creation time).
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

import calendar
import functools
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}


class CronError(ValueError):
    """An expression this module cannot evaluate; the message says which part."""


def _number(text: str, names: dict[str, int], low: int, high: int, field: str) -> int:
    value = names.get(text.upper()) if names else None
    if value is None:
        if not text.isdigit():
            raise CronError(f"{field}: {text!r} is not a number this report reads")
        value = int(text)
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is outside {low}-{high}")
    return value


def _field(
    text: str, low: int, high: int, field: str, names: dict[str, int] | None = None
) -> frozenset[int] | None:
    """The values a field allows; None for `*` or `?` (any)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise CronError(f"{field}: {part!r} has no usable step")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, end = base.split("-", 1)
            first = _number(start, names or {}, low, high, field)
            last = _number(end, names or {}, low, high, field)
        else:
            first = _number(base, names or {}, low, high, field)
            last = high if step else first
        values.update(range(first, last + 1, step or 1))
    return frozenset(values)


def _allows(allowed: frozenset[int] | None, value: int) -> bool:
    return allowed is None or value in allowed


@dataclass(frozen=True)
class _Cron:
    """A cron() expression's fields, parsed once; None for `*` or `?` (any)."""

    minutes: frozenset[int] | None
    hours: frozenset[int] | None
    days: frozenset[int] | None
    last_day: bool
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # Scheduler's 1 (SUN) to 7 (SAT)
    years: frozenset[int] | None

    def on(self, day: date) -> bool:
        if self.last_day and day.day != calendar.monthrange(day.year, day.month)[1]:
            return False
        # Scheduler counts days of the week from Sunday = 1.
        return (
            _allows(self.years, day.year)
            and _allows(self.months, day.month)
            and _allows(self.days, day.day)
            and _allows(self.weekdays, (day.isoweekday() % 7) + 1)
        )


@functools.lru_cache(maxsize=4096)
def _parse(expression: str) -> _Cron:
    match = _CRON.match(expression.strip())
    if not match:
        raise CronError(f"{expression!r} is not a cron() expression")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise CronError(f"{expression!r}: cron() has 6 fields")
    minutes, hours, dom, month, dow, year = fields
    last_day = dom.upper() == "L"
    # `L` alone is the month's last day; `15W`, `LW`, `6#3` and `6L` are not read.
    if (not last_day and any(mark in dom.upper() for mark in ("L", "W"))) or any(
        mark in dow.upper() for mark in ("L", "#")
    ):
        raise CronError(f"{expression!r}: W and # are not read by this report")
    return _Cron(
        minutes=_field(minutes, 0, 59, "minutes"),
        hours=_field(hours, 0, 23, "hours"),
        days=None if last_day else _field(dom, 1, 31, "day of month"),
        last_day=last_day,
        months=_field(month, 1, 12, "month", _MONTHS),
        weekdays=_field(dow, 1, 7, "day of week", _DAYS),
        years=_field(year, 1970, 2199, "year"),
    )


def _local_fires(expression: str, day: date) -> Iterator[time]:
    cron = _parse(expression)
    if not cron.on(day):
        return
    for hour in sorted(cron.hours) if cron.hours is not None else range(24):
        for minute in sorted(cron.minutes) if cron.minutes is not None else range(60):
            yield time(hour, minute)


def _exists(local: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """False for a wall time a daylight-saving change skips."""
    back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == local.replace(tzinfo=None)


def rate_times(expression: str, created: datetime, end: datetime) -> list[datetime]:
    """A rate() schedule's times in [created, end), counted from its creation."""
    match = _RATE.match(expression.strip())
    if not match:
        raise CronError(f"{expression!r} is not a rate() expression")
    every = timedelta(seconds=int(match[1]) * _UNIT_S[match[2].rstrip("s")])
    times, moment = [], created
    while moment < end:
        times.append(moment)
        moment += every
    return times


def due_times(expression: str, time_zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every moment in [start, end) (aware datetimes) the expression fires, in UTC."""
    zone = zoneinfo.ZoneInfo(time_zone)
    at = _AT.match(expression.strip())
    if at:
        moment = datetime.fromisoformat(at.group(1)).replace(tzinfo=zone).astimezone(UTC)
        return [moment] if start <= moment < end else []
    if expression.strip().startswith("rate("):
        return []
    found: list[datetime] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        for clock in _local_fires(expression, day):
            local = datetime.combine(day, clock, tzinfo=zone)  # fold=0: the first occurrence
            if not _exists(local, zone):
                continue
            moment = local.astimezone(UTC)
            if start <= moment < end:
                found.append(moment)
        day += timedelta(days=1)
    return sorted(set(found))
