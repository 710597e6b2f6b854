"""Make a stack's schedule group equal to a declared set of schedules.

CloudFormation holds at most 500 resources a stack, so a fleet of a thousand
schedules cannot live in template.yaml: the template owns the schedule group,
the role Scheduler assumes and the dead-letter queue, and this module keeps the
group's schedules in step with the files through the Scheduler API. Every call
names the stack's group, so nothing outside it is ever read or changed.

`plan` compares what the group holds with what the files declare; `apply`
carries the plan out one schedule at a time. A rerun after a partial failure
plans again from what the group holds then, so it finishes the job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from amirun.schedules import EXECUTION_ID, Schedule, start_execution_target
from amirun_core.aws import error_code

#: Parallel GetSchedule calls while reading the group (Scheduler's API is rate-limited).
READ_WORKERS = 8
#: Fields of a schedule that the files decide; anything else Scheduler keeps is left alone.
_MANAGED = (
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "State",
    "Description",
    "Target",
)


@dataclass(frozen=True)
class Destination:
    """Where the schedules go and what they start: from the stack's outputs."""

    group: str
    state_machine_arn: str
    role_arn: str
    dead_letter_arn: str


def target_input(schedule: Schedule, state_machine_arn: str) -> str:
    """StartExecution's parameters as Scheduler's universal target takes them.

    json.dumps keeps `<` and `>` as they are, so Scheduler finds its context
    attributes (`<aws.scheduler.execution-id>`, `<aws.scheduler.scheduled-time>`)
    in the name and, textually, inside the execution input string.
    """
    parameters = {
        "StateMachineArn": state_machine_arn,
        "Name": f"{schedule.execution_name_prefix}_{EXECUTION_ID}",
        "Input": json.dumps(schedule.execution, separators=(",", ":")),
    }
    return json.dumps(parameters, separators=(",", ":"))


def schedule_request(schedule: Schedule, destination: Destination) -> dict[str, Any]:
    """The CreateSchedule/UpdateSchedule parameters of one schedule."""
    window: dict[str, Any] = (
        {"Mode": "OFF"}
        if schedule.flexible_window is None
        else {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": schedule.flexible_window}
    )
    request: dict[str, Any] = {
        "Name": schedule.name,
        "GroupName": destination.group,
        "ScheduleExpression": schedule.expression,
        "ScheduleExpressionTimezone": schedule.time_zone,
        "FlexibleTimeWindow": window,
        "State": "ENABLED" if schedule.enabled else "DISABLED",
        "Target": {
            "Arn": start_execution_target(destination.state_machine_arn),
            "RoleArn": destination.role_arn,
            "Input": target_input(schedule, destination.state_machine_arn),
            "RetryPolicy": {
                "MaximumRetryAttempts": schedule.retry.attempts,
                "MaximumEventAgeInSeconds": schedule.retry.max_age_s,
            },
            "DeadLetterConfig": {"Arn": destination.dead_letter_arn},
        },
    }
    if schedule.description:
        request["Description"] = schedule.description
    return request


# --- Comparing ---------------------------------------------------------------------------------
def _comparable(schedule: dict[str, Any]) -> dict[str, Any]:
    """The managed fields, with the target's input decoded so formatting never counts."""
    view = {key: schedule.get(key) for key in _MANAGED}
    target = dict(view["Target"] or {})
    try:
        parameters = json.loads(target.get("Input") or "null")
        if isinstance(parameters, dict) and isinstance(parameters.get("Input"), str):
            parameters["Input"] = json.loads(parameters["Input"])
        target["Input"] = parameters
    except json.JSONDecodeError:
        pass  # not ours: compared as text, so it differs and is replaced
    view["Target"] = {
        key: target.get(key)
        for key in ("Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig")
    }
    return view


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in list(old) + [k for k in new if k not in old]:
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, pair in enumerate(zip(old, new, strict=True))
            for d in _differences(*pair, f"{path}[{i}]")
        ]
    if old == new:
        return []
    if isinstance(old, str) and isinstance(new, str):
        old, new = _around_first_difference(old, new)
    return [f"{path}: {_short(old)} -> {_short(new)}"]


def _around_first_difference(old: str, new: str, before: int = 20) -> tuple[str, str]:
    """Long texts (a command) cut to where they start to differ."""
    first = next(
        (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
        min(len(old), len(new)),
    )
    start = max(first - before, 0)
    mark = "..." if start else ""
    return mark + old[start:], mark + new[start:]


def _short(value: Any, limit: int = 60) -> str:
    text = "(none)" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _label(path: str) -> str:
    """Users know the execution input, not the target's envelope around it."""
    return (
        path.replace("Target.Input.Input.", "input.")
        .replace("Target.Input.Name", "execution name")
        .replace("Target.Input.StateMachineArn", "state machine")
    )


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete"]
    name: str
    request: dict[str, Any] | None = None
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    group: str
    changes: list[Change]
    unchanged: int

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def summary(self) -> str:
        return (
            f"{self.count('create')} to create, {self.count('update')} to change, "
            f"{self.count('delete')} to delete, {self.unchanged} unchanged"
        )


def group_schedules(scheduler: Any, group: str) -> dict[str, dict[str, Any]]:
    """Every schedule in the group, in full (ListSchedules gives only their names)."""
    names = [
        summary["Name"]
        for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
        for summary in page.get("Schedules") or []
    ]

    def get(name: str) -> dict[str, Any]:
        found: dict[str, Any] = scheduler.get_schedule(Name=name, GroupName=group)
        return found

    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        return dict(zip(names, pool.map(get, names), strict=True))


def plan(scheduler: Any, schedules: Iterable[Schedule], destination: Destination) -> Plan:
    current = group_schedules(scheduler, destination.group)
    changes: list[Change] = []
    unchanged = 0
    declared = set()
    for schedule in schedules:
        declared.add(schedule.name)
        request = schedule_request(schedule, destination)
        existing = current.get(schedule.name)
        if existing is None:
            changes.append(Change("create", schedule.name, request))
            continue
        details = _differences(_comparable(existing), _comparable(request))
        if details:
            changes.append(Change("update", schedule.name, request, [_label(d) for d in details]))
        else:
            unchanged += 1
    changes += [Change("delete", name) for name in sorted(set(current) - declared)]
    return Plan(destination.group, changes, unchanged)


@dataclass(frozen=True)
class Failure:
    change: Change
    message: str


def apply(
    scheduler: Any,
    planned: Plan,
    on_done: Callable[[Change], None] = lambda change: None,
) -> list[Failure]:
    """Carry out each change; one that fails is reported and the others still happen."""
    failures = []
    for change in planned.changes:
        try:
            _apply_one(scheduler, planned.group, change)
        except ClientError as exc:
            failures.append(Failure(change, str(exc)))
            continue
        on_done(change)
    return failures


def _apply_one(scheduler: Any, group: str, change: Change) -> None:
    if change.action == "delete":
        try:
            scheduler.delete_schedule(Name=change.name, GroupName=group)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":  # gone already: done
                raise
        return
    assert change.request is not None
    if change.action == "update":
        scheduler.update_schedule(**change.request)
        return
    try:
        scheduler.create_schedule(**change.request)
    except ClientError as exc:
        # Created by an earlier apply whose answer was lost: make it what the file says.
        if error_code(exc) != "ConflictException":
            raise
        scheduler.update_schedule(**change.request)
