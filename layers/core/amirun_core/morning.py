"""The morning report: last night's page in the output bucket and one SNS message.

In AWS there are no schedule files: what was due is read from the stack's
schedule group (each schedule's expression and time zone, as `schedules
apply` wrote them). A schedule's place in its grid (VPU, cycle, member) is
read from its name the way the NextGen families spell them (`fcst06`,
`mem1`, `vpu10L`); other names get one row each.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws, ledger
from amirun_core.night import (
    DueSchedule,
    Night,
    NightTrend,
    count_line,
    due_slots,
    join_night,
    money,
)
from amirun_core.notify import SUBJECT_LIMIT

#: Parallel GetSchedule calls (Scheduler's API is rate-limited).
READ_WORKERS = 8
#: Where the pages go in the output bucket.
REPORT_PREFIX = "reports/"
#: Failures listed in the message (SNS takes 256 KiB; a person reads far less).
LISTED_FAILURES = 20
#: Nights the page's trend shows.
TREND_NIGHTS = 7
_PARTS = (("init", re.compile(r"fcst(\d+)")), ("member", re.compile(r"mem(\d+)")),
          ("vpu", re.compile(r"vpu(\d+[A-Z]?)")))  # fmt: skip


def row_of(name: str) -> tuple[str, dict[str, str]]:
    """(family, row) read from a NextGen-style name; others are a family of their own."""
    row: dict[str, str] = {}
    family = name
    for key, pattern in _PARTS:
        found = pattern.search(family)
        if found:
            row[key] = found.group(1)
            family = family[: found.start(1)] + "*" + family[found.end(1) :]
    return (family, row) if row else (name, {})


def group_schedules(scheduler: Any, group: str) -> list[DueSchedule]:
    """Every schedule in the stack's group, as much as the report needs."""
    names = [
        summary["Name"]
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
        for summary in page.get("Schedules") or []
    ]

    def read(name: str) -> DueSchedule:
        found = scheduler.get_schedule(Name=name, GroupName=group)
        family, row = row_of(name)
        return DueSchedule(
            name,
            found["ScheduleExpression"],
            found.get("ScheduleExpressionTimezone") or "UTC",
            family,
            row,
            found.get("State", "ENABLED") == "ENABLED",
        )

    try:
        with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
            return list(pool.map(read, names))
    except ClientError as exc:
        aws.raise_if_throttled(exc, "GetSchedule")
        raise


@dataclass(frozen=True)
class MorningReport:
    night: date
    page_key: str
    page_url: str
    subject: str
    message: str
    due: int
    missing: int

    def to_json(self) -> dict[str, Any]:
        return {
            "night": self.night.isoformat(),
            "page": self.page_url,
            "subject": self.subject,
            "due": self.due,
            "missing": self.missing,
        }


def message_of(night: Night, stack: str, page_url: str) -> tuple[str, str]:
    """(subject, body): the counts, the failures with their cause, where the page is."""
    counts = night.counts()
    bad = len(night.failed()) + counts.get("missing", 0)
    subject = (
        f"amirun {stack} night {night.night.isoformat()}: "
        + (f"{bad} need a look" if bad else "all delivered")
        + f", {len(night.due)} due"
    )
    lines = [
        f"Night of {night.night.isoformat()} (UTC), stack {stack}",
        "",
        count_line(night),
        f"{night.instance_hours:.1f} instance-hours, about {money(night.cost_usd)} of EC2",
    ]
    by_error = night.failed_by_error()
    if by_error:
        lines.append("failed by error: " + ", ".join(f"{e} {n}" for e, n in by_error.items()))
    failed = night.failed()
    if failed:
        lines += ["", f"Failures ({len(failed)}):"]
        for slot in failed[:LISTED_FAILURES]:
            lines.append(
                f"- {slot.schedule} due {slot.scheduled_time:%H:%M}: {slot.error or slot.end}"
                f": {slot.cause or '-'}"
            )
        if len(failed) > LISTED_FAILURES:
            lines.append(f"- ... and {len(failed) - LISTED_FAILURES} more (see the page)")
    missing = night.missing()
    if missing:
        names = ", ".join(s.schedule for s in missing[:LISTED_FAILURES])
        more = f" and {len(missing) - LISTED_FAILURES} more" if len(missing) > 20 else ""
        lines += ["", f"Missing ({len(missing)}): {names}{more}"]
    for line in night.unread:
        lines.append(f"not counted as due: {line}")
    lines += ["", f"Page: {page_url}"]
    return subject.encode("ascii", "replace").decode()[:SUBJECT_LIMIT], "\n".join(lines)


def morning_report(
    *,
    scheduler: Any,
    dynamodb: Any,
    s3: Any,
    sns: Any,
    group: str,
    table: str,
    bucket: str,
    topic_arn: str,
    stack: str,
    now: datetime,
) -> MorningReport:
    """Report the night before `now` (UTC): the page to S3, one message to SNS."""
    from amirun_core.night_page import render_page

    schedules = group_schedules(scheduler, group)
    night_date = now.astimezone(UTC).date() - timedelta(days=1)

    def load(day: date) -> Night:
        due, unread = due_slots(schedules, day)
        return join_night(day, due, ledger.read_day(dynamodb, table, day), now, unread)

    night = load(night_date)
    earlier = [night_date - timedelta(days=n) for n in range(TREND_NIGHTS, 0, -1)]
    trend = [NightTrend.of(load(day)) for day in earlier]
    trend.append(NightTrend.of(night))
    page = render_page(night, stack, trend, f"{now:%Y-%m-%d %H:%M} UTC")
    key = f"{REPORT_PREFIX}{night_date.isoformat()}.html"
    s3.put_object(
        Bucket=bucket, Key=key, Body=page.encode("utf-8"), ContentType="text/html; charset=utf-8"
    )
    url = f"s3://{bucket}/{key}"
    subject, message = message_of(night, stack, url)
    sns.publish(
        TopicArn=topic_arn,
        Subject=subject,
        Message=message,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "morning-report"}},
    )
    return MorningReport(
        night_date, key, url, subject, message, len(night.due), len(night.missing())
    )
