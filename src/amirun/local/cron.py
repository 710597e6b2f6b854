"""When a schedule fires: EventBridge Scheduler's cron, rate and at expressions.

Scheduler's cron has six fields, `minutes hours day-of-month month day-of-week
year`, evaluated in the schedule's time zone; one of day-of-month and
day-of-week is `?`. This module supports what schedule files use: `*`, `?`,
numbers, names (JAN, MON), lists, ranges and `/` steps, and `L` (last day of the
month); `W` and `#` are refused with a clear message. A local time that a
daylight-saving change skips does not fire; one it repeats fires once, at its
first occurrence.
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_MONTHS = {name.upper(): n for n, name in enumerate(calendar.month_abbr) if name}
#: Scheduler numbers the days of the week 1 (SUN) to 7 (SAT).
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_CRON = re.compile(r"^cron\((.+)\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


class ExpressionError(ValueError):
    """The expression cannot be evaluated; the message says which part."""


def _values(field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    chosen: set[int] = set()
    for item in field.upper().split(","):
        part, step = item, 1
        if "/" in item:
            part, _, step_text = item.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                raise ExpressionError(f"bad step in {field!r}")
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = _number(first_text, names), _number(last_text, names)
        else:
            first = _number(part, names)
            last = high if step > 1 else first
        if not (low <= first <= high and low <= last <= high):
            raise ExpressionError(f"{field!r} is outside {low}-{high}")
        chosen.update(range(first, last + 1, step))
    return frozenset(chosen)


def _number(text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ExpressionError(f"{text!r} is not supported here (W and # are not)")
    return int(text)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: `?`
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int] | None  # Scheduler's 1 (SUN) to 7 (SAT); None: `?`
    years: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 6:
            raise ExpressionError(f"cron({text}) has {len(fields)} fields, Scheduler wants 6")
        minute, hour, dom, month, dow, year = fields
        last_day = dom.upper() == "L"
        return cls(
            minutes=_values(minute, 0, 59, {}),
            hours=_values(hour, 0, 23, {}),
            days=None if dom == "?" or last_day else _values(dom, 1, 31, {}),
            last_day=last_day,
            months=_values(month, 1, 12, _MONTHS),
            weekdays=None if dow == "?" else _values(dow, 1, 7, _DAYS),
            years=_values(year, 1970, 2199, {}),
        )

    def on(self, day: date) -> bool:
        if day.year not in self.years or day.month not in self.months:
            return False
        if self.last_day and day.day != calendar.monthrange(day.year, day.month)[1]:
            return False
        if self.days is not None and day.day not in self.days:
            return False
        # Python's Monday is 0; Scheduler's Sunday is 1.
        return self.weekdays is None or (day.weekday() + 1) % 7 + 1 in self.weekdays

    def local_times(self, day: date) -> Iterator[time]:
        if self.on(day):
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    yield time(hour, minute)


def _exists(local: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """False for a wall time a daylight-saving change skips."""
    back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == local.replace(tzinfo=None)


def fire_times(expression: str, time_zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every time (UTC) in [start, end) at which the expression fires, in order.

    A rate expression counts from `start` (Scheduler counts from the schedule's
    creation); an at() fires once.
    """
    if match := _RATE.match(expression):
        every = timedelta(seconds=int(match[1]) * _UNIT_S[match[2].rstrip("s")])
        times, moment = [], start
        while moment < end:
            times.append(moment)
            moment += every
        return times
    zone = zoneinfo.ZoneInfo(time_zone)
    if match := _AT.match(expression):
        moment = datetime.fromisoformat(match[1]).replace(tzinfo=zone).astimezone(UTC)
        return [moment] if start <= moment < end else []
    match = _CRON.match(expression)
    if not match:
        raise ExpressionError(f"{expression!r} is not a cron, rate or at expression")
    cron = Cron.parse(match[1])
    times = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date() + timedelta(days=1):
        for wall in cron.local_times(day):
            local = datetime.combine(day, wall, tzinfo=zone)  # fold=0: first occurrence
            if not _exists(local, zone):
                continue
            moment = local.astimezone(UTC)
            if start <= moment < end:
                times.append(moment)
        day += timedelta(days=1)
    return sorted(times)


def fires_at(expression: str, time_zone: str, moment: datetime) -> bool:
    """True when the expression fires exactly at `moment`."""
    return moment in fire_times(expression, time_zone, moment, moment + timedelta(seconds=1))
