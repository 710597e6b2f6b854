"""Schedule expressions as EventBridge Scheduler reads them: cron(...), rate(...), at(...).

`amirun schedules expand` refuses what Scheduler's CreateSchedule would refuse, so
`apply` never fails half-way on an expression. The rules are Scheduler's
(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):

- cron: six fields separated by spaces: minutes 0-59, hours 0-23, day-of-month
  1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT, year 1970-2199;
  `, - * /` everywhere, `?` and `L` in the day fields, `W` in day-of-month and
  `#` in day-of-week; exactly one of day-of-month and day-of-week is `?`.
- rate(value unit): a positive whole number and minute(s), hour(s) or day(s).
- at(yyyy-mm-ddThh:mm:ss): a date and time that exist.

Every pattern is matched whole (`fullmatch`): a trailing newline is no part of
an expression (`$` in a Python regex matches before one).
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

#: rate(N unit): N is a positive integer; Scheduler reads it as a 32-bit integer.
MAX_RATE_VALUE = 2**31 - 1
_RATE = re.compile(r"rate\(([0-9]+) (minute|minutes|hour|hours|day|days)\)")
_AT = re.compile(r"at\((\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\)")
_CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@functools.lru_cache(maxsize=4096)
def expression_problem(expression: str) -> str | None:
    """Why Scheduler would refuse `expression`, or None: cron(6 fields), rate(N unit), at(...)."""
    shown = _shown(expression)
    if match := _RATE.fullmatch(expression):
        digits = match.group(1)
        if len(digits) > 10 or not 1 <= int(digits) <= MAX_RATE_VALUE:
            return f"{shown}: the rate's value is a whole number from 1 to {MAX_RATE_VALUE:,}"
        return None
    if expression.startswith("rate("):
        return (
            f"{shown} is not rate(N unit): N a whole number, the unit minute(s), hour(s) "
            "or day(s), one space between"
        )
    if match := _AT.fullmatch(expression):
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        try:
            datetime(year, month, day, hour, minute, second)  # a wall time in the schedule's zone
        except ValueError:
            return f"{shown}: no such date and time"
        return None
    if expression.startswith("at("):
        return f"{shown} is not at(yyyy-mm-ddThh:mm:ss)"
    if match := _CRON.fullmatch(expression):
        return _cron_problem(match.group(1), shown)
    return f"{shown} is not cron(6 fields), rate(N unit) or at(yyyy-mm-ddThh:mm:ss)"


#: The cron fields: name, lowest value, highest value, names allowed, special tokens.
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", 1970, 2199, {}),
)


def _cron_problem(body: str, shown: str) -> str | None:
    fields = body.split(" ")
    if len(fields) != 6 or not all(fields):
        return f"{shown}: cron takes 6 fields separated by single spaces (minutes hours "
        "day-of-month month day-of-week year)"
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        why = _cron_field_problem(text, name, low, high, names)
        if why:
            return f"{shown}: {name} {_shown(text)}: {why}"
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return (
            f"{shown}: exactly one of day-of-month and day-of-week must be ? (Scheduler "
            "cannot take both, e.g. cron(0 6 * * ? *) or cron(0 6 ? * MON *))"
        )
    return None


def _cron_field_problem(
    text: str, name: str, low: int, high: int, names: dict[str, int]
) -> str | None:
    if text == "?":
        return None if name in ("day-of-month", "day-of-week") else "? is for days only"
    if name == "day-of-month" and re.fullmatch(r"L|LW|L-\d{1,2}|\d{1,2}W", text):
        number = re.search(r"\d+", text)
        return None if number is None or 1 <= int(number.group()) <= 30 else "out of range"
    if name == "day-of-week" and (match := re.fullmatch(r"(\w{1,3})(L|#[1-5])", text)):
        return _cron_value_problem(match.group(1), low, high, names)
    if name == "day-of-week" and text == "L":
        return None
    for item in text.split(","):
        base, slash, step = item.partition("/")
        if slash and (not step.isascii() or not step.isdigit() or not 1 <= int(step) <= high):
            return f"the step after / is a whole number from 1 to {high}"
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        why = _cron_value_problem(first, low, high, names) or (
            _cron_value_problem(last, low, high, names) if dash else None
        )
        if why:
            return why
    return None


def _cron_value_problem(text: str, low: int, high: int, names: dict[str, int]) -> str | None:
    if text.upper() in names:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        allowed = f" or {next(iter(names))}-{list(names)[-1]}" if names else ""
        return f"not a value (from {low} to {high}{allowed}, *, or , - / between them)"
    if not low <= int(text) <= high:
        return f"{int(text)} is out of range ({low} to {high})"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
