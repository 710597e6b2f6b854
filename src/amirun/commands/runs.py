"""`amirun runs | rerun`: what ran lately on a deployed stack, and running a failed one again.

`runs` lists the state machine's executions started in a window, one aligned
line each: status, error, attempts (a success after a relaunch says so), how
long, which instance type and market, instance-seconds and estimated cost.
Succeeded runs carry these in their output; for the others the last state the
execution entered is read from its history (one call each).

`rerun` starts a failed, timed-out or aborted execution again under a new name
with the same input and the same reference time, so `DAILY` means the same day.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from amirun.commands.common import EXIT_OK
from amirun.commands.remote import (
    RemoteError,
    Target,
    _history,
    _json,
    _reported,
    _target,
    describe,
    settle_slot_owner,
    start_execution,
)
from amirun_core.ledger import manual_schedule
from amirun_core.state import schedule_name

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
#: Executions described at once (Step Functions' DescribeExecution bucket refills at 15/s).
PARALLEL_LOOKUPS = 8
#: Step Functions' longest execution name, and EventBridge Scheduler's longest schedule name.
NAME_LIMIT = 80
SCHEDULE_NAME_LIMIT = 64
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
#: What an execution that ended without an error name ended with.
_STATUS_ERROR = {"TIMED_OUT": "States.Timeout", "ABORTED": "aborted"}


def since_time(text: str, now: datetime | None = None) -> datetime:
    """`24h`, `90m`, `7d`, `1d12h`, or an ISO-8601 time (UTC unless it says otherwise)."""
    match = _DURATION.match(text.strip())
    if match and any(match.groups()):
        days, hours, minutes = (int(g or 0) for g in match.groups())
        return (now or datetime.now(UTC)) - timedelta(days=days, hours=hours, minutes=minutes)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a duration such as 24h, 90m, 7d or an ISO-8601 time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class RunRow:
    """One execution, as `amirun runs` shows it."""

    name: str
    status: str
    started: datetime
    schedule: str | None = None
    error: str | None = None
    attempts: int | None = None
    duration_s: float | None = None
    instance_type: str | None = None
    market: str | None = None
    instance_seconds: int | None = None
    estimated_cost_usd: float | None = None
    #: The execution that holds this run's slot, when this one ended as its duplicate.
    duplicate_of: str | None = None

    @property
    def relaunched(self) -> bool:
        return (self.attempts or 1) > 1

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["started"] = self.started.astimezone(UTC).isoformat()
        row["relaunched"] = self.relaunched
        return row


def last_state(sfn: Any, arn: str) -> dict[str, Any] | None:
    """The workflow state the execution last entered a state with (newest history first)."""
    for event in _history(sfn, arn, newest_first=True):
        entered = event.get("stateEnteredEventDetails")
        state = _json(entered.get("input")) if entered else None
        if isinstance(state, dict) and "execution" in state:
            return state
    return None


def _apply_usage(row: RunRow, usage: Any) -> None:
    if isinstance(usage, dict):
        row.instance_type = usage.get("instance_type") or row.instance_type
        row.market = usage.get("market") or row.market
        row.instance_seconds = usage.get("run_instance_seconds")
        row.estimated_cost_usd = usage.get("run_estimated_cost_usd")


def run_row(sfn: Any, listed: dict[str, Any]) -> RunRow:
    """Everything the table shows about one listed execution."""
    described = describe(sfn, listed["executionArn"])
    request = _json(described.get("input"))
    row = RunRow(
        name=described["name"],
        status=described["status"],
        started=described["startDate"],
        schedule=schedule_name(request),
    )
    if described.get("stopDate"):
        row.duration_s = (described["stopDate"] - described["startDate"]).total_seconds()
    if isinstance(request, dict):
        params = request.get("instance_parameters")
        row.instance_type = params.get("InstanceType") if isinstance(params, dict) else None
    if row.status == "SUCCEEDED":
        output = _json(described.get("output"))
        output = output if isinstance(output, dict) else {}
        if isinstance(output.get("duplicate_of"), str):
            # Launched nothing: another execution runs its slot.
            row.duplicate_of = output["duplicate_of"].rsplit(":", 1)[-1]
            row.instance_type = None
            return row
        row.attempts = output.get("attempt")
        row.market = output.get("market")
        _apply_usage(row, output.get("usage"))
        return row
    row.error = described.get("error") or _STATUS_ERROR.get(row.status)
    state = last_state(sfn, listed["executionArn"]) or {}
    cleanup = state.get("cleanup") if isinstance(state.get("cleanup"), dict) else {}
    attempts = cleanup.get("attempts") if cleanup else None
    row.attempts = len(attempts) if attempts else state.get("attempt")
    instance = state.get("instance")
    if isinstance(instance, dict):
        row.market = instance.get("market")
    _apply_usage(row, cleanup.get("usage") if cleanup else None)
    return row


def list_runs(
    sfn: Any,
    machine: str,
    since: datetime,
    status: str | None = None,
    schedule_prefix: str | None = None,
) -> list[RunRow]:
    """The executions started since `since`, oldest first."""
    query: dict[str, Any] = {"stateMachineArn": machine}
    if status:
        query["statusFilter"] = status
    listed: list[dict[str, Any]] = []
    # Newest first (ListExecutions' order): stop paging at the first older one.
    for page in sfn.get_paginator("list_executions").paginate(**query):
        newer = [e for e in page["executions"] if e["startDate"] >= since]
        listed += newer
        if len(newer) < len(page["executions"]):
            break
    pool = ThreadPoolExecutor(max_workers=PARALLEL_LOOKUPS)
    try:
        rows = list(pool.map(lambda execution: run_row(sfn, execution), listed))
    finally:
        # After Ctrl-C, do not wait for the lookups not yet started.
        pool.shutdown(wait=False, cancel_futures=True)
    if schedule_prefix is not None:
        rows = [r for r in rows if (r.schedule or "").startswith(schedule_prefix)]
    return sorted(rows, key=lambda r: (r.started, r.name))


# --- the table -----------------------------------------------------------------------------
def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _attempts(row: RunRow) -> str:
    if row.attempts is None:
        return "-"
    return f"{row.attempts} (relaunched)" if row.relaunched else str(row.attempts)


def _money(cost: float | None) -> str:
    return "-" if cost is None else f"${cost:.4f}"


COLUMNS = (
    ("NAME", lambda r: r.name),
    ("STATUS", lambda r: "DUPLICATE" if r.duplicate_of else r.status),
    ("ERROR", lambda r: f"of {r.duplicate_of}" if r.duplicate_of else r.error or "-"),
    ("ATTEMPTS", _attempts),
    ("STARTED", lambda r: f"{r.started.astimezone(UTC):%m-%d %H:%M}"),
    ("DURATION", lambda r: _duration(r.duration_s)),
    ("TYPE", lambda r: r.instance_type or "-"),
    ("MARKET", lambda r: r.market or "-"),
    ("INSTANCE-S", lambda r: "-" if r.instance_seconds is None else str(r.instance_seconds)),
    ("EST. COST", lambda r: _money(r.estimated_cost_usd)),
)
#: Right-aligned: the numbers.
_RIGHT = {"DURATION", "INSTANCE-S", "EST. COST"}


def table(rows: list[RunRow]) -> list[str]:
    cells = [[header for header, _ in COLUMNS]]
    cells += [[show(row) for _, show in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for line in cells:
        padded = [
            text.rjust(width) if header in _RIGHT else text.ljust(width)
            for (header, _), text, width in zip(COLUMNS, line, widths, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    return lines


def summary(rows: list[RunRow], since: datetime) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    parts = []
    for status in STATUSES:
        if status in counts:
            part = f"{counts[status]} {status.lower().replace('_', ' ')}"
            relaunched = sum(1 for r in rows if r.status == status and r.relaunched)
            if status == "SUCCEEDED" and relaunched:
                part += f" ({relaunched} after a relaunch)"
            duplicates = sum(1 for r in rows if r.status == status and r.duplicate_of)
            if duplicates:
                part += (
                    f" ({duplicates} duplicate{'s' if duplicates != 1 else ''}, nothing launched)"
                )
            parts.append(part)
    seconds = sum(r.instance_seconds or 0 for r in rows)
    cost = sum(r.estimated_cost_usd or 0 for r in rows)
    return (
        f"{len(rows)} run{'s' if len(rows) != 1 else ''} since {since:%Y-%m-%d %H:%M} UTC: "
        + (", ".join(parts) or "none")
        + f"; {seconds} instance-seconds, about ${cost:.2f} of EC2"
    )


@_reported
def cmd_runs(args: argparse.Namespace) -> int:
    target = Target(args)
    since: datetime = args.since
    rows = list_runs(
        target.client("stepfunctions"),
        target.state_machine_arn,
        since.astimezone(UTC),
        args.status,
        args.schedule,
    )
    if args.json:
        json.dump([row.to_json() for row in rows], sys.stdout, indent=2)
        print()
        return EXIT_OK
    if rows:
        print("\n".join(table(rows)))
        print()
    print(summary(rows, since.astimezone(UTC)))
    return EXIT_OK


# --- rerun ---------------------------------------------------------------------------------
def rerun_name(name: str) -> str:
    """`<name>-rerun-<6 hex>`, the name cut so the whole fits Step Functions' 80 characters."""
    suffix = f"-rerun-{secrets.token_hex(3)}"
    return name[: NAME_LIMIT - len(suffix)] + suffix


