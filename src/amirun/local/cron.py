"""When a schedule fires on the local stack: `amirun_core.cron`'s evaluation, with rate().

The expressions are evaluated by `amirun_core.cron` (the report's due times use
the same code); a rate() expression counts from the start of the window asked
for, as a schedule created at that moment would.
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

from datetime import datetime, timedelta

from amirun_core.cron import CronError, due_times, rate_times

#: The error for an expression that cannot be evaluated; the message says which part.
ExpressionError = CronError


def fire_times(expression: str, time_zone: str, start: datetime, end: datetime) -> list[datetime]:
    """Every time (UTC) in [start, end) at which the expression fires, in order.

    A rate expression counts from `start` (Scheduler counts from the schedule's
    creation); an at() fires once.
    """
    if expression.strip().startswith("rate("):
        return rate_times(expression, start, end)
    return due_times(expression, time_zone, start, end)


def fires_at(expression: str, time_zone: str, moment: datetime) -> bool:
    """True when the expression fires exactly at `moment`."""
    return moment in fire_times(expression, time_zone, moment, moment + timedelta(seconds=1))
