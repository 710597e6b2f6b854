"""When schedules are due: cron() and at() in their time zones, for `amirun report`.

Scheduler evaluates a cron expression in the schedule's time zone and counts
days of the week from Sunday = 1:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from amirun_core.cron import CronError, due_times
from amirun_core.night import DueSchedule, due_slots, night_window


def day(year: int, month: int, dom: int) -> tuple[datetime, datetime]:
    return night_window(date(year, month, dom))


def test_new_york_time_is_five_hours_behind_in_winter_and_four_in_summer() -> None:
    assert due_times("cron(0 1 * * ? *)", "America/New_York", *day(2026, 2, 9)) == [
        datetime(2026, 2, 9, 6, 0, tzinfo=UTC)
    ]
    assert due_times("cron(0 1 * * ? *)", "America/New_York", *day(2026, 7, 9)) == [
        datetime(2026, 7, 9, 5, 0, tzinfo=UTC)
    ]


def test_lists_ranges_and_steps() -> None:
    times = due_times("cron(0,30 */6 * * ? *)", "UTC", *day(2026, 2, 9))
    assert [f"{t:%H:%M}" for t in times] == [
        "00:00", "00:30", "06:00", "06:30", "12:00", "12:30", "18:00", "18:30",
    ]  # fmt: skip
    assert len(due_times("cron(5-7 3 * * ? *)", "UTC", *day(2026, 2, 9))) == 3


def test_days_of_the_week_count_from_sunday() -> None:
    weekdays = "cron(0 12 ? * MON-FRI *)"
    assert due_times(weekdays, "UTC", *day(2026, 2, 8)) == []  # a Sunday
    assert len(due_times(weekdays, "UTC", *day(2026, 2, 9))) == 1  # a Monday
    assert due_times("cron(0 12 ? * 1 *)", "UTC", *day(2026, 2, 8)) != []  # 1 = Sunday


def test_one_time_and_rate_schedules() -> None:
    assert due_times("at(2026-02-09T10:00:00)", "Europe/Paris", *day(2026, 2, 9)) == [
        datetime(2026, 2, 9, 9, 0, tzinfo=UTC)
    ]
    assert due_times("at(2026-02-10T10:00:00)", "UTC", *day(2026, 2, 9)) == []
    # A rate schedule's times depend on when it was created: none are counted as due.
    assert due_times("rate(1 hour)", "UTC", *day(2026, 2, 9)) == []


def test_what_is_not_read_is_said() -> None:
    with pytest.raises(CronError, match="W and # are not read"):
        due_times("cron(0 12 15W * ? *)", "UTC", *day(2026, 2, 9))
    due, unread = due_slots(
        [
            DueSchedule("odd", "cron(0 12 ? * 6#3 *)", "UTC"),
            DueSchedule("ok", "cron(0 1 * * ? *)", "UTC"),
        ],
        date(2026, 2, 9),
    )
    assert [s.schedule for s in due] == ["ok"]
    assert unread == ["odd: 'cron(0 12 ? * 6#3 *)': W and # are not read by this report"]


def test_a_disabled_schedule_is_not_due() -> None:
    due, _ = due_slots(
        [DueSchedule("off", "cron(0 1 * * ? *)", "UTC", enabled=False)], date(2026, 2, 9)
    )
    assert due == []


def test_the_last_day_of_the_month_and_wednesday_by_name() -> None:
    """`L` in the day of month is the month's last day; WED is a day's name, not a `W`."""
    assert due_times("cron(0 0 L * ? *)", "UTC", *day(2026, 2, 28)) == [
        datetime(2026, 2, 28, 0, 0, tzinfo=UTC)
    ]
    assert due_times("cron(0 0 L * ? *)", "UTC", *day(2026, 2, 27)) == []
    assert len(due_times("cron(0 12 ? * WED *)", "UTC", *day(2026, 2, 11))) == 1


def test_a_time_the_clocks_skip_is_not_due_and_a_repeated_one_is_due_once() -> None:
    """Scheduler skips a local time a daylight-saving change skips and runs a repeated
    one once (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html)."""
    start = datetime(2026, 3, 8, tzinfo=UTC)
    assert (
        due_times("cron(30 2 * * ? *)", "America/New_York", start, start + timedelta(days=1)) == []
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    fall = due_times("cron(30 1 * * ? *)", "America/New_York", start, start + timedelta(days=1))
    assert fall == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]