def rerun_request(request: dict[str, Any], name: str, started: datetime) -> dict[str, Any]:
    """The same input; a run without a scheduled time keeps its first start as reference.

    A run started by hand has no schedule: the rerun's is named after that run's slot,
    `manual/<name>` (a schedule name has at most 64 characters), which also labels it
    in `runs`. `schedule.rerun` takes the slot over from the failed run.
    """
    again = dict(request)
    schedule = dict(again.get("schedule") or {})
    if "name" not in schedule:
        # The slot the run by hand held (manual/<name>), when that fits a schedule name.
        manual = manual_schedule(name)
        schedule["name"] = (
            manual if len(manual) <= SCHEDULE_NAME_LIMIT else name[:SCHEDULE_NAME_LIMIT]
        )
    if not schedule.get("scheduled_time"):
        schedule["scheduled_time"] = started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # On purpose: take the slot over from the run that failed.
    schedule["rerun"] = True
    schedule.pop("new_slot", None)
    again["schedule"] = schedule
    return again


@_reported
def cmd_rerun(args: argparse.Namespace) -> int:
    target = Target(args, args.run)
    arn = target.execution_arn(args.run)
    described = describe(target.client("stepfunctions"), arn)
    name, status = described["name"], described["status"]
    if status in ("RUNNING", "PENDING_REDRIVE"):
        raise RemoteError(f"{name} is still {status.lower()}: nothing to rerun yet")
    if status == "SUCCEEDED":
        raise RemoteError(f"{name} succeeded: rerun starts only failed, timed-out or aborted runs")
    request = _json(described.get("input"))
    if not isinstance(request, dict):
        raise RemoteError(f"{name}: its input is not available (over 256 KiB?)")
    again = rerun_request(request, name, described["startDate"])
    reference = again["schedule"]["scheduled_time"]
    note = settle_slot_owner(target, again)
    if note:
        print(f"amirun: {note}", file=sys.stderr)
    start_execution(
        target,
        args.name or rerun_name(name),
        again,
        note=f" (rerun of {name}, {status}; reference time {reference})",
    )
    return EXIT_OK


def register(sub: Any) -> None:
    runs = sub.add_parser(
        "runs",
        help="the executions of a deployed stack: status, attempts, time, cost",
        description="List the executions a deployed stack's state machine started in a "
        "window, oldest first, one line each: status, error, attempts, duration, instance "
        "type and market, instance-seconds and estimated cost.",
    )
    runs.add_argument(
        "--since",
        type=since_time,
        default=since_time("24h"),
        help="how far back: 24h (default), 90m, 7d, or an ISO-8601 time",
    )
    runs.add_argument(
        "--status", type=str.upper, choices=STATUSES, help="only executions with this status"
    )
    runs.add_argument("--schedule", help="only runs of schedules whose name starts with this")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    _target(runs)
    runs.set_defaults(func=cmd_runs)

    rerun = sub.add_parser(
        "rerun",
        help="start a failed run again: same input, same reference time, new name",
        description="Start a failed, timed-out or aborted execution again under a new "
        "name, with the same input and the same reference time (so DAILY means the same "
        "day).",
    )
    rerun.add_argument("run", help="execution name or ARN")
    rerun.add_argument("--name", help="name of the new execution (default: <run>-rerun-<hex>)")
    _target(rerun)
    rerun.set_defaults(func=cmd_rerun)
