"""When a schedule is due: EventBridge Scheduler's cron() and at() expressions.

`due_times` lists the moments (UTC) an expression fires within a window,
evaluated in the schedule's time zone as Scheduler does: `cron(0 1 * * ? *)`
in America/New_York fires at 01:00 New York time, 05:00 or 06:00 UTC with
daylight saving time. The fields are minutes, hours, day of month, month, day
of week (1-7 or SUN-SAT) and year, with `*`, `?`, lists, ranges and steps;
`L`, `W` and `#` are not read (a clear error says so). A rate() schedule's
times depend on when it was created, so it has no due times here.
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
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


def _local_fires(expression: str, day: date) -> Iterator[time]:
    match = _CRON.match(expression.strip())
    if not match:
        raise CronError(f"{expression!r} is not a cron() expression")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise CronError(f"{expression!r}: cron() has 6 fields")
    minutes, hours, dom, month, dow, year = fields
    for field in (dom, dow):
        if any(mark in field for mark in ("L", "W", "#")):
            raise CronError(f"{expression!r}: L, W and # are not read by this report")
    if not _allows(_field(year, 1970, 2199, "year"), day.year):
        return
    if not _allows(_field(month, 1, 12, "month", _MONTHS), day.month):
        return
    if not _allows(_field(dom, 1, 31, "day of month"), day.day):
        return
    # Scheduler counts days of the week from Sunday = 1.
    if not _allows(_field(dow, 1, 7, "day of week", _DAYS), (day.isoweekday() % 7) + 1):
        return
    hour_set = _field(hours, 0, 23, "hours")
    minute_set = _field(minutes, 0, 59, "minutes")
    for hour in sorted(hour_set) if hour_set is not None else range(24):
        for minute in sorted(minute_set) if minute_set is not None else range(60):
            yield time(hour, minute)


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
            moment = datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)
            if start <= moment < end:
                found.append(moment)
        day += timedelta(days=1)
    return sorted(set(found))
