"""A Scheduler that fires: the group's schedules at their times, on a clock that can run fast.

Each enabled schedule fires at the times its expression gives in its time zone
(`amirun.local.cron`). With a flexible window, the start comes at a random
moment within the window after the scheduled time, as Scheduler spreads it. The
target is the universal `sfn:startExecution`: its input (StartExecution's
parameters) gets Scheduler's context attributes replaced, textually, then the
execution is started. A start that fails with a throttling or server error is
retried with a growing backoff until the retry policy's attempts or maximum
event age run out; any other failure is not retried. Either way the failed
start goes to the schedule's dead-letter queue, with the error as message
attributes.
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-retry-policy.html
https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html

Time is virtual (`Clock`): it runs `speed` times faster than the wall clock and
can jump ahead (a rehearsed day skips the hours when nothing is due or running).
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from amirun.local.cron import fire_times
from amirun.schedules import EXECUTION_ID, SCHEDULED_TIME, start_execution_target

SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"
ATTEMPT_NUMBER = "<aws.scheduler.attempt-number>"
#: Errors Scheduler retries: the target is throttled or failed on its side.
RETRYABLE = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "InternalServerError", "TooManyRequests"}
)
#: First retry after this many (virtual) seconds, doubling, at most the cap.
BACKOFF_S, BACKOFF_CAP_S = 1.0, 60.0
#: Wall seconds between two looks at what is due.
TICK_S = 0.05


def _starts_executions(target: dict[str, Any]) -> bool:
    """The target is Scheduler's universal StartExecution target (in any partition)."""
    arn = str(target.get("Arn", ""))
    try:
        return arn == start_execution_target(arn)
    except ValueError:
        return False


class Clock:
    """Virtual UTC time: `speed` virtual seconds per wall second, and jumps ahead."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be more than 0, got {speed}")
        self.speed = speed
        self._lock = threading.Lock()
        self._origin = start or datetime.now(UTC)
        #: Where the clock started: what is due from then on fires.
        self.started_at = self._origin
        self._wall = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            return self._origin + timedelta(seconds=(time.monotonic() - self._wall) * self.speed)

    def jump_to(self, moment: datetime) -> None:
        """Move the clock on to `moment` (never back)."""
        with self._lock:
            current = self._origin + timedelta(seconds=(time.monotonic() - self._wall) * self.speed)
            self._origin, self._wall = max(current, moment), time.monotonic()


@dataclass(frozen=True)
class ScheduleView:
    """What firing a schedule needs from Scheduler's copy of it."""

    arn: str
    name: str
    expression: str
    time_zone: str
    window_minutes: int | None
    enabled: bool
    target: dict[str, Any]

    @classmethod
    def of(cls, schedule: dict[str, Any]) -> ScheduleView:
        window = schedule.get("FlexibleTimeWindow") or {}
        return cls(
            arn=schedule["Arn"],
            name=schedule["Name"],
            expression=schedule["ScheduleExpression"],
            time_zone=schedule.get("ScheduleExpressionTimezone") or "UTC",
            window_minutes=window.get("MaximumWindowInMinutes")
            if window.get("Mode") == "FLEXIBLE"
            else None,
            enabled=schedule.get("State", "ENABLED") == "ENABLED",
            target=schedule["Target"],
        )


@dataclass(order=True)
class Firing:
    """One invocation of a schedule's target, and its retries."""

    due: datetime
    schedule: ScheduleView = field(compare=False)
    scheduled_time: datetime = field(compare=False)
    execution_id: str = field(compare=False, default_factory=lambda: str(uuid.uuid4()))
    attempt: int = field(compare=False, default=1)


@dataclass(frozen=True)
class Fired:
    """What became of one firing: the execution started, or the dead letter sent."""

    schedule: str
    scheduled_time: datetime
    execution_arn: str | None
    attempts: int
    error: str | None = None


def target_parameters(firing: Firing) -> dict[str, Any]:
    """StartExecution's parameters with the context attributes replaced."""
    text = firing.schedule.target["Input"]
    for placeholder, value in (
        (SCHEDULED_TIME, f"{firing.scheduled_time:%Y-%m-%dT%H:%M:%SZ}"),
        (EXECUTION_ID, firing.execution_id),
        (SCHEDULE_ARN, firing.schedule.arn),
        (ATTEMPT_NUMBER, str(firing.attempt)),
    ):
        text = text.replace(placeholder, value)
    parameters: dict[str, Any] = json.loads(text)
    return parameters


