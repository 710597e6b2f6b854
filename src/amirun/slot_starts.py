"""Starting slots again, or for the first time: `rerun --night` and `schedules backfill`.

Each slot is started with its schedule's input at its original scheduled time,
so `DAILY` resolves to the night it was due. The slot is claimed in the ledger
for the new execution before the execution starts: a slot whose run succeeded
or is still running is never taken, so a second call starts nothing new, and
a slot started by one call is not started again by the next. At most
`at_once` slots of the stack's ledger run at once (counted from the ledger),
and starts are spaced by `interval_s` (Step Functions' StartExecution rate).
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from amirun.schedules import Schedule
from amirun_core import ledger
from amirun_core.night import DueSlot, Night

#: Step Functions' execution names are at most 80 characters.
NAME_LIMIT = 80


def matches(pattern: str | None, name: str) -> bool:
    """A glob (`short_range_*_vpu10L_*`); without wildcards, a part of the name."""
    if not pattern:
        return True
    if any(mark in pattern for mark in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def needing_rerun(
    night: Night, *, failed: bool, missing: bool, pattern: str | None
) -> list[DueSlot]:
    """The due slots that ended badly (failed) or never started (missing)."""
    wanted = set()
    if failed:
        wanted |= {"failed", "timed_out", "aborted"}
    if missing:
        wanted.add("missing")
    return [
        DueSlot(s.schedule, s.scheduled_time, s.family, s.row)
        for s in night.due
        if s.end in wanted and matches(pattern, s.schedule)
    ]


def execution_name(schedule: Schedule, scheduled_time: datetime, tag: str) -> str:
    """`<schedule prefix>_<due time>-<tag>-<hex>`, at most 80 characters."""
    suffix = f"_{scheduled_time:%Y%m%dT%H%M}-{tag}-{secrets.token_hex(3)}"
    return schedule.execution_name_prefix[: NAME_LIMIT - len(suffix)] + suffix


@dataclass
class Outcome:
    started: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)  # someone holds the slot (running, done)
    waiting: list[str] = field(default_factory=list)  # over the limit: for the next call
    failed: list[str] = field(default_factory=list)


def running_count(dynamodb: Any, table: str, days: Iterable[Any]) -> int:
    return sum(
        1
        for day in days
        for item in ledger.read_day(dynamodb, table, day)
        if item.get("status") == "running"
    )


def start_slots(
    *,
    sfn: Any,
    dynamodb: Any,
    table: str,
    state_machine_arn: str,
    slots: list[DueSlot],
    schedules: dict[str, Schedule],
    takeover: bool,
    room: int,
    tag: str,
    interval_s: float = 0.0,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Claim and start each slot, at most `room` of them; say one line per start."""
    outcome = Outcome()
    pause = threading.Event()  # never set: an interruptible wait between starts
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:")
    for slot in slots:
        if len(outcome.started) >= room:
            outcome.waiting.append(slot.key)
            continue
        schedule = schedules[slot.schedule]
        name = execution_name(schedule, slot.scheduled_time, tag)
        arn = f"{prefix}:{name}"
        claim = ledger.claim_slot(
            dynamodb,
            table,
            slot=slot.key,
            execution_arn=arn,
            schedule=slot.schedule,
            scheduled_time=slot.scheduled_time,
            started_at=datetime.now(UTC),
            takeover=takeover,
        )
        if not claim.claimed:
            outcome.taken.append(slot.key)
            continue
        due = slot.scheduled_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        if outcome.started and interval_s:
            pause.wait(interval_s)
        try:
            sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps(schedule.input_at(due)),
            )
        except ClientError as exc:
            # The slot is this call's: say it did not start, so the next call may take it.
            ledger.record_end(
                dynamodb,
                table,
                slot=slot.key,
                execution_arn=arn,
                status="failed",
                fields={"error": "NotStarted", "cause": str(exc)},
            )
            outcome.failed.append(f"{slot.schedule} {due}: {exc}")
            continue
        outcome.started.append(slot.key)
        say(f"  started {name} ({slot.schedule}, due {due})")
    return outcome
