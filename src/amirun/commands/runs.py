"""`amirun runs | rerun`: what ran lately on a deployed stack, and running a failed one again.

`runs` lists the state machine's executions started in a window, one aligned
line each: status, error, attempts (a success after a relaunch says so), how
long, which instance type and market, instance-seconds and estimated cost.
Succeeded runs carry these in their output; for the others the last state the
execution entered is read from its history (one call each).

`rerun` starts a failed, timed-out or aborted execution again under a new name
with the same input and the same reference time, so `DAILY` means the same day;
`rerun --night D --failed --missing FILES` does it for every slot of a night
that needs it, claiming each in the ledger so that a second call starts nothing new.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amirun.commands.common import EXIT_FAILED, EXIT_OK
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


def _night(text: str) -> date:
    from amirun.commands.report import night_date

    return night_date(text)


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


#: How a table narrower than its text is made, step by step until it fits: names
#: lose their middle (schedules differ at both ends), errors their end, then the
#: least needed columns are left out (`--wide` shows everything).
_NARROWING: tuple[tuple[str, int], ...] = (
    ("NAME", 40),
    ("ERROR", 16),
    ("INSTANCE-S", 0),
    ("MARKET", 0),
    ("NAME", 24),
    ("ERROR", 12),
    ("STARTED", 0),
    ("TYPE", 0),
)


def middle_cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by `..`."""
    if len(text) <= width:
        return text
    keep = width - 2
    head = (keep + 1) // 2
    return text[:head] + ".." + text[len(text) - (keep - head) :]


def _end_cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 2] + ".."


def _line_width(widths: dict[str, int]) -> int:
    return sum(widths.values()) + 2 * (len(widths) - 1)


def _fitted(widths: dict[str, int], limit: int) -> dict[str, int]:
    """The column widths after as many _NARROWING steps as it takes to fit `limit`."""
    full, widths = widths, dict(widths)
    for header, least in _NARROWING:
        over = _line_width(widths) - limit
        if over <= 0:
            break
        if least == 0:
            del widths[header]
        else:
            widths[header] = max(min(least, widths[header]), widths[header] - over)
    # A column left out may free more room than was missing: names get it back first.
    for header in ("NAME", "ERROR"):
        spare = limit - _line_width(widths)
        if spare > 0:
            widths[header] = min(full[header], widths[header] + spare)
    return widths


def terminal_columns() -> int | None:
    """The terminal's width; None when the output is not a terminal (a pipe, a file)."""
    if "COLUMNS" not in os.environ and not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((120, 24)).columns