class Scheduler:
    """Fires the schedules `read_schedules` returns, on `clock`; `tick()` does one look."""

    def __init__(
        self,
        clock: Clock,
        read_schedules: Callable[[], list[ScheduleView]],
        sfn: Any,
        send_dead_letter: Callable[[str, str, dict[str, str]], None],
        *,
        on_fired: Callable[[Fired], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.clock = clock
        self._read = read_schedules
        self._sfn = sfn
        self._dead_letter = send_dead_letter
        self._on_fired = on_fired
        self._draws = random.Random(seed)  # noqa: S311 - spreading starts, not secrets
        self._queue: list[Firing] = []
        self._looked_until = clock.started_at
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Nothing scheduled at or after this time fires (None: no end).
        self.until: datetime | None = None
        #: Every firing that ended, in order.
        self.fired: list[Fired] = []

    # --- what is due ----------------------------------------------------------------
    def _enqueue_due(self, until: datetime) -> None:
        if self.until is not None:
            until = min(until, self.until)
        start, self._looked_until = self._looked_until, max(until, self._looked_until)
        if until <= start:
            return
        for schedule in self._read():
            if not schedule.enabled or not _starts_executions(schedule.target):
                continue
            for moment in fire_times(schedule.expression, schedule.time_zone, start, until):
                spread = (
                    self._draws.uniform(0, schedule.window_minutes * 60)
                    if schedule.window_minutes
                    else 0.0
                )
                heapq.heappush(
                    self._queue, Firing(moment + timedelta(seconds=spread), schedule, moment)
                )

    def next_due(self, horizon: datetime) -> datetime | None:
        """The first time at or before `horizon` when something is due (for a jump)."""
        with self._lock:
            self._enqueue_due(horizon)
            return self._queue[0].due if self._queue else None

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # --- firing ---------------------------------------------------------------------
    def tick(self) -> int:
        """Start every execution due by now; returns how many firings ended."""
        now = self.clock.now()
        with self._lock:
            self._enqueue_due(now)
            due = []
            while self._queue and self._queue[0].due <= now:
                due.append(heapq.heappop(self._queue))
        for firing in due:
            self._fire(firing, now)
        return len(due)

    def _fire(self, firing: Firing, now: datetime) -> None:
        parameters = target_parameters(firing)
        try:
            started = self._sfn.start_execution(
                stateMachineArn=parameters["StateMachineArn"],
                name=parameters.get("Name"),
                input=parameters.get("Input", "{}"),
            )
        except ClientError as exc:
            self._failed(firing, now, exc)
            return
        self._ended(
            Fired(
                firing.schedule.name, firing.scheduled_time, started["executionArn"], firing.attempt
            )
        )

    def _failed(self, firing: Firing, now: datetime, exc: ClientError) -> None:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        message = exc.response.get("Error", {}).get("Message", str(exc))
        policy = firing.schedule.target.get("RetryPolicy") or {}
        retries = int(policy.get("MaximumRetryAttempts", 185))
        max_age = timedelta(seconds=int(policy.get("MaximumEventAgeInSeconds", 86400)))
        backoff = min(BACKOFF_S * 2 ** (firing.attempt - 1), BACKOFF_CAP_S)
        retry_at = now + timedelta(seconds=backoff * (0.5 + self._draws.random() / 2))
        if code in RETRYABLE and firing.attempt <= retries and retry_at - firing.due < max_age:
            with self._lock:
                heapq.heappush(
                    self._queue,
                    Firing(
                        retry_at,
                        firing.schedule,
                        firing.scheduled_time,
                        firing.execution_id,
                        firing.attempt + 1,
                    ),
                )
            return
        dead_letter = firing.schedule.target.get("DeadLetterConfig", {}).get("Arn")
        if dead_letter:
            condition = (
                "MaximumRetryAttempts"
                if code in RETRYABLE and firing.attempt > retries
                else "MaximumEventAgeInSeconds"
                if code in RETRYABLE
                else ""
            )
            self._dead_letter(
                dead_letter,
                firing.schedule.target["Input"],
                {
                    "ERROR_CODE": code,
                    "ERROR_MESSAGE": message[:1000],
                    "EXHAUSTED_RETRY_CONDITION": condition or "NotRetryable",
                    "RETRY_ATTEMPTS": str(firing.attempt - 1),
                    "SCHEDULE_ARN": firing.schedule.arn,
                    "TARGET_ARN": firing.schedule.target["Arn"],
                },
            )
        self._ended(
            Fired(
                firing.schedule.name,
                firing.scheduled_time,
                None,
                firing.attempt,
                f"{code}: {message}",
            )
        )

    def _ended(self, fired: Fired) -> None:
        with self._lock:
            self.fired.append(fired)
        if self._on_fired is not None:
            self._on_fired(fired)

    # --- running by itself ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="amirun-scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            self.tick()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
