"""The local stack's Scheduler: when schedules fire, and what a firing does.

Cron, rate and at expressions as EventBridge Scheduler evaluates them, in the
schedule's time zone:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
Context attributes replaced in the target's input:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
Retries and the dead-letter queue:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-retry-policy.html
https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from amirun.local.cron import ExpressionError, fire_times, fires_at
from amirun.local.scheduler import Clock, Fired, Scheduler, ScheduleView
from amirun.schedules import START_EXECUTION_TARGET


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def day(text: str) -> tuple[datetime, datetime]:
    start = utc(f"{text}T00:00:00")
    return start, start + timedelta(days=1)


# --- when ---------------------------------------------------------------------------------
def test_a_cron_fires_at_its_local_time_in_winter_and_in_summer() -> None:
    expression = "cron(0 1 * * ? *)"

    assert fire_times(expression, "America/New_York", *day("2026-02-09")) == [
        utc("2026-02-09T06:00:00")
    ]
    assert fire_times(expression, "America/New_York", *day("2026-07-09")) == [
        utc("2026-07-09T05:00:00")
    ]


def test_a_local_time_daylight_saving_skips_does_not_fire() -> None:
    # 2026-03-08: New York's clocks go from 02:00 to 03:00.
    assert fire_times("cron(30 2 * * ? *)", "America/New_York", *day("2026-03-08")) == []


def test_a_local_time_daylight_saving_repeats_fires_once() -> None:
    # 2026-11-01: 01:30 happens twice in New York; the first (EDT, 05:30Z) fires.
    times = fire_times(
        "cron(30 1 * * ? *)",
        "America/New_York",
        utc("2026-11-01T00:00:00"),
        utc("2026-11-02T00:00:00"),
    )
    assert times == [utc("2026-11-01T05:30:00")]


def test_lists_ranges_steps_names_and_the_last_day() -> None:
    every_20 = fire_times("cron(0/20 8-9 * * ? *)", "UTC", *day("2026-02-09"))
    assert [t.strftime("%H:%M") for t in every_20] == [
        "08:00",
        "08:20",
        "08:40",
        "09:00",
        "09:20",
        "09:40",
    ]
    # 2026-02-09 is a Monday; Scheduler numbers SUN 1 ... SAT 7.
    assert fire_times("cron(0 12 ? * MON *)", "UTC", *day("2026-02-09"))
    assert not fire_times("cron(0 12 ? * 3 *)", "UTC", *day("2026-02-09"))
    assert fire_times("cron(0 0 L * ? *)", "UTC", *day("2026-02-28"))
    assert not fire_times("cron(0 0 L FEB ? 2027)", "UTC", *day("2026-02-28"))


def test_rate_and_at() -> None:
    start, end = day("2026-02-09")
    assert len(fire_times("rate(1 hour)", "UTC", start, end)) == 24
    assert fire_times("at(2026-02-09T08:00:00)", "Europe/Paris", start, end) == [
        utc("2026-02-09T07:00:00")
    ]


@pytest.mark.parametrize(
    "expression", ["cron(0 12 ? * 2#1 *)", "cron(0 12 15W * ? *)", "cron(0 12 * *)"]
)
def test_what_the_local_scheduler_cannot_evaluate_is_refused_by_name(expression: str) -> None:
    with pytest.raises(ExpressionError):
        fire_times(expression, "UTC", *day("2026-02-09"))


def test_fires_at_is_exact() -> None:
    assert fires_at("cron(0 1 * * ? *)", "America/New_York", utc("2026-02-09T06:00:00"))
    assert not fires_at("cron(0 1 * * ? *)", "America/New_York", utc("2026-02-09T06:00:01"))


# --- what a firing does ------------------------------------------------------------------------
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:amirun-test-workflow"
DLQ = "arn:aws:sqs:us-east-1:123456789012:amirun-test-dlq"


@pytest.fixture
def sfn() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("stepfunctions", region_name="us-east-1")
        client.create_state_machine(
            name="amirun-test-workflow",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/amirun-test",
        )
        yield client


def schedule(
    expression: str = "cron(0 6 * * ? *)", window: int | None = None, attempts: int = 2
) -> ScheduleView:
    execution = {
        "commands": ["run"],
        "schedule": {"scheduled_time": "<aws.scheduler.scheduled-time>"},
    }
    parameters = {
        "StateMachineArn": MACHINE,
        "Name": "nightly_<aws.scheduler.execution-id>",
        "Input": json.dumps(execution),
    }
    return ScheduleView(
        arn="arn:aws:scheduler:us-east-1:123456789012:schedule/g/nightly",
        name="nightly",
        expression=expression,
        time_zone="UTC",
        window_minutes=window,
        enabled=True,
        target={
            "Arn": START_EXECUTION_TARGET,
            "Input": json.dumps(parameters),
            "RetryPolicy": {"MaximumRetryAttempts": attempts, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": DLQ},
        },
    )


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, queue: str, body: str, attributes: dict[str, str]) -> None:
        self.sent.append((queue, body, attributes))


def run_until(scheduler: Scheduler, moment: datetime) -> None:
    scheduler.clock.jump_to(moment)
    scheduler.tick()


def test_a_firing_starts_the_execution_with_the_context_attributes_replaced(sfn: Any) -> None:
    fired: list[Fired] = []
    clock = Clock(utc("2026-02-09T05:59:00"), speed=1)
    scheduler = Scheduler(clock, lambda: [schedule()], sfn, Letters(), on_fired=fired.append)

    scheduler.tick()
    assert fired == []  # not yet due
    run_until(scheduler, utc("2026-02-09T06:00:00"))

    (one,) = fired
    assert one.scheduled_time == utc("2026-02-09T06:00:00")
    assert one.execution_arn is not None
    described = sfn.describe_execution(executionArn=one.execution_arn)
    assert described["name"].startswith("nightly_")
    assert len(described["name"]) == len("nightly_") + 36  # the execution id, a UUID
    started_with = json.loads(described["input"])
    assert started_with["schedule"]["scheduled_time"] == "2026-02-09T06:00:00Z"
    run_until(scheduler, utc("2026-02-09T07:00:00"))
    assert len(fired) == 1  # once a day


def test_a_flexible_window_starts_within_the_window_with_the_scheduled_time(sfn: Any) -> None:
    fired: list[Fired] = []
    clock = Clock(utc("2026-02-09T05:59:00"), speed=1)
    scheduler = Scheduler(
        clock, lambda: [schedule(window=15)], sfn, Letters(), on_fired=fired.append, seed=7
    )

    due = scheduler.next_due(utc("2026-02-10T00:00:00"))
    assert due is not None
    assert utc("2026-02-09T06:00:00") <= due < utc("2026-02-09T06:15:00")
    run_until(scheduler, due - timedelta(seconds=1))
    assert fired == []
    run_until(scheduler, due)
    assert [f.scheduled_time for f in fired] == [utc("2026-02-09T06:00:00")]


def test_a_throttled_start_is_retried_then_dead_lettered(sfn: Any) -> None:
    """moto never throttles StartExecution: a before-call hook answers as AWS would."""
    calls = []

    def throttled(**_: Any) -> None:
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "StartExecution",
        )

    sfn.meta.events.register("before-call.sfn.StartExecution", throttled)
    letters, fired = Letters(), []
    clock = Clock(utc("2026-02-09T05:59:00"), speed=1)
    scheduler = Scheduler(
        clock, lambda: [schedule(attempts=2)], sfn, letters, on_fired=fired.append
    )

    for minute in range(1, 6):
        run_until(scheduler, utc("2026-02-09T06:00:00") + timedelta(minutes=minute))

    assert len(calls) == 3  # the first try and two retries
    ((queue, body, attributes),) = letters.sent
    assert queue == DLQ
    assert attributes["ERROR_CODE"] == "ThrottlingException"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["RETRY_ATTEMPTS"] == "2"
    assert json.loads(body)["StateMachineArn"] == MACHINE
    assert [(f.execution_arn, f.attempts) for f in fired] == [(None, 3)]


def test_a_start_that_cannot_succeed_is_dead_lettered_at_once(sfn: Any) -> None:
    sfn.delete_state_machine(stateMachineArn=MACHINE)
    letters = Letters()
    clock = Clock(utc("2026-02-09T05:59:00"), speed=1)
    scheduler = Scheduler(clock, lambda: [schedule()], sfn, letters)

    run_until(scheduler, utc("2026-02-09T06:00:00"))

    ((_, _, attributes),) = letters.sent
    assert attributes["ERROR_CODE"] == "StateMachineDoesNotExist"
    assert attributes["RETRY_ATTEMPTS"] == "0"


def test_nothing_fires_at_or_after_until(sfn: Any) -> None:
    fired: list[Fired] = []
    clock = Clock(utc("2026-02-09T00:00:00"), speed=1)
    scheduler = Scheduler(
        clock, lambda: [schedule("rate(6 hours)")], sfn, Letters(), on_fired=fired.append
    )
    scheduler.until = utc("2026-02-10T00:00:00")

    run_until(scheduler, utc("2026-02-11T00:00:00"))

    assert len(fired) == 4


def test_a_start_at_the_clocks_first_second_fires(sfn: Any) -> None:
    """A day rehearsed from 00:00:00Z fires the schedules due at 00:00:00Z too."""
    fired: list[Fired] = []
    clock = Clock(utc("2026-02-09T00:00:00"), speed=1)
    scheduler = Scheduler(
        clock, lambda: [schedule("cron(0 0 * * ? *)")], sfn, Letters(), on_fired=fired.append
    )

    run_until(scheduler, utc("2026-02-09T00:00:01"))

    assert [f.scheduled_time for f in fired] == [utc("2026-02-09T00:00:00")]