def table(rows: list[RunRow], width: int | None = None) -> list[str]:
    """Aligned lines; with `width`, names and errors are cut (and the least needed
    columns left out) so that each line fits it."""
    texts = [{header: show(row) for header, show in COLUMNS} for row in rows]
    widths = {header: max([len(header)] + [len(t[header]) for t in texts]) for header, _ in COLUMNS}
    if width is not None:
        widths = _fitted(widths, width)
        for text in texts:
            text["NAME"] = middle_cut(text["NAME"], widths["NAME"])
            text["ERROR"] = _end_cut(text["ERROR"], widths["ERROR"])
    lines = []
    for text in [{header: header for header in widths}, *texts]:
        padded = [
            text[header].rjust(size) if header in _RIGHT else text[header].ljust(size)
            for header, size in widths.items()
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
        print("\n".join(table(rows, None if args.wide else terminal_columns())))
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
    if args.night is not None:
        return rerun_night(args)
    if not args.run or args.files:
        raise RemoteError(
            "give one run (execution name or ARN), or --night D with --failed and/or"
            " --missing and the schedule files"
        )
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


#: Runs of the night's slots that may run at once, unless --at-once says otherwise.
AT_ONCE = 20


def rerun_night(args: argparse.Namespace) -> int:
    """Start again exactly the night's slots that need it, as they were due."""
    from amirun.commands.report import LEDGER_OUTPUT, load_night
    from amirun.slot_starts import needing_rerun, running_count, start_slots

    if not (args.failed or args.missing):
        raise RemoteError("say what to rerun: --failed, --missing, or both")
    files = [args.run, *args.files] if args.run else list(args.files)
    schedules = _schedule_set(files)
    target = Target(args)
    table = target.output(LEDGER_OUTPUT)
    dynamodb = target.client("dynamodb")
    now = datetime.now(UTC)
    night = load_night(dynamodb, table, args.night, [s for _, s in schedules.values()], now)
    slots = needing_rerun(night, failed=args.failed, missing=args.missing, pattern=args.only)
    room = max(0, args.at_once - running_count(dynamodb, table, [args.night]))
    print(f"Night {args.night.isoformat()}: {len(slots)} slot(s) need a rerun; room for {room}")
    outcome = start_slots(
        sfn=target.client("stepfunctions"),
        dynamodb=dynamodb,
        table=table,
        state_machine_arn=target.state_machine_arn,
        slots=slots,
        schedules={name: schedule for name, (schedule, _) in schedules.items()},
        takeover=True,
        room=room,
        tag="rerun",
    )
    print(start_summary(outcome, args.at_once))
    return EXIT_FAILED if outcome.failed else EXIT_OK


def start_summary(outcome: Any, at_once: int) -> str:
    parts = [f"started {len(outcome.started)}"]
    if outcome.taken:
        parts.append(f"{len(outcome.taken)} already running or done (not started again)")
    if outcome.waiting:
        parts.append(
            f"{len(outcome.waiting)} waiting (at most {at_once} at once: call again later)"
        )
    if outcome.failed:
        parts.append(f"{len(outcome.failed)} could not start: " + "; ".join(outcome.failed[:3]))
    return "; ".join(parts).capitalize()


def _schedule_set(files: list[str]) -> dict[str, Any]:
    """{name: (Schedule, DueSchedule)} of the files; a usage error when none are given."""
    from amirun.commands.report import due_schedules
    from amirun.schedules import ScheduleFileError, expand

    if not files:
        raise RemoteError("give the schedule files that say what was due")
    try:
        expanded = {s.name: s for s in expand(Path(f) for f in files)}
    except ScheduleFileError as exc:
        raise RemoteError(str(exc)) from None
    return {d.name: (expanded[d.name], d) for d in due_schedules(files)}


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
    runs.add_argument(
        "--wide",
        action="store_true",
        help="names and errors in full (by default they are cut to fit the terminal)",
    )
    _target(runs)
    runs.set_defaults(func=cmd_runs)

    rerun = sub.add_parser(
        "rerun",
        help="start a failed run again: same input, same reference time, new name",
        description="Start a failed, timed-out or aborted execution again under a new "
        "name, with the same input and the same reference time (so DAILY means the same "
        "day).",
    )
    rerun.add_argument(
        "run", nargs="?", help="execution name or ARN (with --night: the schedule files instead)"
    )
    rerun.add_argument("files", nargs="*", metavar="SCHEDULE_FILE", help=argparse.SUPPRESS)
    rerun.add_argument("--name", help="name of the new execution (default: <run>-rerun-<hex>)")
    rerun.add_argument(
        "--night",
        type=_night,
        help="rerun the slots of this night (UTC day, YYYY-MM-DD) that need it, from the"
        " schedule files given, each at its original scheduled time",
    )
    rerun.add_argument("--failed", action="store_true", help="with --night: failed slots")
    rerun.add_argument(
        "--missing", action="store_true", help="with --night: slots due but never started"
    )
    rerun.add_argument("--only", metavar="PATTERN", help="with --night: only these schedules")
    rerun.add_argument(
        "--at-once",
        type=int,
        default=AT_ONCE,
        metavar="N",
        help=f"with --night: at most N of the night's runs at once (default {AT_ONCE})",
    )
    _target(rerun)
    rerun.set_defaults(func=cmd_rerun)
